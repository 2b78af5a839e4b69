//! `ferry-bench dry-run`: the dry run of a table (`ferry_pipeline::dryrun::dry_run`, what
//! `ferry dry-run` runs: scan → transform → column profiles, COPY encoding and reject checks,
//! split sizes, largest partitions) against Ferry's scan-only read of the same splits at the same
//! concurrency, measured in the same run. The ratio `dry-run/scan` is the dry run's rows/s over
//! scan-only's: what profiling and predicting cost on top of reading.
//!
//! The dry run is timed by its table's `elapsed_s` (planning, target introspection and the
//! read), not the Cassandra session's start, which scan-only does not pay either. Its load rate
//! comes from the config (`dry_run.load_rows_per_s`), so no probe runs: the probe's short COPY is
//! measured apart, as `dry-run+probe`.

use std::path::Path;

use ferry_pipeline::Config;
use ferry_pipeline::dryrun::{DryRunOptions, dry_run};
use ferry_pipeline::report::Status;

use crate::args::{BenchArgs, SourceArgs};
use crate::datagen::Shape;
use crate::report::{Figure, Pass, ScenarioReport, median, peak_rss_mb};
use crate::scan;
use crate::setup::BenchSource;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// `ferry-bench dry-run` arguments.
#[derive(Debug, clap::Args)]
pub struct DryRunArgs {
    #[command(flatten)]
    pub bench: BenchArgs,
    /// Splits read at once (the dry run's `run.connections`).
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Splits.
    #[arg(long, default_value_t = 32)]
    pub splits: usize,
    #[command(flatten)]
    pub source: SourceArgs,
    /// The target database (only read: the dry run writes nothing).
    #[arg(long, env = "FERRY_POSTGRES_URL")]
    pub url: String,
}

/// The dry run's config: `source` into `public.ferry_bench_dryrun` (a table that does not exist,
/// so rejects are predicted against the generated DDL; the work is the same as against a live
/// table), with the load rate given unless `probe`.
fn config(args: &DryRunArgs, source: &str, probe: bool) -> Result<Config, BoxError> {
    let q = |s: &str| serde_json::to_string(s).expect("a string serializes");
    let load = if probe {
        String::new()
    } else {
        "load_rows_per_s = 100000\n".into()
    };
    let text = format!(
        "[source]\ncontact_points = [{}]\npage_size = {}\n\
         [target]\nurl = {}\n\
         [run]\nconnections = {}\nsplits = {}\nid = \"ferry-bench-dry-run\"\n\
         [dry_run]\n{load}\
         [[table]]\nsource = {}\ntarget = \"public.ferry_bench_dryrun\"\n",
        q(&args.source.cassandra),
        args.source.page_size,
        q(&args.url),
        args.connections,
        args.splits,
        q(source),
    );
    Ok(Config::parse(
        &text,
        Path::new("ferry-bench-dry-run.toml"),
        &|_| None,
    )?)
}

/// One dry run, timed by its table's elapsed time; fails unless it read every row.
async fn dry_run_pass(config: &Config, rows: u64) -> Result<Pass, BoxError> {
    let report = dry_run(
        config,
        &DryRunOptions {
            sample_percent: None,
            settings: config.dry_run.clone(),
            from: None,
        },
    )
    .await;
    let t = report.tables.first().ok_or("the dry run has no table")?;
    if let Some(e) = report.error.as_ref().or(t.error.as_ref()) {
        return Err(format!("the dry run failed: {e}").into());
    }
    if t.rows_read != rows || t.rejects.total != 0 {
        return Err(format!(
            "the dry run read {} rows and predicted {} rejects, expected {rows} and none",
            t.rows_read, t.rejects.total
        )
        .into());
    }
    // The target table is missing and create_tables is off: the one expected problem.
    if report.status == Status::Ok || t.problems.len() != 1 {
        return Err(format!("unexpected problems: {:?}", t.problems).into());
    }
    Ok(Pass {
        rows: t.rows_read,
        bytes: t.arrow_bytes,
        seconds: t.elapsed_s,
    })
}

pub async fn run(args: DryRunArgs) -> Result<(), BoxError> {
    let source = BenchSource::open(&args.source, Shape::Mixed, args.bench.rows).await?;
    let qualified = source.qualified();
    // The splits the dry run plans: the same count over the same ring.
    let scan_table = source.scan(args.splits, args.source.page_size).await?;
    let plain = config(&args, &qualified, false)?;
    let probed = config(&args, &qualified, true)?;

    eprintln!("warm-up: one scan-only pass and one dry run");
    scan::ferry_scan(&scan_table, args.connections).await?;
    dry_run_pass(&plain, args.bench.rows).await?;
    let (mut scans, mut dries, mut probes) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..args.bench.runs.max(1) {
        // Alternate the sides, so drift on a shared machine hits them alike.
        let s = scan::ferry_scan(&scan_table, args.connections).await?;
        if s.rows != args.bench.rows {
            return Err(format!(
                "scan-only read {} rows, expected {}",
                s.rows, args.bench.rows
            )
            .into());
        }
        let d = dry_run_pass(&plain, args.bench.rows).await?;
        let p = dry_run_pass(&probed, args.bench.rows).await?;
        eprintln!(
            "run {run}: scan-only {:.0} rows/s, dry-run {:.0} rows/s, dry-run+probe {:.0} rows/s",
            s.rows_per_s(),
            d.rows_per_s(),
            p.rows_per_s()
        );
        scans.push(s);
        dries.push(d);
        probes.push(p);
    }
    let mut report = ScenarioReport::new("dry-run", args.bench.rows);
    let rss = peak_rss_mb();
    report
        .figures
        .push(Figure::from_passes("scan-only", &scans, rss));
    report
        .figures
        .push(Figure::from_passes("dry-run", &dries, rss));
    report
        .figures
        .push(Figure::from_passes("dry-run+probe", &probes, rss));
    for (key, side) in [("dry-run/scan", &dries), ("dry-run+probe/scan", &probes)] {
        let ratios: Vec<f64> = side
            .iter()
            .zip(&scans)
            .map(|(d, s)| d.rows_per_s() / s.rows_per_s())
            .collect();
        report.ratios.insert(key.into(), median(&ratios));
        report.ratio_runs.insert(key.into(), ratios);
    }
    report.notes.push(format!(
        "shape mixed, {} splits, {} read at once, page size {}, {} runs each (medians of run-by-run \
         ratios), one warm-up pass each; the dry run is timed by its table's elapsed time, \
         predicting against the generated DDL; dry-run has its load rate from the config, \
         dry-run+probe measures it with the probe (COPY of up to 20000 rows into a temporary \
         table per connection, rolled back); rayon threads {}; peak RSS is the whole process's",
        args.splits,
        args.connections,
        args.source.page_size,
        args.bench.runs,
        rayon::current_num_threads()
    ));
    report.publish(args.bench.json.as_deref())?;
    Ok(())
}
