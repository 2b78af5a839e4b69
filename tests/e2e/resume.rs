//! Exactly once across a crash: `ferry migrate` killed (SIGKILL) in the middle of a table, then
//! run again, leaves the target exactly equal to the source: no unit half-loaded, none twice.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::migrate::{KEYSPACE, create_target, seed_source, source_hash, target_hash};
use crate::support;

const COLUMNS: &str = "account_id bigint NOT NULL, event_id uuid NOT NULL, kind text, \
                       amount double precision, ok boolean, seq integer, at timestamptz";

async fn committed_units(client: &tokio_postgres::Client, run_id: &str) -> (i64, i64) {
    let row = client
        .query_one(
            "SELECT count(*), coalesce(sum(rows_written), 0)::bigint FROM ferry_state.units \
             WHERE run_id = $1",
            &[&run_id],
        )
        .await
        .expect("read checkpoints");
    (row.get(0), row.get(1))
}

async fn target_rows(client: &tokio_postgres::Client) -> i64 {
    client
        .query_one("SELECT count(*) FROM e2e_resume", &[])
        .await
        .expect("count")
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_mid_table_resumes_and_loads_every_row_exactly_once() {
    const ROWS: u64 = 60_000;
    const UNITS: i64 = 30;
    let session = support::cassandra().await;
    let client = support::postgres().await;
    seed_source(&session, "resume", ROWS, 41).await;
    // No primary key: a unit loaded twice would show as duplicate rows.
    create_target(&client, "e2e_resume", COLUMNS).await;

    let dir = support::scratch_dir("resume");
    let run_id = support::unique_run_id(&dir);
    // One connection and small pages, so the run takes long enough to be killed halfway.
    let config = support::write_config_with_source(
        &dir,
        "page_size = 200",
        &format!("connections = 1\nsplits = {UNITS}\nid = \"{run_id}\""),
        &format!("[[table]]\nsource = \"{KEYSPACE}.resume\"\ntarget = \"e2e_resume\""),
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["migrate", "--config", config.to_str().expect("utf-8 path")])
        .env("FERRY_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start ferry migrate");
    support::wait_for_units(&client, &run_id, 3, &mut child, None, "before the kill").await;
    child.kill().expect("kill ferry");
    child.wait().expect("reap ferry");

    // At the crash: the target holds exactly the rows of the committed units.
    let (units_before, rows_before) = committed_units(&client, &run_id).await;
    assert!(
        units_before < UNITS,
        "the run finished before the kill ({units_before} units)"
    );
    assert_eq!(target_rows(&client).await, rows_before);

    // Run again: the committed units are skipped, the rest loaded.
    let report = support::migrate_ok(&config);
    let table = &report["tables"][0];
    assert_eq!(table["units_skipped"], serde_json::json!(units_before));
    assert_eq!(table["units_done"], serde_json::json!(UNITS));
    assert_eq!(table["rows_written_before"], serde_json::json!(rows_before));
    assert_eq!(
        table["rows_written"].as_i64().expect("rows") + rows_before,
        ROWS as i64
    );
    assert_eq!(
        target_hash(&client, "e2e_resume").await,
        source_hash(&session, "resume").await
    );

    // Once more: nothing left to do, nothing written.
    let report = support::migrate_ok(&config);
    assert_eq!(
        report["tables"][0]["units_skipped"],
        serde_json::json!(UNITS)
    );
    assert_eq!(report["tables"][0]["rows_written"], serde_json::json!(0));
    assert_eq!(target_rows(&client).await, ROWS as i64);

    // A target dropped and created again does not match the checkpoints: refused, not skipped.
    create_target(&client, "e2e_resume", COLUMNS).await;
    let out = support::ferry(&["migrate", "--config", config.to_str().expect("utf-8 path")]);
    support::assert_clean_failure(&out, 1, &["dropped and created again", "--restart"]);
    assert_eq!(target_rows(&client).await, 0);
    // --restart empties the target: a row that is not the source's goes. Off a terminal, it
    // must be confirmed with --yes, or nothing happens.
    client
        .batch_execute(
            "INSERT INTO e2e_resume (account_id, event_id) VALUES (-1, gen_random_uuid())",
        )
        .await
        .expect("insert a stray row");
    let config_arg = config.to_str().expect("utf-8 path");
    let out = support::ferry(&["migrate", "--config", config_arg, "--restart"]);
    support::assert_clean_failure(&out, 2, &["--yes"]);
    assert_eq!(target_rows(&client).await, 1);
    let out = support::ferry(&["migrate", "--config", config_arg, "--restart", "--yes"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        target_hash(&client, "e2e_resume").await,
        source_hash(&session, "resume").await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unit_whose_connection_is_terminated_leaves_nothing_and_succeeds_on_retry() {
    const ROWS: u64 = 40_000;
    let session = support::cassandra().await;
    let client = support::postgres().await;
    seed_source(&session, "terminated", ROWS, 43).await;
    // No primary key: rows of the killed attempt left behind would show as duplicates.
    create_target(&client, "e2e_terminated", COLUMNS).await;
    let dir = support::scratch_dir("resume_terminated");
    let config = support::write_config_with_source(
        &dir,
        "page_size = 200",
        "connections = 1\nsplits = 8",
        &format!("[[table]]\nsource = \"{KEYSPACE}.terminated\"\ntarget = \"e2e_terminated\""),
    );
    let config_path = config.clone();
    let run = tokio::task::spawn_blocking(move || support::migrate_ok(&config_path));

    // Terminate the backend in the middle of its first COPY.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let killed: Option<bool> = client
            .query_opt(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE query LIKE 'COPY \"public\".\"e2e_terminated\"%' AND state = 'active' \
                 LIMIT 1",
                &[],
            )
            .await
            .expect("look for the COPY")
            .map(|r| r.get(0));
        if killed == Some(true) {
            break;
        }
        assert!(
            !run.is_finished(),
            "the run ended before its COPY could be terminated"
        );
        assert!(Instant::now() < deadline, "no COPY seen in 120 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let report = run.await.expect("join");
    let table = &report["tables"][0];
    assert!(
        table["unit_retries"].as_u64().expect("retries") >= 1,
        "the terminated unit was retried: {table}"
    );
    assert_eq!(table["rows_written"], serde_json::json!(ROWS));
    assert_eq!(
        target_hash(&client, "e2e_terminated").await,
        source_hash(&session, "terminated").await
    );
}
