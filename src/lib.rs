//! Ferry moves Apache Cassandra tables into YugabyteDB through Apache Arrow.
//!
//! This crate is the `ferry` command and a thin facade over the library crates, so an
//! orchestrator can embed the pipeline without the CLI:
//!
//! ```text
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = ferry::pipeline::Config::load(std::path::Path::new("ferry.toml"))?;
//! let report = ferry::pipeline::migrate(&config).await;
//! println!("{}", report.tables[0].rows_written);
//! # Ok(())
//! # }
//! ```

pub use ferry_connectors as connectors;
pub use ferry_pipeline as pipeline;
pub use ferry_sql as sql;
