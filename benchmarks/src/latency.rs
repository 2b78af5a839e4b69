//! `ferry-bench latency`: the whole migration with PostgreSQL behind a round-trip latency
//! (20 ms by default) against the same migration without it, at 1..M connections, in the same
//! process run. The ratio `ferry-16c-20ms/ferry-16c` says how much of the latency Ferry hides.
//!
//! The latency comes from a [`DelayProxy`] on loopback in front of the PostgreSQL port (half the
//! round trip in each direction); the migration's target URL points at the proxy. `tc netem`
//! behind a veth pair would be the kernel's way, but needs `sch_netem`: the scenario probes for
//! it and says in its notes what it found. A third side goes through a proxy that adds no delay,
//! so the proxy's own cost can be told apart from the latency's.
//!
//! Each system measured is a [`System`]: something that migrates the scenario's source table
//! into its emptied target table through a given URL. Ferry is one; another (the Spark anchor)
//! plugs in by implementing it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_connectors::yugabyte::YugabyteConfig;
use ferry_pipeline::Config;
use ferry_pipeline::checkpoint::{self, Checkpoints};
use futures::future::BoxFuture;
use tokio_postgres::Client;

use crate::args::{BenchArgs, SourceArgs};
use crate::datagen::Shape;
use crate::e2e::{self, migrate_pass};
use crate::load;
use crate::proxy::DelayProxy;
use crate::report::{Figure, Pass, ScenarioReport, median, peak_rss_mb};
use crate::setup::{self, BenchSource};
use crate::spark::{self, SparkArgs};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The run id of the scenario's migrations (restarted before each, forgotten at the end).
const RUN_ID: &str = "ferry-bench-latency";

/// `SELECT 1` round trips timed on each path, to report the latency actually added.
const RTT_PROBES: usize = 20;

/// `ferry-bench latency` arguments.
#[derive(Debug, clap::Args)]
pub struct LatencyArgs {
    #[command(flatten)]
    pub bench: BenchArgs,
    /// Connection counts M, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 4, 16, 32, 64])]
    pub connections: Vec<usize>,
    /// Splits K (work units); at least the largest M.
    #[arg(long, default_value_t = 64)]
    pub splits: usize,
    /// Round-trip latency added in front of PostgreSQL, in milliseconds (half each way).
    #[arg(long, default_value_t = 20)]
    pub rtt_ms: u64,
    /// Skip the side through a proxy that adds no delay (which measures the proxy's own cost).
    #[arg(long)]
    pub no_proxy_baseline: bool,
    /// Target table, created (dropped first) in schema `public`.
    #[arg(long, default_value = "ferry_bench_latency")]
    pub table: String,
    #[command(flatten)]
    pub source: SourceArgs,
    /// The target PostgreSQL/YugabyteDB database: a `postgresql://` URL with one host, without
    /// TLS host verification (the proxy's address replaces the host).
    #[arg(long, env = "FERRY_POSTGRES_URL")]
    pub url: String,
    /// The Spark anchor under the same routes, at these parallelisms (each among --connections).
    #[command(flatten)]
    pub spark: SparkArgs,
}

/// A system whose migration the scenario times with and without latency.
pub trait System: Send + Sync {
    /// What figure names and ratio keys start with (`ferry`, `spark`).
    fn name(&self) -> &str;

    /// The connection counts (for Spark: the parallelisms) it runs at, out of `--connections`.
    fn connections(&self, requested: &[usize]) -> Vec<usize> {
        requested.to_vec()
    }

    /// Migrates the scenario's source table into its target table through `url` with
    /// `connections` connections, starting from an empty table; fails unless every row arrived.
    fn migrate<'a>(
        &'a self,
        url: &'a str,
        connections: usize,
    ) -> BoxFuture<'a, Result<Pass, BoxError>>;
}

/// Ferry: `ferry_pipeline::migrate`, timed by the table's elapsed time in its report (as `e2e`).
struct Ferry {
    cassandra: String,
    /// `keyspace.table`.
    source: String,
    table: String,
    splits: usize,
    page_size: i32,
    rows: u64,
    /// A direct connection to the target, for the TRUNCATE before and the count after.
    admin: Arc<Client>,
}

impl Ferry {
    fn config(&self, url: &str, connections: usize) -> Result<Config, BoxError> {
        let mut config = e2e::migrate_config(
            &self.cassandra,
            url,
            &self.source,
            &self.table,
            connections,
            self.splits,
            self.page_size,
        )?;
        config.run.id = RUN_ID.into();
        Ok(config)
    }
}

impl System for Ferry {
    fn name(&self) -> &str {
        "ferry"
    }

    fn migrate<'a>(
        &'a self,
        url: &'a str,
        connections: usize,
    ) -> BoxFuture<'a, Result<Pass, BoxError>> {
        Box::pin(async move {
            let config = self.config(url, connections)?;
            let (pass, _) = migrate_pass(&config, &self.admin, &self.table, self.rows).await?;
            Ok(pass)
        })
    }
}

/// The Spark job of `seed-spark-parallelism.md` ([`crate::spark`]), timed by the job itself (the
/// read to the last partition's commit, as in `e2e`), its rows checked against Ferry's.
struct Spark {
    args: SparkArgs,
    cassandra: String,
    /// `keyspace.table`.
    source: String,
    table: String,
    rows: u64,
    admin: Arc<Client>,
    /// A copy of Ferry's rows, which every Spark pass must equal.
    reference: spark::Reference,
}

impl System for Spark {
    fn name(&self) -> &str {
        "spark"
    }

    fn connections(&self, _requested: &[usize]) -> Vec<usize> {
        self.args.parallelism.clone()
    }

    fn migrate<'a>(
        &'a self,
        url: &'a str,
        connections: usize,
    ) -> BoxFuture<'a, Result<Pass, BoxError>> {
        Box::pin(async move {
            let (job, _) = spark::pass(
                &self.args,
                &self.admin,
                connections,
                &self.source,
                &self.table,
                self.rows,
                &self.reference,
                &self.cassandra,
                url,
            )
            .await?;
            Ok(job.pass())
        })
    }
}

/// The way to PostgreSQL a pass takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Straight to the server.
    Direct,
    /// Through a proxy that adds no delay.
    Proxy,
    /// Through the proxy that adds the latency.
    Delayed,
}

impl Route {
    /// The figure name's suffix: `ferry-16c`, `ferry-16c-proxy`, `ferry-16c-20ms`.
    pub fn suffix(self, rtt_ms: u64) -> String {
        match self {
            Route::Direct => String::new(),
            Route::Proxy => "-proxy".into(),
            Route::Delayed => format!("-{rtt_ms}ms"),
        }
    }
}

/// Every run of one system at one connection count on one route.
#[derive(Debug, Clone)]
pub struct Series {
    pub system: String,
    pub connections: usize,
    pub route: Route,
    pub passes: Vec<Pass>,
}

impl Series {
    fn name(&self, rtt_ms: u64) -> String {
        format!(
            "{}-{}c{}",
            self.system,
            self.connections,
            self.route.suffix(rtt_ms)
        )
    }
}

/// `postgresql://user:pw@host:port/db?x=y` as the part before the host, the host and port, and
/// the rest, so that the proxy's address can replace the host.
#[derive(Debug, Clone, PartialEq, Eq)]
struct UrlParts<'a> {
    prefix: &'a str,
    host: &'a str,
    port: u16,
    rest: &'a str,
}

fn url_parts(url: &str) -> Result<UrlParts<'_>, BoxError> {
    let refuse = |why: &str| -> BoxError {
        format!("--url: {why}; the latency scenario needs a postgresql:// URL with one host").into()
    };
    let scheme_end = ["postgresql://", "postgres://"]
        .iter()
        .find(|s| url.starts_with(*s))
        .map(|s| s.len())
        .ok_or_else(|| refuse("not a URL"))?;
    let authority_end = url[scheme_end..]
        .find(['/', '?'])
        .map_or(url.len(), |i| scheme_end + i);
    let authority = &url[scheme_end..authority_end];
    let host_start = authority
        .rfind('@')
        .map_or(scheme_end, |i| scheme_end + i + 1);
    let host_port = &url[host_start..authority_end];
    if host_port.contains(',') {
        return Err(refuse("several hosts"));
    }
    let rest = &url[authority_end..];
    if ["host=", "hostaddr=", "port="]
        .iter()
        .any(|k| rest.contains(&format!("?{k}")) || rest.contains(&format!("&{k}")))
    {
        return Err(refuse("host or port in the query string"));
    }
    // `[::1]:5432`, `host:5432`, `host`.
    let (host, port) = match host_port.rfind(':') {
        Some(i) if !host_port[i..].contains(']') => {
            let port = host_port[i + 1..]
                .parse::<u16>()
                .map_err(|_| refuse("a port that is not a number"))?;
            (&host_port[..i], port)
        }
        _ => (host_port, 5432),
    };
    if host.is_empty() {
        return Err(refuse("no host (a Unix socket)"));
    }
    Ok(UrlParts {
        prefix: &url[..host_start],
        host,
        port,
        rest,
    })
}

/// `url` with its host and port replaced by `addr`.
fn url_via(url: &str, addr: SocketAddr) -> Result<String, BoxError> {
    let p = url_parts(url)?;
    Ok(format!("{}{addr}{}", p.prefix, p.rest))
}

/// The server's address, as the proxies' upstream.
async fn upstream(url: &str) -> Result<SocketAddr, BoxError> {
    let p = url_parts(url)?;
    let host = p.host.trim_start_matches('[').trim_end_matches(']');
    tokio::net::lookup_host((host, p.port))
        .await?
        .next()
        .ok_or_else(|| format!("--url: {host} resolves to no address").into())
}

/// The median of [`RTT_PROBES`] `SELECT 1` round trips over one connection to `url`, in ms.
async fn round_trip_ms(url: &str) -> Result<f64, BoxError> {
    let client = ferry_connectors::yugabyte::connect(&YugabyteConfig::new(url)).await?;
    let mut times = Vec::with_capacity(RTT_PROBES);
    for _ in 0..RTT_PROBES {
        let started = Instant::now();
        client.simple_query("SELECT 1").await?;
        times.push(started.elapsed().as_secs_f64() * 1e3);
    }
    Ok(median(&times))
}

/// Whether `tc netem` can delay packets here, tried on the loopback of a throwaway network
/// namespace (nothing outside it is touched): `Err` says why not.
fn netem_probe() -> Result<(), String> {
    use std::process::Command;
    let run = |args: &[&str]| -> Result<(), String> {
        let out = Command::new(args[0])
            .args(&args[1..])
            .output()
            .map_err(|e| format!("{}: {e}", args[0]))?;
        if out.status.success() {
            Ok(())
        } else {
            let stderr = String::from_utf8_lossy(&out.stderr);
            Err(format!("`{}`: {}", args.join(" "), stderr.trim()))
        }
    };
    let ns = format!("ferry-bench-probe-{}", std::process::id());
    run(&["ip", "netns", "add", &ns])?;
    let tried = run(&[
        "ip", "netns", "exec", &ns, "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay",
        "1ms",
    ]);
    let _ = run(&["ip", "netns", "del", &ns]);
    tried
}

/// Runs the scenario.
pub async fn run(args: LatencyArgs) -> Result<(), BoxError> {
    load::check_table_name(&args.table)?;
    let (connections, max_m) = setup::connection_counts(&args.connections, Some(args.splits))?;
    let spark_versions = args.spark.prepare(&connections).await?;
    let upstream = upstream(&args.url).await?;
    let qualified = BenchSource::open(&args.source, Shape::Mixed, args.bench.rows)
        .await?
        .qualified();
    // The target table as `ferry schema --apply` creates it from the Cassandra table.
    let schema_config = e2e::migrate_config(
        &args.source.cassandra,
        &args.url,
        &qualified,
        &args.table,
        max_m,
        args.splits,
        args.source.page_size,
    )?;
    let admin = &setup::fresh_target(&args.url, &args.table, &schema_config).await?;
    let ferry = Ferry {
        cassandra: args.source.cassandra.clone(),
        source: qualified.clone(),
        table: args.table.clone(),
        splits: args.splits,
        page_size: args.source.page_size,
        rows: args.bench.rows,
        admin: Arc::clone(admin),
    };

    let one_way = Duration::from_micros(args.rtt_ms * 500);
    let delayed = DelayProxy::start(upstream, one_way).await?;
    let plain = if args.no_proxy_baseline {
        None
    } else {
        Some(DelayProxy::start(upstream, Duration::ZERO).await?)
    };
    let mut routes = vec![(Route::Direct, args.url.clone())];
    if let Some(p) = &plain {
        routes.push((Route::Proxy, url_via(&args.url, p.addr())?));
    }
    routes.push((Route::Delayed, url_via(&args.url, delayed.addr())?));
    let mut rtts = Vec::new();
    for (route, url) in &routes {
        rtts.push((*route, round_trip_ms(url).await?));
    }
    let netem = netem_probe();

    eprintln!("warm-up migrations at {max_m} connections, direct and with latency");
    for (_, url) in &routes {
        ferry.migrate(url, max_m).await?;
    }
    let mut systems: Vec<Box<dyn System>> = vec![Box::new(ferry)];
    if args.spark.enabled() {
        // Ferry's rows of the last warm-up, which every Spark pass must equal.
        let reference = spark::Reference::keep(admin, &args.table).await?;
        let spark = Spark {
            args: args.spark.clone(),
            cassandra: args.source.cassandra.clone(),
            source: qualified.clone(),
            table: args.table.clone(),
            rows: args.bench.rows,
            admin: Arc::clone(admin),
            reference,
        };
        let p = args.spark.parallelism[0];
        eprintln!("warm-up Spark job at parallelism {p}, direct");
        spark.migrate(&args.url, p).await?;
        systems.push(Box::new(spark));
    }
    let mut series: Vec<Series> = Vec::new();
    for run in 0..args.bench.runs.max(1) {
        for system in &systems {
            for m in system.connections(&connections) {
                // The routes one after the other at each M, so drift hits them alike.
                for (route, url) in &routes {
                    let pass = system.migrate(url, m).await?;
                    let i = match series.iter().position(|s| {
                        s.system == system.name() && s.connections == m && s.route == *route
                    }) {
                        Some(i) => i,
                        None => {
                            series.push(Series {
                                system: system.name().into(),
                                connections: m,
                                route: *route,
                                passes: Vec::new(),
                            });
                            series.len() - 1
                        }
                    };
                    series[i].passes.push(pass);
                    eprintln!(
                        "run {run}: {} {:.0} rows/s",
                        series[i].name(args.rtt_ms),
                        pass.rows_per_s()
                    );
                }
            }
        }
    }
    // Leave no rows and no run state behind.
    load::truncate(admin, &args.table).await?;
    admin
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS public.{}_ferry_rows",
            args.table
        ))
        .await?;
    Checkpoints::new(RUN_ID, "public", &args.table)
        .forget(admin)
        .await?;
    checkpoint::forget_run(admin, RUN_ID).await?;
    drop((delayed, plain));

    let mut report = build_report(args.bench.rows, args.rtt_ms, &series, peak_rss_mb());
    report.versions.extend(spark_versions);
    let ms = |route: Route| {
        rtts.iter()
            .find(|(r, _)| *r == route)
            .map_or(String::from("-"), |(_, v)| format!("{v:.2} ms"))
    };
    report.notes.push(format!(
        "latency path: delay proxy in ferry-bench (tokio, on loopback in front of {upstream}), \
         {:.1} ms added each way, no bandwidth cap, order kept per connection; tc netem {}",
        one_way.as_secs_f64() * 1e3,
        match &netem {
            Ok(()) => "works on this machine, but ferry-bench drives the proxy only".to_string(),
            Err(why) => format!("is not available here ({why})"),
        }
    ));
    report.notes.push(format!(
        "measured round trip (median of {RTT_PROBES} `SELECT 1`): direct {}, through the \
         proxy without delay {}, with latency {}",
        ms(Route::Direct),
        ms(Route::Proxy),
        ms(Route::Delayed),
    ));
    report.notes.push(format!(
        "mixed shape (12 columns), {} splits, page size {}, {} runs (medians; ratios are medians \
         of run-by-run ratios), one warm-up migration per route; each migration restarts the run \
         (target TRUNCATEd, progress forgotten) and is timed by the table's elapsed time in the \
         migrate report (planning, connecting M workers, every unit with its checkpoint, all \
         through the route)",
        args.splits,
        args.source.page_size,
        args.bench.runs.max(1)
    ));
    print(&report, &series, args.rtt_ms);
    if let Some(path) = &args.bench.json {
        report.write(path)?;
    }
    Ok(())
}

/// The scenario's report from its series; `process_rss_mb` is this process's peak RSS.
pub fn build_report(
    rows: u64,
    rtt_ms: u64,
    series: &[Series],
    process_rss_mb: f64,
) -> ScenarioReport {
    let mut report = ScenarioReport::new("latency", rows);
    for s in series {
        report.figures.push(Figure::from_passes(
            s.name(rtt_ms),
            &s.passes,
            process_rss_mb,
        ));
    }
    let find = |of: &Series, route: Route| {
        series
            .iter()
            .find(|s| s.system == of.system && s.connections == of.connections && s.route == route)
    };
    // Per system and M: the latency's cost, the latency's cost past the proxy's, and the proxy's.
    let pairs = [
        (Route::Delayed, Route::Direct),
        (Route::Delayed, Route::Proxy),
        (Route::Proxy, Route::Direct),
    ];
    for delayed in series.iter().filter(|s| s.route == Route::Delayed) {
        for (ours, anchor) in pairs {
            let (Some(ours), Some(anchor)) = (find(delayed, ours), find(delayed, anchor)) else {
                continue;
            };
            let ratios: Vec<f64> = ours
                .passes
                .iter()
                .zip(&anchor.passes)
                .map(|(o, a)| o.rows_per_s() / a.rows_per_s())
                .collect();
            let key = format!("{}/{}", ours.name(rtt_ms), anchor.name(rtt_ms));
            report.ratios.insert(key.clone(), median(&ratios));
            report.ratio_runs.insert(key, ratios);
        }
    }
    // Ferry against the Spark job at the same parallelism on the same route.
    for spark in series.iter().filter(|s| s.system == "spark") {
        let Some(ferry) = series.iter().find(|s| {
            s.system == "ferry" && s.connections == spark.connections && s.route == spark.route
        }) else {
            continue;
        };
        let ratios: Vec<f64> = ferry
            .passes
            .iter()
            .zip(&spark.passes)
            .map(|(f, s)| f.rows_per_s() / s.rows_per_s())
            .collect();
        let key = format!("{}/{}", ferry.name(rtt_ms), spark.name(rtt_ms));
        report.ratios.insert(key.clone(), median(&ratios));
        report.ratio_runs.insert(key, ratios);
    }
    report
}

/// `median (min–max)` of rows/s with thousands separators, or of ratios.
fn spread(values: &[f64], ratio: bool) -> String {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let fmt = |v: f64| {
        if ratio {
            format!("{v:.3}")
        } else {
            thousands(v)
        }
    };
    format!("{} ({}–{})", fmt(median(values)), fmt(min), fmt(max))
}

/// `1234567.8` → `1,234,568`.
fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn print(report: &ScenarioReport, series: &[Series], rtt_ms: u64) {
    println!(
        "scenario latency ({} rows, {} cores, {} profile, +{rtt_ms} ms round trip): medians \
         (min–max) over runs",
        report.rows,
        report.cores,
        report.versions.get("profile").map_or("?", String::as_str)
    );
    let delayed = format!("{rtt_ms} ms rows/s");
    let ratio = format!("{rtt_ms}ms/direct");
    println!(
        "{:<8} {:>4}  {:<28} {:<28} {:<28} {:<22}",
        "system", "M", "direct rows/s", "proxy rows/s", delayed, ratio
    );
    let mut seen: Vec<(&str, usize)> = Vec::new();
    for s in series {
        if seen.contains(&(s.system.as_str(), s.connections)) {
            continue;
        }
        seen.push((s.system.as_str(), s.connections));
        let rates = |route: Route| {
            series
                .iter()
                .find(|o| {
                    o.system == s.system && o.connections == s.connections && o.route == route
                })
                .map(|o| o.passes.iter().map(Pass::rows_per_s).collect::<Vec<_>>())
                .map_or(String::from("-"), |r| spread(&r, false))
        };
        let key = format!("{0}-{1}c-{rtt_ms}ms/{0}-{1}c", s.system, s.connections);
        let r = report
            .ratio_runs
            .get(&key)
            .map_or(String::from("-"), |r| spread(r, true));
        println!(
            "{:<8} {:>4}  {:<28} {:<28} {:<28} {:<22}",
            s.system,
            s.connections,
            rates(Route::Direct),
            rates(Route::Proxy),
            rates(Route::Delayed),
            r
        );
    }
    for (k, v) in &report.ratios {
        println!("ratio {k:<32} {v:.3}");
    }
    for note in &report.notes {
        println!("  {note}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::passes;

    fn series(connections: usize, route: Route, rates: &[f64]) -> Series {
        Series {
            system: "ferry".into(),
            connections,
            route,
            passes: passes(rates),
        }
    }

    #[test]
    fn the_json_has_the_latency_ratio_per_connection_count() {
        let all = vec![
            series(1, Route::Direct, &[100.0, 100.0, 100.0]),
            series(1, Route::Proxy, &[90.0, 100.0, 100.0]),
            series(1, Route::Delayed, &[50.0, 40.0, 60.0]),
            series(16, Route::Direct, &[400.0, 500.0, 400.0]),
            series(16, Route::Proxy, &[400.0, 400.0, 400.0]),
            series(16, Route::Delayed, &[360.0, 400.0, 340.0]),
        ];
        let report = build_report(1_000, 20, &all, 64.0);
        let json = serde_json::to_value(&report).expect("serializes");
        assert_eq!(json["scenario"], "latency");
        let ratio = |key: &str| json["ratios"][key].as_f64().expect(key);
        // Run by run: 360/400, 400/500, 340/400.
        assert!((ratio("ferry-16c-20ms/ferry-16c") - 0.85).abs() < 1e-9);
        assert!((ratio("ferry-1c-20ms/ferry-1c") - 0.5).abs() < 1e-9);
        assert!((ratio("ferry-16c-20ms/ferry-16c-proxy") - 0.9).abs() < 1e-9);
        assert!((ratio("ferry-1c-proxy/ferry-1c") - 1.0).abs() < 1e-9);
        assert_eq!(report.ratios.len(), 6);
        let names: Vec<&str> = json["figures"]
            .as_array()
            .expect("figures")
            .iter()
            .map(|f| f["name"].as_str().expect("name"))
            .collect();
        assert_eq!(
            names,
            [
                "ferry-1c",
                "ferry-1c-proxy",
                "ferry-1c-20ms",
                "ferry-16c",
                "ferry-16c-proxy",
                "ferry-16c-20ms"
            ]
        );
        assert_eq!(json["figures"][5]["rows_per_s"], 360.0);
        assert_eq!(
            json["ratio_runs"]["ferry-16c-20ms/ferry-16c"],
            serde_json::json!([0.9, 0.8, 0.85])
        );
    }

    #[test]
    fn without_the_proxy_baseline_only_the_latency_ratio_is_reported() {
        let all = vec![
            series(4, Route::Direct, &[100.0]),
            series(4, Route::Delayed, &[80.0]),
        ];
        let report = build_report(1_000, 40, &all, 64.0);
        assert_eq!(
            report.ratios.keys().collect::<Vec<_>>(),
            ["ferry-4c-40ms/ferry-4c"]
        );
    }

    #[test]
    fn urls_get_the_proxy_address_in_place_of_their_host() {
        let addr: SocketAddr = "127.0.0.1:40001".parse().expect("addr");
        let via = |u: &str| url_via(u, addr).map_err(|e| e.to_string());
        assert_eq!(
            via("postgresql://ferry:p%40ss@127.0.0.1:54320/ferry").as_deref(),
            Ok("postgresql://ferry:p%40ss@127.0.0.1:40001/ferry")
        );
        assert_eq!(
            via("postgres://u@db.example:6000?sslmode=disable").as_deref(),
            Ok("postgres://u@127.0.0.1:40001?sslmode=disable")
        );
        assert_eq!(
            via("postgresql://localhost").as_deref(),
            Ok("postgresql://127.0.0.1:40001")
        );
        let parts = url_parts("postgresql://u:p@[::1]:5433/db").expect("parts");
        assert_eq!((parts.host, parts.port, parts.rest), ("[::1]", 5433, "/db"));
        assert_eq!(url_parts("postgresql://u@h/db").expect("parts").port, 5432);
        for bad in [
            "host=localhost port=5432",
            "postgresql://a:1,b:2/db",
            "postgresql://u@h/db?host=/tmp",
            "postgresql://u@h:x/db",
            "postgresql:///db",
        ] {
            let err = via(bad).expect_err(bad);
            assert!(err.contains("one host"), "{bad}: {err}");
        }
    }
}
