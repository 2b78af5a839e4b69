//! [`StagedTable`] (a DataFusion `TableProvider`) and [`StagedScanExec`], whose partition k reads
//! staged split k's files, in order.
//!
//! Opening a table reads its manifest and the footer of every file it lists, and checks each
//! file against it (there, same size, same row count, same schema) before any row is read. As a
//! partition ends, its row count (and, when every column was read, its content hash) is checked
//! against the manifest: a unit loaded from a file changed after the checks fails before its
//! transaction commits.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};
use async_trait::async_trait;
use bytes::Bytes;
use datafusion::catalog::Session as DfSession;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::Expr;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    ChildrenPropertiesMode, DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning,
    PlanProperties, ReplaceChildrenOptions, SendableRecordBatchStream,
};
use futures::FutureExt;
use futures::future::BoxFuture;
use futures::{StreamExt, TryStreamExt, stream};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use parquet::arrow::async_reader::{
    AsyncFileReader, ParquetRecordBatchStream, ParquetRecordBatchStreamBuilder,
};
use parquet::errors::ParquetError;
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};

use super::hash::ContentHash;
use super::manifest::{MANIFEST_FILE, Manifest};
use super::store::TableLocation;
use super::types::{from_parquet, parquet_schema};
use crate::cassandra::ScanCounters;
use crate::error::{ConnectorError, Result};

/// Files whose footers are read at once when a table is opened.
const FOOTERS_AT_ONCE: usize = 16;
/// Rows per batch read.
const BATCH_ROWS: usize = 8192;

/// One staged file, checked against the manifest, footer read.
#[derive(Clone)]
struct StagedFileReader {
    name: String,
    size: u64,
    metadata: ArrowReaderMetadata,
}

/// One split: its files, its rows and hash as the manifest records them.
#[derive(Clone)]
struct StagedSplitReader {
    files: Vec<StagedFileReader>,
    rows: u64,
    content_hash: String,
}

/// A staged table as a DataFusion table: partition k is staged split k.
pub struct StagedTable {
    location: TableLocation,
    manifest: Arc<Manifest>,
    /// The rows' schema (the manifest's).
    schema: SchemaRef,
    splits: Arc<Vec<StagedSplitReader>>,
    counters: Arc<ScanCounters>,
}

impl fmt::Debug for StagedTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StagedTable")
            .field("location", &self.location.url())
            .field("splits", &self.splits.len())
            .finish()
    }
}

impl StagedTable {
    /// Reads the manifest of `location` and the footer of every file it lists, and checks each
    /// file against it. Any difference is an error naming the file; no row is read here.
    pub async fn open(location: TableLocation) -> Result<Self> {
        let manifest = location.manifest().await?;
        let manifest_path = location.display(MANIFEST_FILE);
        if !manifest.complete {
            let done = manifest.splits.iter().filter(|s| s.done).count();
            return Err(ConnectorError::Staged {
                path: manifest_path,
                message: format!(
                    "the dump is not finished: {done} of {} splits are done; run the same `ferry \
                     dump` again to finish it",
                    manifest.splits.len()
                ),
            });
        }
        let schema = manifest.arrow_schema.decode(&manifest_path)?;
        let file_schema = parquet_schema(&schema);
        let wanted: Vec<(usize, String, u64, u64)> = manifest
            .splits
            .iter()
            .flat_map(|s| {
                s.files
                    .iter()
                    .map(move |f| (s.index, f.path.clone(), f.bytes, f.rows))
            })
            .collect();
        let checked: Vec<(usize, StagedFileReader)> = stream::iter(wanted)
            .map(|(split, name, bytes, rows)| {
                let (location, file_schema) = (&location, &file_schema);
                async move {
                    check_file(location, &name, bytes, rows, file_schema)
                        .await
                        .map(|file| (split, file))
                }
            })
            .buffered(FOOTERS_AT_ONCE)
            .try_collect()
            .await?;
        let mut splits: Vec<StagedSplitReader> = manifest
            .splits
            .iter()
            .map(|s| StagedSplitReader {
                files: Vec::new(),
                rows: s.rows,
                content_hash: s.content_hash.clone().unwrap_or_default(),
            })
            .collect();
        for (split, file) in checked {
            splits[split].files.push(file);
        }
        Ok(Self {
            location,
            manifest: Arc::new(manifest),
            schema,
            splits: Arc::new(splits),
            counters: Arc::default(),
        })
    }

    /// The manifest the table was opened with.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Where the table is.
    pub fn location(&self) -> &TableLocation {
        &self.location
    }

    /// The same table with only the splits `picked` (in that order) as its partitions: partition
    /// i reads staged split `picked[i]`. A sample for a dry run; the files were checked on open.
    pub fn sample(&self, picked: &[usize]) -> Self {
        Self {
            location: self.location.clone(),
            manifest: Arc::clone(&self.manifest),
            schema: Arc::clone(&self.schema),
            splits: Arc::new(picked.iter().map(|&k| self.splits[k].clone()).collect()),
            counters: Arc::default(),
        }
    }

    /// The number of splits (partitions).
    pub fn splits(&self) -> usize {
        self.splits.len()
    }

    /// Counters shared by every partition of every scan (`rows`: rows read, `bytes`: Parquet
    /// bytes of the files read).
    pub fn counters(&self) -> Arc<ScanCounters> {
        Arc::clone(&self.counters)
    }

    /// A scan of every split, reading the columns of `projection` (all when `None`).
    pub fn scan_exec(&self, projection: Option<&Vec<usize>>) -> Result<StagedScanExec> {
        let columns: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..self.schema.fields().len()).collect(),
        };
        let schema = Arc::new(
            self.schema
                .project(&columns)
                .map_err(DataFusionError::from)?,
        );
        let whole = columns.len() == self.schema.fields().len()
            && columns.iter().enumerate().all(|(i, c)| i == *c);
        let mut read = columns.clone();
        read.sort_unstable();
        read.dedup();
        let pick = columns
            .iter()
            .map(|c| read.binary_search(c).unwrap_or_default())
            .collect();
        Ok(StagedScanExec::new(ScanRecipe {
            location: self.location.clone(),
            splits: Arc::clone(&self.splits),
            columns,
            read,
            pick,
            schema,
            verify_hash: whole,
            counters: Arc::clone(&self.counters),
        }))
    }
}

/// Checks one listed file: there, of the manifest's size, row count and schema.
async fn check_file(
    location: &TableLocation,
    name: &str,
    bytes: u64,
    rows: u64,
    file_schema: &Schema,
) -> Result<StagedFileReader> {
    let path = location.display(name);
    let bad = |message: String| ConnectorError::Staged {
        path: path.clone(),
        message,
    };
    let size =
        location.size(name).await?.ok_or_else(|| {
            bad("listed in the manifest but missing: the staged data is incomplete (dump it again, \
             or restore the file)"
            .into())
        })?;
    if size != bytes {
        return Err(bad(format!(
            "is {size} bytes, the manifest says {bytes}: the file was changed or replaced after \
             the dump"
        )));
    }
    let mut reader = ObjectFile::new(location, name, size);
    let metadata = ArrowReaderMetadata::load_async(&mut reader, ArrowReaderOptions::new())
        .await
        .map_err(|e| bad(format!("is not a readable Parquet file: {e}")))?;
    let in_file = metadata.metadata().file_metadata().num_rows();
    if u64::try_from(in_file).ok() != Some(rows) {
        return Err(bad(format!(
            "holds {in_file} rows, the manifest says {rows}: the file was changed or replaced \
             after the dump"
        )));
    }
    if let Some(difference) = schema_difference(metadata.schema(), file_schema) {
        return Err(bad(format!(
            "its schema differs from the manifest's: {difference}"
        )));
    }
    Ok(StagedFileReader {
        name: name.to_string(),
        size,
        metadata,
    })
}

/// How the schema of a file differs from the one its manifest implies, by column.
fn schema_difference(file: &Schema, manifest: &Schema) -> Option<String> {
    let names = |s: &Schema| {
        s.fields()
            .iter()
            .map(|f| f.name().clone())
            .collect::<Vec<_>>()
    };
    if names(file) != names(manifest) {
        return Some(format!(
            "the file has columns [{}], the manifest [{}]",
            names(file).join(", "),
            names(manifest).join(", ")
        ));
    }
    for (f, m) in file.fields().iter().zip(manifest.fields()) {
        if f.data_type() != m.data_type() {
            return Some(format!(
                "column {} is {} in the file, {} in the manifest",
                f.name(),
                f.data_type(),
                m.data_type()
            ));
        }
        if f.is_nullable() != m.is_nullable() {
            return Some(format!(
                "column {} is {} in the file, {} in the manifest",
                f.name(),
                nullable(f.is_nullable()),
                nullable(m.is_nullable())
            ));
        }
    }
    None
}

fn nullable(yes: bool) -> &'static str {
    if yes { "nullable" } else { "not nullable" }
}

#[async_trait]
impl TableProvider for StagedTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn DfSession,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(self.scan_exec(projection)?))
    }
}

/// Everything a partition needs to read its split.
#[derive(Clone)]
struct ScanRecipe {
    location: TableLocation,
    splits: Arc<Vec<StagedSplitReader>>,
    /// Indexes into the table's columns, in output order.
    columns: Vec<usize>,
    /// The columns a file is asked for, in file order (Parquet gives them back so), and where
    /// each output column is among them.
    read: Vec<usize>,
    pick: Vec<usize>,
    schema: SchemaRef,
    /// Whether every column is read in order, so the split's content hash can be checked.
    verify_hash: bool,
    counters: Arc<ScanCounters>,
}

/// Reads staged splits; output partition k is split k.
pub struct StagedScanExec {
    recipe: ScanRecipe,
    properties: Arc<PlanProperties>,
}

impl fmt::Debug for StagedScanExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StagedScanExec")
            .field("table", &self.recipe.location.url())
            .field("splits", &self.recipe.splits.len())
            .finish()
    }
}

impl StagedScanExec {
    fn new(recipe: ScanRecipe) -> Self {
        let properties = PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&recipe.schema)),
            Partitioning::UnknownPartitioning(recipe.splits.len().max(1)),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        Self {
            recipe,
            properties: Arc::new(properties),
        }
    }
}

impl DisplayAs for StagedScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "StagedScanExec: table={}, splits={}, columns={}",
            self.recipe.location.url(),
            self.recipe.splits.len(),
            self.recipe.columns.len()
        )
    }
}

impl ExecutionPlan for StagedScanExec {
    fn name(&self) -> &'static str {
        "StagedScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )
    }

    fn execute(
        &self,
        partition: usize,
        _context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        let schema = Arc::clone(&self.recipe.schema);
        let Some(split) = self.recipe.splits.get(partition).cloned() else {
            // A table with no splits still has one (empty) partition.
            return Ok(Box::pin(RecordBatchStreamAdapter::new(
                schema,
                stream::empty(),
            )));
        };
        let reader = SplitReader {
            recipe: self.recipe.clone(),
            index: partition,
            split,
            file: 0,
            batches: None,
            rows: 0,
            hash: ContentHash::default(),
            done: false,
        };
        let batches = stream::try_unfold(reader, |mut reader| async move {
            Ok::<_, DataFusionError>(reader.next_batch().await?.map(|batch| (batch, reader)))
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, batches)))
    }
}

/// A staged file of known size, read through object_store: only the byte ranges the Parquet
/// reader asks for (the footer, then the column chunks of the projected columns).
struct ObjectFile {
    store: Arc<dyn ObjectStore>,
    path: Path,
    size: u64,
}

impl ObjectFile {
    fn new(location: &TableLocation, name: &str, size: u64) -> Self {
        Self {
            store: Arc::clone(location.store()),
            path: location.path(name),
            size,
        }
    }
}

fn parquet_io(e: object_store::Error) -> ParquetError {
    ParquetError::External(Box::new(e))
}

impl AsyncFileReader for ObjectFile {
    fn get_bytes(
        &mut self,
        range: std::ops::Range<u64>,
    ) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        async move {
            self.store
                .get_range(&self.path, range)
                .await
                .map_err(parquet_io)
        }
        .boxed()
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<std::ops::Range<u64>>,
    ) -> BoxFuture<'_, parquet::errors::Result<Vec<Bytes>>> {
        async move {
            self.store
                .get_ranges(&self.path, &ranges)
                .await
                .map_err(parquet_io)
        }
        .boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        async move {
            let size = self.size;
            let metadata = ParquetMetaDataReader::new()
                .with_arrow_reader_options(options)
                .load_and_finish(self, size)
                .await?;
            Ok(Arc::new(metadata))
        }
        .boxed()
    }
}

/// Reads one split file by file, checking its rows against the manifest at the end.
struct SplitReader {
    recipe: ScanRecipe,
    index: usize,
    split: StagedSplitReader,
    /// The next file to open.
    file: usize,
    batches: Option<ParquetRecordBatchStream<ObjectFile>>,
    rows: u64,
    hash: ContentHash,
    done: bool,
}

impl SplitReader {
    async fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        loop {
            if self.done {
                return Ok(None);
            }
            if let Some(batches) = &mut self.batches {
                match batches.next().await {
                    Some(batch) => {
                        let name = &self.split.files[self.file - 1].name;
                        let batch = batch.map_err(|source| ConnectorError::Parquet {
                            what: "reading".into(),
                            path: self.recipe.location.display(name),
                            source,
                        })?;
                        let batch = batch
                            .project(&self.recipe.pick)
                            .and_then(|b| from_parquet(&b, &self.recipe.schema))
                            .map_err(|e| ConnectorError::Staged {
                                path: self.recipe.location.display(name),
                                message: format!("cannot read its rows back: {e}"),
                            })?;
                        self.rows += batch.num_rows() as u64;
                        if self.recipe.verify_hash {
                            self.hash.add(&batch).map_err(|e| ConnectorError::Staged {
                                path: self.recipe.location.display(name),
                                message: format!("cannot hash the rows: {e}"),
                            })?;
                        }
                        self.recipe
                            .counters
                            .rows
                            .fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
                        return Ok(Some(batch));
                    }
                    None => self.batches = None,
                }
            }
            let Some(file) = self.split.files.get(self.file).cloned() else {
                self.done = true;
                self.check()?;
                return Ok(None);
            };
            self.file += 1;
            self.recipe
                .counters
                .bytes
                .fetch_add(file.size, Ordering::Relaxed);
            let reader = ObjectFile::new(&self.recipe.location, &file.name, file.size);
            let builder =
                ParquetRecordBatchStreamBuilder::new_with_metadata(reader, file.metadata.clone());
            let mask =
                ProjectionMask::roots(builder.parquet_schema(), self.recipe.read.iter().copied());
            let stream = builder
                .with_projection(mask)
                .with_batch_size(BATCH_ROWS)
                .build()
                .map_err(|source| ConnectorError::Parquet {
                    what: "opening".into(),
                    path: self.recipe.location.display(&file.name),
                    source,
                })?;
            self.batches = Some(stream);
        }
    }

    /// The split's rows, and its content hash when every column was read, against the
    /// manifest.
    fn check(&self) -> Result<()> {
        let bad = |message: String| ConnectorError::Staged {
            path: self.recipe.location.display(MANIFEST_FILE),
            message,
        };
        if self.rows != self.split.rows {
            return Err(bad(format!(
                "split {} read {} rows from its files, the manifest says {}: the files changed \
                 after the dump",
                self.index, self.rows, self.split.rows
            )));
        }
        if self.recipe.verify_hash && self.hash.hex() != self.split.content_hash {
            return Err(bad(format!(
                "split {}: the rows read hash to {}, the manifest says {}: the files changed \
                 after the dump",
                self.index,
                self.hash.hex(),
                self.split.content_hash
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use arrow::array::{
        ArrayRef, BinaryArray, Date32Array, FixedSizeBinaryArray, FixedSizeListArray, Float32Array,
        Int32Array, IntervalMonthDayNanoArray, StringArray, StructArray, Time64NanosecondArray,
        TimestampMillisecondArray,
    };
    use arrow::datatypes::{DataType, Field, Fields, IntervalMonthDayNano, IntervalUnit, TimeUnit};
    use datafusion::prelude::SessionContext;

    use super::*;
    use crate::cassandra::{ColumnKind, SourceColumn, SourceTable, TokenRange};
    use crate::staging::config::StagingConfig;
    use crate::staging::store::StagingLocation;
    use crate::staging::writer::{WriteOptions, write_split};
    use ferry_sql::types::{CqlType, NativeType};

    fn every_kind_of_column(first: i32, n: usize) -> RecordBatch {
        let ids: Vec<i32> = (first..first + n as i32).collect();
        let uuid_meta =
            HashMap::from([("ARROW:extension:name".to_string(), "arrow.uuid".to_string())]);
        let point = Fields::from(vec![
            Field::new("x", DataType::Float32, true),
            Field::new("label", DataType::Utf8, true),
        ]);
        let columns: Vec<(Field, ArrayRef)> = vec![
            (
                Field::new("id", DataType::Int32, false),
                Arc::new(Int32Array::from(ids.clone())),
            ),
            (
                Field::new("name", DataType::Utf8, true),
                Arc::new(StringArray::from_iter(
                    ids.iter()
                        .map(|i| (i % 3 != 0).then(|| format!("name {i}"))),
                )),
            ),
            (
                Field::new("amount", DataType::Utf8, true)
                    .with_metadata(HashMap::from([("ferry.cql_type".into(), "decimal".into())])),
                Arc::new(StringArray::from_iter_values(
                    ids.iter().map(|i| format!("{i}.000000000000000000001")),
                )),
            ),
            (
                Field::new(
                    "at",
                    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
                    true,
                ),
                Arc::new(
                    TimestampMillisecondArray::from_iter_values(
                        ids.iter().map(|i| i64::from(*i) * 86_400_000),
                    )
                    .with_timezone("UTC"),
                ),
            ),
            (
                Field::new("day", DataType::Date32, true),
                Arc::new(Date32Array::from_iter_values(ids.iter().copied())),
            ),
            (
                Field::new("t", DataType::Time64(TimeUnit::Nanosecond), true),
                Arc::new(Time64NanosecondArray::from_iter_values(
                    ids.iter().map(|i| i64::from(*i) * 1_000_000_007),
                )),
            ),
            (
                Field::new("u", DataType::FixedSizeBinary(16), true).with_metadata(uuid_meta),
                Arc::new(
                    FixedSizeBinaryArray::try_from_iter(ids.iter().map(|i| [(*i % 256) as u8; 16]))
                        .expect("uuids"),
                ),
            ),
            (
                Field::new("d", DataType::Interval(IntervalUnit::MonthDayNano), true),
                Arc::new(IntervalMonthDayNanoArray::from_iter(ids.iter().map(|i| {
                    (i % 2 == 0).then(|| IntervalMonthDayNano::new(*i, -*i, i64::from(*i) * 7))
                }))),
            ),
            (
                Field::new("b", DataType::Binary, true),
                Arc::new(BinaryArray::from_iter(
                    ids.iter()
                        .map(|i| (i % 4 != 1).then(|| i.to_le_bytes().to_vec())),
                )),
            ),
            (
                Field::new(
                    "v",
                    DataType::FixedSizeList(
                        Arc::new(Field::new("item", DataType::Float32, true)),
                        2,
                    ),
                    true,
                ),
                Arc::new(
                    FixedSizeListArray::try_new(
                        Arc::new(Field::new("item", DataType::Float32, true)),
                        2,
                        Arc::new(Float32Array::from_iter_values(
                            ids.iter().flat_map(|i| [*i as f32, 0.5]),
                        )),
                        None,
                    )
                    .expect("vectors"),
                ),
            ),
            (
                Field::new("p", DataType::Struct(point.clone()), true),
                Arc::new(
                    StructArray::try_new(
                        point,
                        vec![
                            Arc::new(Float32Array::from_iter(ids.iter().map(|i| Some(*i as f32)))),
                            Arc::new(StringArray::from_iter(ids.iter().map(|_| None::<&str>))),
                        ],
                        None,
                    )
                    .expect("structs"),
                ),
            ),
        ];
        let (fields, arrays): (Vec<Field>, Vec<ArrayRef>) = columns.into_iter().unzip();
        RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).expect("valid batch")
    }

    fn source() -> SourceTable {
        SourceTable {
            keyspace: "ks".into(),
            table: "t".into(),
            columns: vec![SourceColumn {
                name: "id".into(),
                kind: ColumnKind::PartitionKey,
                position: 0,
                cql_type: CqlType::Native(NativeType::Int),
                descending: false,
            }],
        }
    }

    fn stream_of(batches: Vec<RecordBatch>, schema: &SchemaRef) -> SendableRecordBatchStream {
        Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(schema),
            stream::iter(batches.into_iter().map(Ok)),
        ))
    }

    async fn read_split(table: &StagedTable, k: usize) -> Result<Vec<RecordBatch>> {
        let exec = table.scan_exec(None)?;
        let stream = exec.execute(k, SessionContext::new().task_ctx())?;
        Ok(stream.try_collect().await?)
    }

    /// Two splits (one of two files, one empty) dumped to a local directory and read back.
    async fn staged(name: &str) -> (TableLocation, Vec<RecordBatch>) {
        let dir = std::env::temp_dir().join(format!(
            "ferry-staging-{name}-{}",
            uuid::Uuid::new_v4().simple()
        ));
        let root = StagingLocation::open(
            dir.to_str().expect("utf-8"),
            &StagingConfig::default(),
            std::path::Path::new("/"),
        )
        .expect("local");
        let location = root.table("ks.t");
        let batches = vec![every_kind_of_column(0, 50), every_kind_of_column(50, 30)];
        let schema = batches[0].schema();
        let mut manifest = Manifest::new(
            &source(),
            &schema,
            None,
            false,
            vec![vec![TokenRange::FULL], Vec::new()],
        );
        // One byte per file: every batch goes to a file of its own.
        let options = WriteOptions {
            zstd_level: 1,
            row_group_rows: 16,
            file_bytes: 1,
        };
        let zero = write_split(
            &location,
            0,
            &schema,
            stream_of(batches.clone(), &schema),
            &options,
        )
        .await
        .expect("split 0");
        assert_eq!(zero.files.len(), 2);
        assert_eq!(zero.rows, 80);
        let one = write_split(
            &location,
            1,
            &schema,
            stream_of(Vec::new(), &schema),
            &options,
        )
        .await
        .expect("split 1");
        assert!(one.files.is_empty());
        manifest.split_done(0, zero);
        manifest.split_done(1, one);
        assert!(manifest.complete);
        location.write_manifest(&manifest).await.expect("manifest");
        (location, batches)
    }

    #[tokio::test]
    async fn a_dumped_split_reads_back_exactly_every_type() {
        let (location, batches) = staged("roundtrip").await;
        for file in location.manifest().await.expect("manifest").files() {
            let size = location.size(&file.path).await.expect("head");
            assert_eq!(size, Some(file.bytes), "{}", file.path);
        }
        let table = StagedTable::open(location.clone()).await.expect("opens");
        assert_eq!(table.splits(), 2);
        assert_eq!(table.schema(), batches[0].schema());
        let back = read_split(&table, 0).await.expect("split 0");
        let back = arrow::compute::concat_batches(&table.schema(), &back).expect("concat");
        let want = arrow::compute::concat_batches(&table.schema(), &batches).expect("concat");
        assert_eq!(back, want);
        assert!(read_split(&table, 1).await.expect("split 1").is_empty());
        // A projection reads those columns only, still checked by row count.
        let exec = table.scan_exec(Some(&vec![7, 0])).expect("projected");
        let got: Vec<RecordBatch> = exec
            .execute(0, SessionContext::new().task_ctx())
            .expect("stream")
            .try_collect()
            .await
            .expect("rows");
        assert_eq!(got[0].schema().field(0).name(), "d");
        assert_eq!(
            got[0].column(1),
            &want.column(0).slice(0, got[0].num_rows())
        );
        assert_eq!(got.iter().map(|b| b.num_rows()).sum::<usize>(), 80);
        // No column at all (`count(*)`): the rows are still counted.
        let exec = table.scan_exec(Some(&vec![])).expect("no columns");
        let got: Vec<RecordBatch> = exec
            .execute(0, SessionContext::new().task_ctx())
            .expect("stream")
            .try_collect()
            .await
            .expect("rows");
        assert_eq!(got.iter().map(|b| b.num_rows()).sum::<usize>(), 80);
    }

    #[tokio::test]
    async fn a_missing_or_changed_file_is_named_before_any_row_is_read() {
        let (location, _) = staged("missing").await;
        let manifest = location.manifest().await.expect("manifest");
        let first = manifest.splits[0].files[0].path.clone();
        let second = manifest.splits[0].files[1].path.clone();

        // The hash no longer matches: the split fails as it ends.
        let mut wrong = manifest.clone();
        wrong.splits[0].content_hash = Some("0000000000000000".into());
        location.write_manifest(&wrong).await.expect("manifest");
        let table = StagedTable::open(location.clone()).await.expect("opens");
        let err = read_split(&table, 0).await.expect_err("hash differs");
        assert!(
            err.to_string().contains("the files changed after the dump"),
            "{err}"
        );

        // Another file in the place of one listed: same size, other schema.
        location.write_manifest(&manifest).await.expect("manifest");
        let other = every_kind_of_column(0, 50)
            .project(&[0, 1])
            .expect("project");
        let schema = other.schema();
        let staged = write_split(
            &location,
            9,
            &schema,
            stream_of(vec![other], &schema),
            &WriteOptions::new(&StagingConfig::default()),
        )
        .await
        .expect("other file");
        let mut swapped = manifest.clone();
        swapped.splits[0].files[0] = staged.files[0].clone();
        swapped.splits[0].files[0].path = staged.files[0].path.clone();
        swapped.splits[0].rows = swapped.splits[0].files.iter().map(|f| f.rows).sum();
        swapped.splits[0].bytes = swapped.splits[0].files.iter().map(|f| f.bytes).sum();
        location.write_manifest(&swapped).await.expect("manifest");
        let err = StagedTable::open(location.clone())
            .await
            .expect_err("schema");
        let msg = err.to_string();
        assert!(
            msg.contains("split-00009-000.parquet") && msg.contains("schema differs"),
            "{msg}"
        );

        // A listed file is gone.
        location.write_manifest(&manifest).await.expect("manifest");
        location.delete(&second).await.expect("delete");
        let err = StagedTable::open(location.clone())
            .await
            .expect_err("missing");
        let msg = err.to_string();
        assert!(
            msg.contains(&second) && msg.contains("listed in the manifest but missing"),
            "{msg}"
        );
        assert!(!msg.contains(&first), "{msg}");

        // No manifest at all.
        location.delete(MANIFEST_FILE).await.expect("delete");
        let err = StagedTable::open(location).await.expect_err("no manifest");
        assert!(
            err.to_string().contains("_manifest.json: no such file"),
            "{err}"
        );
    }

    #[test]
    fn schema_differences_name_the_column() {
        let manifest = Schema::new(vec![
            Field::new("a", DataType::Int32, false),
            Field::new("b", DataType::Utf8, true),
        ]);
        assert_eq!(schema_difference(&manifest, &manifest), None);
        let retyped = Schema::new(vec![
            Field::new("a", DataType::Int64, false),
            Field::new("b", DataType::Utf8, true),
        ]);
        assert_eq!(
            schema_difference(&retyped, &manifest).as_deref(),
            Some("column a is Int64 in the file, Int32 in the manifest")
        );
        let renamed = Schema::new(vec![Field::new("a", DataType::Int32, false)]);
        assert!(
            schema_difference(&renamed, &manifest)
                .is_some_and(|d| d.contains("[a]") && d.contains("[a, b]"))
        );
    }
}
