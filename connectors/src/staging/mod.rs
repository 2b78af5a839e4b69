//! Parquet staging through object_store: `ferry dump` writes each split of a table as Parquet
//! files plus a manifest, `ferry load` and `ferry query --from` read them back as a DataFusion
//! table whose partition k is staged split k.
//!
//! - [`config`]: `[staging]`, the object store settings and how files are written.
//! - [`store`]: a URL (path, `file://`, `s3://`, `gs://`, `az://`) as an object store and prefix.
//! - [`manifest`]: `_manifest.json`, the record of what a staged table holds.
//! - [`writer`]: the sink, one split's rows into Parquet files.
//! - [`scan`]: [`StagedTable`] and [`StagedScanExec`], the source, checked against the manifest.
//! - [`types`]: Arrow columns as Parquet stores them, and back.
//! - [`hash`]: the order-independent content hash of a split's rows.

pub mod config;
pub mod hash;
pub mod manifest;
pub mod scan;
pub mod store;
pub mod types;
pub mod writer;

pub use config::StagingConfig;
pub use hash::ContentHash;
pub use manifest::{Manifest, StagedFile, StagedSplit, TransformRecord};
pub use scan::{StagedScanExec, StagedTable};
pub use store::{StagingLocation, TableLocation};
pub use writer::{WriteOptions, write_split};
