//! The runner: a queue of work units per table and M workers, each owning one target connection.
//!
//! A worker takes unit k, executes partition k of the table's plan and streams it through the
//! COPY encoder inside one transaction. A unit that fails with a retriable error is rolled back
//! and retried on a fresh connection, which the run's [`Placement`] puts on a server that is
//! up; any other failure stops the table.
//!
//! Each unit's checkpoint row commits with its COPY (see [`crate::checkpoint`]): running the
//! same config again resumes, skipping the committed units, and loads every row exactly once.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ferry_connectors::cassandra;
use ferry_connectors::yugabyte::{self, PlacedClient, PlacedConnection, Placement, UnitOutcome};
use tokio::sync::Mutex;

use crate::checkpoint::{self, Checkpoints, UnitRecord};
use crate::config::{Config, TableConfig, WriteMode};
use crate::error::{PipelineError, Result};
use crate::plan::{TablePlan, plan_table};
use crate::rejects::RejectFiles;
use crate::report::{Report, TableReport};
use crate::schema::create_missing_table;

/// Runs `migrate` for every table of `config`, in order, and reports.
pub async fn migrate(config: &Config) -> Report {
    let started = Instant::now();
    let config = Arc::new(config.clone());
    let mut tables = Vec::new();
    let mut error = None;
    // One placement for the whole run: connections are counted across its tables.
    let connected = async {
        let placement = Placement::new(&config.target).map_err(|e| e.to_string())?;
        let session = cassandra::connect(&config.source)
            .await
            .map_err(|e| e.to_string())?;
        let client = placement.connect().await.map_err(|e| e.to_string())?;
        checkpoint::ensure_schema(&client)
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>((session, placement))
    }
    .await;
    match connected {
        Err(e) => error = Some(e),
        Ok((session, placement)) => {
            for table in &config.tables {
                let report = migrate_table(&config, table, &session, &placement).await;
                let failed = report.error.is_some();
                tables.push(report);
                if failed {
                    break;
                }
            }
        }
    }
    if error.is_none() {
        error = tables.iter().find_map(|t| t.error.clone());
    }
    Report::new("migrate", started.elapsed().as_secs_f64(), tables, error)
}

async fn migrate_table(
    config: &Arc<Config>,
    table: &TableConfig,
    session: &Arc<scylla::client::session::Session>,
    placement: &Arc<Placement>,
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
        if table.create_tables(&config.run) {
            create_missing_table(config, table, session, &client).await?;
        }
        if config.run.fresh {
            checkpoints.forget(&client).await?;
            RejectFiles::new(config, table).forget().await?;
        }
        let plan = Arc::new(plan_table(config, table, session, &client, &checkpoints).await?);
        let committed = checkpoints.committed(&client).await?;
        if !committed.is_empty() {
            tracing::info!(table = %table.source, run = %config.run.id, units = committed.len(), "resuming: skipping committed units");
        }
        report.units_skipped = committed.len() as u64;
        report.rows_written_before = committed.values().map(|r| r.rows_written).sum();
        let pending: Vec<usize> = (0..plan.units())
            .filter(|u| !committed.contains_key(u))
            .collect();
        run_units(config, &plan, &checkpoints, pending, placement, client, &mut report).await
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
    /// The units left to run, and the position of the next one to hand out.
    pending: Vec<usize>,
    next: AtomicUsize,
    report: Mutex<TableReport>,
}

async fn run_units(
    config: &Arc<Config>,
    plan: &Arc<TablePlan>,
    checkpoints: &Checkpoints,
    pending: Vec<usize>,
    placement: &Arc<Placement>,
    first_client: PlacedClient,
    report: &mut TableReport,
) -> Result<()> {
    report.units_total = plan.units() as u64;
    report.units_done = report.units_skipped;
    let units = pending.len();
    tracing::info!(
        table = %plan.source,
        target = %plan.target.qualified(),
        units,
        connections = config.run.connections.min(units),
        split_aligned = plan.split_aligned,
        "starting table"
    );
    let progress = Arc::new(Progress {
        pending,
        next: AtomicUsize::new(0),
        report: Mutex::new(std::mem::take(report)),
    });
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
    *report = std::mem::take(&mut *progress.report.lock().await);
    report.source_rows = plan.counters.rows.load(Ordering::Relaxed);
    report.empty_values = plan.counters.empty_values.load(Ordering::Relaxed);
    results.into_iter().collect::<Result<Vec<()>>>()?;
    Ok(())
}

async fn worker(
    config: &Config,
    plan: &TablePlan,
    checkpoints: &Checkpoints,
    mut client: PlacedConnection,
    progress: &Progress,
) -> Result<()> {
    loop {
        let next = progress.next.fetch_add(1, Ordering::SeqCst);
        let Some(&unit) = progress.pending.get(next) else {
            return Ok(());
        };
        let outcome =
            run_unit_with_retries(config, plan, checkpoints, unit, &mut client, progress).await;
        let outcome = match outcome {
            Ok(Some(o)) => o,
            Ok(None) => {
                tracing::info!(table = %plan.source, split = unit, "unit already committed by another worker");
                continue;
            }
            Err(e) => {
                // Stop handing out units: the table has failed.
                progress.next.store(usize::MAX / 2, Ordering::SeqCst);
                return Err(PipelineError::Unit {
                    table: plan.source.clone(),
                    split: unit,
                    source: Box::new(e),
                });
            }
        };
        tracing::info!(
            table = %plan.source,
            split = unit,
            rows = outcome.rows_written,
            rejected = outcome.rejects.len(),
            truncated = outcome.truncated,
            "unit committed"
        );
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
            progress.next.store(usize::MAX / 2, Ordering::SeqCst);
            return Err(PipelineError::TooManyRejects {
                table: plan.source.clone(),
                rejected: report.rows_rejected,
                max,
            });
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
        let result = run_unit(plan, checkpoints, unit, client).await;
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
    unit: usize,
    client: &mut PlacedConnection,
) -> Result<Option<UnitOutcome>> {
    let client = client.client().await?;
    let pg_err = |what: &str| {
        let what = format!("{what} of unit {unit}");
        move |source| ferry_connectors::ConnectorError::Postgres { what, source }
    };
    if plan.mode == WriteMode::Fast {
        return run_unit_fast(plan, checkpoints, unit, client).await;
    }
    let tx = client.transaction().await.map_err(pg_err("BEGIN"))?;
    let batches = plan.plan.execute(unit, Arc::clone(&plan.task_ctx))?;
    let (tx, outcome) = match yugabyte::write_unit(&tx, &plan.encoder, batches).await {
        Ok(outcome) => (tx, outcome),
        Err(e) if e.is_data_refusal() => {
            // Some rows are refused by the target: load the unit again, finding them.
            tracing::warn!(table = %plan.source, split = unit, error = %e, "the target refused rows; loading the unit again row range by row range");
            tx.rollback().await.map_err(pg_err("ROLLBACK"))?;
            let mut tx = client.transaction().await.map_err(pg_err("BEGIN"))?;
            let batches = plan.plan.execute(unit, Arc::clone(&plan.task_ctx))?;
            let outcome = yugabyte::write_unit_isolating(&mut tx, &plan.encoder, batches).await?;
            (tx, outcome)
        }
        Err(e) => return Err(e.into()),
    };
    let record = UnitRecord {
        rows_read: outcome.rows_read,
        rows_written: outcome.rows_written,
        rows_rejected: outcome.rejects.len() as u64,
        copy_bytes: outcome.bytes,
    };
    if !checkpoints.record(&tx, unit, &record).await? {
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
async fn run_unit_fast(
    plan: &TablePlan,
    checkpoints: &Checkpoints,
    unit: usize,
    client: &mut tokio_postgres::Client,
) -> Result<Option<UnitOutcome>> {
    let pg_err = |what: &str| {
        let what = format!("{what} of unit {unit}");
        move |source| ferry_connectors::ConnectorError::Postgres { what, source }
    };
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
    };
    if !checkpoints.record(&*client, unit, &record).await? {
        tracing::info!(table = %plan.source, split = unit, "unit was already recorded; its rows were upserted again");
    }
    Ok(Some(outcome))
}
