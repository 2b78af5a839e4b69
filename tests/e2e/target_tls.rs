//! `[target.tls]` and the URL's `sslmode` against the TLS PostgreSQL of `scripts/services.sh up
//! --pg-tls` (localhost:54330, certificate for localhost/127.0.0.1 signed by the script's CA).

use ferry_benchmarks::datagen::{self, Shape};
use ferry_connectors::tls::{TlsConfig, TlsMode};
use ferry_connectors::yugabyte::{self, YugabyteConfig};

use crate::support;

const KEYSPACE: &str = "ferry_e2e_target_tls";

fn tls_target(mode: TlsMode, ca_file: Option<&str>) -> YugabyteConfig {
    let (url, _) = support::postgres_tls();
    let mut config = YugabyteConfig::new(url);
    config.tls = Some(TlsConfig {
        mode,
        ca_file: ca_file.map(Into::into),
        ..Default::default()
    });
    config
}

/// Whether the session of `client` is encrypted, from the server's side.
async fn encrypted(client: &tokio_postgres::Client) -> bool {
    client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .expect("pg_stat_ssl")
        .get(0)
}

async fn connect(config: &YugabyteConfig) -> tokio_postgres::Client {
    match yugabyte::connect(config).await {
        Ok(c) => c,
        Err(e) => panic!(
            "cannot connect to the TLS PostgreSQL: {e}; start it with `scripts/services.sh up --pg-tls`"
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_against_the_scripts_ca_migrates() {
    const ROWS: u64 = 3_000;
    let (url, ca) = support::postgres_tls();
    let session = support::cassandra().await;
    support::keyspace(&session, KEYSPACE).await;
    support::cql(&session, &format!("DROP TABLE IF EXISTS {KEYSPACE}.events")).await;
    support::cql(
        &session,
        &Shape::Quickstart.create_table_cql(KEYSPACE, "events"),
    )
    .await;
    datagen::generate(&session, Shape::Quickstart, KEYSPACE, "events", ROWS, 23)
        .await
        .expect("seed source table");
    let client = connect(&tls_target(TlsMode::VerifyFull, Some(&ca))).await;
    assert!(encrypted(&client).await);
    client
        .batch_execute(
            "DROP TABLE IF EXISTS e2e_target_tls; CREATE TABLE e2e_target_tls (account_id bigint \
             NOT NULL, event_id uuid NOT NULL, kind text, amount double precision, ok boolean, \
             seq integer, at timestamptz, PRIMARY KEY (account_id, event_id))",
        )
        .await
        .expect("create target table");

    let dir = support::scratch_dir("target_tls_verify_full");
    let config = support::write_config_with_target(
        &dir,
        &format!("url = \"{url}\"\n[target.tls]\nmode = \"verify-full\"\nca_file = \"{ca}\""),
        "connections = 2\nsplits = 6",
        &format!("[[table]]\nsource = \"{KEYSPACE}.events\"\ntarget = \"e2e_target_tls\""),
    );
    let report = support::migrate_ok(&config);
    assert_eq!(report["tables"][0]["rows_written"], ROWS);
    let count: i64 = client
        .query_one("SELECT count(*) FROM e2e_target_tls", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(count as u64, ROWS);
}

#[tokio::test]
async fn the_urls_sslmode_and_sslrootcert_work_too() {
    let (url, ca) = support::postgres_tls();
    let config = YugabyteConfig::new(format!("{url}?sslmode=verify-full&sslrootcert={ca}"));
    assert!(encrypted(&connect(&config).await).await);
    let config = YugabyteConfig::new(format!("{url}?sslmode=verify-ca&sslrootcert={ca}"));
    assert!(encrypted(&connect(&config).await).await);
}

#[tokio::test]
async fn require_encrypts_without_a_ca() {
    let client = connect(&tls_target(TlsMode::Require, None)).await;
    assert!(encrypted(&client).await);
}

#[test]
fn a_wrong_ca_fails_naming_the_server_and_the_file() {
    let (url, _) = support::postgres_tls();
    // The CA of the unit tests' certificates did not sign the server's.
    let wrong_ca = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/connectors/testdata/tls/ca.pem"
    );
    let dir = support::scratch_dir("target_tls_wrong_ca");
    let config = support::write_config_with_target(
        &dir,
        &format!("url = \"{url}\"\n[target.tls]\nmode = \"verify-full\"\nca_file = \"{wrong_ca}\""),
        "connections = 1\nsplits = 1",
        &format!("[[table]]\nsource = \"{KEYSPACE}.events\"\ntarget = \"e2e_target_tls\""),
    );
    let out = support::ferry(&["migrate", "--config", config.to_str().expect("utf-8")]);
    support::assert_clean_failure(
        &out,
        1,
        &[
            "TLS to the target server localhost:54330 failed",
            "not signed by the CA",
            "connectors/testdata/tls/ca.pem",
        ],
    );
}
