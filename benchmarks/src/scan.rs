//! `ferry-bench scan`: Ferry's scan (pages decoded into Arrow) against a driver-only loop that
//! fetches the same pages of the same splits and decodes nothing. The ratio is what decoding
//! costs on top of what Cassandra itself needs to serve the data.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use arrow::array::RecordBatch;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;
use ferry_connectors::cassandra::CassandraTable;
use ferry_connectors::cassandra::routing::ReplicaRouting;
use futures::{StreamExt, TryStreamExt, stream};
use scylla::client::session::Session;
use scylla::response::{PagingState, PagingStateResponse};

use crate::args::{BenchArgs, SourceArgs};
use crate::datagen::Shape;
use crate::report::{Figure, ScenarioReport, median, peak_rss_mb};
use crate::setup::BenchSource;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

pub use crate::report::Pass;

/// Fetches every page of every split with the driver and counts rows, decoding nothing.
pub async fn fetch_only(
    session: &Arc<Session>,
    table: &CassandraTable,
    page_size: i32,
    concurrency: usize,
) -> Result<Pass, BoxError> {
    // Exactly the statement Ferry's scan runs, so both sides fetch the same pages.
    let cql = table.scan_exec(None, None).await?.cql().to_string();
    let mut statement = session.prepare(cql).await?;
    statement.set_page_size(page_size);
    let started = Instant::now();
    let totals: Vec<(u64, u64)> = stream::iter(table.splits().iter().cloned())
        .map(|split| {
            let mut statement = statement.clone();
            let ids: Vec<_> = split.replicas.iter().map(|r| r.host_id).collect();
            statement
                .set_load_balancing_policy(Some(Arc::new(ReplicaRouting::new(&ids, split.index))));
            let session = Arc::clone(session);
            let task = tokio::spawn(async move {
                let (mut rows, mut bytes) = (0u64, 0u64);
                for range in &split.ranges {
                    let mut paging = PagingState::start();
                    loop {
                        let (result, next) = session
                            .execute_single_page(&statement, (range.start, range.end), paging)
                            .await?;
                        let result = result.into_rows_result()?;
                        rows += result.rows_num() as u64;
                        bytes += result.rows_bytes_size() as u64;
                        match next {
                            PagingStateResponse::HasMorePages { state } => paging = state,
                            PagingStateResponse::NoMorePages => break,
                        }
                    }
                }
                Ok::<_, BoxError>((rows, bytes))
            });
            async move { task.await? }
        })
        .buffer_unordered(concurrency)
        .try_collect()
        .await?;
    Ok(Pass {
        rows: totals.iter().map(|t| t.0).sum(),
        bytes: totals.iter().map(|t| t.1).sum(),
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Reads every partition of Ferry's scan, decoding every page into Arrow.
pub async fn ferry_scan(table: &CassandraTable, concurrency: usize) -> Result<Pass, BoxError> {
    let exec = Arc::new(table.scan_exec(None, None).await?);
    let ctx = SessionContext::new().task_ctx();
    let counters = table.counters();
    let bytes_before = counters.bytes.load(Ordering::Relaxed);
    let started = Instant::now();
    let rows: Vec<u64> = stream::iter(0..table.splits().len())
        .map(|k| {
            let (exec, ctx) = (Arc::clone(&exec), Arc::clone(&ctx));
            // Each split on a task of its own, as the runner's workers are.
            let task = tokio::spawn(async move {
                let mut batches = exec.execute(k, ctx)?;
                let mut rows = 0u64;
                while let Some(batch) = batches.next().await {
                    rows += batch?.num_rows() as u64;
                }
                Ok::<_, BoxError>(rows)
            });
            async move { task.await? }
        })
        .buffer_unordered(concurrency)
        .try_collect()
        .await?;
    Ok(Pass {
        rows: rows.iter().sum(),
        bytes: counters.bytes.load(Ordering::Relaxed) - bytes_before,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Reads every split of Ferry's scan once and keeps its batches: element k holds split k's.
pub async fn collect_splits(
    table: &CassandraTable,
    concurrency: usize,
) -> Result<Vec<Vec<RecordBatch>>, BoxError> {
    let exec = Arc::new(table.scan_exec(None, None).await?);
    let ctx = SessionContext::new().task_ctx();
    stream::iter(0..table.splits().len())
        .map(|k| {
            let (exec, ctx) = (Arc::clone(&exec), Arc::clone(&ctx));
            let task = tokio::spawn(async move {
                let batches: Vec<RecordBatch> = exec.execute(k, ctx)?.try_collect().await?;
                Ok::<_, BoxError>(batches)
            });
            async move { task.await? }
        })
        // `buffered`, not `buffer_unordered`: the result is in split order.
        .buffered(concurrency.max(1))
        .try_collect()
        .await
}

#[derive(Debug, clap::Args)]
pub struct ScanArgs {
    #[command(flatten)]
    pub bench: BenchArgs,
    /// Table shape.
    #[arg(long, value_enum, default_value = "mixed")]
    pub shape: Shape,
    /// Splits to read.
    #[arg(long, default_value_t = 32)]
    pub splits: usize,
    /// Splits read at once.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    #[command(flatten)]
    pub source: SourceArgs,
}

/// Runs the scenario.
pub async fn run(args: ScanArgs) -> Result<(), BoxError> {
    let source = BenchSource::open(&args.source, args.shape, args.bench.rows).await?;
    let session = &source.session;

    let (mut fetch, mut ferry) = (Vec::new(), Vec::new());
    // Warm-up pass, so neither side pays for a cold page cache.
    let scan_table = source.scan(args.splits, args.source.page_size).await?;
    fetch_only(
        session,
        &scan_table,
        args.source.page_size,
        args.concurrency,
    )
    .await?;
    for _ in 0..args.bench.runs.max(1) {
        // Alternate the two, so drift on a shared machine hits both alike.
        fetch.push(
            fetch_only(
                session,
                &scan_table,
                args.source.page_size,
                args.concurrency,
            )
            .await?,
        );
        ferry.push(ferry_scan(&scan_table, args.concurrency).await?);
    }
    for (name, passes) in [("fetch-only", &fetch), ("ferry", &ferry)] {
        if let Some(bad) = passes.iter().find(|p| p.rows != args.bench.rows) {
            return Err(format!(
                "{name} read {} rows, expected {}",
                bad.rows, args.bench.rows
            )
            .into());
        }
    }
    let figure = |name: &str, passes: &[Pass]| Figure::from_passes(name, passes, peak_rss_mb());
    let mut report = ScenarioReport::new("scan", args.bench.rows);
    report.figures.push(figure("fetch-only", &fetch));
    report.figures.push(figure("ferry", &ferry));
    let ratios: Vec<f64> = fetch
        .iter()
        .zip(&ferry)
        .map(|(a, f)| (f.rows as f64 / f.seconds) / (a.rows as f64 / a.seconds))
        .collect();
    report
        .ratios
        .insert("ferry/fetch-only".into(), median(&ratios));
    report.notes.push(format!(
        "shape {:?}, {} splits, {} at once, page size {}, {} runs each (medians), one warm-up fetch pass; \
         peak RSS is the whole process's",
        args.shape, scan_table.splits().len(), args.concurrency, args.source.page_size, args.bench.runs
    ));
    report.publish(args.bench.json.as_deref())?;
    Ok(())
}
