//! The `ferry-bench` command line: its subcommands and what runs each.

use clap::{Parser, Subcommand};

use crate::datagen::{self, Shape};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Parser)]
#[command(name = "ferry-bench", about = "Ferry's benchmarks and data generator")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Scan-only throughput: Ferry's Arrow scan against a driver-only fetch loop.
    Scan(crate::scan::ScanArgs),
    /// COPY encoding throughput: Ferry's encoder against pgpq on the same Arrow batches.
    Encode(crate::encode::EncodeArgs),
    /// Load-only throughput: pre-encoded batches over 1..M connections against the server's own
    /// `COPY FROM 'file'` of the same bytes.
    Load(crate::load::LoadArgs),
    /// End-to-end migration throughput at 1..M connections against scan-only and load-only of
    /// the same rows, and the migration's peak RSS at one or more table sizes.
    E2e(crate::e2e::E2eArgs),
    /// End-to-end migration throughput at 1..M connections with PostgreSQL behind a round-trip
    /// latency (20 ms) against the same migration without it.
    Latency(crate::latency::LatencyArgs),
    /// Every scenario, one after the other, each writing `<scenario>.json` into `--out`, then the
    /// plots (scripts/plots.sh).
    All(crate::all::AllArgs),
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
    DryRun(crate::dryrun::DryRunArgs),
    /// Parquet staging: `ferry dump` against scan-only and `ferry load` against load-only of the
    /// same rows, and the staged size over the COPY size.
    Stage(crate::stage::StageArgs),
    /// `ferry validate` of a table against its migration, in the same run (a time ratio).
    Validate(crate::validate::ValidateArgs),
    /// Upsert mode (into an empty table and over a full one) against transactional mode.
    Upsert(crate::upsert::UpsertArgs),
    /// W workers on one run (unit leases) against one worker with as many connections, and the
    /// lease statements' share of the time on units.
    ScaleOut(crate::scaleout::ScaleOutArgs),
    /// One migration whose peak RSS `e2e` reads (run by `e2e` in a process of its own).
    #[command(hide = true)]
    E2eChild(crate::e2e::ChildArgs),
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

/// Runs `command`.
pub async fn run(command: Command) -> Result<(), BoxError> {
    match command {
        Command::Scan(args) => crate::scan::run(args).await,
        Command::Encode(args) => crate::encode::run(args),
        Command::Load(args) => crate::load::run(args).await,
        Command::E2e(args) => crate::e2e::run(args).await,
        Command::Latency(args) => crate::latency::run(args).await,
        Command::All(args) => crate::all::run(args).await,
        Command::DelayProxy {
            upstream,
            rtt_ms,
            port,
        } => delay_proxy(&upstream, rtt_ms, port).await,
        Command::DryRun(args) => crate::dryrun::run(args).await,
        Command::Stage(args) => crate::stage::run(args).await,
        Command::Validate(args) => crate::validate::run(args).await,
        Command::Upsert(args) => crate::upsert::run(args).await,
        Command::ScaleOut(args) => crate::scaleout::run(args).await,
        Command::E2eChild(args) => crate::e2e::child(args).await,
        Command::Datagen {
            shape,
            table,
            rows,
            seed,
            cassandra,
        } => datagen(shape, &table, rows, seed, cassandra).await,
    }
}

/// `ferry-bench datagen`: writes `rows` rows of `shape` into `table` (`keyspace.table`).
async fn datagen(
    shape: Shape,
    table: &str,
    rows: u64,
    seed: u64,
    cassandra: String,
) -> Result<(), BoxError> {
    let (keyspace, name) = table
        .split_once('.')
        .ok_or("--table must be keyspace.table")?;
    let config = ferry_connectors::cassandra::CassandraConfig::new(vec![cassandra]);
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
    Ok(())
}

async fn delay_proxy(upstream: &str, rtt_ms: u64, port: u16) -> Result<(), BoxError> {
    let upstream = tokio::net::lookup_host(upstream)
        .await?
        .next()
        .ok_or_else(|| format!("{upstream} resolves to no address"))?;
    let one_way = std::time::Duration::from_micros(rtt_ms * 500);
    let proxy = crate::proxy::DelayProxy::start_on(port, upstream, one_way).await?;
    println!(
        "relaying {} to {upstream}, {:.1} ms added each way; Ctrl-C stops",
        proxy.addr(),
        one_way.as_secs_f64() * 1e3
    );
    tokio::signal::ctrl_c().await?;
    Ok(())
}
