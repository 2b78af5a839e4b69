//! Scale-out: several `ferry migrate` processes sharing one run through the unit leases in
//! `ferry_state.leases`. The source, transform, target and the "exact" check are those of the
//! fault tests (`faults.rs`): 500k rows, 64 units, a reshaping transform, a keyed target.

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::faults::{
    SHARED_SOURCE, UNITS, assert_exact, create_target, shared_source, write_config,
};
use crate::support::{self, committed_units, tail, wait_for_units};

/// Short leases, so that takeovers happen within the test's patience.
const LEASE_S: u64 = 4;

struct Worker {
    name: String,
    child: Child,
    log: std::path::PathBuf,
}

fn start(dir: &Path, config: &Path, name: &str, extra: &[&str]) -> Worker {
    let log = dir.join(format!("{name}.log"));
    let report = dir.join(format!("{name}.json"));
    let mut args = vec!["--worker-id", name];
    args.extend_from_slice(extra);
    let child = crate::faults::spawn_migrate_with(config, &log, &report, &args);
    Worker {
        name: name.to_string(),
        child,
        log,
    }
}

fn finish(worker: &mut Worker) {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        if let Some(status) = worker.child.try_wait().expect("poll ferry") {
            assert!(
                status.success(),
                "worker {} ended with {status}:\n{}",
                worker.name,
                tail(&worker.log)
            );
            return;
        }
        assert!(
            Instant::now() < deadline,
            "worker {} did not finish in 600 s",
            worker.name
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn signal(worker: &Worker, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &worker.child.id().to_string()])
        .status()
        .expect("run kill")
        .success();
    assert!(ok, "kill {sig} {}", worker.name);
}

/// Units leased by `worker` and not committed yet.
async fn held(client: &tokio_postgres::Client, run_id: &str, worker: &str) -> Vec<i32> {
    client
        .query(
            "SELECT l.unit FROM ferry_state.leases l WHERE l.run_id = $1 AND l.worker = $2 \
             AND NOT EXISTS (SELECT 1 FROM ferry_state.units u WHERE u.run_id = l.run_id \
                             AND u.target = l.target AND u.unit = l.unit) ORDER BY 1",
            &[&run_id, &worker],
        )
        .await
        .map(|rows| rows.iter().map(|r| r.get(0)).collect())
        .unwrap_or_default()
}

/// The worker that committed each of `units`.
async fn committed_by(client: &tokio_postgres::Client, run_id: &str, units: &[i32]) -> Vec<String> {
    client
        .query(
            "SELECT worker FROM ferry_state.units WHERE run_id = $1 AND unit = ANY($2) ORDER BY unit",
            &[&run_id, &units],
        )
        .await
        .expect("read the committing workers")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

fn setup(
    name: &str,
    connections: usize,
    page_size: usize,
) -> (std::path::PathBuf, std::path::PathBuf, String) {
    let dir = support::scratch_dir(name);
    let run_id = support::unique_run_id(&dir);
    let config = write_config(
        &dir,
        &support::cassandra_addr(),
        &format!("page_size = {page_size}"),
        &support::postgres_url(),
        &format!(
            "connections = {connections}\nsplits = {UNITS}\nlease_s = {LEASE_S}\nid = \"{run_id}\""
        ),
        SHARED_SOURCE,
        name,
    );
    (dir, config, run_id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_share_one_run_and_each_unit_commits_once() {
    const TARGET: &str = "scaleout_three";
    let session = support::cassandra().await;
    let client = support::postgres().await;
    shared_source(&session).await;
    create_target(&client, TARGET).await;
    let (dir, config, run_id) = setup(TARGET, 2, 1000);
    // Static shards for two of them, a dynamic one beside: all three kinds share a run.
    let mut workers = vec![
        start(
            &dir,
            &config,
            "w0",
            &["--workers", "2", "--worker-index", "0"],
        ),
        start(
            &dir,
            &config,
            "w1",
            &["--workers", "2", "--worker-index", "1"],
        ),
        start(&dir, &config, "w2", &[]),
    ];
    for w in &mut workers {
        finish(w);
    }
    assert_exact(
        &session,
        SHARED_SOURCE,
        &client,
        TARGET,
        &run_id,
        "three workers",
    )
    .await;
    let per_worker: Vec<(String, i64)> = client
        .query(
            "SELECT worker, count(*) FROM ferry_state.units WHERE run_id = $1 GROUP BY 1 ORDER BY 1",
            &[&run_id],
        )
        .await
        .expect("units per worker")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let names: Vec<&str> = per_worker.iter().map(|(w, _)| w.as_str()).collect();
    assert_eq!(
        names,
        ["w0", "w1", "w2"],
        "each worker did some of the work: {per_worker:?}"
    );

    // `ferry status` names them, with what each committed.
    let out = support::ferry(&["status", "-c", config.to_str().expect("utf-8"), "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let state: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status JSON");
    let listed: Vec<(String, i64)> = state["workers"]
        .as_array()
        .expect("workers")
        .iter()
        .map(|w| {
            assert_eq!(w["alive"], false, "{w}");
            (
                w["worker"].as_str().expect("name").to_string(),
                w["units_committed"].as_i64().expect("units"),
            )
        })
        .collect();
    assert_eq!(listed, per_worker);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_workers_units_are_taken_over_after_their_lease_expires() {
    const TARGET: &str = "scaleout_killed";
    let session = support::cassandra().await;
    let client = support::postgres().await;
    shared_source(&session).await;
    create_target(&client, TARGET).await;
    let (dir, config, run_id) = setup(TARGET, 2, 500);
    let mut victim = start(&dir, &config, "victim", &[]);
    let mut others = vec![
        start(&dir, &config, "w1", &[]),
        start(&dir, &config, "w2", &[]),
    ];
    wait_for_units(
        &client,
        &run_id,
        6,
        &mut victim.child,
        Some(&victim.log),
        "three workers",
    )
    .await;
    // Kill it while it holds a lease on a unit in flight.
    let deadline = Instant::now() + Duration::from_secs(120);
    let orphans = loop {
        if !held(&client, &run_id, "victim").await.is_empty() {
            signal(&victim, "-KILL");
            let _ = victim.child.wait();
            break held(&client, &run_id, "victim").await;
        }
        assert!(Instant::now() < deadline, "the victim never held a lease");
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    assert!(
        committed_units(&client, &run_id).await < UNITS,
        "killed before the end"
    );
    for w in &mut others {
        finish(w);
    }
    assert_exact(
        &session,
        SHARED_SOURCE,
        &client,
        TARGET,
        &run_id,
        "after a worker was killed",
    )
    .await;
    if orphans.is_empty() {
        // It committed in the instant between the check and the kill: nothing to take over.
        eprintln!("the victim held no lease when killed; takeover not exercised this time");
    } else {
        let by = committed_by(&client, &run_id, &orphans).await;
        assert!(
            by.iter().all(|w| w == "w1" || w == "w2"),
            "the victim's units {orphans:?} were taken over by the others: {by:?}"
        );
        let claims: Vec<i32> = client
            .query(
                "SELECT claims FROM ferry_state.leases WHERE run_id = $1 AND unit = ANY($2)",
                &[&run_id, &orphans],
            )
            .await
            .expect("claims")
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert!(
            claims.iter().all(|&c| c >= 2),
            "claimed again after expiry: {claims:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_whose_lease_was_taken_over_while_stalled_cannot_commit_that_unit() {
    const TARGET: &str = "scaleout_stalled";
    let session = support::cassandra().await;
    let client = support::postgres().await;
    shared_source(&session).await;
    create_target(&client, TARGET).await;
    // Small pages and one connection: the stalled worker's unit is long.
    let (dir, config, run_id) = setup(TARGET, 1, 200);
    let mut stalled = start(&dir, &config, "stalled", &[]);
    let deadline = Instant::now() + Duration::from_secs(120);
    let units = loop {
        if !held(&client, &run_id, "stalled").await.is_empty() {
            signal(&stalled, "-STOP");
            let units = held(&client, &run_id, "stalled").await;
            if !units.is_empty() {
                break units;
            }
            // It committed just before it stopped: let it go on and try again.
            signal(&stalled, "-CONT");
        }
        assert!(
            stalled.child.try_wait().expect("poll").is_none(),
            "ended early:\n{}",
            tail(&stalled.log)
        );
        assert!(Instant::now() < deadline, "the worker never held a lease");
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    // Past its lease, another worker takes the unit over (and everything else).
    tokio::time::sleep(Duration::from_secs(LEASE_S + 1)).await;
    let mut taker = start(&dir, &config, "taker", &[]);
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let leased_by_taker = client
            .query_one(
                "SELECT count(*) FROM ferry_state.leases WHERE run_id = $1 AND unit = ANY($2) \
                 AND worker = 'taker'",
                &[&run_id, &units],
            )
            .await
            .expect("leases")
            .get::<_, i64>(0);
        if leased_by_taker == units.len() as i64 {
            break;
        }
        assert!(
            taker.child.try_wait().expect("poll").is_none(),
            "the taker ended without taking {units:?} over:\n{}",
            tail(&taker.log)
        );
        assert!(Instant::now() < deadline, "{units:?} never taken over");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The stalled worker wakes up holding a transaction for a unit that is no longer its own.
    signal(&stalled, "-CONT");
    finish(&mut taker);
    finish(&mut stalled);
    assert_eq!(
        committed_by(&client, &run_id, &units).await,
        vec!["taker".to_string(); units.len()],
        "units {units:?} were committed by the worker that took them over"
    );
    let log = std::fs::read_to_string(&stalled.log).unwrap_or_default();
    assert!(
        log.contains("another worker took it over") || log.contains("lost the lease"),
        "the stalled worker says it lost the lease:\n{}",
        tail(&stalled.log)
    );
    assert_exact(
        &session,
        SHARED_SOURCE,
        &client,
        TARGET,
        &run_id,
        "after a stolen lease",
    )
    .await;
}
