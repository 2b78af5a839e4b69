//! `ferry-bench`'s scenarios, each run once on a small table against the local services, the way
//! `ferry-bench all` runs them on a fresh machine: every one finishes, checks its own row counts,
//! and writes its JSON report with its ratios. No figure is judged here: timings on a shared
//! 2-core machine belong in the benchmarks, not in tests.
//!
//! The scenarios run in this process (`ferry_benchmarks::cli`), so `e2e` runs without its
//! peak-RSS child processes (`--no-rss`), which need the `ferry-bench` binary itself.

use std::path::Path;

use clap::Parser;
use ferry_benchmarks::cli::{self, Cli};

use crate::support;

const ROWS: u64 = 3000;

/// Runs `ferry-bench <scenario> --rows ROWS --runs 1 --json <dir>/<scenario>.json <extra>` and
/// returns the JSON report.
async fn scenario(dir: &Path, name: &str, extra: &[&str]) -> serde_json::Value {
    let json = dir.join(format!("{name}.json"));
    let rows = ROWS.to_string();
    let mut argv = vec!["ferry-bench", name, "--rows", &rows, "--runs", "1"];
    let json_arg = json.display().to_string();
    argv.extend(["--json", &json_arg]);
    argv.extend(extra);
    let command = Cli::try_parse_from(&argv)
        .unwrap_or_else(|e| panic!("{argv:?} does not parse: {e}"))
        .command;
    if let Err(e) = cli::run(command).await {
        panic!("ferry-bench {name} failed: {e}");
    }
    let text = std::fs::read_to_string(&json)
        .unwrap_or_else(|e| panic!("ferry-bench {name} wrote no {}: {e}", json.display()));
    serde_json::from_str(&text).expect("the report is JSON")
}

/// The report covers `ROWS` rows and holds each of `keys` as a positive, finite ratio.
fn assert_ratios(report: &serde_json::Value, keys: &[&str]) {
    let name = &report["scenario"];
    assert_eq!(report["rows"], ROWS, "{name}: {report}");
    for key in keys {
        let ratio = report["ratios"][key].as_f64();
        assert!(
            ratio.is_some_and(|r| r.is_finite() && r > 0.0),
            "{name}: ratio {key} is {ratio:?} in {}",
            report["ratios"]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_runs_and_reports_its_ratios() {
    // The services' variables (FERRY_CASSANDRA, FERRY_POSTGRES_URL) are what the scenarios read.
    support::postgres().await;
    let dir = support::scratch_dir("bench");
    let stage_dir = dir.join("stage").display().to_string();
    let encode_dir = dir.join("encode").display().to_string();

    let report = scenario(&dir, "scan", &["--splits", "8"]).await;
    assert_ratios(&report, &["ferry/fetch-only"]);
    let report = scenario(&dir, "encode", &["--dir", &encode_dir]).await;
    assert_ratios(&report, &["ferry-1t/pgpq", "ferry/pgpq"]);
    let report = scenario(&dir, "load", &["--connections", "1,2"]).await;
    assert_ratios(
        &report,
        &[
            "ferry-1c/server-copy",
            "ferry-2c/server-copy",
            "ferry/server-copy",
        ],
    );
    // The table `scan` wrote serves every scenario after it.
    let small = ["--splits", "8", "--reuse"];
    let report = scenario(
        &dir,
        "e2e",
        &[&small[..], &["--connections", "1,4", "--no-rss"]].concat(),
    )
    .await;
    assert_ratios(
        &report,
        &["ferry-1c/ceiling", "ferry-4c/ceiling", "ferry/ceiling"],
    );
    let report = scenario(
        &dir,
        "latency",
        &[&small[..], &["--connections", "1,4"]].concat(),
    )
    .await;
    assert_ratios(
        &report,
        &["ferry-4c-20ms/ferry-4c", "ferry-4c-20ms/ferry-4c-proxy"],
    );
    let report = scenario(&dir, "dry-run", &small).await;
    assert_ratios(&report, &["dry-run/scan"]);
    let report = scenario(
        &dir,
        "stage",
        &[&small[..], &["--dir", &stage_dir]].concat(),
    )
    .await;
    assert_ratios(&report, &["dump/scan", "load-parquet/load"]);
    let report = scenario(
        &dir,
        "scale-out",
        &[&small[..], &["--workers", "1,2", "--connections", "2"]].concat(),
    )
    .await;
    assert_ratios(&report, &["workers-2/one-4c"]);
    let report = scenario(&dir, "validate", &small).await;
    assert_ratios(&report, &["validate/migrate"]);
    let report = scenario(&dir, "upsert", &small).await;
    assert_ratios(
        &report,
        &["upsert-empty/transactional", "upsert-full/transactional"],
    );
}
