//! The runner: a queue of work units per table and M workers, each owning one target connection.
//!
//! A worker takes unit k, executes partition k of the table's plan and streams it through the
//! COPY encoder inside one transaction. A unit that fails with a retriable error is rolled back
//! and retried on a fresh connection, which the run's [`Placement`] puts on a server that is
//! up; any other failure stops the table.
//!
//! Each unit's checkpoint row commits with its COPY (see [`crate::checkpoint`]): running the
//! same config again resumes, skipping the committed units, and loads every row exactly once.
//!
//! `migrate` reads the rows from Cassandra; `load` reads them from staged Parquet files (see
//! [`crate::stage`]). Only planning differs: the runner, checkpoints and rejects are the same.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ferry_connectors::cassandra;
use ferry_connectors::staging::{StagedTable, StagingLocation};
use ferry_connectors::yugabyte::{self, PlacedClient, PlacedConnection, Placement, UnitOutcome};
use scylla::client::session::Session;
use tokio::sync::Mutex;

use crate::checkpoint::{self, Checkpoints, RunStatus, UnitRecord};
use crate::config::{Config, TableConfig, WriteMode};
use crate::error::{PipelineError, Result};
use crate::lease::Leases;
use crate::plan::{TablePlan, expand_tables, plan_staged_table, plan_table};
use crate::progress::{RunProgress, TableProgress};
use crate::rejects::RejectFiles;
use crate::report::{Report, TableReport, UnitSemantics};
use crate::schema::{create_missing_staged_table, create_missing_table};
use crate::stage::{expand_staged_tables, open_staged_tables};

/// Runs `migrate` for every table of `config`, in order, and reports.
pub async fn migrate(config: &Config) -> Report {
    migrate_with(config, Arc::new(RunProgress::default())).await
}

/// [`migrate`], updating `progress` as units commit; once [`RunProgress::stop`] is called, no
/// new unit starts and the report says the run was interrupted.
pub async fn migrate_with(config: &Config, progress: Arc<RunProgress>) -> Report {
    run_tables(config, RowsFrom::Cassandra, progress).await
}

/// Runs `load` for every table of `config` from the staged data at `location`, in order, and
/// reports: the same units, checkpoints and rejects as `migrate`, with no Cassandra involved.
pub async fn load_with(
    config: &Config,
    location: StagingLocation,
    progress: Arc<RunProgress>,
) -> Report {
    run_tables(config, RowsFrom::Staged(location), progress).await
}

/// Where a run reads its rows.
enum RowsFrom {
    Cassandra,
    Staged(StagingLocation),
}

/// The rows of the run's tables, ready to plan.
enum TableSource {
    Cassandra(Arc<Session>),
    /// Every table's staged data, opened and checked before any table starts.
    Staged(BTreeMap<String, Arc<StagedTable>>),
}

async fn run_tables(config: &Config, from: RowsFrom, progress: Arc<RunProgress>) -> Report {
    let started = Instant::now();
    let command = match from {
        RowsFrom::Cassandra => "migrate",
        RowsFrom::Staged(_) => "load",
    };
    let mut config = config.clone();
    let mut tables = Vec::new();
    let mut error = None;
    // One placement for the whole run: connections are counted across its tables.
    let connected = async {
        let placement = Placement::new(&config.target).map_err(|e| e.to_string())?;
        let source = match from {
            RowsFrom::Cassandra => {
                let session = cassandra::connect(&config.source)
                    .await
                    .map_err(|e| e.to_string())?;
                expand_tables(&mut config, &session)
                    .await
                    .map_err(|e| e.to_string())?;
                TableSource::Cassandra(session)
            }
            RowsFrom::Staged(location) => {
                expand_staged_tables(&mut config, &location)
                    .await
                    .map_err(|e| e.to_string())?;
                // Every table's staged data is checked before any row moves.
                let staged = open_staged_tables(&config, &location)
                    .await
                    .map_err(|e| e.to_string())?;
                TableSource::Staged(staged)
            }
        };
        let mut client = placement.connect().await.map_err(|e| e.to_string())?;
        checkpoint::ensure_schema(&client)
            .await
            .map_err(|e| e.to_string())?;
        if config.run.restart {
            restart(&config, &mut client)
                .await
                .map_err(|e| e.to_string())?;
        }
        let config_path = config.path.display().to_string();
        checkpoint::run_started(&client, &config.run.id, &config_path)
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>((source, placement, client))
    }
    .await;
    let config = Arc::new(config);
    let mut state_client = None;
    let leases = Leases::new(
        &config.run.id,
        config.run.worker.clone(),
        Duration::from_secs(config.run.lease_s),
    );
    let (renewal_done, renewal_stop) = tokio::sync::watch::channel(false);
    match connected {
        Err(e) => error = Some(e),
        Ok((source, placement, client)) => {
            state_client = Some(client);
            tracing::info!(worker = %leases.worker_id(), run = %config.run.id, "worker started");
            let renewal =
                tokio::spawn(Arc::clone(&leases).renew_until(Arc::clone(&placement), renewal_stop));
            for table in &config.tables {
                if progress.stopped() {
                    break;
                }
                let report =
                    migrate_table(&config, table, &source, &placement, &progress, &leases).await;
                let failed = report.error.is_some();
                tables.push(report);
                if failed {
                    break;
                }
            }
            let _ = renewal_done.send(true);
            let _ = renewal.await;
        }
    }
    let interrupted = progress.stopped();
    if error.is_none() {
        error = tables.iter().find_map(|t| t.error.clone());
    }
    if error.is_none() && interrupted && tables.len() < config.tables.len() {
        error = Some(INTERRUPTED.to_string());
    }
    if let Some(client) = state_client {
        let status = match (&error, interrupted) {
            (None, _) => RunStatus::Finished,
            (Some(_), true) => RunStatus::Interrupted,
            (Some(_), false) => RunStatus::Failed,
        };
        if let Err(e) =
            checkpoint::run_ended(&client, &config.run.id, status, error.as_deref()).await
        {
            tracing::warn!(error = %e, "could not record the end of the run in ferry_state.runs");
        }
    }
    let mut report = Report::new(command, started.elapsed().as_secs_f64(), tables, error);
    report.interrupted = interrupted;
    report
}

pub(crate) const INTERRUPTED: &str = "interrupted (Ctrl-C or SIGTERM): units in flight finished or rolled back; run the same \
     command again to resume";

/// `--restart`: empties every target table of the run and forgets its progress, before any
/// table starts, so that a restart killed halfway is still a restart when run again.
async fn restart(config: &Config, client: &mut PlacedClient) -> Result<()> {
    for table in &config.tables {
        let (schema, name) = table.target_parts(&config.target.schema);
        tracing::info!(target = %format!("{schema}.{name}"), run = %config.run.id, "--restart: emptying the target table and forgetting its progress");
        Checkpoints::new(&config.run.id, schema, name)
            .restart(client)
            .await?;
        RejectFiles::new(config, table).forget().await?;
    }
    checkpoint::forget_run(client, &config.run.id).await
}

async fn migrate_table(
    config: &Arc<Config>,
    table: &TableConfig,
    source: &TableSource,
    placement: &Arc<Placement>,
    run: &Arc<RunProgress>,
    leases: &Arc<Leases>,
) -> TableReport {
    let started = Instant::now();
    let (schema, name) = table.target_parts(&config.target.schema);
    let mut report = TableReport {
        source: table.source.clone(),
        target: format!("{schema}.{name}"),
        ..Default::default()
    };
    let checkpoints = Checkpoints::new(&config.run.id, schema, name);
    let result = async {
        let client = placement.connect().await?;
        let plan = match source {
            TableSource::Cassandra(session) => {
                if table.create_tables(&config.run) {
                    create_missing_table(config, table, session, &client).await?;
                }
                plan_table(config, table, session, &client, &checkpoints).await?
            }
            TableSource::Staged(staged) => {
                let staged = staged.get(&table.source).cloned().ok_or_else(|| {
                    PipelineError::Worker(format!("{} was not opened", table.source))
                })?;
                if table.create_tables(&config.run) {
                    create_missing_staged_table(config, table, &staged, &client).await?;
                }
                plan_staged_table(config, table, staged, &client, &checkpoints).await?
            }
        };
        let plan = Arc::new(plan);
        let committed = checkpoints.committed(&client).await?;
        if !committed.is_empty() {
            tracing::info!(table = %table.source, run = %config.run.id, units = committed.len(), "resuming: skipping committed units");
        }
        report.units_skipped = committed.len() as u64;
        report.rows_written_before = committed.values().map(|r| r.rows_written).sum();
        leases
            .prepare(&client, checkpoints.key(), plan.units())
            .await?;
        let pending = plan.units() - committed.len();
        report.unit_semantics = if plan.split_aligned {
            UnitSemantics::Split
        } else {
            UnitSemantics::WholeTable
        };
        report.units_total = plan.units() as u64;
        report.units_done = report.units_skipped;
        let live = run.table(
            format!("{} -> {}", table.source, report.target),
            report.units_total,
            report.units_skipped,
        );
        let progress = Progress {
            pending,
            failed: AtomicBool::new(false),
            report: Mutex::new(std::mem::take(&mut report)),
            run: Arc::clone(run),
            table: Arc::clone(&live),
            leases: Arc::clone(leases),
            busy_ns: AtomicU64::new(0),
        };
        let lease_spent = leases.spent();
        let result = run_units(config, &plan, &checkpoints, placement, client, progress).await;
        live.finish();
        let (result, done) = result;
        report = done;
        report.lease_s = (leases.spent() - lease_spent).as_secs_f64();
        // Other workers of the run may have committed units too: count them all.
        let state = placement.connect().await?;
        report.units_done = checkpoints.committed(&state).await?.len() as u64;
        result
    }
    .await;
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

/// Shared state of one table's workers.
struct Progress {
    /// Units not committed when the table started (by any worker of the run).
    pending: usize,
    /// Set when a unit failed for good: no worker of this process claims another.
    failed: AtomicBool,
    report: Mutex<TableReport>,
    /// The run's stop flag and this table's live counters.
    run: Arc<RunProgress>,
    table: Arc<TableProgress>,
    /// Where units are claimed.
    leases: Arc<Leases>,
    /// The workers' time on units, in nanoseconds (see [`TableReport::units_s`]).
    busy_ns: AtomicU64,
}

impl Progress {
    fn busy(&self, since: Instant) {
        self.busy_ns
            .fetch_add(since.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }
}

/// Runs the pending units of `progress` over M workers; returns how it ended and the table's
/// report.
async fn run_units(
    config: &Arc<Config>,
    plan: &Arc<TablePlan>,
    checkpoints: &Checkpoints,
    placement: &Arc<Placement>,
    first_client: PlacedClient,
    progress: Progress,
) -> (Result<()>, TableReport) {
    let units = progress.pending;
    tracing::info!(
        table = %plan.source,
        target = %plan.target.qualified(),
        units,
        connections = config.run.connections.min(units),
        split_aligned = plan.split_aligned,
        "starting table"
    );
    let progress = Arc::new(progress);
    let workers = config.run.connections.min(units).max(1);
    let mut first_client = Some(first_client);
    // Workers are tasks of their own, so decoding and COPY I/O run on every runtime thread.
    let handles: Vec<_> = (0..workers)
        .map(|_| {
            let (config, plan, progress) =
                (Arc::clone(config), Arc::clone(plan), Arc::clone(&progress));
            let checkpoints = checkpoints.clone();
            let client = PlacedConnection::new(Arc::clone(placement), first_client.take());
            tokio::spawn(
                async move { worker(&config, &plan, &checkpoints, client, &progress).await },
            )
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
    let mut report = std::mem::take(&mut *progress.report.lock().await);
    report.units_s = Duration::from_nanos(progress.busy_ns.load(Ordering::Relaxed)).as_secs_f64();
    report.source_rows = plan.counters.rows.load(Ordering::Relaxed);
    report.empty_values = plan.counters.empty_values.load(Ordering::Relaxed);
    let result = results
        .into_iter()
        .collect::<Result<Vec<()>>>()
        .and_then(|_| {
            if report.units_done < report.units_total && progress.run.stopped() {
                Err(PipelineError::Interrupted {
                    units_left: report.units_total - report.units_done,
                })
            } else {
                Ok(())
            }
        });
    (result, report)
}

async fn worker(
    config: &Config,
    plan: &TablePlan,
    checkpoints: &Checkpoints,
    mut client: PlacedConnection,
    progress: &Progress,
) -> Result<()> {
    let key = checkpoints.key();
    let leases = &progress.leases;
    loop {
        if progress.run.stopped() || progress.failed.load(Ordering::SeqCst) {
            return Ok(());
        }
        let Some(unit) = claim(config, plan, checkpoints, &mut client, progress).await? else {
            return Ok(());
        };
        let started = Instant::now();
        let outcome =
            run_unit_with_retries(config, plan, checkpoints, unit, &mut client, progress).await;
        let outcome = match outcome {
            Ok(Some(o)) => o,
            Ok(None) => {
                leases
                    .drop_unit(client.client().await?, key, unit, false)
                    .await;
                continue;
            }
            Err(e) => {
                // Stop claiming units: the table has failed. Another worker may try this one.
                progress.failed.store(true, Ordering::SeqCst);
                if let Ok(c) = client.client().await {
                    leases.drop_unit(c, key, unit, true).await;
                }
                return Err(PipelineError::Unit {
                    table: plan.source.clone(),
                    split: unit,
                    source: Box::new(e),
                });
            }
        };
        if let Ok(c) = client.client().await {
            leases.drop_unit(c, key, unit, false).await;
        }
        progress.busy(started);
        tracing::info!(
            table = %plan.source,
            split = unit,
            rows = outcome.rows_written,
            rejected = outcome.rejects.len(),
            truncated = outcome.truncated,
            "unit committed"
        );
        progress
            .table
            .unit_committed(outcome.rows_written, outcome.rejects.len() as u64);
        for reject in &outcome.rejects {
            tracing::warn!(
                table = %plan.source, split = unit, row = reject.row,
                column = %reject.column, reason = %reject.reason, "row rejected"
            );
        }
        let file = (!outcome.rejects.is_empty()).then(|| plan.rejects.unit_path(unit));
        let mut report = progress.report.lock().await;
        report.add_unit(unit, &outcome, file);
        if let Some(max) = plan.max_rejects
            && report.rows_rejected > max
        {
            progress.failed.store(true, Ordering::SeqCst);
            return Err(PipelineError::TooManyRejects {
                table: plan.source.clone(),
                rejected: report.rows_rejected,
                max,
            });
        }
    }
}

/// Claims the next unit of the table for this worker. When none is free but some are leased
/// by live workers of other processes, waits: one of them may die, and its units come free when
/// their leases expire. `None` when nothing is left for this process.
async fn claim(
    config: &Config,
    plan: &TablePlan,
    checkpoints: &Checkpoints,
    client: &mut PlacedConnection,
    progress: &Progress,
) -> Result<Option<usize>> {
    let key = checkpoints.key();
    // Often enough that a worker whose last units other workers are finishing leaves soon after
    // they commit (one cheap query per poll), and sees an expired lease well within its term.
    let poll = Duration::from_secs(config.run.lease_s)
        .div_f64(6.0)
        .min(Duration::from_millis(250));
    let mut attempt = 1;
    loop {
        if progress.run.stopped() || progress.failed.load(Ordering::SeqCst) {
            return Ok(None);
        }
        let started = Instant::now();
        let result = async {
            let c = client.client().await?;
            if let Some(unit) = progress.leases.claim(c, key).await? {
                return Ok(Some(Some(unit)));
            }
            let left = progress.leases.remaining(c, key).await?;
            Ok::<_, PipelineError>(if left.leased_elsewhere > 0 {
                None // wait for them
            } else {
                // Nothing left, or only units in flight in this process.
                Some(None)
            })
        }
        .await;
        progress.busy(started);
        match result {
            Ok(Some(claimed)) => return Ok(claimed),
            Ok(None) => tokio::time::sleep(poll).await,
            Err(e) if e.is_retriable() && attempt < config.run.unit_attempts => {
                tracing::warn!(table = %plan.source, attempt, error = %e, "claiming a unit failed, retrying");
                client.failed();
                tokio::time::sleep(Duration::from_millis(200 << attempt.min(5))).await;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

async fn run_unit_with_retries(
    config: &Config,
    plan: &TablePlan,
    checkpoints: &Checkpoints,
    unit: usize,
    client: &mut PlacedConnection,
    progress: &Progress,
) -> Result<Option<UnitOutcome>> {
    let mut delay = Duration::from_millis(200);
    let mut attempt = 1;
    loop {
        // A retry runs on a new connection: take the lease again there first (another worker
        // may have taken the unit over meanwhile).
        if attempt > 1 {
            let c = client.client().await?;
            if !progress.leases.reclaim(c, checkpoints.key(), unit).await? {
                tracing::warn!(table = %plan.source, split = unit, "another worker took the unit over while it was retried; leaving it to that worker");
                return Ok(None);
            }
        }
        let result = run_unit(plan, checkpoints, &progress.leases, unit, client).await;
        match result {
            Err(e) if e.is_retriable() && attempt < config.run.unit_attempts => {
                tracing::warn!(table = %plan.source, split = unit, attempt, error = %e, "unit failed, retrying");
                progress.report.lock().await.unit_retries += 1;
                // The connection may be the problem: take a fresh one, placed elsewhere if
                // its server is gone.
                client.failed();
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Runs one unit in one transaction with its checkpoint; `None` when another worker committed
/// the unit first (nothing of this attempt stays).
async fn run_unit(
    plan: &TablePlan,
    checkpoints: &Checkpoints,
    leases: &Leases,
    unit: usize,
    client: &mut PlacedConnection,
) -> Result<Option<UnitOutcome>> {
    let started = Instant::now();
    let client = client.client().await?;
    let pg_err = |what: &str| {
        let what = format!("{what} of unit {unit}");
        move |source| ferry_connectors::ConnectorError::Postgres { what, source }
    };
    if plan.mode == WriteMode::Fast {
        return run_unit_fast(plan, checkpoints, leases, unit, client, started).await;
    }
    // Upsert mode copies into a temporary table of the transaction, merged before the checkpoint.
    let encoder = plan.upsert.as_ref().map_or(&plan.encoder, |u| u.encoder());
    let tx = client.transaction().await.map_err(pg_err("BEGIN"))?;
    if let Some(upsert) = &plan.upsert {
        upsert.stage(&tx).await?;
    }
    let batches = plan.plan.execute(unit, Arc::clone(&plan.task_ctx))?;
    let (mut tx, outcome) = match yugabyte::write_unit(&tx, encoder, batches).await {
        Ok(outcome) => (tx, outcome),
        Err(e) if e.is_data_refusal() => {
            // Some rows are refused by the target: load the unit again, finding them.
            tracing::warn!(table = %plan.source, split = unit, error = %e, "the target refused rows; loading the unit again row range by row range");
            tx.rollback().await.map_err(pg_err("ROLLBACK"))?;
            let mut tx = client.transaction().await.map_err(pg_err("BEGIN"))?;
            if let Some(upsert) = &plan.upsert {
                upsert.stage(&tx).await?;
            }
            let batches = plan.plan.execute(unit, Arc::clone(&plan.task_ctx))?;
            let outcome = yugabyte::write_unit_isolating(&mut tx, encoder, batches).await?;
            (tx, outcome)
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(upsert) = &plan.upsert {
        upsert.merge(&mut tx).await?;
    }
    let record = UnitRecord {
        rows_read: outcome.rows_read,
        rows_written: outcome.rows_written,
        rows_rejected: outcome.rejects.len() as u64,
        copy_bytes: outcome.bytes,
        elapsed_ms: started.elapsed().as_millis() as u64,
    };
    // The lease is checked last, under its row lock: a worker that stalled past its lease, while
    // another took the unit over, rolls back here, whether or not the other one committed yet.
    if !leases.confirm(&tx, checkpoints.key(), unit).await? {
        tracing::warn!(table = %plan.source, split = unit, worker = %leases.worker_id(), "this worker's lease on the unit expired and another worker took it over: rolling back");
        tx.rollback().await.map_err(pg_err("ROLLBACK"))?;
        return Ok(None);
    }
    if !checkpoints
        .record(&tx, unit, &record, leases.worker_id())
        .await?
    {
        tracing::info!(table = %plan.source, split = unit, "unit already committed by another worker: rolling back");
        tx.rollback().await.map_err(pg_err("ROLLBACK"))?;
        return Ok(None);
    }
    // Before the commit: a committed unit always has its reject file.
    plan.rejects.write_unit(unit, &outcome).await?;
    tx.commit().await.map_err(pg_err("COMMIT"))?;
    Ok(Some(outcome))
}

/// Fast mode: the COPY runs outside a transaction as YugabyteDB upserts, then the checkpoint is
/// recorded. A crash in between loads the unit again, which overwrites the same rows by key.
///
/// A whole-table unit (a transform that regroups rows across splits) is not made of the same
/// rows each time it is loaded, so every attempt first empties the target table (truncate on
/// retry): what an interrupted attempt left cannot stay beside the next one's rows.
async fn run_unit_fast(
    plan: &TablePlan,
    checkpoints: &Checkpoints,
    leases: &Leases,
    unit: usize,
    client: &mut tokio_postgres::Client,
    started: Instant,
) -> Result<Option<UnitOutcome>> {
    let pg_err = |what: &str| {
        let what = format!("{what} of unit {unit}");
        move |source| ferry_connectors::ConnectorError::Postgres { what, source }
    };
    if !plan.split_aligned {
        tracing::info!(table = %plan.source, target = %plan.target.qualified(), "whole-table unit in fast mode: emptying the target table first");
        client
            .batch_execute(&format!("TRUNCATE TABLE {}", plan.target.qualified()))
            .await
            .map_err(pg_err("TRUNCATE before the whole-table unit"))?;
    }
    client
        .batch_execute(yugabyte::FAST_MODE_SETTINGS)
        .await
        .map_err(pg_err("fast mode settings"))?;
    let batches = plan.plan.execute(unit, Arc::clone(&plan.task_ctx))?;
    let outcome = yugabyte::write_unit(&*client, &plan.encoder, batches).await?;
    plan.rejects.write_unit(unit, &outcome).await?;
    let record = UnitRecord {
        rows_read: outcome.rows_read,
        rows_written: outcome.rows_written,
        rows_rejected: outcome.rejects.len() as u64,
        copy_bytes: outcome.bytes,
        elapsed_ms: started.elapsed().as_millis() as u64,
    };
    if !leases.confirm(&*client, checkpoints.key(), unit).await? {
        tracing::warn!(table = %plan.source, split = unit, worker = %leases.worker_id(), "this worker's lease on the unit expired and another worker took it over; its upserts are the same rows, left to the other worker to record");
        return Ok(None);
    }
    if !checkpoints
        .record(&*client, unit, &record, leases.worker_id())
        .await?
    {
        tracing::info!(table = %plan.source, split = unit, "unit was already recorded; its rows were upserted again");
    }
    Ok(Some(outcome))
}
