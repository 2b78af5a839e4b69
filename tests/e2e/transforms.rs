//! Transform files end to end: the UDF library over real Cassandra tables, every value checked
//! against one computed here or by Cassandra itself; and transforms that cannot run, which fail
//! before any data moves with a message naming the file, line and column.

use std::net::IpAddr;
use std::path::Path;

use chrono::{DateTime, NaiveDate, Utc};
use futures::TryStreamExt;
use scylla::client::session::Session;
use scylla::value::{CqlValue, Row};
use serde_json::Value;
use uuid::Uuid;

use crate::support;

const KEYSPACE: &str = "ferry_transforms";

/// Milliseconds from 1582-10-15 (the timeuuid epoch) to 1970-01-01.
const GREGORIAN_OFFSET_MS: i64 = 12_219_292_800_000;

/// A version-1 UUID for `unix_ms`, built from RFC 4122's field layout.
fn timeuuid(unix_ms: i64, node: u64) -> Uuid {
    let ticks = ((unix_ms + GREGORIAN_OFFSET_MS) * 10_000 + 4_321) as u64;
    let mut tail = node.to_be_bytes();
    tail[0] = 0x80 | (tail[0] & 0x3f); // RFC 4122 variant
    Uuid::from_fields(
        ticks as u32,
        (ticks >> 32) as u16,
        ((ticks >> 48) as u16 & 0x0fff) | 0x1000,
        &tail,
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// CQL duration literals and the text `duration_to_text` must give them (Cassandra's own notation,
/// except a zero duration, which Cassandra writes as an empty string).
const DURATIONS: &[(&str, &str)] = &[
    ("1y2mo3d4h5m6s7ms8us9ns", "1y2mo3d4h5m6s7ms8us9ns"),
    ("90m", "1h30m"),
    ("-1ns", "-1ns"),
    ("0s", "0s"),
    ("2d", "2d"),
];

/// One source row of the readings table, and what the transform must make of it.
struct Reading {
    id: i32,
    at_ms: i64,
    raw: Vec<u8>,
    note: String,
    /// The 8-byte blob, or an empty one (CQL's empty value, read as NULL).
    counter: Option<i64>,
    device: Uuid,
    duration: usize,
}

fn reading(i: i32) -> Reading {
    let n = i64::from(i);
    Reading {
        id: i,
        // From 1969 to 2122: times before the Unix epoch included.
        at_ms: -5_000_000_000 + n * 123_456_789_012,
        raw: (0..i % 7)
            .map(|k| ((i * 31 + k * 17) % 256) as u8)
            .collect(),
        note: if i % 5 == 0 {
            String::new()
        } else {
            format!("note {i} — é \"🦀\"")
        },
        counter: match i % 6 {
            0 => None,
            1 => Some(i64::MIN),
            _ => Some(n * -7_654_321_987),
        },
        device: Uuid::from_u128(
            (n as u128 + 1).wrapping_mul(0x0123_4567_89ab_cdef_1122_3344_5566_7789),
        ),
        duration: i as usize % DURATIONS.len(),
    }
}

const READINGS: i32 = 40;

const READINGS_TRANSFORM: &str = "\
-- Cassandra types into plain PostgreSQL columns.
SELECT id,
       timeuuid_to_timestamp(at) AS at,
       timeuuid_to_unix_ms(at) AS at_ms,
       timeuuid_to_date(at) AS at_day,
       blob_to_hex(raw) AS raw_hex,
       blob_to_text(note) AS note,
       blob_to_bigint(counter) AS counter,
       uuid_to_text(device) AS device,
       duration_to_text(spent) AS spent,
       cql_to_json(pair) AS pair,
       cql_to_json(attrs) AS attrs,
       cql_to_json(spot) AS spot,
       token(id) AS tok
FROM source
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udfs_turn_cassandra_types_into_plain_postgres_columns() {
    let session = support::cassandra().await;
    let table = format!("{KEYSPACE}.readings");
    support::keyspace(&session, KEYSPACE).await;
    support::cql(&session, &format!("DROP TABLE IF EXISTS {table}")).await;
    support::cql(
        &session,
        &format!("CREATE TYPE IF NOT EXISTS {KEYSPACE}.spot (name text, zip int)"),
    )
    .await;
    support::cql(
        &session,
        &format!(
            "CREATE TABLE {table} (id int PRIMARY KEY, at timeuuid, raw blob, note blob, \
             counter blob, device uuid, spent duration, pair tuple<int, text>, \
             attrs map<text, int>, spot frozen<spot>)"
        ),
    )
    .await;
    for i in 0..READINGS {
        let r = reading(i);
        let counter = r.counter.map_or(String::new(), |c| hex(&c.to_be_bytes()));
        let mut columns = "id, at, raw, note, counter, device, spent".to_string();
        let mut values = format!(
            "{}, {}, 0x{}, 0x{}, 0x{counter}, {}, {}",
            r.id,
            timeuuid(r.at_ms, u64::from(i as u32) * 7919),
            hex(&r.raw),
            hex(r.note.as_bytes()),
            r.device,
            DURATIONS[r.duration].0
        );
        if i % 8 != 0 {
            columns.push_str(", pair");
            values.push_str(&if i % 4 == 3 {
                ", (null, null)".to_string()
            } else {
                format!(", ({i}, 'p''{i}')")
            });
        }
        if i % 9 != 0 {
            columns.push_str(", attrs");
            values.push_str(&format!(", {{'a': {i}, 'b\"q': -{i}, 'é': 0}}"));
        }
        if i % 10 != 0 {
            columns.push_str(", spot");
            values.push_str(&format!(", {{name: 'n{i}', zip: {}}}", i * 100));
        } else {
            columns.push_str(", spot");
            values.push_str(", {zip: 5}");
        }
        support::cql(
            &session,
            &format!("INSERT INTO {table} ({columns}) VALUES ({values})"),
        )
        .await;
    }
    // A row with nothing but its key and time.
    let bare = READINGS;
    support::cql(
        &session,
        &format!(
            "INSERT INTO {table} (id, at) VALUES ({bare}, {})",
            timeuuid(0, 1)
        ),
    )
    .await;

    let client = support::postgres().await;
    client
        .batch_execute(
            "DROP TABLE IF EXISTS transforms_readings; \
             CREATE TABLE transforms_readings (id integer PRIMARY KEY, at timestamptz NOT NULL, \
             at_ms bigint, at_day date, raw_hex text, note text, counter bigint, device text, \
             spent text, pair jsonb, attrs jsonb, spot jsonb, tok bigint)",
        )
        .await
        .expect("create target");
    let dir = support::scratch_dir("transforms_udfs");
    std::fs::write(dir.join("readings.sql"), READINGS_TRANSFORM).expect("write transform");
    let config = support::write_config(
        &dir,
        "splits = 4",
        &format!(
            "[[table]]\nsource = \"{table}\"\ntarget = \"transforms_readings\"\n\
             transform = \"readings.sql\""
        ),
    );
    let report = support::migrate_ok(&config);
    assert_eq!(report["tables"][0]["rows_written"], READINGS + 1);
    assert_eq!(report["tables"][0]["rows_rejected"], 0);

    // Cassandra's own toJson() and token() of the same rows: the oracle for the JSON columns.
    let mut oracle = std::collections::HashMap::new();
    let mut rows = session
        .query_iter(
            format!("SELECT id, toJson(pair), toJson(attrs), toJson(spot), token(id) FROM {table}"),
            (),
        )
        .await
        .expect("oracle query")
        .rows_stream::<(i32, Option<String>, Option<String>, Option<String>, i64)>()
        .expect("oracle row type");
    while let Some((id, pair, attrs, spot, token)) = rows.try_next().await.expect("oracle row") {
        oracle.insert(id, ([pair, attrs, spot].map(cassandra_json), token));
    }

    let target = client
        .query(
            "SELECT id, at, at_ms, at_day, raw_hex, note, counter, device, spent, pair, attrs, \
             spot, tok FROM transforms_readings ORDER BY id",
            &[],
        )
        .await
        .expect("target query");
    assert_eq!(target.len(), READINGS as usize + 1);
    for row in &target {
        let id: i32 = row.get(0);
        let (json, token) = &oracle[&id];
        let at: DateTime<Utc> = row.get(1);
        let jsons: [Option<Value>; 3] = [row.get(9), row.get(10), row.get(11)];
        assert_eq!(
            &jsons, json,
            "row {id}: cql_to_json against Cassandra's toJson"
        );
        assert_eq!(row.get::<_, i64>(12), *token, "row {id}: token");
        if id == bare {
            assert_eq!(at.timestamp_millis(), 0);
            for k in [4, 5, 7, 8] {
                assert_eq!(
                    row.get::<_, Option<String>>(k),
                    None,
                    "row {id}: column {k}"
                );
            }
            assert_eq!(row.get::<_, Option<i64>>(6), None);
            continue;
        }
        let r = reading(id);
        let expected_at = DateTime::from_timestamp_millis(r.at_ms).expect("in range");
        assert_eq!(at, expected_at, "row {id}: at");
        assert_eq!(row.get::<_, i64>(2), r.at_ms, "row {id}: at_ms");
        assert_eq!(
            row.get::<_, NaiveDate>(3),
            expected_at.date_naive(),
            "row {id}: at_day"
        );
        assert_eq!(
            row.get::<_, String>(4),
            format!("0x{}", hex(&r.raw)),
            "row {id}: raw_hex"
        );
        assert_eq!(row.get::<_, String>(5), r.note, "row {id}: note");
        assert_eq!(row.get::<_, Option<i64>>(6), r.counter, "row {id}: counter");
        assert_eq!(
            row.get::<_, String>(7),
            r.device.hyphenated().to_string(),
            "row {id}: device"
        );
        assert_eq!(
            row.get::<_, String>(8),
            DURATIONS[r.duration].1,
            "row {id}: spent"
        );
    }
}

/// Cassandra's toJson() text as a JSON value; a NULL column is SQL NULL, not JSON `null`.
fn cassandra_json(text: Option<String>) -> Option<Value> {
    let value: Value = serde_json::from_str(&text?).expect("Cassandra's toJson is JSON");
    (!value.is_null()).then_some(value)
}

const TORTURE_KEYSPACE: &str = "ferry_transforms_torture";

/// `cql_to_json` over every column of the torture table, compared with Cassandra's `toJson()` of
/// the same cell. The documented differences are the only ones allowed: Cassandra's empty values
/// (NULL in Ferry), timestamps outside years 1583–9999 (Cassandra formats them with the Julian
/// calendar or overflows), inet spellings (Java's), float digits (Java's shortest form differs
/// from Rust's but reads back as the same float), and a zero duration (`0s`, not `""`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cql_to_json_renders_every_cql_type_as_cassandras_to_json_does() {
    let session = support::cassandra().await;
    crate::torture::seed_into(&session, TORTURE_KEYSPACE, "everything").await;
    let columns = regular_columns(&session, TORTURE_KEYSPACE, "everything").await;
    assert!(
        columns.len() >= 40,
        "the torture table's columns: {columns:?}"
    );

    let client = support::postgres().await;
    let target_columns: Vec<String> = columns.iter().map(|c| format!("{c} text")).collect();
    client
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS transforms_torture_json; \
             CREATE TABLE transforms_torture_json (pk integer, ck integer, {}, \
             PRIMARY KEY (pk, ck))",
            target_columns.join(", ")
        ))
        .await
        .expect("create target");
    let dir = support::scratch_dir("transforms_torture_json");
    let select: Vec<String> = columns
        .iter()
        .map(|c| format!("cql_to_json({c}) AS {c}"))
        .collect();
    std::fs::write(
        dir.join("json.sql"),
        format!("SELECT pk, ck,\n  {}\nFROM source\n", select.join(",\n  ")),
    )
    .expect("write transform");
    let config = support::write_config(
        &dir,
        "splits = 4",
        &format!(
            "[[table]]\nsource = \"{TORTURE_KEYSPACE}.everything\"\n\
             target = \"transforms_torture_json\"\ntransform = \"json.sql\""
        ),
    );
    let report = support::migrate_ok(&config);
    assert_eq!(
        report["tables"][0]["rows_written"],
        crate::torture::SEEDED_ROWS as u64
    );

    let to_json: Vec<String> = columns.iter().map(|c| format!("toJson({c})")).collect();
    let mut expected = std::collections::HashMap::new();
    let mut rows = session
        .query_iter(
            format!(
                "SELECT pk, ck, {} FROM {TORTURE_KEYSPACE}.everything",
                to_json.join(", ")
            ),
            (),
        )
        .await
        .expect("toJson query")
        .rows_stream::<Row>()
        .expect("untyped rows");
    while let Some(row) = rows.try_next().await.expect("toJson row") {
        let key = |k: usize| match &row.columns[k] {
            Some(CqlValue::Int(v)) => *v,
            other => panic!("key {other:?}"),
        };
        let texts: Vec<Option<String>> = row.columns[2..]
            .iter()
            .map(|v| v.as_ref().and_then(CqlValue::as_text).cloned())
            .collect();
        expected.insert((key(0), key(1)), texts);
    }

    let actual = client
        .query(
            &format!(
                "SELECT pk, ck, {} FROM transforms_torture_json",
                columns.join(", ")
            ),
            &[],
        )
        .await
        .expect("target query");
    assert_eq!(actual.len(), expected.len());
    let mut compared = 0;
    let mut mismatches = Vec::new();
    for row in &actual {
        let (pk, ck): (i32, i32) = (row.get(0), row.get(1));
        // pk 3 holds Cassandra "empty" values, pk 5 empties nested in collections: Ferry reads
        // them as NULL (and counts them), toJson() writes `""`.
        if pk == 3 || pk == 5 {
            continue;
        }
        let theirs = &expected[&(pk, ck)];
        for (k, column) in columns.iter().enumerate() {
            // JSON `null` (NaN, or Cassandra's NULL column) and SQL NULL alike.
            let ours: Option<String> = row.get::<_, Option<String>>(k + 2).filter(|t| t != "null");
            let theirs = theirs[k].as_deref().filter(|t| *t != "null");
            let at = format!("({pk}, {ck}) {column}");
            match (ours.as_deref(), theirs) {
                (None, None) => {}
                (Some(ours), Some(theirs)) => {
                    let ours_value: Value = serde_json::from_str(ours)
                        .unwrap_or_else(|e| panic!("{at}: not JSON ({e}): {ours}"));
                    let theirs_value: Value =
                        serde_json::from_str(theirs).expect("Cassandra's toJson is JSON");
                    let exact = match column.as_str() {
                        "c_varint" | "c_decimal" => decimal_digits(ours) == decimal_digits(theirs),
                        _ => true,
                    };
                    if !exact
                        || !(known_difference(column, &ours_value, &theirs_value)
                            || same_json(&ours_value, &theirs_value))
                    {
                        mismatches.push(format!("{at}: ours {ours}, Cassandra's {theirs}"));
                    }
                    compared += 1;
                }
                (ours, theirs) => {
                    mismatches.push(format!("{at}: ours {ours:?}, Cassandra's {theirs:?}"));
                }
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} values differ:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    assert!(compared >= 900, "compared {compared} non-NULL values");
}

/// The table's regular and static columns, in schema order (the key columns are `pk`, `ck`).
async fn regular_columns(session: &Session, keyspace: &str, table: &str) -> Vec<String> {
    let rows = session
        .query_unpaged(
            "SELECT column_name, kind, position FROM system_schema.columns \
             WHERE keyspace_name = ? AND table_name = ?",
            (keyspace, table),
        )
        .await
        .expect("schema query")
        .into_rows_result()
        .expect("rows");
    let mut columns: Vec<String> = rows
        .rows::<(String, String, i32)>()
        .expect("row type")
        .map(|r| r.expect("row"))
        .filter(|(_, kind, _)| kind == "regular" || kind == "static")
        .map(|(name, _, _)| name)
        .collect();
    columns.sort();
    columns
}

/// Whether `ours` and `theirs` differ only as the test's doc allows, for one column.
fn known_difference(column: &str, ours: &Value, theirs: &Value) -> bool {
    match column {
        "c_timestamp" => {
            // Years outside 1583–9999: Cassandra's formatter is not proleptic Gregorian there.
            let year = |v: &Value| v.as_str().and_then(|s| s.get(..4)?.parse::<i32>().ok());
            !matches!(year(ours), Some(1583..=9999))
        }
        "c_inet" => {
            let ip = |v: &Value| {
                v.as_str()
                    .and_then(|s| s.parse::<IpAddr>().ok())
                    .map(|ip| ip.to_canonical())
            };
            ip(ours).is_some() && ip(ours) == ip(theirs)
        }
        "c_duration" => ours == "0s" && theirs == "",
        _ => false,
    }
}

/// JSON equality where numbers are equal when they read back as the same f64, or as the same
/// f32 (Java and Rust pick different shortest digits for some floats).
fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x == y || (x as f32 == y as f32 && (x as f32).is_finite()),
            _ => x == y,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_json(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w)))
        }
        _ => a == b,
    }
}

/// A decimal number's exact value as (negative, significant digits, exponent of the last digit):
/// `1E+30`, `1000000000000000000000000000000` and `1.0E30` agree; a scale's trailing zeros too.
fn decimal_digits(text: &str) -> (bool, String, i64) {
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(i) => (&text[..i], text[i + 1..].parse::<i64>().expect("exponent")),
        None => (text, 0),
    };
    let (negative, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = format!("{int}{frac}");
    let mut exponent = exponent - frac.len() as i64;
    let trimmed = digits.trim_start_matches('0');
    let significant = trimmed.trim_end_matches('0');
    exponent += (trimmed.len() - significant.len()) as i64;
    if significant.is_empty() {
        return (false, "0".into(), 0);
    }
    (negative, significant.to_string(), exponent)
}

// ---- Transforms that cannot run: each fails before any data moves. ----

/// Seeds `ferry_transforms.<table>` (id, name, payload blob) with a few rows, creates the target
/// with `columns`, writes `sql` as `<table>.sql`, runs `ferry migrate`, and returns its stderr
/// and the transform file's path, after checking the run failed and the target is still empty.
async fn migrate_refused(table: &str, columns: &str, sql: &str) -> (String, String) {
    let session = support::cassandra().await;
    support::keyspace(&session, KEYSPACE).await;
    support::recreate_table(
        &session,
        &format!("CREATE TABLE {KEYSPACE}.{table} (id int PRIMARY KEY, name text, payload blob)"),
    )
    .await;
    for id in 0..10 {
        support::cql(
            &session,
            &format!(
                "INSERT INTO {KEYSPACE}.{table} (id, name, payload) VALUES ({id}, 'n{id}', 0x0{id})"
            ),
        )
        .await;
    }
    let client = support::postgres().await;
    let target = format!("transforms_{table}");
    client
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {target}; CREATE TABLE {target} ({columns})"
        ))
        .await
        .expect("create target");

    let dir = support::scratch_dir(&format!("transforms_{table}"));
    let file = dir.join(format!("{table}.sql"));
    std::fs::write(&file, sql).expect("write transform");
    let config = support::write_config(
        &dir,
        "splits = 2",
        &format!(
            "[[table]]\nsource = \"{KEYSPACE}.{table}\"\ntarget = \"{target}\"\n\
             transform = \"{table}.sql\""
        ),
    );
    let out = support::ferry(&["migrate", "--config", path_str(&config)]);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "migrate succeeded:\n{stderr}");
    assert_ne!(out.status.code(), Some(0));
    for bad in ["panicked", "RUST_BACKTRACE"] {
        assert!(!stderr.contains(bad), "stderr has {bad:?}:\n{stderr}");
    }
    let rows: i64 = client
        .query_one(&format!("SELECT count(*) FROM {target}"), &[])
        .await
        .expect("count target rows")
        .get(0);
    assert_eq!(rows, 0, "no row may move:\n{stderr}");
    (stderr, path_str(&file).to_string())
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn assert_points_at(stderr: &str, file: &str, line: u32, column: u32, needles: &[&str]) {
    let place = format!("{file}:{line}:{column}: ");
    assert!(stderr.contains(&place), "stderr lacks {place:?}:\n{stderr}");
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "stderr lacks {needle:?}:\n{stderr}"
        );
    }
}

#[tokio::test]
async fn a_syntax_error_is_refused_at_its_place() {
    let (stderr, file) = migrate_refused(
        "bad_syntax",
        "id integer PRIMARY KEY, name text",
        "SELECT id,\n       upper(name) AS name\nFROM source\nWHERE id > > 3\n",
    )
    .await;
    assert_points_at(&stderr, &file, 4, 12, &["Expected"]);
}

#[tokio::test]
async fn an_unknown_column_is_refused_at_its_place() {
    let (stderr, file) = migrate_refused(
        "bad_column",
        "id integer PRIMARY KEY, name text",
        "SELECT id,\n       nmae AS name\nFROM source\n",
    )
    .await;
    assert_points_at(&stderr, &file, 2, 8, &["nmae"]);
}

#[tokio::test]
async fn an_output_type_the_target_cannot_take_is_refused_at_its_select_item() {
    let (stderr, file) = migrate_refused(
        "bad_type",
        "id integer PRIMARY KEY, name text, payload integer",
        "SELECT id, name,\n       payload\nFROM source\n",
    )
    .await;
    assert_points_at(
        &stderr,
        &file,
        2,
        8,
        &[
            "payload: Binary cannot be written to",
            "transforms_bad_type",
        ],
    );
}

#[tokio::test]
async fn a_missing_not_null_column_is_refused_at_the_select_list() {
    let (stderr, file) = migrate_refused(
        "bad_not_null",
        "id integer PRIMARY KEY, name text, region text NOT NULL",
        "-- no region here\nSELECT id,\n       name\nFROM source\n",
    )
    .await;
    assert_points_at(
        &stderr,
        &file,
        2,
        8,
        &["region: NOT NULL column of", "missing from the output"],
    );
}
