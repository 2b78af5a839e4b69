//! `ferry-bench upsert`: upsert mode (`mode = "upsert"`: each unit COPY'd into a temporary table,
//! then merged with `INSERT … ON CONFLICT DO UPDATE`) against transactional mode, on the same
//! table in the same run, run by run:
//!
//! - **transactional**: `TRUNCATE`, then a migration (the anchor);
//! - **upsert-empty**: `TRUNCATE`, then an upsert-mode migration: every row inserted by the merge;
//! - **upsert-full**: an upsert-mode migration over the table the pass before filled: every row
//!   replaced (what a second pass over unchanged data costs).
//!
//! Ratios are throughputs over the transactional pass's of the same run (median of the runs).

use ferry_pipeline::checkpoint::{self, Checkpoints};
use ferry_pipeline::config::WriteMode;
use tokio_postgres::Client;

use crate::args::{BenchArgs, SourceArgs};
use crate::datagen::Shape;
use crate::e2e::{check_migration, migrate_config, migrate_pass};
use crate::load;
use crate::report::{Figure, Pass, ScenarioReport, median, peak_rss_mb};
use crate::setup::{self, BenchSource};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// `ferry-bench upsert` arguments.
#[derive(Debug, clap::Args)]
pub struct UpsertArgs {
    #[command(flatten)]
    pub bench: BenchArgs,
    /// Target connections (and splits read at once), for every pass.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Splits.
    #[arg(long, default_value_t = 32)]
    pub splits: usize,
    /// The target table (in schema `public`), created from the Cassandra schema.
    #[arg(long, default_value = "ferry_bench_upsert")]
    pub table: String,
    #[command(flatten)]
    pub source: SourceArgs,
    /// The target database.
    #[arg(long, env = "FERRY_POSTGRES_URL")]
    pub url: String,
}

/// Forgets run `run_id` and its checkpoints of `public.<table>`.
async fn forget(admin: &Client, run_id: &str, table: &str) -> Result<(), BoxError> {
    Checkpoints::new(run_id, "public", table)
        .forget(admin)
        .await?;
    checkpoint::forget_run(admin, run_id).await?;
    Ok(())
}

const PASSES: [&str; 3] = ["transactional", "upsert-empty", "upsert-full"];

pub async fn run(args: UpsertArgs) -> Result<(), BoxError> {
    load::check_table_name(&args.table)?;
    let rows = args.bench.rows;
    let source = BenchSource::open(&args.source, Shape::Mixed, rows).await?;
    let transactional = migrate_config(
        &args.source.cassandra,
        &args.url,
        &source.qualified(),
        &args.table,
        args.connections,
        args.splits,
        args.source.page_size,
    )?;
    let admin = &setup::fresh_target(&args.url, &args.table, &transactional).await?;
    let mut upsert = transactional.clone();
    upsert.run.mode = WriteMode::Upsert;
    // Over a full table: a run of its own each time (no --restart, which would empty it).
    let over_full = |run: usize| {
        let mut config = upsert.clone();
        config.run.restart = false;
        config.run.id = format!("ferry-bench-upsert-full-{run}");
        config
    };

    eprintln!("warm-up: one pass of each");
    let mut passes: [Vec<Pass>; 3] = Default::default();
    for run in 0..=args.bench.runs.max(1) {
        let (t, _) = migrate_pass(&transactional, admin, &args.table, rows).await?;
        let (e, _) = migrate_pass(&upsert, admin, &args.table, rows).await?;
        let full = over_full(run);
        forget(admin, &full.run.id, &args.table).await?;
        let (f, _) = check_migration(&ferry_pipeline::migrate(&full).await, rows)?;
        load::check_rows(admin, &args.table, rows, "upsert over a full table").await?;
        forget(admin, &full.run.id, &args.table).await?;
        if run == 0 {
            continue;
        }
        eprintln!(
            "run {run}: transactional {:.0} rows/s, upsert into an empty table {:.0} rows/s \
             ({:.2}), over a full one {:.0} rows/s ({:.2})",
            t.rows_per_s(),
            e.rows_per_s(),
            e.rows_per_s() / t.rows_per_s(),
            f.rows_per_s(),
            f.rows_per_s() / t.rows_per_s()
        );
        for (all, pass) in passes.iter_mut().zip([t, e, f]) {
            all.push(pass);
        }
    }
    load::truncate(admin, &args.table).await?;

    let mut report = ScenarioReport::new("upsert", rows);
    let rss = peak_rss_mb();
    for (name, all) in PASSES.iter().zip(&passes) {
        report.figures.push(Figure::from_passes(*name, all, rss));
    }
    for (name, all) in PASSES.iter().zip(&passes).skip(1) {
        let ratios: Vec<f64> = all
            .iter()
            .zip(&passes[0])
            .map(|(p, t)| p.rows_per_s() / t.rows_per_s())
            .collect();
        let key = format!("{name}/transactional");
        report.ratios.insert(key.clone(), median(&ratios));
        report.ratio_runs.insert(key, ratios);
    }
    report.notes.push(format!(
        "shape mixed, {} splits, {} connections, page size {}, {} runs (median of run-by-run \
         ratios) after one warm-up of each pass; transactional and upsert-empty TRUNCATE the \
         target first, upsert-full replaces every row the pass before wrote; each pass is timed \
         by its table's elapsed time in the migrate report",
        args.splits, args.connections, args.source.page_size, args.bench.runs,
    ));
    report.publish(args.bench.json.as_deref())?;
    Ok(())
}
