//! The runner: a queue of work units per table and M workers, each owning one target connection.
//!
//! A worker takes unit k, executes partition k of the table's plan and streams it through the
//! COPY encoder inside one transaction. A unit that fails with a retriable error is rolled back
//! and retried on a fresh connection; any other failure stops the table.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ferry_connectors::cassandra;
use ferry_connectors::yugabyte::{self, UnitOutcome};
use tokio::sync::Mutex;
use tokio_postgres::Client;

use crate::config::{Config, TableConfig};
use crate::error::{PipelineError, Result};
use crate::plan::{TablePlan, plan_table};
use crate::report::{REJECT_SAMPLES, RejectRecord, Report, TableReport};

/// Runs `migrate` for every table of `config`, in order, and reports.
pub async fn migrate(config: &Config) -> Report {
    let started = Instant::now();
    let config = Arc::new(config.clone());
    let mut tables = Vec::new();
    let mut error = None;
    match cassandra::connect(&config.source).await {
        Err(e) => error = Some(e.to_string()),
        Ok(session) => {
            for table in &config.tables {
                let report = migrate_table(&config, table, &session).await;
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
) -> TableReport {
    let started = Instant::now();
    let (schema, name) = table.target_parts(&config.target.schema);
    let mut report = TableReport {
        source: table.source.clone(),
        target: format!("{schema}.{name}"),
        ..Default::default()
    };
    let result = async {
        let client = yugabyte::connect(&config.target).await?;
        let plan = Arc::new(plan_table(config, table, session, &client).await?);
        run_units(config, &plan, client, &mut report).await
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
    next_unit: AtomicUsize,
    report: Mutex<TableReport>,
}

async fn run_units(
    config: &Arc<Config>,
    plan: &Arc<TablePlan>,
    first_client: Client,
    report: &mut TableReport,
) -> Result<()> {
    let units = plan.units();
    report.units_total = units as u64;
    tracing::info!(
        table = %plan.source,
        target = %plan.target.qualified(),
        units,
        connections = config.run.connections.min(units),
        split_aligned = plan.split_aligned,
        "starting table"
    );
    let progress = Arc::new(Progress {
        next_unit: AtomicUsize::new(0),
        report: Mutex::new(std::mem::take(report)),
    });
    let workers = config.run.connections.min(units).max(1);
    let mut first_client = Some(first_client);
    // Workers are tasks of their own, so decoding and COPY I/O run on every runtime thread.
    let handles: Vec<_> = (0..workers)
        .map(|_| {
            let (config, plan, progress) =
                (Arc::clone(config), Arc::clone(plan), Arc::clone(&progress));
            let client = first_client.take();
            tokio::spawn(async move { worker(&config, &plan, client, &progress).await })
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
    mut client: Option<Client>,
    progress: &Progress,
) -> Result<()> {
    loop {
        let unit = progress.next_unit.fetch_add(1, Ordering::SeqCst);
        if unit >= plan.units() {
            return Ok(());
        }
        let outcome = run_unit_with_retries(config, plan, unit, &mut client, progress).await;
        let outcome = match outcome {
            Ok(o) => o,
            Err(e) => {
                // Stop handing out units: the table has failed.
                progress.next_unit.store(usize::MAX / 2, Ordering::SeqCst);
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
        let mut report = progress.report.lock().await;
        report.units_done += 1;
        report.rows_read += outcome.rows_read;
        report.rows_written += outcome.rows_written;
        report.rows_rejected += outcome.rejects.len() as u64;
        report.copy_bytes += outcome.bytes;
        report.truncated_values += outcome.truncated;
        for reject in outcome.rejects {
            tracing::warn!(
                table = %plan.source, split = unit, row = reject.row,
                column = %reject.column, reason = %reject.reason, "row rejected"
            );
            if report.rejects.len() < REJECT_SAMPLES {
                report.rejects.push(RejectRecord::new(unit, reject));
            }
        }
    }
}

async fn run_unit_with_retries(
    config: &Config,
    plan: &TablePlan,
    unit: usize,
    client: &mut Option<Client>,
    progress: &Progress,
) -> Result<UnitOutcome> {
    let mut delay = Duration::from_millis(200);
    let mut attempt = 1;
    loop {
        let result = run_unit(config, plan, unit, client).await;
        match result {
            Err(e) if e.is_retriable() && attempt < config.run.unit_attempts => {
                tracing::warn!(table = %plan.source, split = unit, attempt, error = %e, "unit failed, retrying");
                progress.report.lock().await.unit_retries += 1;
                // The connection may be the problem: take a fresh one.
                *client = None;
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
                attempt += 1;
            }
            other => return other,
        }
    }
}

async fn run_unit(
    config: &Config,
    plan: &TablePlan,
    unit: usize,
    client: &mut Option<Client>,
) -> Result<UnitOutcome> {
    if client.as_ref().is_none_or(Client::is_closed) {
        *client = Some(yugabyte::connect(&config.target).await?);
    }
    let client = client.as_mut().expect("connected above");
    let pg_err = |what: &str| {
        let what = format!("{what} of unit {unit}");
        move |source| ferry_connectors::ConnectorError::Postgres { what, source }
    };
    let tx = client.transaction().await.map_err(pg_err("BEGIN"))?;
    let batches = plan.plan.execute(unit, Arc::clone(&plan.task_ctx))?;
    let outcome = yugabyte::write_unit(&tx, &plan.encoder, batches).await?;
    tx.commit().await.map_err(pg_err("COMMIT"))?;
    Ok(outcome)
}
