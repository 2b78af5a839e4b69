//! What a run is doing, while it does it: counters the runner updates per table, shown as
//! indicatif bars on a terminal or as structured log lines otherwise, and the stop flag that
//! Ctrl-C (or SIGTERM) sets so that no new unit starts.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

/// The progress of a whole run: one [`TableProgress`] per table started, and the stop flag.
#[derive(Debug, Default)]
pub struct RunProgress {
    tables: Mutex<Vec<Arc<TableProgress>>>,
    stop: AtomicBool,
}

impl RunProgress {
    /// Asks the run to stop: no unit starts after this; units in flight finish (and commit) or
    /// fail (and roll back), which leaves a state the next run resumes from.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// Whether [`stop`](Self::stop) was called.
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Starts tracking a table of `units_total` units, `units_skipped` of them committed by an
    /// earlier attempt.
    pub fn table(&self, name: String, units_total: u64, units_skipped: u64) -> Arc<TableProgress> {
        let table = Arc::new(TableProgress {
            name,
            units_total,
            units_skipped,
            units_done: AtomicU64::new(units_skipped),
            rows_written: AtomicU64::new(0),
            rows_rejected: AtomicU64::new(0),
            started: Instant::now(),
            finished: AtomicBool::new(false),
        });
        self.tables
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::clone(&table));
        table
    }

    fn tables(&self) -> Vec<Arc<TableProgress>> {
        self.tables
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// One table's counters, updated as its units commit.
#[derive(Debug)]
pub struct TableProgress {
    /// `keyspace.table -> schema.table`.
    pub name: String,
    units_total: u64,
    units_skipped: u64,
    units_done: AtomicU64,
    rows_written: AtomicU64,
    rows_rejected: AtomicU64,
    started: Instant,
    finished: AtomicBool,
}

/// A table's progress at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Snapshot {
    pub units_total: u64,
    /// Units committed, by this attempt or an earlier one.
    pub units_done: u64,
    /// Rows written and rejected by this attempt.
    pub rows_written: u64,
    pub rows_rejected: u64,
    pub elapsed: Duration,
    /// Rows written per second by this attempt.
    pub rows_per_s: f64,
    /// Time left at this attempt's pace per unit; `None` before its first unit commits.
    pub eta: Option<Duration>,
    pub finished: bool,
}

impl TableProgress {
    /// A unit committed with these counts.
    pub fn unit_committed(&self, rows_written: u64, rows_rejected: u64) {
        self.rows_written.fetch_add(rows_written, Ordering::Relaxed);
        self.rows_rejected
            .fetch_add(rows_rejected, Ordering::Relaxed);
        self.units_done.fetch_add(1, Ordering::Relaxed);
    }

    /// The table is done (finished, failed or stopped): nothing more will change.
    pub fn finish(&self) {
        self.finished.store(true, Ordering::SeqCst);
    }

    pub fn snapshot(&self) -> Snapshot {
        let elapsed = self.started.elapsed();
        let units_done = self.units_done.load(Ordering::Relaxed);
        let rows_written = self.rows_written.load(Ordering::Relaxed);
        let secs = elapsed.as_secs_f64();
        let rows_per_s = if secs > 0.0 {
            rows_written as f64 / secs
        } else {
            0.0
        };
        // Units are about equal in size (splits are cut to equal token widths), so the time
        // per unit of this attempt predicts the rest.
        let done_now = units_done.saturating_sub(self.units_skipped);
        let left = self.units_total.saturating_sub(units_done);
        let eta = (done_now > 0).then(|| elapsed.mul_f64(left as f64 / done_now as f64));
        Snapshot {
            units_total: self.units_total,
            units_done,
            rows_written,
            rows_rejected: self.rows_rejected.load(Ordering::Relaxed),
            elapsed,
            rows_per_s,
            eta,
            finished: self.finished.load(Ordering::SeqCst),
        }
    }
}

/// How progress is shown.
#[derive(Debug, Clone)]
pub enum Display {
    /// Bars on the terminal, one per table, drawn by this [`MultiProgress`] (log lines must be
    /// written through [`MultiProgress::suspend`] so that they do not tear the bars).
    Bars(MultiProgress),
    /// An `info` log line per table in progress, at this interval.
    Log(Duration),
}

/// The task that draws progress; [`finish`](Self::finish) draws the last state and stops it.
#[derive(Debug)]
pub struct DisplayTask {
    done: Arc<AtomicBool>,
    handle: tokio::task::JoinHandle<()>,
}

impl DisplayTask {
    /// Starts showing `progress` the way `display` says.
    pub fn spawn(progress: Arc<RunProgress>, display: Display) -> Self {
        let done = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&done);
        let handle = tokio::spawn(async move {
            match display {
                Display::Bars(multi) => draw_bars(&progress, &multi, &flag).await,
                Display::Log(every) => log_lines(&progress, every, &flag).await,
            }
        });
        Self { done, handle }
    }

    /// Draws the final state and ends the task.
    pub async fn finish(self) {
        self.done.store(true, Ordering::SeqCst);
        let _ = self.handle.await;
    }
}

async fn draw_bars(progress: &RunProgress, multi: &MultiProgress, done: &AtomicBool) {
    let style = ProgressStyle::with_template(
        "{prefix:.bold} [{bar:30.cyan/blue}] {pos}/{len} units  {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    let mut bars: Vec<ProgressBar> = Vec::new();
    loop {
        let last = done.load(Ordering::SeqCst);
        let tables = progress.tables();
        for (i, table) in tables.iter().enumerate() {
            let s = table.snapshot();
            if i == bars.len() {
                let bar = multi.add(ProgressBar::new(s.units_total));
                bar.set_style(style.clone());
                bar.set_prefix(table.name.clone());
                bars.push(bar);
            }
            let bar = &bars[i];
            if bar.is_finished() {
                continue;
            }
            bar.set_position(s.units_done);
            bar.set_message(bar_message(&s));
            if s.finished || last {
                bar.finish();
            }
        }
        if last {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn bar_message(s: &Snapshot) -> String {
    let mut msg = format!("{} rows  {:.0} rows/s", group(s.rows_written), s.rows_per_s);
    if s.rows_rejected > 0 {
        msg.push_str(&format!("  {} rejected", group(s.rows_rejected)));
    }
    match (s.finished, s.eta) {
        (true, _) => msg.push_str(&format!("  done in {}", clock(s.elapsed))),
        (false, Some(eta)) => msg.push_str(&format!("  ETA {}", clock(eta))),
        (false, None) => {}
    }
    msg
}

async fn log_lines(progress: &RunProgress, every: Duration, done: &AtomicBool) {
    let mut next = Instant::now() + every;
    while !done.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if Instant::now() < next {
            continue;
        }
        next += every;
        for table in progress.tables() {
            let s = table.snapshot();
            if s.finished {
                continue;
            }
            tracing::info!(
                table = %table.name,
                units_done = s.units_done,
                units_total = s.units_total,
                rows = s.rows_written,
                rejected = s.rows_rejected,
                rows_per_s = s.rows_per_s.round(),
                eta_s = s.eta.map(|d| d.as_secs()),
                "progress"
            );
        }
    }
}

/// `1234567` as `1,234,567`.
pub fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A duration as `1h02m03s`, `2m03s` or `3s`.
pub fn clock(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, s % 3600 / 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, m, sec) => format!("{m}m{sec:02}s"),
        (h, m, sec) => format!("{h}h{m:02}m{sec:02}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eta_follows_this_attempts_pace_and_skipped_units_count_as_done() {
        let run = RunProgress::default();
        let t = run.table("ks.t -> public.t".into(), 10, 4);
        let s = t.snapshot();
        assert_eq!((s.units_done, s.eta), (4, None));
        t.unit_committed(100, 2);
        t.unit_committed(50, 0);
        let s = t.snapshot();
        assert_eq!((s.units_done, s.rows_written, s.rows_rejected), (6, 150, 2));
        // Two units took `elapsed`, four are left: twice as long again.
        let eta = s.eta.expect("units committed");
        let want = s.elapsed.mul_f64(2.0);
        assert!(
            eta.abs_diff(want) < Duration::from_millis(50),
            "{eta:?} vs {want:?}"
        );
        assert!(!run.stopped());
        run.stop();
        assert!(run.stopped());
    }

    #[test]
    fn numbers_and_durations_read_well() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1000), "1,000");
        assert_eq!(group(1234567), "1,234,567");
        assert_eq!(clock(Duration::from_secs(3)), "3s");
        assert_eq!(clock(Duration::from_secs(123)), "2m03s");
        assert_eq!(clock(Duration::from_secs(3723)), "1h02m03s");
    }
}
