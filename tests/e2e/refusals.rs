//! Rows the target refuses (NOT NULL, CHECK, duplicate key) become rejects carrying the server's
//! message, and every other row of the same units is loaded.

use std::collections::{BTreeMap, HashSet};

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
    support::cql(&session, &format!("DROP TABLE IF EXISTS {KEYSPACE}.items")).await;
    support::cql(
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
    support::cql(
        &session,
        &format!("DROP TABLE IF EXISTS {KEYSPACE}.limited"),
    )
    .await;
    support::cql(
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
