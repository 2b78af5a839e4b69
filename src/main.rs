//! The `ferry` command: argument parsing, output and exit codes. No migration logic lives here.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ferry::pipeline::report::Status;
use ferry::pipeline::{Config, Report};
use tracing_subscriber::EnvFilter;

/// Move Apache Cassandra tables into YugabyteDB through Apache Arrow.
#[derive(Debug, Parser)]
#[command(name = "ferry", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Copy every configured table from Cassandra into the target.
    Migrate {
        /// The config file (ferry.toml).
        #[arg(short, long)]
        config: PathBuf,
        /// Write a JSON report here.
        #[arg(long)]
        report: Option<PathBuf>,
    },
}

/// Exit code for a run that started but did not finish clean.
const EXIT_FAILED: u8 = 1;
/// Exit code for bad input found before any data moved (config, arguments).
const EXIT_INVALID: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("FERRY_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    runtime.block_on(run(cli))
}

async fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Migrate { config, report } => {
            let config = match Config::load(&config) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(EXIT_INVALID);
                }
            };
            let result = ferry::pipeline::migrate(&config).await;
            finish(&result, report.as_deref())
        }
    }
}

/// Prints the summary, writes the report, and picks the exit code.
fn finish(report: &Report, path: Option<&std::path::Path>) -> ExitCode {
    for t in &report.tables {
        println!(
            "{} -> {}: {} read, {} written, {} rejected, {}/{} units, {:.1}s ({:.0} rows/s)",
            t.source,
            t.target,
            t.rows_read,
            t.rows_written,
            t.rows_rejected,
            t.units_done,
            t.units_total,
            t.elapsed_s,
            t.rows_per_s
        );
    }
    let mut code = match report.status {
        Status::Ok => ExitCode::SUCCESS,
        Status::Failed => ExitCode::from(EXIT_FAILED),
    };
    if let Some(e) = &report.error {
        eprintln!("error: {e}");
    }
    if let Some(path) = path
        && let Err(e) = report.write(path)
    {
        eprintln!("error: {e}");
        code = ExitCode::from(EXIT_FAILED);
    }
    code
}
