//! `ferry-bench e2e`: the whole migration (`ferry_pipeline::migrate`: Cassandra scan → Arrow →
//! COPY encoding → M connections) against its two halves, measured in the same process run:
//!
//! - **scan-only**: Ferry's scan of the same splits, M at once, every page decoded into Arrow
//!   and dropped ([`crate::scan::ferry_scan`]);
//! - **load-only**: the same rows, encoded once beforehand for the same target table, COPY'd
//!   over M connections in the same units (one per split, from one queue, one transaction each:
//!   [`crate::load::copy_units`]).
//!
//! With `--spark 16,32`, the Spark job of `seed-spark-parallelism.md` runs right after the
//! migration at M = 16 and 32 into the same table ([`crate::spark`]: `ferry/spark`).
//!
//! The ceiling at M is the slower of the two; `ferry-Mc/ceiling` is the migration's rows/s over
//! it. Peak RSS is measured apart, each table size in a child process of its own (the hidden
//! `e2e-child` subcommand runs one migration and prints its `VmHWM`), so the sizes cannot
//! inflate each other and the anchors' buffers do not count.

use std::path::Path;
use std::process::Stdio;
use std::time::Instant;

use ferry_pipeline::Config;
use ferry_pipeline::checkpoint::Checkpoints;
use ferry_pipeline::report::Status;
use serde::Deserialize;
use tokio_postgres::Client;

use crate::args::{BenchArgs, SourceArgs};
use crate::datagen::{self, BENCH_KEYSPACE, Shape};
use crate::load;
use crate::report::{Figure, Pass, ScenarioReport, median, peak_rss_mb};
use crate::scan;
use crate::setup::{self, BenchSource, Encoded};
use crate::spark;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The run id of every migration the scenario runs (forgotten before each, and at the end).
const RUN_ID: &str = "ferry-bench-e2e";

/// `ferry-bench e2e` arguments.
#[derive(Debug, clap::Args)]
pub struct E2eArgs {
    #[command(flatten)]
    pub bench: BenchArgs,
    /// Connection counts M (for scan-only: splits read at once), comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 4, 16, 32])]
    pub connections: Vec<usize>,
    /// Splits K (work units); at least the largest M.
    #[arg(long, default_value_t = 64)]
    pub splits: usize,
    /// Source table sizes whose migration's peak RSS is measured, each in a process of its own,
    /// comma-separated (default: --rows). Each size is a table of its own, written if missing.
    #[arg(long, value_delimiter = ',')]
    pub rss_rows: Option<Vec<u64>>,
    /// Connections of the peak RSS migrations (default: the largest --connections).
    #[arg(long)]
    pub rss_connections: Option<usize>,
    /// Skip the peak RSS measurements.
    #[arg(long)]
    pub no_rss: bool,
    /// Target table, created (dropped first) in schema `public`.
    #[arg(long, default_value = "ferry_bench_e2e")]
    pub table: String,
    #[command(flatten)]
    pub source: SourceArgs,
    /// The target PostgreSQL/YugabyteDB database.
    #[arg(long, env = "FERRY_POSTGRES_URL")]
    pub url: String,
    #[command(flatten)]
    pub spark: spark::SparkArgs,
}

/// The hidden `e2e-child` subcommand: one migration, then its figures as one JSON line.
#[derive(Debug, clap::Args)]
pub struct ChildArgs {
    /// Source table, `keyspace.table`.
    #[arg(long)]
    pub source: String,
    /// Target table in schema `public`.
    #[arg(long)]
    pub table: String,
    #[arg(long)]
    pub connections: usize,
    #[arg(long)]
    pub splits: usize,
    #[arg(long)]
    pub page_size: i32,
    #[arg(long, env = "FERRY_CASSANDRA")]
    pub cassandra: String,
    #[arg(long, env = "FERRY_POSTGRES_URL")]
    pub url: String,
}

/// What an `e2e-child` process prints.
#[derive(Debug, Clone, Copy, serde::Serialize, Deserialize)]
pub struct ChildOutput {
    pub rows_written: u64,
    pub copy_bytes: u64,
    /// The table's elapsed time in the migration report.
    pub elapsed_s: f64,
    /// The process's `VmHWM` at exit.
    pub peak_rss_mb: f64,
}

/// One peak RSS measurement: a migration of `rows` rows in a process of its own.
#[derive(Debug, Clone, Copy)]
pub struct RssRun {
    pub rows: u64,
    pub connections: usize,
    pub output: ChildOutput,
}

/// Every run's passes, indexed `[connection count][run]`.
#[derive(Debug, Clone, Default)]
pub struct E2eRuns {
    pub connections: Vec<usize>,
    pub scan: Vec<Vec<Pass>>,
    pub load: Vec<Vec<Pass>>,
    pub ferry: Vec<Vec<Pass>>,
    pub rss: Vec<RssRun>,
}

/// The migration config of one pass: `source` (`keyspace.table`) into `public.<table>`.
pub fn migrate_config(
    cassandra: &str,
    url: &str,
    source: &str,
    table: &str,
    connections: usize,
    splits: usize,
    page_size: i32,
) -> Result<Config, BoxError> {
    // A JSON string is a valid TOML basic string (same escapes), so values go in quoted by serde_json.
    let q = |s: &str| serde_json::to_string(s).expect("a string serializes");
    let text = format!(
        "[source]\ncontact_points = [{}]\npage_size = {page_size}\n\
         [target]\nurl = {}\n\
         [run]\nconnections = {connections}\nsplits = {splits}\nid = {}\n\
         [[table]]\nsource = {}\ntarget = {}\n",
        q(cassandra),
        q(url),
        q(RUN_ID),
        q(source),
        q(&format!("public.{table}")),
    );
    let mut config = Config::parse(&text, Path::new("ferry-bench-e2e.toml"), &|_| None)?;
    // Each pass starts from an empty table and no checkpoints.
    config.run.restart = true;
    Ok(config)
}

/// `TRUNCATE`, then one timed migration; fails unless every row arrived and none was rejected.
/// Returns the pass (timed by the table's own elapsed time in the report: planning, connecting
/// the M workers and every unit) and the whole call's wall time, which adds the Cassandra session.
pub async fn migrate_pass(
    config: &Config,
    admin: &Client,
    table: &str,
    rows: u64,
) -> Result<(Pass, f64), BoxError> {
    load::truncate(admin, table).await?;
    let started = Instant::now();
    let report = ferry_pipeline::migrate(config).await;
    let wall = started.elapsed().as_secs_f64();
    let (pass, _) = check_migration(&report, rows)?;
    load::check_rows(admin, table, rows, "migrate").await?;
    Ok((pass, wall))
}

/// The migration's pass, and its COPY bytes; fails unless every row was written and none rejected.
pub fn check_migration(
    report: &ferry_pipeline::Report,
    rows: u64,
) -> Result<(Pass, u64), BoxError> {
    if report.status != Status::Ok {
        let why = report.error.as_deref().unwrap_or("no reason given");
        return Err(format!("migrate failed: {why}").into());
    }
    let t = report
        .tables
        .first()
        .ok_or("the migrate report has no table")?;
    if t.rows_written != rows || t.rows_rejected != 0 {
        return Err(format!(
            "migrate wrote {} rows and rejected {}, expected {rows} and none",
            t.rows_written, t.rows_rejected
        )
        .into());
    }
    let pass = Pass {
        rows: t.rows_written,
        bytes: t.copy_bytes,
        seconds: t.elapsed_s,
    };
    Ok((pass, t.copy_bytes))
}

/// The `e2e-child` subcommand: one migration, then a [`ChildOutput`] line on stdout.
pub async fn child(args: ChildArgs) -> Result<(), BoxError> {
    let config = migrate_config(
        &args.cassandra,
        &args.url,
        &args.source,
        &args.table,
        args.connections,
        args.splits,
        args.page_size,
    )?;
    let report = ferry_pipeline::migrate(&config).await;
    let t = report
        .tables
        .first()
        .ok_or("the migrate report has no table")?;
    check_migration(&report, t.rows_written)?;
    let output = ChildOutput {
        rows_written: t.rows_written,
        copy_bytes: t.copy_bytes,
        elapsed_s: t.elapsed_s,
        peak_rss_mb: peak_rss_mb(),
    };
    println!("{}", serde_json::to_string(&output)?);
    Ok(())
}

/// Runs one migration of `source` (`rows` rows) in an `e2e-child` process into an emptied table.
async fn rss_pass(
    args: &E2eArgs,
    admin: &Client,
    source: &str,
    rows: u64,
    connections: usize,
) -> Result<RssRun, BoxError> {
    load::truncate(admin, &args.table).await?;
    // The URL goes through the environment, not the command line that `ps` shows.
    let out = tokio::process::Command::new(std::env::current_exe()?)
        .arg("e2e-child")
        .args(["--source", &format!("{BENCH_KEYSPACE}.{source}")])
        .args(["--table", &args.table])
        .args(["--connections", &connections.to_string()])
        .args(["--splits", &args.splits.to_string()])
        .args(["--page-size", &args.source.page_size.to_string()])
        .env("FERRY_CASSANDRA", &args.source.cassandra)
        .env("FERRY_POSTGRES_URL", &args.url)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .await?;
    if !out.status.success() {
        return Err(format!(
            "the e2e-child migration of {rows} rows failed: {}",
            out.status
        )
        .into());
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .last()
        .ok_or("the e2e-child printed nothing")?;
    let output: ChildOutput =
        serde_json::from_str(line).map_err(|e| format!("the e2e-child printed {line:?}: {e}"))?;
    if output.rows_written != rows {
        return Err(format!(
            "the e2e-child migration wrote {} rows, expected {rows}",
            output.rows_written
        )
        .into());
    }
    load::check_rows(admin, &args.table, rows, "the e2e-child migration").await?;
    Ok(RssRun {
        rows,
        connections,
        output,
    })
}

/// Runs the scenario.
pub async fn run(args: E2eArgs) -> Result<(), BoxError> {
    load::check_table_name(&args.table)?;
    let (connections, max_m) = setup::connection_counts(&args.connections, Some(args.splits))?;
    let spark_versions = args.spark.prepare(&connections).await?;
    let source = BenchSource::open(&args.source, Shape::Mixed, args.bench.rows).await?;
    let qualified = source.qualified();
    let config = |m: usize| {
        migrate_config(
            &args.source.cassandra,
            &args.url,
            &qualified,
            &args.table,
            m,
            args.splits,
            args.source.page_size,
        )
    };
    let admin = &setup::fresh_target(&args.url, &args.table, &config(max_m)?).await?;
    // The anchors' inputs: the splits the migration plans, and their rows encoded once.
    let scan_table = source.scan(args.splits, args.source.page_size).await?;
    let Encoded {
        units,
        encoder,
        copy_bytes,
        ..
    } = setup::encode_once(&scan_table, max_m, admin, &args.table, args.bench.rows).await?;
    let clients = load::connect_many(&args.url, max_m).await?;

    eprintln!("warm-up migration at {max_m} connections");
    let (warm, _) = migrate_pass(&config(max_m)?, admin, &args.table, args.bench.rows).await?;
    if warm.bytes != copy_bytes {
        return Err(format!(
            "the migration sent {} COPY bytes, load-only's pre-encoded rows are {copy_bytes}: \
             the two do not load the same data",
            warm.bytes
        )
        .into());
    }
    // What the Spark anchor must load too.
    let reference = if args.spark.enabled() {
        Some(spark::Reference::keep(admin, &args.table).await?)
    } else {
        None
    };

    let n = connections.len();
    let mut runs = E2eRuns {
        connections: connections.clone(),
        scan: vec![Vec::new(); n],
        load: vec![Vec::new(); n],
        ferry: vec![Vec::new(); n],
        rss: Vec::new(),
    };
    let mut session_s = Vec::new();
    let mut spark_runs = Vec::new();
    for run in 0..args.bench.runs.max(1) {
        for (i, &m) in connections.iter().enumerate() {
            // The three sides one after the other at each M, so drift hits them alike; one
            // line per pass, so a CPU sampler running beside can tell the passes apart.
            let done = |side: &str, p: &Pass| {
                eprintln!("run {run} M={m}: {side} {:.0} rows/s", p.rows_per_s());
            };
            let s = scan::ferry_scan(&scan_table, m).await?;
            if s.rows != args.bench.rows {
                return Err(format!(
                    "scan-only read {} rows, expected {}",
                    s.rows, args.bench.rows
                )
                .into());
            }
            done("scan-only", &s);
            let l = load::copy_units(&clients[..m], &encoder, &args.table, &units).await?;
            if l.rows != args.bench.rows {
                return Err(format!(
                    "load-only wrote {} rows, expected {}",
                    l.rows, args.bench.rows
                )
                .into());
            }
            load::check_rows(admin, &args.table, args.bench.rows, "load-only").await?;
            done("load-only", &l);
            let cpu = spark::process_cpu_s();
            let (f, wall) = migrate_pass(&config(m)?, admin, &args.table, args.bench.rows).await?;
            let ferry_cpu_s = spark::process_cpu_s() - cpu;
            session_s.push(wall - f.seconds);
            done("ferry", &f);
            if let (true, Some(reference)) = (args.spark.parallelism.contains(&m), &reference) {
                let (job, wall_s) = spark::pass(
                    &args.spark,
                    admin,
                    m,
                    &qualified,
                    &args.table,
                    args.bench.rows,
                    reference,
                    &args.source.cassandra,
                    &args.url,
                )
                .await?;
                done("spark", &job.pass());
                spark_runs.push(spark::SparkRun {
                    parallelism: m,
                    ferry: f,
                    ferry_cpu_s,
                    job,
                    wall_s,
                });
            }
            runs.scan[i].push(s);
            runs.load[i].push(l);
            runs.ferry[i].push(f);
        }
    }
    drop(units);

    let rss_m = args.rss_connections.unwrap_or(max_m);
    let rss_rows = if args.no_rss {
        Vec::new()
    } else {
        args.rss_rows
            .clone()
            .unwrap_or_else(|| vec![args.bench.rows])
    };
    let mut rss_tables = Vec::new();
    for &rows in &rss_rows {
        rss_tables.push(if rows == args.bench.rows {
            source.table.clone()
        } else {
            datagen::bench_table(&source.session, Shape::Mixed, rows, args.source.reuse).await?
        });
    }
    for run in 0..args.bench.runs.max(1) {
        // The sizes alternate, so drift hits them alike.
        for (&rows, table) in rss_rows.iter().zip(&rss_tables) {
            eprintln!("run {run}: migrating {rows} rows at {rss_m} connections in a child process");
            let r = rss_pass(&args, admin, table, rows, rss_m).await?;
            eprintln!(
                "run {run}: peak RSS {:.0} MB, {:.0} rows/s",
                r.output.peak_rss_mb,
                r.output.rows_written as f64 / r.output.elapsed_s
            );
            runs.rss.push(r);
        }
    }

    // Leave no rows and no run state behind.
    load::truncate(admin, &args.table).await?;
    if let Some(reference) = reference {
        reference.drop(admin).await?;
    }
    Checkpoints::new(RUN_ID, "public", &args.table)
        .forget(admin)
        .await?;

    let mut report = build_report(args.bench.rows, &runs, peak_rss_mb());
    report.notes.push(format!(
        "mixed shape (12 columns), {} splits, page size {}, {} runs (medians), one warm-up read \
         and one warm-up migration; each migration TRUNCATEs the target and forgets its \
         checkpoints first; ferry is timed by the table's elapsed time in the migrate report \
         (planning, connecting M workers, every unit with its checkpoint), and the Cassandra \
         session it opens added a median {:.2}s more; load-only moves {copy_bytes} COPY bytes, \
         the same as the migration; in-process peak RSS is the whole bench process's (it holds \
         the pre-encoded rows), the migrate-* figures' is a child process's",
        args.splits,
        args.source.page_size,
        args.bench.runs.max(1),
        median(&session_s)
    ));
    spark::extend_report(&mut report, &spark_runs, &spark_versions);
    print(&report, &runs);
    spark::print(&spark_runs);
    if let Some(path) = &args.bench.json {
        report.write(path)?;
    }
    Ok(())
}

/// `1000000` → `1m`, `100000` → `100k`: the row counts in figure names and ratio keys.
pub fn rows_label(rows: u64) -> String {
    match rows {
        r if r >= 1_000_000 && r % 1_000_000 == 0 => format!("{}m", r / 1_000_000),
        r if r >= 1_000 && r % 1_000 == 0 => format!("{}k", r / 1_000),
        r => r.to_string(),
    }
}

/// Each run's `ferry / min(scan-only, load-only)` at one connection count.
fn ceiling_ratios(scan: &[Pass], load: &[Pass], ferry: &[Pass]) -> Vec<f64> {
    scan.iter()
        .zip(load)
        .zip(ferry)
        .map(|((s, l), f)| f.rows_per_s() / s.rows_per_s().min(l.rows_per_s()))
        .collect()
}

/// Each run's `ferry / (1 / (1/scan-only + 1/load-only))`: against the rate of the scan and then
/// the load one after the other, with no overlap (what sharing one set of cores tends to).
fn no_overlap_ratios(scan: &[Pass], load: &[Pass], ferry: &[Pass]) -> Vec<f64> {
    scan.iter()
        .zip(load)
        .zip(ferry)
        .map(|((s, l), f)| f.rows_per_s() * (1.0 / s.rows_per_s() + 1.0 / l.rows_per_s()))
        .collect()
}

/// The scenario's report from its passes; `process_rss_mb` is this process's peak RSS.
pub fn build_report(rows: u64, runs: &E2eRuns, process_rss_mb: f64) -> ScenarioReport {
    let mut report = ScenarioReport::new("e2e", rows);
    let mut best: Option<(usize, f64)> = None;
    for (i, &m) in runs.connections.iter().enumerate() {
        let (scan, load, ferry) = (&runs.scan[i], &runs.load[i], &runs.ferry[i]);
        report.figures.push(Figure::from_passes(
            format!("scan-only-{m}c"),
            scan,
            process_rss_mb,
        ));
        report.figures.push(Figure::from_passes(
            format!("load-only-{m}c"),
            load,
            process_rss_mb,
        ));
        let figure = Figure::from_passes(format!("ferry-{m}c"), ferry, process_rss_mb);
        if best.is_none_or(|(_, rps)| figure.rows_per_s > rps) {
            best = Some((i, figure.rows_per_s));
        }
        report.figures.push(figure);
        for (key, ratios) in [
            (
                format!("ferry-{m}c/ceiling"),
                ceiling_ratios(scan, load, ferry),
            ),
            (
                format!("ferry-{m}c/no-overlap"),
                no_overlap_ratios(scan, load, ferry),
            ),
        ] {
            report.ratios.insert(key.clone(), median(&ratios));
            report.ratio_runs.insert(key, ratios);
        }
    }
    if let Some((i, _)) = best {
        let m = runs.connections[i];
        let ratios = ceiling_ratios(&runs.scan[i], &runs.load[i], &runs.ferry[i]);
        report
            .ratios
            .insert("ferry/ceiling".into(), median(&ratios));
        report.notes.push(format!(
            "the ceiling at M is the slower of scan-only and load-only at M, run by run; \
             ferry/ceiling is at the connection count with the best ferry rows/s, {m}"
        ));
    }
    // Peak RSS: one figure per table size (the median of its runs), and run by run, the
    // largest size's over the smallest's.
    let mut sizes: Vec<u64> = Vec::new();
    for r in &runs.rss {
        if !sizes.contains(&r.rows) {
            sizes.push(r.rows);
        }
    }
    let of_size = |rows: u64| runs.rss.iter().filter(move |r| r.rows == rows);
    for &rows in &sizes {
        let passes: Vec<Pass> = of_size(rows)
            .map(|r| Pass {
                rows: r.output.rows_written,
                bytes: r.output.copy_bytes,
                seconds: r.output.elapsed_s,
            })
            .collect();
        let peaks: Vec<f64> = of_size(rows).map(|r| r.output.peak_rss_mb).collect();
        let m = of_size(rows).next().map_or(0, |r| r.connections);
        let name = format!("migrate-{}-{m}c", rows_label(rows));
        report
            .figures
            .push(Figure::from_passes(&name, &passes, median(&peaks)));
        report.rss_runs.insert(name, peaks);
    }
    if let (Some(&small), Some(&large)) = (sizes.iter().min(), sizes.iter().max())
        && large > small
    {
        let ratios: Vec<f64> = of_size(large)
            .zip(of_size(small))
            .map(|(l, s)| l.output.peak_rss_mb / s.output.peak_rss_mb)
            .collect();
        let key = format!("rss-{}/rss-{}", rows_label(large), rows_label(small));
        report.rss_ratios.insert(key.clone(), median(&ratios));
        report.ratio_runs.insert(key, ratios);
    }
    report
}

/// `1234567.8` → `1,234,568`.
fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `median (min–max)` of rows/s, or of ratios with `precision` 3.
pub(crate) fn spread(values: &[f64], ratio: bool) -> String {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if ratio {
        format!("{:.3} ({min:.3}–{max:.3})", median(values))
    } else {
        format!(
            "{} ({}–{})",
            thousands(median(values)),
            thousands(min),
            thousands(max)
        )
    }
}

fn print(report: &ScenarioReport, runs: &E2eRuns) {
    println!(
        "scenario e2e ({} rows, {} cores, {} profile): medians (min–max) over runs",
        report.rows,
        report.cores,
        report.versions.get("profile").map_or("?", String::as_str)
    );
    println!(
        "{:>4}  {:<30} {:<30} {:<30} {:<22}",
        "M", "scan-only rows/s", "load-only rows/s", "ferry rows/s", "ferry/ceiling"
    );
    let rates = |passes: &[Pass]| passes.iter().map(Pass::rows_per_s).collect::<Vec<_>>();
    for (i, m) in runs.connections.iter().enumerate() {
        let ratios = report
            .ratio_runs
            .get(&format!("ferry-{m}c/ceiling"))
            .cloned()
            .unwrap_or_default();
        println!(
            "{m:>4}  {:<30} {:<30} {:<30} {:<22}",
            spread(&rates(&runs.scan[i]), false),
            spread(&rates(&runs.load[i]), false),
            spread(&rates(&runs.ferry[i]), false),
            spread(&ratios, true)
        );
    }
    for (name, peaks) in &report.rss_runs {
        println!(
            "peak RSS of {name} (a migration in its own process): {} MB",
            spread(peaks, false)
        );
    }
    for (k, v) in report.ratios.iter().chain(&report.rss_ratios) {
        println!("ratio {k:<24} {v:.3}");
    }
    for note in &report.notes {
        println!("  {note}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::passes;
    use ferry_connectors::cassandra::SplitCount;

    fn rss(rows: u64, peak_rss_mb: f64) -> RssRun {
        RssRun {
            rows,
            connections: 32,
            output: ChildOutput {
                rows_written: rows,
                copy_bytes: rows * 2,
                elapsed_s: 10.0,
                peak_rss_mb,
            },
        }
    }

    #[test]
    fn the_json_has_the_ceiling_ratios_against_the_slower_anchor_and_the_rss_ratio() {
        let runs = E2eRuns {
            connections: vec![1, 4],
            // M=1: load-only is the slower anchor; M=4: scan-only is.
            scan: vec![
                passes(&[100.0, 100.0, 100.0]),
                passes(&[400.0, 400.0, 400.0]),
            ],
            load: vec![passes(&[50.0, 60.0, 40.0]), passes(&[500.0, 500.0, 500.0])],
            ferry: vec![passes(&[40.0, 30.0, 40.0]), passes(&[300.0, 320.0, 280.0])],
            // Two runs of each size, alternating: per-run ratios 1.05 and 1.2.
            rss: vec![
                rss(5_000_000, 105.0),
                rss(1_000_000, 100.0),
                rss(5_000_000, 120.0),
                rss(1_000_000, 100.0),
            ],
        };
        let report = build_report(1_000, &runs, 500.0);
        let json = serde_json::to_value(&report).expect("serializes");
        assert_eq!(json["scenario"], "e2e");
        assert_eq!(json["rows"], 1_000);
        let ratio = |key: &str| json["ratios"][key].as_f64().expect(key);
        // Run by run: 40/50, 30/60, 40/40; 300/400, 320/400, 280/400.
        assert!((ratio("ferry-1c/ceiling") - 0.8).abs() < 1e-9);
        assert!((ratio("ferry-4c/ceiling") - 0.75).abs() < 1e-9);
        // At the best M (4).
        assert!((ratio("ferry/ceiling") - 0.75).abs() < 1e-9);
        // 40 × (1/100 + 1/50), 30 × (1/100 + 1/60), 40 × (1/100 + 1/40).
        assert!((ratio("ferry-1c/no-overlap") - 1.2).abs() < 1e-9);
        let rss_ratio = json["rss_ratios"]["rss-5m/rss-1m"].as_f64().expect("rss");
        assert!((rss_ratio - 1.125).abs() < 1e-9);
        assert_eq!(
            json["rss_runs"]["migrate-5m-32c"],
            serde_json::json!([105.0, 120.0])
        );
        assert_eq!(
            json["ratio_runs"]["ferry-1c/ceiling"]
                .as_array()
                .map(Vec::len),
            Some(3)
        );
        let names: Vec<&str> = json["figures"]
            .as_array()
            .expect("figures")
            .iter()
            .map(|f| f["name"].as_str().expect("name"))
            .collect();
        assert_eq!(
            names,
            [
                "scan-only-1c",
                "load-only-1c",
                "ferry-1c",
                "scan-only-4c",
                "load-only-4c",
                "ferry-4c",
                "migrate-5m-32c",
                "migrate-1m-32c"
            ]
        );
        let figure = |i: usize| &json["figures"][i];
        assert_eq!(figure(5)["rows_per_s"], 300.0);
        assert_eq!(figure(6)["peak_rss_mb"], 112.5);
        assert_eq!(figure(6)["rows_per_s"], 500_000.0);
        for key in ["rows_per_s", "mb_per_s", "peak_rss_mb"] {
            assert!(figure(0)[key].is_number(), "{key}");
        }
    }

    #[test]
    fn labels_and_spreads() {
        assert_eq!(rows_label(1_000_000), "1m");
        assert_eq!(rows_label(5_000_000), "5m");
        assert_eq!(rows_label(100_000), "100k");
        assert_eq!(rows_label(1_500), "1500");
        assert_eq!(thousands(1_234_567.8), "1,234,568");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(spread(&[3.0, 1.0, 2.0], true), "2.000 (1.000–3.000)");
    }

    #[test]
    fn the_config_quotes_every_value() {
        let config = migrate_config(
            "127.0.0.1:9042",
            "postgresql://u:p\"w@127.0.0.1:5432/db",
            "ks.t",
            "target",
            16,
            64,
            5000,
        )
        .expect("valid config");
        assert_eq!(config.run.connections, 16);
        assert_eq!(config.run.splits, SplitCount::Fixed(64));
        assert!(config.run.restart);
        assert_eq!(config.tables[0].target_parts("x"), ("public", "target"));
        assert_eq!(config.source.page_size, 5000);
    }
}
