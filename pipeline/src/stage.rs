//! `ferry dump`: every configured table, split by split, through its transform (unless raw) into
//! Parquet files and a manifest (`ferry_connectors::staging`); and what `ferry load` needs to
//! find staged tables. The load itself is the runner's ([`crate::runner::load_with`]).
//!
//! A dump resumes: the manifest is written before the first split, with the split plan, and
//! rewritten after each split (under a lock, one put each time); a split is done when the
//! manifest says so. Running the same dump again skips the done splits, reads the others again
//! over the same token ranges, and deletes the files no done split lists.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use datafusion::execution::TaskContext;
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties};
use ferry_connectors::cassandra::ring::ring_ranges;
use ferry_connectors::cassandra::{self, ScanCounters, Split, plan_splits};
use ferry_connectors::staging::manifest::MANIFEST_FILE;
use ferry_connectors::staging::{
    Manifest, StagedSplit, StagedTable, StagingLocation, TableLocation, TransformRecord,
    WriteOptions, write_split,
};
use ferry_connectors::{ConnectorError, cassandra::TokenRange};
use scylla::client::session::Session;
use tokio::sync::Mutex;

use crate::config::{Config, TableConfig};
use crate::error::{PipelineError, Result};
use crate::plan::{expand_tables, load_source, plan_source};
use crate::progress::{RunProgress, TableProgress};
use crate::report::{Report, TableReport, UnitSemantics};
use crate::runner::INTERRUPTED;

/// How `ferry dump` runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct DumpOptions {
    /// Dump the source columns as read, without the transform (`--raw`, or `staging.raw`).
    pub raw: bool,
    /// Delete what an earlier dump staged for each table and start over (`--restart`).
    pub restart: bool,
}

/// Dumps every table of `config` to `location`, in order, and reports. Once `progress` is
/// stopped, no new split starts; the splits in flight finish and are recorded.
pub async fn dump_with(
    config: &Config,
    location: &StagingLocation,
    options: DumpOptions,
    progress: Arc<RunProgress>,
) -> Report {
    let started = Instant::now();
    let mut config = config.clone();
    let options = DumpOptions {
        raw: options.raw || config.staging.raw,
        ..options
    };
    let mut tables = Vec::new();
    let connected = async {
        let session = cassandra::connect(&config.source).await?;
        expand_tables(&mut config, &session).await?;
        check_one_entry_per_source(&config, options)?;
        Ok::<_, PipelineError>(session)
    }
    .await;
    let mut error = None;
    match connected {
        Err(e) => error = Some(e.to_string()),
        Ok(session) => {
            let mut seen = BTreeSet::new();
            for table in &config.tables {
                if progress.stopped() {
                    break;
                }
                // With --raw, entries reading the same table share its staged rows.
                if !seen.insert(table.source.clone()) {
                    continue;
                }
                let report =
                    dump_table(&config, table, &session, location, options, &progress).await;
                let failed = report.error.is_some();
                tables.push(report);
                if failed {
                    break;
                }
            }
        }
    }
    let interrupted = progress.stopped();
    if error.is_none() {
        error = tables.iter().find_map(|t| t.error.clone());
    }
    let dumped = config
        .tables
        .iter()
        .map(|t| &t.source)
        .collect::<BTreeSet<_>>()
        .len();
    if error.is_none() && interrupted && tables.len() < dumped {
        error = Some(INTERRUPTED.to_string());
    }
    let mut report = Report::new("dump", started.elapsed().as_secs_f64(), tables, error);
    report.interrupted = interrupted;
    report
}

/// A dump stages each Cassandra table once, in `<keyspace>.<table>/`: two entries reading the
/// same table can share it only when the rows are staged raw.
fn check_one_entry_per_source(config: &Config, options: DumpOptions) -> Result<()> {
    if options.raw {
        return Ok(());
    }
    let mut seen = BTreeSet::new();
    for t in &config.tables {
        if !seen.insert(&t.source) {
            return Err(PipelineError::Config {
                path: config.path.clone(),
                message: format!(
                    "two [[table]] entries read {}; a dump stages each Cassandra table once, so \
                     dump it with --raw (each load then applies its own transform)",
                    t.source
                ),
            });
        }
    }
    Ok(())
}

async fn dump_table(
    config: &Config,
    table: &TableConfig,
    session: &Arc<Session>,
    location: &StagingLocation,
    options: DumpOptions,
    run: &Arc<RunProgress>,
) -> TableReport {
    let started = Instant::now();
    let dir = location.table(&table.source);
    let mut report = TableReport {
        source: table.source.clone(),
        target: dir.url().to_string(),
        ..Default::default()
    };
    let result = dump_table_inner(config, table, session, &dir, options, run, &mut report).await;
    if let Err(e) = result {
        tracing::error!(table = %table.source, error = %e, "table failed");
        report.error = Some(e.to_string());
    }
    report.elapsed_s = started.elapsed().as_secs_f64();
    if report.elapsed_s > 0.0 {
        report.rows_per_s = report.rows_written as f64 / report.elapsed_s;
    }
    report
}

/// The table's split plan and manifest: the manifest found in place when a dump may resume it,
/// else a new one with a new plan.
struct Planned {
    manifest: Manifest,
    plan: Arc<dyn ExecutionPlan>,
    task_ctx: Arc<TaskContext>,
    counters: Arc<ScanCounters>,
    schema: arrow::datatypes::SchemaRef,
}

async fn plan_dump(
    config: &Config,
    table: &TableConfig,
    session: &Arc<Session>,
    dir: &TableLocation,
    raw: bool,
) -> Result<Planned> {
    let existing = dir.read_manifest().await?;
    let source = load_source(table, session).await?;
    let (keyspace, name) = (source.keyspace.clone(), source.table.clone());
    let local_dc = config.source.local_dc.as_deref();
    // A whole-table dump that did not finish has nothing worth keeping: its one unit is redone.
    let resumable = existing.as_ref().filter(|m| !m.whole_table || m.complete);
    let splits = match resumable {
        Some(m) if !m.whole_table => {
            tracing::info!(table = %table.source, splits = m.splits.len(), "resuming the dump with the manifest's split plan");
            let ring = ring_ranges(session, &keyspace, &name, local_dc)?;
            let stored = m.splits.iter().map(|s| s.token_ranges.clone()).collect();
            Split::routed(stored, &ring)
        }
        _ => {
            let count = table.splits.unwrap_or(config.run.splits);
            plan_splits(session, &keyspace, &name, count, local_dc).await?
        }
    };
    let transform = if raw {
        None
    } else {
        match &table.transform {
            Some(path) => {
                let file = config.resolve(path);
                let sql =
                    std::fs::read_to_string(&file).map_err(|e| PipelineError::ConfigRead {
                        path: file.clone(),
                        source: e,
                    })?;
                Some(TransformRecord {
                    file: path.display().to_string(),
                    sql,
                })
            }
            None => None,
        }
    };
    let mut planned_table = table.clone();
    if raw {
        planned_table.transform = None;
    }
    let ranges: Vec<Vec<TokenRange>> = splits.iter().map(|s| s.ranges.clone()).collect();
    let k = splits.len();
    let planned = plan_source(config, &planned_table, session, source.clone(), splits).await?;
    let schema = planned.output_schema();
    let mut plan = planned.frame.create_physical_plan().await?;
    let aligned = plan.output_partitioning().partition_count() == k;
    let units = if aligned {
        ranges
    } else {
        tracing::warn!(
            table = %table.source,
            "the transform regroups rows across splits; the table is dumped as one unit"
        );
        plan = Arc::new(CoalescePartitionsExec::new(plan));
        vec![ranges.into_iter().flatten().collect()]
    };
    let fresh = Manifest::new(&source, &schema, transform, !aligned, units);
    let manifest = match existing {
        Some(found) if resumable.is_some() => {
            let path = dir.display(MANIFEST_FILE);
            let difference = found.difference(&fresh, &path)?.or_else(|| {
                (found.splits.len() != fresh.splits.len()).then(|| {
                    format!(
                        "it has {} splits, this dump plans {}",
                        found.splits.len(),
                        fresh.splits.len()
                    )
                })
            });
            if let Some(difference) = difference {
                return Err(ConnectorError::Staged {
                    path,
                    message: format!(
                        "an earlier dump of {} cannot be resumed: {difference}; run `ferry dump \
                         --restart` to dump the table again, or dump to another URL",
                        table.source
                    ),
                }
                .into());
            }
            found
        }
        _ => fresh,
    };
    Ok(Planned {
        manifest,
        plan,
        task_ctx: planned.task_ctx,
        counters: planned.counters,
        schema,
    })
}

/// Shared state of one table's dump workers.
struct DumpProgress {
    pending: Vec<usize>,
    next: AtomicUsize,
    manifest: Mutex<Manifest>,
    report: Mutex<TableReport>,
    run: Arc<RunProgress>,
    table: Arc<TableProgress>,
}

async fn dump_table_inner(
    config: &Config,
    table: &TableConfig,
    session: &Arc<Session>,
    dir: &TableLocation,
    options: DumpOptions,
    run: &Arc<RunProgress>,
    report: &mut TableReport,
) -> Result<()> {
    if options.restart {
        tracing::info!(table = %table.source, to = %dir.url(), "--restart: deleting what an earlier dump staged");
        dir.clear().await?;
    }
    let planned = plan_dump(config, table, session, dir, options.raw).await?;
    let manifest = planned.manifest;
    // The split plan is fixed before the first split: a resumed dump reads the same ranges.
    dir.write_manifest(&manifest).await?;
    let keep: BTreeSet<String> = manifest.files().map(|f| f.path.clone()).collect();
    let removed = dir.remove_strays(&keep).await?;
    if !removed.is_empty() {
        tracing::info!(table = %table.source, files = removed.len(), "deleted files of splits an earlier dump did not finish");
    }
    let pending: Vec<usize> = manifest
        .splits
        .iter()
        .filter(|s| !s.done)
        .map(|s| s.index)
        .collect();
    let total = manifest.splits.len() as u64;
    report.units_total = total;
    report.units_skipped = total - pending.len() as u64;
    report.units_done = report.units_skipped;
    report.rows_written_before = manifest.rows;
    report.unit_semantics = if manifest.whole_table {
        UnitSemantics::WholeTable
    } else {
        UnitSemantics::Split
    };
    if report.units_skipped > 0 {
        tracing::info!(table = %table.source, splits = report.units_skipped, "resuming: skipping the splits the manifest lists as done");
    }
    let live = run.table(
        format!("{} -> {}", table.source, dir.url()),
        total,
        report.units_skipped,
    );
    let workers = config.run.connections.min(pending.len()).max(1);
    tracing::info!(table = %table.source, to = %dir.url(), splits = pending.len(), workers, "dumping table");
    let progress = Arc::new(DumpProgress {
        pending,
        next: AtomicUsize::new(0),
        manifest: Mutex::new(manifest),
        report: Mutex::new(std::mem::take(report)),
        run: Arc::clone(run),
        table: Arc::clone(&live),
    });
    let plan = Arc::new(planned.plan);
    let options = Arc::new(WriteOptions::new(&config.staging));
    let handles: Vec<_> = (0..workers)
        .map(|_| {
            let (plan, progress, options) = (
                Arc::clone(&plan),
                Arc::clone(&progress),
                Arc::clone(&options),
            );
            let (task_ctx, schema) = (Arc::clone(&planned.task_ctx), Arc::clone(&planned.schema));
            let (dir, source) = (dir.clone(), table.source.clone());
            let attempts = config.run.unit_attempts;
            tokio::spawn(async move {
                let job = DumpJob {
                    plan: &plan,
                    task_ctx: &task_ctx,
                    schema: &schema,
                    dir: &dir,
                    options: &options,
                    source: &source,
                    attempts,
                };
                dump_worker(&job, &progress).await
            })
        })
        .collect();
    let mut results = Vec::with_capacity(handles.len());
    for handle in handles {
        results.push(
            handle
                .await
                .unwrap_or_else(|e| Err(PipelineError::Worker(e.to_string()))),
        );
    }
    live.finish();
    *report = std::mem::take(&mut *progress.report.lock().await);
    report.source_rows = planned.counters.rows.load(Ordering::Relaxed);
    report.empty_values = planned.counters.empty_values.load(Ordering::Relaxed);
    results.into_iter().collect::<Result<Vec<()>>>()?;
    if report.units_done < report.units_total {
        if run.stopped() {
            return Err(PipelineError::Interrupted {
                units_left: report.units_total - report.units_done,
            });
        }
        return Err(PipelineError::Worker(format!(
            "{} splits of {} were not dumped",
            report.units_total - report.units_done,
            table.source
        )));
    }
    // Files a failed attempt of a split left beside its retry's.
    let manifest = progress.manifest.lock().await;
    let keep: BTreeSet<String> = manifest.files().map(|f| f.path.clone()).collect();
    dir.remove_strays(&keep).await?;
    tracing::info!(table = %table.source, rows = manifest.rows, bytes = manifest.bytes, "table dumped");
    Ok(())
}

/// What every split of a table's dump shares.
struct DumpJob<'a> {
    plan: &'a Arc<dyn ExecutionPlan>,
    task_ctx: &'a Arc<TaskContext>,
    schema: &'a arrow::datatypes::SchemaRef,
    dir: &'a TableLocation,
    options: &'a WriteOptions,
    source: &'a str,
    attempts: u32,
}

async fn dump_worker(job: &DumpJob<'_>, progress: &DumpProgress) -> Result<()> {
    loop {
        if progress.run.stopped() {
            return Ok(());
        }
        let next = progress.next.fetch_add(1, Ordering::SeqCst);
        let Some(&split) = progress.pending.get(next) else {
            return Ok(());
        };
        let staged = match dump_split_with_retries(job, split, progress).await {
            Ok(staged) => staged,
            Err(e) => {
                progress.next.store(usize::MAX / 2, Ordering::SeqCst);
                return Err(PipelineError::Unit {
                    table: job.source.to_string(),
                    split,
                    source: Box::new(e),
                });
            }
        };
        let (rows, bytes, files) = (staged.rows, staged.bytes, staged.files.len());
        {
            // One writer of the manifest at a time; it lists this split once the put returns.
            let mut manifest = progress.manifest.lock().await;
            manifest.split_done(split, staged);
            job.dir.write_manifest(&manifest).await?;
        }
        tracing::info!(table = %job.source, split, rows, bytes, files, "split dumped");
        progress.table.unit_committed(rows, 0);
        let mut report = progress.report.lock().await;
        report.units_done += 1;
        report.rows_read += rows;
        report.rows_written += rows;
        report.parquet_bytes += bytes;
    }
}

async fn dump_split_with_retries(
    job: &DumpJob<'_>,
    split: usize,
    progress: &DumpProgress,
) -> Result<StagedSplit> {
    let mut delay = Duration::from_millis(200);
    let mut attempt = 1;
    loop {
        let result = async {
            let batches = job.plan.execute(split, Arc::clone(job.task_ctx))?;
            Ok::<_, PipelineError>(
                write_split(job.dir, split, job.schema, batches, job.options).await?,
            )
        }
        .await;
        match result {
            Err(e) if e.is_retriable() && attempt < job.attempts => {
                tracing::warn!(table = %job.source, split, attempt, error = %e, "split failed, retrying");
                progress.report.lock().await.unit_retries += 1;
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Adds to `config.tables` every staged table its `[[keyspace]]` entries select, listed from
/// `location` (`ferry load`), then keeps only the tables `--tables` names.
pub async fn expand_staged_tables(config: &mut Config, location: &StagingLocation) -> Result<()> {
    if !config.keyspaces.is_empty() {
        expand_staged_keyspaces(config, location).await?;
    }
    config.select_tables().map_err(PipelineError::Argument)
}

/// Adds a `[[table]]` for every staged table a `[[keyspace]]` entry selects.
async fn expand_staged_keyspaces(config: &mut Config, location: &StagingLocation) -> Result<()> {
    let mut listing: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for name in location.tables().await? {
        if let Some((keyspace, table)) = name.split_once('.') {
            listing
                .entry(keyspace.to_string())
                .or_default()
                .push(table.to_string());
        }
    }
    let path = config.path.clone();
    let invalid = |message: String| PipelineError::Config { path, message };
    if let Some(k) = config
        .keyspaces
        .iter()
        .find(|k| !listing.contains_key(&k.name))
    {
        return Err(PipelineError::Config {
            path: config.path.clone(),
            message: format!(
                "[[keyspace]] `{}`: none of its tables is staged at {location}",
                k.name
            ),
        });
    }
    config.expand_keyspaces(&listing).map_err(invalid)
}

/// Opens and checks the staged data of every table of `config` at `location` (manifests and
/// file footers), before any table is loaded.
pub async fn open_staged_tables(
    config: &Config,
    location: &StagingLocation,
) -> Result<BTreeMap<String, Arc<StagedTable>>> {
    let mut tables = BTreeMap::new();
    for table in &config.tables {
        if tables.contains_key(&table.source) {
            continue;
        }
        let staged = StagedTable::open(location.table(&table.source)).await?;
        tables.insert(table.source.clone(), Arc::new(staged));
    }
    Ok(tables)
}
