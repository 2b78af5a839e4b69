//! Cassandra `vector<float, n>` columns into pgvector `vector(n)` columns, on a real PostgreSQL
//! with the pgvector extension (`scripts/services.sh up --pg-vector`).

use crate::migrate::KEYSPACE;
use crate::support;

/// 100 vectors arrive exactly (checked through pgvector's own text form); a vector with a NaN
/// element, which pgvector cannot store, is rejected with the reason; `ferry validate` finds the
/// rest equal, reading the vectors back in pgvector's binary form.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vectors_land_in_pgvector_columns() {
    let session = support::cassandra().await;
    let (url, client) = support::pgvector().await;
    support::keyspace(&session, KEYSPACE).await;
    support::recreate_table(
        &session,
        &format!("CREATE TABLE {KEYSPACE}.embeddings (id int PRIMARY KEY, e vector<float, 3>)"),
    )
    .await;
    for id in 0..100 {
        support::cql(
            &session,
            &format!(
                "INSERT INTO {KEYSPACE}.embeddings (id, e) VALUES ({id}, [{id}, {}, {}])",
                f64::from(id) / 2.0,
                -id
            ),
        )
        .await;
    }
    support::cql(
        &session,
        &format!("INSERT INTO {KEYSPACE}.embeddings (id, e) VALUES (1000, [1, NaN, 2])"),
    )
    .await;
    client
        .batch_execute(
            "DROP TABLE IF EXISTS vec_embeddings; \
             CREATE TABLE vec_embeddings (id integer PRIMARY KEY, e vector(3))",
        )
        .await
        .expect("target table");

    let dir = support::scratch_dir("vector");
    let config = support::write_config_with_target(
        &dir,
        &format!("url = \"{url}\""),
        "splits = 4",
        &format!("[[table]]\nsource = \"{KEYSPACE}.embeddings\"\ntarget = \"vec_embeddings\""),
    );
    let report = support::migrate_ok(&config);
    let t = &report["tables"][0];
    assert_eq!(t["rows_read"], 101, "{t}");
    assert_eq!(t["rows_written"], 100, "{t}");
    assert_eq!(t["rows_rejected"], 1, "{t}");
    let reason = t["rejects"][0]["reason"].as_str().expect("reason");
    assert!(reason.contains("NaN"), "{reason}");
    assert_eq!(t["rejects"][0]["column"], "e");

    let rows = client
        .query("SELECT id, e::text FROM vec_embeddings ORDER BY id", &[])
        .await
        .expect("target query");
    assert_eq!(rows.len(), 100);
    for r in rows {
        let id: i32 = r.get(0);
        let half = f64::from(id) / 2.0;
        let expected = format!("[{id},{half},{}]", -id);
        assert_eq!(r.get::<_, String>(1), expected, "id {id}");
    }
    // pgvector's operators work on what arrived.
    let nearest: i32 = client
        .query_one(
            "SELECT id FROM vec_embeddings ORDER BY e <-> '[10, 5.2, -10]' LIMIT 1",
            &[],
        )
        .await
        .expect("nearest")
        .get(0);
    assert_eq!(nearest, 10);

    let out = support::ferry(&[
        "validate",
        "-c",
        config.to_str().expect("utf-8"),
        "--where",
        "id < 1000",
    ]);
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
