//! `ferry-connectors`: the systems Ferry reads from and writes to, one module per system, each with
//! the same shape (`mod.rs` for the public surface, `config.rs`, the source or sink itself,
//! `types.rs` for value conversion).
//!
//! - [`cassandra`]: token-range splits and a DataFusion `TableProvider` whose partition k is split k.
//! - [`staging`]: Parquet files and their manifest through object_store (`dump`, `load`).
//! - [`tls`]: the `[*.tls]` settings and rustls configuration both connectors use.
//! - [`yugabyte`]: target introspection, the binary COPY encoder and the transactional COPY sink.
//!
//! Connectors know nothing about runs, work queues, checkpoints or reports: that is `ferry-pipeline`.

pub mod cassandra;
pub mod error;
pub mod secret;
pub mod staging;
pub mod tls;
pub mod yugabyte;

pub use error::{ConnectorError, Result};
pub use secret::Secret;
