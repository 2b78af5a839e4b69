//! `[source.tls]` and credentials against the real Cassandra of `scripts/services.sh`, whose
//! native port takes TLS (optionally) with a certificate signed by `$FERRY_CASSANDRA_TLS_CA`.
//!
//! Password authentication is off on the shared node, so credentials are checked for how they
//! are read and kept secret, not for the server's verdict.

use std::path::Path;

use ferry_benchmarks::datagen::{self, Shape};

use crate::support;

const KEYSPACE: &str = "ferry_e2e_tls";

/// Seeds `KEYSPACE.table` with `rows` rows and (re)creates the target table `target`.
async fn seed(table: &str, target: &str, rows: u64) {
    let session = support::cassandra().await;
    support::keyspace(&session, KEYSPACE).await;
    support::cql(
        &session,
        &format!("DROP TABLE IF EXISTS {KEYSPACE}.{table}"),
    )
    .await;
    support::cql(
        &session,
        &Shape::Quickstart.create_table_cql(KEYSPACE, table),
    )
    .await;
    datagen::generate(&session, Shape::Quickstart, KEYSPACE, table, rows, 11)
        .await
        .expect("seed source table");
    support::postgres()
        .await
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {target}; CREATE TABLE {target} (account_id bigint NOT NULL, \
             event_id uuid NOT NULL, kind text, amount double precision, ok boolean, seq integer, \
             at timestamptz, PRIMARY KEY (account_id, event_id))"
        ))
        .await
        .expect("create target table");
}

fn tables(table: &str, target: &str) -> String {
    format!("[[table]]\nsource = \"{KEYSPACE}.{table}\"\ntarget = \"{target}\"")
}

/// Migrates over TLS and checks the exact row counts, in the report and in the target.
async fn migrate_over_tls(name: &str, source: &str, rows: u64) -> (serde_json::Value, String) {
    let target = format!("e2e_tls_{name}");
    seed(name, &target, rows).await;
    let dir = support::scratch_dir(&format!("tls_{name}"));
    let config = support::write_config_with_source(
        &dir,
        source,
        "connections = 2\nsplits = 8",
        &tables(name, &target),
    );
    let report = support::migrate_ok(&config);
    let t = &report["tables"][0];
    assert_eq!(report["status"], "ok");
    assert_eq!(t["rows_read"], rows);
    assert_eq!(t["rows_written"], rows);
    assert_eq!(t["rows_rejected"], 0);
    assert_eq!(t["units_done"], 8);
    let count: i64 = support::postgres()
        .await
        .query_one(&format!("SELECT count(*) FROM {target}"), &[])
        .await
        .expect("count target")
        .get(0);
    assert_eq!(count as u64, rows);
    let report_text =
        std::fs::read_to_string(config.with_file_name("report.json")).expect("report");
    (report, report_text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_ca_migrates_every_row() {
    let (ca, _, _) = support::cassandra_tls_files();
    migrate_over_tls(
        "verify_ca",
        &format!("[source.tls]\nmode = \"verify-ca\"\nca_file = \"{ca}\""),
        5_000,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_by_ip_with_credentials_from_a_file() {
    let (ca, _, _) = support::cassandra_tls_files();
    assert!(
        support::cassandra_addr().starts_with("127.0.0.1:"),
        "verify-full is tested against 127.0.0.1, an IP SAN of the services' certificate"
    );
    // The password file sits next to the config and is named relatively. The node does not
    // ask for credentials (AllowAllAuthenticator), so this checks that they are read and
    // that the password shows nowhere.
    let dir = support::scratch_dir("tls_verify_full_pw");
    let password_file = dir.join("cassandra.pw");
    std::fs::write(&password_file, "pw-not-in-any-output\n").expect("write password file");
    let (_, report) = migrate_over_tls(
        "verify_full",
        &format!(
            "username = \"ferry\"\npassword_file = \"{}\"\n[source.tls]\nmode = \"verify-full\"\nca_file = \"{ca}\"",
            password_file.display()
        ),
        3_000,
    )
    .await;
    assert!(!report.contains("pw-not-in-any-output"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_mode_with_a_client_certificate_works() {
    let (_, cert, key) = support::cassandra_tls_files();
    migrate_over_tls(
        "require",
        &format!("[source.tls]\nmode = \"require\"\ncert_file = \"{cert}\"\nkey_file = \"{key}\""),
        2_000,
    )
    .await;
}

/// Runs `ferry migrate` with `source` settings over a table that need not exist (the failures
/// come first), and returns the output.
fn migrate_failing(name: &str, source: &str) -> std::process::Output {
    let dir = support::scratch_dir(&format!("tls_fail_{name}"));
    let config = support::write_config_with_source(
        &dir,
        source,
        "connections = 1",
        &tables("never_read", "e2e_tls_never_written"),
    );
    support::ferry(&["migrate", "--config", config.to_str().expect("utf-8 path")])
}

#[test]
fn a_wrong_ca_fails_naming_tls_and_the_ca_file() {
    // A CA that signed nothing the services use.
    let wrong_ca = Path::new(env!("CARGO_MANIFEST_DIR")).join("connectors/testdata/tls/ca.pem");
    let out = migrate_failing(
        "wrong_ca",
        &format!(
            "connect_timeout_ms = 3000\n[source.tls]\nmode = \"verify-ca\"\nca_file = \"{}\"",
            wrong_ca.display()
        ),
    );
    support::assert_clean_failure(
        &out,
        1,
        &[
            "TLS to Cassandra at",
            "verify-ca",
            "not signed by the CA in tls.ca_file",
            "connectors/testdata/tls/ca.pem",
        ],
    );
}

#[test]
fn a_missing_ca_file_is_named() {
    let out = migrate_failing(
        "missing_ca",
        "[source.tls]\nmode = \"verify-full\"\nca_file = \"/nonexistent/ferry-ca.pem\"",
    );
    support::assert_clean_failure(
        &out,
        1,
        &[
            "source.tls",
            "cannot read ca_file /nonexistent/ferry-ca.pem",
        ],
    );
}

#[test]
fn a_username_without_a_password_is_a_config_error() {
    let out = migrate_failing("user_only", "username = \"ferry\"");
    support::assert_clean_failure(
        &out,
        2,
        &["username is set but neither password nor password_file"],
    );
}

// --- The password-protected cluster of `scripts/services.sh up --cassandra-auth` (127.0.0.4),
// which also takes TLS with the same certificate, and there wants a client certificate
// (require_client_auth). That certificate names 127.0.0.1-3, not 127.0.0.4, which is what the
// verify-full test below relies on.

const AUTH_KEYSPACE: &str = "ferry_e2e_auth";

async fn seed_auth_node(table: &str, target: &str, rows: u64) {
    let session = support::cassandra_with_login().await;
    support::keyspace(&session, AUTH_KEYSPACE).await;
    support::cql(
        &session,
        &format!("DROP TABLE IF EXISTS {AUTH_KEYSPACE}.{table}"),
    )
    .await;
    support::cql(
        &session,
        &Shape::Quickstart.create_table_cql(AUTH_KEYSPACE, table),
    )
    .await;
    datagen::generate(&session, Shape::Quickstart, AUTH_KEYSPACE, table, rows, 13)
        .await
        .expect("seed source table");
    support::postgres()
        .await
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {target}; CREATE TABLE {target} (account_id bigint NOT NULL, \
             event_id uuid NOT NULL, kind text, amount double precision, ok boolean, seq integer, \
             at timestamptz, PRIMARY KEY (account_id, event_id))"
        ))
        .await
        .expect("create target table");
}

/// Runs `ferry migrate` against the password-protected node with `source` settings.
fn migrate_auth_node(
    name: &str,
    source: &str,
    table: &str,
    target: &str,
) -> (std::process::Output, std::path::PathBuf) {
    let (addr, _, _) = support::cassandra_auth();
    let dir = support::scratch_dir(&format!("auth_{name}"));
    let config = support::write_config_for(
        &dir,
        &addr,
        &format!("connect_timeout_ms = 3000\n{source}"),
        "connections = 2\nsplits = 4",
        &format!("[[table]]\nsource = \"{AUTH_KEYSPACE}.{table}\"\ntarget = \"{target}\""),
    );
    let report = dir.join("report.json");
    let out = support::ferry(&[
        "migrate",
        "--config",
        config.to_str().expect("utf-8 path"),
        "--report",
        report.to_str().expect("utf-8 path"),
    ]);
    (out, report)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_from_the_environment_logs_in_over_mutual_tls() {
    const ROWS: u64 = 3_000;
    let (_, user, password) = support::cassandra_auth();
    let (ca, cert, key) = support::cassandra_tls_files();
    seed_auth_node("events", "e2e_auth_events", ROWS).await;
    // `${FERRY_CASSANDRA_AUTH_PASSWORD}` is interpolated by Ferry from the environment the test
    // binary passes on.
    let (out, report) = migrate_auth_node(
        "login",
        &format!(
            "username = \"{user}\"\npassword = \"${{FERRY_CASSANDRA_AUTH_PASSWORD}}\"\n\
             [source.tls]\nmode = \"verify-ca\"\nca_file = \"{ca}\"\n\
             cert_file = \"{cert}\"\nkey_file = \"{key}\""
        ),
        "events",
        "e2e_auth_events",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ferry migrate failed:\n{stderr}");
    let report_text = std::fs::read_to_string(&report).expect("report");
    let report = support::read_report(&report);
    let t = &report["tables"][0];
    assert_eq!(t["rows_read"], ROWS);
    assert_eq!(t["rows_written"], ROWS);
    assert_eq!(t["rows_rejected"], 0);
    let count: i64 = support::postgres()
        .await
        .query_one("SELECT count(*) FROM e2e_auth_events", &[])
        .await
        .expect("count target")
        .get(0);
    assert_eq!(count as u64, ROWS);
    for text in [
        &*stderr,
        &*String::from_utf8_lossy(&out.stdout),
        &*report_text,
    ] {
        assert!(!text.contains(&password), "the password leaked:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_named_without_showing_it() {
    let (_, user, _) = support::cassandra_auth();
    let (out, report) = migrate_auth_node(
        "wrong_password",
        &format!("username = \"{user}\"\npassword = \"not-the-password-4711\""),
        "never_read",
        "e2e_auth_never_written",
    );
    support::assert_clean_failure(
        &out,
        1,
        &[
            "authentication to Cassandra at 127.0.0.4:9042 failed",
            "refused user \"ferry\"",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("not-the-password-4711"), "{stderr}");
    let report = std::fs::read_to_string(report).expect("report");
    assert!(!report.contains("not-the-password-4711"), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_credentials_for_a_protected_cluster_says_to_set_them() {
    let (out, _) = migrate_auth_node("no_login", "", "never_read", "e2e_auth_never_written");
    support::assert_clean_failure(
        &out,
        1,
        &[
            "authentication to Cassandra at 127.0.0.4:9042 failed",
            "set source.username",
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_refuses_a_certificate_that_does_not_name_the_node() {
    let (_, user, _) = support::cassandra_auth();
    let (ca, _, _) = support::cassandra_tls_files();
    let (out, _) = migrate_auth_node(
        "name_mismatch",
        &format!(
            "username = \"{user}\"\npassword = \"${{FERRY_CASSANDRA_AUTH_PASSWORD}}\"\n\
             [source.tls]\nmode = \"verify-full\"\nca_file = \"{ca}\""
        ),
        "never_read",
        "e2e_auth_never_written",
    );
    support::assert_clean_failure(
        &out,
        1,
        &[
            "TLS to Cassandra at 127.0.0.4:9042 failed (tls.mode = \"verify-full\")",
            "does not name the address",
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_wants_a_client_certificate_says_to_set_one() {
    let (_, user, _) = support::cassandra_auth();
    let (ca, _, _) = support::cassandra_tls_files();
    let (out, _) = migrate_auth_node(
        "no_client_cert",
        &format!(
            "username = \"{user}\"\npassword = \"${{FERRY_CASSANDRA_AUTH_PASSWORD}}\"\n\
             [source.tls]\nmode = \"verify-ca\"\nca_file = \"{ca}\""
        ),
        "never_read",
        "e2e_auth_never_written",
    );
    support::assert_clean_failure(
        &out,
        1,
        &[
            "TLS to Cassandra at 127.0.0.4:9042 failed (tls.mode = \"verify-ca\")",
            // The server's CertificateRequired alert races with it closing the connection, so
            // the driver's own text varies; the hint does not.
            "set tls.cert_file and tls.key_file",
        ],
    );
}
