//! Rows the target refuses (NOT NULL, CHECK, duplicate key) become rejects carrying the server's
//! message, and every other row of the same units is loaded. Rejected rows, the encoder's and the
//! server's, land in Parquet files with their values.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{
    DataType, Int32Type, Int64Type, IntervalMonthDayNanoType, UInt32Type, UInt64Type,
};
use datafusion::prelude::SessionContext;
use ferry_connectors::cassandra::{
    CassandraConfig, CassandraTable, SourceTable, SplitCount, connect, plan_splits,
};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use scylla::value::CqlDuration;

use crate::support;

const KEYSPACE: &str = "ferry_refusals";
const ROWS: i32 = 2_000;

/// (id, code, qty) of source row `i`: a NULL qty every 97 rows, a negative one every 89, and
/// pairs of rows sharing a code every 50.
fn row(i: i32) -> (i32, String, Option<i32>) {
    let code = match i % 50 {
        7 | 8 => format!("dup{}", i / 50),
        _ => format!("c{i}"),
    };
    let qty = if i % 97 == 0 {
        None
    } else if i % 89 == 1 {
        Some(-i)
    } else {
        Some(i)
    };
    (i, code, qty)
}

#[tokio::test]
async fn refused_rows_become_rejects_with_the_servers_message() {
    let session = support::cassandra().await;
    support::keyspace(&session, KEYSPACE).await;
    support::recreate_table(
        &session,
        &format!("CREATE TABLE {KEYSPACE}.items (id int PRIMARY KEY, code text, qty int)"),
    )
    .await;
    let insert = session
        .prepare(format!(
            "INSERT INTO {KEYSPACE}.items (id, code, qty) VALUES (?, ?, ?)"
        ))
        .await
        .expect("prepare");
    for i in 0..ROWS {
        session
            .execute_unpaged(&insert, row(i))
            .await
            .expect("insert");
    }
    let client = support::postgres().await;
    client
        .batch_execute(
            "DROP TABLE IF EXISTS refusal_items; \
             CREATE TABLE refusal_items (id int PRIMARY KEY, code text UNIQUE, \
             qty int NOT NULL CHECK (qty >= 0))",
        )
        .await
        .expect("create target");

    let dir = support::scratch_dir("refusals");
    let config = support::write_config(
        &dir,
        "splits = 4",
        &format!("[[table]]\nsource = \"{KEYSPACE}.items\"\ntarget = \"refusal_items\""),
    );
    let report = support::migrate_ok(&config);
    let table = &report["tables"][0];

    // What the server must refuse, by SQLSTATE: one row of each duplicate pair loads.
    let mut expected: BTreeMap<&str, u64> = BTreeMap::new();
    let mut codes = HashSet::new();
    let mut loaded = 0u64;
    for i in 0..ROWS {
        let (_, code, qty) = row(i);
        match qty {
            None => *expected.entry("23502").or_default() += 1,
            Some(q) if q < 0 => *expected.entry("23514").or_default() += 1,
            Some(_) if !codes.insert(code) => *expected.entry("23505").or_default() += 1,
            Some(_) => loaded += 1,
        }
    }
    let refused: u64 = expected.values().sum();
    assert_eq!(table["rows_read"], serde_json::json!(ROWS));
    assert_eq!(table["rows_written"], serde_json::json!(loaded));
    assert_eq!(table["rows_rejected"], serde_json::json!(refused));

    let mut actual: BTreeMap<&str, u64> = BTreeMap::new();
    let rejects = table["rejects"].as_array().expect("reject samples");
    assert_eq!(
        rejects.len() as u64,
        refused,
        "fewer rejects than samples kept"
    );
    for reject in rejects {
        let reason = reject["reason"].as_str().expect("a reason");
        assert!(reason.contains("the target refused the row"), "{reason}");
        let state = ["23502", "23514", "23505"]
            .into_iter()
            .find(|s| reason.contains(s))
            .unwrap_or_else(|| panic!("unexpected refusal: {reason}"));
        match state {
            "23502" => {
                assert!(reason.contains("null value"), "{reason}");
                assert_eq!(reject["column"], "qty");
            }
            "23514" => assert!(reason.contains("check constraint"), "{reason}"),
            _ => assert!(reason.contains("duplicate key"), "{reason}"),
        }
        *actual.entry(state).or_default() += 1;
    }
    assert_eq!(actual, expected);

    // The target holds exactly the good rows.
    let n: i64 = client
        .query_one(
            "SELECT count(*) FROM refusal_items WHERE qty >= 0 AND code IS NOT NULL",
            &[],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(n as u64, loaded);
}

#[tokio::test]
async fn fast_mode_is_refused_on_postgresql_with_the_reason() {
    let session = support::cassandra().await;
    let client = support::postgres().await;
    crate::migrate::seed_source(&session, "fastmode", 10, 3).await;
    crate::migrate::create_target(
        &client,
        "refusal_fastmode",
        "account_id bigint, event_id uuid, kind text, amount double precision, ok boolean, \
         seq integer, at timestamptz, PRIMARY KEY (account_id, event_id)",
    )
    .await;
    let dir = support::scratch_dir("refusals_fast_mode");
    let config = support::write_config(
        &dir,
        "splits = 2",
        &format!(
            "[[table]]\nsource = \"{}.fastmode\"\ntarget = \"refusal_fastmode\"\nmode = \"fast\"",
            crate::migrate::KEYSPACE
        ),
    );
    let out = support::ferry(&["migrate", "--config", config.to_str().expect("utf-8 path")]);
    support::assert_clean_failure(
        &out,
        1,
        &[
            "fast mode refused for \"public\".\"refusal_fastmode\"",
            "not YugabyteDB",
            "mode = \"transactional\"",
        ],
    );
    let n: i64 = client
        .query_one("SELECT count(*) FROM refusal_fastmode", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(n, 0, "nothing is written when fast mode is refused");
}

#[tokio::test]
async fn a_permanent_server_error_fails_the_unit_with_the_servers_words() {
    let session = support::cassandra().await;
    let client = support::postgres().await;
    crate::migrate::seed_source(&session, "triggered", 10, 4).await;
    crate::migrate::create_target(
        &client,
        "refusal_triggered",
        "account_id bigint, event_id uuid, kind text, amount double precision, ok boolean, \
         seq integer, at timestamptz",
    )
    .await;
    client
        .batch_execute(
            "CREATE OR REPLACE FUNCTION refusal_no_rows() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'this table takes no rows today'; END $$; \
             CREATE TRIGGER refusal_no_rows BEFORE INSERT ON refusal_triggered \
             FOR EACH ROW EXECUTE FUNCTION refusal_no_rows()",
        )
        .await
        .expect("create trigger");
    let dir = support::scratch_dir("refusals_trigger");
    let config = support::write_config(
        &dir,
        "splits = 2\nunit_attempts = 1",
        &format!(
            "[[table]]\nsource = \"{}.triggered\"\ntarget = \"refusal_triggered\"",
            crate::migrate::KEYSPACE
        ),
    );
    let out = support::ferry(&["migrate", "--config", config.to_str().expect("utf-8 path")]);
    support::assert_clean_failure(
        &out,
        1,
        &["this table takes no rows today", "SQLSTATE P0001", "split"],
    );
}

#[tokio::test]
async fn a_table_stops_once_it_rejects_more_than_max_rejects() {
    let session = support::cassandra().await;
    support::keyspace(&session, KEYSPACE).await;
    support::recreate_table(
        &session,
        &format!("CREATE TABLE {KEYSPACE}.limited (id int PRIMARY KEY, qty int)"),
    )
    .await;
    let insert = session
        .prepare(format!(
            "INSERT INTO {KEYSPACE}.limited (id, qty) VALUES (?, ?)"
        ))
        .await
        .expect("prepare");
    // Every fourth row has no qty, which the target refuses: about 12 per unit of 4.
    for i in 0..200i32 {
        let qty = (i % 4 != 0).then_some(i);
        session
            .execute_unpaged(&insert, (i, qty))
            .await
            .expect("insert");
    }
    let client = support::postgres().await;
    client
        .batch_execute(
            "DROP TABLE IF EXISTS refusal_limited; \
             CREATE TABLE refusal_limited (id int PRIMARY KEY, qty int NOT NULL)",
        )
        .await
        .expect("create target");
    let dir = support::scratch_dir("refusals_max_rejects");
    let config = support::write_config(
        &dir,
        "splits = 4\nconnections = 1",
        &format!(
            "[[table]]\nsource = \"{KEYSPACE}.limited\"\ntarget = \"refusal_limited\"\n\
             max_rejects = 10"
        ),
    );
    let out = support::ferry(&["migrate", "--config", config.to_str().expect("utf-8 path")]);
    support::assert_clean_failure(
        &out,
        1,
        &["more than max_rejects = 10", "run again to resume"],
    );
    let n: i64 = client
        .query_one("SELECT count(*) FROM refusal_limited", &[])
        .await
        .expect("count")
        .get(0);
    assert!(
        n < 150,
        "the table stopped before loading every good row ({n})"
    );
}

const MIXED_ROWS: i32 = 1_000;

/// (id, code, qty, note, span) of source row `i` of the mixed table: values the encoder rejects
/// (a qty too wide for `smallint`, a NUL in `note`), values the server refuses (a NULL or negative
/// qty, pairs of rows sharing a code), and good rows; `span` exercises a duration in the files.
fn mixed_row(i: i32) -> (i32, String, Option<i32>, String, CqlDuration) {
    let code = match i % 50 {
        7 | 8 => format!("dup{}", i / 50),
        _ => format!("c{i}"),
    };
    let qty = if i % 97 == 0 {
        None
    } else if i % 37 == 3 {
        Some(100_000 + i)
    } else if i % 89 == 1 {
        Some(-i)
    } else {
        Some(i)
    };
    let note = if i % 41 == 2 && i % 37 != 3 {
        format!("bad\0note {i}")
    } else {
        format!("note {i}")
    };
    let span = CqlDuration {
        months: i % 13,
        days: i % 7,
        nanoseconds: i64::from(i) * 1_000_001,
    };
    (i, code, qty, note, span)
}

/// What becomes of row `i`, leaving duplicate codes aside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Loaded,
    /// The encoder's reject: column, class.
    Encoder(&'static str, &'static str),
    /// The server's refusal: SQLSTATE, column (PostgreSQL names one for NOT NULL only).
    Refused(&'static str, Option<&'static str>),
}

fn fate(i: i32) -> Fate {
    let (_, _, qty, note, _) = mixed_row(i);
    match qty {
        _ if note.contains('\0') => Fate::Encoder("note", "encoder:nul_character"),
        Some(q) if q > i32::from(i16::MAX) => Fate::Encoder("qty", "encoder:out_of_range"),
        None => Fate::Refused("23502", Some("qty")),
        Some(q) if q < 0 => Fate::Refused("23514", None),
        Some(_) => Fate::Loaded,
    }
}

/// One row of a reject file.
#[derive(Debug)]
struct RejectedRow {
    split: u32,
    column: Option<String>,
    reason: String,
    sqlstate: Option<String>,
    code: String,
    qty: Option<i32>,
    note: String,
    span: CqlDuration,
}

/// Every row of the Parquet files under `dir`, by id, checking the per-file columns on the way.
fn read_reject_files(dir: &Path) -> BTreeMap<i32, RejectedRow> {
    let mut rows = BTreeMap::new();
    for path in parquet_files(dir) {
        let name = path
            .file_name()
            .expect("a name")
            .to_string_lossy()
            .into_owned();
        let unit: u32 = name
            .strip_prefix("unit-")
            .and_then(|n| n.strip_suffix(".parquet"))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("unexpected file {name}"));
        let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).expect("open"))
            .expect("a Parquet file")
            .build()
            .expect("reader");
        let mut last_row = None;
        for batch in reader {
            let batch = batch.expect("batch");
            let col = |name: &str| {
                batch
                    .column_by_name(name)
                    .unwrap_or_else(|| panic!("{name} in {}", path.display()))
                    .clone()
            };
            let text = |name: &str, i: usize| {
                let c = col(name);
                (!c.is_null(i)).then(|| c.as_string::<i32>().value(i).to_string())
            };
            let span = col("span");
            let span = span.as_struct();
            for i in 0..batch.num_rows() {
                assert_eq!(
                    text("_ferry_table", i).as_deref(),
                    Some("ferry_refusals.mixed")
                );
                assert_eq!(
                    text("_ferry_target", i).as_deref(),
                    Some("public.refusal_mixed")
                );
                let row = col("_ferry_row").as_primitive::<UInt64Type>().value(i);
                assert!(last_row < Some(row), "rows in order, once each: {name}");
                last_row = Some(row);
                let qty = col("qty");
                let id = col("id").as_primitive::<Int32Type>().value(i);
                let rejected = RejectedRow {
                    split: col("_ferry_split").as_primitive::<UInt32Type>().value(i),
                    column: text("_ferry_column", i),
                    reason: text("_ferry_reason", i).expect("a reason"),
                    sqlstate: text("_ferry_sqlstate", i),
                    code: text("code", i).expect("a code"),
                    qty: (!qty.is_null(i)).then(|| qty.as_primitive::<Int32Type>().value(i)),
                    note: text("note", i).expect("a note"),
                    span: CqlDuration {
                        months: span.column(0).as_primitive::<Int32Type>().value(i),
                        days: span.column(1).as_primitive::<Int32Type>().value(i),
                        nanoseconds: span.column(2).as_primitive::<Int64Type>().value(i),
                    },
                };
                assert_eq!(rejected.split, unit, "{name}");
                assert!(rows.insert(id, rejected).is_none(), "row {id} twice");
            }
        }
    }
    rows
}

/// The `*.parquet` files in `dir`, after checking that nothing else (a temporary file) is there.
fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    for f in &files {
        assert!(
            f.extension().is_some_and(|e| e == "parquet"),
            "only unit files: {}",
            f.display()
        );
    }
    files
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .expect("an array")
        .iter()
        .map(|s| s.as_str().expect("a string").to_string())
        .collect()
}

#[tokio::test]
async fn rejected_rows_go_to_parquet_files_once_with_their_values() {
    let session = support::cassandra().await;
    support::keyspace(&session, KEYSPACE).await;
    support::recreate_table(
        &session,
        &format!(
            "CREATE TABLE {KEYSPACE}.mixed (id int PRIMARY KEY, code text, qty int, note text, \
             span duration)"
        ),
    )
    .await;
    let insert = session
        .prepare(format!(
            "INSERT INTO {KEYSPACE}.mixed (id, code, qty, note, span) VALUES (?, ?, ?, ?, ?)"
        ))
        .await
        .expect("prepare");
    for i in 0..MIXED_ROWS {
        session
            .execute_unpaged(&insert, mixed_row(i))
            .await
            .expect("insert");
    }
    let client = support::postgres().await;
    client
        .batch_execute(
            "DROP TABLE IF EXISTS refusal_mixed; \
             CREATE TABLE refusal_mixed (id int PRIMARY KEY, code text UNIQUE, \
             qty smallint NOT NULL CHECK (qty >= 0), note text, span interval)",
        )
        .await
        .expect("create target");

    // First attempt: one connection, so units commit one by one, and a limit the first unit
    // already passes: the run stops with some units committed, their files written.
    let dir = support::scratch_dir("refusals_reject_files");
    let run_id = support::unique_run_id(&dir);
    let run = format!("splits = 4\nconnections = 1\nid = \"{run_id}\"");
    let table = format!("[[table]]\nsource = \"{KEYSPACE}.mixed\"\ntarget = \"refusal_mixed\"");
    let config = support::write_config(&dir, &run, &format!("{table}\nmax_rejects = 5"));
    let report_path = dir.join("first.json");
    let out = support::ferry(&[
        "migrate",
        "--config",
        config.to_str().expect("utf-8 path"),
        "--report",
        report_path.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let first = support::read_report(&report_path);
    let t1 = &first["tables"][0];
    let done = t1["units_done"].as_u64().expect("units_done");
    assert!((1..4).contains(&done), "stopped after {done} units");
    // The default reject_dir: `rejects` next to the config file.
    let table_dir = dir
        .join("rejects")
        .join(&run_id)
        .join("public.refusal_mixed");
    let first_files = strings(&t1["reject_files"]);
    assert_eq!(
        first_files.len() as u64,
        done,
        "every unit of 250 rows has rejects"
    );
    assert_eq!(
        parquet_files(&table_dir),
        first_files.iter().map(PathBuf::from).collect::<Vec<_>>(),
        "exactly the committed units have files"
    );
    let first_bytes: Vec<Vec<u8>> = first_files
        .iter()
        .map(|f| std::fs::read(f).expect("read"))
        .collect();

    // The same run again without the limit resumes: the committed units are skipped, the
    // others write their own files.
    let config = support::write_config(&dir, &run, &table);
    let second = support::migrate_ok(&config);
    let t2 = &second["tables"][0];
    assert_eq!(second["status"], "ok");
    assert_eq!(t2["units_skipped"].as_u64(), Some(done));
    let num = |t: &serde_json::Value, k: &str| t[k].as_u64().unwrap_or_else(|| panic!("{k}"));
    for t in [t1, t2] {
        assert_eq!(
            num(t, "rows_read"),
            num(t, "rows_written") + num(t, "rows_rejected"),
            "{t}"
        );
        assert_eq!(t["unbalanced_units"], serde_json::json!([]));
    }
    assert_eq!(
        num(t1, "rows_read") + num(t2, "rows_read"),
        MIXED_ROWS as u64
    );
    let second_files = strings(&t2["reject_files"]);
    assert_eq!(second_files.len() as u64, num(t2, "units_total") - done);
    let mut all_files: Vec<PathBuf> = first_files
        .iter()
        .chain(&second_files)
        .map(PathBuf::from)
        .collect();
    all_files.sort();
    assert_eq!(
        parquet_files(&table_dir),
        all_files,
        "one file per unit, no copies"
    );
    for (f, bytes) in first_files.iter().zip(&first_bytes) {
        assert_eq!(
            &std::fs::read(f).expect("read"),
            bytes,
            "{f} was left alone"
        );
    }

    // The files hold exactly the rows that are not in the target, with their values and why.
    let rejected = read_reject_files(&table_dir);
    let loaded: HashSet<i32> = client
        .query("SELECT id FROM refusal_mixed", &[])
        .await
        .expect("ids")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        rejected.len() as u64,
        num(t1, "rows_rejected") + num(t2, "rows_rejected")
    );
    assert_eq!(loaded.len() + rejected.len(), MIXED_ROWS as usize);
    let mut classes: BTreeMap<String, u64> = BTreeMap::new();
    for i in 0..MIXED_ROWS {
        let in_file = rejected.get(&i);
        assert_ne!(
            in_file.is_some(),
            loaded.contains(&i),
            "row {i}: in the target or a file"
        );
        let expected = fate(i);
        match (expected, in_file) {
            (Fate::Loaded, None) => {}
            (Fate::Loaded, Some(r)) => {
                // Of two good rows sharing a code, the one loaded second is refused.
                let partner = if i % 50 == 7 { i + 1 } else { i - 1 };
                assert!(matches!(i % 50, 7 | 8), "row {i} rejected: {r:?}");
                assert_eq!(fate(partner), Fate::Loaded);
                assert!(
                    loaded.contains(&partner),
                    "row {i}'s partner {partner} loaded"
                );
                assert_eq!(r.sqlstate.as_deref(), Some("23505"), "{r:?}");
                assert!(r.reason.contains("duplicate key"), "{r:?}");
                assert_eq!(r.column, None);
            }
            (Fate::Encoder(column, _), Some(r)) => {
                assert_eq!(r.column.as_deref(), Some(column), "{r:?}");
                assert_eq!(r.sqlstate, None, "{r:?}");
                let words = if column == "note" {
                    "NUL"
                } else {
                    "out of range"
                };
                assert!(r.reason.contains(words), "{r:?}");
            }
            (Fate::Refused(state, column), Some(r)) => {
                assert_eq!(r.sqlstate.as_deref(), Some(state), "{r:?}");
                assert_eq!(r.column.as_deref(), column, "{r:?}");
                assert!(r.reason.contains(&format!("SQLSTATE {state}")), "{r:?}");
            }
            (fate, None) => panic!("row {i} should have been rejected ({fate:?})"),
        }
        if let Some(r) = in_file {
            let (_, code, qty, note, span) = mixed_row(i);
            assert_eq!(
                (&r.code, r.qty, &r.note, r.span),
                (&code, qty, &note, span),
                "row {i} as it was read"
            );
            let class = match (&r.sqlstate, expected) {
                (Some(state), _) => format!("target:{state}"),
                (None, Fate::Encoder(_, class)) => class.to_string(),
                (None, other) => panic!("row {i}: {other:?} without a SQLSTATE"),
            };
            *classes.entry(class).or_default() += 1;
        }
    }
    // The report's counts by kind are the files' own.
    let mut reported: BTreeMap<String, u64> = BTreeMap::new();
    for t in [t1, t2] {
        for (k, n) in t["rejects_by_reason"]
            .as_object()
            .expect("rejects_by_reason")
        {
            *reported.entry(k.clone()).or_default() += n.as_u64().expect("a count");
        }
    }
    assert_eq!(reported, classes);
    for class in [
        "encoder:nul_character",
        "encoder:out_of_range",
        "target:23502",
        "target:23505",
        "target:23514",
    ] {
        assert!(classes.contains_key(class), "{class} in {classes:?}");
    }

    // `--restart` forgets the run's reject files with its checkpoints: a file no unit of the new
    // attempt writes (left by a different split plan, say) is gone afterwards.
    std::fs::write(table_dir.join("unit-99.parquet"), b"stale").expect("plant a stale file");
    client
        .batch_execute("TRUNCATE refusal_mixed")
        .await
        .expect("truncate");
    let fresh = support::migrate_ok_with(&config, &["--restart", "--yes"]);
    let files = strings(&fresh["tables"][0]["reject_files"]);
    assert_eq!(
        parquet_files(&table_dir),
        files.iter().map(PathBuf::from).collect::<Vec<_>>()
    );
    assert_eq!(read_reject_files(&table_dir).len(), rejected.len());
}

/// Every CQL type in reject files: the torture table into a table whose CHECK refuses all rows
/// but the spread ones. The files hold the refused rows exactly as Ferry's scan reads them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reject_files_hold_every_cql_type_exactly() {
    const KS: &str = "ferry_refusals_torture";
    let session = support::cassandra().await;
    let client = support::postgres().await;
    crate::torture::seed_into(&session, KS, "everything").await;
    client
        .batch_execute("DROP TABLE IF EXISTS refusal_torture")
        .await
        .expect("drop target");
    let dir = support::scratch_dir("refusals_torture");
    let config = support::write_config(
        &dir,
        "splits = 4\nconnections = 2",
        &format!("[[table]]\nsource = \"{KS}.everything\"\ntarget = \"refusal_torture\""),
    );
    let out = support::ferry(&[
        "schema",
        "-c",
        config.to_str().expect("utf-8 path"),
        "--apply",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    client
        .batch_execute("ALTER TABLE refusal_torture ADD CONSTRAINT spread_only CHECK (pk >= 10)")
        .await
        .expect("add check");

    let report = support::migrate_ok(&config);
    let t = &report["tables"][0];
    let spread = 200u64;
    let seeded = crate::torture::SEEDED_ROWS as u64;
    assert_eq!(t["rows_read"].as_u64(), Some(seeded), "{t}");
    assert_eq!(t["rows_written"].as_u64(), Some(spread), "{t}");
    assert_eq!(t["rows_rejected"].as_u64(), Some(seeded - spread), "{t}");
    // Five rows hold dates or timestamps PostgreSQL cannot: the encoder's; the target refuses
    // the rest.
    assert_eq!(
        t["rejects_by_reason"],
        serde_json::json!({
            "encoder:out_of_range": 5,
            "target:23514": seeded - spread - 5,
        }),
        "{t}"
    );

    // Ferry's own scan of the table, by key.
    let ferry_session = connect(&CassandraConfig::new(vec![support::cassandra_addr()]))
        .await
        .expect("connect");
    let source = SourceTable::load(&ferry_session, KS, "everything")
        .await
        .expect("schema");
    let splits = plan_splits(&ferry_session, KS, "everything", SplitCount::Fixed(4), None)
        .await
        .expect("splits");
    let ctx = SessionContext::new();
    ctx.register_table(
        "t",
        Arc::new(CassandraTable::new(ferry_session, source, splits, 1000)),
    )
    .expect("register");
    let scanned = ctx
        .sql("SELECT * FROM t WHERE pk < 10")
        .await
        .expect("plan")
        .collect()
        .await
        .expect("scan");
    let key = |b: &RecordBatch, i: usize| {
        let int = |name: &str| {
            b.column_by_name(name)
                .expect("key column")
                .as_primitive::<Int32Type>()
                .value(i)
        };
        (int("pk"), int("ck"))
    };
    let mut expected = BTreeMap::new();
    for b in &scanned {
        for i in 0..b.num_rows() {
            expected.insert(key(b, i), (b, i));
        }
    }
    assert_eq!(expected.len() as u64, seeded - spread);

    let table_dir = std::fs::read_dir(dir.join("rejects"))
        .expect("reject dir")
        .next()
        .expect("the run's directory")
        .expect("entry")
        .path()
        .join("public.refusal_torture");
    let mut seen = HashSet::new();
    for path in parquet_files(&table_dir) {
        let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).expect("open"))
            .expect("a Parquet file")
            .build()
            .expect("reader");
        for batch in reader {
            let batch = batch.expect("batch");
            for i in 0..batch.num_rows() {
                let k = key(&batch, i);
                assert!(seen.insert(k), "{k:?} twice");
                let (want, j) = expected.get(&k).copied().unwrap_or_else(|| {
                    panic!("{k:?} is in {} but should have loaded", path.display())
                });
                for (field, column) in want.schema().fields().iter().zip(want.columns()) {
                    let got = batch
                        .column_by_name(field.name())
                        .unwrap_or_else(|| panic!("{} in {}", field.name(), path.display()));
                    if let DataType::Interval(_) = field.data_type() {
                        let v = column.as_primitive::<IntervalMonthDayNanoType>();
                        assert_eq!(got.is_null(i), v.is_null(j), "{k:?} {}", field.name());
                        let got = got.as_struct();
                        let want = v.value(j);
                        let parts = (
                            got.column(0).as_primitive::<Int32Type>().value(i),
                            got.column(1).as_primitive::<Int32Type>().value(i),
                            got.column(2).as_primitive::<Int64Type>().value(i),
                        );
                        if !v.is_null(j) {
                            assert_eq!(parts, (want.months, want.days, want.nanoseconds));
                        }
                    } else {
                        assert_eq!(
                            got.slice(i, 1).to_data(),
                            column.slice(j, 1).to_data(),
                            "{k:?} {}",
                            field.name()
                        );
                    }
                }
            }
        }
    }
    assert_eq!(seen.len(), expected.len(), "every refused row is in a file");
}
