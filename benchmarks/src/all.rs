//! `ferry-bench all`: every scenario, one after the other, each as if run by hand with its own
//! defaults but `--rows`, `--runs` and `--json`, then the plots.

use std::path::{Path, PathBuf};

use crate::cli::{Cli, Command};
use clap::Parser;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The scenarios `all` runs, in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    Scan,
    Encode,
    Load,
    E2e,
    Latency,
    DryRun,
    Stage,
    ScaleOut,
    Validate,
    Upsert,
}

impl Scenario {
    pub const ALL: [Scenario; 10] = [
        Scenario::Scan,
        Scenario::Encode,
        Scenario::Load,
        Scenario::E2e,
        Scenario::Latency,
        Scenario::DryRun,
        Scenario::Stage,
        Scenario::ScaleOut,
        Scenario::Validate,
        Scenario::Upsert,
    ];

    pub fn name(self) -> &'static str {
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
            Scenario::Upsert => "upsert",
        }
    }

    /// Whether it reads the Cassandra benchmark table (`ferry_bench.mixed_<rows>`).
    pub fn reads_cassandra(self) -> bool {
        matches!(
            self,
            Scenario::Scan
                | Scenario::E2e
                | Scenario::Latency
                | Scenario::DryRun
                | Scenario::Stage
                | Scenario::ScaleOut
                | Scenario::Validate
                | Scenario::Upsert
        )
    }
}

#[derive(Debug, clap::Args)]
pub struct AllArgs {
    /// Rows of every scenario.
    #[arg(long, default_value_t = 1_000_000)]
    pub rows: u64,
    /// Runs of every scenario; figures are medians.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Keep the Cassandra table an earlier invocation finished writing (within one invocation,
    /// the scenarios after the first that reads it always keep it).
    #[arg(long)]
    pub reuse: bool,
    /// Also run the Spark anchor in `e2e` at these parallelisms, comma-separated (e.g. 16,32:
    /// passed on as `e2e --spark`; the first use installs pyspark and the jars).
    #[arg(long, value_delimiter = ',')]
    pub spark: Vec<usize>,
    /// Scenarios to run, comma-separated (default: every one).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub only: Vec<Scenario>,
    /// Where each scenario's JSON goes, as `<scenario>.json`.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/results"))]
    pub out: PathBuf,
    /// Where the plots go.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/plots"))]
    pub plots: PathBuf,
    /// Skip the plots.
    #[arg(long)]
    pub no_plots: bool,
    /// The script that draws the plots (creates its Python venv on first use).
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/plots.sh"))]
    pub plot_script: PathBuf,
}

/// `ferry-bench all`: every scenario with its defaults but `--rows`, `--runs` and `--json`, as if
/// run by hand, so each JSON is the one its own subcommand writes. A failing scenario does not
/// stop the others; the command fails at the end if any did.
pub async fn run(args: AllArgs) -> Result<(), BoxError> {
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
            Ok(Cli {
                command: Command::All(_),
            }) => Err("`all` does not run itself".into()),
            // Boxed: `cli::run` runs `all`, which runs `cli::run`.
            Ok(cli) => Box::pin(crate::cli::run(cli.command)).await,
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

/// The command line `all` runs `scenario` with, as if typed after `ferry-bench`.
pub fn scenario_argv(scenario: Scenario, args: &AllArgs, json: &Path, reuse: bool) -> Vec<String> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

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
            // The scenarios that read FERRY_POSTGRES_URL (all but these two) get it here.
            if !matches!(scenario, Scenario::Scan | Scenario::Encode) {
                argv.extend(["--url".into(), "postgresql://u@127.0.0.1:5432/db".into()]);
            }
            let parsed = Cli::try_parse_from(&argv)
                .unwrap_or_else(|e| panic!("{scenario:?}: {argv:?}: {e}"))
                .command;
            let (bench, reuse) = match parsed {
                Command::Scan(a) => (a.bench, a.source.reuse),
                Command::Encode(a) => (a.bench, false),
                Command::Load(a) => (a.bench, false),
                Command::E2e(a) => {
                    assert_eq!(a.spark.parallelism, [16, 32]);
                    (a.bench, a.source.reuse)
                }
                Command::Latency(a) => (a.bench, a.source.reuse),
                Command::DryRun(a) => (a.bench, a.source.reuse),
                Command::Stage(a) => (a.bench, a.source.reuse),
                Command::ScaleOut(a) => (a.bench, a.source.reuse),
                Command::Validate(a) => (a.bench, a.source.reuse),
                Command::Upsert(a) => (a.bench, a.source.reuse),
                other => panic!("{scenario:?} parsed as {other:?}"),
            };
            assert_eq!((bench.rows, bench.runs), (500_000, 5), "{scenario:?}");
            assert_eq!(bench.json.as_deref(), Some(json.as_path()), "{scenario:?}");
            assert_eq!(reuse, scenario.reads_cassandra(), "{scenario:?}");
        }
    }
}
