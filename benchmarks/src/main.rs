//! `ferry-bench`: benchmark scenarios with in-run anchors, and the data generator.

use std::process::ExitCode;

use clap::Parser;
use ferry_benchmarks::cli::{self, Cli};

#[tokio::main]
async fn main() -> ExitCode {
    match cli::run(Cli::parse().command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
