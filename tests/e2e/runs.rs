//! Runs as users drive them: a whole keyspace from one `[[keyspace]]` entry, `ferry status`,
//! Ctrl-C (SIGINT) leaving a resumable run, and transforms that regroup rows across splits
//! running as one whole-table unit.

use std::process::{Command, Stdio};

use ferry_benchmarks::datagen::{self, Shape};

use crate::migrate::{
    KEYSPACE, create_target, seed_source, source_hash, source_hash_in, target_hash,
};
use crate::support;

const QUICKSTART_COLUMNS: &str = "account_id bigint NOT NULL, event_id uuid NOT NULL, kind text, \
     amount double precision, ok boolean, seq integer, at timestamptz, \
     PRIMARY KEY (account_id, event_id)";

/// Keyspace `ks` made afresh, holding a `quickstart` table of `rows` rows per name (seeds
/// `seed`, `seed + 1`, …).
async fn fresh_keyspace(
    session: &std::sync::Arc<scylla::client::session::Session>,
    ks: &str,
    tables: &[&str],
    rows: u64,
    seed: u64,
) {
    support::cql(session, &format!("DROP KEYSPACE IF EXISTS {ks}")).await;
    support::keyspace(session, ks).await;
    for (table, seed) in tables.iter().zip(seed..) {
        support::cql(session, &Shape::Quickstart.create_table_cql(ks, table)).await;
        datagen::generate(session, Shape::Quickstart, ks, table, rows, seed)
            .await
            .expect("seed");
    }
}

/// The target of each table of a report, in report order.
fn report_targets(report: &serde_json::Value) -> Vec<&str> {
    report["tables"]
        .as_array()
        .expect("tables")
        .iter()
        .map(|t| t["target"].as_str().expect("target"))
        .collect()
}

async fn count(client: &tokio_postgres::Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).await.expect(sql).get(0)
}

/// `[[keyspace]]` with an exclude pattern, its own target schema, `create_tables`, and a
/// transforms directory holding a file for one of its tables; then `ferry status`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyspace_entry_moves_the_tables_its_patterns_select() {
    const KS: &str = "ferry_runs_keyspace";
    const ROWS: u64 = 3_000;
    let session = support::cassandra().await;
    let client = support::postgres().await;
    fresh_keyspace(
        &session,
        KS,
        &["orders", "payments", "tmp_scratch"],
        ROWS,
        70,
    )
    .await;
    client
        .batch_execute("DROP SCHEMA IF EXISTS runs_keyspace CASCADE; CREATE SCHEMA runs_keyspace")
        .await
        .expect("target schema");

    let dir = support::scratch_dir("runs_keyspace");
    std::fs::create_dir_all(dir.join("transforms")).expect("transforms dir");
    std::fs::write(
        dir.join("transforms/payments.sql"),
        "SELECT account_id, event_id, upper(kind) AS kind, amount, ok, seq, at\nFROM source\n",
    )
    .expect("transform");
    let config = support::write_config(
        &dir,
        "connections = 2\nsplits = 8",
        &format!(
            "[[keyspace]]\nname = \"{KS}\"\nexclude = [\"tmp_*\"]\ntarget_schema = \"runs_keyspace\"\n\
             transforms = \"transforms\"\ncreate_tables = true\n"
        ),
    );
    let report = support::migrate_ok(&config);
    let targets = report_targets(&report);
    assert_eq!(
        targets,
        ["runs_keyspace.orders", "runs_keyspace.payments"],
        "tables in name order, tmp_scratch excluded"
    );
    let excluded = count(
        &client,
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'runs_keyspace' AND tablename = 'tmp_scratch'",
    )
    .await;
    assert_eq!(excluded, 0, "the excluded table was not created");
    // No transform file: identity, exact. With one: applied.
    assert_eq!(
        target_hash(&client, "runs_keyspace.orders").await,
        source_hash_in(&session, KS, "orders").await
    );
    assert_eq!(
        count(&client, "SELECT count(*) FROM runs_keyspace.payments").await,
        ROWS as i64
    );
    assert_eq!(
        count(
            &client,
            "SELECT count(*) FROM runs_keyspace.payments WHERE kind IS DISTINCT FROM upper(kind)"
        )
        .await,
        0
    );

    // `ferry status` reads the run back from the target alone.
    let out = support::ferry(&["status", "-c", config.to_str().expect("utf-8"), "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let state: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status JSON");
    assert_eq!(state["status"], "finished");
    assert_eq!(state["attempts"], 1);
    let tables = state["tables"].as_array().expect("tables");
    assert_eq!(tables.len(), 2);
    for t in tables {
        assert_eq!(t["units_done"], 8, "{t}");
        assert_eq!(t["units_total"], 8, "{t}");
        assert_eq!(t["rows_written"], ROWS, "{t}");
        assert_eq!(t["rows_rejected"], 0, "{t}");
        assert!(t["rows_per_s"].as_f64().expect("rate") > 0.0, "{t}");
        assert!(t["eta_s"].is_null(), "nothing left: {t}");
    }
    let out = support::ferry(&["status", "-c", config.to_str().expect("utf-8")]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("runs_keyspace.orders") && text.contains("8/8") && text.contains("3,000"),
        "{text}"
    );
    let out = support::ferry(&[
        "status",
        "-c",
        config.to_str().expect("utf-8"),
        "--run-id",
        "no-such-run",
    ]);
    support::assert_clean_failure(&out, 1, &["no run `no-such-run`"]);

    // A keyspace that does not exist, or patterns that select nothing: errors before any work.
    let bad = support::write_config(
        &dir,
        "connections = 1",
        &format!("[[keyspace]]\nname = \"{KS}\"\ninclude = [\"nothing_*\"]\n"),
    );
    let out = support::ferry(&["migrate", "-c", bad.to_str().expect("utf-8")]);
    support::assert_clean_failure(&out, 1, &["select none of its tables", "orders"]);
}

/// SIGINT in the middle of a table: the units in flight finish, no new one starts, the exit
/// code is 130, the run state says `interrupted`, and running again loads exactly the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_stops_cleanly_and_the_run_resumes() {
    const ROWS: u64 = 60_000;
    const UNITS: i64 = 30;
    let session = support::cassandra().await;
    let client = support::postgres().await;
    seed_source(&session, "interrupt", ROWS, 43).await;
    create_target(&client, "e2e_interrupt", QUICKSTART_COLUMNS).await;

    let dir = support::scratch_dir("runs_interrupt");
    let run_id = support::unique_run_id(&dir);
    let config = support::write_config_with_source(
        &dir,
        "page_size = 200",
        &format!("connections = 1\nsplits = {UNITS}\nid = \"{run_id}\""),
        &format!("[[table]]\nsource = \"{KEYSPACE}.interrupt\"\ntarget = \"e2e_interrupt\""),
    );
    let report_path = dir.join("report.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["migrate", "--config", config.to_str().expect("utf-8")])
        .arg("--report")
        .arg(&report_path)
        .env("FERRY_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ferry migrate");
    support::wait_for_units(&client, &run_id, 3, &mut child, None, "before SIGINT").await;
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("send SIGINT");
    assert!(kill.success());
    let out = child.wait_with_output().expect("wait for ferry");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("stopping"), "{stderr}");
    let report = support::read_report(&report_path);
    assert_eq!(report["interrupted"], true);
    assert_eq!(report["status"], "failed");
    let state = client
        .query_one(
            "SELECT status FROM ferry_state.runs WHERE run_id = $1",
            &[&run_id],
        )
        .await
        .expect("run row")
        .get::<_, String>(0);
    assert_eq!(state, "interrupted");
    // Nothing half-done: the target holds exactly the committed units' rows.
    let (units, rows): (i64, i64) = {
        let r = client
            .query_one(
                "SELECT count(*), coalesce(sum(rows_written), 0)::bigint FROM ferry_state.units \
                 WHERE run_id = $1",
                &[&run_id],
            )
            .await
            .expect("checkpoints");
        (r.get(0), r.get(1))
    };
    assert!(units < UNITS, "stopped before the end ({units} units)");
    assert_eq!(
        count(&client, "SELECT count(*) FROM e2e_interrupt").await,
        rows
    );

    let report = support::migrate_ok(&config);
    assert_eq!(report["tables"][0]["units_skipped"], units);
    assert_eq!(report["interrupted"], false);
    assert_eq!(
        target_hash(&client, "e2e_interrupt").await,
        source_hash(&session, "interrupt").await
    );
}

/// An aggregation regroups rows across splits: the runner says so, runs the table as one
/// whole-table unit, and the target holds exactly the aggregate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aggregating_transform_runs_as_one_whole_table_unit() {
    const ROWS: u64 = 5_000;
    let session = support::cassandra().await;
    let client = support::postgres().await;
    seed_source(&session, "aggregate", ROWS, 44).await;
    create_target(
        &client,
        "e2e_aggregate",
        "account_id bigint PRIMARY KEY, events bigint NOT NULL, total double precision",
    )
    .await;
    let dir = support::scratch_dir("runs_aggregate");
    std::fs::write(
        dir.join("per_account.sql"),
        "SELECT account_id, count(*) AS events, sum(amount) AS total\nFROM source\nGROUP BY account_id\n",
    )
    .expect("transform");
    let config = support::write_config(
        &dir,
        "connections = 4\nsplits = 12",
        &format!(
            "[[table]]\nsource = \"{KEYSPACE}.aggregate\"\ntarget = \"e2e_aggregate\"\n\
             transform = \"per_account.sql\""
        ),
    );
    let report = support::migrate_ok(&config);
    let t = &report["tables"][0];
    assert_eq!(t["unit_semantics"], "whole-table");
    assert_eq!(t["units_total"], 1);
    assert_eq!(t["source_rows"], ROWS);

    // The expected aggregate, computed from the source rows by the test itself.
    let mut expected = std::collections::BTreeMap::<i64, i64>::new();
    let rows = session
        .query_unpaged(format!("SELECT account_id FROM {KEYSPACE}.aggregate"), ())
        .await
        .expect("read source")
        .into_rows_result()
        .expect("rows");
    for row in rows.rows::<(i64,)>().expect("typed") {
        *expected.entry(row.expect("row").0).or_default() += 1;
    }
    let got: std::collections::BTreeMap<i64, i64> = client
        .query("SELECT account_id, events FROM e2e_aggregate", &[])
        .await
        .expect("read target")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(got, expected);
    assert_eq!(t["rows_written"], expected.len());
}

/// `--tables` picks a subset of the config's tables, after `[[keyspace]]` entries expand; a
/// name that matches none is refused, naming the tables there are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_picks_a_subset_of_the_config() {
    const KS: &str = "ferry_runs_subset";
    let session = support::cassandra().await;
    let client = support::postgres().await;
    fresh_keyspace(&session, KS, &["alpha", "beta"], 500, 80).await;
    client
        .batch_execute("DROP SCHEMA IF EXISTS runs_subset CASCADE; CREATE SCHEMA runs_subset")
        .await
        .expect("target schema");
    let dir = support::scratch_dir("runs_subset");
    let config = support::write_config(
        &dir,
        "splits = 4",
        &format!(
            "[[keyspace]]\nname = \"{KS}\"\ntarget_schema = \"runs_subset\"\ncreate_tables = true\n"
        ),
    );
    let path = config.to_str().expect("utf-8");

    let report = support::migrate_ok_with(&config, &["--tables", "beta"]);
    let targets = report_targets(&report);
    assert_eq!(targets, ["runs_subset.beta"]);
    let created = count(
        &client,
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'runs_subset'",
    )
    .await;
    assert_eq!(created, 1, "only beta's table was created");
    assert_eq!(
        target_hash(&client, "runs_subset.beta").await,
        source_hash_in(&session, KS, "beta").await
    );

    // Known only once the keyspace is listed: the run fails before any table starts.
    let out = support::ferry(&["migrate", "-c", path, "--tables", "gamma"]);
    support::assert_clean_failure(
        &out,
        1,
        &["--tables: no table \"gamma\"", "ferry_runs_subset.alpha"],
    );

    // Explicit [[table]] entries: checked before anything connects (bad input, exit 2), and
    // every command that reads tables takes the option.
    let config = support::write_config(
        &dir,
        "splits = 4",
        &format!(
            "[[table]]\nsource = \"{KS}.alpha\"\ntarget = \"runs_subset.alpha\"\n\
             [[table]]\nsource = \"{KS}.beta\"\ntarget = \"runs_subset.beta\"\n"
        ),
    );
    let path = config.to_str().expect("utf-8");
    let out = support::ferry(&["explain", "-c", path, "--tables", "runs_subset.alpha"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains(&format!("{KS}.alpha")), "{text}");
    assert!(!text.contains(&format!("{KS}.beta")), "{text}");
    for command in [
        "migrate", "dump", "dry-run", "explain", "schema", "validate",
    ] {
        let out = support::ferry(&[command, "-c", path, "--tables", "alpha,nope"]);
        support::assert_clean_failure(
            &out,
            2,
            &[
                "--tables: no table \"nope\"",
                &format!("{KS}.alpha, {KS}.beta"),
            ],
        );
    }
}
