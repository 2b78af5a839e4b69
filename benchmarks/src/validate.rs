//! `ferry-bench validate`: `ferry validate` of a table (`ferry_pipeline::validate::validate`:
//! both sides read, encoded and hashed per split) against the migration of the same table, in
//! the same run, one right after the other. The ratio `validate/migrate` is a *time* ratio,
//! validate's seconds over migrate's, the goal being ≤ 1.5 (lower is better, unlike the
//! throughput ratios of the other scenarios).
//!
//! Each run migrates the table afresh (`--restart`: empty target, no checkpoints), then validates
//! it with the run's stored split plan. Both are timed by their table's `elapsed_s` (planning,
//! target introspection and the reads or writes), not the Cassandra session's start.

use ferry_pipeline::report::Status;
use ferry_pipeline::validate::{ValidateOptions, validate};

use crate::args::{BenchArgs, SourceArgs};
use crate::datagen::Shape;
use crate::e2e::{migrate_config, migrate_pass};
use crate::load;
use crate::report::{Figure, Pass, ScenarioReport, median, peak_rss_mb};
use crate::setup::{self, BenchSource};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// `ferry-bench validate` arguments.
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub bench: BenchArgs,
    /// Target connections (and splits read at once), for both.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Splits.
    #[arg(long, default_value_t = 32)]
    pub splits: usize,
    /// The target table (in schema `public`), created from the Cassandra schema.
    #[arg(long, default_value = "ferry_bench_validate")]
    pub table: String,
    #[command(flatten)]
    pub source: SourceArgs,
    /// The target database.
    #[arg(long, env = "FERRY_POSTGRES_URL")]
    pub url: String,
}

/// One validation, timed by its table's elapsed time; fails unless it found the table equal.
async fn validate_pass(config: &ferry_pipeline::Config, rows: u64) -> Result<Pass, BoxError> {
    let mut config = config.clone();
    config.run.restart = false;
    let report = validate(&config, &ValidateOptions::default()).await;
    let t = report.tables.first().ok_or("validate has no table")?;
    if let Some(e) = report.error.as_ref().or(t.error.as_ref()) {
        return Err(format!("validate failed: {e}").into());
    }
    if report.status != Status::Ok || t.rows_source != rows || t.rows_target != rows {
        return Err(format!(
            "validate found {} source and {} target rows, {} splits different; expected {rows} \
             equal",
            t.rows_source, t.rows_target, t.splits_different
        )
        .into());
    }
    if t.split_plan != "stored" {
        return Err("validate did not find the migration's split plan".into());
    }
    Ok(Pass {
        rows,
        bytes: 0,
        seconds: t.elapsed_s,
    })
}

pub async fn run(args: ValidateArgs) -> Result<(), BoxError> {
    load::check_table_name(&args.table)?;
    let source = BenchSource::open(&args.source, Shape::Mixed, args.bench.rows).await?;
    let qualified = source.qualified();
    let config = migrate_config(
        &args.source.cassandra,
        &args.url,
        &qualified,
        &args.table,
        args.connections,
        args.splits,
        args.source.page_size,
    )?;
    let admin = &setup::fresh_target(&args.url, &args.table, &config).await?;

    eprintln!("warm-up: one migration and one validation");
    migrate_pass(&config, admin, &args.table, args.bench.rows).await?;
    validate_pass(&config, args.bench.rows).await?;
    let (mut migrations, mut validations) = (Vec::new(), Vec::new());
    for run in 0..args.bench.runs.max(1) {
        let (m, _) = migrate_pass(&config, admin, &args.table, args.bench.rows).await?;
        let v = validate_pass(&config, args.bench.rows).await?;
        eprintln!(
            "run {run}: migrate {:.2}s ({:.0} rows/s), validate {:.2}s ({:.0} rows/s), ratio {:.2}",
            m.seconds,
            m.rows_per_s(),
            v.seconds,
            v.rows_per_s(),
            v.seconds / m.seconds
        );
        migrations.push(m);
        validations.push(v);
    }
    let mut report = ScenarioReport::new("validate", args.bench.rows);
    let rss = peak_rss_mb();
    report
        .figures
        .push(Figure::from_passes("migrate", &migrations, rss));
    report
        .figures
        .push(Figure::from_passes("validate", &validations, rss));
    let ratios: Vec<f64> = validations
        .iter()
        .zip(&migrations)
        .map(|(v, m)| v.seconds / m.seconds)
        .collect();
    report
        .ratios
        .insert("validate/migrate".into(), median(&ratios));
    report.ratio_runs.insert("validate/migrate".into(), ratios);
    report.notes.push(format!(
        "shape mixed, {} splits, {} connections, page size {}, {} runs (median of run-by-run \
         ratios), one warm-up each; validate/migrate is a TIME ratio (validate seconds over \
         migrate seconds, goal <= 1.5); each run migrates afresh (--restart) then validates with \
         the run's stored split plan; both timed by their table's elapsed time; rayon threads {}",
        args.splits,
        args.connections,
        args.source.page_size,
        args.bench.runs,
        rayon::current_num_threads()
    ));
    report.publish(args.bench.json.as_deref())?;
    Ok(())
}
