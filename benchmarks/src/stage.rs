//! `ferry-bench stage`: the two halves of a staged run against Ferry's own one-sided anchors,
//! measured in the same process run:
//!
//! - **dump** (`ferry_pipeline::dump_with`: scan → Parquet files + manifest on local disk)
//!   against **scan-only** (the same splits read at the same concurrency, decoded and dropped:
//!   [`crate::scan::ferry_scan`]) → `dump/scan`;
//! - **load-parquet** (`ferry_pipeline::load_with`: staged files → COPY over M connections, with
//!   checkpoints) against **load-only** (the same rows, encoded once beforehand, COPY'd over M
//!   connections in the same units: [`crate::load::copy_units`]) → `load-parquet/load`.
//!
//! It also reports the staged Parquet bytes over the COPY bytes of the same rows.

use std::path::PathBuf;
use std::sync::Arc;

use ferry_connectors::staging::StagingLocation;
use ferry_pipeline::checkpoint::Checkpoints;
use ferry_pipeline::progress::RunProgress;
use ferry_pipeline::report::Status;
use ferry_pipeline::{Config, DumpOptions, Report};

use crate::args::{BenchArgs, SourceArgs};
use crate::datagen::Shape;
use crate::e2e::{migrate_config, rows_label};
use crate::load;
use crate::report::{Figure, Pass, ScenarioReport, median, peak_rss_mb};
use crate::scan;
use crate::setup::{self, BenchSource, Encoded};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The run id of every load the scenario runs (forgotten before each, and at the end).
const RUN_ID: &str = "ferry-bench-stage";

/// `ferry-bench stage` arguments.
#[derive(Debug, clap::Args)]
pub struct StageArgs {
    #[command(flatten)]
    pub bench: BenchArgs,
    /// Connections M of the loads, and splits read at once by the scan and the dump.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Splits K (work units).
    #[arg(long, default_value_t = 32)]
    pub splits: usize,
    /// zstd level of the staged files (`staging.zstd_level`).
    #[arg(long, default_value_t = 1)]
    pub zstd_level: i32,
    /// Where the dumps go (emptied by each dump).
    #[arg(long, default_value = "/var/tmp/ferry-bench/stage")]
    pub dir: PathBuf,
    /// Target table, created (dropped first) in schema `public`.
    #[arg(long, default_value = "ferry_bench_stage")]
    pub table: String,
    #[command(flatten)]
    pub source: SourceArgs,
    /// The target PostgreSQL/YugabyteDB database.
    #[arg(long, env = "FERRY_POSTGRES_URL")]
    pub url: String,
}

/// The one table of a dump or load report, checked: every row, none rejected.
fn check(report: &Report, rows: u64) -> Result<Pass, BoxError> {
    if report.status != Status::Ok {
        let why = report.error.as_deref().unwrap_or("no reason given");
        return Err(format!("{} failed: {why}", report.command).into());
    }
    let t = report.tables.first().ok_or("the report has no table")?;
    if t.rows_written != rows || t.rows_rejected != 0 {
        return Err(format!(
            "{} wrote {} rows and rejected {}, expected {rows} and none",
            report.command, t.rows_written, t.rows_rejected
        )
        .into());
    }
    Ok(Pass {
        rows: t.rows_written,
        bytes: if report.command == "dump" {
            t.parquet_bytes
        } else {
            t.copy_bytes
        },
        seconds: t.elapsed_s,
    })
}

/// Runs the scenario.
pub async fn run(args: StageArgs) -> Result<(), BoxError> {
    load::check_table_name(&args.table)?;
    let m = args.connections.max(1);
    if args.splits < m {
        return Err(format!("--splits {} is less than --connections {m}", args.splits).into());
    }
    let source = BenchSource::open(&args.source, Shape::Mixed, args.bench.rows).await?;
    let qualified = source.qualified();
    let mut config: Config = migrate_config(
        &args.source.cassandra,
        &args.url,
        &qualified,
        &args.table,
        m,
        args.splits,
        args.source.page_size,
    )?;
    config.run.id = RUN_ID.into();
    config.staging.zstd_level = args.zstd_level;
    std::fs::create_dir_all(&args.dir)?;
    let location = StagingLocation::open(
        &args.dir.display().to_string(),
        &config.staging,
        std::path::Path::new(""),
    )?;
    let admin = &setup::fresh_target(&args.url, &args.table, &config).await?;
    // The anchors' inputs: the splits the dump plans, and their rows encoded once.
    let scan_table = source.scan(args.splits, args.source.page_size).await?;
    let Encoded {
        units,
        encoder,
        copy_bytes,
        ..
    } = setup::encode_once(&scan_table, m, admin, &args.table, args.bench.rows).await?;
    let clients = load::connect_many(&args.url, m).await?;

    let dump = async |config: &Config| {
        let options = DumpOptions {
            raw: false,
            restart: true,
        };
        let report =
            ferry_pipeline::dump_with(config, &location, options, Arc::new(RunProgress::default()))
                .await;
        check(&report, args.bench.rows)
    };
    let load_parquet = async |config: &Config| {
        let mut config = config.clone();
        // Each load starts from an empty table and no checkpoints.
        config.run.restart = true;
        let report =
            ferry_pipeline::load_with(&config, location.clone(), Arc::new(RunProgress::default()))
                .await;
        let pass = check(&report, args.bench.rows)?;
        load::check_rows(admin, &args.table, args.bench.rows, "load-parquet").await?;
        Ok::<_, BoxError>(pass)
    };
    eprintln!("warm-up dump and load");
    let warm = dump(&config).await?;
    let warm_load = load_parquet(&config).await?;
    if warm_load.bytes != copy_bytes {
        return Err(format!(
            "the load sent {} COPY bytes, load-only's pre-encoded rows are {copy_bytes}: the two \
             do not load the same data",
            warm_load.bytes
        )
        .into());
    }
    let parquet_bytes = warm.bytes;

    let (mut scans, mut dumps, mut loads, mut parquet_loads) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for run in 0..args.bench.runs.max(1) {
        let done = |side: &str, p: &Pass| {
            eprintln!("run {run}: {side} {:.0} rows/s", p.rows_per_s());
        };
        // One after the other, each against its anchor, so drift hits both alike.
        let s = scan::ferry_scan(&scan_table, m).await?;
        if s.rows != args.bench.rows {
            return Err(format!(
                "scan-only read {} rows, expected {}",
                s.rows, args.bench.rows
            )
            .into());
        }
        done("scan-only", &s);
        let d = dump(&config).await?;
        done("dump", &d);
        let l = load::copy_units(&clients, &encoder, &args.table, &units).await?;
        load::check_rows(admin, &args.table, args.bench.rows, "load-only").await?;
        done("load-only", &l);
        let p = load_parquet(&config).await?;
        done("load-parquet", &p);
        scans.push(s);
        dumps.push(d);
        loads.push(l);
        parquet_loads.push(p);
    }

    load::truncate(admin, &args.table).await?;
    Checkpoints::new(RUN_ID, "public", &args.table)
        .forget(admin)
        .await?;

    let report = build_report(
        args.bench.rows,
        &Runs {
            scan: scans,
            dump: dumps,
            load: loads,
            load_parquet: parquet_loads,
        },
        parquet_bytes,
        copy_bytes,
        peak_rss_mb(),
        format!(
            "mixed shape (12 columns), {} rows ({}), {} splits, {m} at once (scan, dump) and {m} \
             connections (loads), page size {}, zstd level {}, staged on local disk at {}; {} runs \
             (medians of run-by-run ratios), one warm-up dump and load; dump and load-parquet are \
             timed by the table's elapsed time in their reports (planning included; the load's \
             includes checking every file's footer against the manifest and every split's \
             content hash); each dump starts over (--restart), each load empties the target and \
             forgets its checkpoints first; load-only moves the same {copy_bytes} COPY bytes",
            args.bench.rows,
            rows_label(args.bench.rows),
            args.splits,
            args.source.page_size,
            args.zstd_level,
            args.dir.display(),
            args.bench.runs.max(1)
        ),
    );
    report.publish(args.bench.json.as_deref())?;
    Ok(())
}

/// Every run's passes.
#[derive(Debug, Clone, Default)]
pub struct Runs {
    pub scan: Vec<Pass>,
    pub dump: Vec<Pass>,
    pub load: Vec<Pass>,
    pub load_parquet: Vec<Pass>,
}

/// The scenario's report: four figures, the two throughput ratios (medians of run-by-run
/// ratios), and the Parquet size over the COPY size.
pub fn build_report(
    rows: u64,
    runs: &Runs,
    parquet_bytes: u64,
    copy_bytes: u64,
    rss_mb: f64,
    note: String,
) -> ScenarioReport {
    let mut report = ScenarioReport::new("stage", rows);
    for (name, passes) in [
        ("scan-only", &runs.scan),
        ("dump", &runs.dump),
        ("load-only", &runs.load),
        ("load-parquet", &runs.load_parquet),
    ] {
        report
            .figures
            .push(Figure::from_passes(name, passes, rss_mb));
    }
    let ratio = |ours: &[Pass], anchor: &[Pass]| -> Vec<f64> {
        ours.iter()
            .zip(anchor)
            .map(|(o, a)| o.rows_per_s() / a.rows_per_s())
            .collect()
    };
    for (key, values) in [
        ("dump/scan", ratio(&runs.dump, &runs.scan)),
        ("load-parquet/load", ratio(&runs.load_parquet, &runs.load)),
    ] {
        report.ratios.insert(key.into(), median(&values));
        report.ratio_runs.insert(key.into(), values);
    }
    let size = parquet_bytes as f64 / copy_bytes.max(1) as f64;
    report.notes.push(note);
    report.notes.push(format!(
        "parquet/copy bytes = {size:.3} ({parquet_bytes} Parquet bytes staged, {copy_bytes} COPY \
         bytes for the same rows); not a throughput ratio, so not in `ratios`"
    ));
    report.sizes.insert("parquet/copy-bytes".into(), size);
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::passes;

    #[test]
    fn ratios_are_medians_of_run_by_run_ratios() {
        let runs = Runs {
            scan: passes(&[100.0, 200.0, 100.0]),
            dump: passes(&[90.0, 100.0, 80.0]),
            load: passes(&[50.0, 50.0, 50.0]),
            load_parquet: passes(&[45.0, 40.0, 50.0]),
        };
        let report = build_report(1000, &runs, 300, 1200, 10.0, "n".into());
        assert_eq!(report.ratios["dump/scan"], 0.8);
        assert_eq!(report.ratios["load-parquet/load"], 0.9);
        assert_eq!(report.ratio_runs["dump/scan"], vec![0.9, 0.5, 0.8]);
        assert_eq!(report.sizes["parquet/copy-bytes"], 0.25);
        let json = serde_json::to_value(&report).expect("json");
        assert_eq!(json["scenario"], "stage");
        let names: Vec<&str> = json["figures"]
            .as_array()
            .expect("figures")
            .iter()
            .filter_map(|f| f["name"].as_str())
            .collect();
        assert_eq!(names, ["scan-only", "dump", "load-only", "load-parquet"]);
    }
}
