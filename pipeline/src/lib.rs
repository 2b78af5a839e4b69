//! `ferry-pipeline`: turns a config into a migration and runs it.
//!
//! [`config`] reads `ferry.toml`; [`plan`] builds, per table, the DataFusion plan (Cassandra scan →
//! transform SQL) and the COPY encoder for the target; [`runner`] hands the plan's partitions to
//! workers that each own one target connection; [`rejects`] writes the rows a unit rejected as
//! Parquet; [`report`] is the JSON every command writes;
//! [`query`] runs ad-hoc SQL over the configured Cassandra keyspaces (`ferry query`); [`schema`]
//! generates (and can run) the target tables' `CREATE TABLE` statements (`ferry schema`);
//! [`dryrun`] reads every table through its transform and predicts the run without writing
//! (`ferry dry-run`); [`explain`] shows each table's plan (`ferry explain`).
//! [`validate`] proves the target equals the transformed source, split by split, and repairs it
//! (`ferry validate`).
//! [`stage`] dumps tables to staged Parquet (`ferry dump`), which [`runner::load_with`] loads.
//!
//! It knows nothing about the terminal or argument parsing (that is the CLI), and nothing about
//! wire formats (that is `ferry-connectors`).

pub mod checkpoint;
pub mod config;
pub mod dryrun;
pub mod error;
pub mod explain;
pub mod lease;
pub mod plan;
pub mod progress;
pub mod query;
pub mod rejects;
pub mod report;
pub mod runner;
pub mod schema;
pub mod stage;
pub mod status;
pub mod validate;

pub use config::Config;
pub use error::{PipelineError, Result};
pub use report::{Report, TableReport};
pub use runner::{load_with, migrate, migrate_with};
pub use stage::{DumpOptions, dump_with};
