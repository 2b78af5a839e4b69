//! Token ranges and splits of the Murmur3 ring.
//!
//! Murmur3 tokens are `i64`s; `i64::MIN` is never assigned to a row, so the whole ring is the
//! half-open range `(i64::MIN, i64::MAX]`. A [`TokenRange`] is `(start, end]` and never wraps:
//! a range that would wrap is cut at the ring's end into two.

use serde::{Deserialize, Serialize};

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

/// A unit of reading: the token ranges one DataFusion partition scans, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Split {
    /// Position of the split in the table's split list (= the partition index).
    pub index: usize,
    pub ranges: Vec<TokenRange>,
}

impl Split {
    /// `n` splits of equal width covering the whole ring.
    pub fn even(n: usize) -> Vec<Split> {
        TokenRange::FULL
            .split_evenly(n)
            .into_iter()
            .enumerate()
            .map(|(index, range)| Split {
                index,
                ranges: vec![range],
            })
            .collect()
    }

    /// Total tokens covered.
    pub fn width(&self) -> u128 {
        self.ranges.iter().map(TokenRange::width).sum()
    }
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
