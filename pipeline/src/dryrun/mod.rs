//! `ferry dry-run`: the migration's plan with a profiling sink instead of COPY. Every table (or a
//! sample of its splits) is read through its transform and nothing is written to the target.
//!
//! Per table the dry run measures rows, Arrow bytes and COPY bytes; profiles every output column
//! ([`profile`]); predicts the rows the target would reject ([`predict`]) with the same encoder
//! `migrate` uses; shows the split sizes and the largest partitions (skew); estimates how long the
//! real run takes from the measured read and encode rates and a load rate (from the config, or a
//! short probe: a COPY of a sample into a temporary table, rolled back); and keeps a preview of
//! the first rows. The result is a [`DryRunReport`]: JSON, a terminal summary ([`text`]) and a
//! self-contained HTML page ([`html`]).
//!
//! [`profile_planned`] takes any [`PlannedSource`] (a transform planned over partitions), so a
//! source other than the Cassandra scan can be dry-run the same way.

pub mod html;
pub mod predict;
pub mod profile;
pub mod text;

use std::collections::BTreeMap;
use std::path::Path;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use arrow::array::{BooleanArray, RecordBatch, UInt32Array};
use arrow::compute::filter_record_batch;
use arrow::datatypes::SchemaRef;
use bytes::Bytes;
use datafusion::dataframe::DataFrame;
use datafusion::execution::TaskContext;
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties};
use ferry_connectors::ConnectorError;
use ferry_connectors::cassandra::{self, ScanCounters, plan_splits};
use ferry_connectors::staging::{StagedTable, StagingLocation};
use ferry_connectors::yugabyte::encoder::{COPY_HEADER, COPY_TRAILER};
use ferry_connectors::yugabyte::{
    self, CopyEncoder, Reject, ServerInfo, TargetTable, Upsert, YugabyteConfig,
};
use ferry_sql::ddl::{Dialect, PrimaryKey};
use futures::{SinkExt, StreamExt};
use scylla::client::session::Session;
use serde::{Deserialize, Serialize};
use tokio_postgres::Client;

use crate::config::{Config, TableConfig, WriteMode};
use crate::error::{PipelineError, Result};
use crate::plan::{expand_tables, load_source, plan_source, plan_staged_source};
use crate::report::{REJECT_SAMPLES, Status, UnitSemantics};
use crate::schema::{primary_key, staged_primary_key};
use crate::stage::{expand_staged_tables, open_staged_tables};
pub use predict::{CheckedAgainst, TargetCheck};
pub use profile::{ColumnProfile, PartitionSize};
use profile::{ColumnProfiler, PartitionRuns, format_rows};

/// The `[dry_run]` section of `ferry.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DryRunConfig {
    /// The rows per second the target loads, for the ETA. Default: measured by the probe.
    #[serde(default)]
    pub load_rows_per_s: Option<f64>,
    /// Rows the probe COPYs into a temporary copy of each target table (in a transaction it
    /// rolls back) to measure the load rate; 0 turns the probe off. Default 20000.
    #[serde(default = "default_probe_rows")]
    pub probe_rows: usize,
    /// Transformed rows shown per table. Default 10.
    #[serde(default = "default_preview_rows")]
    pub preview_rows: usize,
}

impl Default for DryRunConfig {
    fn default() -> Self {
        Self {
            load_rows_per_s: None,
            probe_rows: default_probe_rows(),
            preview_rows: default_preview_rows(),
        }
    }
}

fn default_probe_rows() -> usize {
    20_000
}

fn default_preview_rows() -> usize {
    10
}

/// How a dry run is done: the config's `[dry_run]` section and the command line.
#[derive(Debug, Clone, Default)]
pub struct DryRunOptions {
    /// Read only this percentage of each table's splits (evenly spread); figures that depend on
    /// size are then scaled up. `None` reads everything.
    pub sample_percent: Option<f64>,
    pub settings: DryRunConfig,
    /// Read the tables staged here (`ferry dump`) instead of Cassandra.
    pub from: Option<StagingLocation>,
}

/// Where a dry run reads its rows.
enum DrySource {
    Cassandra(Arc<Session>),
    /// Every table's staged data, opened and checked before any table is read.
    Staged(BTreeMap<String, Arc<StagedTable>>),
}

/// A whole dry run's report.
#[derive(Debug, Clone, Serialize)]
pub struct DryRunReport {
    /// `dry-run`.
    pub command: String,
    /// `ok` when every table was read and nothing found would stop `migrate` (predicted rejects
    /// within `max_rejects` do not).
    pub status: Status,
    pub elapsed_s: f64,
    pub sample_percent: Option<f64>,
    pub connections: usize,
    pub target: TargetInfo,
    pub tables: Vec<TableDryRun>,
    /// The whole run's estimate: the tables' added up (they run one after another).
    pub eta: Eta,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The target server as the dry run saw it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TargetInfo {
    pub reachable: bool,
    /// `version()`.
    pub server: Option<String>,
    /// Why it could not be reached.
    pub error: Option<String>,
}

/// One table's dry run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TableDryRun {
    /// `keyspace.table` (or the planned source's label).
    pub source: String,
    /// `schema.table`.
    pub target: String,
    /// What rejects were predicted against; none when the table could not be planned.
    pub checked_against: Option<CheckedAgainst>,
    /// The statement `ferry schema` would run, when the prediction used it.
    pub generated_ddl: Option<String>,
    /// `transactional` or `fast`.
    pub mode: String,
    pub unit_semantics: UnitSemantics,
    pub splits_total: usize,
    pub splits_read: usize,
    /// Rows out of the transform, in the splits read.
    pub rows_read: u64,
    /// Rows the Cassandra scan returned, before the transform's filters.
    pub source_rows: u64,
    /// Bytes of the transform's Arrow output.
    pub arrow_bytes: u64,
    /// Bytes of binary COPY data the encoder produced for the rows it accepts.
    pub copy_bytes: u64,
    /// Scaled to every split when a sample was read; equal to the measured figures otherwise.
    pub estimated_rows: u64,
    pub estimated_arrow_bytes: u64,
    pub estimated_copy_bytes: u64,
    pub columns: Vec<ColumnProfile>,
    pub rejects: PredictedRejects,
    pub split_sizes: SplitSizes,
    /// The partitions with the most output rows, largest first (empty when the partition key is
    /// not in the output, or the transform regroups rows).
    pub largest_partitions: Vec<PartitionSize>,
    pub eta: Eta,
    pub preview: Preview,
    /// What would stop `migrate` on this table.
    pub problems: Vec<String>,
    pub elapsed_s: f64,
    /// Why the dry run of this table failed, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The rows the target would reject.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PredictedRejects {
    /// In the splits read.
    pub total: u64,
    /// Scaled to every split.
    pub estimated_total: u64,
    /// By [`Reject::class`], as `migrate`'s report counts them: `encoder:<kind>`, `target:23502`.
    pub by_reason: BTreeMap<String, u64>,
    /// By the column at fault.
    pub by_column: BTreeMap<String, u64>,
    /// The first rejects in split and row order, with the row's values.
    pub samples: Vec<RejectSample>,
    /// What the target checks that the dry run does not predict.
    pub not_predicted: Vec<String>,
}

/// One predicted reject.
#[derive(Debug, Clone, Serialize)]
pub struct RejectSample {
    pub split: usize,
    /// Row number within the split's output, as `migrate` numbers it.
    pub row: usize,
    pub column: String,
    pub class: String,
    pub reason: String,
    /// The row, one text per output column (see [`Preview::columns`]), `null` for NULL.
    pub values: Vec<Option<String>>,
}

/// How big the splits are, to show skew.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SplitSizes {
    /// Every split read, in split order.
    pub splits: Vec<SplitStat>,
    /// Splits by output rows, in equal-width buckets.
    pub histogram: Vec<HistogramBucket>,
    pub min_rows: u64,
    pub median_rows: u64,
    pub p90_rows: u64,
    pub max_rows: u64,
    /// `max_rows / median_rows` (1 is perfectly even).
    pub skew: f64,
}

/// One split's figures.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SplitStat {
    /// The split's index in the table's split list (the work unit `migrate` gives it).
    pub split: usize,
    pub rows: u64,
    pub arrow_bytes: u64,
    pub copy_bytes: u64,
    pub rejects: u64,
    /// Wall time to read, transform and check it.
    pub seconds: f64,
}

/// Splits whose row count is in `[from_rows, to_rows]`.
#[derive(Debug, Clone, Serialize)]
pub struct HistogramBucket {
    pub from_rows: u64,
    pub to_rows: u64,
    pub splits: usize,
}

/// How long the real run should take. The stages overlap (each worker reads the next page while
/// the previous one is encoded and sent), so the run takes about as long as its slowest stage.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Eta {
    /// Rows the estimate is for.
    pub rows: u64,
    /// Reading and transforming, at the run's connection count (measured).
    pub read_s: f64,
    /// COPY encoding on every core (measured).
    pub encode_s: f64,
    /// Loading at the load rate; none when no rate is known.
    pub load_s: Option<f64>,
    /// The slowest stage: the estimate.
    pub total_s: f64,
    /// `read`, `encode` or `load`.
    pub bound_by: String,
    pub read_rows_per_s: f64,
    pub encode_rows_per_s: f64,
    pub load_rows_per_s: Option<f64>,
    /// `config` (`dry_run.load_rows_per_s`), `probe`, or `none`.
    pub load_rate_from: String,
    /// Why the probe measured nothing, when it did not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe_note: Option<String>,
}

/// The first transformed rows.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Preview {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
}

impl DryRunReport {
    /// Writes the report as pretty JSON, atomically (temp file, then rename).
    pub fn write_json(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(|e| PipelineError::Write {
            path: path.to_path_buf(),
            source: e.into(),
        })?;
        write_atomically(path, &json)
    }

    /// Writes the self-contained HTML page.
    pub fn write_html(&self, path: &Path) -> Result<()> {
        write_atomically(path, html::render(self).as_bytes())
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let write_err = |source| PipelineError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, bytes).map_err(write_err)?;
    std::fs::rename(&tmp, path).map_err(write_err)
}

/// Dry-runs every table of `config`. Nothing is written to the target, not even the run state.
pub async fn dry_run(config: &Config, options: &DryRunOptions) -> DryRunReport {
    let started = Instant::now();
    let mut config = config.clone();
    let mut tables = Vec::new();
    let mut target = TargetInfo::default();
    let result = async {
        let source = match &options.from {
            None => {
                let session = cassandra::connect(&config.source).await?;
                expand_tables(&mut config, &session).await?;
                DrySource::Cassandra(session)
            }
            Some(location) => {
                expand_staged_tables(&mut config, location).await?;
                DrySource::Staged(open_staged_tables(&config, location).await?)
            }
        };
        // A target that cannot be reached still leaves the generated DDL to predict against.
        let client = match yugabyte::connect(&config.target).await {
            Ok(client) => Some(client),
            Err(e) => {
                tracing::warn!(error = %e, "the target cannot be reached; predicting against the DDL `ferry schema` would generate");
                target.error = Some(e.to_string());
                None
            }
        };
        let server = match &client {
            Some(c) => Some(ServerInfo::load(c).await?),
            None => None,
        };
        target.reachable = client.is_some();
        target.server = server.as_ref().map(|s| s.version.clone());
        for table in &config.tables {
            tables.push(
                dry_run_table(
                    &config,
                    table,
                    &source,
                    client.as_ref(),
                    server.as_ref(),
                    options,
                )
                .await,
            );
        }
        Ok::<_, PipelineError>(())
    }
    .await;
    let error = result.err().map(|e| e.to_string());
    let ok = error.is_none()
        && !tables.is_empty()
        && tables
            .iter()
            .all(|t| t.error.is_none() && t.problems.is_empty());
    let eta = total_eta(&tables);
    DryRunReport {
        command: "dry-run".into(),
        status: if ok { Status::Ok } else { Status::Failed },
        elapsed_s: started.elapsed().as_secs_f64(),
        sample_percent: options.sample_percent,
        connections: config.run.connections,
        target,
        tables,
        eta,
        error,
    }
}

async fn dry_run_table(
    config: &Config,
    table: &TableConfig,
    source: &DrySource,
    client: Option<&Client>,
    server: Option<&ServerInfo>,
    options: &DryRunOptions,
) -> TableDryRun {
    let started = Instant::now();
    let (schema, name) = table.target_parts(&config.target.schema);
    let mut out = TableDryRun {
        source: table.source.clone(),
        target: format!("{schema}.{name}"),
        mode: table.mode(&config.run).name().into(),
        ..Default::default()
    };
    if let Err(e) =
        dry_run_table_into(config, table, source, client, server, options, &mut out).await
    {
        tracing::error!(table = %table.source, error = %e, "dry run of the table failed");
        out.error = Some(e.to_string());
    }
    out.elapsed_s = started.elapsed().as_secs_f64();
    out
}

async fn dry_run_table_into(
    config: &Config,
    table: &TableConfig,
    source: &DrySource,
    client: Option<&Client>,
    server: Option<&ServerInfo>,
    options: &DryRunOptions,
    out: &mut TableDryRun,
) -> Result<()> {
    let planned = match source {
        DrySource::Cassandra(session) => {
            let source = load_source(table, session).await?;
            let key = primary_key(&source);
            let count = table.splits.unwrap_or(config.run.splits);
            let local_dc = config.source.local_dc.as_deref();
            let all =
                plan_splits(session, &source.keyspace, &source.table, count, local_dc).await?;
            let splits_total = all.len();
            let picked = sample_splits(splits_total, options.sample_percent);
            let sampled: Vec<_> = picked.iter().map(|&i| all[i].clone()).collect();
            let planned = plan_source(config, table, session, source, sampled).await?;
            PlannedSource {
                label: table.source.clone(),
                frame: planned.frame,
                task_ctx: planned.task_ctx,
                splits: picked,
                splits_total,
                primary_key: key,
                counters: Some(planned.counters),
            }
        }
        DrySource::Staged(staged) => {
            let staged = staged
                .get(&table.source)
                .ok_or_else(|| PipelineError::Worker(format!("{} was not opened", table.source)))?;
            let splits_total = staged.splits();
            let picked = sample_splits(splits_total, options.sample_percent);
            let planned =
                plan_staged_source(config, table, Arc::new(staged.sample(&picked))).await?;
            PlannedSource {
                label: table.source.clone(),
                frame: planned.frame,
                task_ctx: planned.task_ctx,
                splits: picked,
                splits_total,
                primary_key: staged_primary_key(staged.manifest()),
                counters: Some(planned.counters),
            }
        }
    };

    let (schema, name) = table.target_parts(&config.target.schema);
    let output = Arc::new(planned.frame.schema().as_arrow().clone());
    let live = match client {
        Some(c) => match TargetTable::load(c, schema, name).await {
            Ok(t) => Some(t),
            Err(ConnectorError::TargetTableNotFound(_)) => None,
            Err(e) => return Err(e.into()),
        },
        None => None,
    };
    let check = match live {
        Some(t) => {
            let check = TargetCheck::live(
                client.expect("a live table came from a client"),
                t.clone(),
                &output,
            )
            .await?;
            if table.mode(&config.run) == WriteMode::Fast
                && let Err(e) = yugabyte::check_fast_mode(client.expect("live"), &t).await
            {
                out.problems.push(e.to_string());
            }
            if table.mode(&config.run) == WriteMode::Upsert
                && let Ok(encoder) = CopyEncoder::try_new(&output, &t)
                && let Err(e) = Upsert::prepare(client.expect("live"), &t, &encoder).await
            {
                out.problems.push(e.to_string());
            }
            check
        }
        None => {
            let dialect = server.map_or(Dialect::PostgreSql, ServerInfo::ddl_dialect);
            let version = server.map_or(0, |s| s.version_num);
            if client.is_some() && !table.create_tables(&config.run) {
                out.problems.push(format!(
                    "the target table {schema}.{name} does not exist and create_tables is off: \
                     migrate would stop; create it (`ferry schema --apply`) or set create_tables = true"
                ));
            } else if client.is_none() {
                out.problems
                    .push("the target cannot be reached (see target.error)".to_string());
            }
            TargetCheck::generated(
                schema,
                name,
                &output,
                &planned.primary_key,
                dialect,
                version,
            )
        }
    };
    if !check.incompatible.is_empty() {
        out.problems.push(format!(
            "migrate would stop before moving data: the transform's output does not fit {}:\n{}",
            check.table.qualified(),
            check.incompatible.join("\n")
        ));
    }
    let settings = ProfileSettings {
        connections: config.run.connections,
        preview_rows: options.settings.preview_rows,
        probe_rows: if options.settings.load_rows_per_s.is_some() || client.is_none() {
            0
        } else {
            options.settings.probe_rows
        },
    };
    let profiled = profile_planned(planned, Some(&check), &settings).await?;
    let load_rate = match options.settings.load_rows_per_s {
        Some(rate) => LoadRate::Config(rate),
        None if profiled.probe.rows == 0 => {
            LoadRate::None(probe_skipped_note(&check, client, &settings))
        }
        None => match probe_load_rate(
            &config.target,
            &check,
            &profiled.probe,
            config.run.connections,
        )
        .await
        {
            Ok(rate) => LoadRate::Probe(rate),
            Err(e) => {
                tracing::warn!(table = %table.source, error = %e, "the load probe failed");
                LoadRate::None(format!("the probe failed: {e}"))
            }
        },
    };
    profiled.fill(out, &check, load_rate);
    let max_rejects = table.max_rejects.or(config.run.max_rejects);
    if let Some(max) = max_rejects
        && out.rejects.estimated_total > max
    {
        out.problems.push(format!(
            "about {} rows would be rejected, more than max_rejects = {max}: migrate would stop",
            out.rejects.estimated_total
        ));
    }
    Ok(())
}

fn probe_skipped_note(
    check: &TargetCheck,
    client: Option<&Client>,
    settings: &ProfileSettings,
) -> String {
    if client.is_none() {
        "no probe: the target cannot be reached".into()
    } else if check.encoder.is_none() {
        "no probe: the output does not fit the target".into()
    } else if settings.probe_rows == 0 {
        "no probe: dry_run.probe_rows = 0; set dry_run.load_rows_per_s for a load estimate".into()
    } else {
        "no probe: no rows to load without a reject".into()
    }
}

/// The splits a sample of `percent` reads, evenly spread over `total` (at least one).
pub fn sample_splits(total: usize, percent: Option<f64>) -> Vec<usize> {
    let Some(p) = percent.filter(|p| *p < 100.0) else {
        return (0..total).collect();
    };
    if total == 0 {
        return Vec::new();
    }
    let n = ((total as f64 * p / 100.0).ceil() as usize).clamp(1, total);
    // Split i*total/n for i in 0..n: spread from the first to near the last.
    (0..n).map(|i| i * total / n).collect()
}

/// A transform planned over a source, for a dry run: partition k of `frame`'s plan reads split
/// `splits[k]` of the source's `splits_total`.
pub struct PlannedSource {
    /// What the source is, for messages (`keyspace.table`).
    pub label: String,
    pub frame: DataFrame,
    pub task_ctx: Arc<TaskContext>,
    /// The index in the whole source of each split read (all of them unless sampled).
    pub splits: Vec<usize>,
    pub splits_total: usize,
    /// The source's primary key: its partition key finds the largest partitions; the whole key
    /// types the generated DDL.
    pub primary_key: PrimaryKey,
    /// The scan's counters, when the source has them.
    pub counters: Option<Arc<ScanCounters>>,
}

impl std::fmt::Debug for PlannedSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlannedSource")
            .field("label", &self.label)
            .field("splits", &self.splits.len())
            .field("splits_total", &self.splits_total)
            .finish()
    }
}

/// How a planned source is read.
#[derive(Debug, Clone)]
pub struct ProfileSettings {
    /// Units read at once (the run's connections).
    pub connections: usize,
    pub preview_rows: usize,
    /// Encoded rows kept for the load probe (0: none).
    pub probe_rows: usize,
}

/// What reading a planned source found, before the load rate is known.
#[derive(Debug)]
pub struct Profiled {
    pub schema: SchemaRef,
    pub split_aligned: bool,
    pub splits_total: usize,
    pub source_rows: u64,
    pub rows: u64,
    pub arrow_bytes: u64,
    pub copy_bytes: u64,
    pub columns: Vec<ColumnProfile>,
    pub splits: Vec<SplitStat>,
    pub rejects_total: u64,
    pub by_reason: BTreeMap<String, u64>,
    pub by_column: BTreeMap<String, u64>,
    pub samples: Vec<RejectSample>,
    pub largest_partitions: Vec<PartitionSize>,
    pub preview: Preview,
    /// Wall time of the whole read, and CPU time spent encoding.
    pub wall_s: f64,
    pub encode_cpu_s: f64,
    /// Encoded rows kept for the load probe.
    pub probe: ProbeSample,
}

/// COPY rows (no header or trailer) to load in the probe.
#[derive(Debug, Default)]
pub struct ProbeSample {
    pub chunks: Vec<Bytes>,
    pub rows: u64,
}

/// Where the ETA's load rate comes from.
#[derive(Debug, Clone)]
pub enum LoadRate {
    Config(f64),
    Probe(f64),
    /// No rate, and why.
    None(String),
}

impl Profiled {
    /// Fills `out` with these findings and the ETA at `load_rate`.
    pub fn fill(self, out: &mut TableDryRun, check: &TargetCheck, load_rate: LoadRate) {
        let read = self.splits.len().max(1);
        let scale = if self.split_aligned {
            self.splits_total.max(1) as f64 / read as f64
        } else {
            1.0
        };
        let scaled = |n: u64| (n as f64 * scale).round() as u64;
        out.checked_against = Some(check.against);
        out.generated_ddl = check.ddl.as_ref().map(|d| d.sql.clone());
        out.unit_semantics = if self.split_aligned {
            UnitSemantics::Split
        } else {
            UnitSemantics::WholeTable
        };
        out.splits_total = self.splits_total;
        out.splits_read = if self.split_aligned {
            self.splits.len()
        } else {
            self.splits_total
        };
        out.rows_read = self.rows;
        out.source_rows = self.source_rows;
        out.arrow_bytes = self.arrow_bytes;
        out.copy_bytes = self.copy_bytes;
        out.estimated_rows = scaled(self.rows);
        out.estimated_arrow_bytes = scaled(self.arrow_bytes);
        out.estimated_copy_bytes = scaled(self.copy_bytes);
        out.columns = self.columns;
        for c in &mut out.columns {
            if let Some(t) = check.table.column(&c.name) {
                c.target_type = Some(t.ty.name.clone());
                c.target_not_null = t.not_null;
            }
        }
        out.rejects = PredictedRejects {
            total: self.rejects_total,
            estimated_total: scaled(self.rejects_total),
            by_reason: self.by_reason,
            by_column: self.by_column,
            samples: self.samples,
            not_predicted: check.not_predicted.clone(),
        };
        out.split_sizes = split_sizes(self.splits);
        out.largest_partitions = self.largest_partitions;
        out.preview = self.preview;

        let threads = rayon::current_num_threads().max(1) as f64;
        let rows = scaled(self.rows);
        let read_s = self.wall_s * scale;
        let encode_s = self.encode_cpu_s * scale / threads;
        let (load_rows_per_s, from, note) = match load_rate {
            LoadRate::Config(r) => (Some(r), "config", None),
            LoadRate::Probe(r) => (Some(r), "probe", None),
            LoadRate::None(why) => (None, "none", Some(why)),
        };
        let load_s = load_rows_per_s
            .filter(|r| *r > 0.0)
            .map(|r| rows as f64 / r);
        let mut eta = Eta {
            rows,
            read_s,
            encode_s,
            load_s,
            read_rows_per_s: rate(self.rows, self.wall_s),
            encode_rows_per_s: rate(self.rows, self.encode_cpu_s / threads),
            load_rows_per_s,
            load_rate_from: from.into(),
            probe_note: note,
            ..Default::default()
        };
        (eta.total_s, eta.bound_by) = slowest(&eta);
        out.eta = eta;
    }
}

fn rate(rows: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        rows as f64 / seconds
    } else {
        0.0
    }
}

fn slowest(eta: &Eta) -> (f64, String) {
    let mut stages = vec![("read", eta.read_s), ("encode", eta.encode_s)];
    if let Some(l) = eta.load_s {
        stages.push(("load", l));
    }
    stages
        .into_iter()
        .fold((0.0, "read".to_string()), |(best, name), (n, s)| {
            if s > best {
                (s, n.to_string())
            } else {
                (best, name)
            }
        })
}

fn total_eta(tables: &[TableDryRun]) -> Eta {
    let mut eta = Eta {
        load_rate_from: "none".into(),
        ..Default::default()
    };
    let mut load = Some(0.0);
    for t in tables {
        eta.rows += t.eta.rows;
        eta.read_s += t.eta.read_s;
        eta.encode_s += t.eta.encode_s;
        eta.total_s += t.eta.total_s;
        load = load.zip(t.eta.load_s).map(|(a, b)| a + b);
        if eta.load_rate_from == "none" {
            eta.load_rate_from = t.eta.load_rate_from.clone();
        }
    }
    eta.load_s = load.filter(|_| !tables.is_empty());
    eta.read_rows_per_s = rate(eta.rows, eta.read_s);
    eta.encode_rows_per_s = rate(eta.rows, eta.encode_s);
    eta.load_rows_per_s = eta.load_s.map(|s| rate(eta.rows, s));
    eta.bound_by = slowest(&eta).1;
    eta
}

fn split_sizes(mut splits: Vec<SplitStat>) -> SplitSizes {
    splits.sort_by_key(|s| s.split);
    let mut rows: Vec<u64> = splits.iter().map(|s| s.rows).collect();
    rows.sort_unstable();
    if rows.is_empty() {
        return SplitSizes::default();
    }
    let at = |q: f64| rows[((rows.len() - 1) as f64 * q).round() as usize];
    let (min, max) = (rows[0], rows[rows.len() - 1]);
    let median = at(0.5);
    SplitSizes {
        histogram: histogram(&rows),
        min_rows: min,
        median_rows: median,
        p90_rows: at(0.9),
        max_rows: max,
        skew: if median > 0 {
            max as f64 / median as f64
        } else if max > 0 {
            f64::INFINITY
        } else {
            1.0
        },
        splits,
    }
}

/// Up to 12 equal-width buckets over the sorted row counts.
fn histogram(sorted: &[u64]) -> Vec<HistogramBucket> {
    let (min, max) = (sorted[0], sorted[sorted.len() - 1]);
    let buckets = 12u64.min(max - min + 1).max(1);
    let width = (max - min + 1).div_ceil(buckets);
    (0..buckets)
        .map(|b| {
            let from = min + b * width;
            let to = (from + width - 1).min(max);
            HistogramBucket {
                from_rows: from,
                to_rows: to,
                splits: sorted.iter().filter(|&&r| r >= from && r <= to).count(),
            }
        })
        .filter(|b| b.from_rows <= max)
        .collect()
}

/// Per-worker accumulators, moved onto the rayon pool with each batch.
#[derive(Debug)]
struct WorkerState {
    columns: Vec<ColumnProfiler>,
    runs: Option<PartitionRuns>,
    encode_s: f64,
}

/// One batch's findings.
struct BatchFindings {
    /// Sorted by row, numbered within the batch.
    rejects: Vec<Reject>,
    copy_bytes: u64,
    arrow_bytes: u64,
    /// The encoded rows and their count, when kept for the probe.
    chunks: Option<(Vec<Bytes>, u64)>,
}

/// Profiles, encodes and checks one batch (on the rayon pool).
fn process_batch(
    state: &mut WorkerState,
    check: Option<&TargetCheck>,
    batch: &RecordBatch,
    split: Option<usize>,
    keep_chunks: bool,
) -> BatchFindings {
    for (p, c) in state.columns.iter_mut().zip(batch.columns()) {
        p.update(c);
    }
    if let (Some(runs), Some(split)) = (&mut state.runs, split) {
        runs.update(batch, split);
    }
    let arrow_bytes = batch
        .columns()
        .iter()
        .map(|c| c.to_data().get_slice_memory_size().unwrap_or(0) as u64)
        .sum();
    let mut findings = BatchFindings {
        rejects: Vec::new(),
        copy_bytes: 0,
        arrow_bytes,
        chunks: None,
    };
    let Some(check) = check else {
        return findings;
    };
    let Some(encoder) = &check.encoder else {
        return findings;
    };
    let started = Instant::now();
    let encoded = encoder.encode(batch);
    state.encode_s += started.elapsed().as_secs_f64();
    findings.copy_bytes = encoded.bytes() as u64;
    let mut rejects = encoded.rejects;
    let refused = check.not_null_rejects(batch, &rejects);
    // The encoded rows leave out the encoder's rejects; the server's would fail the probe's
    // COPY, so the probe gets the batch again without them.
    if keep_chunks && refused.is_empty() && encoded.rows > 0 {
        findings.chunks = Some((encoded.chunks, encoded.rows as u64));
    } else if keep_chunks {
        let mut keep = vec![true; batch.num_rows()];
        for r in &refused {
            keep[r.row] = false;
        }
        if let Ok(kept) = filter_record_batch(batch, &BooleanArray::from(keep)) {
            let again = encoder.encode(&kept);
            if again.rows > 0 {
                findings.chunks = Some((again.chunks, again.rows as u64));
            }
        }
    }
    if !refused.is_empty() {
        rejects.extend(refused);
        rejects.sort_by_key(|r| r.row);
    }
    findings.rejects = rejects;
    findings
}

/// Runs `f` with `state` on the rayon pool, without blocking the async runtime.
async fn on_rayon<T: Send + 'static>(
    state: WorkerState,
    f: impl FnOnce(&mut WorkerState) -> T + Send + 'static,
) -> (WorkerState, T) {
    let (tx, rx) = tokio::sync::oneshot::channel();
    rayon::spawn(move || {
        let mut state = state;
        let out = f(&mut state);
        let _ = tx.send((state, out));
    });
    rx.await
        .expect("the rayon task always sends unless it panicked, which is a bug")
}

/// Shared by a table's workers.
struct Shared {
    plan: Arc<dyn ExecutionPlan>,
    task_ctx: Arc<TaskContext>,
    check: Option<TargetCheck>,
    /// Source split of each unit (`None`: the whole table is one unit).
    unit_splits: Vec<Option<usize>>,
    next: AtomicUsize,
    preview_rows: usize,
    probe_rows: usize,
    probe_kept: AtomicUsize,
}

/// One worker's findings.
struct WorkerOutput {
    state: WorkerState,
    splits: Vec<SplitStat>,
    rejects_total: u64,
    by_reason: BTreeMap<String, u64>,
    by_column: BTreeMap<String, u64>,
    samples: Vec<RejectSample>,
    preview: Vec<(usize, RecordBatch)>,
    probe: ProbeSample,
}

/// Reads every partition of `planned` through `check` (the target side; `None` profiles only),
/// `settings.connections` at once.
pub async fn profile_planned(
    planned: PlannedSource,
    check: Option<&TargetCheck>,
    settings: &ProfileSettings,
) -> Result<Profiled> {
    let schema: SchemaRef = Arc::new(planned.frame.schema().as_arrow().clone());
    let k = planned.splits.len();
    let mut plan = planned.frame.create_physical_plan().await?;
    let split_aligned = plan.output_partitioning().partition_count() == k;
    if !split_aligned {
        plan = Arc::new(CoalescePartitionsExec::new(plan));
    }
    let unit_splits: Vec<Option<usize>> = if split_aligned {
        planned.splits.iter().map(|&s| Some(s)).collect()
    } else {
        vec![None]
    };
    let units = unit_splits.len();
    let shared = Arc::new(Shared {
        plan,
        task_ctx: planned.task_ctx,
        check: check.cloned(),
        unit_splits,
        next: AtomicUsize::new(0),
        preview_rows: settings.preview_rows,
        probe_rows: settings.probe_rows,
        probe_kept: AtomicUsize::new(0),
    });
    let workers = settings.connections.min(units).max(1);
    let started = Instant::now();
    let handles: Vec<_> = (0..workers)
        .map(|_| {
            let shared = Arc::clone(&shared);
            let state = WorkerState {
                columns: ColumnProfiler::for_schema(&schema),
                runs: if split_aligned {
                    PartitionRuns::new(&schema, &planned.primary_key.partition)
                } else {
                    None
                },
                encode_s: 0.0,
            };
            tokio::spawn(async move { worker(shared, state).await })
        })
        .collect();
    let mut outputs = Vec::with_capacity(workers);
    for handle in handles {
        outputs.push(
            handle
                .await
                .map_err(|e| PipelineError::Worker(e.to_string()))??,
        );
    }
    let wall_s = started.elapsed().as_secs_f64();

    let mut outputs = outputs.into_iter();
    let mut first = outputs.next().expect("at least one worker");
    for other in outputs {
        for (mine, theirs) in first.state.columns.iter_mut().zip(other.state.columns) {
            mine.merge(theirs);
        }
        if let (Some(mine), Some(theirs)) = (&mut first.state.runs, other.state.runs) {
            mine.merge(theirs);
        }
        first.state.encode_s += other.state.encode_s;
        first.splits.extend(other.splits);
        first.rejects_total += other.rejects_total;
        for (k, n) in other.by_reason {
            *first.by_reason.entry(k).or_default() += n;
        }
        for (k, n) in other.by_column {
            *first.by_column.entry(k).or_default() += n;
        }
        first.samples.extend(other.samples);
        first.preview.extend(other.preview);
        first.probe.rows += other.probe.rows;
        first.probe.chunks.extend(other.probe.chunks);
    }
    let rows: u64 = first.splits.iter().map(|s| s.rows).sum();
    let columns = first
        .state
        .columns
        .into_iter()
        .map(|c| c.finish(rows))
        .collect();
    first.samples.sort_by_key(|s| (s.split, s.row));
    first.samples.truncate(REJECT_SAMPLES);
    first.preview.sort_by_key(|(unit, _)| *unit);
    let mut preview_rows = Vec::new();
    for (_, batch) in &first.preview {
        preview_rows.extend(format_rows(batch));
    }
    preview_rows.truncate(settings.preview_rows);
    Ok(Profiled {
        split_aligned,
        splits_total: planned.splits_total,
        source_rows: planned
            .counters
            .as_ref()
            .map_or(rows, |c| c.rows.load(Ordering::Relaxed)),
        rows,
        arrow_bytes: first.splits.iter().map(|s| s.arrow_bytes).sum(),
        copy_bytes: first.splits.iter().map(|s| s.copy_bytes).sum(),
        columns,
        rejects_total: first.rejects_total,
        by_reason: first.by_reason,
        by_column: first.by_column,
        samples: first.samples,
        largest_partitions: first
            .state
            .runs
            .map(PartitionRuns::finish)
            .unwrap_or_default(),
        preview: Preview {
            columns: schema.fields().iter().map(|f| f.name().clone()).collect(),
            rows: preview_rows,
        },
        splits: first.splits,
        schema,
        wall_s,
        encode_cpu_s: first.state.encode_s,
        probe: first.probe,
    })
}

async fn worker(shared: Arc<Shared>, mut state: WorkerState) -> Result<WorkerOutput> {
    let mut out = WorkerOutput {
        state: WorkerState {
            columns: Vec::new(),
            runs: None,
            encode_s: 0.0,
        },
        splits: Vec::new(),
        rejects_total: 0,
        by_reason: BTreeMap::new(),
        by_column: BTreeMap::new(),
        samples: Vec::new(),
        preview: Vec::new(),
        probe: ProbeSample::default(),
    };
    loop {
        let unit = shared.next.fetch_add(1, Ordering::SeqCst);
        let Some(&split) = shared.unit_splits.get(unit) else {
            break;
        };
        let started = Instant::now();
        let mut stat = SplitStat {
            split: split.unwrap_or(0),
            ..Default::default()
        };
        let mut stream = shared.plan.execute(unit, Arc::clone(&shared.task_ctx))?;
        let mut preview_left = shared.preview_rows;
        let mut samples_left = REJECT_SAMPLES;
        while let Some(batch) = stream.next().await {
            let batch = batch?;
            if batch.num_rows() == 0 {
                continue;
            }
            if preview_left > 0 {
                let n = preview_left.min(batch.num_rows());
                out.preview.push((unit, batch.slice(0, n)));
                preview_left -= n;
            }
            let keep = shared.probe_kept.load(Ordering::Relaxed) < shared.probe_rows;
            let shared_ref = Arc::clone(&shared);
            let work = batch.clone();
            let findings;
            (state, findings) = on_rayon(state, move |s| {
                process_batch(s, shared_ref.check.as_ref(), &work, split, keep)
            })
            .await;
            let first_row = stat.rows as usize;
            stat.rows += batch.num_rows() as u64;
            stat.arrow_bytes += findings.arrow_bytes;
            stat.copy_bytes += findings.copy_bytes;
            stat.rejects += findings.rejects.len() as u64;
            if let Some((chunks, rows)) = findings.chunks {
                shared
                    .probe_kept
                    .fetch_add(rows as usize, Ordering::Relaxed);
                out.probe.rows += rows;
                out.probe.chunks.extend(chunks);
            }
            out.rejects_total += findings.rejects.len() as u64;
            for r in &findings.rejects {
                *out.by_reason.entry(r.class()).or_default() += 1;
                *out.by_column.entry(r.column.clone()).or_default() += 1;
            }
            let sampled: Vec<&Reject> = findings.rejects.iter().take(samples_left).collect();
            if !sampled.is_empty() {
                samples_left -= sampled.len();
                let indices: UInt32Array = sampled.iter().map(|r| r.row as u32).collect();
                let rows = arrow::compute::take_record_batch(&batch, &indices)
                    .map(|b| format_rows(&b))
                    .unwrap_or_default();
                for (i, r) in sampled.into_iter().enumerate() {
                    out.samples.push(RejectSample {
                        split: split.unwrap_or(0),
                        row: first_row + r.row,
                        column: r.column.clone(),
                        class: r.class(),
                        reason: r.reason.clone(),
                        values: rows.get(i).cloned().unwrap_or_default(),
                    });
                }
            }
        }
        if let Some(runs) = &mut state.runs {
            runs.end_split();
        }
        stat.seconds = started.elapsed().as_secs_f64();
        out.splits.push(stat);
    }
    out.state = state;
    Ok(out)
}

/// The probe's temporary table.
const PROBE_TABLE: &str = "ferry_dry_run_probe";

/// Measures the load rate: `sample` COPY'd over up to 4 connections, each into a temporary copy
/// of the target table of its own, in a transaction that is rolled back. Returns rows/s over
/// every connection.
async fn probe_load_rate(
    target: &YugabyteConfig,
    check: &TargetCheck,
    sample: &ProbeSample,
    connections: usize,
) -> std::result::Result<f64, String> {
    let encoder = check
        .encoder
        .as_ref()
        .ok_or("the output does not fit the target")?;
    let columns = encoder
        .copy_sql()
        .strip_prefix(&format!("COPY {} ", encoder.table()))
        .ok_or("unexpected COPY statement")?;
    let copy = format!("COPY pg_temp.{PROBE_TABLE} {columns}");
    let p = connections.clamp(1, 4);
    match probe_with(
        target,
        &check.probe_table_sql(PROBE_TABLE, true),
        &copy,
        sample,
        p,
    )
    .await
    {
        Err(e) if e.refused => {
            // The sample breaks a key or CHECK of the table (rows the dry run does not predict):
            // measure without them rather than not at all.
            tracing::info!(error = %e.message, "the probe's rows break the table's indexes or constraints; probing without them");
            probe_with(
                target,
                &check.probe_table_sql(PROBE_TABLE, false),
                &copy,
                sample,
                p,
            )
            .await
            .map_err(|e| e.message)
        }
        other => other.map_err(|e| e.message),
    }
}

/// Why a probe failed; `refused` when the server refused rows.
struct ProbeError {
    message: String,
    refused: bool,
}

impl From<tokio_postgres::Error> for ProbeError {
    fn from(e: tokio_postgres::Error) -> Self {
        Self {
            refused: e.code().is_some_and(|c| c.code().starts_with("23")),
            message: e
                .as_db_error()
                .map_or_else(|| e.to_string(), |d| d.message().to_string()),
        }
    }
}

impl From<String> for ProbeError {
    fn from(message: String) -> Self {
        Self {
            message,
            refused: false,
        }
    }
}

/// One probe: `create` then `copy` of `sample` on `p` connections at once; rows/s over all.
async fn probe_with(
    target: &YugabyteConfig,
    create: &str,
    copy: &str,
    sample: &ProbeSample,
    p: usize,
) -> std::result::Result<f64, ProbeError> {
    let mut clients = Vec::with_capacity(p);
    for _ in 0..p {
        clients.push(yugabyte::connect(target).await.map_err(|e| e.to_string())?);
    }
    let runs = clients.iter_mut().map(|client| async move {
        let tx = client.transaction().await?;
        tx.batch_execute(create).await?;
        let started = Instant::now();
        let sink = tx.copy_in::<_, Bytes>(copy).await?;
        let mut sink = pin!(sink);
        sink.feed(Bytes::from_static(COPY_HEADER)).await?;
        for chunk in &sample.chunks {
            sink.feed(chunk.clone()).await?;
        }
        sink.feed(Bytes::from_static(COPY_TRAILER)).await?;
        let rows = sink.as_mut().finish().await?;
        let seconds = started.elapsed().as_secs_f64();
        tx.rollback().await?;
        Ok::<_, ProbeError>((rows, seconds))
    });
    let results = futures::future::join_all(runs).await;
    let mut rows = 0u64;
    let mut slowest = 0f64;
    for r in results {
        let (n, s) = r?;
        rows += n;
        slowest = slowest.max(s);
    }
    if slowest <= 0.0 || rows == 0 {
        return Err("the probe loaded nothing".to_string().into());
    }
    tracing::info!(rows, connections = p, seconds = slowest, "load probe");
    Ok(rows as f64 / slowest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_spread_over_the_splits() {
        assert_eq!(sample_splits(8, None), (0..8).collect::<Vec<_>>());
        assert_eq!(sample_splits(8, Some(100.0)), (0..8).collect::<Vec<_>>());
        assert_eq!(sample_splits(8, Some(50.0)), vec![0, 2, 4, 6]);
        assert_eq!(sample_splits(10, Some(25.0)), vec![0, 3, 6]);
        assert_eq!(sample_splits(10, Some(0.1)), vec![0]);
    }

    #[test]
    fn split_sizes_show_skew() {
        let stat = |split, rows| SplitStat {
            split,
            rows,
            ..Default::default()
        };
        let sizes = split_sizes(vec![stat(2, 10), stat(0, 10), stat(1, 40), stat(3, 12)]);
        assert_eq!(
            sizes.splits.iter().map(|s| s.split).collect::<Vec<_>>(),
            [0, 1, 2, 3]
        );
        assert_eq!(
            (sizes.min_rows, sizes.median_rows, sizes.max_rows),
            (10, 12, 40)
        );
        assert!((sizes.skew - 40.0 / 12.0).abs() < 1e-9);
        let counted: usize = sizes.histogram.iter().map(|b| b.splits).sum();
        assert_eq!(counted, 4);
        assert_eq!(sizes.histogram.first().map(|b| b.from_rows), Some(10));
        assert_eq!(sizes.histogram.last().map(|b| b.to_rows), Some(40));
    }

    #[test]
    fn the_eta_is_the_slowest_stage() {
        let eta = Eta {
            read_s: 3.0,
            encode_s: 1.0,
            load_s: Some(5.0),
            ..Default::default()
        };
        assert_eq!(slowest(&eta), (5.0, "load".to_string()));
        let eta = Eta {
            read_s: 3.0,
            encode_s: 1.0,
            load_s: None,
            ..Default::default()
        };
        assert_eq!(slowest(&eta), (3.0, "read".to_string()));
    }
}
