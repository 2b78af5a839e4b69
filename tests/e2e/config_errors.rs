//! Bad input exits non-zero with a message naming the problem: no panic, no backtrace.

use crate::support::{self, assert_clean_failure};

#[test]
fn a_missing_config_file_is_named() {
    let out = support::ferry(&["migrate", "--config", "/nonexistent/ferry.toml"]);
    assert_clean_failure(
        &out,
        2,
        &["cannot read config file /nonexistent/ferry.toml"],
    );
}

#[test]
fn an_unknown_field_is_named() {
    let dir = support::scratch_dir("config_unknown_field");
    let config = support::write_config(&dir, "conections = 4", "[[table]]\nsource = \"ks.t\"");
    let out = support::ferry(&["migrate", "--config", config.to_str().expect("utf-8 path")]);
    assert_clean_failure(&out, 2, &["unknown field", "conections"]);
}

#[test]
fn an_unreachable_cassandra_is_named_with_the_fix() {
    let dir = support::scratch_dir("config_unreachable");
    let config = support::unreachable_cassandra_config(&dir);
    let report = dir.join("report.json");
    let out = support::ferry(&[
        "migrate",
        "--config",
        config.to_str().expect("utf-8 path"),
        "--report",
        report.to_str().expect("utf-8 path"),
    ]);
    assert_clean_failure(
        &out,
        1,
        &[
            "cannot connect to Cassandra at 127.0.0.1:1",
            "scripts/services.sh",
        ],
    );
    assert_eq!(support::read_report(&report)["status"], "failed");
}

#[tokio::test]
async fn a_missing_source_table_is_named() {
    let session = support::cassandra().await;
    support::keyspace(&session, "ferry_e2e").await;
    let dir = support::scratch_dir("config_missing_table");
    let config = support::write_config(
        &dir,
        "connections = 1",
        "[[table]]\nsource = \"ferry_e2e.no_such_table\"",
    );
    let out = support::ferry(&["migrate", "--config", config.to_str().expect("utf-8 path")]);
    assert_clean_failure(
        &out,
        1,
        &["Cassandra table ferry_e2e.no_such_table does not exist"],
    );
}

#[tokio::test]
async fn a_missing_target_table_is_named() {
    let session = support::cassandra().await;
    let client = support::postgres().await;
    support::keyspace(&session, "ferry_e2e").await;
    support::cql(
        &session,
        "CREATE TABLE IF NOT EXISTS ferry_e2e.only_in_source (id int PRIMARY KEY, v text)",
    )
    .await;
    client
        .batch_execute("DROP TABLE IF EXISTS only_in_source")
        .await
        .expect("drop target");
    let dir = support::scratch_dir("config_missing_target");
    let config = support::write_config(
        &dir,
        "connections = 1",
        "[[table]]\nsource = \"ferry_e2e.only_in_source\"",
    );
    let out = support::ferry(&["migrate", "--config", config.to_str().expect("utf-8 path")]);
    assert_clean_failure(
        &out,
        1,
        &["target table \"public\".\"only_in_source\" does not exist"],
    );
}
