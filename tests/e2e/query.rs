//! `ferry query` end to end: SQL over a seeded Cassandra table, checked against the generator.

use std::collections::BTreeMap;
use std::path::PathBuf;

use ferry_benchmarks::datagen::{self, QuickstartRow, Shape};
use tokio::sync::OnceCell;
use uuid::Uuid;

use crate::support::{self, assert_clean_failure, json_lines, query_ok};

const KEYSPACE: &str = "ferry_query";
const TABLE: &str = "events";
const ROWS: u64 = 3_000;
const SEED: u64 = 11;

static SEEDED: OnceCell<()> = OnceCell::const_new();

/// Seeds `ferry_query.events` once per test run, whichever test gets here first.
async fn seeded() {
    SEEDED
        .get_or_init(|| async {
            let session = support::cassandra().await;
            support::keyspace(&session, KEYSPACE).await;
            support::cql(
                &session,
                &format!("DROP TABLE IF EXISTS {KEYSPACE}.{TABLE}"),
            )
            .await;
            support::cql(
                &session,
                &Shape::Quickstart.create_table_cql(KEYSPACE, TABLE),
            )
            .await;
            datagen::generate(&session, Shape::Quickstart, KEYSPACE, TABLE, ROWS, SEED)
                .await
                .expect("seed ferry_query.events");
        })
        .await;
}

/// A config listing only the seeded table, with 8 splits.
fn config(name: &str) -> PathBuf {
    let dir = support::scratch_dir(name);
    support::write_config(
        &dir,
        "splits = 8",
        &format!("[[table]]\nsource = \"{KEYSPACE}.{TABLE}\""),
    )
}

#[tokio::test]
async fn count_star_equals_the_seeded_rows() {
    seeded().await;
    let config = config("query_count");
    let out = query_ok(
        &config,
        &[
            "--format",
            "json",
            "SELECT count(*) AS n FROM ferry_query.events",
        ],
    );
    let rows = json_lines(&out);
    assert_eq!(rows.len(), 1, "{out}");
    assert_eq!(rows[0]["n"], serde_json::json!(ROWS));
}

#[tokio::test]
async fn a_group_by_matches_the_generator() {
    seeded().await;
    let config = config("query_group_by");
    let out = query_ok(
        &config,
        &[
            "--format",
            "json",
            "SELECT kind, count(*) AS n, sum(seq) AS seq_sum, count(amount) AS amounts \
             FROM ferry_query.events GROUP BY kind",
        ],
    );
    // kind → (rows, sum of non-null seq, non-null amounts)
    let mut expected: BTreeMap<Option<String>, (u64, i64, u64)> = BTreeMap::new();
    for i in 0..ROWS {
        let r = QuickstartRow::generate(SEED, i);
        let e = expected.entry(r.kind).or_default();
        e.0 += 1;
        e.1 += r.seq.map_or(0, i64::from);
        e.2 += u64::from(r.amount.is_some());
    }
    let mut actual = BTreeMap::new();
    for row in json_lines(&out) {
        let kind = row["kind"].as_str().map(str::to_string);
        let n = row["n"].as_u64().expect("count is an integer");
        let seq_sum = row["seq_sum"].as_i64().expect("sum is an integer");
        let amounts = row["amounts"].as_u64().expect("count is an integer");
        actual.insert(kind, (n, seq_sum, amounts));
    }
    assert_eq!(actual, expected);
    // The generator's NULL kinds make a group of their own.
    assert!(actual.contains_key(&None));
}

#[tokio::test]
async fn csv_output_has_a_header_and_every_row() {
    seeded().await;
    let config = config("query_csv");
    let out = query_ok(
        &config,
        &[
            "--format",
            "csv",
            "SELECT account_id, event_id, seq FROM ferry_query.events",
        ],
    );
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("account_id,event_id,seq"));
    let mut rows = 0u64;
    for line in lines {
        let fields: Vec<&str> = line.split(',').collect();
        assert_eq!(fields.len(), 3, "{line}");
        fields[0].parse::<i64>().expect("account_id is an integer");
        let id = Uuid::parse_str(fields[1]).expect("event_id is a UUID");
        assert_eq!(fields[1], id.hyphenated().to_string());
        if !fields[2].is_empty() {
            let i: u64 = fields[2].parse().expect("seq is an integer");
            assert_eq!(id, QuickstartRow::generate(SEED, i).event_id, "{line}");
        }
        rows += 1;
    }
    assert_eq!(rows, ROWS);
}

#[tokio::test]
async fn json_output_parses_and_uuids_are_hyphenated_strings() {
    seeded().await;
    let config = config("query_json");
    let out = query_ok(
        &config,
        &[
            "--format",
            "json",
            "SELECT event_id, seq, kind FROM ferry_query.events",
        ],
    );
    let rows = json_lines(&out);
    assert_eq!(rows.len() as u64, ROWS);
    let mut checked = 0;
    for row in &rows {
        let text = row["event_id"].as_str().expect("event_id is a JSON string");
        assert_eq!(text.len(), 36, "{text}");
        let id = Uuid::parse_str(text).expect("event_id is a UUID");
        assert_eq!(text, id.hyphenated().to_string());
        // Explicit nulls: every key is present.
        assert!(row.get("kind").is_some(), "{row}");
        if let Some(i) = row["seq"].as_u64() {
            assert_eq!(id, QuickstartRow::generate(SEED, i).event_id);
            checked += 1;
        }
    }
    assert!(checked > ROWS / 2, "only {checked} rows had a seq");
}

#[tokio::test]
async fn the_table_format_is_capped_and_says_so() {
    seeded().await;
    let config = config("query_table_cap");
    let out = support::ferry(&[
        "query",
        "-c",
        config.to_str().expect("utf-8 path"),
        "--max-rows",
        "5",
        "SELECT event_id FROM ferry_query.events",
    ]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // 5 rows, a header line and three rules.
    assert_eq!(stdout.lines().count(), 5 + 4, "{stdout}");
    let first = stdout.lines().nth(3).expect("a data row");
    let cell = first.trim_matches(|c| c == '|' || c == ' ');
    Uuid::parse_str(cell).expect("the table prints UUID text");
    assert!(cell.contains('-'), "{cell}");
    assert!(stderr.contains("first 5 rows"), "{stderr}");
}

#[tokio::test]
async fn an_unlisted_table_of_a_configured_keyspace_is_queryable() {
    seeded().await;
    let session = support::cassandra().await;
    support::cql(
        &session,
        &format!("CREATE TABLE IF NOT EXISTS {KEYSPACE}.unlisted (k int PRIMARY KEY, v text)"),
    )
    .await;
    support::cql(
        &session,
        &format!("INSERT INTO {KEYSPACE}.unlisted (k, v) VALUES (1, 'one')"),
    )
    .await;
    let config = config("query_unlisted");
    let out = query_ok(
        &config,
        &[
            "--format",
            "csv",
            "SELECT v FROM ferry_query.unlisted WHERE k = 1",
        ],
    );
    assert_eq!(out, "v\none\n");
}

#[tokio::test]
async fn sql_from_a_file_works() {
    seeded().await;
    let config = config("query_sql_file");
    let sql = config.with_file_name("count.sql");
    std::fs::write(&sql, "SELECT count(*) AS n\nFROM ferry_query.events;\n").expect("write sql");
    let out = query_ok(
        &config,
        &[
            "--format",
            "csv",
            "--sql-file",
            sql.to_str().expect("utf-8 path"),
        ],
    );
    assert_eq!(out, format!("n\n{ROWS}\n"));
}

#[tokio::test]
async fn a_syntax_error_exits_2_naming_the_problem() {
    seeded().await;
    let config = config("query_syntax");
    let out = support::ferry(&[
        "query",
        "-c",
        config.to_str().expect("utf-8 path"),
        "SELEC count(*) FROM ferry_query.events",
    ]);
    assert_clean_failure(&out, 2, &["invalid query", "SELEC", "Line: 1, Column: 1"]);
}

#[tokio::test]
async fn an_unknown_table_or_column_exits_2_naming_it() {
    seeded().await;
    let config = config("query_unknown");
    let config = config.to_str().expect("utf-8 path");
    let out = support::ferry(&[
        "query",
        "-c",
        config,
        "SELECT * FROM ferry_query.no_such_table",
    ]);
    assert_clean_failure(&out, 2, &["ferry_query.no_such_table", "does not exist"]);

    let out = support::ferry(&["query", "-c", config, "SELECT * FROM events"]);
    assert_clean_failure(&out, 2, &["events", "keyspace.table"]);

    let out = support::ferry(&["query", "-c", config, "SELECT nope FROM ferry_query.events"]);
    assert_clean_failure(&out, 2, &["nope"]);
}

#[tokio::test]
async fn ddl_and_dml_are_refused() {
    seeded().await;
    let config = config("query_ddl");
    let config = config.to_str().expect("utf-8 path");
    let out = support::ferry(&["query", "-c", config, "DROP TABLE ferry_query.events"]);
    assert_clean_failure(&out, 2, &["DDL not supported"]);
    let out = support::ferry(&[
        "query",
        "-c",
        config,
        "INSERT INTO ferry_query.events (account_id) VALUES (1)",
    ]);
    assert_clean_failure(&out, 2, &["DML not supported"]);
}

#[test]
fn an_unreachable_cassandra_exits_1_with_the_connectors_message() {
    let dir = support::scratch_dir("query_unreachable");
    let config = support::unreachable_cassandra_config(&dir);
    let out = support::ferry(&[
        "query",
        "-c",
        config.to_str().expect("utf-8 path"),
        "SELECT * FROM ks.t",
    ]);
    assert_clean_failure(
        &out,
        1,
        &[
            "cannot connect to Cassandra at 127.0.0.1:1",
            "scripts/services.sh",
        ],
    );
}
