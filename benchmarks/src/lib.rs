//! `ferry-benchmarks`: the data generator and the `ferry-bench` scenarios.
//!
//! [`datagen`] writes reproducible tables into Cassandra (also used by the end-to-end tests to
//! seed their data). Each scenario measures Ferry and its anchor in the same process run and
//! reports the ratio ([`report`]); [`encode`] holds the COPY encoder scenario's batches and
//! its pgpq anchor; [`e2e`] measures the whole migration against its scan-only and load-only
//! halves; [`stage`] the dump and the load of staged Parquet against scan-only and load-only.

pub mod datagen;
pub mod e2e;
pub mod encode;
pub mod load;
pub mod report;
pub mod scan;
pub mod stage;
