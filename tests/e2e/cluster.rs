//! The 3-node ring of `scripts/services.sh up --cassandra-nodes 3`: every split is read through a
//! replica of its ranges, and a node that crashes mid-scan costs no row and doubles none, its
//! splits finishing through other replicas.
//!
//! These tests change the cluster (one kills a node), so `scripts/test.sh` runs them on their own,
//! after the rest of the suite: `cargo test --test e2e cluster::`.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::AsArray;
use arrow::datatypes::Int64Type;
use datafusion::prelude::SessionContext;
use ferry_benchmarks::datagen::{self, Shape};
use ferry_connectors::cassandra::{
    CassandraConfig, CassandraTable, SourceTable, SplitCount, connect, plan_splits,
};
use futures::StreamExt;
use scylla::client::session::Session;
use tokio::sync::Mutex;

use crate::support;

const HINT: &str = "these tests need the 3-node Cassandra cluster: run \
                    `scripts/services.sh up --cassandra-nodes 3` (scripts/test.sh does)";
const SERVICES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/services.sh");

/// One cluster test at a time: one of them takes a node away.
static CLUSTER: Mutex<()> = Mutex::const_new(());

/// A Ferry session once the driver holds connections to all three nodes and each of them owns
/// tokens in its ring (see [`wait_for_three`]).
async fn three_nodes() -> Arc<Session> {
    let session = connect(&CassandraConfig::new(vec![support::cassandra_addr()]))
        .await
        .unwrap_or_else(|e| panic!("cannot connect to Cassandra: {e}; {HINT}"));
    wait_for_three(&session).await;
    session
}

/// Waits until `session` holds connections to all three nodes and each owns tokens in its ring:
/// a node that has just joined may be connected before its tokens reach the driver (splits would
/// then never name it), and one busy after a heavy write may lose its pool for a moment.
async fn wait_for_three(session: &Session) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        session
            .refresh_metadata()
            .await
            .unwrap_or_else(|e| panic!("cannot read the ring: {e}; {HINT}"));
        let state = session.get_cluster_state();
        let nodes = state.get_nodes_info();
        let up = nodes.iter().filter(|n| n.is_connected()).count();
        let owners = state.replica_locator().unique_nodes_in_global_ring();
        let owners_up = owners.iter().filter(|n| n.is_connected()).count();
        if nodes.len() >= 3 && up >= 3 && owners_up >= 3 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the driver sees {} node(s), {up} connected, {owners_up} connected owning tokens \
             ({:?}); {HINT}",
            nodes.len(),
            owners.iter().map(|n| n.address).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn services(args: &[&str]) {
    let out = std::process::Command::new(SERVICES)
        .args(args)
        .output()
        .expect("run scripts/services.sh");
    assert!(
        out.status.success(),
        "scripts/services.sh {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn seed(session: &Arc<Session>, keyspace: &str, rf: u32, rows: u64) {
    support::cql(
        session,
        &format!(
            "CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = \
             {{'class': 'SimpleStrategy', 'replication_factor': {rf}}}"
        ),
    )
    .await;
    support::cql(session, &format!("DROP TABLE IF EXISTS {keyspace}.events")).await;
    support::cql(
        session,
        &Shape::Quickstart.create_table_cql(keyspace, "events"),
    )
    .await;
    datagen::generate(session, Shape::Quickstart, keyspace, "events", rows, 5)
        .await
        .expect("seed events");
    // The ring's replicas of the new keyspace come from the driver's metadata.
    session.refresh_metadata().await.expect("refresh metadata");
}

/// Restarts node N (2 or 3) when dropped, also when the test fails after killing it.
struct RestartNode(&'static str);

impl Drop for RestartNode {
    fn drop(&mut self) {
        let _ = std::process::Command::new(SERVICES)
            .args(["cassandra-start-node", self.0])
            .status();
    }
}

#[tokio::test]
async fn each_split_is_read_through_a_replica_of_its_ranges() {
    let _one_at_a_time = CLUSTER.lock().await;
    let session = three_nodes().await;
    // RF 1: each range has exactly one replica, so any other coordinator would show.
    let keyspace = "ferry_cluster_rf1";
    let rows = 20_000;
    seed(&session, keyspace, 1, rows).await;

    let splits = plan_splits(&session, keyspace, "events", SplitCount::Fixed(24), None)
        .await
        .expect("plan splits");
    let owners: BTreeSet<&str> = splits
        .iter()
        .flat_map(|s| s.replicas.iter().map(|r| r.address.as_str()))
        .collect();
    assert_eq!(owners.len(), 3, "splits are owned by {owners:?}; {HINT}");
    assert!(
        splits.iter().all(|s| s.replicas.len() == 1),
        "RF 1: one replica per split"
    );

    let source = SourceTable::load(&session, keyspace, "events")
        .await
        .expect("schema");
    let table = CassandraTable::new(Arc::clone(&session), source, splits.clone(), 500);
    let counters = table.counters();
    let ctx = SessionContext::new();
    ctx.register_table("t", Arc::new(table)).expect("register");
    let batches = ctx
        .sql("SELECT account_id FROM t")
        .await
        .expect("plan")
        .collect()
        .await
        .expect("scan");
    let read: usize = batches.iter().map(|b| b.num_rows()).sum();
    assert_eq!(read as u64, rows);

    let coordinators = counters.coordinators.lock().expect("not poisoned").clone();
    assert!(coordinators.len() >= splits.len() / 2, "{coordinators:?}");
    for (split, nodes) in &coordinators {
        let replica = &splits[*split].replicas[0].address;
        assert_eq!(
            nodes,
            &BTreeSet::from([replica.clone()]),
            "split {split} is owned by {replica}"
        );
    }
}

#[tokio::test]
async fn a_node_crashing_mid_scan_loses_no_row_and_doubles_none() {
    let _one_at_a_time = CLUSTER.lock().await;
    let session = three_nodes().await;
    let keyspace = "ferry_cluster_rf3";
    let rows = 30_000u64;
    seed(&session, keyspace, 3, rows).await;
    // Make sure every replica holds every row before one of them goes: a read at ALL repairs
    // any replica that missed a write.
    let mut check = scylla::statement::unprepared::Statement::new(format!(
        "SELECT count(*) FROM {keyspace}.events"
    ));
    check.set_consistency(scylla::statement::Consistency::All);
    check.set_request_timeout(Some(Duration::from_secs(60)));
    let (n,): (i64,) = session
        .query_unpaged(check, ())
        .await
        .expect("count at ALL")
        .into_rows_result()
        .expect("rows")
        .single_row()
        .expect("one row");
    assert_eq!(n as u64, rows);
    wait_for_three(&session).await;

    // Small pages over many splits, so the crash lands in the middle of the scan.
    let splits = plan_splits(&session, keyspace, "events", SplitCount::Fixed(16), None)
        .await
        .expect("plan splits");
    let source = SourceTable::load(&session, keyspace, "events")
        .await
        .expect("schema");
    let table = CassandraTable::new(Arc::clone(&session), source, splits, 100);
    let counters = table.counters();
    let ctx = SessionContext::new();
    ctx.register_table("t", Arc::new(table)).expect("register");
    let mut stream = ctx
        .sql("SELECT account_id, event_id FROM t")
        .await
        .expect("plan")
        .execute_stream()
        .await
        .expect("execute");
    let mut seen: HashSet<(i64, [u8; 16])> = HashSet::new();
    let mut killed = None;
    while let Some(batch) = stream.next().await {
        let batch = batch.unwrap_or_else(|e| panic!("the scan failed after a node crash: {e}"));
        let accounts = batch.column(0).as_primitive::<Int64Type>();
        let events = batch.column(1).as_fixed_size_binary();
        for r in 0..batch.num_rows() {
            let key = (
                accounts.value(r),
                events.value(r).try_into().expect("16 bytes"),
            );
            assert!(seen.insert(key), "row {key:?} read twice");
        }
        if killed.is_none() && seen.len() as u64 >= rows / 4 {
            // Crash a node that is serving splits right now: node 3 if routing gave it any, else
            // node 2 (node 1, the contact point and seed, stays). Nodes 2 and 3 just started and
            // answer their first pages slowly, so the splits node 1 serves may come in first:
            // wait until another node has served a page.
            let serving = counters.coordinators.lock().expect("not poisoned").clone();
            let victim = ["3", "2"].into_iter().find(|n| {
                let addr = format!("127.0.0.{n}:");
                serving.values().flatten().any(|c| c.starts_with(&addr))
            });
            if let Some(victim) = victim {
                services(&["cassandra-kill-node", victim]);
                killed = Some((RestartNode(victim), serving, seen.len()));
            }
        }
    }
    let Some((victim, before, at)) = killed else {
        panic!(
            "nodes 2 and 3 coordinated no page before the scan ended: {:?}",
            counters.coordinators.lock().expect("not poisoned")
        )
    };
    assert!(
        (at as u64) < rows,
        "node {} was crashed after the last row had arrived",
        victim.0
    );
    assert_eq!(seen.len() as u64, rows, "every row, exactly once");
    // Splits the node was serving when it went were finished through other replicas.
    let addr = format!("127.0.0.{}:", victim.0);
    let after = counters.coordinators.lock().expect("not poisoned").clone();
    let moved = after
        .iter()
        .filter(|(split, nodes)| {
            before
                .get(split)
                .is_some_and(|b| b.iter().any(|c| c.starts_with(&addr)))
                && nodes.iter().any(|c| !c.starts_with(&addr))
        })
        .count();
    assert!(
        moved > 0,
        "no split node {} served moved to another replica after the crash: before {before:?}, \
         after {after:?}",
        victim.0
    );
    eprintln!(
        "node {} crashed mid-scan after {at} of {rows} rows: {moved} of its splits finished \
         elsewhere, {} page retries, {} bisections",
        victim.0,
        counters.retries.load(std::sync::atomic::Ordering::Relaxed),
        counters
            .bisections
            .load(std::sync::atomic::Ordering::Relaxed)
    );
    // Dropping the guard brings the node back for whatever runs next.
    drop(victim);
}
