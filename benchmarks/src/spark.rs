//! The Spark anchor of `ferry-bench e2e` (`--spark 16,32`; ratio key `ferry/spark`): the job of
//! `seed-spark-parallelism.md`, the design Ferry replaces, on the same Cassandra table into the same
//! target table, measured in the same run as Ferry at the same parallelism.
//!
//! The job is `benchmarks/spark/TableMigrationJob.java`: spark-cassandra-connector reads the
//! table into a DataFrame, `repartition(spark.default.parallelism)`, and `foreachPartition` opens
//! one JDBC connection per partition and streams its rows as CSV through
//! `CopyManager.copyIn("COPY … FROM STDIN")`, one transaction per partition. `scripts/spark.sh`
//! installs pyspark, the connector and the JDBC driver on first use and runs the job with
//! `spark-submit` in local mode, `local[P]` (P task threads, so the P COPY streams run at once).
//! The job times itself from the read to the last commit (the JVM's start and the SparkSession
//! are outside, as the Cassandra session is outside Ferry's figure) and prints a [`JobOutput`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tokio_postgres::Client;

use crate::e2e::spread;
use crate::load;
use crate::report::{Figure, Pass, ScenarioReport, median};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The Spark anchor's options, flattened into `ferry-bench e2e`'s.
#[derive(Debug, Clone, clap::Args)]
pub struct SparkArgs {
    /// Also run the Spark job of seed-spark-parallelism.md at these spark.default.parallelism
    /// values, comma-separated (e.g. 16,32), each right after Ferry's migration at as many
    /// connections (so each must be among --connections). The first use installs pyspark and
    /// the jars (scripts/spark.sh setup).
    #[arg(long = "spark", value_delimiter = ',')]
    pub parallelism: Vec<usize>,
    /// The script that installs and runs the Spark job.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/spark.sh"))]
    pub spark_script: PathBuf,
}

impl SparkArgs {
    /// Whether the anchor runs at all.
    pub fn enabled(&self) -> bool {
        !self.parallelism.is_empty()
    }

    /// Fails unless every parallelism is positive and among Ferry's connection counts.
    pub fn check(&self, connections: &[usize]) -> Result<(), BoxError> {
        for &p in &self.parallelism {
            if p == 0 || !connections.contains(&p) {
                return Err(format!(
                    "--spark {p}: Spark is compared with Ferry at the same parallelism, so {p} \
                     must be one of --connections ({connections:?})"
                )
                .into());
            }
        }
        Ok(())
    }

    /// Checks the parallelisms against `connections`, then, when the anchor runs, installs
    /// Spark (minutes the first time: before anything else, so it fails early) and returns the
    /// versions for the report.
    pub async fn prepare(
        &self,
        connections: &[usize],
    ) -> Result<BTreeMap<String, String>, BoxError> {
        self.check(connections)?;
        if self.enabled() {
            setup(&self.spark_script).await
        } else {
            Ok(BTreeMap::new())
        }
    }
}

/// The JSON line the job prints (see `TableMigrationJob.java`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobOutput {
    /// Rows the server reported copied, summed over the partitions.
    pub rows: u64,
    /// CSV bytes sent (Ferry sends binary COPY: the two are not comparable byte for byte).
    pub copy_bytes: u64,
    /// From the read to the last partition's commit.
    pub elapsed_s: f64,
    /// The JVM's CPU time over `elapsed_s`.
    pub cpu_s: f64,
    /// Creating the SparkSession (before `elapsed_s`).
    pub session_s: f64,
    pub parallelism: usize,
    /// Whether the job repartitioned into `parallelism` partitions (`FERRY_SPARK_REPARTITION=0`
    /// keeps the connector's own).
    pub repartitioned: bool,
    /// Partitions written, one connection each.
    pub partitions: usize,
    /// Partitions the connector read.
    pub read_partitions: usize,
    pub master: String,
    pub spark: String,
    pub connector: String,
    pub pgjdbc: String,
    /// The JVM's `VmHWM` at the end.
    pub peak_rss_mb: f64,
}

impl JobOutput {
    pub fn pass(&self) -> Pass {
        Pass {
            rows: self.rows,
            bytes: self.copy_bytes,
            seconds: self.elapsed_s,
        }
    }
}

/// One run's Spark job at one parallelism, with Ferry's migration at as many connections from
/// the same run.
#[derive(Debug, Clone)]
pub struct SparkRun {
    pub parallelism: usize,
    pub ferry: Pass,
    /// The bench process's CPU time over Ferry's migration.
    pub ferry_cpu_s: f64,
    pub job: JobOutput,
    /// `spark-submit`'s whole run, JVM start to exit.
    pub wall_s: f64,
}

/// `scripts/spark.sh setup`: installs what is missing and returns the versions it prints.
pub async fn setup(script: &Path) -> Result<BTreeMap<String, String>, BoxError> {
    eprintln!("setting up the Spark anchor ({} setup)", script.display());
    let out = tokio::process::Command::new(script)
        .arg("setup")
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .await
        .map_err(|e| format!("running {}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} setup failed ({}): the Spark anchor needs python3, a JDK 17, Maven, PyPI and \
             Maven Central",
            script.display(),
            out.status
        )
        .into());
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line)
        .map_err(|e| format!("{} setup printed {line:?}: {e}", script.display()).into())
}

/// Runs the job once: `source` (`keyspace.table`) into `target` (`schema.table`) at
/// `parallelism`, reading from `cassandra` (`host:port`) and writing to `url`
/// (`postgresql://…`, handed over in the environment). Returns its output and the wall time of
/// the whole `spark-submit`.
pub async fn run_job(
    script: &Path,
    parallelism: usize,
    source: &str,
    target: &str,
    cassandra: &str,
    url: &str,
) -> Result<(JobOutput, f64), BoxError> {
    let started = Instant::now();
    let out = tokio::process::Command::new(script)
        .args([
            "run",
            "--parallelism",
            &parallelism.to_string(),
            source,
            target,
        ])
        .env("FERRY_CASSANDRA", cassandra)
        .env("FERRY_POSTGRES_URL", url)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .await
        .map_err(|e| format!("running {}: {e}", script.display()))?;
    let wall = started.elapsed().as_secs_f64();
    if !out.status.success() {
        return Err(format!(
            "the Spark job at parallelism {parallelism} failed ({}); its log is above",
            out.status
        )
        .into());
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .ok_or("the Spark job printed no JSON line")?;
    let output: JobOutput =
        serde_json::from_str(line).map_err(|e| format!("the Spark job printed {line:?}: {e}"))?;
    Ok((output, wall))
}

/// A copy of the rows Ferry loaded, `public.<table>_ferry_rows`, that each Spark pass is checked
/// against. The check compares values, not text: Spark reads a Cassandra `decimal` as
/// `DecimalType(38, 18)`, so its `numeric`s carry 18 decimal places where Ferry's keep the source's.
pub struct Reference {
    table: String,
}

impl Reference {
    /// Copies `public.<table>` (holding Ferry's rows) aside.
    pub async fn keep(client: &Client, table: &str) -> Result<Self, BoxError> {
        let copy = format!("{table}_ferry_rows");
        client
            .batch_execute(&format!(
                "DROP TABLE IF EXISTS public.{copy}; \
                 CREATE TABLE public.{copy} AS SELECT * FROM public.{table}"
            ))
            .await
            .map_err(|e| format!("copying {table}'s rows to {copy}: {e}"))?;
        Ok(Self { table: copy })
    }

    /// The rows of `public.<table>` that are not in the copy. With the same count on both sides
    /// and a primary key on the target, none means the same rows.
    pub async fn rows_not_in(&self, client: &Client, table: &str) -> Result<i64, BoxError> {
        let row = client
            .query_one(
                &format!(
                    "SELECT count(*) FROM (SELECT * FROM public.{table} \
                     EXCEPT SELECT * FROM public.{}) d",
                    self.table
                ),
                &[],
            )
            .await
            .map_err(|e| format!("comparing {table} with {}: {e}", self.table))?;
        Ok(row.get(0))
    }

    /// Drops the copy.
    pub async fn drop(self, client: &Client) -> Result<(), BoxError> {
        client
            .batch_execute(&format!("DROP TABLE IF EXISTS public.{}", self.table))
            .await
            .map_err(|e| format!("dropping {}: {e}", self.table).into())
    }
}

/// One timed Spark pass into an emptied `public.<table>`: fails unless it loaded `rows` rows, the
/// same as Ferry's `reference`.
#[allow(clippy::too_many_arguments)]
pub async fn pass(
    args: &SparkArgs,
    admin: &Client,
    parallelism: usize,
    source: &str,
    table: &str,
    rows: u64,
    reference: &Reference,
    cassandra: &str,
    url: &str,
) -> Result<(JobOutput, f64), BoxError> {
    load::truncate(admin, table).await?;
    let (job, wall) = run_job(
        &args.spark_script,
        parallelism,
        source,
        &format!("public.{table}"),
        cassandra,
        url,
    )
    .await?;
    if job.rows != rows {
        return Err(format!("the Spark job copied {} rows, expected {rows}", job.rows).into());
    }
    load::check_rows(admin, table, rows, "the Spark job").await?;
    let differ = reference.rows_not_in(admin, table).await?;
    if differ != 0 {
        return Err(format!(
            "{differ} of the Spark job's rows differ from Ferry's (in {})",
            reference.table
        )
        .into());
    }
    Ok((job, wall))
}

/// This process's CPU time (user + system) in seconds, from `/proc/self/stat` (Linux; 0
/// elsewhere). Ticks are USER_HZ, 100 on Linux.
pub fn process_cpu_s() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| cpu_from_stat(&stat))
        .unwrap_or(0.0)
}

/// utime + stime of a `/proc/PID/stat` line, in seconds.
fn cpu_from_stat(stat: &str) -> Option<f64> {
    // The fields after the command name, which is in parentheses and may hold spaces and
    // parentheses: state is the first, utime the 12th, stime the 13th.
    let (_, rest) = stat.rsplit_once(") ")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i)?.parse::<u64>().ok();
    Some((ticks(11)? + ticks(12)?) as f64 / 100.0)
}

/// The parallelisms of `runs` in first-seen order.
fn parallelisms(runs: &[SparkRun]) -> Vec<usize> {
    let mut ps: Vec<usize> = Vec::new();
    for r in runs {
        if !ps.contains(&r.parallelism) {
            ps.push(r.parallelism);
        }
    }
    ps
}

/// Adds the anchor's figures (`spark-P`), ratios (`ferry-Pc/spark-P` run by run, and
/// `ferry/spark`, the lowest of them), versions and notes to the e2e report.
pub fn extend_report(
    report: &mut ScenarioReport,
    runs: &[SparkRun],
    versions: &BTreeMap<String, String>,
) {
    if runs.is_empty() {
        return;
    }
    for (k, v) in versions {
        report.versions.insert(k.clone(), v.clone());
    }
    if let Some(r) = runs.first() {
        report.versions.insert("spark".into(), r.job.spark.clone());
    }
    let mut lowest: Option<(usize, f64)> = None;
    let mut cpu_notes = Vec::new();
    for p in parallelisms(runs) {
        let of_p: Vec<&SparkRun> = runs.iter().filter(|r| r.parallelism == p).collect();
        let passes: Vec<Pass> = of_p.iter().map(|r| r.job.pass()).collect();
        let peaks: Vec<f64> = of_p.iter().map(|r| r.job.peak_rss_mb).collect();
        report.figures.push(Figure::from_passes(
            format!("spark-{p}"),
            &passes,
            median(&peaks),
        ));
        let ratios: Vec<f64> = of_p
            .iter()
            .map(|r| r.ferry.rows_per_s() / r.job.pass().rows_per_s())
            .collect();
        let key = format!("ferry-{p}c/spark-{p}");
        let ratio = median(&ratios);
        report.ratios.insert(key.clone(), ratio);
        report.ratio_runs.insert(key, ratios);
        if lowest.is_none_or(|(_, r)| ratio < r) {
            lowest = Some((p, ratio));
        }
        let per_m = |cpu: f64, rows: u64| cpu / rows as f64 * 1e6;
        let ferry_cpu = median(
            &of_p
                .iter()
                .map(|r| per_m(r.ferry_cpu_s, r.ferry.rows))
                .collect::<Vec<_>>(),
        );
        let spark_cpu = median(
            &of_p
                .iter()
                .map(|r| per_m(r.job.cpu_s, r.job.rows))
                .collect::<Vec<_>>(),
        );
        let wall = median(&of_p.iter().map(|r| r.wall_s).collect::<Vec<_>>());
        cpu_notes.push(format!(
            "at {p}: the client's CPU per million rows, ferry {ferry_cpu:.2}s, spark \
             {spark_cpu:.2}s; spark-submit took {wall:.1}s from launch to exit"
        ));
    }
    if let Some((p, ratio)) = lowest {
        report.ratios.insert("ferry/spark".into(), ratio);
        let job = &runs[0].job;
        report.notes.push(format!(
            "spark-P: the job of seed-spark-parallelism.md (benchmarks/spark/), spark-submit in \
             local mode ({}), spark.default.parallelism P, {} into P partitions, one JDBC \
             connection and one CSV COPY FROM STDIN per partition; timed inside the job from the \
             read to the last commit (the JVM start and SparkSession are outside); its MB/s is of \
             CSV, its peak RSS the JVM's; each Spark pass runs right after Ferry's at M = P and \
             loads the same rows (count and values checked); ferry-Pc/spark-P is run by run; \
             ferry/spark is the lowest of them, at P = {p}",
            job.master.replace(&job.parallelism.to_string(), "P"),
            if job.repartitioned {
                "repartitioned"
            } else {
                "NOT repartitioned (FERRY_SPARK_REPARTITION=0): the connector's own partitions"
            },
        ));
        report.notes.extend(cpu_notes);
    }
}

/// Prints the anchor's table: rows/s of Spark and Ferry at each parallelism, medians (min–max),
/// their run-by-run ratio, and each side's CPU seconds per pass.
pub fn print(runs: &[SparkRun]) {
    if runs.is_empty() {
        return;
    }
    println!(
        "{:>4}  {:<30} {:<30} {:<22} {:>12} {:>12}",
        "P", "spark rows/s", "ferry rows/s", "ferry/spark", "spark CPU s", "ferry CPU s"
    );
    for p in parallelisms(runs) {
        let of_p: Vec<&SparkRun> = runs.iter().filter(|r| r.parallelism == p).collect();
        let values = |f: &dyn Fn(&SparkRun) -> f64| of_p.iter().map(|r| f(r)).collect::<Vec<_>>();
        println!(
            "{p:>4}  {:<30} {:<30} {:<22} {:>12.1} {:>12.2}",
            spread(&values(&|r| r.job.pass().rows_per_s()), false),
            spread(&values(&|r| r.ferry.rows_per_s()), false),
            spread(
                &values(&|r| r.ferry.rows_per_s() / r.job.pass().rows_per_s()),
                true
            ),
            median(&values(&|r| r.job.cpu_s)),
            median(&values(&|r| r.ferry_cpu_s)),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(p: usize, rows: u64, elapsed_s: f64) -> JobOutput {
        JobOutput {
            rows,
            copy_bytes: rows * 200,
            elapsed_s,
            cpu_s: elapsed_s * 0.9,
            session_s: 1.5,
            parallelism: p,
            repartitioned: true,
            partitions: p,
            read_partitions: 2 * p + 2,
            master: format!("local[{p}]"),
            spark: "3.5.9".into(),
            connector: "3.5.1".into(),
            pgjdbc: "42.7.8".into(),
            peak_rss_mb: 1000.0,
        }
    }

    fn run(p: usize, ferry_s: f64, spark_s: f64) -> SparkRun {
        SparkRun {
            parallelism: p,
            ferry: Pass {
                rows: 1_000,
                bytes: 170_000,
                seconds: ferry_s,
            },
            ferry_cpu_s: 0.1,
            job: job(p, 1_000, spark_s),
            wall_s: spark_s + 5.0,
        }
    }

    #[test]
    fn the_ratios_are_run_by_run_and_ferry_over_spark_is_the_lowest() {
        // P = 16: 10/1, 12/2, 9/1.5 → 10, 6, 6 → median 6. P = 32: 8/1 × 3 → 8.
        let runs = [
            run(16, 1.0, 10.0),
            run(32, 1.0, 8.0),
            run(16, 2.0, 12.0),
            run(32, 1.0, 8.0),
            run(16, 1.5, 9.0),
            run(32, 1.0, 8.0),
        ];
        let mut versions = BTreeMap::new();
        versions.insert("pyspark".to_string(), "3.5.9".to_string());
        let mut report = ScenarioReport::new("e2e", 1_000);
        extend_report(&mut report, &runs, &versions);
        let json = serde_json::to_value(&report).expect("serializes");
        let ratio = |key: &str| json["ratios"][key].as_f64().expect(key);
        assert!((ratio("ferry-16c/spark-16") - 6.0).abs() < 1e-9);
        assert!((ratio("ferry-32c/spark-32") - 8.0).abs() < 1e-9);
        assert!((ratio("ferry/spark") - 6.0).abs() < 1e-9);
        let runs_16: Vec<f64> = json["ratio_runs"]["ferry-16c/spark-16"]
            .as_array()
            .expect("ratio runs")
            .iter()
            .map(|v| v.as_f64().expect("number"))
            .collect();
        assert_eq!(runs_16.len(), 3);
        for (got, want) in runs_16.iter().zip([10.0, 6.0, 6.0]) {
            assert!((got - want).abs() < 1e-9, "{runs_16:?}");
        }
        assert_eq!(json["versions"]["pyspark"], "3.5.9");
        assert_eq!(json["versions"]["spark"], "3.5.9");
        let figures = json["figures"].as_array().expect("figures");
        let names: Vec<&str> = figures
            .iter()
            .map(|f| f["name"].as_str().expect("name"))
            .collect();
        assert_eq!(names, ["spark-16", "spark-32"]);
        // Spark's 1000 rows in 10, 12 and 9 s.
        assert!((figures[0]["rows_per_s"].as_f64().expect("rps") - 100.0).abs() < 1e-9);
        assert_eq!(figures[0]["peak_rss_mb"], 1000.0);
        let notes = json["notes"].as_array().expect("notes");
        assert!(notes[0].as_str().expect("note").contains("local[P]"));
        assert!(notes[0].as_str().expect("note").contains("at P = 16"));
    }

    #[test]
    fn no_runs_leave_the_report_alone() {
        let mut report = ScenarioReport::new("e2e", 1_000);
        extend_report(&mut report, &[], &BTreeMap::new());
        assert!(report.ratios.is_empty() && report.figures.is_empty());
    }

    #[test]
    fn the_job_output_parses() {
        let line = r#"{"rows":100000,"copy_bytes":22486267,"elapsed_s":14.307413,"cpu_s":14.260,"session_s":1.518603,"parallelism":32,"repartitioned":true,"partitions":32,"read_partitions":66,"master":"local[32]","spark":"3.5.9","connector":"3.5.1","pgjdbc":"42.7.8","peak_rss_mb":1071.1}"#;
        let job: JobOutput = serde_json::from_str(line).expect("parses");
        assert_eq!(job.rows, 100_000);
        assert_eq!(job.partitions, 32);
        assert!((job.pass().rows_per_s() - 100_000.0 / 14.307413).abs() < 1e-6);
    }

    #[test]
    fn the_parallelism_must_be_a_connection_count() {
        let args = SparkArgs {
            parallelism: vec![16, 32],
            spark_script: PathBuf::from("scripts/spark.sh"),
        };
        assert!(args.check(&[1, 4, 16, 32]).is_ok());
        let err = args.check(&[1, 4, 16]).expect_err("32 is missing");
        assert!(err.to_string().contains("--spark 32"), "{err}");
    }

    #[test]
    fn cpu_time_is_read_past_a_command_name_with_spaces() {
        let stat = "4242 (ferry (bench) x) S 1 4242 4242 0 -1 4194560 5000 0 0 0 \
                    1234 56 0 0 20 0 12 0 100 0 0";
        assert_eq!(cpu_from_stat(stat), Some(12.9));
        assert_eq!(cpu_from_stat("4242 (x) S 1"), None);
    }
}
