//! Parquet staging end to end: `ferry dump` to a local directory, S3 (moto) and Azure (Azurite),
//! `ferry load` into PostgreSQL, checked row for row; dumps and loads killed with SIGKILL and
//! resumed; bad staged data refused before any row moves; the files read by pyarrow; `ferry query
//! --from`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ferry_benchmarks::datagen::QuickstartRow;
use ferry_connectors::staging::Manifest;
use uuid::Uuid;

use crate::migrate::{KEYSPACE, create_target, seed_source, source_hash, target_hash};
use crate::support;

const COLUMNS: &str = "account_id bigint NOT NULL, event_id uuid NOT NULL, kind text, \
                       amount double precision, ok boolean, seq integer, at timestamptz";

/// A fresh bucket in the moto S3 of `scripts/services.sh`; returns `s3://<bucket>`.
fn s3_bucket(name: &str) -> String {
    let endpoint = std::env::var("FERRY_S3_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "FERRY_S3_ENDPOINT is not set: the S3 tests use the moto server of \
             `scripts/services.sh up` (and `eval \"$(scripts/services.sh env)\"`)"
        )
    });
    let bucket = format!("{name}-{}", Uuid::new_v4().simple()).replace('_', "-");
    let out = Command::new("curl")
        .args(["-sS", "-f", "-X", "PUT", &format!("{endpoint}/{bucket}")])
        .output()
        .expect("run curl");
    assert!(
        out.status.success(),
        "cannot create bucket {bucket} at {endpoint} (is moto up? scripts/services.sh up): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    format!("s3://{bucket}")
}

/// The `[staging]` section for moto.
const MOTO: &str = "[staging]\nendpoint = \"${FERRY_S3_ENDPOINT}\"\nallow_http = true\n";

/// A fresh folder in the container of the Azurite of `scripts/services.sh up --azure`; returns
/// `az://<container>/<name>-<uuid>`.
fn azure_folder(name: &str) -> String {
    let container = std::env::var("FERRY_AZURE_CONTAINER").unwrap_or_else(|_| {
        panic!(
            "FERRY_AZURE_CONTAINER is not set: the Azure tests use the Azurite of \
             `scripts/services.sh up --azure` (and `eval \"$(scripts/services.sh env)\"`)"
        )
    });
    format!("az://{container}/{name}-{}", Uuid::new_v4().simple())
}

/// The `[staging]` section for Azurite: the account, its key and the endpoint, as a user would
/// point Ferry at any Azure-compatible blob endpoint.
const AZURITE: &str = "[staging.options]\n\
                       azure_storage_account_name = \"${FERRY_AZURE_ACCOUNT}\"\n\
                       azure_storage_account_key = \"${FERRY_AZURE_KEY}\"\n\
                       azure_storage_endpoint = \"${FERRY_AZURE_ENDPOINT}\"\n\
                       azure_allow_http = \"true\"\n";

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Runs `ferry ARGS…` with a report next to `config`, asserts success, returns the report.
pub(crate) fn ferry_ok(command: &str, config: &Path, args: &[&str]) -> serde_json::Value {
    let report = config.with_file_name(format!("{command}-report.json"));
    let mut all = vec![
        command,
        "-c",
        path_str(config),
        "--report",
        path_str(&report),
    ];
    all.extend_from_slice(args);
    let out = support::ferry(&all);
    assert!(
        out.status.success(),
        "ferry {all:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    support::read_report(&report)
}

fn manifest_at(table_dir: &Path) -> Manifest {
    let path = table_dir.join("_manifest.json");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Manifest::from_json(&bytes, &path.display().to_string()).expect("a valid manifest")
}

/// The names in a staged table's folder.
fn listing(table_dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(table_dir)
        .expect("staged folder")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect()
}

/// Row count and an order-independent digest of a PostgreSQL table, computed by the server.
async fn pg_digest(client: &tokio_postgres::Client, table: &str) -> (i64, String) {
    let row = client
        .query_one(
            &format!(
                "SELECT count(*), coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t::text)), '') \
                 FROM {table} t"
            ),
            &[],
        )
        .await
        .unwrap_or_else(|e| panic!("digest of {table}: {e}"));
    (row.get(0), row.get(1))
}

async fn drop_target(client: &tokio_postgres::Client, table: &str) {
    client
        .batch_execute(&format!("DROP TABLE IF EXISTS {table}"))
        .await
        .expect("drop target");
}

fn spawn_ferry(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .env("FERRY_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start ferry")
}

/// Waits until `done()` is true, failing if `child` ends first or 120 s pass.
async fn wait_for(child: &mut Child, what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done().await {
        assert!(
            child.try_wait().expect("poll ferry").is_none(),
            "ferry ended before it could be killed ({what})"
        );
        assert!(Instant::now() < deadline, "{what}: not reached in 120 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// 500k rows dumped to a local directory and to S3, each loaded into its own table: both equal
/// the source exactly. `ferry query --from` reads the staged rows without Cassandra.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_a_million_rows_through_local_disk_and_s3_exactly() {
    const ROWS: u64 = 500_000;
    let session = support::cassandra().await;
    let client = support::postgres().await;
    seed_source(&session, "staged_big", ROWS, 53).await;
    let source = source_hash(&session, "staged_big").await;
    assert_eq!(source.rows, ROWS);

    let dir = support::scratch_dir("staging_big");
    let local = dir.join("staged");
    let bucket = s3_bucket("ferry-staging-big");
    for (to, target) in [
        (path_str(&local).to_string(), "staged_big_local"),
        (format!("{bucket}/dumps/today"), "staged_big_s3"),
    ] {
        create_target(&client, target, COLUMNS).await;
        let config = support::write_config(
            &dir,
            "connections = 4\nsplits = 16",
            &format!(
                "[[table]]\nsource = \"{KEYSPACE}.staged_big\"\ntarget = \"{target}\"\n\n{MOTO}"
            ),
        );
        let dump = ferry_ok("dump", &config, &["--to", &to]);
        assert_eq!(dump["command"], "dump");
        assert_eq!(dump["status"], "ok", "{dump}");
        let t = &dump["tables"][0];
        assert_eq!(t["rows_written"], ROWS, "{t}");
        assert_eq!(t["units_done"], 16, "{t}");
        assert!(t["parquet_bytes"].as_u64().is_some_and(|b| b > 0), "{t}");

        let load = ferry_ok("load", &config, &["--from", &to]);
        assert_eq!(load["command"], "load");
        assert_eq!(load["status"], "ok", "{load}");
        let t = &load["tables"][0];
        assert_eq!(t["rows_written"], ROWS, "{t}");
        assert_eq!(t["source_rows"], ROWS, "{t}");
        assert_eq!(t["units_total"], 16, "{t}");
        assert_eq!(
            target_hash(&client, target).await,
            source,
            "{target} differs from the source"
        );

        // The staged rows, queried where they lie, with no Cassandra in the config at all.
        let out = support::ferry(&[
            "query",
            "--from",
            &to,
            "-c",
            path_str(&config),
            "--format",
            "json",
            &format!(
                "SELECT count(*) AS n, count(DISTINCT event_id) AS ids FROM {KEYSPACE}.staged_big"
            ),
        ]);
        assert!(
            out.status.success(),
            "query --from {to}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let rows = support::json_lines(&String::from_utf8_lossy(&out.stdout));
        assert_eq!(rows[0]["n"], ROWS);
        assert_eq!(rows[0]["ids"], ROWS);

        // A dry run over the staged rows reads them all and writes nothing; a 25% sample reads
        // 4 of the 16 staged splits and scales its figures up to the whole table.
        let report = dir.join("dry-run.json");
        for (sample, splits) in [(None, 16), (Some("25"), 4)] {
            let mut args = vec!["dry-run", "-c", path_str(&config), "--from", &to];
            args.extend(["--report", path_str(&report)]);
            if let Some(pct) = sample {
                args.extend(["--sample", pct]);
            }
            let out = support::ferry(&args);
            assert!(
                out.status.success(),
                "dry-run --from {to}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let r = support::read_report(&report);
            let t = &r["tables"][0];
            assert_eq!(t["splits_total"], 16, "{t}");
            assert_eq!(t["splits_read"], splits, "{t}");
            assert_eq!(t["rejects"]["total"], 0, "{t}");
            let estimated = t["estimated_rows"].as_u64().expect("estimated_rows");
            if sample.is_none() {
                assert_eq!(t["rows_read"], ROWS, "{t}");
                assert_eq!(estimated, ROWS, "{t}");
            } else {
                let read = t["rows_read"].as_u64().expect("rows_read");
                assert!(read > 0 && read < ROWS / 2, "{t}");
                let off = estimated.abs_diff(ROWS) as f64 / ROWS as f64;
                assert!(
                    off < 0.15,
                    "a 25% sample estimates {estimated} rows of {ROWS}"
                );
            }
        }
        assert_eq!(
            target_hash(&client, target).await,
            source,
            "the dry runs left {target} as the load wrote it"
        );
    }
    let manifest = manifest_at(&local.join(format!("{KEYSPACE}.staged_big")));
    assert!(manifest.complete);
    assert_eq!(manifest.rows, ROWS);
    assert_eq!(manifest.splits.len(), 16);
    assert_eq!(manifest.transform, None);
}

/// The torture table (every CQL type) dumped to disk, S3 and Azure and loaded into tables `load`
/// creates itself: each equals the table `migrate` loads from Cassandra, rejects included, and
/// pyarrow reads the staged files with the types a data engineer expects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_torture_table_through_staging_equals_a_migration() {
    const KS: &str = "ferry_staging_torture";
    let session = support::cassandra().await;
    let client = support::postgres().await;
    crate::torture::seed_into(&session, KS, "everything").await;
    let dir = support::scratch_dir("staging_torture");
    let local = dir.join("staged");
    let bucket = s3_bucket("ferry-staging-torture");
    let azure = azure_folder("staging-torture");
    let config_for = |target: &str, staging: &str| {
        support::write_config(
            &dir,
            "connections = 2\nsplits = 4\ncreate_tables = true",
            &format!("[[table]]\nsource = \"{KS}.everything\"\ntarget = \"{target}\"\n\n{staging}"),
        )
    };
    drop_target(&client, "staging_torture_migrated").await;
    let migrated = support::migrate_ok(&config_for("staging_torture_migrated", ""));
    let reference = pg_digest(&client, "staging_torture_migrated").await;
    let rejected = migrated["tables"][0]["rows_rejected"].clone();
    assert_eq!(
        reference.0 as u64 + rejected.as_u64().expect("rejects"),
        crate::torture::SEEDED_ROWS as u64
    );

    for (to, target, staging) in [
        (path_str(&local).to_string(), "staging_torture_local", ""),
        (bucket.clone(), "staging_torture_s3", MOTO),
        (azure.clone(), "staging_torture_az", AZURITE),
    ] {
        drop_target(&client, target).await;
        let config = config_for(target, staging);
        ferry_ok("dump", &config, &["--to", &to]);
        let load = ferry_ok("load", &config, &["--from", &to]);
        let t = &load["tables"][0];
        assert_eq!(t["rows_read"], crate::torture::SEEDED_ROWS as u64, "{t}");
        assert_eq!(t["rows_rejected"], rejected, "{t}");
        assert_eq!(
            t["rejects_by_reason"], migrated["tables"][0]["rejects_by_reason"],
            "{t}"
        );
        assert_eq!(
            pg_digest(&client, target).await,
            reference,
            "{target} differs from the migrated table"
        );
        // `create_tables` made the same table from the manifest as from Cassandra.
        let types = |t: &str| {
            let sql = format!(
                "SELECT string_agg(column_name || ' ' || data_type, ', ' ORDER BY ordinal_position) \
                 FROM information_schema.columns WHERE table_schema = 'public' AND table_name = '{t}'"
            );
            let client = &client;
            async move {
                client
                    .query_one(&sql, &[])
                    .await
                    .expect("columns")
                    .get::<_, String>(0)
            }
        };
        assert_eq!(types(target).await, types("staging_torture_migrated").await);
    }

    // Another Parquet reader: pyarrow, from PyPI.
    let folder = local.join(format!("{KS}.everything"));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/pyarrow.sh");
    let out = Command::new(&script)
        .args(["check_staged_parquet.py", path_str(&folder)])
        .args([
            "--sample-column",
            "c_decimal",
            "--sample-column",
            "c_varint",
        ])
        .output()
        .expect("run scripts/pyarrow.sh");
    assert!(
        out.status.success(),
        "pyarrow cannot read the staged files as expected:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: serde_json::Value = serde_json::from_slice(&out.stdout).expect("the script's JSON");
    assert_eq!(seen["rows"], crate::torture::SEEDED_ROWS as u64, "{seen}");
    let types = &seen["types"];
    assert_eq!(types["c_timestamp"], "timestamp[ms, tz=UTC]", "{types}");
    assert!(
        ["extension<arrow.uuid>", "fixed_size_binary[16]", "uuid"]
            .contains(&types["c_uuid"].as_str().unwrap_or_default()),
        "{types}"
    );
    assert_eq!(types["c_decimal"], "string", "{types}");
    assert_eq!(types["c_date"], "date32[day]", "{types}");
    // Decimals exactly as Cassandra holds them: every digit of pi's 80, a negative scale.
    let decimals: Vec<&str> = seen["samples"]["c_decimal"]
        .as_array()
        .expect("samples")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    for exact in [
        "3.14159265358979323846264338327950288419716939937510582097494459230781640628620899",
        "-0.00000000000000000000000000000000000000000000000001",
        "1000000000000000000000000000000",
    ] {
        assert!(decimals.contains(&exact), "{exact} not in {decimals:?}");
    }
    let varints = &seen["samples"]["c_varint"];
    assert!(
        varints
            .as_array()
            .expect("samples")
            .iter()
            .any(|v| v == "-1000000000000000000000000000000000000000000000000000000000000"),
        "{varints}"
    );
}

/// A dump killed with SIGKILL halfway, then run again, leaves the same manifest and files as a
/// dump that was never interrupted; what the killed one left unfinished is deleted, never read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_dump_resumes_to_what_an_uninterrupted_dump_writes() {
    const ROWS: u64 = 60_000;
    const SPLITS: usize = 30;
    let session = support::cassandra().await;
    let client = support::postgres().await;
    seed_source(&session, "staged_resume", ROWS, 59).await;
    let dir = support::scratch_dir("staging_dump_resume");
    // One split at a time, small pages: slow enough to be killed halfway.
    let config = support::write_config_with_source(
        &dir,
        "page_size = 200",
        &format!("connections = 1\nsplits = {SPLITS}"),
        &format!("[[table]]\nsource = \"{KEYSPACE}.staged_resume\"\ntarget = \"staged_resume\""),
    );
    let whole = dir.join("whole");
    ferry_ok("dump", &config, &["--to", path_str(&whole)]);
    let killed = dir.join("killed");
    let killed_table = killed.join(format!("{KEYSPACE}.staged_resume"));
    let mut child = spawn_ferry(&["dump", "-c", path_str(&config), "--to", path_str(&killed)]);
    wait_for(&mut child, "3 splits dumped", async || {
        std::fs::read(killed_table.join("_manifest.json"))
            .ok()
            .and_then(|b| Manifest::from_json(&b, "m").ok())
            .is_some_and(|m| m.splits.iter().filter(|s| s.done).count() >= 3)
    })
    .await;
    child.kill().expect("kill ferry");
    child.wait().expect("reap ferry");
    let at_kill = manifest_at(&killed_table);
    let done = at_kill.splits.iter().filter(|s| s.done).count();
    assert!(
        !at_kill.complete && done < SPLITS,
        "finished before the kill"
    );

    // A load of the unfinished dump is refused, naming the manifest.
    create_target(&client, "staged_resume", COLUMNS).await;
    let out = support::ferry(&["load", "-c", path_str(&config), "--from", path_str(&killed)]);
    support::assert_clean_failure(
        &out,
        1,
        &["_manifest.json", "the dump is not finished", "ferry"],
    );

    // Leftovers a crash can leave: a finished file no done split lists, and an unfinished write.
    let stray = killed_table.join(format!("split-{:05}-000.parquet", SPLITS - 1));
    std::fs::write(&stray, b"not parquet").expect("stray file");
    let partial = killed_table.join(format!("split-{:05}-000.parquet#12", SPLITS - 2));
    std::fs::write(&partial, b"PAR1 half").expect("partial file");

    let report = ferry_ok("dump", &config, &["--to", path_str(&killed)]);
    let t = &report["tables"][0];
    assert_eq!(t["units_skipped"], done as u64, "{t}");
    assert_eq!(t["units_done"], SPLITS as u64, "{t}");

    let (a, b) = (
        manifest_at(&whole.join(format!("{KEYSPACE}.staged_resume"))),
        manifest_at(&killed_table),
    );
    assert!(b.complete);
    // Split by split: token ranges, rows, bytes, content hashes, file names and sizes. (Not the
    // bytes themselves: the Arrow schema in each footer holds field metadata maps, whose order
    // varies from process to process.)
    assert_eq!(a.splits, b.splits);
    assert_eq!(
        (a.rows, a.bytes, &a.cassandra_schema, &a.transform),
        (b.rows, b.bytes, &b.cassandra_schema, &b.transform)
    );
    assert_eq!(
        a.arrow_schema.decode("a").expect("schema"),
        b.arrow_schema.decode("b").expect("schema")
    );
    assert_eq!(a.rows, ROWS);
    let mut expected: BTreeSet<String> = b.files().map(|f| f.path.clone()).collect();
    expected.insert("_manifest.json".into());
    assert_eq!(listing(&killed_table), expected, "no leftover file stays");
    // And it loads exactly.
    ferry_ok("load", &config, &["--from", path_str(&killed)]);
    assert_eq!(
        target_hash(&client, "staged_resume").await,
        source_hash(&session, "staged_resume").await
    );
}

/// A load killed with SIGKILL halfway, then run again, loads every staged row exactly once;
/// the transform (the dump was raw) is applied at load time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_load_resumes_exactly() {
    const ROWS: u64 = 60_000;
    const SPLITS: i64 = 30;
    const SEED: u64 = 61;
    let session = support::cassandra().await;
    let client = support::postgres().await;
    seed_source(&session, "staged_load_resume", ROWS, SEED).await;
    // No primary key: a unit loaded twice would show as duplicate rows.
    create_target(
        &client,
        "staged_load_resume",
        "account_id bigint NOT NULL, event_id uuid NOT NULL, kind text, at timestamptz",
    )
    .await;
    let dir = support::scratch_dir("staging_load_resume");
    std::fs::write(
        dir.join("upper.sql"),
        "SELECT account_id, event_id, upper(kind) AS kind, at FROM source\n",
    )
    .expect("transform");
    let run_id = support::unique_run_id(&dir);
    let config = support::write_config(
        &dir,
        &format!("connections = 1\nsplits = {SPLITS}\nid = \"{run_id}\""),
        &format!(
            "[[table]]\nsource = \"{KEYSPACE}.staged_load_resume\"\ntarget = \"staged_load_resume\"\n\
             transform = \"upper.sql\"\n\n[staging]\nurl = \"staged\"\nraw = true\n"
        ),
    );
    // `staging.url` is relative to the config file.
    let dump = ferry_ok("dump", &config, &[]);
    assert_eq!(dump["tables"][0]["rows_written"], ROWS);
    let staged = dir
        .join("staged")
        .join(format!("{KEYSPACE}.staged_load_resume"));
    assert_eq!(manifest_at(&staged).transform, None, "a raw dump");

    let mut child = spawn_ferry(&["load", "-c", path_str(&config)]);
    support::wait_for_units(&client, &run_id, 3, &mut child, None, "before the kill").await;
    child.kill().expect("kill ferry");
    child.wait().expect("reap ferry");
    let row = client
        .query_one(
            "SELECT count(*), coalesce(sum(rows_written), 0)::bigint FROM ferry_state.units \
             WHERE run_id = $1",
            &[&run_id],
        )
        .await
        .expect("checkpoints");
    let (units, rows): (i64, i64) = (row.get(0), row.get(1));
    assert!(units < SPLITS, "the load finished before the kill");
    let count: i64 = client
        .query_one("SELECT count(*) FROM staged_load_resume", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(count, rows, "the target holds exactly the committed units");

    let report = ferry_ok("load", &config, &[]);
    let t = &report["tables"][0];
    assert_eq!(t["units_skipped"], units, "{t}");
    assert_eq!(t["units_done"], SPLITS, "{t}");
    assert_eq!(
        t["rows_written"].as_i64().expect("rows") + rows,
        ROWS as i64
    );

    let mut expected: Vec<String> = (0..ROWS)
        .map(|i| QuickstartRow::generate(SEED, i))
        .map(|r| {
            format!(
                "{}|{}|{:?}|{:?}",
                r.account_id,
                r.event_id,
                r.kind.map(|k| k.to_uppercase()),
                r.at
            )
        })
        .collect();
    let mut actual: Vec<String> = client
        .query(
            "SELECT account_id, event_id, kind, at FROM staged_load_resume",
            &[],
        )
        .await
        .expect("target rows")
        .iter()
        .map(|r| {
            let at: Option<chrono::DateTime<chrono::Utc>> = r.get(3);
            format!(
                "{}|{}|{:?}|{:?}",
                r.get::<_, i64>(0),
                r.get::<_, Uuid>(1),
                r.get::<_, Option<String>>(2),
                at.map(|t| t.timestamp_millis())
            )
        })
        .collect();
    expected.sort();
    actual.sort();
    assert_eq!(actual.len(), expected.len());
    assert!(
        actual == expected,
        "the loaded rows differ from the source's"
    );
}

/// A transform applied at dump time is recorded in the manifest and not applied again by the
/// load; the staged rows are the transform's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transform_applied_at_dump_time_is_not_applied_again() {
    const ROWS: u64 = 5_000;
    const SEED: u64 = 67;
    let session = support::cassandra().await;
    let client = support::postgres().await;
    seed_source(&session, "staged_transformed", ROWS, SEED).await;
    create_target(
        &client,
        "staged_transformed",
        "account_id bigint NOT NULL, event_id uuid NOT NULL, amount_cents bigint",
    )
    .await;
    let dir = support::scratch_dir("staging_transformed");
    std::fs::write(
        dir.join("cents.sql"),
        "SELECT account_id, event_id, CAST(round(amount * 100) AS BIGINT) AS amount_cents \
         FROM source WHERE ok\n",
    )
    .expect("transform");
    let config = support::write_config(
        &dir,
        "connections = 2\nsplits = 8",
        &format!(
            "[[table]]\nsource = \"{KEYSPACE}.staged_transformed\"\ntarget = \"staged_transformed\"\n\
             transform = \"cents.sql\""
        ),
    );
    let staged = dir.join("staged");
    ferry_ok("dump", &config, &["--to", path_str(&staged)]);
    let manifest = manifest_at(&staged.join(format!("{KEYSPACE}.staged_transformed")));
    assert_eq!(
        manifest.transform.as_ref().map(|t| t.file.as_str()),
        Some("cents.sql")
    );
    let names: Vec<&str> = manifest
        .arrow_schema
        .fields
        .iter()
        .map(|f| f.name.as_str())
        .collect();
    assert_eq!(names, ["account_id", "event_id", "amount_cents"]);
    ferry_ok("load", &config, &["--from", path_str(&staged)]);
    let mut expected: Vec<(i64, Uuid, Option<i64>)> = (0..ROWS)
        .map(|i| QuickstartRow::generate(SEED, i))
        .filter(|r| r.ok == Some(true))
        .map(|r| {
            (
                r.account_id,
                r.event_id,
                r.amount.map(|a| (a * 100.0).round() as i64),
            )
        })
        .collect();
    let mut actual: Vec<(i64, Uuid, Option<i64>)> = client
        .query(
            "SELECT account_id, event_id, amount_cents FROM staged_transformed",
            &[],
        )
        .await
        .expect("rows")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    expected.sort();
    actual.sort();
    assert!(!expected.is_empty());
    assert_eq!(actual, expected);
}

/// Staged data that is not what its manifest says is refused with the file named, before any
/// table loads a row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_staged_data_is_refused_naming_the_file_before_any_row_loads() {
    let session = support::cassandra().await;
    let client = support::postgres().await;
    seed_source(&session, "staged_good", 2_000, 71).await;
    seed_source(&session, "staged_bad", 2_000, 73).await;
    let dir = support::scratch_dir("staging_bad_input");
    let config = support::write_config(
        &dir,
        "connections = 2\nsplits = 4",
        &format!(
            "[[table]]\nsource = \"{KEYSPACE}.staged_good\"\ntarget = \"staged_good\"\n\
             [[table]]\nsource = \"{KEYSPACE}.staged_bad\"\ntarget = \"staged_bad\""
        ),
    );
    let staged = dir.join("staged");
    ferry_ok("dump", &config, &["--to", path_str(&staged)]);
    let bad = staged.join(format!("{KEYSPACE}.staged_bad"));
    let manifest_path = bad.join("_manifest.json");
    let good_manifest = std::fs::read(&manifest_path).expect("manifest");
    let manifest = manifest_at(&bad);
    let file: PathBuf = bad.join(&manifest.files().next().expect("a file").path);
    let good_file = std::fs::read(&file).expect("file");

    let load = |expect: &[&str]| {
        let out = support::ferry(&["load", "-c", path_str(&config), "--from", path_str(&staged)]);
        support::assert_clean_failure(&out, 1, expect);
    };
    let nothing_loaded = async || {
        for t in ["staged_good", "staged_bad"] {
            let n: i64 = client
                .query_one(&format!("SELECT count(*) FROM {t}"), &[])
                .await
                .expect("count")
                .get(0);
            assert_eq!(n, 0, "{t} was partly loaded");
        }
    };
    for t in ["staged_good", "staged_bad"] {
        create_target(&client, t, COLUMNS).await;
    }
    let manifest_name = manifest_path.display().to_string();

    // No manifest.
    std::fs::remove_file(&manifest_path).expect("remove");
    load(&[&manifest_name, "no such file"]);
    // A corrupt (truncated) manifest.
    std::fs::write(&manifest_path, &good_manifest[..good_manifest.len() / 2]).expect("truncate");
    load(&[&manifest_name, "corrupt or truncated"]);
    // A manifest of a newer format.
    let mut newer: serde_json::Value = serde_json::from_slice(&good_manifest).expect("json");
    newer["format_version"] = serde_json::json!(99);
    std::fs::write(&manifest_path, newer.to_string()).expect("write");
    load(&[&manifest_name, "format_version 99 is newer"]);
    std::fs::write(&manifest_path, &good_manifest).expect("restore");
    // A listed file is missing.
    std::fs::remove_file(&file).expect("remove");
    load(&[
        &file.display().to_string(),
        "listed in the manifest but missing",
    ]);
    // A listed file holds another schema (same name, the manifest's size and rows).
    std::fs::write(&file, &good_file).expect("restore");
    let mut other = manifest.clone();
    let name = file
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    let other_schema =
        ferry_connectors::staging::manifest::ArrowSchema::of(&arrow::datatypes::Schema::new(vec![
            arrow::datatypes::Field::new("account_id", arrow::datatypes::DataType::Int64, false),
        ]));
    other.arrow_schema = other_schema;
    std::fs::write(&manifest_path, other.to_json()).expect("write");
    load(&[&name, "schema differs from the manifest's"]);
    nothing_loaded().await;

    // Restored, everything loads.
    std::fs::write(&manifest_path, &good_manifest).expect("restore");
    ferry_ok("load", &config, &["--from", path_str(&staged)]);
    for t in ["staged_good", "staged_bad"] {
        assert_eq!(
            target_hash(&client, t).await,
            source_hash(&session, t).await
        );
    }
}
