//! The `ferry` command: argument parsing, output and exit codes. No migration logic lives here.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use ferry::pipeline::query::{self, OutputFormat, QuerySession};
use ferry::pipeline::report::Status;
use ferry::pipeline::schema::SchemaOutput;
use ferry::pipeline::{Config, PipelineError, Report};
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
        /// The run to start or resume (overrides `run.id`); units it committed are skipped.
        #[arg(long)]
        run_id: Option<String>,
        /// Forget the run's checkpoints first and load every unit again. Target rows already
        /// there stay: empty the tables first, or expect duplicates.
        #[arg(long)]
        fresh: bool,
    },
    /// Print the CREATE TABLE statement of every configured table's target, generated from the
    /// Cassandra schema through the transform, in the target server's syntax.
    Schema {
        /// The config file (ferry.toml).
        #[arg(short, long)]
        config: PathBuf,
        /// Also run each statement whose table does not exist yet.
        #[arg(long)]
        apply: bool,
    },
    /// Run SQL over the configured Cassandra tables (named `keyspace.table`) and print the result.
    Query {
        /// The config file (ferry.toml).
        #[arg(short, long)]
        config: PathBuf,
        /// How to print the result.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// Print at most N rows [default: 1000 for table, all for csv and json].
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        max_rows: Option<u64>,
        /// Read the SQL from this file instead of the command line.
        #[arg(long, value_name = "PATH", conflicts_with = "sql")]
        sql_file: Option<PathBuf>,
        /// The query, e.g. "SELECT count(*) FROM ks.events".
        #[arg(required_unless_present = "sql_file")]
        sql: Option<String>,
    },
}

/// Output formats of `ferry query`.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    /// An aligned text table.
    Table,
    /// CSV with a header line.
    Csv,
    /// Newline-delimited JSON, one object per row.
    Json,
}

impl From<Format> for OutputFormat {
    fn from(f: Format) -> Self {
        match f {
            Format::Table => OutputFormat::Table,
            Format::Csv => OutputFormat::Csv,
            Format::Json => OutputFormat::Json,
        }
    }
}

/// Exit code for a run that started but did not finish clean.
const EXIT_FAILED: u8 = 1;
/// Exit code for bad input found before any data moved (config, arguments, a query that cannot
/// be planned).
const EXIT_INVALID: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A query's result is the output; the driver's connection chatter would only bury it.
    let default_level = match cli.command {
        Command::Query { .. } | Command::Schema { .. } => "warn",
        Command::Migrate { .. } => "info",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("FERRY_LOG").unwrap_or_else(|_| EnvFilter::new(default_level)),
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
        Command::Migrate {
            config,
            report,
            run_id,
            fresh,
        } => {
            let mut config = match Config::load(&config) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(EXIT_INVALID);
                }
            };
            if let Some(id) = run_id {
                config.run.id = id;
            }
            config.run.fresh = fresh;
            let result = ferry::pipeline::migrate(&config).await;
            finish(&result, report.as_deref())
        }
        Command::Schema { config, apply } => {
            let config = match Config::load(&config) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(EXIT_INVALID);
                }
            };
            match ferry::pipeline::schema::schema(&config, apply).await {
                Ok(out) => {
                    print_schema(&out);
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(EXIT_FAILED)
                }
            }
        }
        Command::Query {
            config,
            format,
            max_rows,
            sql_file,
            sql,
        } => {
            let sql = match (sql, sql_file) {
                (Some(sql), _) => sql,
                (None, Some(path)) => match std::fs::read_to_string(&path) {
                    Ok(sql) => sql,
                    Err(e) => {
                        eprintln!("error: cannot read SQL file {}: {e}", path.display());
                        return ExitCode::from(EXIT_INVALID);
                    }
                },
                // clap already requires one of the two.
                (None, None) => {
                    eprintln!("error: give the query as an argument or with --sql-file");
                    return ExitCode::from(EXIT_INVALID);
                }
            };
            let config = match Config::load(&config) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(EXIT_INVALID);
                }
            };
            let format = OutputFormat::from(format);
            let max_rows = max_rows
                .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
                .or(format.default_max_rows());
            match run_query(&config, &sql, format, max_rows).await {
                Ok(out) => {
                    if out.truncated {
                        eprintln!(
                            "note: printed the first {} rows; the result has more (raise --max-rows)",
                            out.rows
                        );
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    match e {
                        PipelineError::Query(_) => ExitCode::from(EXIT_INVALID),
                        _ => ExitCode::from(EXIT_FAILED),
                    }
                }
            }
        }
    }
}

/// Plans `sql` over the config's keyspaces and prints its result on stdout.
async fn run_query(
    config: &Config,
    sql: &str,
    format: OutputFormat,
    max_rows: Option<usize>,
) -> Result<query::QueryOutput, PipelineError> {
    let session = QuerySession::connect(config).await?;
    let df = session.sql(sql).await?;
    let stdout = std::io::stdout();
    query::write_result(df, format, max_rows, std::io::BufWriter::new(stdout.lock())).await
}

/// Prints each statement on stdout (`;`-terminated, a blank line between), and warnings and
/// what `--apply` did on stderr.
fn print_schema(out: &SchemaOutput) {
    for (i, t) in out.tables.iter().enumerate() {
        for warning in &t.ddl.warnings {
            eprintln!("warning: {warning}");
        }
        if i > 0 {
            println!();
        }
        println!("{};", t.ddl.sql);
        match t.created {
            Some(true) => eprintln!("created {}", t.target),
            Some(false) => eprintln!("{} already exists; left as it is", t.target),
            None => {}
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
