//! `ferry validate`: proves that the target holds exactly the transformed source, split by split,
//! and repairs the splits where it does not.
//!
//! ```text
//! source split k ─► transform ─► CopyEncoder ─► canonical tuple ─► XXH3-128 ─► digest[k]
//! target ─► COPY (SELECT …) TO STDOUT binary ─► canonical tuple ─► XXH3-128 ─┐
//!           partition-key columns ─► CQL bytes ─► Murmur3 token ─► split k ──┴► digest[k]
//! ```
//!
//! Both sides are compared after the transform, in the representation `migrate` writes (see
//! [`digest`]); a target row is assigned to its split by its Cassandra token, computed locally
//! (see [`key`]). Splits whose digests differ are read again, both sides, row by row, to list
//! the rows missing from the target, extra in it, or different (with the columns). `--repair`
//! reloads those splits, each in one transaction, then checks them again.
//!
//! The splits are the run's own (`ferry_state.splits`) when the run id has a stored plan, else
//! planned afresh as `migrate` would. When a partition-key column does not reach the target as
//! a plain (possibly renamed) column, or the transform regroups rows across splits, the table is
//! validated as one unit.

pub mod digest;
pub mod filter;
pub mod key;
pub mod target;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;

use arrow::datatypes::{DataType, SchemaRef};
use bytes::Bytes;
use datafusion::dataframe::DataFrame;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Expr, ExprSchemable, LogicalPlan};
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties};
use ferry_connectors::ConnectorError;
use ferry_connectors::cassandra::ring::ring_ranges;
use ferry_connectors::cassandra::{ColumnKind, Split, TokenRange, plan_splits};
use ferry_connectors::yugabyte::encoder::{COPY_HEADER, COPY_TRAILER};
use ferry_connectors::yugabyte::{
    self, CopyEncoder, Placement, TargetKeys, TargetTable, quote_ident,
};
use ferry_sql::CqlType;
use ferry_sql::transform::SOURCE_TABLE;
use futures::{SinkExt, StreamExt};
use scylla::client::session::Session;
use serde::Serialize;

use crate::checkpoint::Checkpoints;
use crate::config::{Config, TableConfig};
use crate::error::{PipelineError, Result};
use crate::plan::{expand_tables, load_source, plan_source};
use crate::report::{Status, UnitSemantics};
use digest::{Digest, RowShape, Tuple, key_values};
use filter::RowFilter;
use key::{KeyColumn, PartitionKey, SplitIndex};
use target::{RowSink, TargetRead, on_rayon};

/// Rows listed per kind of difference and table, unless told otherwise; totals are complete.
pub const EXAMPLES: usize = 100;

/// What to validate and how.
#[derive(Debug, Clone, Default)]
pub struct ValidateOptions {
    /// A predicate over the transform's output, applied to both sides.
    pub filter: Option<String>,
    /// Reload the splits that differ, then check them again.
    pub repair: bool,
    /// Rows listed per kind of difference and table (default [`EXAMPLES`]).
    pub max_examples: Option<usize>,
}

/// The report of `ferry validate`.
#[derive(Debug, Clone, Serialize)]
pub struct ValidateReport {
    /// `validate`.
    pub command: String,
    /// `ok` when every table was checked and found equal (after repair, with `--repair`).
    pub status: Status,
    pub elapsed_s: f64,
    pub tables: Vec<TableValidation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The command line or config was wrong (an unknown table, a bad `--where`): exit code 2.
    #[serde(skip)]
    pub invalid: bool,
}

impl ValidateReport {
    /// Writes the report as JSON (through a temporary file, so a reader never sees half of it).
    pub fn write(&self, path: &std::path::Path) -> Result<()> {
        let write_err = |source| PipelineError::Write {
            path: path.to_path_buf(),
            source,
        };
        let json = serde_json::to_vec_pretty(self).map_err(|e| write_err(e.into()))?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, json).map_err(write_err)?;
        std::fs::rename(&tmp, path).map_err(write_err)
    }
}

/// One table's validation.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TableValidation {
    /// `keyspace.table`.
    pub source: String,
    /// `schema.table`.
    pub target: String,
    /// `stored` (the run's split plan from `ferry_state.splits`) or `planned` (afresh).
    pub split_plan: String,
    /// `split`, or `whole-table` when the table is checked as one unit.
    pub unit_semantics: UnitSemantics,
    /// Why the table is checked as one unit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub whole_table_reason: Option<String>,
    /// Source partition-key columns and the target columns they were found in.
    pub partition_key: BTreeMap<String, String>,
    /// The `--where` predicate, as given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    pub splits_checked: u64,
    pub splits_equal: u64,
    pub splits_different: u64,
    /// Which splits differ (before repair).
    pub different_splits: Vec<usize>,
    /// Rows out of the transform that the target should hold.
    pub rows_source: u64,
    /// Rows the encoder rejects (so `migrate` never wrote them; not a difference).
    pub rows_rejected_source: u64,
    pub rows_target: u64,
    /// Target rows whose token falls in no split (a NULL or impossible key): extra rows.
    pub rows_unassigned: u64,
    pub differences: Differences,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repair: Option<RepairReport>,
    /// Whether the target equals the transformed source (after repair, with `--repair`).
    pub equal: bool,
    pub elapsed_s: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Row-level differences found in the splits that differ.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Differences {
    /// Rows of the source missing from the target.
    pub missing: u64,
    /// Rows in the target that the source does not have.
    pub extra: u64,
    /// Rows with the same key on both sides and other values.
    pub different: u64,
    /// The first rows of each kind, by key.
    pub examples: Examples,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Examples {
    pub missing: Vec<RowExample>,
    pub extra: Vec<RowExample>,
    pub different: Vec<RowExample>,
}

/// One row that differs, by its key (the target's primary key, or every column without one).
#[derive(Debug, Clone, Serialize)]
pub struct RowExample {
    /// Its split; `null` for a target row that belongs to no split.
    pub split: Option<usize>,
    pub key: BTreeMap<String, String>,
    /// For a different row: the columns whose values differ.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<String>,
}

/// What `--repair` did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RepairReport {
    /// Splits reloaded, each in one transaction.
    pub splits_repaired: Vec<usize>,
    pub rows_deleted: u64,
    pub rows_copied: u64,
    /// Those splits checked again afterwards.
    pub splits_equal_after: u64,
    pub splits_different_after: u64,
}

/// Validates every (selected) table of `config`.
pub async fn validate(config: &Config, options: &ValidateOptions) -> ValidateReport {
    let started = Instant::now();
    let mut report = ValidateReport {
        command: "validate".into(),
        status: Status::Failed,
        elapsed_s: 0.0,
        tables: Vec::new(),
        error: None,
        invalid: false,
    };
    let mut config = config.clone();
    let connected = async {
        let placement = Placement::new(&config.target)?;
        let session = ferry_connectors::cassandra::connect(&config.source).await?;
        expand_tables(&mut config, &session).await?;
        Ok::<_, PipelineError>((placement, session))
    }
    .await;
    let (placement, session) = match connected {
        Ok(c) => c,
        Err(e) => {
            // A --tables name that matches no table is bad input, like a bad --where.
            report.invalid = matches!(e, PipelineError::Argument(_));
            report.error = Some(e.to_string());
            report.elapsed_s = started.elapsed().as_secs_f64();
            return report;
        }
    };
    for table in &config.tables {
        let t = validate_table(&config, table, &session, &placement, options).await;
        if let Some(e) = &t.error {
            tracing::error!(table = %t.source, error = %e, "validation failed");
            report.invalid |= e.starts_with("--where");
        }
        report.tables.push(t);
    }
    if report.tables.iter().all(|t| t.equal && t.error.is_none()) {
        report.status = Status::Ok;
    } else if report.error.is_none() {
        report.error = report.tables.iter().find_map(|t| t.error.clone());
    }
    report.elapsed_s = started.elapsed().as_secs_f64();
    report
}

/// Everything one table's passes share.
struct Prepared {
    plan: Arc<dyn ExecutionPlan>,
    task_ctx: Arc<TaskContext>,
    encoder: CopyEncoder,
    target: TargetTable,
    shape: Arc<RowShape>,
    /// How target rows find their split; `None` for a whole-table unit.
    bucketing: Option<Arc<Bucketing>>,
    /// Units: splits, or 1 for a whole-table unit. Bucket `units` holds unassigned rows.
    units: usize,
    /// Output columns identifying a row (the target's primary key, else every column).
    identity: Arc<Vec<usize>>,
    /// Whether `identity` is the target's primary key.
    has_key: bool,
    columns: Vec<String>,
    read: TargetRead,
    filter: Option<RowFilter>,
}

async fn validate_table(
    config: &Config,
    table: &TableConfig,
    session: &Arc<Session>,
    placement: &Arc<Placement>,
    options: &ValidateOptions,
) -> TableValidation {
    let started = Instant::now();
    let (schema, name) = table.target_parts(&config.target.schema);
    let mut report = TableValidation {
        source: table.source.clone(),
        target: format!("{schema}.{name}"),
        filter: options.filter.clone(),
        ..Default::default()
    };
    let result = async {
        let prepared = prepare(config, table, session, placement, options, &mut report).await?;
        check(config, placement, &prepared, options, &mut report).await
    }
    .await;
    if let Err(e) = result {
        report.error = Some(e.to_string());
        report.equal = false;
    }
    report.elapsed_s = started.elapsed().as_secs_f64();
    report
}

/// Plans both sides of `table`: the source through the transform (and `--where`), the target
/// read, and how target rows are assigned to splits.
async fn prepare(
    config: &Config,
    table: &TableConfig,
    session: &Arc<Session>,
    placement: &Arc<Placement>,
    options: &ValidateOptions,
    report: &mut TableValidation,
) -> Result<Prepared> {
    let source = load_source(table, session).await?;
    let (keyspace, source_name) = (source.keyspace.clone(), source.table.clone());
    let client = placement.connect().await?;
    let (schema, name) = table.target_parts(&config.target.schema);
    let target = TargetTable::load(&client, schema, name).await?;
    let keys = TargetKeys::load(&client, schema, name).await?;
    let local_dc = config.source.local_dc.as_deref();
    // The run's stored split plan, when it has one; reading it needs no write.
    let checkpoints = Checkpoints::new(&config.run.id, schema, name);
    let stored = checkpoints.stored_splits(&client).await.unwrap_or(None);
    drop(client);
    let splits: Vec<Split> = match stored {
        Some(ranges) => {
            report.split_plan = "stored".into();
            let ring = ring_ranges(session, &keyspace, &source_name, local_dc)?;
            Split::routed(ranges, &ring)
        }
        None => {
            report.split_plan = "planned".into();
            let count = table.splits.unwrap_or(config.run.splits);
            plan_splits(session, &keyspace, &source_name, count, local_dc).await?
        }
    };
    let ranges: Vec<Vec<TokenRange>> = splits.iter().map(|s| s.ranges.clone()).collect();
    let k = splits.len();
    let planned = plan_source(config, table, session, source.clone(), splits).await?;
    let output: SchemaRef = planned.output_schema();
    let columns: Vec<String> = output.fields().iter().map(|f| f.name().clone()).collect();
    let filter = match &options.filter {
        Some(sql) => {
            Some(RowFilter::parse(sql, &columns, &target).map_err(PipelineError::Argument)?)
        }
        None => None,
    };
    let frame = match &filter {
        Some(f) => apply_filter(planned.frame, f)?,
        None => planned.frame,
    };
    let encoder = CopyEncoder::try_new(&output, &target)?;
    let logical = frame.logical_plan().clone();
    let optimized = frame.clone().into_optimized_plan().ok();
    let mut plan = frame.create_physical_plan().await?;
    let aligned = plan.output_partitioning().partition_count() == k;

    // Each partition-key column, found among the output columns.
    let mut pk: Vec<_> = source
        .columns
        .iter()
        .filter(|c| c.kind == ColumnKind::PartitionKey)
        .collect();
    pk.sort_by_key(|c| c.position);
    let mut key_columns = Vec::new();
    let mut reason = (!aligned).then(|| "the transform regroups rows across splits".to_string());
    for c in &pk {
        let found = (0..columns.len()).find(|&i| {
            source_column(&logical, i).as_deref() == Some(c.name.as_str())
                || optimized
                    .as_ref()
                    .and_then(|o| source_column(o, i))
                    .as_deref()
                    == Some(c.name.as_str())
        });
        let Some(i) = found else {
            reason.get_or_insert_with(|| {
                format!(
                    "partition-key column {} does not reach the target as a plain column",
                    c.name
                )
            });
            continue;
        };
        let column = &columns[i];
        report.partition_key.insert(c.name.clone(), column.clone());
        let pg = target.column(column).map_or(0, |t| t.ty.base_oid);
        match &c.cql_type {
            CqlType::Native(n) if key::supported(*n, pg) => key_columns.push(KeyColumn {
                source: c.name.clone(),
                output: i,
                cql: *n,
                pg,
            }),
            other => {
                reason.get_or_insert_with(|| {
                    format!(
                        "partition-key column {} ({other:?}) cannot be serialized back from target \
                         column {column} for its token",
                        c.name
                    )
                });
            }
        }
    }
    let (bucketing, units) = match &reason {
        None => (
            Some(Arc::new(Bucketing {
                key: PartitionKey {
                    columns: key_columns,
                },
                index: SplitIndex::new(&ranges),
                unassigned: k,
            })),
            k,
        ),
        Some(why) => {
            tracing::warn!(table = %table.source, reason = %why, "validating the table as one unit");
            report.unit_semantics = UnitSemantics::WholeTable;
            report.whole_table_reason = Some(why.clone());
            if plan.output_partitioning().partition_count() != 1 {
                plan = Arc::new(CoalescePartitionsExec::new(plan));
            }
            (None, 1)
        }
    };
    let types: Vec<_> = columns
        .iter()
        .map(|c| {
            target
                .column(c)
                .map(|t| &t.ty)
                .expect("the encoder matched every output column to a target column")
        })
        .collect();
    let shape = Arc::new(RowShape::new(&types));
    let pk_outputs: Option<Vec<usize>> = (!keys.primary_key.is_empty())
        .then(|| {
            keys.primary_key
                .iter()
                .map(|k| columns.iter().position(|c| c == k))
                .collect()
        })
        .flatten();
    let has_key = pk_outputs.is_some();
    let identity = Arc::new(pk_outputs.unwrap_or_else(|| (0..columns.len()).collect()));
    let read = TargetRead::new(
        &target,
        &columns,
        filter.as_ref().map(|f| f.target_sql.clone()),
    );
    Ok(Prepared {
        plan,
        task_ctx: planned.task_ctx,
        encoder,
        target,
        shape,
        bucketing,
        units,
        identity,
        has_key,
        columns,
        read,
        filter,
    })
}

/// The transform's output filtered by `--where`, through DataFusion; it must be boolean.
fn apply_filter(frame: DataFrame, filter: &RowFilter) -> Result<DataFrame> {
    let (state, plan) = frame.into_parts();
    let expr = state
        .create_logical_expr(&filter.sql, plan.schema())
        .map_err(|e| PipelineError::Argument(format!("--where: {e}")))?;
    let ty = expr
        .get_type(plan.schema().as_ref())
        .map_err(|e| PipelineError::Argument(format!("--where: {e}")))?;
    if ty != DataType::Boolean {
        return Err(PipelineError::Argument(format!(
            "--where must be a boolean expression; {} is {ty}",
            filter.sql
        )));
    }
    Ok(DataFrame::new(state, plan).filter(expr)?)
}

/// The source column output column `index` of `plan` is, when it is one unchanged (renamed or
/// not) through projections, filters and sorts.
fn source_column(plan: &LogicalPlan, index: usize) -> Option<String> {
    match plan {
        LogicalPlan::Projection(p) => {
            let mut e = p.expr.get(index)?;
            while let Expr::Alias(a) = e {
                e = a.expr.as_ref();
            }
            let Expr::Column(c) = e else {
                return None;
            };
            let i = p.input.schema().index_of_column(c).ok()?;
            source_column(&p.input, i)
        }
        LogicalPlan::Filter(f) => source_column(&f.input, index),
        LogicalPlan::Sort(s) => source_column(&s.input, index),
        LogicalPlan::SubqueryAlias(s) => source_column(&s.input, index),
        LogicalPlan::TableScan(scan) if scan.table_name.table() == SOURCE_TABLE => {
            Some(scan.projected_schema.field(index).name().clone())
        }
        _ => None,
    }
}

/// How a target row finds its split.
#[derive(Debug)]
struct Bucketing {
    key: PartitionKey,
    index: SplitIndex,
    /// The bucket of rows in no split (= the number of splits).
    unassigned: usize,
}

impl Bucketing {
    fn bucket(&self, row: &[u8], tuple: &Tuple, scratch: &mut (Vec<u8>, Vec<u8>)) -> usize {
        let values: Vec<Option<&[u8]>> = self
            .key
            .columns
            .iter()
            .map(|c| tuple.field(row, c.output))
            .collect();
        self.key
            .token(&values, scratch)
            .and_then(|t| self.index.split_of(t))
            .unwrap_or(self.unassigned)
    }
}

fn bucket_of(
    bucketing: &Option<Arc<Bucketing>>,
    row: &[u8],
    tuple: &Tuple,
    scratch: &mut (Vec<u8>, Vec<u8>),
) -> usize {
    bucketing
        .as_ref()
        .map_or(0, |b| b.bucket(row, tuple, scratch))
}

/// Digests per bucket (split), of the rows one reader sees.
struct Digests {
    shape: Arc<RowShape>,
    bucketing: Option<Arc<Bucketing>>,
    /// A source reader's rows are all of one split.
    fixed: Option<usize>,
    digests: Vec<Digest>,
    scratch: Vec<u8>,
    key_scratch: (Vec<u8>, Vec<u8>),
}

impl RowSink for Digests {
    fn row(&mut self, row: &[u8], tuple: &Tuple) {
        let bucket = match self.fixed {
            Some(k) => k,
            None => bucket_of(&self.bucketing, row, tuple, &mut self.key_scratch),
        };
        let hash = self.shape.row_hash(row, tuple, &mut self.scratch);
        self.digests[bucket].add(hash);
    }
}

/// One row kept for the drill-down.
#[derive(Debug, Clone)]
struct RowEntry {
    bucket: usize,
    /// Rows with this key (more than 1 only when the key is not unique).
    count: u32,
    hash: u128,
    columns: Vec<u64>,
    /// The key's values as a binary COPY tuple, as the target sent them (target side only).
    raw_key: Vec<u8>,
}

/// The rows of some buckets, by key.
struct RowMap {
    shape: Arc<RowShape>,
    bucketing: Option<Arc<Bucketing>>,
    fixed: Option<usize>,
    keep: Arc<BTreeSet<usize>>,
    identity: Arc<Vec<usize>>,
    raw: bool,
    rows: HashMap<Vec<u8>, RowEntry>,
    scratch: Vec<u8>,
    key_scratch: (Vec<u8>, Vec<u8>),
}

impl RowSink for RowMap {
    fn row(&mut self, row: &[u8], tuple: &Tuple) {
        let bucket = match self.fixed {
            Some(k) => k,
            None => bucket_of(&self.bucketing, row, tuple, &mut self.key_scratch),
        };
        if !self.keep.contains(&bucket) {
            return;
        }
        let key = self.shape.key(row, tuple, &self.identity);
        if let Some(e) = self.rows.get_mut(&key) {
            e.count += 1;
            return;
        }
        let raw_key = if self.raw {
            let mut t = (self.identity.len() as i16).to_be_bytes().to_vec();
            for &i in self.identity.iter() {
                match tuple.field(row, i) {
                    None => t.extend_from_slice(&(-1i32).to_be_bytes()),
                    Some(v) => {
                        t.extend_from_slice(&(v.len() as i32).to_be_bytes());
                        t.extend_from_slice(v);
                    }
                }
            }
            t
        } else {
            Vec::new()
        };
        let entry = RowEntry {
            bucket,
            count: 1,
            hash: self.shape.row_hash(row, tuple, &mut self.scratch),
            columns: self.shape.column_hashes(row, tuple, &mut self.scratch),
            raw_key,
        };
        self.rows.insert(key, entry);
    }
}

impl RowMap {
    fn merge(&mut self, other: RowMap) {
        for (k, e) in other.rows {
            match self.rows.get_mut(&k) {
                Some(mine) => mine.count += e.count,
                None => {
                    self.rows.insert(k, e);
                }
            }
        }
    }
}

/// Reads source partitions `parts` (at most `parallel` at once), each into a sink made by
/// `make(k)`; returns each partition's sink and the rows the encoder rejected.
async fn read_source<S: RowSink>(
    p: &Prepared,
    parts: Vec<usize>,
    parallel: usize,
    make: impl Fn(usize) -> S,
) -> Result<Vec<(usize, S, u64)>> {
    let tasks = parts.into_iter().map(|k| {
        let plan = Arc::clone(&p.plan);
        let task_ctx = Arc::clone(&p.task_ctx);
        let encoder = p.encoder.clone();
        let mut sink = make(k);
        tokio::spawn(async move {
            let mut batches = plan.execute(k, task_ctx)?;
            let mut rejected = 0u64;
            while let Some(batch) = batches.next().await {
                let batch = batch?;
                let encoder = encoder.clone();
                let (back, fed, rejects) = on_rayon(move || {
                    let encoded = encoder.encode(&batch);
                    let mut fed = Ok(());
                    for chunk in &encoded.chunks {
                        fed = fed.and_then(|_| target::feed(&mut sink, chunk));
                    }
                    (sink, fed, encoded.rejects.len() as u64)
                })
                .await;
                fed.map_err(|e| PipelineError::Worker(format!("encoder output: {e}")))?;
                sink = back;
                rejected += rejects;
            }
            Ok::<_, PipelineError>((k, sink, rejected))
        })
    });
    let mut out = Vec::new();
    let mut running = futures::stream::iter(tasks).buffer_unordered(parallel.max(1));
    while let Some(done) = running.next().await {
        out.push(done.map_err(|e| PipelineError::Worker(e.to_string()))??);
    }
    Ok(out)
}

/// Digests of source partitions `parts` and of the whole target, per bucket, read at once.
async fn digests(
    config: &Config,
    placement: &Arc<Placement>,
    p: &Prepared,
    parts: Vec<usize>,
) -> Result<(Vec<Digest>, Vec<Digest>, u64)> {
    let buckets = p.units + 1;
    let parallel = config.run.connections;
    let source = read_source(p, parts, parallel, |k| Digests {
        shape: Arc::clone(&p.shape),
        bucketing: None,
        fixed: Some(k),
        digests: vec![Digest::default(); buckets],
        scratch: Vec::new(),
        key_scratch: Default::default(),
    });
    let target = p.read.read(placement, &p.target, parallel, || Digests {
        shape: Arc::clone(&p.shape),
        bucketing: p.bucketing.clone(),
        fixed: None,
        digests: vec![Digest::default(); buckets],
        scratch: Vec::new(),
        key_scratch: Default::default(),
    });
    let (source, target) = tokio::join!(source, target);
    let (source, target) = (source?, target?);
    let mut s = vec![Digest::default(); buckets];
    let mut rejected = 0;
    for (_, d, r) in &source {
        rejected += r;
        for (a, b) in s.iter_mut().zip(&d.digests) {
            a.merge(b);
        }
    }
    let mut t = vec![Digest::default(); buckets];
    for d in &target {
        for (a, b) in t.iter_mut().zip(&d.digests) {
            a.merge(b);
        }
    }
    Ok((s, t, rejected))
}

/// The buckets whose digests differ.
fn differing(s: &[Digest], t: &[Digest]) -> Vec<usize> {
    (0..s.len()).filter(|&k| s[k] != t[k]).collect()
}

async fn check(
    config: &Config,
    placement: &Arc<Placement>,
    p: &Prepared,
    options: &ValidateOptions,
    report: &mut TableValidation,
) -> Result<()> {
    let started = Instant::now();
    let (s, t, rejected) = digests(config, placement, p, (0..p.units).collect()).await?;
    report.rows_source = s.iter().map(|d| d.rows).sum();
    report.rows_rejected_source = rejected;
    report.rows_target = t.iter().map(|d| d.rows).sum();
    report.rows_unassigned = t[p.units].rows;
    let different = differing(&s, &t);
    report.splits_checked = p.units as u64;
    report.different_splits = different.iter().copied().filter(|&k| k < p.units).collect();
    report.splits_different = report.different_splits.len() as u64;
    report.splits_equal = report.splits_checked - report.splits_different;
    tracing::info!(
        table = %report.source,
        splits = p.units,
        different = different.len(),
        rows_source = report.rows_source,
        rows_target = report.rows_target,
        elapsed_s = started.elapsed().as_secs_f64(),
        "digests compared"
    );
    report.equal = different.is_empty();
    if different.is_empty() {
        return Ok(());
    }
    let target_rows = drill_down(config, placement, p, &different, options, report).await?;
    if options.repair {
        repair(config, placement, p, &different, &target_rows, report).await?;
    }
    Ok(())
}

/// Lists the rows that differ in buckets `buckets`; returns the target's rows of those buckets
/// (for the repair).
async fn drill_down(
    config: &Config,
    placement: &Arc<Placement>,
    p: &Prepared,
    buckets: &[usize],
    options: &ValidateOptions,
    report: &mut TableValidation,
) -> Result<RowMap> {
    let keep = Arc::new(buckets.iter().copied().collect::<BTreeSet<_>>());
    let map = |fixed: Option<usize>, raw: bool| RowMap {
        shape: Arc::clone(&p.shape),
        bucketing: p.bucketing.clone(),
        fixed,
        keep: Arc::clone(&keep),
        identity: Arc::clone(&p.identity),
        raw,
        rows: HashMap::new(),
        scratch: Vec::new(),
        key_scratch: Default::default(),
    };
    let parts: Vec<usize> = buckets.iter().copied().filter(|&k| k < p.units).collect();
    let parallel = config.run.connections;
    let source = read_source(p, parts, parallel, |k| map(Some(k), false));
    let target = p
        .read
        .read(placement, &p.target, parallel, || map(None, true));
    let (source, target) = tokio::join!(source, target);
    let mut src = map(None, false);
    for (_, m, _) in source? {
        src.merge(m);
    }
    let mut tgt = map(None, true);
    for m in target? {
        tgt.merge(m);
    }
    let max = options.max_examples.unwrap_or(EXAMPLES);
    let d = &mut report.differences;
    let split = |bucket: usize| (bucket < p.units).then_some(bucket);
    let example = |key: &[u8], bucket: usize, columns: Vec<String>| RowExample {
        split: split(bucket),
        key: p
            .identity
            .iter()
            .zip(key_values(key))
            .map(|(&i, v)| {
                let pg = p.target.column(&p.columns[i]).map_or(0, |c| c.ty.base_oid);
                (p.columns[i].clone(), key::display(pg, v))
            })
            .collect(),
        columns,
    };
    // Sorted by key, so the examples are the same from one run to the next.
    let mut keys: Vec<&Vec<u8>> = src.rows.keys().chain(tgt.rows.keys()).collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        match (src.rows.get(key), tgt.rows.get(key)) {
            (Some(s), None) => {
                d.missing += u64::from(s.count);
                if d.examples.missing.len() < max {
                    d.examples.missing.push(example(key, s.bucket, Vec::new()));
                }
            }
            (None, Some(t)) => {
                d.extra += u64::from(t.count);
                if d.examples.extra.len() < max {
                    d.examples.extra.push(example(key, t.bucket, Vec::new()));
                }
            }
            (Some(s), Some(t)) => {
                if s.count > t.count {
                    d.missing += u64::from(s.count - t.count);
                } else if t.count > s.count {
                    d.extra += u64::from(t.count - s.count);
                }
                if s.hash != t.hash {
                    d.different += 1;
                    if d.examples.different.len() < max {
                        let columns = (0..p.columns.len())
                            .filter(|&i| s.columns.get(i) != t.columns.get(i))
                            .map(|i| p.columns[i].clone())
                            .collect();
                        d.examples.different.push(example(key, t.bucket, columns));
                    }
                }
            }
            (None, None) => {}
        }
    }
    tracing::info!(
        table = %report.source,
        missing = d.missing,
        extra = d.extra,
        different = d.different,
        "rows that differ"
    );
    Ok(tgt)
}

/// Reloads buckets `buckets`, each in one transaction: deletes the target rows found in it (by
/// primary key; a whole-table unit deletes the whole table, within `--where`), copies the
/// source rows of the split again, commits. Then checks those buckets again.
async fn repair(
    config: &Config,
    placement: &Arc<Placement>,
    p: &Prepared,
    buckets: &[usize],
    target_rows: &RowMap,
    report: &mut TableValidation,
) -> Result<()> {
    if p.bucketing.is_some() && !p.has_key {
        return Err(PipelineError::Argument(format!(
            "--repair needs a primary key on {} whose columns are all output columns: rows are \
             deleted by key",
            p.target.qualified()
        )));
    }
    let mut repair = RepairReport::default();
    let mut by_bucket: BTreeMap<usize, Vec<&[u8]>> = BTreeMap::new();
    for e in target_rows.rows.values() {
        by_bucket
            .entry(e.bucket)
            .or_default()
            .push(e.raw_key.as_slice());
    }
    let mut client = placement.connect().await?;
    let pg = |what: String| move |source| ConnectorError::Postgres { what, source };
    let key_columns: Vec<String> = p
        .identity
        .iter()
        .map(|&i| quote_ident(&p.columns[i]))
        .collect();
    for &bucket in buckets {
        let what = |s: &str| format!("{s} (repair of split {bucket} of {})", p.target.qualified());
        let tx = client.transaction().await.map_err(pg(what("BEGIN")))?;
        let deleted = if p.bucketing.is_none() {
            let filter = p
                .filter
                .as_ref()
                .map_or(String::new(), |f| format!(" WHERE {}", f.target_sql));
            tx.execute(
                &format!("DELETE FROM {}{filter}", p.target.qualified()),
                &[],
            )
            .await
            .map_err(pg(what("DELETE")))?
        } else {
            let keys = by_bucket.get(&bucket).map_or(&[][..], Vec::as_slice);
            if keys.is_empty() {
                0
            } else {
                tx.batch_execute(&format!(
                    "CREATE TEMP TABLE ferry_validate_keys ON COMMIT DROP AS SELECT {} FROM {} \
                     WITH NO DATA",
                    key_columns.join(", "),
                    p.target.qualified()
                ))
                .await
                .map_err(pg(what("CREATE TEMP TABLE")))?;
                let sink = tx
                    .copy_in::<_, Bytes>("COPY ferry_validate_keys FROM STDIN (FORMAT binary)")
                    .await
                    .map_err(pg(what("COPY of the keys")))?;
                let mut sink = std::pin::pin!(sink);
                let mut data = COPY_HEADER.to_vec();
                for k in keys {
                    data.extend_from_slice(k);
                }
                data.extend_from_slice(COPY_TRAILER);
                sink.send(Bytes::from(data))
                    .await
                    .map_err(pg(what("COPY of the keys")))?;
                sink.as_mut()
                    .finish()
                    .await
                    .map_err(pg(what("COPY of the keys")))?;
                let on: Vec<String> = key_columns
                    .iter()
                    .map(|c| format!("t.{c} = k.{c}"))
                    .collect();
                tx.execute(
                    &format!(
                        "DELETE FROM {} t USING ferry_validate_keys k WHERE {}",
                        p.target.qualified(),
                        on.join(" AND ")
                    ),
                    &[],
                )
                .await
                .map_err(pg(what("DELETE")))?
            }
        };
        let mut copied = 0;
        if bucket < p.units {
            let batches = p.plan.execute(bucket, Arc::clone(&p.task_ctx))?;
            let outcome = yugabyte::write_unit(&tx, &p.encoder, batches).await?;
            copied = outcome.rows_written;
        }
        tx.commit().await.map_err(pg(what("COMMIT")))?;
        tracing::info!(table = %report.source, split = bucket, deleted, copied, "split repaired");
        repair.rows_deleted += deleted;
        repair.rows_copied += copied;
        if bucket < p.units {
            repair.splits_repaired.push(bucket);
        }
    }
    drop(client);
    let parts: Vec<usize> = buckets.iter().copied().filter(|&k| k < p.units).collect();
    let (s, t, _) = digests(config, placement, p, parts).await?;
    let still: Vec<usize> = differing(&s, &t)
        .into_iter()
        .filter(|k| buckets.contains(k))
        .collect();
    repair.splits_different_after = still.iter().filter(|&&k| k < p.units).count() as u64;
    repair.splits_equal_after = repair.splits_repaired.len() as u64 - repair.splits_different_after;
    report.equal = still.is_empty();
    report.repair = Some(repair);
    Ok(())
}

/// The tokens of the target rows of `table`, computed as `validate` assigns rows to splits, for
/// tests against Cassandra's `token()`. `None` for a row whose key cannot be serialized.
pub async fn target_tokens(config: &Config, table: &TableConfig) -> Result<Vec<Option<i64>>> {
    let placement = Placement::new(&config.target)?;
    let session = ferry_connectors::cassandra::connect(&config.source).await?;
    let mut report = TableValidation::default();
    let p = prepare(
        config,
        table,
        &session,
        &placement,
        &ValidateOptions::default(),
        &mut report,
    )
    .await?;
    let Some(bucketing) = p.bucketing.clone() else {
        return Err(PipelineError::Argument(format!(
            "{} is validated as one unit: {}",
            table.source,
            report.whole_table_reason.unwrap_or_default()
        )));
    };
    struct Tokens(Arc<Bucketing>, Vec<Option<i64>>);
    impl RowSink for Tokens {
        fn row(&mut self, row: &[u8], tuple: &Tuple) {
            let values: Vec<Option<&[u8]>> = self
                .0
                .key
                .columns
                .iter()
                .map(|c| tuple.field(row, c.output))
                .collect();
            let token = self.0.key.token(&values, &mut Default::default());
            self.1.push(token);
        }
    }
    let sinks = p
        .read
        .read(&placement, &p.target, 1, || {
            Tokens(Arc::clone(&bucketing), Vec::new())
        })
        .await?;
    Ok(sinks.into_iter().flat_map(|s| s.1).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::{Field, Schema};
    use datafusion::datasource::MemTable;

    async fn origins(sql: &str) -> Vec<Option<String>> {
        let ctx = crate::plan::session_context(2);
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("kind", DataType::Utf8, true),
        ]));
        let table = MemTable::try_new(schema, vec![vec![], vec![]]).expect("a table");
        ctx.register_table(SOURCE_TABLE, Arc::new(table))
            .expect("register");
        let frame = ctx.sql(sql).await.expect("plan");
        let plan = frame.logical_plan().clone();
        (0..plan.schema().fields().len())
            .map(|i| source_column(&plan, i))
            .collect()
    }

    #[tokio::test]
    async fn renamed_columns_are_traced_to_the_source() {
        assert_eq!(
            origins("SELECT kind AS k, id AS account, upper(kind) AS u FROM source WHERE id > 3")
                .await,
            vec![Some("kind".into()), Some("id".into()), None]
        );
        assert_eq!(
            origins("SELECT * FROM source").await,
            vec![Some("id".into()), Some("kind".into())]
        );
        assert_eq!(
            origins("SELECT id, count(*) AS n FROM source GROUP BY id").await,
            vec![None, None]
        );
    }
}
