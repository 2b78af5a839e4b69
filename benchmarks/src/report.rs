//! The JSON every scenario writes (DESIGN.md §7): figures, and ratios against anchors measured
//! in the same run. A ratio is a throughput ratio, Ferry over its anchor: higher is better.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

/// One timed run of one side of a scenario.
#[derive(Debug, Clone, Copy)]
pub struct Pass {
    pub rows: u64,
    pub bytes: u64,
    pub seconds: f64,
}

impl Pass {
    pub fn rows_per_s(&self) -> f64 {
        self.rows as f64 / self.seconds
    }
}

/// One measured thing: the median of several runs.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    pub name: String,
    pub rows_per_s: f64,
    pub mb_per_s: f64,
    pub peak_rss_mb: f64,
    /// Every run's rows/s, so the spread is visible.
    pub runs_rows_per_s: Vec<f64>,
}

impl Figure {
    /// The median of `passes`, with the peak RSS measured by the caller.
    pub fn from_passes(name: impl Into<String>, passes: &[Pass], peak_rss_mb: f64) -> Self {
        let rps: Vec<f64> = passes.iter().map(Pass::rows_per_s).collect();
        let mbps: Vec<f64> = passes
            .iter()
            .map(|p| p.bytes as f64 / 1e6 / p.seconds)
            .collect();
        Figure {
            name: name.into(),
            rows_per_s: median(&rps),
            mb_per_s: median(&mbps),
            peak_rss_mb,
            runs_rows_per_s: rps,
        }
    }
}

/// A scenario's result.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioReport {
    pub scenario: String,
    pub rows: u64,
    pub cores: usize,
    pub versions: BTreeMap<String, String>,
    pub figures: Vec<Figure>,
    pub ratios: BTreeMap<String, f64>,
    /// Every run's value of the ratios that are medians of run-by-run ratios, so the spread is
    /// visible.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub ratio_runs: BTreeMap<String, Vec<f64>>,
    /// Peak RSS over peak RSS (lower is better, 1 is flat). Not throughput ratios, so not in
    /// `ratios`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub rss_ratios: BTreeMap<String, f64>,
    /// Size over size (lower is smaller), e.g. staged Parquet bytes over COPY bytes. Not
    /// throughput ratios, so not in `ratios`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub sizes: BTreeMap<String, f64>,
    /// Every run's peak RSS in MB of the figures measured in processes of their own.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub rss_runs: BTreeMap<String, Vec<f64>>,
    /// How the figures were taken (profile, runs, services).
    pub notes: Vec<String>,
}

impl ScenarioReport {
    /// An empty report for `scenario` over `rows` rows.
    pub fn new(scenario: &str, rows: u64) -> Self {
        let mut versions = BTreeMap::new();
        versions.insert("ferry".into(), env!("CARGO_PKG_VERSION").into());
        versions.insert(
            "profile".into(),
            if cfg!(debug_assertions) {
                "dev"
            } else {
                "release"
            }
            .into(),
        );
        Self {
            scenario: scenario.into(),
            rows,
            cores: std::thread::available_parallelism().map_or(1, usize::from),
            versions,
            figures: Vec::new(),
            ratios: BTreeMap::new(),
            ratio_runs: BTreeMap::new(),
            rss_ratios: BTreeMap::new(),
            sizes: BTreeMap::new(),
            rss_runs: BTreeMap::new(),
            notes: Vec::new(),
        }
    }

    /// Prints a table of figures and ratios.
    pub fn print(&self) {
        println!(
            "scenario {} ({} rows, {} cores)",
            self.scenario, self.rows, self.cores
        );
        println!(
            "{:<28} {:>14} {:>10} {:>12}",
            "figure", "rows/s", "MB/s", "peak RSS MB"
        );
        for f in &self.figures {
            println!(
                "{:<28} {:>14.0} {:>10.1} {:>12.0}",
                f.name, f.rows_per_s, f.mb_per_s, f.peak_rss_mb
            );
        }
        for (k, v) in &self.ratios {
            println!("ratio {k:<24} {v:.3}");
        }
        for (k, v) in &self.sizes {
            println!("size  {k:<24} {v:.3}");
        }
    }

    /// Writes the report as JSON.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, serde_json::to_vec_pretty(self)?)
    }

    /// Prints the table and the notes, then writes the JSON to `json` if given.
    pub fn publish(&self, json: Option<&Path>) -> std::io::Result<()> {
        self.print();
        for note in &self.notes {
            println!("  {note}");
        }
        match json {
            Some(path) => self.write(path),
            None => Ok(()),
        }
    }
}

/// The median of `values` (the mean of the middle two for an even count).
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// This process's peak resident set size in MB (Linux `VmHWM`), 0 when unknown.
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// One pass of 1,000 rows (2,000 bytes) at each of `rates` rows/s: the scenarios' test input.
#[cfg(test)]
pub fn passes(rates: &[f64]) -> Vec<Pass> {
    rates
        .iter()
        .map(|r| Pass {
            rows: 1_000,
            bytes: 2_000,
            seconds: 1_000.0 / r,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }
}
