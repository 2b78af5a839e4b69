//! `ferry-bench`: benchmark scenarios with in-run anchors, and the data generator.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};

use ferry_benchmarks::datagen::{self, Shape};
use ferry_benchmarks::encode::{self, EncodeShape};
use ferry_benchmarks::report::{Figure, ScenarioReport, median, peak_rss_mb};
use ferry_benchmarks::scan::{Pass, ferry_scan, fetch_only};
use std::sync::Arc;

use ferry_connectors::cassandra::{self, CassandraTable, SourceTable, SplitCount, plan_splits};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, clap::Args)]
struct ScanArgs {
    /// Rows in the benchmark table.
    #[arg(long, default_value_t = 1_000_000)]
    rows: u64,
    /// Write the JSON report here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Table shape.
    #[arg(long, value_enum, default_value = "mixed")]
    shape: Shape,
    /// Splits to read.
    #[arg(long, default_value_t = 32)]
    splits: usize,
    /// Splits read at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Runs of each side; the figures are medians.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Rows per page.
    #[arg(long, default_value_t = 5000)]
    page_size: i32,
    /// Keep the benchmark table an earlier run finished writing instead of writing it again.
    #[arg(long)]
    reuse: bool,
    /// Cassandra contact point.
    #[arg(long, env = "FERRY_CASSANDRA", default_value = "127.0.0.1:9042")]
    cassandra: String,
}

async fn scan(args: ScanArgs) -> Result<(), BoxError> {
    let keyspace = datagen::BENCH_KEYSPACE;
    let session = cassandra::connect(&cassandra::CassandraConfig::new(vec![
        args.cassandra.clone(),
    ]))
    .await?;
    let table = datagen::bench_table(&session, args.shape, args.rows, args.reuse).await?;
    let source = SourceTable::load(&session, keyspace, &table).await?;
    let splits = plan_splits(
        &session,
        keyspace,
        &table,
        SplitCount::Fixed(args.splits),
        None,
    )
    .await?;

    let (mut fetch, mut ferry) = (Vec::new(), Vec::new());
    // Warm-up pass, so neither side pays for a cold page cache.
    let scan_table = CassandraTable::new(Arc::clone(&session), source, splits, args.page_size);
    fetch_only(&session, &scan_table, args.page_size, args.concurrency).await?;
    for _ in 0..args.runs.max(1) {
        // Alternate the two, so drift on a shared machine hits both alike.
        fetch.push(fetch_only(&session, &scan_table, args.page_size, args.concurrency).await?);
        ferry.push(ferry_scan(&scan_table, args.concurrency).await?);
    }
    for (name, passes) in [("fetch-only", &fetch), ("ferry", &ferry)] {
        if let Some(bad) = passes.iter().find(|p| p.rows != args.rows) {
            return Err(format!("{name} read {} rows, expected {}", bad.rows, args.rows).into());
        }
    }
    let figure = |name: &str, passes: &[Pass]| Figure::from_passes(name, passes, peak_rss_mb());
    let mut report = ScenarioReport::new("scan", args.rows);
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
        args.shape, scan_table.splits().len(), args.concurrency, args.page_size, args.runs
    ));
    report.print();
    if let Some(path) = &args.json {
        report.write(path)?;
    }
    Ok(())
}

#[derive(Debug, clap::Args)]
struct EncodeArgs {
    /// Rows in the benchmark batches.
    #[arg(long, default_value_t = 1_000_000)]
    rows: u64,
    /// Write the JSON report here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Table shape.
    #[arg(long, value_enum, default_value = "mixed")]
    shape: EncodeShape,
    /// Rows per Arrow batch (DataFusion's default batch size).
    #[arg(long, default_value_t = 8192)]
    batch_rows: usize,
    /// Runs of each side; the figures are medians.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Where the Arrow IPC file and pgpq's output go.
    #[arg(long, default_value = "target/bench-encode")]
    dir: PathBuf,
    /// Keep the Arrow IPC file (pgpq's output is always removed once compared).
    #[arg(long)]
    keep: bool,
    /// The script that runs pgpq (creates its Python venv on first use).
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/pgpq.sh"))]
    pgpq: PathBuf,
}

fn encode_bench(args: EncodeArgs) -> Result<(), BoxError> {
    std::fs::create_dir_all(&args.dir)?;
    let shape_name = format!("{:?}", args.shape).to_lowercase();
    let ipc = args.dir.join(format!("{shape_name}-{}.arrow", args.rows));
    let dump = args
        .dir
        .join(format!("{shape_name}-{}.pgpq.copy", args.rows));
    eprintln!(
        "writing {} rows of {shape_name} to {}",
        args.rows,
        ipc.display()
    );
    encode::write_ipc(args.shape, args.rows, args.batch_rows, &ipc)?;
    let batches = encode::read_ipc(&ipc)?;
    let encoder = ferry_connectors::yugabyte::CopyEncoder::try_new(
        &args.shape.schema(),
        &args.shape.target(),
    )?;

    // Warm-up of both sides, which also produces the bytes to compare.
    let ferry_bytes = encode::ferry_stream(&encoder, &batches);
    let warm = encode::pgpq(&args.pgpq, &ipc, Some(&dump))?;
    let comparison = encode::compare(
        args.shape,
        &ferry_bytes,
        &std::fs::read(&dump)?,
        &warm.types,
    )?;
    drop(ferry_bytes);
    let _ = std::fs::remove_file(&dump);

    let (mut single, mut pool, mut py) = (Vec::new(), Vec::new(), Vec::new());
    let mut pgpq_rss: f64 = warm.peak_rss_mb;
    for _ in 0..args.runs.max(1) {
        // Alternate the three, so drift on a shared machine hits all alike.
        single.push(encode::ferry_single(&encoder, &batches));
        pool.push(encode::ferry_pool(&encoder, &batches));
        let run = encode::pgpq(&args.pgpq, &ipc, None)?;
        pgpq_rss = pgpq_rss.max(run.peak_rss_mb);
        py.push(encode::Pass {
            rows: run.rows,
            bytes: run.bytes,
            seconds: run.seconds.first().copied().unwrap_or(f64::NAN),
        });
    }
    for (name, passes) in [("ferry-1t", &single), ("ferry", &pool), ("pgpq", &py)] {
        if let Some(bad) = passes.iter().find(|p| p.rows != args.rows) {
            return Err(format!("{name} encoded {} rows, expected {}", bad.rows, args.rows).into());
        }
    }
    let figure =
        |name: &str, passes: &[encode::Pass], rss: f64| Figure::from_passes(name, passes, rss);
    let mut report = ScenarioReport::new("encode", args.rows);
    report.versions.insert("pgpq".into(), warm.pgpq.clone());
    report
        .versions
        .insert("pyarrow".into(), warm.pyarrow.clone());
    report
        .figures
        .push(figure("ferry-1t", &single, peak_rss_mb()));
    report.figures.push(figure("ferry", &pool, peak_rss_mb()));
    report.figures.push(figure("pgpq", &py, pgpq_rss));
    let ratio = |ours: &[encode::Pass]| {
        let r: Vec<f64> = ours
            .iter()
            .zip(&py)
            .map(|(f, p)| p.seconds / f.seconds)
            .collect();
        median(&r)
    };
    report.ratios.insert("ferry-1t/pgpq".into(), ratio(&single));
    report.ratios.insert("ferry/pgpq".into(), ratio(&pool));
    report.notes.push(format!(
        "shape {shape_name}, {} rows in batches of {}, {} runs each (medians, run by run ratios), \
         one warm-up pass each; Ferry into the DESIGN.md default types, pgpq into its inferred \
         types; pgpq timed inside Python around its encode loop only; ferry-1t on one thread, \
         ferry on the rayon pool ({} threads); Ferry's peak RSS is the whole bench process's",
        args.rows,
        args.batch_rows,
        args.runs,
        rayon::current_num_threads()
    ));
    report.notes.extend(comparison);
    if !args.keep {
        let _ = std::fs::remove_file(&ipc);
    }
    report.print();
    for note in &report.notes {
        println!("  {note}");
    }
    if let Some(path) = &args.json {
        report.write(path)?;
    }
    Ok(())
}

/// The scenarios `all` runs, in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Scenario {
    Scan,
    Encode,
    Load,
    E2e,
    Latency,
    DryRun,
    Stage,
    ScaleOut,
    Validate,
}

impl Scenario {
    const ALL: [Scenario; 9] = [
        Scenario::Scan,
        Scenario::Encode,
        Scenario::Load,
        Scenario::E2e,
        Scenario::Latency,
        Scenario::DryRun,
        Scenario::Stage,
        Scenario::ScaleOut,
        Scenario::Validate,
    ];

    fn name(self) -> &'static str {
        match self {
            Scenario::Scan => "scan",
            Scenario::Encode => "encode",
            Scenario::Load => "load",
            Scenario::E2e => "e2e",
            Scenario::Latency => "latency",
            Scenario::DryRun => "dry-run",
            Scenario::Stage => "stage",
            Scenario::ScaleOut => "scale-out",
            Scenario::Validate => "validate",
        }
    }

    /// Whether it reads the Cassandra benchmark table (`ferry_bench.mixed_<rows>`).
    fn reads_cassandra(self) -> bool {
        matches!(
            self,
            Scenario::Scan
                | Scenario::E2e
                | Scenario::Latency
                | Scenario::DryRun
                | Scenario::Stage
                | Scenario::ScaleOut
                | Scenario::Validate
        )
    }
}

#[derive(Debug, clap::Args)]
struct AllArgs {
    /// Rows of every scenario.
    #[arg(long, default_value_t = 1_000_000)]
    rows: u64,
    /// Runs of every scenario; figures are medians.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Keep the Cassandra table an earlier invocation finished writing (within one invocation,
    /// the scenarios after the first that reads it always keep it).
    #[arg(long)]
    reuse: bool,
    /// Also run the Spark anchor in `e2e` at these parallelisms, comma-separated (e.g. 16,32:
    /// passed on as `e2e --spark`; the first use installs pyspark and the jars).
    #[arg(long, value_delimiter = ',')]
    spark: Vec<usize>,
    /// Scenarios to run, comma-separated (default: every one).
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Scenario>,
    /// Where each scenario's JSON goes, as `<scenario>.json`.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/results"))]
    out: PathBuf,
    /// Where the plots go.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/plots"))]
    plots: PathBuf,
    /// Skip the plots.
    #[arg(long)]
    no_plots: bool,
    /// The script that draws the plots (creates its Python venv on first use).
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/plots.sh"))]
    plot_script: PathBuf,
}

/// `ferry-bench all`: every scenario with its defaults but `--rows`, `--runs` and `--json`, as if
/// run by hand, so each JSON is the one its own subcommand writes. A failing scenario does not
/// stop the others; the command fails at the end if any did.
async fn all(args: AllArgs) -> Result<(), BoxError> {
    std::fs::create_dir_all(&args.out)
        .map_err(|e| format!("cannot create {}: {e}", args.out.display()))?;
    let only = if args.only.is_empty() {
        Scenario::ALL.to_vec()
    } else {
        args.only.clone()
    };
    let mut table_written = args.reuse;
    let mut failed = Vec::new();
    for scenario in Scenario::ALL.into_iter().filter(|s| only.contains(s)) {
        let json = args.out.join(format!("{}.json", scenario.name()));
        // No stale figures: a scenario that fails leaves no JSON to plot.
        let _ = std::fs::remove_file(&json);
        let argv = scenario_argv(scenario, &args, &json, table_written);
        eprintln!("\n=== ferry-bench {}", argv[1..].join(" "));
        let started = std::time::Instant::now();
        let result = match Cli::try_parse_from(&argv) {
            Ok(cli) => match cli.command {
                Command::Scan(a) => scan(a).await,
                Command::Encode(a) => encode_bench(a),
                Command::Load(a) => ferry_benchmarks::load::run(a).await,
                Command::E2e(a) => ferry_benchmarks::e2e::run(a).await,
                Command::Latency(a) => ferry_benchmarks::latency::run(a).await,
                Command::DryRun(a) => ferry_benchmarks::dryrun::run(a).await,
                Command::Stage(a) => ferry_benchmarks::stage::run(a).await,
                Command::ScaleOut(a) => ferry_benchmarks::scaleout::run(a).await,
                Command::Validate(a) => ferry_benchmarks::validate::run(a).await,
                other => Err(format!("`all` does not run {other:?}").into()),
            },
            Err(e) => Err(e.to_string().into()),
        };
        let took = started.elapsed().as_secs_f64();
        match result {
            Ok(()) => {
                eprintln!(
                    "=== {} done in {took:.0}s: {}",
                    scenario.name(),
                    json.display()
                );
                table_written |= scenario.reads_cassandra();
            }
            Err(e) => {
                eprintln!("=== {} FAILED after {took:.0}s: {e}", scenario.name());
                failed.push(scenario.name());
            }
        }
    }
    if !args.no_plots {
        eprintln!("\n=== plots into {}", args.plots.display());
        let status = std::process::Command::new(&args.plot_script)
            .arg("--results")
            .arg(&args.out)
            .arg("--out")
            .arg(&args.plots)
            .status()
            .map_err(|e| format!("cannot run {}: {e}", args.plot_script.display()))?;
        if !status.success() {
            failed.push("plots");
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("failed: {}", failed.join(", ")).into())
    }
}

async fn delay_proxy(upstream: &str, rtt_ms: u64, port: u16) -> Result<(), BoxError> {
    let upstream = tokio::net::lookup_host(upstream)
        .await?
        .next()
        .ok_or_else(|| format!("{upstream} resolves to no address"))?;
    let one_way = std::time::Duration::from_micros(rtt_ms * 500);
    let proxy = ferry_benchmarks::proxy::DelayProxy::start_on(port, upstream, one_way).await?;
    println!(
        "relaying {} to {upstream}, {:.1} ms added each way; Ctrl-C stops",
        proxy.addr(),
        one_way.as_secs_f64() * 1e3
    );
    tokio::signal::ctrl_c().await?;
    Ok(())
}

/// The command line `all` runs `scenario` with, as if typed after `ferry-bench`.
fn scenario_argv(scenario: Scenario, args: &AllArgs, json: &Path, reuse: bool) -> Vec<String> {
    let mut argv: Vec<String> = vec!["ferry-bench".into(), scenario.name().into()];
    argv.extend(["--rows".into(), args.rows.to_string()]);
    argv.extend(["--runs".into(), args.runs.to_string()]);
    argv.extend(["--json".into(), json.display().to_string()]);
    if scenario.reads_cassandra() && reuse {
        argv.push("--reuse".into());
    }
    // `latency` is to take the same flag once Spark runs under the latency too.
    if scenario == Scenario::E2e && !args.spark.is_empty() {
        let list: Vec<String> = args.spark.iter().map(usize::to_string).collect();
        argv.extend(["--spark".into(), list.join(",")]);
    }
    argv
}

fn exit_code(result: Result<(), BoxError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[derive(Debug, Parser)]
#[command(name = "ferry-bench", about = "Ferry's benchmarks and data generator")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Scan-only throughput: Ferry's Arrow scan against a driver-only fetch loop.
    Scan(ScanArgs),
    /// COPY encoding throughput: Ferry's encoder against pgpq on the same Arrow batches.
    Encode(EncodeArgs),
    /// Load-only throughput: pre-encoded batches over 1..M connections against the server's own
    /// `COPY FROM 'file'` of the same bytes.
    Load(ferry_benchmarks::load::LoadArgs),
    /// End-to-end migration throughput at 1..M connections against scan-only and load-only of
    /// the same rows, and the migration's peak RSS at one or more table sizes.
    E2e(ferry_benchmarks::e2e::E2eArgs),
    /// End-to-end migration throughput at 1..M connections with PostgreSQL behind a round-trip
    /// latency (20 ms) against the same migration without it.
    Latency(ferry_benchmarks::latency::LatencyArgs),
    /// Every scenario, one after the other, each writing `<scenario>.json` into `--out`, then the
    /// plots (scripts/plots.sh).
    All(AllArgs),
    /// The latency scenario's delay proxy on its own, until Ctrl-C: puts anything (`ferry
    /// migrate`, psql) behind the same latency.
    DelayProxy {
        /// The server to relay to, `host:port`.
        #[arg(long)]
        upstream: String,
        /// Round-trip latency to add, in milliseconds (half each way).
        #[arg(long, default_value_t = 20)]
        rtt_ms: u64,
        /// Port to listen on, on 127.0.0.1 (default: a free one).
        #[arg(long, default_value_t = 0)]
        port: u16,
    },
    /// `ferry dry-run` of a table against scan-only of the same splits.
    DryRun(ferry_benchmarks::dryrun::DryRunArgs),
    /// Parquet staging: `ferry dump` against scan-only and `ferry load` against load-only of the
    /// same rows, and the staged size over the COPY size.
    Stage(ferry_benchmarks::stage::StageArgs),
    /// `ferry validate` of a table against its migration, in the same run (a time ratio).
    Validate(ferry_benchmarks::validate::ValidateArgs),
    /// W workers on one run (unit leases) against one worker with as many connections, and the
    /// lease statements' share of the time on units.
    ScaleOut(ferry_benchmarks::scaleout::ScaleOutArgs),
    /// One migration whose peak RSS `e2e` reads (run by `e2e` in a process of its own).
    #[command(hide = true)]
    E2eChild(ferry_benchmarks::e2e::ChildArgs),
    /// Write a reproducible table into Cassandra.
    Datagen {
        /// Table shape.
        #[arg(long, value_enum, default_value = "quickstart")]
        shape: Shape,
        /// Target table, `keyspace.table` (created if missing; the keyspace must exist).
        #[arg(long)]
        table: String,
        /// Rows to write.
        #[arg(long, default_value_t = 100_000)]
        rows: u64,
        /// Seed; the same seed writes the same rows.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Cassandra contact point.
        #[arg(long, env = "FERRY_CASSANDRA", default_value = "127.0.0.1:9042")]
        cassandra: String,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Scan(args) => match scan(args).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Encode(args) => match encode_bench(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Load(args) => match ferry_benchmarks::load::run(args).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Command::E2e(args) => match ferry_benchmarks::e2e::run(args).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Latency(args) => exit_code(ferry_benchmarks::latency::run(args).await),
        Command::All(args) => exit_code(all(args).await),
        Command::DelayProxy {
            upstream,
            rtt_ms,
            port,
        } => exit_code(delay_proxy(&upstream, rtt_ms, port).await),
        Command::DryRun(args) => exit_code(ferry_benchmarks::dryrun::run(args).await),
        Command::Stage(args) => exit_code(ferry_benchmarks::stage::run(args).await),
        Command::Validate(args) => exit_code(ferry_benchmarks::validate::run(args).await),
        Command::ScaleOut(args) => exit_code(ferry_benchmarks::scaleout::run(args).await),
        Command::E2eChild(args) => match ferry_benchmarks::e2e::child(args).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Datagen {
            shape,
            table,
            rows,
            seed,
            cassandra,
        } => {
            let Some((keyspace, name)) = table.split_once('.') else {
                eprintln!("error: --table must be keyspace.table");
                return ExitCode::from(2);
            };
            let config = ferry_connectors::cassandra::CassandraConfig::new(vec![cassandra]);
            let result = async {
                let session = ferry_connectors::cassandra::connect(&config).await?;
                if let Some(cql) = shape.create_types_cql(keyspace) {
                    session.query_unpaged(cql, ()).await?;
                }
                session
                    .query_unpaged(shape.create_table_cql(keyspace, name), ())
                    .await?;
                let started = std::time::Instant::now();
                datagen::generate(&session, shape, keyspace, name, rows, seed).await?;
                let s = started.elapsed().as_secs_f64();
                println!(
                    "wrote {rows} rows into {table} in {s:.1}s ({:.0} rows/s)",
                    rows as f64 / s
                );
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
            }
            .await;
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_line_all_builds_parses_as_its_scenario() {
        let cli = Cli::try_parse_from([
            "ferry-bench",
            "all",
            "--rows",
            "500000",
            "--runs",
            "5",
            "--spark",
            "16,32",
        ])
        .expect("all parses");
        let Command::All(args) = cli.command else {
            panic!("not all: {:?}", cli.command);
        };
        assert!(args.only.is_empty() && !args.reuse && !args.no_plots);
        for scenario in Scenario::ALL {
            let json = args.out.join(format!("{}.json", scenario.name()));
            let mut argv = scenario_argv(scenario, &args, &json, true);
            // The scenarios that read FERRY_POSTGRES_URL get it from the command line here.
            if matches!(
                scenario,
                Scenario::Load
                    | Scenario::E2e
                    | Scenario::Latency
                    | Scenario::DryRun
                    | Scenario::Stage
                    | Scenario::ScaleOut
                    | Scenario::Validate
            ) {
                argv.extend(["--url".into(), "postgresql://u@127.0.0.1:5432/db".into()]);
            }
            let parsed = Cli::try_parse_from(&argv)
                .unwrap_or_else(|e| panic!("{scenario:?}: {argv:?}: {e}"))
                .command;
            let (rows, runs, path, reuse) = match parsed {
                Command::Scan(a) => (a.rows, a.runs, a.json, a.reuse),
                Command::Encode(a) => (a.rows, a.runs, a.json, false),
                Command::Load(a) => (a.rows, a.runs, a.json, false),
                Command::E2e(a) => {
                    assert_eq!(a.spark.parallelism, [16, 32]);
                    (a.rows, a.runs, a.json, a.reuse)
                }
                Command::Latency(a) => (a.rows, a.runs, a.json, a.reuse),
                Command::DryRun(a) => (a.rows, a.runs, a.json, a.reuse),
                Command::Stage(a) => (a.rows, a.runs, a.json, a.reuse),
                Command::ScaleOut(a) => (a.rows, a.runs, a.json, a.reuse),
                Command::Validate(a) => (a.rows, a.runs, a.json, a.reuse),
                other => panic!("{scenario:?} parsed as {other:?}"),
            };
            assert_eq!((rows, runs), (500_000, 5), "{scenario:?}");
            assert_eq!(path.as_deref(), Some(json.as_path()), "{scenario:?}");
            assert_eq!(reuse, scenario.reads_cassandra(), "{scenario:?}");
        }
    }
}
