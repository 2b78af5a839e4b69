//! The command-line flags the scenarios share, flattened into each scenario's arguments.

use std::path::PathBuf;

/// What every scenario takes (and `all` sets for each): how many rows, how many runs, and where
/// the JSON report goes.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Rows of benchmark data (in the Cassandra source table, or in batches generated in-process).
    #[arg(long, default_value_t = 1_000_000)]
    pub rows: u64,
    /// Runs of each side; the figures are medians.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Write the JSON report here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// How the scenarios that read the Cassandra benchmark table reach and read it.
#[derive(Debug, Clone, clap::Args)]
pub struct SourceArgs {
    /// Rows per Cassandra page (`source.page_size`).
    #[arg(long, default_value_t = 5000)]
    pub page_size: i32,
    /// Keep a source table an earlier run finished writing instead of writing it again.
    #[arg(long)]
    pub reuse: bool,
    /// Cassandra contact point.
    #[arg(long, env = "FERRY_CASSANDRA", default_value = "127.0.0.1:9042")]
    pub cassandra: String,
}
