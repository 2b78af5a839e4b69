//! The error type of `ferry-pipeline`.

use std::path::PathBuf;

use arrow::error::ArrowError;
use datafusion::error::DataFusionError;
use ferry_connectors::ConnectorError;
use ferry_connectors::error::datafusion_error_is_retriable;
use ferry_sql::SqlError;

/// Everything that can stop a command.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The config file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    ConfigRead {
        path: PathBuf,
        source: std::io::Error,
    },

    /// The config file is not valid.
    #[error("invalid config {}: {message}", path.display())]
    Config { path: PathBuf, message: String },

    /// A transform or type problem.
    #[error(transparent)]
    Sql(#[from] SqlError),

    /// A source or target problem.
    #[error(transparent)]
    Connector(#[from] ConnectorError),

    /// A query-engine problem.
    #[error("{}", df_message(.0))]
    DataFusion(#[from] DataFusionError),

    /// A query that cannot run as written: a syntax error, an unknown keyspace, table or column,
    /// or a statement that is not a query (`ferry query` refuses DDL and DML). Nothing was read.
    #[error("invalid query: {0}")]
    Query(String),

    /// Writing a query result failed.
    #[error("cannot write the query result: {source}")]
    Output { source: ArrowError },

    /// A work unit failed for good.
    #[error("table {table}, split {split}: {source}")]
    Unit {
        table: String,
        split: usize,
        source: Box<PipelineError>,
    },

    /// The run was asked to stop (Ctrl-C, SIGTERM) before this table's units were all done.
    #[error(
        "interrupted (Ctrl-C or SIGTERM) with {units_left} unit(s) not done: units in flight \
         finished or rolled back; run the same command again to resume"
    )]
    Interrupted { units_left: u64 },

    /// A table rejected more rows than its `max_rejects`.
    #[error(
        "table {table}: {rejected} rows rejected, more than max_rejects = {max}; the report lists \
         the first rejects with their reasons: fix the data, the transform or the target, then \
         run again to resume (committed units are kept)"
    )]
    TooManyRejects {
        table: String,
        rejected: u64,
        max: u64,
    },

    /// The run state in the target (schema `ferry_state`) is not what this run expects.
    #[error("run state: {0}")]
    RunState(String),

    /// A worker task panicked or was cancelled: a bug.
    #[error("a worker stopped unexpectedly: {0}")]
    Worker(String),

    /// A command-line argument that cannot be used (a `--where` that is not one boolean
    /// expression over the output columns, say). Nothing was read.
    #[error("{0}")]
    Argument(String),

    /// Writing a report or another output file failed.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl PipelineError {
    /// Whether retrying the failed operation may succeed.
    pub fn is_retriable(&self) -> bool {
        match self {
            PipelineError::Connector(e) => e.is_retriable(),
            PipelineError::DataFusion(e) => datafusion_error_is_retriable(e),
            PipelineError::Unit { source, .. } => source.is_retriable(),
            _ => false,
        }
    }
}

/// A DataFusion error's message without DataFusion's "External error: " wrapping.
fn df_message(err: &DataFusionError) -> String {
    match err {
        DataFusionError::External(e) => e.to_string(),
        DataFusionError::Context(ctx, inner) => format!("{ctx}: {}", df_message(inner)),
        other => other.strip_backtrace(),
    }
}

/// `Result` with [`PipelineError`].
pub type Result<T, E = PipelineError> = std::result::Result<T, E>;
