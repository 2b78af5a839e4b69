//! `ferry dry-run` and `ferry explain` against the real services: profiles equal what a generated
//! table is known to hold, predicted rejects equal what `migrate` then rejects, nothing is
//! written to the target, and the HTML report renders in headless Chromium without a console
//! error.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use futures::StreamExt;
use scylla::client::session::Session;
use scylla::value::CqlDate;
use serde_json::Value;

use crate::support;

const KEYSPACE: &str = "ferry_dryrun";

/// Inserts `rows` with `insert` (a prepared statement's CQL), 64 at a time.
async fn insert_all<T>(session: &Session, cql: &str, rows: Vec<T>)
where
    T: scylla::serialize::row::SerializeRow + Send + Sync,
{
    let insert = session.prepare(cql).await.expect("prepare");
    let insert = &insert;
    futures::stream::iter(rows)
        .map(|row| async move { session.execute_unpaged(insert, row).await.map(|_| ()) })
        .buffer_unordered(64)
        .for_each(|r| async move { r.expect("insert") })
        .await;
}

async fn fresh_table(session: &Session, name: &str, columns: &str) {
    support::keyspace(session, KEYSPACE).await;
    support::recreate_table(
        session,
        &format!("CREATE TABLE {KEYSPACE}.{name} ({columns})"),
    )
    .await;
}

/// Runs `ferry dry-run -c CONFIG ARGS… --report <dir>/dry-run.json` and returns the report;
/// the exit code must be `code`.
fn dry_run(config: &Path, args: &[&str], code: i32) -> Value {
    let report = config.with_file_name("dry-run.json");
    let mut all = vec![
        "dry-run",
        "-c",
        config.to_str().expect("utf-8 path"),
        "--report",
        report.to_str().expect("utf-8 path"),
    ];
    all.extend_from_slice(args);
    let out = support::ferry(&all);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(code),
        "ferry dry-run: stdout:\n{}\nstderr:\n{stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("nothing was written to the target"),
        "{stdout}"
    );
    support::read_report(&report)
}

/// Rows inserted into `table` over its lifetime (`pg_stat_user_tables.n_tup_ins`), read afresh.
async fn inserted(client: &tokio_postgres::Client, table: &str) -> i64 {
    client
        .batch_execute("SELECT pg_stat_clear_snapshot()")
        .await
        .expect("clear the stats snapshot");
    client
        .query_one(
            "SELECT coalesce((SELECT n_tup_ins FROM pg_stat_user_tables \
             WHERE relid = to_regclass($1)), 0)",
            &[&table],
        )
        .await
        .expect("pg_stat_user_tables")
        .get(0)
}

/// Rows of run `run_id` in the run state, 0 when the run-state schema does not exist.
async fn run_state_rows(client: &tokio_postgres::Client, run_id: &str) -> i64 {
    let mut total = 0;
    for table in ["runs", "splits", "units"] {
        let exists: bool = client
            .query_one(
                &format!("SELECT to_regclass('ferry_state.{table}') IS NOT NULL"),
                &[],
            )
            .await
            .expect("to_regclass")
            .get(0);
        if exists {
            let n: i64 = client
                .query_one(
                    &format!("SELECT count(*) FROM ferry_state.{table} WHERE run_id = $1"),
                    &[&run_id],
                )
                .await
                .expect("run state")
                .get(0);
            total += n;
        }
    }
    total
}

fn num(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("{key} in {v}"))
}

/// Row `i` of the profiled table: (id, grp, name, payload, amount, day).
type ProfiledRow = (i32, i32, Option<String>, Option<Vec<u8>>, f64, CqlDate);

const PROFILED_ROWS: i32 = 6_000;

fn profiled_row(i: i32) -> ProfiledRow {
    let name = (i % 10 != 0).then(|| format!("{}-{}", "é".repeat((i % 13) as usize), i % 1_000));
    let payload = (i % 4 != 0).then(|| vec![b'x'; (i % 50) as usize]);
    // CqlDate counts days with the epoch at 2^31.
    let day = CqlDate((1u32 << 31) + (i % 365) as u32);
    (i, i % 7, name, payload, f64::from(i) / 2.0, day)
}

/// Asserts an approximate distinct count is within HyperLogLog's error of `exact`.
fn assert_distinct(column: &Value, exact: usize) {
    let estimate = column["approx_distinct"].as_u64().expect("approx_distinct") as f64;
    let tolerance = (exact as f64 * 0.03).max(1.0);
    assert!(
        (estimate - exact as f64).abs() <= tolerance,
        "{}: approx_distinct {estimate}, exactly {exact}",
        column["name"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profiles_equal_the_known_distributions_and_nothing_is_written() {
    let session = support::cassandra().await;
    fresh_table(
        &session,
        "profiled",
        "id int PRIMARY KEY, grp int, name text, payload blob, amount double, day date",
    )
    .await;
    insert_all(
        &session,
        &format!(
            "INSERT INTO {KEYSPACE}.profiled (id, grp, name, payload, amount, day) \
             VALUES (?, ?, ?, ?, ?, ?)"
        ),
        (0..PROFILED_ROWS).map(profiled_row).collect(),
    )
    .await;
    let client = support::postgres().await;
    client
        .batch_execute(
            "DROP TABLE IF EXISTS dryrun_profiled; \
             CREATE TABLE dryrun_profiled (id int PRIMARY KEY, grp int, name text, \
             payload bytea, amount double precision, day date)",
        )
        .await
        .expect("create target");
    let dir = support::scratch_dir("dryrun_profiled");
    let run_id = support::unique_run_id(&dir);
    let config = support::write_config(
        &dir,
        &format!("splits = 8\nconnections = 2\nid = \"{run_id}\""),
        &format!("[[table]]\nsource = \"{KEYSPACE}.profiled\"\ntarget = \"dryrun_profiled\""),
    );
    let inserted_before = inserted(&client, "public.dryrun_profiled").await;

    let report = dry_run(&config, &[], 0);
    assert_eq!(report["command"], "dry-run");
    assert_eq!(report["status"], "ok", "{report}");
    let t = &report["tables"][0];
    assert_eq!(t["checked_against"], "live-table");
    assert_eq!(num(t, "rows_read"), PROFILED_ROWS as u64);
    assert_eq!(num(t, "source_rows"), PROFILED_ROWS as u64);
    assert_eq!((num(t, "splits_read"), num(t, "splits_total")), (8, 8));
    assert_eq!(num(&t["rejects"], "total"), 0);
    assert!(num(t, "arrow_bytes") > 0 && num(t, "copy_bytes") > 0, "{t}");

    // The known distributions, computed from the rows themselves.
    let rows: Vec<ProfiledRow> = (0..PROFILED_ROWS).map(profiled_row).collect();
    let names: Vec<&String> = rows.iter().filter_map(|r| r.2.as_ref()).collect();
    let columns: BTreeMap<String, &Value> = t["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .map(|c| (c["name"].as_str().expect("name").to_string(), c))
        .collect();
    let id = columns["id"];
    assert_eq!(
        (num(id, "null_count"), &id["min"], &id["max"]),
        (
            0,
            &Value::from("0"),
            &Value::from((PROFILED_ROWS - 1).to_string())
        )
    );
    assert_distinct(id, PROFILED_ROWS as usize);
    let grp = columns["grp"];
    assert_eq!(
        (&grp["min"], &grp["max"]),
        (&Value::from("0"), &Value::from("6"))
    );
    assert_distinct(grp, 7);
    let name = columns["name"];
    assert_eq!(num(name, "null_count"), (PROFILED_ROWS / 10) as u64);
    assert_eq!(name["min"].as_str(), names.iter().min().map(|s| s.as_str()));
    assert_eq!(name["max"].as_str(), names.iter().max().map(|s| s.as_str()));
    assert_eq!(
        num(name, "max_length"),
        names
            .iter()
            .map(|s| s.chars().count())
            .max()
            .expect("names") as u64,
        "characters, not bytes"
    );
    assert_distinct(name, names.iter().collect::<HashSet<_>>().len());
    assert!((name["null_fraction"].as_f64().expect("fraction") - 0.1).abs() < 1e-9);
    let payload = columns["payload"];
    assert_eq!(num(payload, "null_count"), (PROFILED_ROWS / 4) as u64);
    assert_eq!(num(payload, "max_length"), 49);
    let amount = columns["amount"];
    assert_eq!(
        (&amount["min"], &amount["max"]),
        (&Value::from("0.0"), &Value::from("2999.5"))
    );
    let day = columns["day"];
    assert_eq!(
        (&day["min"], &day["max"]),
        (&Value::from("1970-01-01"), &Value::from("1970-12-31"))
    );
    assert_distinct(day, 365);
    assert_eq!(columns["amount"]["target_type"], "double precision");
    assert_eq!(columns["id"]["target_not_null"], true);

    // Splits add up; every partition has one row; the preview is the first rows of split 0.
    let splits = t["split_sizes"]["splits"].as_array().expect("splits");
    assert_eq!(splits.len(), 8);
    assert_eq!(
        splits.iter().map(|s| num(s, "rows")).sum::<u64>(),
        PROFILED_ROWS as u64
    );
    let histogram: u64 = t["split_sizes"]["histogram"]
        .as_array()
        .expect("histogram")
        .iter()
        .map(|b| num(b, "splits"))
        .sum();
    assert_eq!(histogram, 8);
    assert_eq!(t["largest_partitions"][0]["rows"], 1);
    assert_eq!(t["preview"]["rows"].as_array().map(Vec::len), Some(10));
    assert_eq!(t["preview"]["columns"][0], "id");
    // The ETA: measured read and encode rates, a load rate from the probe.
    let eta = &t["eta"];
    assert_eq!(num(eta, "rows"), PROFILED_ROWS as u64);
    assert_eq!(eta["load_rate_from"], "probe", "{eta}");
    assert!(
        eta["load_rows_per_s"].as_f64().expect("rate") > 0.0,
        "{eta}"
    );
    assert!(eta["total_s"].as_f64().expect("total") > 0.0, "{eta}");

    // Nothing was written: no row, no run state.
    let n: i64 = client
        .query_one("SELECT count(*) FROM dryrun_profiled", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(n, 0);
    assert_eq!(
        run_state_rows(&client, &run_id).await,
        0,
        "no ferry_state rows"
    );

    // A sample reads half the splits and scales up.
    let sampled = dry_run(&config, &["--sample", "50"], 0);
    let s = &sampled["tables"][0];
    assert_eq!(num(s, "splits_read"), 4);
    assert_eq!(num(s, "estimated_rows"), 2 * num(s, "rows_read"));
    assert_eq!(sampled["sample_percent"], 50.0);

    // The real run: its COPY bytes are the dry run's, and the statistics see exactly its rows
    // (so they would have seen any the dry runs had written).
    let migrated = support::migrate_ok(&config);
    let m = &migrated["tables"][0];
    assert_eq!(num(m, "rows_written"), PROFILED_ROWS as u64);
    assert_eq!(num(m, "copy_bytes"), num(t, "copy_bytes"));
    // Each backend reports its counts when it ends: wait for all of migrate's, then a little
    // longer, for any surplus to show.
    let mut after = inserted(&client, "public.dryrun_profiled").await;
    for _ in 0..100 {
        if after - inserted_before >= i64::from(PROFILED_ROWS) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        after = inserted(&client, "public.dryrun_profiled").await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    after = inserted(&client, "public.dryrun_profiled").await;
    assert_eq!(after - inserted_before, i64::from(PROFILED_ROWS));
}

const BAD_ROWS: i32 = 1_500;

/// Row `i` of the table seeded with bad values: (id, note, day, qty). A NUL in `note` every 53
/// rows, a date before PostgreSQL's range every 61, and a qty of 0 (which the transform turns
/// into NULL, into a NOT NULL column) every 37.
fn bad_row(i: i32) -> (i32, String, CqlDate, i32) {
    let note = if i % 53 == 5 {
        format!("bad\0{i}")
    } else {
        format!("note {i}")
    };
    let day = if i % 61 == 7 {
        CqlDate(0) // -5877641-06-23
    } else {
        CqlDate((1u32 << 31) + i as u32)
    };
    (i, note, day, i % 37)
}

/// The reject class of row `i` going into a target whose qty is NOT NULL (`qty_not_null`), as
/// the encoder (column by column) then the server would decide it.
fn bad_fate(i: i32, qty_not_null: bool) -> Option<(&'static str, &'static str)> {
    let (_, note, day, qty) = bad_row(i);
    if note.contains('\0') {
        Some(("note", "encoder:nul_character"))
    } else if day == CqlDate(0) {
        Some(("day", "encoder:out_of_range"))
    } else if qty == 0 && qty_not_null {
        Some(("qty", "target:23502"))
    } else {
        None
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn predicted_rejects_equal_what_migrate_rejects() {
    let session = support::cassandra().await;
    fresh_table(
        &session,
        "bad",
        "id int PRIMARY KEY, note text, day date, qty int",
    )
    .await;
    insert_all(
        &session,
        &format!("INSERT INTO {KEYSPACE}.bad (id, note, day, qty) VALUES (?, ?, ?, ?)"),
        (0..BAD_ROWS).map(bad_row).collect(),
    )
    .await;
    let client = support::postgres().await;
    client
        .batch_execute(
            "DROP TABLE IF EXISTS dryrun_bad; DROP TABLE IF EXISTS dryrun_bad_generated; \
             CREATE TABLE dryrun_bad (id int PRIMARY KEY, note text, day date, qty int NOT NULL)",
        )
        .await
        .expect("create target");
    let dir = support::scratch_dir("dryrun_bad");
    std::fs::write(
        dir.join("bad.sql"),
        "SELECT id, note, day, NULLIF(qty, 0) AS qty FROM source",
    )
    .expect("transform");
    // The same rows into the live table and into one `ferry schema` would create.
    let config = support::write_config(
        &dir,
        "splits = 4\nconnections = 2\ncreate_tables = true",
        &format!(
            "[[table]]\nsource = \"{KEYSPACE}.bad\"\ntarget = \"dryrun_bad\"\ntransform = \"bad.sql\"\n\n\
             [[table]]\nsource = \"{KEYSPACE}.bad\"\ntarget = \"dryrun_bad_generated\"\ntransform = \"bad.sql\""
        ),
    );
    let report = dry_run(&config, &[], 0);
    let dry = report["tables"].as_array().expect("tables");
    assert_eq!(dry[0]["checked_against"], "live-table");
    assert_eq!(dry[1]["checked_against"], "generated-ddl");
    assert!(
        dry[1]["generated_ddl"]
            .as_str()
            .is_some_and(|d| d.contains("dryrun_bad_generated")),
        "{}",
        dry[1]
    );
    let exists: bool = client
        .query_one(
            "SELECT to_regclass('dryrun_bad_generated') IS NOT NULL",
            &[],
        )
        .await
        .expect("to_regclass")
        .get(0);
    assert!(!exists, "the dry run creates no table");

    let migrated = support::migrate_ok(&config);
    let real = migrated["tables"].as_array().expect("tables");
    for (k, qty_not_null) in [(0, true), (1, false)] {
        let (d, m) = (&dry[k], &real[k]);
        // The oracle: what the seed says each row is.
        let mut expected: BTreeMap<String, u64> = BTreeMap::new();
        for i in 0..BAD_ROWS {
            if let Some((_, class)) = bad_fate(i, qty_not_null) {
                *expected.entry(class.to_string()).or_default() += 1;
            }
        }
        let predicted: BTreeMap<String, u64> =
            serde_json::from_value(d["rejects"]["by_reason"].clone()).expect("by_reason");
        let rejected: BTreeMap<String, u64> =
            serde_json::from_value(m["rejects_by_reason"].clone()).expect("rejects_by_reason");
        assert_eq!(predicted, expected, "{}", d["target"]);
        assert_eq!(
            rejected, predicted,
            "{}: migrate against the prediction",
            d["target"]
        );
        assert_eq!(num(&d["rejects"], "total"), num(m, "rows_rejected"));
        assert_eq!(
            num(d, "rows_read") - num(&d["rejects"], "total"),
            num(m, "rows_written")
        );
        // Row by row: the same split, row, column and SQLSTATE (fewer than 100 each, so both
        // lists are whole).
        let dry_rows: BTreeSet<(u64, u64, String, Option<String>)> = d["rejects"]["samples"]
            .as_array()
            .expect("samples")
            .iter()
            .map(|s| {
                let class = s["class"].as_str().expect("class");
                (
                    num(s, "split"),
                    num(s, "row"),
                    s["column"].as_str().expect("column").to_string(),
                    class.strip_prefix("target:").map(str::to_string),
                )
            })
            .collect();
        let real_rows: BTreeSet<(u64, u64, String, Option<String>)> = m["rejects"]
            .as_array()
            .expect("rejects")
            .iter()
            .map(|r| {
                (
                    num(r, "split"),
                    num(r, "row"),
                    r["column"].as_str().expect("column").to_string(),
                    r["sqlstate"].as_str().map(str::to_string),
                )
            })
            .collect();
        assert_eq!(dry_rows.len() as u64, num(m, "rows_rejected"));
        assert_eq!(dry_rows, real_rows, "{}", d["target"]);
        // Each sample carries its row: the id says which row it is, and the seed agrees.
        for s in d["rejects"]["samples"].as_array().expect("samples") {
            let id: i32 = s["values"][0]
                .as_str()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("an id in {s}"));
            let (column, class) = bad_fate(id, qty_not_null).expect("a bad row");
            assert_eq!(
                (s["column"].as_str(), s["class"].as_str()),
                (Some(column), Some(class))
            );
        }
    }
    let notes = dry[0]["rejects"]["not_predicted"].to_string();
    assert!(notes.contains("PRIMARY KEY (id)"), "{notes}");
}

/// Headless Chromium from `scripts/chromium.sh`.
fn chromium() -> PathBuf {
    for name in ["chromium", "chromium-browser"] {
        if let Ok(out) = Command::new("sh")
            .args(["-c", &format!("command -v {name}")])
            .output()
            && out.status.success()
        {
            return PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        }
    }
    panic!(
        "chromium is not installed: install it with `scripts/chromium.sh` (Debian's chromium package)"
    );
}

/// Loads `page` in headless Chromium, takes a screenshot into `png`, and returns the console
/// messages Chromium logged (`INFO:CONSOLE` lines: console calls, script errors, blocked loads).
fn render(page: &Path, png: &Path) -> Vec<String> {
    let url = format!("file://{}", page.display());
    let out = Command::new("timeout")
        .arg("120")
        .arg(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1300,2200",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--screenshot={}", png.display()))
        .arg(&url)
        .output()
        .expect("run chromium");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "chromium failed:\n{stderr}");
    let shot = std::fs::read(png).unwrap_or_else(|e| panic!("no screenshot: {e}\n{stderr}"));
    assert!(
        shot.starts_with(b"\x89PNG") && shot.len() > 10_000,
        "a real screenshot"
    );
    stderr
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_html_report_renders_in_chromium_without_console_errors() {
    let session = support::cassandra().await;
    fresh_table(
        &session,
        "page",
        "id int PRIMARY KEY, note text, day date, qty int",
    )
    .await;
    insert_all(
        &session,
        &format!("INSERT INTO {KEYSPACE}.page (id, note, day, qty) VALUES (?, ?, ?, ?)"),
        (0..300).map(bad_row).collect(),
    )
    .await;
    let dir = support::scratch_dir("dryrun_page");
    let config = support::write_config(
        &dir,
        "splits = 6",
        &format!("[[table]]\nsource = \"{KEYSPACE}.page\"\ntarget = \"dryrun_page_missing\""),
    );
    let html = dir.join("dry-run.html");
    // The target table is missing and create_tables is off: a problem, exit code 1.
    let report = dry_run(&config, &["--html", html.to_str().expect("utf-8")], 1);
    assert!(
        report["tables"][0]["problems"][0]
            .as_str()
            .is_some_and(|p| p.contains("does not exist")),
        "{report}"
    );

    // The method sees console errors: a page that logs one and throws.
    let control = dir.join("control.html");
    std::fs::write(
        &control,
        "<!DOCTYPE html><title>c</title><script>console.error('ferry-control'); nope();</script>",
    )
    .expect("control page");
    let seen = render(&control, &dir.join("control.png"));
    assert!(
        seen.iter().any(|l| l.contains("ferry-control")) && seen.iter().any(|l| l.contains("nope")),
        "{seen:?}"
    );

    let messages = render(&html, &dir.join("dry-run.png"));
    assert!(messages.is_empty(), "console messages: {messages:?}");
    let text = std::fs::read_to_string(&html).expect("html");
    assert_eq!(text.matches("<svg").count(), 4, "four charts");
    assert!(text.contains("ferry_dryrun.page"));
    assert!(text.contains("encoder:nul_character"));
}

#[tokio::test]
async fn explain_shows_splits_plans_pushdown_and_the_target() {
    let session = support::cassandra().await;
    fresh_table(
        &session,
        "explained",
        "id int PRIMARY KEY, note text, qty int",
    )
    .await;
    let dir = support::scratch_dir("dryrun_explain");
    std::fs::write(
        dir.join("t.sql"),
        "SELECT id, upper(note) AS note FROM source WHERE id = 7 AND qty > 3",
    )
    .expect("transform");
    let config = support::write_config(
        &dir,
        "splits = 3",
        &format!(
            "[[table]]\nsource = \"{KEYSPACE}.explained\"\ntarget = \"dryrun_explained_missing\"\n\
             transform = \"t.sql\""
        ),
    );
    let out = support::ferry(&["explain", "-c", config.to_str().expect("utf-8"), "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let t = &v["tables"][0];
    assert_eq!(t["splits"].as_array().map(Vec::len), Some(3));
    assert!(t["splits"][0]["replicas"][0].as_str().is_some(), "{t}");
    assert!(
        t["logical_plan"]
            .as_str()
            .is_some_and(|p| p.contains("TableScan"))
    );
    assert!(
        t["physical_plan"]
            .as_str()
            .is_some_and(|p| p.contains("CassandraScanExec"))
    );
    let pushdown = &t["pushdown"][0];
    let filters: Vec<(&str, &str)> = pushdown["filters"]
        .as_array()
        .expect("filters")
        .iter()
        .map(|f| {
            (
                f["filter"].as_str().unwrap_or(""),
                f["applied_by"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert!(
        filters
            .iter()
            .any(|(f, by)| f.contains("id") && *by == "cassandra"),
        "the key lookup goes to Cassandra: {filters:?}"
    );
    assert!(
        pushdown["cql"]
            .as_str()
            .is_some_and(|c| c.contains("\"id\" = ?")),
        "{pushdown}"
    );
    assert_eq!(t["unit_semantics"], "split");
    assert_eq!(t["mode"], "transactional");
    assert_eq!(t["target_table"]["exists"], false);
    assert!(
        t["target_table"]["ddl"]
            .as_str()
            .is_some_and(|d| d.contains("dryrun_explained_missing")),
        "{t}"
    );
    let text = support::ferry(&["explain", "-c", config.to_str().expect("utf-8")]);
    let text = String::from_utf8_lossy(&text.stdout);
    for needle in [
        "splits: 3",
        "logical plan:",
        "physical plan:",
        "pushed down",
        "CREATE TABLE",
    ] {
        assert!(text.contains(needle), "{needle} in:\n{text}");
    }
}

#[test]
fn a_dry_run_without_cassandra_fails_cleanly() {
    let dir = support::scratch_dir("dryrun_unreachable");
    let config = support::unreachable_cassandra_config(&dir);
    let out = support::ferry(&["dry-run", "-c", config.to_str().expect("utf-8")]);
    support::assert_clean_failure(&out, 1, &["cannot connect to Cassandra", "services.sh"]);
    let out = support::ferry(&[
        "dry-run",
        "-c",
        config.to_str().expect("utf-8"),
        "--sample",
        "0",
    ]);
    support::assert_clean_failure(&out, 2, &["not a percentage"]);
}
