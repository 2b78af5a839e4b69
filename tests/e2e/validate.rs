//! `ferry validate` against the real services: tokens computed from target rows equal
//! Cassandra's `token()`, a clean migration validates equal (the torture table: every CQL type
//! through the encoder's representation), a tampered target is found row by row and repaired,
//! and a renaming, filtering transform validates equal.

use std::collections::BTreeSet;
use std::path::Path;

use futures::{StreamExt, TryStreamExt};
use scylla::client::session::Session;
use serde_json::Value;
use uuid::Uuid;

use crate::support;

const KEYSPACE: &str = "ferry_e2e_validate";

/// Runs `ferry validate -c CONFIG ARGS… --report <dir>/<name>.json`; the exit code must be
/// `code`. Returns the report.
fn validate(config: &Path, name: &str, args: &[&str], code: i32) -> Value {
    let report = config.with_file_name(format!("{name}.json"));
    let mut all = vec![
        "validate",
        "-c",
        config.to_str().expect("utf-8 path"),
        "--report",
        report.to_str().expect("utf-8 path"),
    ];
    all.extend_from_slice(args);
    let out = support::ferry(&all);
    assert_eq!(
        out.status.code(),
        Some(code),
        "ferry validate {args:?}: stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    support::read_report(&report)
}

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

/// Every type a partition key can have in the torture table's columns, with values to key by.
const KEY_TYPES: &[(&str, &str, &[&str])] = &[
    (
        "ascii",
        "ascii",
        &["'a'", "'~ !#$%&()*+,-./09:;<=>?@AZ[]^_`az{|}'"],
    ),
    ("text", "text", &["'héllo 世界 🦀'", "'kremówki'", "'test'"]),
    ("varchar", "varchar", &["'日本語'", "'x'"]),
    ("tinyint", "tinyint", &["-128", "0", "127"]),
    ("smallint", "smallint", &["-32768", "1", "32767"]),
    ("int", "int", &["-2147483648", "0", "1", "2147483647"]),
    (
        "bigint",
        "bigint",
        &["-9223372036854775808", "-1", "9223372036854775807"],
    ),
    (
        "varint",
        "varint",
        &[
            "0",
            "-1",
            "127",
            "128",
            "-129",
            "1000000000000000000000000000000000000001",
        ],
    ),
    (
        "decimal",
        "decimal",
        &[
            "0",
            "1.50",
            "-0.001",
            "3.14159265358979323846264338327950288",
            "-12345678901234567890.5",
        ],
    ),
    ("float", "float", &["0.0", "1.5", "-2.25", "3.4028235E38"]),
    (
        "double",
        "double",
        &["0.0", "-1.7976931348623157E308", "0.1", "-1.0E-300"],
    ),
    ("boolean", "boolean", &["true", "false"]),
    (
        "timestamp",
        "timestamp",
        &[
            "0",
            "-1",
            "1700000000123",
            "'1970-01-01 00:00:00.001+0000'",
            "'2262-04-11 23:47:16.854+0000'",
        ],
    ),
    (
        "date",
        "date",
        &[
            "'1970-01-01'",
            "'0001-01-01'",
            "'9999-12-31'",
            "'2024-02-29'",
        ],
    ),
    (
        "time",
        "time",
        &["'00:00:00'", "'12:34:56.789012'", "'23:59:59.999999'"],
    ),
    (
        "uuid",
        "uuid",
        &[
            "00000000-0000-0000-0000-000000000000",
            "ffffffff-ffff-ffff-ffff-ffffffffffff",
            "123e4567-e89b-12d3-a456-426614174000",
        ],
    ),
    (
        "timeuuid",
        "timeuuid",
        &["now()", "now()", "00000000-0000-1000-8000-000000000000"],
    ),
    (
        "inet",
        "inet",
        &[
            "'0.0.0.0'",
            "'10.1.2.3'",
            "'::1'",
            "'2001:db8::8a2e:370:7334'",
            "'::ffff:1.2.3.4'",
        ],
    ),
    (
        "blob",
        "blob",
        &["0x00", "0x00ff7f80", "0xdeadbeefcafebabe0123456789abcdef01"],
    ),
];

/// Composite partition keys: names of [`KEY_TYPES`] entries, in key order.
const COMPOSITES: &[&[&str]] = &[
    &["int", "text"],
    &["uuid", "timestamp", "blob"],
    &["bigint", "date", "inet", "boolean"],
    &[
        "varint", "decimal", "double", "float", "time", "tinyint", "smallint", "ascii", "timeuuid",
    ],
];

fn values_of(ty: &str) -> &'static [&'static str] {
    KEY_TYPES
        .iter()
        .find(|(name, _, _)| *name == ty)
        .map(|(_, _, v)| *v)
        .expect("a key type")
}

/// Cassandra's tokens of every row of `table`, sorted.
async fn cassandra_tokens(session: &Session, table: &str, key: &[String]) -> Vec<i64> {
    let mut tokens: Vec<i64> = session
        .query_iter(
            format!("SELECT token({}) FROM {KEYSPACE}.{table}", key.join(", ")),
            (),
        )
        .await
        .expect("token query")
        .rows_stream::<(i64,)>()
        .expect("token rows")
        .map_ok(|(t,)| t)
        .try_collect()
        .await
        .expect("tokens");
    tokens.sort_unstable();
    tokens
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_computed_from_target_rows_equal_cassandras() {
    let session = support::cassandra().await;
    support::keyspace(&session, KEYSPACE).await;
    let client = support::postgres().await;
    // (table, key columns, rows as CQL value lists)
    let mut tables: Vec<(String, Vec<String>, Vec<String>)> = Vec::new();
    for (name, ty, values) in KEY_TYPES {
        let table = format!("tok_{name}");
        support::recreate_table(
            &session,
            &format!("CREATE TABLE {KEYSPACE}.{table} (k {ty} PRIMARY KEY, v int)"),
        )
        .await;
        tables.push((
            table,
            vec!["k".into()],
            values.iter().map(|v| v.to_string()).collect(),
        ));
    }
    for (i, parts) in COMPOSITES.iter().enumerate() {
        let table = format!("tok_composite_{i}");
        let columns: Vec<String> = (0..parts.len()).map(|j| format!("k{j}")).collect();
        let defs: Vec<String> = parts
            .iter()
            .zip(&columns)
            .map(|(t, c)| format!("{c} {t}"))
            .collect();
        support::recreate_table(
            &session,
            &format!(
                "CREATE TABLE {KEYSPACE}.{table} ({}, v int, PRIMARY KEY (({})))",
                defs.join(", "),
                columns.join(", ")
            ),
        )
        .await;
        // Row r takes value r (cycling) of each column's type.
        let rows = (0..6)
            .map(|r| {
                parts
                    .iter()
                    .map(|t| {
                        let v = values_of(t);
                        v[r % v.len()].to_string()
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .collect();
        tables.push((table, columns, rows));
    }
    let mut config_tables = String::new();
    for (table, key, rows) in &tables {
        for (i, values) in rows.iter().enumerate() {
            support::cql(
                &session,
                &format!(
                    "INSERT INTO {KEYSPACE}.{table} ({}, v) VALUES ({values}, {i})",
                    key.join(", ")
                ),
            )
            .await;
        }
        client
            .batch_execute(&format!("DROP TABLE IF EXISTS e2e_validate_{table}"))
            .await
            .expect("drop target");
        config_tables.push_str(&format!(
            "[[table]]\nsource = \"{KEYSPACE}.{table}\"\ntarget = \"e2e_validate_{table}\"\n\n"
        ));
    }
    let dir = support::scratch_dir("validate_tokens");
    let config = support::write_config(&dir, "splits = 4\ncreate_tables = true", &config_tables);
    let report = support::migrate_ok(&config);
    let loaded = ferry::pipeline::Config::load(&config).expect("config");
    for ((table, key, rows), t) in tables.iter().zip(&loaded.tables) {
        let migrated = &report["tables"]
            .as_array()
            .expect("tables")
            .iter()
            .find(|r| r["source"] == t.source.as_str())
            .expect("table report")["rows_written"];
        let expected = cassandra_tokens(&session, table, key).await;
        assert_eq!(
            migrated.as_u64(),
            Some(expected.len() as u64),
            "{table}: rows migrated ({} inserted, some may share a key)",
            rows.len()
        );
        let mut local: Vec<i64> = ferry::pipeline::validate::target_tokens(&loaded, t)
            .await
            .unwrap_or_else(|e| panic!("{table}: {e}"))
            .into_iter()
            .map(|t| t.unwrap_or_else(|| panic!("{table}: a row without a token")))
            .collect();
        local.sort_unstable();
        assert_eq!(local, expected, "{table}: tokens");
    }
}

/// The torture table (every CQL type) after a clean migration: every split equal, using the
/// run's stored split plan.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_migration_of_every_type_validates_equal() {
    const KS: &str = "ferry_e2e_validate_torture";
    let session = support::cassandra().await;
    let client = support::postgres().await;
    crate::torture::seed_into(&session, KS, "everything").await;
    client
        .batch_execute("DROP TABLE IF EXISTS e2e_validate_torture")
        .await
        .expect("drop target");
    let dir = support::scratch_dir("validate_torture");
    let config = support::write_config(
        &dir,
        "splits = 6\nconnections = 2\ncreate_tables = true",
        &format!("[[table]]\nsource = \"{KS}.everything\"\ntarget = \"e2e_validate_torture\""),
    );
    let migrated = support::migrate_ok(&config);
    let rejected = migrated["tables"][0]["rows_rejected"]
        .as_u64()
        .expect("rejects");
    let report = validate(&config, "validate", &[], 0);
    let t = &report["tables"][0];
    assert_eq!(report["status"], "ok", "{report}");
    assert_eq!(t["equal"], true, "{t}");
    assert_eq!(t["split_plan"], "stored", "{t}");
    assert_eq!(t["unit_semantics"], "split", "{t}");
    assert_eq!(t["splits_checked"], 6, "{t}");
    assert_eq!(t["splits_equal"], 6, "{t}");
    assert_eq!(t["rows_rejected_source"].as_u64(), Some(rejected), "{t}");
    assert_eq!(
        t["rows_source"].as_u64(),
        Some(crate::torture::SEEDED_ROWS as u64 - rejected),
        "{t}"
    );
    assert_eq!(t["rows_target"], t["rows_source"], "{t}");

    // A changed value in a column PostgreSQL stores in its own form is still found.
    // Row (1, 4) holds a decimal with a negative exponent (-1E-5) and reached the target.
    let changed = client
        .execute(
            "UPDATE e2e_validate_torture SET c_decimal = c_decimal + 1 WHERE pk = 1 AND ck = 4",
            &[],
        )
        .await
        .expect("tamper");
    assert_eq!(changed, 1);
    let report = validate(&config, "validate-2", &[], 1);
    let d = &report["tables"][0]["differences"];
    assert_eq!(d["different"], 1, "{d}");
    assert_eq!(
        d["examples"]["different"][0]["columns"],
        serde_json::json!(["c_decimal"]),
        "{d}"
    );
}

const EVENTS: &str = "account_id bigint, event_id uuid, kind text, amount double, ok boolean, \
                      seq int, PRIMARY KEY ((account_id), event_id)";
const EVENT_ROWS: i64 = 1200;

/// `events` with [`EVENT_ROWS`] partitions of one row each.
async fn seed_events(session: &Session, table: &str) {
    support::keyspace(session, KEYSPACE).await;
    support::recreate_table(
        session,
        &format!("CREATE TABLE {KEYSPACE}.{table} ({EVENTS})"),
    )
    .await;
    let rows: Vec<(i64, Uuid, String, f64, bool, i32)> = (0..EVENT_ROWS)
        .map(|i| {
            (
                i,
                Uuid::from_u128(0x5eed_0000_0000_4000_8000_0000_0000_0000 | i as u128),
                ["view", "click", "buy"][i as usize % 3].to_string(),
                (i % 200) as f64 + 0.25,
                i % 2 == 0,
                i as i32,
            )
        })
        .collect();
    insert_all(
        session,
        &format!(
            "INSERT INTO {KEYSPACE}.{table} (account_id, event_id, kind, amount, ok, seq) \
             VALUES (?, ?, ?, ?, ?, ?)"
        ),
        rows,
    )
    .await;
}

fn keys_of(examples: &Value) -> BTreeSet<i64> {
    examples
        .as_array()
        .expect("examples")
        .iter()
        .map(|e| {
            e["key"]["account_id"]
                .as_str()
                .expect("key")
                .parse()
                .expect("a number")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_rows_are_found_by_kind_and_repaired() {
    let session = support::cassandra().await;
    let client = support::postgres().await;
    seed_events(&session, "tamper").await;
    client
        .batch_execute("DROP TABLE IF EXISTS e2e_validate_tamper")
        .await
        .expect("drop target");
    let dir = support::scratch_dir("validate_tamper");
    let config = support::write_config(
        &dir,
        "splits = 8\nconnections = 3\ncreate_tables = true",
        &format!("[[table]]\nsource = \"{KEYSPACE}.tamper\"\ntarget = \"e2e_validate_tamper\""),
    );
    support::migrate_ok(&config);
    let clean = validate(&config, "clean", &[], 0);
    assert_eq!(clean["tables"][0]["equal"], true, "{clean}");

    // Spread over the ring: every 97th account, so they fall in different splits.
    let deleted: BTreeSet<i64> = (0..7).map(|i| 13 + i * 97).collect();
    let updated: BTreeSet<i64> = (0..5).map(|i| 700 + i * 89).collect();
    let extra: BTreeSet<i64> = (0..3).map(|i| 1_000_000 + i * 7919).collect();
    for a in &deleted {
        client
            .execute(
                "DELETE FROM e2e_validate_tamper WHERE account_id = $1",
                &[a],
            )
            .await
            .expect("delete");
    }
    for a in &updated {
        client
            .execute(
                "UPDATE e2e_validate_tamper SET kind = 'tampered' WHERE account_id = $1",
                &[a],
            )
            .await
            .expect("update");
    }
    for a in &extra {
        client
            .execute(
                "INSERT INTO e2e_validate_tamper (account_id, event_id, kind, amount, ok, seq) \
                 VALUES ($1, gen_random_uuid(), 'extra', 1.0, true, 0)",
                &[a],
            )
            .await
            .expect("insert");
    }

    let report = validate(&config, "tampered", &[], 1);
    let t = &report["tables"][0];
    assert_eq!(report["status"], "failed", "{report}");
    assert_eq!(t["equal"], false, "{t}");
    let d = &t["differences"];
    assert_eq!(d["missing"], 7, "{d}");
    assert_eq!(d["different"], 5, "{d}");
    assert_eq!(d["extra"], 3, "{d}");
    assert_eq!(keys_of(&d["examples"]["missing"]), deleted, "{d}");
    assert_eq!(keys_of(&d["examples"]["different"]), updated, "{d}");
    assert_eq!(keys_of(&d["examples"]["extra"]), extra, "{d}");
    for e in d["examples"]["different"].as_array().expect("different") {
        assert_eq!(e["columns"], serde_json::json!(["kind"]), "{e}");
    }
    let splits: BTreeSet<u64> = ["missing", "different", "extra"]
        .iter()
        .flat_map(|k| d["examples"][k].as_array().expect("examples").clone())
        .map(|e| e["split"].as_u64().expect("a split"))
        .collect();
    assert!(
        splits.len() >= 4,
        "the rows fall in several splits: {splits:?}"
    );
    assert_eq!(
        t["different_splits"]
            .as_array()
            .expect("splits")
            .iter()
            .map(|s| s.as_u64().expect("split"))
            .collect::<BTreeSet<_>>(),
        splits,
        "{t}"
    );
    assert_eq!(t["rows_target"].as_i64(), Some(EVENT_ROWS - 7 + 3), "{t}");

    let repaired = validate(&config, "repair", &["--repair"], 0);
    let r = &repaired["tables"][0]["repair"];
    assert_eq!(r["splits_different_after"], 0, "{r}");
    assert_eq!(
        r["splits_repaired"].as_array().expect("repaired").len(),
        splits.len(),
        "{r}"
    );
    let after = validate(&config, "after", &[], 0);
    assert_eq!(after["tables"][0]["equal"], true, "{after}");
    let count: i64 = client
        .query_one("SELECT count(*) FROM e2e_validate_tamper", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(count, EVENT_ROWS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renaming_filtering_transform_validates_equal() {
    let session = support::cassandra().await;
    let client = support::postgres().await;
    seed_events(&session, "renamed").await;
    // The renamed key columns as the primary key, so a changed row is found as different.
    client
        .batch_execute(
            "DROP TABLE IF EXISTS e2e_validate_renamed; \
             CREATE TABLE e2e_validate_renamed (account bigint, id uuid, kind_upper text, \
             cents bigint, seq integer, PRIMARY KEY (account, id))",
        )
        .await
        .expect("create target");
    let dir = support::scratch_dir("validate_renamed");
    std::fs::write(
        dir.join("renamed.sql"),
        "SELECT account_id AS account, event_id AS id, upper(kind) AS kind_upper, \
         CAST(round(amount * 100) AS BIGINT) AS cents, seq \
         FROM source WHERE ok AND amount > 20",
    )
    .expect("write transform");
    let config = support::write_config(
        &dir,
        "splits = 5\nconnections = 2\ncreate_tables = true",
        &format!(
            "[[table]]\nsource = \"{KEYSPACE}.renamed\"\ntarget = \"e2e_validate_renamed\"\n\
             transform = \"renamed.sql\""
        ),
    );
    let migrated = support::migrate_ok(&config);
    let written = migrated["tables"][0]["rows_written"]
        .as_u64()
        .expect("rows");
    assert!(written > 0 && written < EVENT_ROWS as u64);
    let report = validate(&config, "validate", &[], 0);
    let t = &report["tables"][0];
    assert_eq!(t["equal"], true, "{t}");
    assert_eq!(t["unit_semantics"], "split", "{t}");
    assert_eq!(
        t["partition_key"],
        serde_json::json!({"account_id": "account"}),
        "{t}"
    );
    assert_eq!(t["rows_source"].as_u64(), Some(written), "{t}");

    // A subset, on both sides.
    let subset = validate(
        &config,
        "subset",
        &["--where", "cents >= 10000 AND kind_upper <> 'BUY'"],
        0,
    );
    let s = &subset["tables"][0];
    let expected: i64 = client
        .query_one(
            "SELECT count(*) FROM e2e_validate_renamed WHERE cents >= 10000 AND kind_upper <> 'BUY'",
            &[],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(s["rows_source"].as_i64(), Some(expected), "{s}");
    assert_eq!(s["equal"], true, "{s}");
    // The subset still sees a change inside it, and not one outside it.
    client
        .batch_execute(
            "UPDATE e2e_validate_renamed SET seq = -1 WHERE cents >= 10000 AND kind_upper = 'VIEW'",
        )
        .await
        .expect("tamper");
    let changed = validate(
        &config,
        "subset-changed",
        &["--where", "cents >= 10000 AND kind_upper <> 'BUY'"],
        1,
    );
    assert!(
        changed["tables"][0]["differences"]["different"].as_u64() > Some(0),
        "{changed}"
    );
    validate(
        &config,
        "subset-outside",
        &["--where", "kind_upper = 'CLICK'"],
        0,
    );

    // Anything but one boolean expression over output columns is refused before reading.
    for bad in [
        "cents > 1; DROP TABLE e2e_validate_renamed",
        "amount > 1",
        "pg_sleep(1) IS NULL",
        "cents + 1",
    ] {
        let out = support::ferry(&[
            "validate",
            "-c",
            config.to_str().expect("utf-8 path"),
            "--where",
            bad,
        ]);
        support::assert_clean_failure(&out, 2, &["--where"]);
    }
}
