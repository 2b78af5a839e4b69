//! `ferry-bench scale-out`: W workers sharing one run (DESIGN.md §4, unit leases in the run
//! state), each with C connections, against one worker with W × C connections, measured in the
//! same run on the same table; and the cost of leasing, from the workers' own accounting.
//!
//! The workers are W concurrent `migrate` calls in this process, each with its own worker id, its
//! own Cassandra session, target connections and lease renewal: what W `ferry migrate`
//! processes do, minus the process start. A pass is timed from the first worker's start to the
//! last one's end, so it includes the sessions' start on both sides. Each pass has a run id of
//! its own and starts from an empty target table.
//!
//! `workers-W/one-NcC`: W workers' rows/s over one worker's at the same total connection count.
//! `lease/unit`: the time the workers spent in lease statements (claims, the confirmation inside
//! the unit's transaction, drops) over their whole time on units, from the report's `lease_s`
//! and `units_s`; the goal is ≤ 5%.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use ferry_pipeline::Config;
use ferry_pipeline::checkpoint::{self, Checkpoints};
use ferry_pipeline::lease::WorkerIdentity;
use ferry_pipeline::progress::RunProgress;
use ferry_pipeline::report::Status;

use crate::args::{BenchArgs, SourceArgs};
use crate::datagen::Shape;
use crate::e2e::migrate_config;
use crate::load;
use crate::report::{Figure, Pass, ScenarioReport, median, peak_rss_mb};
use crate::setup::{self, BenchSource};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// `ferry-bench scale-out` arguments.
#[derive(Debug, clap::Args)]
pub struct ScaleOutArgs {
    #[command(flatten)]
    pub bench: BenchArgs,
    /// Worker counts, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 2, 3])]
    pub workers: Vec<usize>,
    /// Connections of each worker.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Splits (units) of the table.
    #[arg(long, default_value_t = 64)]
    pub splits: usize,
    #[command(flatten)]
    pub source: SourceArgs,
    /// The target database.
    #[arg(long, env = "FERRY_POSTGRES_URL")]
    pub url: String,
    /// The target table (`public.<name>`, created from the Cassandra table).
    #[arg(long, default_value = "ferry_bench_scaleout")]
    pub table: String,
}

/// The run ids of this scenario's passes start with this; they are forgotten at the end.
const RUN_PREFIX: &str = "ferry-bench-scaleout";

/// One pass of W workers: its rows/s and the workers' unit and lease time.
struct WorkersPass {
    pass: Pass,
    units_s: f64,
    lease_s: f64,
}

/// W workers of C connections each on one run, from an empty table; fails unless every row
/// arrived once, none was rejected and every worker did some of the work.
async fn workers_pass(
    args: &ScaleOutArgs,
    source: &str,
    admin: &tokio_postgres::Client,
    workers: usize,
    connections: usize,
    run_id: &str,
) -> Result<WorkersPass, BoxError> {
    load::truncate(admin, &args.table).await?;
    let mut configs = Vec::with_capacity(workers);
    for w in 0..workers {
        let mut config: Config = migrate_config(
            &args.source.cassandra,
            &args.url,
            source,
            &args.table,
            connections,
            args.splits,
            args.source.page_size,
        )?;
        config.run.id = run_id.to_string();
        config.run.restart = false;
        config.run.worker = WorkerIdentity::new(Some(format!("{run_id}-w{w}")), None);
        configs.push(config);
    }
    let started = Instant::now();
    let handles: Vec<_> = configs
        .into_iter()
        .map(|config| {
            tokio::spawn(async move {
                ferry_pipeline::migrate_with(&config, Arc::new(RunProgress::default())).await
            })
        })
        .collect();
    let mut reports = Vec::with_capacity(workers);
    for handle in handles {
        reports.push(handle.await?);
    }
    let seconds = started.elapsed().as_secs_f64();
    let (mut rows, mut bytes, mut units_s, mut lease_s) = (0, 0, 0.0, 0.0);
    for (w, report) in reports.iter().enumerate() {
        if report.status != Status::Ok {
            let why = report.error.as_deref().unwrap_or("no reason given");
            return Err(format!("worker {w} failed: {why}").into());
        }
        let t = report.tables.first().ok_or("a report has no table")?;
        if t.rows_rejected != 0 {
            return Err(format!("worker {w} rejected {} rows", t.rows_rejected).into());
        }
        if t.rows_written == 0 && workers > 1 {
            return Err(format!("worker {w} did no unit: the pass measures fewer workers").into());
        }
        rows += t.rows_written;
        bytes += t.copy_bytes;
        units_s += t.units_s;
        lease_s += t.lease_s;
    }
    if rows != args.bench.rows {
        return Err(format!(
            "the workers wrote {rows} rows, expected {}",
            args.bench.rows
        )
        .into());
    }
    load::check_rows(admin, &args.table, args.bench.rows, "the workers").await?;
    Ok(WorkersPass {
        pass: Pass {
            rows,
            bytes,
            seconds,
        },
        units_s,
        lease_s,
    })
}

pub async fn run(args: ScaleOutArgs) -> Result<(), BoxError> {
    load::check_table_name(&args.table)?;
    let counts: Vec<usize> = args.workers.iter().copied().filter(|&w| w > 0).collect();
    let max_w = counts.iter().copied().max().ok_or("--workers is empty")?;
    if args.splits < max_w * args.connections {
        return Err(format!(
            "--splits {} is less than {max_w} workers × {} connections: some connections would \
             have no unit",
            args.splits, args.connections
        )
        .into());
    }
    let qualified = BenchSource::open(&args.source, Shape::Mixed, args.bench.rows)
        .await?
        .qualified();
    let schema_config = migrate_config(
        &args.source.cassandra,
        &args.url,
        &qualified,
        &args.table,
        1,
        args.splits,
        args.source.page_size,
    )?;
    let admin = &setup::fresh_target(&args.url, &args.table, &schema_config).await?;

    let mut run_ids = Vec::new();
    let mut pass = |workers: usize, connections: usize, run: usize| {
        let id = format!("{RUN_PREFIX}-{workers}x{connections}-{run}");
        run_ids.push(id.clone());
        id
    };
    eprintln!("warm-up: one worker");
    let id = pass(1, args.connections, 0);
    workers_pass(&args, &qualified, admin, 1, args.connections, &id).await?;

    // Per worker count: the W-worker passes and the one-worker passes at W × C connections.
    let mut many: Vec<(usize, Vec<WorkersPass>)> = counts.iter().map(|&w| (w, vec![])).collect();
    let mut one: Vec<(usize, Vec<WorkersPass>)> = counts
        .iter()
        .filter(|&&w| w > 1)
        .map(|&w| (w, vec![]))
        .collect();
    for run in 1..=args.bench.runs.max(1) {
        // Alternate the sides within each run, so drift on a shared machine hits them alike.
        for (w, passes) in many.iter_mut() {
            let id = pass(*w, args.connections, run);
            let p = workers_pass(&args, &qualified, admin, *w, args.connections, &id).await?;
            eprintln!(
                "run {run}: {w} worker(s) × {}c: {:.0} rows/s, lease {:.2}% of unit time",
                args.connections,
                p.pass.rows_per_s(),
                100.0 * p.lease_s / p.units_s
            );
            passes.push(p);
            if let Some((_, singles)) = one.iter_mut().find(|(v, _)| v == w) {
                let m = *w * args.connections;
                let id = pass(1, m, run);
                let p = workers_pass(&args, &qualified, admin, 1, m, &id).await?;
                eprintln!(
                    "run {run}: 1 worker × {m}c: {:.0} rows/s",
                    p.pass.rows_per_s()
                );
                singles.push(p);
            }
        }
    }

    let mut report = ScenarioReport::new("scale-out", args.bench.rows);
    let rss = peak_rss_mb();
    let passes = |v: &[WorkersPass]| v.iter().map(|p| p.pass).collect::<Vec<_>>();
    let c = args.connections;
    for (w, side) in &many {
        report.figures.push(Figure::from_passes(
            format!("workers-{w}x{c}c"),
            &passes(side),
            rss,
        ));
        if let Some((_, singles)) = one.iter().find(|(v, _)| v == w) {
            let m = w * c;
            report.figures.push(Figure::from_passes(
                format!("one-{m}c"),
                &passes(singles),
                rss,
            ));
            let ratios: Vec<f64> = side
                .iter()
                .zip(singles)
                .map(|(a, b)| a.pass.rows_per_s() / b.pass.rows_per_s())
                .collect();
            let key = format!("workers-{w}/one-{m}c");
            report.ratios.insert(key.clone(), median(&ratios));
            report.ratio_runs.insert(key, ratios);
        }
    }
    // The cost of leasing per configuration, and over every measured pass.
    let share =
        |v: &[WorkersPass]| median(&v.iter().map(|p| p.lease_s / p.units_s).collect::<Vec<_>>());
    for (w, side) in &many {
        report
            .sizes
            .insert(format!("lease/unit workers-{w}x{c}c"), share(side));
    }
    for (w, side) in &one {
        report
            .sizes
            .insert(format!("lease/unit one-{}c", w * c), share(side));
    }
    let shares: Vec<f64> = many
        .iter()
        .chain(&one)
        .flat_map(|(_, v)| v)
        .map(|p| p.lease_s / p.units_s)
        .collect();
    report.sizes.insert("lease/unit".into(), median(&shares));
    report.ratio_runs.insert("lease/unit".into(), shares);
    report.notes.push(format!(
        "shape mixed, {} splits, page size {}, {c} connections per worker, {} runs (medians of \
         run-by-run ratios) after one warm-up pass; workers are concurrent migrate calls in one \
         process, each with its own worker id, Cassandra session, connections and lease \
         renewal; a pass is timed from the first worker's start to the last one's end; \
         `lease/unit` (under sizes: a share of time, not a throughput ratio) is the lease \
         statements' time over the workers' time on units, median over every pass",
        args.splits, args.source.page_size, args.bench.runs
    ));
    report.print();
    for id in &run_ids {
        Checkpoints::new(id, "public", &args.table)
            .forget(admin)
            .await?;
        checkpoint::forget_run(admin, id).await?;
    }
    load::truncate(admin, &args.table).await?;
    if let Some(path) = &args.bench.json {
        report.write(Path::new(path))?;
    }
    Ok(())
}
