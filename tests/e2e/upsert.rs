//! `mode = "upsert"`: units merged into the target by primary key, for catch-up runs and targets
//! that already hold some of the rows.

use std::collections::BTreeMap;

use scylla::client::session::Session;

use crate::migrate::{KEYSPACE, create_target};
use crate::staging::ferry_ok;
use crate::support;

/// First pass's write time, and the catch-up's (µs since the epoch).
const T0: i64 = 1_700_000_000_000_000;
const T1: i64 = T0 + 3_600_000_000; // 2023-11-14T23:13:20Z

/// `(id, seq) → v` of the Cassandra table, read with the driver.
async fn source_rows(session: &Session, table: &str) -> BTreeMap<(i32, i32), String> {
    let result = session
        .query_unpaged(format!("SELECT id, seq, v FROM {KEYSPACE}.{table}"), ())
        .await
        .expect("source query")
        .into_rows_result()
        .expect("rows");
    result
        .rows::<(i32, i32, String)>()
        .expect("row type")
        .map(|r| {
            let (id, seq, v) = r.expect("row");
            ((id, seq), v)
        })
        .collect()
}

async fn target_rows(client: &tokio_postgres::Client, table: &str) -> BTreeMap<(i32, i32), String> {
    client
        .query(&format!("SELECT id, seq, v FROM {table}"), &[])
        .await
        .expect("target query")
        .iter()
        .map(|r| ((r.get(0), r.get(1)), r.get(2)))
        .collect()
}

/// `{KEYSPACE}.<table> (id, seq, v)`, created afresh.
async fn source_table(session: &Session, table: &str) {
    support::keyspace(session, KEYSPACE).await;
    support::recreate_table(
        session,
        &format!(
            "CREATE TABLE {KEYSPACE}.{table} (id int, seq int, v text, PRIMARY KEY (id, seq))"
        ),
    )
    .await;
}

async fn insert(session: &Session, table: &str, id: i32, seq: i32, v: &str, at: i64) {
    support::cql(
        session,
        &format!(
            "INSERT INTO {KEYSPACE}.{table} (id, seq, v) VALUES ({id}, {seq}, '{v}') USING \
             TIMESTAMP {at}"
        ),
    )
    .await;
}

/// A full migration, then changes in Cassandra, then a catch-up run in upsert mode whose
/// transform keeps only rows written since: it reads just the changed rows, replaces the updated
/// ones, inserts the new ones, rejects the one the target's CHECK refuses, and leaves the target
/// equal to the source but for that one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catch_up_run_upserts_the_rows_written_since_the_first() {
    let session = support::cassandra().await;
    let client = support::postgres().await;
    let table = "upsert_delta";
    source_table(&session, table).await;
    for id in 0..100 {
        for seq in 0..10 {
            insert(&session, table, id, seq, &format!("v{id}-{seq}"), T0).await;
        }
    }
    create_target(
        &client,
        "e2e_upsert_delta",
        "id integer, seq integer, v text NOT NULL CHECK (v <> 'bad'), PRIMARY KEY (id, seq)",
    )
    .await;
    let dir = support::scratch_dir("upsert_delta");
    let tables = |extra: &str| {
        format!(
            "[[table]]\nsource = \"{KEYSPACE}.{table}\"\ntarget = \"e2e_upsert_delta\"\n{extra}"
        )
    };
    let first = support::migrate_ok(&support::write_config(
        &dir,
        "connections = 2\nsplits = 8",
        &tables(""),
    ));
    assert_eq!(first["tables"][0]["rows_written"], 1000);

    // Since the first pass: 40 rows updated (one of them to a value the target refuses) and 25
    // new ones.
    for id in 0..40 {
        let v = if id == 7 {
            "bad".into()
        } else {
            format!("new{id}")
        };
        insert(&session, table, id, 3, &v, T1).await;
    }
    for id in 100..125 {
        insert(&session, table, id, 0, &format!("added{id}"), T1).await;
    }
    std::fs::write(
        dir.join("since.sql"),
        // T1, written as docs/resume.md shows it.
        "SELECT * EXCEPT (_writetime_v) FROM source \
         WHERE _writetime_v >= CAST(to_timestamp_micros('2023-11-14T23:13:20Z') AS BIGINT)",
    )
    .expect("transform");
    let config = support::write_config(
        &dir,
        "connections = 2\nsplits = 8\nmode = \"upsert\"",
        &tables("transform = \"since.sql\"\nwritetime = [\"v\"]"),
    );
    let report = support::migrate_ok(&config);
    let t = &report["tables"][0];
    assert_eq!(t["rows_read"], 65, "only the rows written since: {t}");
    assert_eq!(t["rows_written"], 64, "{t}");
    assert_eq!(t["rows_rejected"], 1, "{t}");
    let reason = t["rejects"][0]["reason"].as_str().expect("a reason");
    assert!(
        reason.contains("23514") && reason.contains("relation \"e2e_upsert_delta\""),
        "{reason}"
    );

    let mut expected = source_rows(&session, table).await;
    assert_eq!(expected.len(), 1025);
    // The refused update leaves the first pass's value.
    expected.insert((7, 3), "v7-3".into());
    assert_eq!(target_rows(&client, "e2e_upsert_delta").await, expected);

    // `explain` says what the mode does.
    let out = support::ferry(&["explain", "-c", config.to_str().expect("utf-8")]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("merged into the target by primary key"),
        "{text}"
    );
}

/// A transform that maps several source rows to one target key: the row copied last wins (the
/// highest clustering key of each partition), rows the source does not touch stay, and every row
/// read counts as written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_of_one_key_merge_as_sequential_upserts_would() {
    let session = support::cassandra().await;
    let client = support::postgres().await;
    let table = "upsert_last";
    source_table(&session, table).await;
    for id in 0..50 {
        for seq in 0..=id % 5 {
            insert(&session, table, id, seq, &format!("v{id}-{seq}"), T0).await;
        }
    }
    create_target(
        &client,
        "e2e_upsert_last",
        "id integer PRIMARY KEY, v text, note text DEFAULT 'untouched'",
    )
    .await;
    client
        .batch_execute(
            "INSERT INTO e2e_upsert_last (id, v, note) VALUES (3, 'old', 'kept'), \
             (1000, 'keep', 'kept')",
        )
        .await
        .expect("rows already in the target");
    let dir = support::scratch_dir("upsert_last");
    std::fs::write(dir.join("by_id.sql"), "SELECT id, v FROM source").expect("transform");
    let config = support::write_config(
        &dir,
        "connections = 2\nsplits = 4\nmode = \"upsert\"",
        &format!(
            "[[table]]\nsource = \"{KEYSPACE}.{table}\"\ntarget = \"e2e_upsert_last\"\n\
             transform = \"by_id.sql\""
        ),
    );
    let report = support::migrate_ok(&config);
    let t = &report["tables"][0];
    let read: i64 = (0..50).map(|id| id % 5 + 1).sum();
    assert_eq!(t["rows_read"], read, "{t}");
    assert_eq!(t["rows_written"], read, "{t}");
    assert_eq!(t["rows_rejected"], 0, "{t}");

    assert_last_rows_won(&client).await;

    // The same through staging: dumped through the transform, the target's values spoiled, then
    // loaded in upsert mode under a run of its own: every row is merged again.
    let staged = dir.join("staged");
    let staged = staged.to_str().expect("utf-8");
    let dump = ferry_ok("dump", &config, &["--to", staged]);
    assert_eq!(dump["tables"][0]["rows_written"], read, "{dump}");
    client
        .batch_execute("UPDATE e2e_upsert_last SET v = 'stale' WHERE id < 1000")
        .await
        .expect("spoil");
    // A run id of its own each time: an earlier test run's checkpoints stand for an older table.
    let run_id = support::unique_run_id(&dir);
    let load = ferry_ok("load", &config, &["--from", staged, "--run-id", &run_id]);
    assert_eq!(load["tables"][0]["rows_written"], read, "{load}");
    assert_last_rows_won(&client).await;
}

/// `e2e_upsert_last` holds per id the value of its highest `seq`, the notes it had, and the row
/// the source does not have.
async fn assert_last_rows_won(client: &tokio_postgres::Client) {
    let rows: BTreeMap<i32, (String, String)> = client
        .query("SELECT id, v, note FROM e2e_upsert_last", &[])
        .await
        .expect("target query")
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2))))
        .collect();
    assert_eq!(rows.len(), 51);
    for id in 0..50 {
        let note = if id == 3 { "kept" } else { "untouched" };
        let expected = (format!("v{id}-{}", id % 5), note.to_string());
        assert_eq!(rows[&id], expected, "id {id}");
    }
    assert_eq!(rows[&1000], ("keep".to_string(), "kept".to_string()));
}

/// Upserts need a key to match rows on: a target without a primary key is refused before any
/// row moves, by `migrate` and by `dry-run`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_without_a_primary_key_is_refused_before_anything_moves() {
    let session = support::cassandra().await;
    let client = support::postgres().await;
    let table = "upsert_nokey";
    source_table(&session, table).await;
    insert(&session, table, 1, 1, "x", T0).await;
    create_target(
        &client,
        "e2e_upsert_nokey",
        "id integer, seq integer, v text",
    )
    .await;
    let dir = support::scratch_dir("upsert_nokey");
    let config = support::write_config(
        &dir,
        "mode = \"upsert\"",
        &format!("[[table]]\nsource = \"{KEYSPACE}.{table}\"\ntarget = \"e2e_upsert_nokey\""),
    );
    let path = config.to_str().expect("utf-8");
    let out = support::ferry(&["migrate", "-c", path]);
    support::assert_clean_failure(
        &out,
        1,
        &[
            "upsert mode refused for \"public\".\"e2e_upsert_nokey\"",
            "no primary key",
        ],
    );
    let count: i64 = client
        .query_one("SELECT count(*) FROM e2e_upsert_nokey", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(count, 0);

    let out = support::ferry(&["dry-run", "-c", path]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("upsert mode refused") && text.contains("no primary key"),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
