//! Token ranges and splits of the Murmur3 ring.
//!
//! Murmur3 tokens are `i64`s; `i64::MIN` is never assigned to a row, so the whole ring is the
//! half-open range `(i64::MIN, i64::MAX]`. A [`TokenRange`] is `(start, end]` and never wraps:
//! a range that would wrap is cut at the ring's end into two.

use std::collections::BTreeMap;
use std::sync::Arc;

use scylla::client::session::Session;
use scylla::cluster::ClusterState;
use scylla::cluster::metadata::Strategy;
use scylla::routing::Token;
use scylla::routing::locator::ReplicaLocator;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{ConnectorError, Result};

/// The smallest token; no row has it, so it only ever appears as an exclusive start.
pub const MIN_TOKEN: i64 = i64::MIN;
/// The largest token.
pub const MAX_TOKEN: i64 = i64::MAX;

/// Tokens `(start, end]`, with `start < end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TokenRange {
    /// Exclusive.
    pub start: i64,
    /// Inclusive.
    pub end: i64,
}

impl TokenRange {
    /// The whole ring.
    pub const FULL: TokenRange = TokenRange {
        start: MIN_TOKEN,
        end: MAX_TOKEN,
    };

    /// How many tokens the range holds.
    pub fn width(&self) -> u128 {
        (i128::from(self.end) - i128::from(self.start)) as u128
    }

    /// Whether `token` is in `(start, end]`.
    pub fn contains(&self, token: i64) -> bool {
        token > self.start && token <= self.end
    }

    /// Cuts the range into `n` contiguous ranges of near-equal width (fewer if it is too narrow).
    pub fn split_evenly(&self, n: usize) -> Vec<TokenRange> {
        let width = self.width();
        let n = (n.max(1) as u128).min(width.max(1));
        let (step, extra) = (width / n, width % n);
        let mut out = Vec::with_capacity(n as usize);
        let mut start = i128::from(self.start);
        for i in 0..n {
            // The first `extra` pieces get one more token, so the pieces add up exactly.
            let end = start + (step + u128::from(i < extra)) as i128;
            out.push(TokenRange {
                start: start as i64,
                end: end as i64,
            });
            start = end;
        }
        out
    }
}

/// A node that holds a copy of a range.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Replica {
    pub host_id: Uuid,
    /// `ip:port`, for messages and `ferry explain`.
    pub address: String,
}

/// A range of the ring and the replicas that own it, in the driver's preference order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingRange {
    pub range: TokenRange,
    pub replicas: Vec<Replica>,
}

/// A unit of reading: the token ranges one DataFusion partition scans, in order. Every range of
/// a split has the same replicas, so each of its reads can be sent straight to one of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// Position of the split in the table's split list (= the partition index).
    pub index: usize,
    pub ranges: Vec<TokenRange>,
    /// Nodes holding these ranges; empty when unknown (any coordinator will do).
    pub replicas: Vec<Replica>,
}

impl Split {
    /// Splits of given token ranges (a resumed run's stored plan), each routed to the replicas
    /// that own its first range in `ring` now.
    pub fn routed(ranges: Vec<Vec<TokenRange>>, ring: &[RingRange]) -> Vec<Split> {
        ranges
            .into_iter()
            .enumerate()
            .map(|(index, ranges)| {
                let replicas = ranges
                    .first()
                    .and_then(|r| ring.iter().find(|rr| rr.range.contains(r.end)))
                    .map(|rr| rr.replicas.clone())
                    .unwrap_or_default();
                Split {
                    index,
                    ranges,
                    replicas,
                }
            })
            .collect()
    }

    /// `n` splits of equal width covering the whole ring, with no replica information.
    pub fn even(n: usize) -> Vec<Split> {
        TokenRange::FULL
            .split_evenly(n)
            .into_iter()
            .enumerate()
            .map(|(index, range)| Split {
                index,
                ranges: vec![range],
                replicas: Vec::new(),
            })
            .collect()
    }

    /// `target` splits from the ring (more only when the ring has more replica sets than that).
    /// Each replica set gets a share of the splits in proportion to the tokens it owns, its
    /// ranges are cut into that many pieces of equal width (never mixing replica sets), and the
    /// splits are ordered so consecutive ones start on different replicas.
    pub fn from_ring(ring: &[RingRange], target: usize) -> Vec<Split> {
        let total: u128 = ring.iter().map(|r| r.range.width()).sum();
        if ring.is_empty() || total == 0 {
            return Split::even(target);
        }
        // Replica set (sorted) → its ranges in ring order, and the preferred replica order.
        let mut groups: BTreeMap<Vec<Replica>, (Vec<TokenRange>, Vec<Replica>)> = BTreeMap::new();
        for r in ring {
            let mut key = r.replicas.clone();
            key.sort();
            let entry = groups
                .entry(key)
                .or_insert_with(|| (Vec::new(), r.replicas.clone()));
            entry.0.push(r.range);
        }
        let widths: Vec<u128> = groups
            .values()
            .map(|(ranges, _)| ranges.iter().map(TokenRange::width).sum())
            .collect();
        let shares = apportion(&widths, target.max(1));
        let mut by_primary: BTreeMap<Option<Replica>, Vec<Split>> = BTreeMap::new();
        for ((ranges, replicas), share) in groups.into_values().zip(shares) {
            for chunk in cut_evenly(&ranges, share) {
                by_primary
                    .entry(replicas.first().cloned())
                    .or_default()
                    .push(Split {
                        index: 0,
                        ranges: chunk,
                        replicas: replicas.clone(),
                    });
            }
        }
        // Round-robin over primary replicas, so neighbouring units load different nodes.
        let mut queues: Vec<std::vec::IntoIter<Split>> =
            by_primary.into_values().map(Vec::into_iter).collect();
        let mut out = Vec::new();
        while !queues.is_empty() {
            queues.retain_mut(|q| match q.next() {
                Some(mut split) => {
                    split.index = out.len();
                    out.push(split);
                    true
                }
                None => false,
            });
        }
        out
    }

    /// Total tokens covered.
    pub fn width(&self) -> u128 {
        self.ranges.iter().map(TokenRange::width).sum()
    }
}

/// Splits `total` among groups in proportion to `widths`: at least one each, summing to `total`
/// when that is possible (largest remainders get the leftovers).
fn apportion(widths: &[u128], total: usize) -> Vec<usize> {
    let sum: u128 = widths.iter().sum::<u128>().max(1);
    let exact: Vec<(usize, u128)> = widths
        .iter()
        .map(|&w| {
            let scaled = w.saturating_mul(total as u128);
            ((scaled / sum) as usize, scaled % sum)
        })
        .collect();
    let mut shares: Vec<usize> = exact.iter().map(|&(n, _)| n.max(1)).collect();
    let assigned: usize = shares.iter().sum();
    if assigned < total {
        let mut order: Vec<usize> = (0..widths.len()).collect();
        order.sort_by(|&a, &b| exact[b].1.cmp(&exact[a].1));
        for &i in order.iter().cycle().take(total - assigned) {
            shares[i] += 1;
        }
    }
    shares
}

/// Cuts ranges (in ring order) into `n` chunks of equal token width, merging touching pieces.
fn cut_evenly(ranges: &[TokenRange], n: usize) -> Vec<Vec<TokenRange>> {
    let total: u128 = ranges.iter().map(TokenRange::width).sum();
    let n = (n.max(1) as u128).min(total.max(1));
    let (step, extra) = (total / n, total % n);
    let mut chunks = Vec::with_capacity(n as usize);
    let mut current: Vec<TokenRange> = Vec::new();
    let mut remaining = step + u128::from(extra > 0);
    for range in ranges {
        let mut start = i128::from(range.start);
        let end = i128::from(range.end);
        while start < end {
            let take = ((end - start) as u128).min(remaining);
            let piece = TokenRange {
                start: start as i64,
                end: (start + take as i128) as i64,
            };
            match current.last_mut() {
                Some(last) if last.end == piece.start => last.end = piece.end,
                _ => current.push(piece),
            }
            start += take as i128;
            remaining -= take;
            if remaining == 0 {
                chunks.push(std::mem::take(&mut current));
                let i = chunks.len() as u128;
                remaining = step + u128::from(i < extra);
                if remaining == 0 {
                    remaining = u128::MAX;
                }
            }
        }
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    chunks
}

/// The ring of `keyspace` as the driver sees it: consecutive token ranges and their replicas
/// (replicas in `local_dc` only, when one is given).
pub fn ring_ranges(
    session: &Session,
    keyspace: &str,
    table: &str,
    local_dc: Option<&str>,
) -> Result<Vec<RingRange>> {
    let cluster: Arc<ClusterState> = session.get_cluster_state();
    let strategy = cluster
        .get_keyspace(keyspace)
        .map(|k| k.strategy.clone())
        .ok_or_else(|| ConnectorError::SourceTableNotFound {
            keyspace: keyspace.to_string(),
            table: table.to_string(),
        })?;
    let locator = cluster.replica_locator();
    let tokens: Vec<i64> = locator.ring().iter().map(|(t, _)| t.value()).collect();
    let replicas = |token: i64| replicas_for(locator, &strategy, keyspace, table, local_dc, token);
    let Some((&first, &last)) = tokens.first().zip(tokens.last()) else {
        return Ok(vec![RingRange {
            range: TokenRange::FULL,
            replicas: Vec::new(),
        }]);
    };
    let mut out = Vec::with_capacity(tokens.len() + 1);
    // The wrap-around range (last, MAX] ∪ (MIN, first] belongs to the owner of `first`.
    if first > MIN_TOKEN {
        out.push(RingRange {
            range: TokenRange {
                start: MIN_TOKEN,
                end: first,
            },
            replicas: replicas(first),
        });
    }
    for w in tokens.windows(2) {
        if w[0] < w[1] {
            out.push(RingRange {
                range: TokenRange {
                    start: w[0],
                    end: w[1],
                },
                replicas: replicas(w[1]),
            });
        }
    }
    if last < MAX_TOKEN {
        out.push(RingRange {
            range: TokenRange {
                start: last,
                end: MAX_TOKEN,
            },
            replicas: replicas(first),
        });
    }
    Ok(out)
}

fn replicas_for(
    locator: &ReplicaLocator,
    strategy: &Strategy,
    keyspace: &str,
    table: &str,
    local_dc: Option<&str>,
    token: i64,
) -> Vec<Replica> {
    let spec = scylla::frame::response::result::TableSpec::borrowed(keyspace, table);
    locator
        .replicas_for_token(Token::new(token), strategy, local_dc, &spec)
        .into_iter()
        .map(|(node, _shard)| Replica {
            host_id: node.host_id,
            address: node.address.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn one_split_is_the_whole_ring() {
        assert_eq!(Split::even(1)[0].ranges, vec![TokenRange::FULL]);
    }

    #[test]
    fn even_splits_are_contiguous_and_cover_the_ring() {
        let splits = Split::even(7);
        assert_eq!(splits.len(), 7);
        assert_eq!(splits[0].ranges[0].start, MIN_TOKEN);
        assert_eq!(splits[6].ranges[0].end, MAX_TOKEN);
        for w in splits.windows(2) {
            assert_eq!(w[0].ranges[0].end, w[1].ranges[0].start);
        }
        let total: u128 = splits.iter().map(Split::width).sum();
        assert_eq!(total, TokenRange::FULL.width());
    }

    #[test]
    fn a_narrow_range_splits_into_at_most_its_width() {
        let r = TokenRange { start: 10, end: 13 };
        assert_eq!(
            r.split_evenly(10),
            vec![
                TokenRange { start: 10, end: 11 },
                TokenRange { start: 11, end: 12 },
                TokenRange { start: 12, end: 13 },
            ]
        );
    }

    proptest! {
        #[test]
        fn every_token_is_in_exactly_one_piece(
            a in any::<i64>(), b in any::<i64>(), n in 1usize..300, probe in any::<i64>()
        ) {
            prop_assume!(a != b);
            let r = TokenRange { start: a.min(b), end: a.max(b) };
            let pieces = r.split_evenly(n);
            prop_assert_eq!(pieces.iter().map(TokenRange::width).sum::<u128>(), r.width());
            let hits = pieces.iter().filter(|p| p.contains(probe)).count();
            prop_assert_eq!(hits, usize::from(r.contains(probe)));
            let max = pieces.iter().map(TokenRange::width).max().unwrap_or(0);
            let min = pieces.iter().map(TokenRange::width).min().unwrap_or(0);
            prop_assert!(max - min <= 1);
        }
    }
}

#[cfg(test)]
mod ring_tests {
    use proptest::prelude::*;

    use super::*;

    fn replica(n: u8) -> Replica {
        Replica {
            host_id: Uuid::from_u128(u128::from(n)),
            address: format!("127.0.0.{n}:9042"),
        }
    }

    /// A ring of `tokens` (sorted, distinct) owned round-robin by `nodes` nodes with RF `rf`.
    fn ring(tokens: &[i64], nodes: u8, rf: u8) -> Vec<RingRange> {
        let owners = |i: usize| -> Vec<Replica> {
            (0..rf.min(nodes))
                .map(|k| replica(((i + k as usize) % nodes as usize) as u8 + 1))
                .collect()
        };
        let mut out = Vec::new();
        if tokens[0] > MIN_TOKEN {
            out.push(RingRange {
                range: TokenRange {
                    start: MIN_TOKEN,
                    end: tokens[0],
                },
                replicas: owners(0),
            });
        }
        for (i, w) in tokens.windows(2).enumerate() {
            out.push(RingRange {
                range: TokenRange {
                    start: w[0],
                    end: w[1],
                },
                replicas: owners(i + 1),
            });
        }
        let last = *tokens.last().expect("non-empty");
        if last < MAX_TOKEN {
            out.push(RingRange {
                range: TokenRange {
                    start: last,
                    end: MAX_TOKEN,
                },
                replicas: owners(0),
            });
        }
        out
    }

    fn covered_exactly_once(splits: &[Split], probe: i64) -> bool {
        let hits: usize = splits
            .iter()
            .flat_map(|s| &s.ranges)
            .filter(|r| r.contains(probe))
            .count();
        hits == usize::from(probe != MIN_TOKEN)
    }

    #[test]
    fn a_single_token_ring_is_the_whole_ring() {
        let splits = Split::from_ring(&ring(&[0], 1, 1), 4);
        let total: u128 = splits.iter().map(Split::width).sum();
        assert_eq!(total, TokenRange::FULL.width());
        assert!(splits.iter().all(|s| s.replicas == vec![replica(1)]));
        assert!(covered_exactly_once(&splits, MAX_TOKEN));
        assert!(covered_exactly_once(&splits, MIN_TOKEN + 1));
    }

    #[test]
    fn the_requested_count_is_honoured() {
        let tokens: Vec<i64> = (-8..8).map(|i| i * (i64::MAX / 9) + 17).collect();
        for target in [1, 3, 7, 24, 100] {
            let splits = Split::from_ring(&ring(&tokens, 1, 1), target);
            assert_eq!(splits.len(), target);
            let splits = Split::from_ring(&ring(&tokens, 3, 2), target.max(3));
            assert_eq!(splits.len(), target.max(3));
        }
        assert_eq!(apportion(&[1, 1, 2], 8), vec![2, 2, 4]);
        assert_eq!(apportion(&[1, 1000], 2), vec![1, 1]);
    }

    #[test]
    fn consecutive_splits_start_on_different_replicas() {
        let tokens: Vec<i64> = (-8..8).map(|i| i * (i64::MAX / 9)).collect();
        let splits = Split::from_ring(&ring(&tokens, 3, 1), 12);
        for w in splits.windows(2).take(3) {
            assert_ne!(w[0].replicas[0], w[1].replicas[0]);
        }
        for (i, s) in splits.iter().enumerate() {
            assert_eq!(s.index, i);
        }
    }

    proptest! {
        #[test]
        fn splits_cover_the_ring_exactly_once_and_never_mix_replicas(
            mut tokens in proptest::collection::vec(any::<i64>(), 1..40),
            nodes in 1u8..5, rf in 1u8..4, target in 1usize..64, probe in any::<i64>(),
        ) {
            tokens.sort();
            tokens.dedup();
            let ring = ring(&tokens, nodes, rf);
            let splits = Split::from_ring(&ring, target);
            prop_assert_eq!(splits.iter().map(Split::width).sum::<u128>(), TokenRange::FULL.width());
            prop_assert!(covered_exactly_once(&splits, probe));
            for s in &splits {
                for r in &s.ranges {
                    // Every range of a split lies in ring ranges owned by the split's replicas.
                    let owner = ring.iter().find(|rr| rr.range.contains(r.end)).expect("covered");
                    let mut a = owner.replicas.clone();
                    let mut b = s.replicas.clone();
                    a.sort();
                    b.sort();
                    prop_assert_eq!(a, b);
                }
            }
        }
    }
}
