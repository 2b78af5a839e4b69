//! A cap on the rows per second a scan reads, so a migration can run against a production
//! cluster beside its live traffic (`source.max_rows_per_s`).
//!
//! Each page request reserves a page's worth of rows before it goes out and waits for its turn:
//! reservations are laid end to end at the configured rate (rows / rate each), so requests are
//! spread evenly instead of bursting and then pausing. A page that comes back short gives the
//! rows it did not use back, so short pages (the end of each token range) cost only what they
//! read.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Rows per second shared by every split of one table's scan.
#[derive(Debug)]
pub struct RowRate {
    rows_per_s: u64,
    /// When the next reservation may start.
    next: Mutex<Instant>,
}

impl RowRate {
    /// A limit of `rows_per_s` (at least 1).
    pub fn new(rows_per_s: u64) -> Self {
        Self {
            rows_per_s: rows_per_s.max(1),
            next: Mutex::new(Instant::now()),
        }
    }

    /// The configured rate.
    pub fn rows_per_s(&self) -> u64 {
        self.rows_per_s
    }

    fn cost(&self, rows: u64) -> Duration {
        Duration::from_secs_f64(rows as f64 / self.rows_per_s as f64)
    }

    /// Reserves `rows` at `now`; returns when their turn starts.
    fn reserve_at(&self, now: Instant, rows: u64) -> Instant {
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        // Time nobody used is not saved up: an idle scan does not earn a burst.
        let start = (*next).max(now);
        *next = start + self.cost(rows);
        start
    }

    /// Reserves `rows` and waits until their turn.
    pub async fn reserve(&self, rows: u64) {
        let start = self.reserve_at(Instant::now(), rows);
        tokio::time::sleep_until(start.into()).await;
    }

    /// Gives back `rows` reserved but not read.
    pub fn refund(&self, rows: u64) {
        if rows == 0 {
            return;
        }
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        *next = next.checked_sub(self.cost(rows)).unwrap_or(*next);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_are_laid_end_to_end_at_the_rate() {
        let rate = RowRate::new(1000);
        let t0 = Instant::now();
        let starts: Vec<Duration> = (0..4)
            .map(|_| rate.reserve_at(t0, 500).saturating_duration_since(t0))
            .collect();
        let ms: Vec<u128> = starts.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [0, 500, 1000, 1500]);
    }

    #[test]
    fn a_short_page_gives_back_what_it_did_not_read() {
        let rate = RowRate::new(1000);
        let t0 = Instant::now();
        rate.reserve_at(t0, 500);
        rate.refund(400);
        let next = rate.reserve_at(t0, 500).saturating_duration_since(t0);
        assert_eq!(next.as_millis(), 100);
    }

    #[test]
    fn idle_time_is_not_saved_up() {
        let rate = RowRate::new(1000);
        let t0 = Instant::now();
        rate.reserve_at(t0, 100);
        let later = t0 + Duration::from_secs(10);
        assert_eq!(rate.reserve_at(later, 100), later);
        let after = rate.reserve_at(later, 100).saturating_duration_since(later);
        assert_eq!(after.as_millis(), 100);
    }
}
