//! Faults in the middle of a migration (issue 6): `ferry` killed with SIGKILL and resumed, its
//! target connections terminated by the server, its Cassandra stopped and started again. Each
//! time the end result is exact: the target holds the transformed source, every row once, and
//! the run state records each unit once, with the rows the target holds.
//!
//! The expected side is computed here, independently of Ferry: the source rows are read from
//! Cassandra through the driver, the transform is applied in Rust, and the count and an
//! order-independent hash are compared with the target's rows read through tokio-postgres.
//!
//! Random choices (kill moments, termination intervals) come from one seed, printed at the
//! start of each test; `FERRY_FAULTS_SEED=<seed>` repeats a run.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use futures::{StreamExt, TryStreamExt, stream};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::statement::batch::{Batch, BatchType};
use scylla::value::{CqlTimestamp, MaybeUnset};
use uuid::Uuid;

use ferry_benchmarks::datagen::{QuickstartRow, Shape};

use crate::support::{self, ContentHash, committed_units, tail, wait_for_units};

/// This module's keyspace, on node 1 and on the fault node alike.
pub(crate) const KEYSPACE: &str = "ferry_faults";
/// The 500k-row table the SIGKILL and termination tests read (on node 1; read-only).
pub(crate) const SHARED_SOURCE: &str = "source_500k";
const SHARED_ROWS: u64 = 500_000;
const SHARED_SEED: u64 = 6_001;
pub(crate) const UNITS: i64 = 64;

/// Reshapes every row: renames, derives and casts columns, and filters some rows out, so the
/// target cannot equal the raw source by accident. [`transformed`] is the same in Rust.
const TRANSFORM_SQL: &str = "\
SELECT account_id AS account,
       event_id AS event,
       upper(kind) AS kind,
       CAST(round(amount * 100) AS BIGINT) AS amount_cents,
       coalesce(ok, false) AS ok,
       seq,
       at AS happened_at,
       CAST(at AS DATE) AS day
FROM source
WHERE seq IS NULL OR seq % 10 <> 3
";

const TARGET_COLUMNS: &str = "account bigint NOT NULL, event uuid NOT NULL, kind text, \
    amount_cents bigint, ok boolean NOT NULL, seq integer, happened_at timestamptz, day date, \
    PRIMARY KEY (account, event)";

const TARGET_SELECT: &str = "account, event, kind, amount_cents, ok, seq, happened_at, day";

// ---------------------------------------------------------------------------------------------
// The expected side: source rows, transformed in Rust
// ---------------------------------------------------------------------------------------------

type SourceRow = (
    i64,
    Uuid,
    Option<String>,
    Option<f64>,
    Option<bool>,
    Option<i32>,
    Option<CqlTimestamp>,
);

#[allow(clippy::too_many_arguments)]
fn canonical(
    account: i64,
    event: Uuid,
    kind: Option<String>,
    amount_cents: Option<i64>,
    ok: bool,
    seq: Option<i32>,
    happened_at_ms: Option<i64>,
    day: Option<NaiveDate>,
) -> String {
    format!(
        "{account}|{event}|{kind:?}|{amount_cents:?}|{ok}|{seq:?}|{happened_at_ms:?}|{:?}",
        day.map(|d| d.to_string())
    )
}

/// [`TRANSFORM_SQL`] applied to one source row: `None` when its `WHERE` drops the row.
fn transformed(row: SourceRow) -> Option<String> {
    let (account_id, event_id, kind, amount, ok, seq, at) = row;
    if seq.is_some_and(|s| s % 10 == 3) {
        return None;
    }
    let at = at.map(|t| t.0);
    let day = at.map(|ms| {
        DateTime::<Utc>::from_timestamp_millis(ms)
            .expect("generated timestamps are in chrono's range")
            .date_naive()
    });
    Some(canonical(
        account_id,
        event_id,
        kind.map(|k| k.to_uppercase()),
        amount.map(|a| (a * 100.0).round() as i64),
        ok.unwrap_or(false),
        seq,
        at,
        day,
    ))
}

/// The hash of the transformed source, and how many rows the source has before the filter.
async fn expected_hash(session: &Session, table: &str) -> (ContentHash, u64) {
    let mut hash = ContentHash::default();
    let mut raw = 0;
    let mut rows = session
        .query_iter(
            format!(
                "SELECT account_id, event_id, kind, amount, ok, seq, at FROM {KEYSPACE}.{table}"
            ),
            (),
        )
        .await
        .expect("source query")
        .rows_stream::<SourceRow>()
        .expect("source row type");
    while let Some(row) = rows.try_next().await.expect("source row") {
        raw += 1;
        if let Some(c) = transformed(row) {
            hash.add(&c);
        }
    }
    (hash, raw)
}

/// The hash of the target table, streamed.
async fn target_hash(client: &tokio_postgres::Client, table: &str) -> ContentHash {
    let mut hash = ContentHash::default();
    let rows = client
        .query_raw(
            &format!("SELECT {TARGET_SELECT} FROM {table}"),
            std::iter::empty::<i32>(),
        )
        .await
        .expect("target query");
    futures::pin_mut!(rows);
    while let Some(r) = rows.try_next().await.expect("target row") {
        let at: Option<DateTime<Utc>> = r.get(6);
        hash.add(&canonical(
            r.get(0),
            r.get(1),
            r.get(2),
            r.get(3),
            r.get(4),
            r.get(5),
            at.map(|t| t.timestamp_millis()),
            r.get(7),
        ));
    }
    hash
}

/// Asserts the end result is exact: the target equals the transformed source (count and hash),
/// has no duplicate key, and the run state holds each unit once, with no rejects and the rows
/// the target holds.
pub(crate) async fn assert_exact(
    session: &Session,
    source: &str,
    client: &tokio_postgres::Client,
    target: &str,
    run_id: &str,
    context: &str,
) {
    let (expected, raw) = expected_hash(session, source).await;
    assert!(
        expected.rows > 0 && expected.rows < raw,
        "{context}: the transform keeps some rows of {raw}, not {}",
        expected.rows
    );
    let actual = target_hash(client, target).await;
    assert_eq!(
        actual.rows, expected.rows,
        "{context}: target rows vs transformed source rows"
    );
    assert_eq!(
        actual, expected,
        "{context}: target content differs from the transformed source"
    );

    let duplicates: i64 = client
        .query_one(
            &format!(
                "SELECT count(*) FROM (SELECT account, event FROM {target} \
                 GROUP BY account, event HAVING count(*) > 1) d"
            ),
            &[],
        )
        .await
        .expect("duplicate keys")
        .get(0);
    assert_eq!(
        duplicates, 0,
        "{context}: duplicate primary keys in {target}"
    );

    let units: Vec<(i32, i64, i64)> = client
        .query(
            "SELECT unit, rows_written, rows_rejected FROM ferry_state.units WHERE run_id = $1 \
             ORDER BY unit",
            &[&run_id],
        )
        .await
        .expect("read checkpoints")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let numbers: Vec<i32> = units.iter().map(|u| u.0).collect();
    assert_eq!(
        numbers,
        (0..UNITS as i32).collect::<Vec<_>>(),
        "{context}: each of the {UNITS} units is committed exactly once"
    );
    assert!(
        units.iter().all(|u| u.2 == 0),
        "{context}: no unit rejected rows: {units:?}"
    );
    let recorded: i64 = units.iter().map(|u| u.1).sum();
    assert_eq!(
        recorded as u64, actual.rows,
        "{context}: the rows the checkpoints record are the rows the target holds"
    );
}

// ---------------------------------------------------------------------------------------------
// Sources, targets, configs
// ---------------------------------------------------------------------------------------------

/// Seeding of [`SHARED_SOURCE`] happens once for the tests that share it.
static SHARED_SEEDING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub(crate) async fn shared_source(session: &Arc<Session>) {
    let _once = SHARED_SEEDING.lock().await;
    seed(session, SHARED_SOURCE, SHARED_ROWS, SHARED_SEED).await;
}

/// Writes rows `0..rows` of the quickstart shape (`datagen`'s, row for row) into
/// `ferry_faults.<table>`, unless a completed earlier seeding of the same rows and seed is
/// recorded in `ferry_faults.seeded`: the table is only ever read, so later runs reuse it.
///
/// Rows go in as one unlogged batch per partition (about 10 rows each), several times faster
/// than one insert per row.
async fn seed(session: &Arc<Session>, table: &str, rows: u64, seed: u64) {
    support::keyspace(session, KEYSPACE).await;
    support::cql(
        session,
        &format!(
            "CREATE TABLE IF NOT EXISTS {KEYSPACE}.seeded (name text PRIMARY KEY, rows bigint, seed bigint)"
        ),
    )
    .await;
    let marker = session
        .query_unpaged(
            format!("SELECT rows, seed FROM {KEYSPACE}.seeded WHERE name = ?"),
            (table,),
        )
        .await
        .expect("read the seeding marker")
        .into_rows_result()
        .expect("marker rows")
        .maybe_first_row::<(Option<i64>, Option<i64>)>()
        .expect("marker row type");
    if marker == Some((Some(rows as i64), Some(seed as i64))) {
        return;
    }
    let started = Instant::now();
    support::cql(session, &format!("DROP TABLE IF EXISTS {KEYSPACE}.{table}")).await;
    support::cql(
        session,
        &Shape::Quickstart.create_table_cql(KEYSPACE, table),
    )
    .await;

    let mut all: Vec<QuickstartRow> = (0..rows)
        .map(|i| QuickstartRow::generate(seed, i))
        .collect();
    all.sort_by_key(|r| r.account_id);
    let insert = session
        .prepare(format!(
            "INSERT INTO {KEYSPACE}.{table} (account_id, event_id, kind, amount, ok, seq, at) \
             VALUES (?, ?, ?, ?, ?, ?, ?)"
        ))
        .await
        .expect("prepare insert");
    stream::iter(all.chunk_by(|a, b| a.account_id == b.account_id))
        .map(|partition| {
            let mut batch = Batch::new(BatchType::Unlogged);
            let values: Vec<_> = partition
                .iter()
                .map(|r| {
                    batch.append_statement(insert.clone());
                    (
                        r.account_id,
                        r.event_id,
                        MaybeUnset::from_option(r.kind.clone()),
                        MaybeUnset::from_option(r.amount),
                        MaybeUnset::from_option(r.ok),
                        MaybeUnset::from_option(r.seq),
                        MaybeUnset::from_option(r.at.map(CqlTimestamp)),
                    )
                })
                .collect();
            async move { session.batch(&batch, values).await.map(|_| ()) }
        })
        .buffer_unordered(64)
        .try_collect::<Vec<()>>()
        .await
        .unwrap_or_else(|e| panic!("seeding {KEYSPACE}.{table} failed: {e}"));
    session
        .query_unpaged(
            format!("INSERT INTO {KEYSPACE}.seeded (name, rows, seed) VALUES (?, ?, ?)"),
            (table, rows as i64, seed as i64),
        )
        .await
        .expect("write the seeding marker");
    eprintln!(
        "seeded {KEYSPACE}.{table}: {rows} rows in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

pub(crate) async fn create_target(client: &tokio_postgres::Client, table: &str) {
    client
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} ({TARGET_COLUMNS})"
        ))
        .await
        .expect("create target table");
}

/// Writes `ferry.toml` and the transform file into `dir`: `source` (`ferry_faults.<source>`) on
/// the Cassandra at `contact_point`, into `target` over `target_url`, with `run` settings.
pub(crate) fn write_config(
    dir: &Path,
    contact_point: &str,
    source_settings: &str,
    target_url: &str,
    run: &str,
    source: &str,
    target: &str,
) -> PathBuf {
    std::fs::write(dir.join("reshape.sql"), TRANSFORM_SQL).expect("write transform");
    let text = format!(
        "[source]\ncontact_points = [\"{contact_point}\"]\n{source_settings}\n\n\
         [target]\nurl = \"{target_url}\"\n\n[run]\n{run}\n\n\
         [[table]]\nsource = \"{KEYSPACE}.{source}\"\ntarget = \"{target}\"\ntransform = \"reshape.sql\"\n"
    );
    let path = dir.join("ferry.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

/// The seed of a test's random choices: `FERRY_FAULTS_SEED`, else the clock. Printed, so a
/// failing run can be repeated.
pub(crate) fn fault_seed(test: &str) -> u64 {
    let seed = match std::env::var("FERRY_FAULTS_SEED") {
        Ok(s) => s
            .parse()
            .unwrap_or_else(|_| panic!("FERRY_FAULTS_SEED={s:?} is not a number")),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64),
    };
    eprintln!("{test}: seed {seed} (FERRY_FAULTS_SEED={seed} repeats this run)");
    seed
}

// ---------------------------------------------------------------------------------------------
// Running ferry in the background
// ---------------------------------------------------------------------------------------------

/// `ferry migrate` started in the background, its stderr going to `log`.
pub(crate) fn spawn_migrate(config: &Path, log: &Path) -> Child {
    spawn_migrate_with(config, log, &config.with_file_name("report.json"), &[])
}

/// [`spawn_migrate`] with the report at `report` and more arguments.
pub(crate) fn spawn_migrate_with(config: &Path, log: &Path, report: &Path, args: &[&str]) -> Child {
    let stderr = std::fs::File::create(log).expect("create the log file");
    Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args([
            "migrate",
            "--config",
            config.to_str().expect("utf-8 path"),
            "--report",
            report.to_str().expect("utf-8 path"),
        ])
        .args(args)
        .env("FERRY_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("start ferry migrate")
}

/// Target rows and the committed units with the rows they recorded, read in one statement (one
/// snapshot), so a commit landing in between cannot make them disagree.
async fn target_and_checkpoints(
    client: &tokio_postgres::Client,
    target: &str,
    run_id: &str,
) -> (i64, i64, i64) {
    let row = client
        .query_one(
            &format!(
                "SELECT (SELECT count(*) FROM {target}), \
                        (SELECT count(*) FROM ferry_state.units WHERE run_id = $1), \
                        (SELECT coalesce(sum(rows_written), 0)::bigint FROM ferry_state.units \
                         WHERE run_id = $1)"
            ),
            &[&run_id],
        )
        .await
        .expect("read target and checkpoints");
    (row.get(0), row.get(1), row.get(2))
}

pub(crate) fn table_report(report: &serde_json::Value) -> &serde_json::Value {
    &report["tables"][0]
}

pub(crate) fn count(value: &serde_json::Value, field: &str) -> u64 {
    value[field]
        .as_u64()
        .unwrap_or_else(|| panic!("report field {field} missing: {value}"))
}

// ---------------------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_five_times_at_random_moments_resumes_to_an_exact_target() {
    const KILLS: i64 = 5;
    const TARGET: &str = "faults_sigkill";
    let seed = fault_seed("sigkill");
    let mut rng = StdRng::seed_from_u64(seed);
    let session = support::cassandra().await;
    let client = support::postgres().await;
    shared_source(&session).await;
    create_target(&client, TARGET).await;

    let dir = support::scratch_dir("faults_sigkill");
    let run_id = support::unique_run_id(&dir);
    // Small pages and two connections: long enough a run (a few seconds) for five kills, with
    // two units in flight at each.
    let config = write_config(
        &dir,
        &support::cassandra_addr(),
        "page_size = 100",
        &support::postgres_url(),
        &format!("connections = 2\nsplits = {UNITS}\nid = \"{run_id}\""),
        SHARED_SOURCE,
        TARGET,
    );

    let mut kills = Vec::new();
    for k in 0..KILLS {
        // Kill k waits for a committed-unit count in its own fifth of 1..=45, then a random
        // delay, so the kills spread over the run and land inside units as well as between.
        // The last kill leaves 19 units or more: the run cannot finish in the delay.
        let threshold = 1 + (k * 45 + rng.random_range(0..45)) / KILLS;
        let delay = Duration::from_millis(rng.random_range(0..80));
        let context = format!(
            "seed {seed}, kill {k} (after {threshold} units + {delay:?}; earlier kills at {kills:?})"
        );
        let log = dir.join(format!("attempt-{k}.log"));
        let mut child = spawn_migrate(&config, &log);
        wait_for_units(
            &client,
            &run_id,
            threshold,
            &mut child,
            Some(&log),
            &context,
        )
        .await;
        tokio::time::sleep(delay).await;
        if let Some(status) = child.try_wait().expect("poll ferry") {
            panic!(
                "{context}: ferry migrate ended ({status}) before it could be killed:\n{}",
                tail(&log)
            );
        }
        child.kill().expect("SIGKILL ferry");
        child.wait().expect("reap ferry");

        // At the crash: the target holds exactly the rows of the committed units.
        let (target_rows, units, unit_rows) =
            target_and_checkpoints(&client, TARGET, &run_id).await;
        assert!(units < UNITS, "{context}: the run finished before the kill");
        assert_eq!(
            target_rows, unit_rows,
            "{context}: the target holds rows of no committed unit ({units} units committed)"
        );
        kills.push(units);
    }

    // The sixth run completes: the committed units are skipped, the rest loaded.
    let context = format!("seed {seed}, kills at {kills:?} committed units");
    let (_, units_before, rows_before) = target_and_checkpoints(&client, TARGET, &run_id).await;
    let report = support::migrate_ok(&config);
    let t = table_report(&report);
    assert_eq!(count(t, "units_total"), UNITS as u64, "{context}");
    assert_eq!(count(t, "units_done"), UNITS as u64, "{context}");
    assert_eq!(count(t, "units_skipped"), units_before as u64, "{context}");
    assert_eq!(
        count(t, "rows_written_before"),
        rows_before as u64,
        "{context}"
    );
    assert_eq!(count(t, "rows_rejected"), 0, "{context}");
    assert_exact(&session, SHARED_SOURCE, &client, TARGET, &run_id, &context).await;
    eprintln!("sigkill: exact after kills at {kills:?} committed units");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writer_connections_terminated_every_two_seconds_are_retried_to_an_exact_target() {
    const TARGET: &str = "faults_terminated";
    // The name the run's connections announce: the terminations hit them and nothing else on
    // the shared server (Ferry's default, `ferry`, is every other test's too).
    const APPLICATION: &str = "ferry-faults-terminated";
    let seed = fault_seed("terminate");
    let mut rng = StdRng::seed_from_u64(seed);
    let session = support::cassandra().await;
    let client = support::postgres().await;
    shared_source(&session).await;
    create_target(&client, TARGET).await;

    let dir = support::scratch_dir("faults_terminated");
    let run_id = support::unique_run_id(&dir);
    // Smaller pages than the SIGKILL test: a longer run, so it sees several terminations. A unit
    // can be hit more than once: unit_attempts is generous.
    let config = write_config(
        &dir,
        &support::cassandra_addr(),
        "page_size = 50",
        &format!("{}?application_name={APPLICATION}", support::postgres_url()),
        &format!("connections = 2\nsplits = {UNITS}\nunit_attempts = 20\nid = \"{run_id}\""),
        SHARED_SOURCE,
        TARGET,
    );
    let config_path = config.clone();
    let run = tokio::task::spawn_blocking(move || support::migrate_ok(&config_path));

    // Once the run writes (its first unit committed), terminate its backends about every 2 s.
    let done = Arc::new(AtomicBool::new(false));
    let terminator = {
        let done = Arc::clone(&done);
        let run_id = run_id.clone();
        tokio::spawn(async move {
            let admin = support::postgres().await;
            let deadline = Instant::now() + Duration::from_secs(300);
            while committed_units(&admin, &run_id).await < 1 && !done.load(Ordering::SeqCst) {
                assert!(Instant::now() < deadline, "no unit committed in 300 s");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let mut terminated = 0i64;
            let mut wait = Duration::from_millis(rng.random_range(300..800));
            while !done.load(Ordering::SeqCst) {
                tokio::time::sleep(wait).await;
                terminated += admin
                    .query_one(
                        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) \
                         FROM pg_stat_activity \
                         WHERE application_name = $1 AND pid <> pg_backend_pid()",
                        &[&APPLICATION],
                    )
                    .await
                    .expect("terminate the run's backends")
                    .get::<_, i64>(0);
                wait = Duration::from_millis(rng.random_range(1_500..2_500));
            }
            terminated
        })
    };
    let report = run.await.expect("join the run");
    done.store(true, Ordering::SeqCst);
    let terminated = terminator.await.expect("join the terminator");

    let t = table_report(&report);
    let context = format!("seed {seed}, {terminated} backends terminated; report {t}");
    assert!(terminated >= 1, "{context}: no backend was terminated");
    assert!(
        count(t, "unit_retries") >= 1,
        "{context}: terminated units are retried"
    );
    assert_eq!(count(t, "units_done"), UNITS as u64, "{context}");
    assert_eq!(count(t, "rows_rejected"), 0, "{context}");
    assert_exact(&session, SHARED_SOURCE, &client, TARGET, &run_id, &context).await;
    eprintln!(
        "terminate: exact after {terminated} terminations, {} unit retries",
        count(t, "unit_retries")
    );
}

/// The Cassandra of `scripts/services.sh up --cassandra-fault` (`FERRY_CASSANDRA_FAULT`), a
/// one-node cluster of its own that this test may stop; panics naming the script when it is
/// not running.
fn fault_cassandra_addr() -> String {
    std::env::var("FERRY_CASSANDRA_FAULT").unwrap_or_else(|_| {
        panic!(
            "FERRY_CASSANDRA_FAULT is not set: the Cassandra that fault tests stop is opt-in; \
             start it with `scripts/services.sh up --cassandra-fault` (and \
             `eval \"$(scripts/services.sh env)\"`)"
        )
    })
}

/// The fault node's number in `scripts/services.sh`.
const FAULT_NODE: &str = "5";

/// Stops the fault node; starts it again when dropped, even when the test fails.
struct StoppedFaultNode {
    started: bool,
}

impl StoppedFaultNode {
    async fn stop() -> Self {
        tokio::task::spawn_blocking(|| support::services(&["cassandra-stop-node", FAULT_NODE]))
            .await
            .expect("join cassandra-stop-node");
        Self { started: false }
    }

    async fn start(mut self) {
        tokio::task::spawn_blocking(|| support::services(&["cassandra-start-node", FAULT_NODE]))
            .await
            .expect("join cassandra-start-node");
        self.started = true;
    }
}

impl Drop for StoppedFaultNode {
    fn drop(&mut self) {
        if !self.started {
            support::services(&["cassandra-start-node", FAULT_NODE]);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cassandra_stopped_mid_run_and_started_20_s_later_ends_in_an_exact_target() {
    const SOURCE: &str = "source_outage";
    const ROWS: u64 = 250_000;
    const TARGET: &str = "faults_outage";
    let addr = fault_cassandra_addr();
    let session = match SessionBuilder::new().known_node(&addr).build().await {
        Ok(s) => Arc::new(s),
        Err(e) => panic!(
            "the fault Cassandra is not reachable at {addr}: {e}; start it with \
             `scripts/services.sh up --cassandra-fault`"
        ),
    };
    let client = support::postgres().await;
    seed(&session, SOURCE, ROWS, 6_003).await;
    create_target(&client, TARGET).await;

    let dir = support::scratch_dir("faults_outage");
    let run_id = support::unique_run_id(&dir);
    // One connection and small pages: the run is still reading when the node goes away.
    let config = write_config(
        &dir,
        &addr,
        "page_size = 50",
        &support::postgres_url(),
        &format!("connections = 1\nsplits = {UNITS}\nid = \"{run_id}\""),
        SOURCE,
        TARGET,
    );
    let log = dir.join("first-run.log");
    let mut child = spawn_migrate(&config, &log);
    wait_for_units(
        &client,
        &run_id,
        2,
        &mut child,
        Some(&log),
        "before the outage",
    )
    .await;
    let node = StoppedFaultNode::stop().await;
    let (_, units_at_stop, _) = target_and_checkpoints(&client, TARGET, &run_id).await;
    if let Some(status) = child.try_wait().expect("poll ferry") {
        assert!(
            !status.success(),
            "the run finished before Cassandra was down ({units_at_stop} units)"
        );
    }
    assert!(
        units_at_stop < UNITS,
        "the run finished before Cassandra was down"
    );
    tokio::time::sleep(Duration::from_secs(20)).await;
    node.start().await;

    // Either the run waited and completes, or it failed resumably; then a second run completes.
    let deadline = Instant::now() + Duration::from_secs(600);
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll ferry") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the run did not end within 600 s of the outage:\n{}",
            tail(&log)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let context = format!("outage after {units_at_stop} units; first run {status}");
    let (target_rows, units, unit_rows) = target_and_checkpoints(&client, TARGET, &run_id).await;
    assert_eq!(
        target_rows,
        unit_rows,
        "{context}: the target holds rows of no committed unit:\n{}",
        tail(&log)
    );
    if status.success() {
        let report = support::read_report(&config.with_file_name("report.json"));
        let t = table_report(&report);
        assert_eq!(count(t, "units_done"), UNITS as u64, "{context}");
        assert_eq!(count(t, "rows_rejected"), 0, "{context}");
        eprintln!(
            "outage: the first run waited it out ({} unit retries)",
            count(t, "unit_retries")
        );
    } else {
        let stderr = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(
            stderr.contains("Cassandra"),
            "{context}: the failure names Cassandra:\n{}",
            tail(&log)
        );
        assert!(units < UNITS, "{context}: a failed run has units left");
        eprintln!(
            "outage: the first run failed with {units} units committed; resuming:\n{}",
            tail(&log)
        );
        let report = support::migrate_ok(&config);
        let t = table_report(&report);
        assert_eq!(count(t, "units_skipped"), units as u64, "{context}");
        assert_eq!(count(t, "units_done"), UNITS as u64, "{context}");
        assert_eq!(count(t, "rows_rejected"), 0, "{context}");
    }
    assert_exact(&session, SOURCE, &client, TARGET, &run_id, &context).await;
    eprintln!("outage: exact; {context}");
}
