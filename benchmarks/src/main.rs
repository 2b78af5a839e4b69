//! `ferry-bench`: benchmark scenarios with in-run anchors, and the data generator.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ferry_benchmarks::datagen::{self, Shape};

#[derive(Debug, Parser)]
#[command(name = "ferry-bench", about = "Ferry's benchmarks and data generator")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
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
