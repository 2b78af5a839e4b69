//! `ferry-benchmarks`: the data generator and the `ferry-bench` scenarios.
//!
//! [`datagen`] writes reproducible tables into Cassandra (also used by the end-to-end tests to
//! seed their data). Each scenario measures Ferry and its anchor in the same process run and
//! reports the ratio ([`report`]); [`encode`] holds the COPY encoder scenario's batches and
//! its pgpq anchor; [`e2e`] measures the whole migration against its scan-only and load-only
//! halves, and [`spark`] against the Spark job of `seed-spark-parallelism.md`; [`latency`]
//! measures it with PostgreSQL behind a round-trip latency ([`proxy`]) against itself without;
//! [`dryrun`] measures `ferry dry-run` against scan-only; [`stage`] the dump
//! and the load of staged Parquet against scan-only and load-only; [`scaleout`] several workers
//! on one run against one worker with as many connections, and what unit leases cost; [`upsert`]
//! upsert mode against transactional mode.

pub mod all;
pub mod args;
pub mod cli;
pub mod datagen;
pub mod dryrun;
pub mod e2e;
pub mod encode;
pub mod latency;
pub mod load;
pub mod proxy;
pub mod report;
pub mod scaleout;
pub mod scan;
pub mod setup;
pub mod spark;
pub mod stage;
pub mod upsert;
pub mod validate;
