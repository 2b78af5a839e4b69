//! `token()` and filter pushdown: Ferry's `token()` is Cassandra's, token bounds are answered by
//! the scan exactly, simple column filters go to Cassandra and still give DataFusion's answer.

use std::collections::BTreeMap;

use ferry_benchmarks::datagen::{self, QuickstartRow, Shape};
use futures::TryStreamExt;

use crate::support::{self, json_lines, query_ok};

const KEYSPACE: &str = "ferry_pushdown";

/// Key types and CQL literals of keys to insert, one table each.
const KEY_TYPES: &[(&str, &str, &[&str])] = &[
    ("k_tinyint", "tinyint", &["-128", "0", "7", "127"]),
    ("k_smallint", "smallint", &["-32768", "1", "32767"]),
    (
        "k_int",
        "int",
        &["-2147483648", "0", "1", "42", "2147483647"],
    ),
    (
        "k_bigint",
        "bigint",
        &["-9223372036854775808", "-1", "0", "9223372036854775807"],
    ),
    ("k_boolean", "boolean", &["true", "false"]),
    ("k_float", "float", &["1.5", "-3.25", "0"]),
    ("k_double", "double", &["3.141592653589793", "-1e300"]),
    (
        "k_text",
        "text",
        &[
            "'a'",
            "'kremówki'",
            "'日本語'",
            "'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'",
        ],
    ),
    ("k_ascii", "ascii", &["'hello'", "'abc'"]),
    (
        "k_blob",
        "blob",
        &[
            "0x00",
            "0xff10fa99",
            "0xdeadbeefcafebabe00112233445566778899",
        ],
    ),
    (
        "k_uuid",
        "uuid",
        &[
            "f47ac10b-58cc-4372-a567-0e02b2c3d479",
            "00000000-0000-0000-0000-000000000000",
        ],
    ),
    ("k_timeuuid", "timeuuid", &["now()", "now()", "now()"]),
    (
        "k_timestamp",
        "timestamp",
        &["-14000000000000", "0", "1700000000123"],
    ),
    (
        "k_date",
        "date",
        &["'1970-01-01'", "'2024-02-29'", "'1000-01-01'"],
    ),
    (
        "k_time",
        "time",
        &["'00:00:00'", "'23:59:59.999999999'", "'12:00:00.5'"],
    ),
    (
        "k_varint",
        "varint",
        &[
            "0",
            "-1",
            "127",
            "128",
            "-129",
            "123456789012345678901234567890",
        ],
    ),
    (
        "k_decimal",
        "decimal",
        &["1.50", "-12.340", "100", "0.000001"],
    ),
    (
        "k_inet",
        "inet",
        &["'127.0.0.1'", "'::1'", "'2001:db8::ff00:42:8329'"],
    ),
];

#[tokio::test]
async fn token_udf_is_cassandras_token_for_every_key_type() {
    let session = support::cassandra().await;
    support::keyspace(&session, KEYSPACE).await;
    let mut tables = String::new();
    let mut selects = Vec::new();
    let mut expected: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut keyed = |name: &str, create: String, inserts: Vec<String>, key: &str| {
        tables.push_str(&format!("[[table]]\nsource = \"{KEYSPACE}.{name}\"\n"));
        selects.push(format!(
            "SELECT '{name}' AS tbl, token({key}) AS tok FROM {KEYSPACE}.{name}"
        ));
        (name.to_string(), create, inserts, key.to_string())
    };
    let mut specs = Vec::new();
    for (name, ty, keys) in KEY_TYPES {
        let inserts = keys
            .iter()
            .map(|k| format!("INSERT INTO {KEYSPACE}.{name} (k, v) VALUES ({k}, 1)"))
            .collect();
        let create = format!("CREATE TABLE {KEYSPACE}.{name} (k {ty} PRIMARY KEY, v int)");
        specs.push(keyed(name, create, inserts, "k"));
    }
    // Composite partition keys: each component length-prefixed and terminated.
    specs.push(keyed(
        "k_composite",
        format!(
            "CREATE TABLE {KEYSPACE}.k_composite (a text, b int, c uuid, v int, \
             PRIMARY KEY ((a, b, c)))"
        ),
        vec![
            format!("INSERT INTO {KEYSPACE}.k_composite (a, b, c, v) VALUES ('x', 1, uuid(), 1)"),
            format!(
                "INSERT INTO {KEYSPACE}.k_composite (a, b, c, v) VALUES ('kremówki', -5, uuid(), 1)"
            ),
        ],
        "a, b, c",
    ));
    for (name, create, inserts, key) in &specs {
        support::cql(&session, &format!("DROP TABLE IF EXISTS {KEYSPACE}.{name}")).await;
        support::cql(&session, create).await;
        for insert in inserts {
            support::cql(&session, insert).await;
        }
        let mut tokens: Vec<i64> = session
            .query_iter(format!("SELECT token({key}) FROM {KEYSPACE}.{name}"), ())
            .await
            .expect("read tokens")
            .rows_stream::<(i64,)>()
            .expect("token is a bigint")
            .map_ok(|(t,)| t)
            .try_collect()
            .await
            .expect("read tokens");
        tokens.sort_unstable();
        assert_eq!(tokens.len(), inserts.len(), "{name}: keys are distinct");
        expected.insert(name.clone(), tokens);
    }

    let dir = support::scratch_dir("pushdown_token_udf");
    let config = support::write_config(&dir, "splits = 4", &tables);
    let out = query_ok(&config, &["--format", "json", &selects.join(" UNION ALL ")]);
    let mut actual: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for row in json_lines(&out) {
        let table = row["tbl"].as_str().expect("table name").to_string();
        let token = row["tok"].as_i64().expect("token is an integer");
        actual.entry(table).or_default().push(token);
    }
    actual.values_mut().for_each(|t| t.sort_unstable());
    assert_eq!(actual, expected);
}

const EVENTS: &str = "events";
const ROWS: u64 = 4_000;
const SEED: u64 = 23;

/// Seeds `ferry_pushdown.events` and returns each row's token, from Cassandra.
async fn seeded_events() -> Vec<(i64, QuickstartRow)> {
    let session = support::cassandra().await;
    support::keyspace(&session, KEYSPACE).await;
    support::cql(
        &session,
        &format!("DROP TABLE IF EXISTS {KEYSPACE}.{EVENTS}"),
    )
    .await;
    support::cql(
        &session,
        &Shape::Quickstart.create_table_cql(KEYSPACE, EVENTS),
    )
    .await;
    datagen::generate(&session, Shape::Quickstart, KEYSPACE, EVENTS, ROWS, SEED)
        .await
        .expect("seed events");
    let tokens: BTreeMap<i64, i64> = session
        .query_iter(
            format!("SELECT account_id, token(account_id) FROM {KEYSPACE}.{EVENTS}"),
            (),
        )
        .await
        .expect("read tokens")
        .rows_stream::<(i64, i64)>()
        .expect("bigints")
        .try_collect()
        .await
        .expect("read tokens");
    (0..ROWS)
        .map(|i| {
            let row = QuickstartRow::generate(SEED, i);
            (tokens[&row.account_id], row)
        })
        .collect()
}

fn count(config: &std::path::Path, where_clause: &str) -> u64 {
    let sql = format!("SELECT count(*) AS n FROM {KEYSPACE}.{EVENTS} WHERE {where_clause}");
    let out = query_ok(config, &["--format", "json", &sql]);
    json_lines(&out)[0]["n"].as_u64().expect("a count")
}

fn physical_plan(config: &std::path::Path, where_clause: &str) -> String {
    let sql = format!("EXPLAIN SELECT seq FROM {KEYSPACE}.{EVENTS} WHERE {where_clause}");
    let out = query_ok(config, &["--format", "json", &sql]);
    json_lines(&out)
        .into_iter()
        .find(|r| r["plan_type"] == "physical_plan")
        .and_then(|r| r["plan"].as_str().map(str::to_string))
        .unwrap_or_else(|| panic!("no physical plan in {out}"))
}

#[tokio::test]
async fn token_bounds_and_column_filters_are_pushed_down_and_exact() {
    let rows = seeded_events_once().await;
    let dir = support::scratch_dir("pushdown_filters");
    let config = support::write_config(
        &dir,
        "splits = 8",
        &format!("[[table]]\nsource = \"{KEYSPACE}.{EVENTS}\""),
    );
    let (lo, hi) = (-3_000_000_000_000_000_000i64, 4_000_000_000_000_000_000i64);
    let in_bounds = |t: i64| t > lo && t <= hi;

    // Token bounds: answered by the scan alone (no FilterExec), exactly.
    let bounds = format!("token(account_id) > {lo} AND token(account_id) <= {hi}");
    let plan = physical_plan(&config, &bounds);
    assert!(!plan.contains("FilterExec"), "{plan}");
    let expected = rows.iter().filter(|(t, _)| in_bounds(*t)).count() as u64;
    assert!(expected > 0 && expected < ROWS, "the bounds cut the table");
    assert_eq!(count(&config, &bounds), expected);
    let between = format!("token(account_id) BETWEEN {lo} AND {hi}");
    let expected_between = rows.iter().filter(|(t, _)| *t >= lo && *t <= hi).count() as u64;
    assert_eq!(count(&config, &between), expected_between);
    // One partition's token: exactly that partition's rows.
    let (token, row) = &rows[17];
    let same = rows.iter().filter(|(t, _)| t == token).count() as u64;
    assert_eq!(
        count(&config, &format!("token(account_id) = {token}")),
        same
    );
    assert_eq!(
        count(
            &config,
            &format!(
                "{token} = token(account_id) AND account_id = {}",
                row.account_id
            )
        ),
        same
    );
    // Bounds that exclude everything.
    assert_eq!(
        count(
            &config,
            &format!("token(account_id) > {hi} AND token(account_id) < {lo}")
        ),
        0
    );

    // Column filters: sent to Cassandra with ALLOW FILTERING and applied again by DataFusion.
    let filters = "seq > 100 AND kind = 'refund'";
    let plan = physical_plan(&config, filters);
    assert!(plan.contains("ALLOW FILTERING"), "{plan}");
    assert!(plan.contains("FilterExec"), "{plan}");
    let expected = rows
        .iter()
        .filter(|(_, r)| r.seq.is_some_and(|s| s > 100) && r.kind.as_deref() == Some("refund"))
        .count() as u64;
    assert!(expected > 0, "the generator makes refunds with seq > 100");
    assert_eq!(count(&config, filters), expected);

    // Both, plus a filter Cassandra cannot take (an expression): still exact.
    let mixed = format!("{bounds} AND seq <= 500 AND seq + 1 > 10");
    let expected = rows
        .iter()
        .filter(|(t, r)| in_bounds(*t) && r.seq.is_some_and(|s| s <= 500 && s + 1 > 10))
        .count() as u64;
    assert_eq!(count(&config, &mixed), expected);
}

#[tokio::test]
async fn a_transform_over_a_token_range_migrates_just_that_range() {
    let rows = seeded_events_once().await;
    let dir = support::scratch_dir("pushdown_transform");
    let transform = dir.join("events.sql");
    std::fs::write(
        &transform,
        "SELECT account_id, event_id, seq FROM source WHERE token(account_id) > 0",
    )
    .expect("write transform");
    let client = support::postgres().await;
    client
        .batch_execute(
            "DROP TABLE IF EXISTS pushdown_events; \
             CREATE TABLE pushdown_events (account_id bigint, event_id uuid, seq int, \
             PRIMARY KEY (account_id, event_id))",
        )
        .await
        .expect("create target");
    let config = support::write_config(
        &dir,
        "splits = 8",
        &format!(
            "[[table]]\nsource = \"{KEYSPACE}.{EVENTS}\"\ntarget = \"pushdown_events\"\n\
             transform = \"events.sql\""
        ),
    );
    let report = support::migrate_ok(&config);
    let expected = rows.iter().filter(|(t, _)| *t > 0).count() as u64;
    assert_eq!(
        report["tables"][0]["rows_written"],
        serde_json::json!(expected)
    );
    // Only the matching token ranges were read at all.
    assert_eq!(
        report["tables"][0]["source_rows"],
        serde_json::json!(expected)
    );
    let n: i64 = client
        .query_one("SELECT count(*) FROM pushdown_events", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(n as u64, expected);
}

static EVENTS_SEEDED: tokio::sync::OnceCell<Vec<(i64, QuickstartRow)>> =
    tokio::sync::OnceCell::const_new();

async fn seeded_events_once() -> &'static [(i64, QuickstartRow)] {
    EVENTS_SEEDED.get_or_init(seeded_events).await
}
