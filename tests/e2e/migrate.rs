//! `ferry migrate` end to end: Cassandra → (transform) → PostgreSQL, checked row for row.

use futures::TryStreamExt;
use scylla::client::session::Session;
use scylla::value::CqlTimestamp;
use uuid::Uuid;

use ferry_benchmarks::datagen::{self, QuickstartRow, Shape};

use crate::support::{self, ContentHash};

pub(crate) const KEYSPACE: &str = "ferry_e2e";

type SourceRow = (
    i64,
    Uuid,
    Option<String>,
    Option<f64>,
    Option<bool>,
    Option<i32>,
    Option<CqlTimestamp>,
);

fn canonical(
    account_id: i64,
    event_id: Uuid,
    kind: Option<String>,
    amount: Option<f64>,
    ok: Option<bool>,
    seq: Option<i32>,
    at_ms: Option<i64>,
) -> String {
    // f64 by bit pattern: equal means exactly equal.
    format!(
        "{account_id}|{event_id}|{kind:?}|{:?}|{ok:?}|{seq:?}|{at_ms:?}",
        amount.map(f64::to_bits)
    )
}

/// Hash of the Cassandra table, read through the driver's typed API.
pub(crate) async fn source_hash(session: &Session, table: &str) -> ContentHash {
    source_hash_in(session, KEYSPACE, table).await
}

/// [`source_hash`] of a table in `keyspace`.
pub(crate) async fn source_hash_in(session: &Session, keyspace: &str, table: &str) -> ContentHash {
    let mut hash = ContentHash::default();
    let mut rows = session
        .query_iter(
            format!(
                "SELECT account_id, event_id, kind, amount, ok, seq, at FROM {keyspace}.{table}"
            ),
            (),
        )
        .await
        .expect("source query")
        .rows_stream::<SourceRow>()
        .expect("source row type");
    while let Some((a, e, k, am, ok, s, at)) = rows.try_next().await.expect("source row") {
        hash.add(&canonical(a, e, k, am, ok, s, at.map(|t| t.0)));
    }
    hash
}

/// Hash of the PostgreSQL table, read through tokio-postgres' typed API.
pub(crate) async fn target_hash(client: &tokio_postgres::Client, table: &str) -> ContentHash {
    let mut hash = ContentHash::default();
    let rows = client
        .query(
            &format!("SELECT account_id, event_id, kind, amount, ok, seq, at FROM {table}"),
            &[],
        )
        .await
        .expect("target query");
    for r in rows {
        let at: Option<chrono::DateTime<chrono::Utc>> = r.get(6);
        hash.add(&canonical(
            r.get(0),
            r.get(1),
            r.get(2),
            r.get(3),
            r.get(4),
            r.get(5),
            at.map(|t| t.timestamp_millis()),
        ));
    }
    hash
}

pub(crate) async fn seed_source(
    session: &std::sync::Arc<Session>,
    table: &str,
    rows: u64,
    seed: u64,
) {
    support::keyspace(session, KEYSPACE).await;
    support::cql(session, &format!("DROP TABLE IF EXISTS {KEYSPACE}.{table}")).await;
    support::cql(
        session,
        &Shape::Quickstart.create_table_cql(KEYSPACE, table),
    )
    .await;
    datagen::generate(session, Shape::Quickstart, KEYSPACE, table, rows, seed)
        .await
        .expect("seed source table");
}

pub(crate) async fn create_target(client: &tokio_postgres::Client, table: &str, columns: &str) {
    client
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} ({columns})"
        ))
        .await
        .expect("create target table");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrates_100k_rows_of_seven_types_exactly() {
    const ROWS: u64 = 100_000;
    let session = support::cassandra().await;
    let client = support::postgres().await;
    seed_source(&session, "simple", ROWS, 7).await;
    create_target(
        &client,
        "e2e_simple",
        "account_id bigint NOT NULL, event_id uuid NOT NULL, kind text, amount double precision, \
         ok boolean, seq integer, at timestamptz, PRIMARY KEY (account_id, event_id)",
    )
    .await;

    let dir = support::scratch_dir("migrate_simple");
    let config = support::write_config(
        &dir,
        "connections = 4\nsplits = 24",
        &format!("[[table]]\nsource = \"{KEYSPACE}.simple\"\ntarget = \"e2e_simple\""),
    );
    let report = support::migrate_ok(&config);
    assert_eq!(report["command"], "migrate");
    assert_eq!(report["status"], "ok");
    let t = &report["tables"][0];
    assert_eq!(t["source"], format!("{KEYSPACE}.simple"));
    assert_eq!(t["target"], "public.e2e_simple");
    assert_eq!(t["rows_read"], ROWS);
    assert_eq!(t["rows_written"], ROWS);
    assert_eq!(t["rows_rejected"], 0);
    assert_eq!(t["units_total"], 24);
    assert_eq!(t["units_done"], 24);

    let source = source_hash(&session, "simple").await;
    let target = target_hash(&client, "e2e_simple").await;
    assert_eq!(source.rows, ROWS);
    assert_eq!(target, source, "target content differs from the source");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transform_file_renames_derives_and_filters() {
    const ROWS: u64 = 5_000;
    const SEED: u64 = 11;
    let session = support::cassandra().await;
    let client = support::postgres().await;
    seed_source(&session, "transformed", ROWS, SEED).await;
    create_target(
        &client,
        "e2e_transformed",
        "account_id bigint NOT NULL, event_id uuid NOT NULL, kind text, amount_cents bigint, \
         at timestamptz, PRIMARY KEY (account_id, event_id)",
    )
    .await;

    let dir = support::scratch_dir("migrate_transform");
    std::fs::write(
        dir.join("transformed.sql"),
        "SELECT account_id, event_id, upper(kind) AS kind,\n  \
         CAST(round(amount * 100) AS BIGINT) AS amount_cents, at\nFROM source\nWHERE ok\n",
    )
    .expect("write transform");
    let config = support::write_config(
        &dir,
        "connections = 2\nsplits = 8",
        &format!(
            "[[table]]\nsource = \"{KEYSPACE}.transformed\"\ntarget = \"e2e_transformed\"\n\
             transform = \"transformed.sql\""
        ),
    );
    support::migrate_ok(&config);

    // Expected rows, recomputed from the generator: only `ok = true` rows survive the filter.
    let mut expected: Vec<String> = (0..ROWS)
        .map(|i| QuickstartRow::generate(SEED, i))
        .filter(|r| r.ok == Some(true))
        .map(|r| {
            format!(
                "{}|{}|{:?}|{:?}|{:?}",
                r.account_id,
                r.event_id,
                r.kind.map(|k| k.to_uppercase()),
                r.amount.map(|a| (a * 100.0).round() as i64),
                r.at
            )
        })
        .collect();
    let mut actual: Vec<String> = client
        .query(
            "SELECT account_id, event_id, kind, amount_cents, at FROM e2e_transformed",
            &[],
        )
        .await
        .expect("target query")
        .iter()
        .map(|r| {
            let at: Option<chrono::DateTime<chrono::Utc>> = r.get(4);
            format!(
                "{}|{}|{:?}|{:?}|{:?}",
                r.get::<_, i64>(0),
                r.get::<_, Uuid>(1),
                r.get::<_, Option<String>>(2),
                r.get::<_, Option<i64>>(3),
                at.map(|t| t.timestamp_millis())
            )
        })
        .collect();
    expected.sort();
    actual.sort();
    assert!(!expected.is_empty() && expected.len() < ROWS as usize);
    assert_eq!(actual.len(), expected.len());
    assert_eq!(actual, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writetime_and_ttl_columns_are_opt_in() {
    let session = support::cassandra().await;
    let client = support::postgres().await;
    support::keyspace(&session, KEYSPACE).await;
    support::recreate_table(
        &session,
        &format!("CREATE TABLE {KEYSPACE}.cell_meta (id int PRIMARY KEY, v text, w int)"),
    )
    .await;
    for id in 0..20 {
        let ttl = if id % 2 == 0 { " AND TTL 3600" } else { "" };
        support::cql(
            &session,
            &format!(
                "INSERT INTO {KEYSPACE}.cell_meta (id, v, w) VALUES ({id}, 'v{id}', {id}) \
                 USING TIMESTAMP {}{ttl}",
                1_700_000_000_000_000i64 + id
            ),
        )
        .await;
    }
    create_target(
        &client,
        "e2e_cell_meta",
        "id integer PRIMARY KEY, v text, w integer, _writetime_v bigint, _ttl_v integer, \
         _writetime_w bigint",
    )
    .await;
    let dir = support::scratch_dir("migrate_cell_meta");
    let config = support::write_config(
        &dir,
        "connections = 2\nsplits = 4",
        &format!(
            "[[table]]\nsource = \"{KEYSPACE}.cell_meta\"\ntarget = \"e2e_cell_meta\"\n\
             writetime = [\"v\", \"w\"]\nttl = [\"v\"]"
        ),
    );
    support::migrate_ok(&config);
    let rows = client
        .query(
            "SELECT id, _writetime_v, _ttl_v, _writetime_w FROM e2e_cell_meta ORDER BY id",
            &[],
        )
        .await
        .expect("target query");
    assert_eq!(rows.len(), 20);
    for r in rows {
        let id: i32 = r.get(0);
        let writetime: i64 = r.get(1);
        let ttl: Option<i32> = r.get(2);
        assert_eq!(writetime, 1_700_000_000_000_000 + i64::from(id));
        assert_eq!(r.get::<_, i64>(3), writetime);
        if id % 2 == 0 {
            assert!(
                ttl.is_some_and(|t| t > 3000 && t <= 3600),
                "id {id}: ttl {ttl:?}"
            );
        } else {
            assert_eq!(ttl, None, "id {id}");
        }
    }

    // A key column has no write time of its own: refused, naming it.
    let config = support::write_config(
        &dir,
        "connections = 1",
        &format!(
            "[[table]]\nsource = \"{KEYSPACE}.cell_meta\"\ntarget = \"e2e_cell_meta\"\nwritetime = [\"id\"]"
        ),
    );
    let out = support::ferry(&["migrate", "--config", config.to_str().expect("utf-8 path")]);
    support::assert_clean_failure(&out, 1, &["writetime/ttl of \"id\" is not available"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_key_filter_reads_only_that_partition() {
    const ROWS: u64 = 20_000;
    const SEED: u64 = 23;
    let session = support::cassandra().await;
    let client = support::postgres().await;
    seed_source(&session, "keyed", ROWS, SEED).await;
    create_target(
        &client,
        "e2e_keyed",
        "account_id bigint NOT NULL, event_id uuid NOT NULL, seq integer, \
         PRIMARY KEY (account_id, event_id)",
    )
    .await;
    // The busiest account, so the check is not trivially about one row.
    let mut per_account = std::collections::HashMap::<i64, Vec<QuickstartRow>>::new();
    for i in 0..ROWS {
        let r = QuickstartRow::generate(SEED, i);
        per_account.entry(r.account_id).or_default().push(r);
    }
    let (account, expected) = per_account
        .into_iter()
        .max_by_key(|(a, rows)| (rows.len(), *a))
        .expect("rows exist");
    let dir = support::scratch_dir("migrate_keyed");
    std::fs::write(
        dir.join("keyed.sql"),
        format!("SELECT account_id, event_id, seq FROM source WHERE account_id = {account}\n"),
    )
    .expect("write transform");
    let config = support::write_config(
        &dir,
        "connections = 2\nsplits = 8",
        &format!(
            "[[table]]\nsource = \"{KEYSPACE}.keyed\"\ntarget = \"e2e_keyed\"\ntransform = \"keyed.sql\""
        ),
    );
    let report = support::migrate_ok(&config);
    let t = &report["tables"][0];
    assert_eq!(t["rows_written"], expected.len() as u64);
    // Pushed down: the scan read that partition and nothing else.
    assert_eq!(t["source_rows"], expected.len() as u64);
    let mut actual: Vec<(Uuid, Option<i32>)> = client
        .query("SELECT event_id, seq FROM e2e_keyed", &[])
        .await
        .expect("target query")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let mut wanted: Vec<(Uuid, Option<i32>)> =
        expected.iter().map(|r| (r.event_id, r.seq)).collect();
    actual.sort();
    wanted.sort();
    assert_eq!(actual, wanted);
}

/// The benchmark generator's narrow, wide (40 columns) and collections (lists, sets, maps, UDTs)
/// shapes migrate into tables `create_tables` makes, every row written and none rejected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_benchmark_shapes_migrate_exactly() {
    const ROWS: u64 = 3_000;
    let session = support::cassandra().await;
    let client = support::postgres().await;
    support::keyspace(&session, KEYSPACE).await;
    for shape in [Shape::Narrow, Shape::Wide, Shape::Collections] {
        let table = format!("shape_{}", shape.name());
        let target = format!("e2e_shape_{}", shape.name());
        support::cql(
            &session,
            &format!("DROP TABLE IF EXISTS {KEYSPACE}.{table}"),
        )
        .await;
        if let Some(cql) = shape.create_types_cql(KEYSPACE) {
            support::cql(&session, &cql).await;
        }
        support::cql(&session, &shape.create_table_cql(KEYSPACE, &table)).await;
        datagen::generate(&session, shape, KEYSPACE, &table, ROWS, 5)
            .await
            .expect("generate the shape");
        client
            .batch_execute(&format!("DROP TABLE IF EXISTS public.{target}"))
            .await
            .expect("drop the target");
        let dir = support::scratch_dir(&format!("shape_{}", shape.name()));
        let config = support::write_config(
            &dir,
            "connections = 2\nsplits = 8\ncreate_tables = true",
            &format!("[[table]]\nsource = \"{KEYSPACE}.{table}\"\ntarget = \"{target}\""),
        );
        let report = dir.join("report.json");
        let out = support::ferry(&[
            "migrate",
            "-c",
            config.to_str().expect("utf-8 path"),
            "--report",
            report.to_str().expect("utf-8 path"),
        ]);
        assert!(
            out.status.success(),
            "{}: {}",
            shape.name(),
            String::from_utf8_lossy(&out.stderr)
        );
        let t = &support::read_report(&report)["tables"][0];
        assert_eq!(t["rows_written"], ROWS, "{}: {t}", shape.name());
        assert_eq!(t["rows_rejected"], 0, "{}: {t}", shape.name());
        let count: i64 = client
            .query_one(&format!("SELECT count(*) FROM public.{target}"), &[])
            .await
            .expect("count")
            .get(0);
        assert_eq!(count as u64, ROWS, "{}", shape.name());
        let columns: i64 = client
            .query_one(
                "SELECT count(*) FROM information_schema.columns WHERE table_name = $1",
                &[&target],
            )
            .await
            .expect("columns")
            .get(0);
        assert_eq!(columns as usize, shape.columns().len(), "{}", shape.name());
    }
}

/// `source.max_rows_per_s` spreads the read over time: 6,000 rows at 2,000 rows/s take at least
/// the time the cap allows (less what the requests in flight reserved ahead), and arrive whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_rate_cap_holds_the_read_to_it() {
    const ROWS: u64 = 6_000;
    const RATE: u64 = 2_000;
    let session = support::cassandra().await;
    let client = support::postgres().await;
    seed_source(&session, "rate_capped", ROWS, 11).await;
    create_target(
        &client,
        "e2e_rate_capped",
        "account_id bigint NOT NULL, event_id uuid NOT NULL, kind text, \
         amount double precision, ok boolean, seq integer, at timestamptz",
    )
    .await;
    let dir = support::scratch_dir("migrate_rate_capped");
    let config = support::write_config_with_source(
        &dir,
        &format!("page_size = 200\nmax_rows_per_s = {RATE}"),
        "connections = 2\nsplits = 4",
        &format!("[[table]]\nsource = \"{KEYSPACE}.rate_capped\"\ntarget = \"e2e_rate_capped\""),
    );
    let report = support::migrate_ok(&config);
    let t = &report["tables"][0];
    assert_eq!(t["rows_written"], ROWS, "{t}");
    // At most two page requests per split are ahead of the rows decoded: 8 × 200 rows.
    let floor = (ROWS - 8 * 200) as f64 / RATE as f64;
    let elapsed = t["elapsed_s"].as_f64().expect("elapsed_s");
    assert!(elapsed >= floor, "{elapsed:.2}s < {floor:.2}s: {t}");
    assert_eq!(
        target_hash(&client, "e2e_rate_capped").await,
        source_hash(&session, "rate_capped").await
    );
}
