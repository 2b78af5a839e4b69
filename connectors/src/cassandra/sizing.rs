//! How many splits a table gets: from `system.size_estimates` when it knows the table, or a
//! default count when it does not (it lags: freshly written data shows nothing until flushed).

use std::fmt;

use scylla::client::session::Session;
use scylla::policies::load_balancing::{NodeIdentifier, SingleTargetLoadBalancingPolicy};
use scylla::statement::Statement;
use serde::{Deserialize, Deserializer};

use super::ring::{Split, ring_ranges};
use super::session::cassandra_err;
use crate::error::Result;

/// Bytes of table data per split when sizing automatically.
pub const DEFAULT_SPLIT_BYTES: u64 = 64 << 20;
/// Splits when the size estimates know nothing about the table.
pub const FALLBACK_SPLITS: usize = 16;

/// `splits = "auto"` or a count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SplitCount {
    /// From the size estimates: about one split per 64 MiB, at least the fallback count.
    #[default]
    Auto,
    Fixed(usize),
}

impl fmt::Display for SplitCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SplitCount::Auto => f.write_str("auto"),
            SplitCount::Fixed(n) => write!(f, "{n}"),
        }
    }
}

impl<'de> Deserialize<'de> for SplitCount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Count(u64),
            Word(String),
        }
        match Raw::deserialize(d)? {
            Raw::Count(0) => Err(serde::de::Error::custom("splits must be at least 1")),
            Raw::Count(n) => Ok(SplitCount::Fixed(n as usize)),
            Raw::Word(w) if w == "auto" => Ok(SplitCount::Auto),
            Raw::Word(w) => Err(serde::de::Error::custom(format!(
                "splits must be \"auto\" or a count, not {w:?}"
            ))),
        }
    }
}

/// Estimated bytes of `keyspace.table`, summed over every node's primary ranges.
pub async fn estimated_bytes(session: &Session, keyspace: &str, table: &str) -> Result<u64> {
    let mut total: u64 = 0;
    let nodes = session.get_cluster_state().get_nodes_info().to_vec();
    for node in nodes {
        // size_estimates is node-local: ask every node for its own ranges.
        let mut statement = Statement::new(
            "SELECT partitions_count, mean_partition_size FROM system.size_estimates \
             WHERE keyspace_name = ? AND table_name = ?",
        );
        statement.set_load_balancing_policy(Some(SingleTargetLoadBalancingPolicy::new(
            NodeIdentifier::HostId(node.host_id),
            None,
        )));
        let result = match session.query_unpaged(statement, (keyspace, table)).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(node = %node.address, error = %e, "size estimates unavailable");
                continue;
            }
        };
        let rows = result
            .into_rows_result()
            .map_err(|e| cassandra_err("size estimates", e))?;
        for row in rows
            .rows::<(i64, i64)>()
            .map_err(|e| cassandra_err("size estimates", e))?
        {
            let (count, mean) = row.map_err(|e| cassandra_err("size estimates", e))?;
            total = total.saturating_add((count.max(0) as u64).saturating_mul(mean.max(0) as u64));
        }
    }
    Ok(total)
}

/// The number of splits for a table of `bytes` estimated bytes.
pub fn auto_split_count(bytes: u64) -> usize {
    (bytes.div_ceil(DEFAULT_SPLIT_BYTES) as usize).max(FALLBACK_SPLITS)
}

/// The splits of `keyspace.table`: sized, cut from the ring, routed to replicas.
pub async fn plan_splits(
    session: &Session,
    keyspace: &str,
    table: &str,
    count: SplitCount,
    local_dc: Option<&str>,
) -> Result<Vec<Split>> {
    let target = match count {
        SplitCount::Fixed(n) => n,
        SplitCount::Auto => {
            let bytes = estimated_bytes(session, keyspace, table).await?;
            let n = auto_split_count(bytes);
            tracing::info!(
                keyspace,
                table,
                estimated_bytes = bytes,
                splits = n,
                "sized splits"
            );
            n
        }
    };
    let ring = ring_ranges(session, keyspace, table, local_dc)?;
    Ok(Split::from_ring(&ring, target))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct T {
        splits: SplitCount,
    }

    #[test]
    fn split_counts_parse_from_words_and_numbers() {
        let t: T = toml::from_str("splits = \"auto\"").expect("auto");
        assert_eq!(t.splits, SplitCount::Auto);
        let t: T = toml::from_str("splits = 12").expect("count");
        assert_eq!(t.splits, SplitCount::Fixed(12));
        assert!(toml::from_str::<T>("splits = 0").is_err());
        assert!(toml::from_str::<T>("splits = \"many\"").is_err());
    }

    #[test]
    fn auto_sizing_has_a_floor() {
        assert_eq!(auto_split_count(0), FALLBACK_SPLITS);
        assert_eq!(auto_split_count(100 * DEFAULT_SPLIT_BYTES), 100);
    }
}
