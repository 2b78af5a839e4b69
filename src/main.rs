//! The `ferry` command: argument parsing, output and exit codes. No migration logic lives here.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use ferry::connectors::staging::StagingLocation;
use ferry::pipeline::lease::WorkerIdentity;
use ferry::pipeline::progress::{Display, DisplayTask, RunProgress, clock, group};
use ferry::pipeline::query::{self, OutputFormat, QuerySession};
use ferry::pipeline::report::Status;
use ferry::pipeline::schema::SchemaOutput;
use ferry::pipeline::status;
use ferry::pipeline::validate::{self, ValidateOptions, ValidateReport};
use ferry::pipeline::{Config, DumpOptions, PipelineError, Report};
use indicatif::{MultiProgress, ProgressDrawTarget};
use tokio::signal::unix::{SignalKind, signal};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

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
        #[command(flatten)]
        config: ConfigArgs,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Stage every configured table as Parquet files plus a manifest at a URL (a path, file://,
    /// s3://, gs://, az://), split by split, through its transform unless --raw. Running it again
    /// resumes: the splits the manifest lists as done are skipped.
    Dump {
        #[command(flatten)]
        config: ConfigArgs,
        /// Where to stage the tables (overrides `staging.url`).
        #[arg(long, value_name = "URL")]
        to: Option<String>,
        /// Stage the source columns as read, without the transform; `ferry load` applies it.
        #[arg(long)]
        raw: bool,
        /// Delete what an earlier dump staged for these tables and dump them again.
        #[arg(long)]
        restart: bool,
        /// Write a JSON report here.
        #[arg(long)]
        report: Option<PathBuf>,
        /// How progress is shown: bars on a terminal, log lines otherwise (`auto`).
        #[arg(long, value_enum, default_value_t = ProgressMode::Auto)]
        progress: ProgressMode,
    },
    /// Load staged tables (written by `ferry dump`) into the target: each staged split is one
    /// unit, through the transform (unless the dump applied it), with the same checkpoints,
    /// resume and rejects as `migrate`. Cassandra is not needed.
    Load {
        #[command(flatten)]
        config: ConfigArgs,
        /// Where the tables are staged (overrides `staging.url`).
        #[arg(long, value_name = "URL")]
        from: Option<String>,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Show where a run stands: per table the units done, rows, rejects, rate and ETA, read from
    /// the run state in the target database (Cassandra is not needed).
    Status {
        /// The config file (ferry.toml).
        #[arg(short, long)]
        config: PathBuf,
        /// The run to show (overrides `run.id`).
        #[arg(long)]
        run_id: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print the CREATE TABLE statement of every configured table's target, generated from the
    /// Cassandra schema through the transform, in the target server's syntax.
    Schema {
        #[command(flatten)]
        config: ConfigArgs,
        /// Also run each statement whose table does not exist yet.
        #[arg(long)]
        apply: bool,
    },
    /// Read every table through its transform and predict the migration, writing nothing to the
    /// target: rows and bytes, column profiles, rejects, split skew, ETA and a preview.
    DryRun {
        #[command(flatten)]
        config: ConfigArgs,
        /// Read only this percentage of each table's splits (evenly spread) and scale up.
        #[arg(long, value_name = "PCT", value_parser = parse_percent)]
        sample: Option<f64>,
        /// Write the JSON report here.
        #[arg(long)]
        report: Option<PathBuf>,
        /// Write a self-contained HTML report here.
        #[arg(long, value_name = "FILE.html")]
        html: Option<PathBuf>,
        /// Transformed rows to show per table (overrides `dry_run.preview_rows`).
        #[arg(long, value_name = "N")]
        preview: Option<usize>,
        /// Read the tables staged at this URL (`ferry dump`) instead of Cassandra.
        #[arg(long, value_name = "URL")]
        from: Option<String>,
    },
    /// Show what `migrate` would do with each table: splits, plans, pushdown, target mapping or
    /// DDL, mode and unit semantics. Reads no rows and writes nothing.
    Explain {
        #[command(flatten)]
        config: ConfigArgs,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Prove that each target table equals its transformed source, split by split: counts and
    /// content hashes per split, then the rows that differ; `--repair` reloads those splits.
    Validate {
        #[command(flatten)]
        config: ConfigArgs,
        /// Only rows matching this predicate over the transform's output columns, on both sides
        /// (column names, literals, comparisons, AND/OR/NOT, IS NULL, IN, BETWEEN, LIKE).
        #[arg(long = "where", value_name = "SQL")]
        filter: Option<String>,
        /// Reload every split that differs (delete its target rows, copy it again, in one
        /// transaction), then check those splits again.
        #[arg(long)]
        repair: bool,
        /// The run whose split plan to use (overrides `run.id`); without a stored plan the splits
        /// are planned as `migrate` would.
        #[arg(long)]
        run_id: Option<String>,
        /// Rows listed per kind of difference and table (totals are always complete).
        #[arg(long, value_name = "N", default_value_t = 100)]
        max_examples: usize,
        /// Write the JSON report here.
        #[arg(long)]
        report: Option<PathBuf>,
    },
    /// Run SQL over the configured Cassandra tables (named `keyspace.table`), or with --from over
    /// the tables staged at a URL, and print the result.
    Query {
        /// The config file (ferry.toml); with --from it only supplies `[staging]` credentials, and
        /// may be left out (credentials then come from the environment).
        #[arg(short, long, required_unless_present = "from")]
        config: Option<PathBuf>,
        /// Query the tables `ferry dump` staged at this URL instead of Cassandra.
        #[arg(long, value_name = "URL")]
        from: Option<String>,
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

/// How `migrate` shows progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ProgressMode {
    /// Bars when stderr is a terminal, log lines otherwise.
    Auto,
    /// indicatif bars, one per table.
    Bars,
    /// A structured `progress` log line per table every 10 seconds.
    Log,
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
/// Exit code for a run stopped by Ctrl-C or SIGTERM (128 + SIGINT, as shells report it).
const EXIT_INTERRUPTED: u8 = 130;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let bars = match cli.command {
        Command::Migrate {
            run: RunArgs { progress, .. },
            ..
        }
        | Command::Dump { progress, .. }
        | Command::Load {
            run: RunArgs { progress, .. },
            ..
        } => match progress {
            ProgressMode::Bars => true,
            ProgressMode::Log => false,
            ProgressMode::Auto => std::io::stderr().is_terminal(),
        },
        _ => false,
    };
    // A query's result is the output; the driver's connection chatter would only bury it. With
    // bars, they say what the per-unit lines would; warnings and errors still show above them.
    let default_level = match cli.command {
        Command::Query { .. }
        | Command::Schema { .. }
        | Command::Status { .. }
        | Command::DryRun { .. }
        | Command::Validate { .. }
        | Command::Explain { .. } => "warn",
        Command::Migrate { .. } | Command::Dump { .. } | Command::Load { .. } if bars => "warn",
        Command::Migrate { .. } | Command::Dump { .. } | Command::Load { .. } => "info",
    };
    let multi = bars.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("FERRY_LOG").unwrap_or_else(|_| EnvFilter::new(default_level)),
        )
        .with_writer(LogWriter(multi.clone()))
        .with_ansi(std::io::stderr().is_terminal())
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
    runtime.block_on(run(cli, multi))
}

/// Log lines go to stderr; with progress bars, through [`MultiProgress::suspend`], so that a
/// line is printed above the bars instead of through them.
#[derive(Clone)]
struct LogWriter(Option<MultiProgress>);

/// One log event, written whole when dropped.
struct LogLine {
    buf: Vec<u8>,
    multi: Option<MultiProgress>,
}

impl<'a> MakeWriter<'a> for LogWriter {
    type Writer = LogLine;

    fn make_writer(&'a self) -> LogLine {
        LogLine {
            buf: Vec::with_capacity(256),
            multi: self.0.clone(),
        }
    }
}

impl Write for LogLine {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLine {
    fn drop(&mut self) {
        // Nowhere to report a failed write to stderr.
        let write = || drop(std::io::stderr().write_all(&self.buf));
        match &self.multi {
            Some(multi) => multi.suspend(write),
            None => write(),
        }
    }
}

/// Ctrl-C or SIGTERM stops the run gracefully: no new unit starts, units in flight finish or
/// roll back. A second one exits at once; the server rolls back what was in flight.
fn stop_on_signals(progress: Arc<RunProgress>) {
    tokio::spawn(async move {
        let Ok(mut term) = signal(SignalKind::terminate()) else {
            tracing::warn!("cannot listen for SIGTERM; Ctrl-C still stops the run");
            let _ = tokio::signal::ctrl_c().await;
            progress.stop();
            return;
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        progress.stop();
        tracing::warn!(
            "stopping: no new unit starts, units in flight finish or roll back; the run resumes \
             when started again (a second Ctrl-C exits at once)"
        );
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        eprintln!("error: stopped at once; units in flight roll back, run again to resume");
        std::process::exit(i32::from(EXIT_INTERRUPTED));
    });
}

/// `--restart` empties tables: confirm it on a terminal; elsewhere `--yes` must say so.
fn confirm_restart(config: &Config) -> Result<(), String> {
    let what: Vec<String> = match &config.only_tables {
        Some(names) => vec![format!("  the tables --tables names: {}", names.join(", "))],
        None => {
            let tables = config.tables.iter().map(|t| {
                let (schema, name) = t.target_parts(&config.target.schema);
                format!("  {schema}.{name}")
            });
            let keyspaces = config.keyspaces.iter().map(|k| {
                format!(
                    "  every table of keyspace {} matching include {:?}, exclude {:?}",
                    k.name, k.include, k.exclude
                )
            });
            tables.chain(keyspaces).collect()
        }
    };
    if !std::io::stdin().is_terminal() {
        return Err(
            "--restart empties the target tables; add --yes to confirm it when not on a terminal"
                .into(),
        );
    }
    eprintln!(
        "--restart deletes every row of these target tables and the progress of run `{}`:\n{}\n\
         Type `yes` to go on:",
        config.run.id,
        what.join("\n")
    );
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(|e| format!("cannot read the answer: {e}"))?;
    if answer.trim() == "yes" {
        Ok(())
    } else {
        Err("--restart not confirmed; nothing was changed".into())
    }
}

/// Why a command stopped before or after its work: the message for stderr and the exit code.
struct Exit {
    code: u8,
    message: String,
}

impl Exit {
    /// Bad input found before any data moved.
    fn invalid(e: impl std::fmt::Display) -> Self {
        Self {
            code: EXIT_INVALID,
            message: e.to_string(),
        }
    }

    /// A command that started and failed.
    fn failed(e: impl std::fmt::Display) -> Self {
        Self {
            code: EXIT_FAILED,
            message: e.to_string(),
        }
    }
}

async fn run(cli: Cli, multi: Option<MultiProgress>) -> ExitCode {
    match run_command(cli.command, multi).await {
        Ok(code) => code,
        Err(exit) => {
            eprintln!("error: {}", exit.message);
            ExitCode::from(exit.code)
        }
    }
}

/// Runs one command. The commands that report (migrate, dump, load, dry-run, validate) print
/// their own errors and pick their exit code; `Err` is for what stopped a command early.
async fn run_command(command: Command, multi: Option<MultiProgress>) -> Result<ExitCode, Exit> {
    match command {
        Command::Migrate { config, run } => {
            let mut config = config.load().map_err(Exit::invalid)?;
            let report = run.apply(&mut config).map_err(Exit::invalid)?;
            let progress = Arc::new(RunProgress::default());
            stop_on_signals(Arc::clone(&progress));
            let display = DisplayTask::spawn(Arc::clone(&progress), display_of(multi));
            let result = ferry::pipeline::migrate_with(&config, progress).await;
            display.finish().await;
            Ok(finish(&result, report.as_deref()))
        }
        Command::Dump {
            config,
            to,
            raw,
            restart,
            report,
            progress: _,
        } => {
            let config = config.load().map_err(Exit::invalid)?;
            let location =
                staging_location(&config, to.as_deref(), "--to").map_err(Exit::invalid)?;
            let progress = Arc::new(RunProgress::default());
            stop_on_signals(Arc::clone(&progress));
            let display = DisplayTask::spawn(Arc::clone(&progress), display_of(multi));
            let options = DumpOptions { raw, restart };
            let result = ferry::pipeline::dump_with(&config, &location, options, progress).await;
            display.finish().await;
            Ok(finish(&result, report.as_deref()))
        }
        Command::Load { config, from, run } => {
            let mut config = config.load().map_err(Exit::invalid)?;
            let location =
                staging_location(&config, from.as_deref(), "--from").map_err(Exit::invalid)?;
            let report = run.apply(&mut config).map_err(Exit::invalid)?;
            let progress = Arc::new(RunProgress::default());
            stop_on_signals(Arc::clone(&progress));
            let display = DisplayTask::spawn(Arc::clone(&progress), display_of(multi));
            let result = ferry::pipeline::load_with(&config, location, progress).await;
            display.finish().await;
            Ok(finish(&result, report.as_deref()))
        }
        Command::Status {
            config,
            run_id,
            json,
        } => {
            let mut config = Config::load(&config).map_err(Exit::invalid)?;
            if let Some(id) = run_id {
                config.run.id = id;
            }
            let client = ferry::connectors::yugabyte::connect(&config.target)
                .await
                .map_err(Exit::failed)?;
            let state = status::status(&config, &client)
                .await
                .map_err(Exit::failed)?
                .ok_or_else(|| {
                    Exit::failed(format!(
                        "no run `{}` in the target's run state (ferry_state): nothing has run \
                         under that id yet",
                        config.run.id
                    ))
                })?;
            if json {
                let text = serde_json::to_string_pretty(&state).map_err(Exit::failed)?;
                println!("{text}");
            } else {
                print_status(&state);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Schema { config, apply } => {
            let config = config.load().map_err(Exit::invalid)?;
            let out = ferry::pipeline::schema::schema(&config, apply)
                .await
                .map_err(Exit::failed)?;
            print_schema(&out);
            Ok(ExitCode::SUCCESS)
        }
        Command::DryRun {
            config,
            sample,
            report,
            html,
            preview,
            from,
        } => {
            let config = config.load().map_err(Exit::invalid)?;
            let from = from
                .as_deref()
                .map(|url| staging_location(&config, Some(url), "--from"))
                .transpose()
                .map_err(Exit::invalid)?;
            let paths = (report.as_deref(), html.as_deref());
            Ok(dry_run(&config, sample, preview, from, paths).await)
        }
        Command::Validate {
            config,
            filter,
            repair,
            run_id,
            max_examples,
            report,
        } => {
            let mut config = config.load().map_err(Exit::invalid)?;
            if let Some(id) = run_id {
                config.run.id = id;
            }
            let options = ValidateOptions {
                filter,
                repair,
                max_examples: Some(max_examples),
            };
            let result = validate::validate(&config, &options).await;
            print_validation(&result);
            let mut code = if result.invalid {
                ExitCode::from(EXIT_INVALID)
            } else {
                match result.status {
                    Status::Ok => ExitCode::SUCCESS,
                    Status::Failed => ExitCode::from(EXIT_FAILED),
                }
            };
            if let Some(e) = &result.error {
                eprintln!("error: {e}");
            }
            if let Some(path) = report
                && let Err(e) = result.write(&path)
            {
                eprintln!("error: {e}");
                code = ExitCode::from(EXIT_FAILED);
            }
            Ok(code)
        }
        Command::Explain { config, json } => {
            let config = config.load().map_err(Exit::invalid)?;
            let out = ferry::pipeline::explain::explain(&config)
                .await
                .map_err(Exit::failed)?;
            if json {
                let text = serde_json::to_string_pretty(&out).map_err(Exit::failed)?;
                println!("{text}");
            } else {
                print!("{}", out.to_text());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Query {
            config,
            from,
            format,
            max_rows,
            sql_file,
            sql,
        } => {
            let sql = match (sql, sql_file) {
                (Some(sql), _) => sql,
                (None, Some(path)) => std::fs::read_to_string(&path).map_err(|e| {
                    Exit::invalid(format!("cannot read SQL file {}: {e}", path.display()))
                })?,
                // clap already requires one of the two.
                (None, None) => {
                    return Err(Exit::invalid(
                        "give the query as an argument or with --sql-file",
                    ));
                }
            };
            let config = config
                .as_deref()
                .map(Config::load)
                .transpose()
                .map_err(Exit::invalid)?;
            let source = match (from, config) {
                (Some(url), config) => {
                    let staging = config.map(|c| c.staging).unwrap_or_default();
                    // A relative `--from` path is relative to where the user stands.
                    let location = StagingLocation::open(&url, &staging, std::path::Path::new(""))
                        .map_err(Exit::invalid)?;
                    QuerySource::Staged(location)
                }
                (None, Some(config)) => QuerySource::Cassandra(Box::new(config)),
                // clap requires --config without --from.
                (None, None) => {
                    return Err(Exit::invalid(
                        "give --config, or --from URL to query staged tables",
                    ));
                }
            };
            let format = OutputFormat::from(format);
            let max_rows = max_rows
                .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
                .or(format.default_max_rows());
            let out = run_query(&source, &sql, format, max_rows)
                .await
                .map_err(|e| match e {
                    PipelineError::Query(_) => Exit::invalid(e),
                    _ => Exit::failed(e),
                })?;
            if out.truncated {
                eprintln!(
                    "note: printed the first {} rows; the result has more (raise --max-rows)",
                    out.rows
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `--sample PCT`: a percentage in (0, 100].
fn parse_percent(text: &str) -> Result<f64, String> {
    match text.trim_end_matches('%').parse::<f64>() {
        Ok(p) if p > 0.0 && p <= 100.0 => Ok(p),
        _ => Err(format!("{text:?} is not a percentage in (0, 100]")),
    }
}

/// Runs `ferry dry-run`: prints the summary, writes the reports, and picks the exit code (0 when
/// nothing found would stop `migrate`).
async fn dry_run(
    config: &Config,
    sample: Option<f64>,
    preview: Option<usize>,
    from: Option<StagingLocation>,
    (report, html): (Option<&std::path::Path>, Option<&std::path::Path>),
) -> ExitCode {
    use ferry::pipeline::dryrun::{self, DryRunOptions};
    let mut settings = config.dry_run.clone();
    if let Some(n) = preview {
        settings.preview_rows = n;
    }
    let options = DryRunOptions {
        sample_percent: sample,
        settings,
        from,
    };
    let result = dryrun::dry_run(config, &options).await;
    print!("{}", dryrun::text::summary(&result));
    if let Some(e) = &result.error {
        eprintln!("error: {e}");
    }
    let mut code = match result.status {
        Status::Ok => ExitCode::SUCCESS,
        Status::Failed => ExitCode::from(EXIT_FAILED),
    };
    let written = [
        report.map(|p| result.write_json(p)),
        html.map(|p| result.write_html(p)),
    ];
    for e in written.into_iter().flatten().filter_map(Result::err) {
        eprintln!("error: {e}");
        code = ExitCode::from(EXIT_FAILED);
    }
    code
}

/// What `ferry query` reads.
enum QuerySource {
    /// The config's Cassandra keyspaces.
    Cassandra(Box<Config>),
    /// The tables staged at a URL.
    Staged(StagingLocation),
}

/// Plans `sql` over the config's keyspaces (or the staged tables) and prints its result on
/// stdout.
async fn run_query(
    source: &QuerySource,
    sql: &str,
    format: OutputFormat,
    max_rows: Option<usize>,
) -> Result<query::QueryOutput, PipelineError> {
    let session = match source {
        QuerySource::Cassandra(config) => QuerySession::connect(config).await?,
        QuerySource::Staged(location) => QuerySession::staged(location).await?,
    };
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

/// Bars when there is a bar display, log lines otherwise.
fn display_of(multi: Option<MultiProgress>) -> Display {
    match multi {
        Some(multi) => Display::Bars(multi),
        None => Display::Log(PROGRESS_LOG_INTERVAL),
    }
}

/// The config file, and which of its tables a command works on.
#[derive(Debug, clap::Args)]
struct ConfigArgs {
    /// The config file (ferry.toml).
    #[arg(short, long)]
    config: PathBuf,
    /// Only these of its tables, comma-separated (`keyspace.table`, `schema.table` or a table
    /// name); every name must match one.
    #[arg(long, value_delimiter = ',', value_name = "A,B")]
    tables: Option<Vec<String>>,
}

impl ConfigArgs {
    /// Reads the config and applies `--tables` (or records it, for the command to apply once
    /// the `[[keyspace]]` entries are expanded).
    fn load(self) -> Result<Config, PipelineError> {
        let mut config = Config::load(&self.config)?;
        config.only_tables = self.tables;
        // With no [[keyspace]] to expand, a name that matches no table is known now.
        if config.keyspaces.is_empty() {
            config.select_tables().map_err(PipelineError::Argument)?;
        }
        Ok(config)
    }
}

/// The options of a run that loads the target (`migrate`, `load`).
#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Write a JSON report here.
    #[arg(long)]
    report: Option<PathBuf>,
    /// The run to start or resume (overrides `run.id`); units it committed are skipped.
    #[arg(long)]
    run_id: Option<String>,
    /// Start over: empty every target table of the config and forget the run's progress, then
    /// load everything. Asks first on a terminal.
    #[arg(long)]
    restart: bool,
    /// Do not ask before `--restart` empties the target tables.
    #[arg(long, requires = "restart")]
    yes: bool,
    /// How progress is shown: bars on a terminal, log lines otherwise (`auto`).
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto)]
    progress: ProgressMode,
    #[command(flatten)]
    worker: WorkerArgs,
}

impl RunArgs {
    /// Puts the run id, `--restart` (confirmed on a terminal unless `--yes`) and the worker's
    /// identity into `config`; returns where the report goes.
    fn apply(self, config: &mut Config) -> Result<Option<PathBuf>, String> {
        if let Some(id) = self.run_id {
            config.run.id = id;
        }
        config.run.worker = self.worker.identity()?;
        if self.restart && !self.yes {
            confirm_restart(config)?;
        }
        config.run.restart = self.restart;
        Ok(self.report)
    }
}

/// Who this process is among the workers of a run (`migrate`, `load`).
#[derive(Debug, clap::Args)]
struct WorkerArgs {
    /// This worker's name in the run state [default: <hostname>-<pid>-<random>].
    #[arg(long, env = "FERRY_WORKER_ID")]
    worker_id: Option<String>,
    /// Static sharding: the number of workers sharing the run; each takes its own units first
    /// (unit % N = index), then units the others have not started.
    #[arg(long, env = "FERRY_WORKERS", requires = "worker_index", value_parser = clap::value_parser!(u32).range(1..))]
    workers: Option<u32>,
    /// Static sharding: this worker's index, 0..N-1 (in a Kubernetes Indexed Job, the
    /// completion index).
    #[arg(long, env = "FERRY_WORKER_INDEX", requires = "workers")]
    worker_index: Option<u32>,
}

impl WorkerArgs {
    fn identity(self) -> Result<WorkerIdentity, String> {
        let shard = match (self.workers, self.worker_index) {
            (Some(n), Some(i)) if i >= n => {
                return Err(format!("--worker-index {i} must be below --workers {n}"));
            }
            (Some(n), Some(i)) => Some((n, i)),
            _ => None,
        };
        Ok(WorkerIdentity::new(self.worker_id, shard))
    }
}

/// The staging URL of `dump`/`load`: the command line's (`flag`), else `staging.url` (relative to
/// the config file).
fn staging_location(
    config: &Config,
    url: Option<&str>,
    flag: &str,
) -> Result<StagingLocation, String> {
    let opened = match (url, &config.staging.url) {
        (Some(url), _) => StagingLocation::open(url, &config.staging, std::path::Path::new("")),
        (None, Some(url)) => StagingLocation::open(url, &config.staging, &config.base_dir),
        (None, None) => {
            return Err(format!(
                "no staging URL: give {flag} URL, or set `url` in the config's [staging] section"
            ));
        }
    };
    opened.map_err(|e| e.to_string())
}

/// How often `--progress log` writes a line per table.
const PROGRESS_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Prints a run's state as a table.
fn print_status(state: &status::RunState) {
    let attempt = state
        .attempt_started_at
        .as_deref()
        .map_or(String::new(), |at| format!(", this attempt since {at}"));
    println!(
        "run {}: {} (attempt {}{attempt})",
        state.run_id, state.status, state.attempts
    );
    if let Some(e) = &state.error {
        println!("  last error: {e}");
    }
    let rows: Vec<[String; 6]> = state
        .tables
        .iter()
        .map(|t| {
            [
                t.target.clone(),
                if t.units_total == 0 {
                    "not started".to_string()
                } else {
                    format!("{}/{}", t.units_done, t.units_total)
                },
                group(t.rows_written.max(0) as u64),
                group(t.rows_rejected.max(0) as u64),
                t.rows_per_s.map_or("-".into(), |r| format!("{r:.0}")),
                match t.eta_s {
                    Some(s) => clock(Duration::from_secs_f64(s)),
                    None if t.units_total > 0 && t.units_done == t.units_total => "done".into(),
                    None => "-".into(),
                },
            ]
        })
        .collect();
    let header = ["table", "units", "rows", "rejected", "rows/s", "ETA"];
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<&str>| {
        let text: Vec<String> = cells
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, w))| {
                if i == 0 {
                    format!("{c:<w$}")
                } else {
                    format!("{c:>w$}")
                }
            })
            .collect();
        println!("{}", text.join("  "));
    };
    line(header.to_vec());
    for r in &rows {
        line(r.iter().map(String::as_str).collect());
    }
    if !state.workers.is_empty() {
        println!();
        println!("workers:");
        for w in &state.workers {
            println!(
                "  {}  {}  {} unit(s) in flight, {} committed, {} rows{}",
                w.worker,
                if w.alive { "alive" } else { "idle " },
                w.units_in_flight,
                w.units_committed,
                group(w.rows_written.max(0) as u64),
                w.rows_per_s
                    .map_or(String::new(), |r| format!(", {r:.0} rows/s"))
            );
        }
    }
}

/// One line per table, then the rows that differ.
fn print_validation(report: &ValidateReport) {
    for t in &report.tables {
        let verdict = match (&t.error, t.equal) {
            (Some(_), _) => "FAILED",
            (None, true) => "equal",
            (None, false) => "DIFFERENT",
        };
        println!(
            "{} -> {}: {verdict}: {}/{} splits equal, {} source rows, {} target rows, {} missing, \
             {} extra, {} different ({:.1}s)",
            t.source,
            t.target,
            t.splits_equal,
            t.splits_checked,
            t.rows_source,
            t.rows_target,
            t.differences.missing,
            t.differences.extra,
            t.differences.different,
            t.elapsed_s
        );
        let examples = &t.differences.examples;
        for (kind, rows) in [
            ("missing", &examples.missing),
            ("extra", &examples.extra),
            ("different", &examples.different),
        ] {
            for row in rows.iter().take(10) {
                let key: Vec<String> = row.key.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let columns = if row.columns.is_empty() {
                    String::new()
                } else {
                    format!(" [{}]", row.columns.join(", "))
                };
                println!("  {kind:9} {}{columns}", key.join(", "));
            }
        }
        if let Some(r) = &t.repair {
            println!(
                "  repaired {} split(s): {} rows deleted, {} copied; {} equal after, {} still \
                 different",
                r.splits_repaired.len(),
                r.rows_deleted,
                r.rows_copied,
                r.splits_equal_after,
                r.splits_different_after
            );
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
        Status::Failed if report.interrupted => ExitCode::from(EXIT_INTERRUPTED),
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
