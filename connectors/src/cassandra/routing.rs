//! Sending each split's reads to a replica of its ranges.
//!
//! The driver routes by the token of bound partition-key values; a `token(pk) > ? AND
//! token(pk) <= ?` statement has none, so the default policy would pick any node and make it
//! coordinate a read from elsewhere. [`ReplicaRouting`] is attached to each split's statement:
//! it picks the split's replicas first (rotated by split, to spread load over replicas), then
//! falls back to the other replicas and finally to any node.

use scylla::cluster::{ClusterState, NodeRef};
use scylla::policies::load_balancing::{FallbackPlan, LoadBalancingPolicy, RoutingInfo};
use scylla::routing::Shard;
use uuid::Uuid;

/// A load-balancing policy holding one split's replicas, in the order to try them.
#[derive(Debug, Clone)]
pub struct ReplicaRouting {
    replicas: Vec<Uuid>,
}

impl ReplicaRouting {
    /// Tries `replicas` starting at `rotation % len`, then the others, then any node.
    pub fn new(replicas: &[Uuid], rotation: usize) -> Self {
        let mut replicas = replicas.to_vec();
        if !replicas.is_empty() {
            let n = replicas.len();
            replicas.rotate_left(rotation % n);
        }
        Self { replicas }
    }

    /// The enabled replicas, those the driver holds connections to first: a node that just went
    /// away is tried last, not first, until it comes back.
    fn replicas<'a>(&'a self, cluster: &'a ClusterState) -> impl Iterator<Item = NodeRef<'a>> {
        let enabled = move || {
            self.replicas
                .iter()
                .filter_map(|id| cluster.get_node_by_host_id(*id))
                .filter(|node| node.is_enabled())
        };
        let connected = enabled().filter(|node| node.is_connected());
        let disconnected = enabled().filter(|node| !node.is_connected());
        connected.chain(disconnected)
    }
}

impl LoadBalancingPolicy for ReplicaRouting {
    fn pick<'a>(
        &'a self,
        _request: &'a RoutingInfo,
        cluster: &'a ClusterState,
    ) -> Option<(NodeRef<'a>, Option<Shard>)> {
        self.replicas(cluster)
            .next()
            .or_else(|| cluster.get_nodes_info().iter().find(|n| n.is_enabled()))
            .map(|node| (node, None))
    }

    fn fallback<'a>(
        &'a self,
        _request: &'a RoutingInfo,
        cluster: &'a ClusterState,
    ) -> FallbackPlan<'a> {
        let others = cluster
            .get_nodes_info()
            .iter()
            .filter(|n| n.is_enabled() && !self.replicas.contains(&n.host_id));
        Box::new(
            self.replicas(cluster)
                .chain(others)
                .map(|node| (node, None)),
        )
    }

    fn name(&self) -> String {
        "ferry-replica-routing".to_string()
    }
}
