//! Connection placement against the three PostgreSQL nodes of `scripts/services.sh up
//! --pg-nodes 3`, whose `yb_servers()` stand-in lists them as cloud1.region1.zone1 (54320),
//! cloud1.region1.zone2 (54321) and cloud1.region2.zone1 (54322). Connections are told apart
//! by a per-test `application_name`. Tests that stop a node stop node 2 or 3 only (node 1
//! serves every other test), and run one at a time.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_benchmarks::datagen::{self, Shape};
use ferry_connectors::yugabyte::{PlacedClient, Placement, YugabyteConfig};

use crate::support::{self, StoppedPgNode};

const KEYSPACE: &str = "ferry_e2e_place";

/// Placement tests look at every node, and some stop one: one at a time.
static NODES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn placed_by(application_name: &str, keys: &[&str], keys_only: bool) -> Arc<Placement> {
    let mut config = YugabyteConfig::new(support::postgres_nodes_url(application_name));
    config.topology_keys = keys.iter().map(ToString::to_string).collect();
    config.fallback_to_topology_keys_only = keys_only;
    config.quarantine_s = 30;
    Placement::new(&config).expect("valid placement")
}

async fn place(placement: &Arc<Placement>, n: usize) -> Vec<PlacedClient> {
    let mut clients = Vec::with_capacity(n);
    for i in 0..n {
        match placement.connect().await {
            Ok(c) => clients.push(c),
            Err(e) => panic!("connection {i} could not be placed: {e}"),
        }
    }
    clients
}

/// Connections named `application_name` on each node, in node order, once they settle; 0 for
/// the stopped node `down` (1-based).
async fn per_node(application_name: &str, expected_total: i64, down: Option<usize>) -> Vec<i64> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut counts = Vec::new();
        for (i, node) in support::postgres_nodes().iter().enumerate() {
            counts.push(if down == Some(i + 1) {
                0
            } else {
                support::connections_named(node, application_name).await
            });
        }
        if counts.iter().sum::<i64>() == expected_total || Instant::now() > deadline {
            return counts;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_connections_spread_ten_per_server() {
    let _nodes = NODES.lock().await;
    let name = "ferry-place-even";
    let placement = placed_by(name, &[], false);
    let clients = place(&placement, 30).await;
    assert_eq!(placement.is_yugabyte(), Some(true), "yb_servers() was read");
    assert_eq!(per_node(name, 30, None).await, vec![10, 10, 10]);
    assert!(placement.placed().iter().all(|(_, n)| *n == 10));
    drop(clients);
    assert!(
        placement.placed().is_empty(),
        "dropped connections give their place back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topology_keys_put_every_connection_in_one_zone() {
    let _nodes = NODES.lock().await;
    let name = "ferry-place-zone";
    let placement = placed_by(name, &["cloud1.region1.zone2"], false);
    let _clients = place(&placement, 12).await;
    assert_eq!(per_node(name, 12, None).await, vec![0, 12, 0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_zone_falls_back_to_the_priority_2_key() {
    let _nodes = NODES.lock().await;
    let name = "ferry-place-fallback";
    let _node2 = StoppedPgNode::stop(2);
    let placement = placed_by(name, &["cloud1.region1.zone2", "cloud1.region2.*:2"], false);
    let _clients = place(&placement, 6).await;
    assert_eq!(per_node(name, 6, Some(2)).await, vec![0, 0, 6]);

    // Only the zone's own server is allowed: no connection rather than one elsewhere.
    let strict = placed_by(name, &["cloud1.region1.zone2"], true);
    let e = strict
        .connect()
        .await
        .map(|_| ())
        .expect_err("the only allowed server is down")
        .to_string();
    assert!(e.contains("54321"), "{e}");
}

async fn create_target(node: &str, table: &str) {
    support::postgres_node(node)
        .await
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (account_id bigint NOT NULL, \
             event_id uuid NOT NULL, kind text, amount double precision, ok boolean, seq integer, \
             at timestamptz, PRIMARY KEY (account_id, event_id))"
        ))
        .await
        .expect("create target table");
}

async fn keys_on(node: &str, table: &str) -> Vec<(i64, uuid::Uuid)> {
    support::postgres_node(node)
        .await
        .query(&format!("SELECT account_id, event_id FROM {table}"), &[])
        .await
        .expect("read target keys")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_dying_mid_run_moves_its_connections() {
    const ROWS: u64 = 120_000;
    const TABLE: &str = "e2e_place_midrun";
    let _nodes = NODES.lock().await;
    let nodes = support::postgres_nodes();
    let session = support::cassandra().await;
    support::keyspace(&session, KEYSPACE).await;
    support::cql(&session, &format!("DROP TABLE IF EXISTS {KEYSPACE}.midrun")).await;
    support::cql(
        &session,
        &Shape::Quickstart.create_table_cql(KEYSPACE, "midrun"),
    )
    .await;
    datagen::generate(&session, Shape::Quickstart, KEYSPACE, "midrun", ROWS, 17)
        .await
        .expect("seed source table");
    // Nodes 2 and 3 stand for one YugabyteDB cluster; the rows that reach each are summed. A
    // real cluster shares one catalog, so node 3 sees node 2's run state (units, leases)
    // through postgres_fdw: a unit committed on node 3 commits its checkpoint on node 2.
    for node in &nodes[1..] {
        create_target(node, TABLE).await;
    }
    let node2 = support::postgres_node(&nodes[1]).await;
    ferry::pipeline::checkpoint::ensure_schema(&node2)
        .await
        .expect("run-state schema");
    let (host, port) = nodes[1].rsplit_once(':').expect("host:port");
    support::postgres_node(&nodes[2])
        .await
        .batch_execute(&format!(
            "CREATE EXTENSION IF NOT EXISTS postgres_fdw;
             DROP SERVER IF EXISTS ferry_state_node CASCADE;
             CREATE SERVER ferry_state_node FOREIGN DATA WRAPPER postgres_fdw
                 OPTIONS (host '{host}', port '{port}', dbname 'ferry_yb');
             CREATE USER MAPPING FOR CURRENT_USER SERVER ferry_state_node
                 OPTIONS (user 'ferry', password 'ferry');
             DROP SCHEMA IF EXISTS ferry_state CASCADE;
             CREATE SCHEMA ferry_state;
             IMPORT FOREIGN SCHEMA ferry_state FROM SERVER ferry_state_node INTO ferry_state;"
        ))
        .await
        .expect("node 3 shares node 2's run state");

    let dir = support::scratch_dir("placement_midrun");
    let config = support::write_config_with_target(
        &dir,
        &format!(
            "url = \"{}\"\ntopology_keys = [\"cloud1.region1.zone2\", \"cloud1.region2.zone1\"]\n\
             fallback_to_topology_keys_only = true",
            support::postgres_nodes_url("ferry-place-midrun")
        ),
        "connections = 4\nsplits = 48",
        &format!("[[table]]\nsource = \"{KEYSPACE}.midrun\"\ntarget = \"{TABLE}\""),
    );
    let report = config.with_file_name("report.json");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["migrate", "--config"])
        .arg(&config)
        .arg("--report")
        .arg(&report)
        .env("FERRY_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start ferry migrate");

    // Once node 3 holds committed rows, stop it under the run.
    let node3 = support::postgres_node(&nodes[2]).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let n: i64 = node3
            .query_one(&format!("SELECT count(*) FROM {TABLE}"), &[])
            .await
            .expect("count node 3")
            .get(0);
        if n > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "no row reached node 3 in 120 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(node3);
    let stopped = StoppedPgNode::stop(3);
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("ferry migrate output");
    drop(stopped);
    // Node 3 gets its own run state back for the other tests.
    support::postgres_node(&nodes[2])
        .await
        .batch_execute("DROP SCHEMA ferry_state CASCADE; DROP SERVER ferry_state_node CASCADE")
        .await
        .expect("node 3's own run state");
    assert!(
        out.status.success(),
        "ferry migrate failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = support::read_report(&report);
    let t = &report["tables"][0];
    assert_eq!(t["rows_written"], ROWS, "{report}");
    assert_eq!(t["units_done"], 48);

    let on2 = keys_on(&nodes[1], TABLE).await;
    let on3 = keys_on(&nodes[2], TABLE).await;
    assert!(!on2.is_empty() && !on3.is_empty(), "both nodes took rows");
    let all: HashSet<_> = on2.iter().chain(on3.iter()).collect();
    assert_eq!(on2.len() + on3.len(), ROWS as usize, "rows lost or doubled");
    assert_eq!(all.len(), ROWS as usize, "a row reached both nodes");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("quarantined") || stderr.contains("retrying"),
        "the run noticed the node going away:\n{stderr}"
    );
}
