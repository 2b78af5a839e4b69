//! `ferry-benchmarks`: the data generator and the `ferry-bench` scenarios.
//!
//! [`datagen`] writes reproducible tables into Cassandra (also used by the end-to-end tests to
//! seed their data).

pub mod datagen;
