//! The staging sink: one split's rows into Parquet files (zstd, row groups of
//! `row_group_rows`), a new file once one reaches `file_mb`, through object_store.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use datafusion::physical_plan::SendableRecordBatchStream;
use futures::StreamExt;
use object_store::buffered::BufWriter;
use parquet::arrow::AsyncArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use super::config::StagingConfig;
use super::hash::ContentHash;
use super::manifest::{StagedFile, StagedSplit};
use super::store::{TableLocation, split_file_name};
use super::types::{parquet_schema, to_parquet};
use crate::error::{ConnectorError, Result};

/// A column's dictionary falls back to plain encoding once it holds this many bytes. Parquet's
/// default (1 MiB) dictionary-encodes every value of a split's high-cardinality columns (ids,
/// uuids, names, amounts), which on a typical table costs 2.5x the write time for a larger file;
/// at 16 KiB, those fall back after a few thousand values while enum-like columns (a few hundred
/// distinct values) keep their dictionary.
const DICTIONARY_PAGE_BYTES: usize = 16 * 1024;

/// How split files are written.
#[derive(Debug, Clone)]
pub struct WriteOptions {
    pub zstd_level: i32,
    pub row_group_rows: usize,
    /// A file is closed once it reaches about this many bytes.
    pub file_bytes: u64,
}

impl WriteOptions {
    /// The options of `[staging]`.
    pub fn new(config: &StagingConfig) -> Self {
        Self {
            zstd_level: config.zstd_level,
            row_group_rows: config.row_group_rows.max(1),
            file_bytes: config.file_mb.max(1) * 1024 * 1024,
        }
    }

    fn properties(&self) -> Result<WriterProperties> {
        let level = ZstdLevel::try_new(self.zstd_level).map_err(|e| ConnectorError::Config {
            section: "staging",
            message: format!("zstd_level = {}: {e}", self.zstd_level),
        })?;
        Ok(WriterProperties::builder()
            .set_compression(Compression::ZSTD(level))
            .set_max_row_group_row_count(Some(self.row_group_rows))
            .set_dictionary_page_size_limit(DICTIONARY_PAGE_BYTES)
            .build())
    }
}

/// The file being written.
struct OpenFile {
    name: String,
    writer: AsyncArrowWriter<BufWriter>,
    rows: u64,
}

/// Writes split `index`: every batch of `batches` (whose schema is `schema`) into
/// `split-<index>-<n>.parquet` files of `table`, and returns what they hold. A split without
/// rows has no file. On failure, the upload in progress is aborted; files already finished stay
/// (a resumed dump deletes what the manifest does not list).
pub async fn write_split(
    table: &TableLocation,
    index: usize,
    schema: &SchemaRef,
    mut batches: SendableRecordBatchStream,
    options: &WriteOptions,
) -> Result<StagedSplit> {
    let file_schema = parquet_schema(schema);
    let properties = options.properties()?;
    let mut hash = ContentHash::default();
    let mut files: Vec<StagedFile> = Vec::new();
    let mut open: Option<OpenFile> = None;
    let result: Result<()> = async {
        while let Some(batch) = batches.next().await {
            let batch = batch?;
            if batch.num_rows() == 0 {
                continue;
            }
            hash.add(&batch).map_err(|e| ConnectorError::Staged {
                path: table.display(&split_file_name(index, files.len())),
                message: format!("cannot hash the rows: {e}"),
            })?;
            let stored = to_parquet(&batch, &file_schema).map_err(|e| ConnectorError::Staged {
                path: table.display(&split_file_name(index, files.len())),
                message: format!("cannot convert the rows for Parquet: {e}"),
            })?;
            if open.is_none() {
                let name = split_file_name(index, files.len());
                let sink = BufWriter::new(Arc::clone(table.store()), table.path(&name));
                let writer = AsyncArrowWriter::try_new(
                    sink,
                    Arc::clone(&file_schema),
                    Some(properties.clone()),
                )
                .map_err(|source| parquet_err("starting", table, &name, source))?;
                open = Some(OpenFile {
                    name,
                    writer,
                    rows: 0,
                });
            }
            let file = open.as_mut().expect("opened just above");
            file.writer
                .write(&stored)
                .await
                .map_err(|source| parquet_err("writing", table, &file.name, source))?;
            file.rows += stored.num_rows() as u64;
            let size = (file.writer.bytes_written() + file.writer.in_progress_size()) as u64;
            if size >= options.file_bytes
                && let Some(file) = open.take()
            {
                files.push(finish(table, file).await?);
            }
        }
        if let Some(file) = open.take() {
            files.push(finish(table, file).await?);
        }
        Ok(())
    }
    .await;
    if let Err(e) = result {
        if let Some(file) = open.take() {
            // Nothing of an aborted upload becomes visible.
            let mut upload = file.writer.into_inner();
            if let Err(abort) = upload.abort().await {
                tracing::warn!(file = %table.display(&file.name), error = %abort, "could not abort the upload of an unfinished split file");
            }
        }
        return Err(e);
    }
    let rows = files.iter().map(|f| f.rows).sum();
    debug_assert_eq!(rows, hash.rows);
    Ok(StagedSplit {
        rows,
        bytes: files.iter().map(|f| f.bytes).sum(),
        content_hash: hash.hex(),
        files,
    })
}

async fn finish(table: &TableLocation, mut file: OpenFile) -> Result<StagedFile> {
    file.writer
        .finish()
        .await
        .map_err(|source| parquet_err("finishing", table, &file.name, source))?;
    Ok(StagedFile {
        bytes: file.writer.bytes_written() as u64,
        path: file.name,
        rows: file.rows,
    })
}

fn parquet_err(
    what: &str,
    table: &TableLocation,
    name: &str,
    source: parquet::errors::ParquetError,
) -> ConnectorError {
    ConnectorError::Parquet {
        what: what.into(),
        path: table.display(name),
        source,
    }
}
