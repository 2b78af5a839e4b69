//! Shared helpers: service addresses, clients that fail with a useful message, running `ferry`,
//! and order-independent content hashes.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::{Child, Output};
use std::sync::Arc;
use std::time::{Duration, Instant};

use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;

const HINT: &str = "start the local services with `scripts/services.sh up` (and `eval \"$(scripts/services.sh env)\"`)";

pub fn cassandra_addr() -> String {
    std::env::var("FERRY_CASSANDRA").unwrap_or_else(|_| "127.0.0.1:9042".to_string())
}

/// The test CA and client certificate of Cassandra's TLS (`FERRY_CASSANDRA_TLS_CA`, `_CERT`,
/// `_KEY`); panics naming `scripts/services.sh` when the services do not offer TLS.
pub fn cassandra_tls_files() -> (String, String, String) {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!(
                "{name} is not set: Cassandra's TLS files come from the services; {HINT}. \
                 A node started before services.sh had TLS needs `scripts/services.sh cassandra-restart-node 1`"
            )
        })
    };
    (
        var("FERRY_CASSANDRA_TLS_CA"),
        var("FERRY_CASSANDRA_TLS_CERT"),
        var("FERRY_CASSANDRA_TLS_KEY"),
    )
}

/// The password-protected Cassandra of `scripts/services.sh up --cassandra-auth` (a separate
/// one-node cluster): address, user, password. Panics naming the script when it is not running.
pub fn cassandra_auth() -> (String, String, String) {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!(
                "{name} is not set: the password-protected Cassandra is opt-in; start it with \
                 `scripts/services.sh up --cassandra-auth` (and `eval \"$(scripts/services.sh env)\"`)"
            )
        })
    };
    (
        var("FERRY_CASSANDRA_AUTH"),
        var("FERRY_CASSANDRA_AUTH_USER"),
        var("FERRY_CASSANDRA_AUTH_PASSWORD"),
    )
}

/// A logged-in session to the password-protected Cassandra.
pub async fn cassandra_with_login() -> Arc<Session> {
    let (addr, user, password) = cassandra_auth();
    match SessionBuilder::new()
        .known_node(&addr)
        .user(user, password)
        .build()
        .await
    {
        Ok(s) => Arc::new(s),
        Err(e) => panic!(
            "the password-protected Cassandra is not reachable at {addr}: {e}; start it with \
             `scripts/services.sh up --cassandra-auth`"
        ),
    }
}

pub fn postgres_url() -> String {
    std::env::var("FERRY_POSTGRES_URL")
        .unwrap_or_else(|_| "postgresql://ferry:ferry@127.0.0.1:54320/ferry".to_string())
}

/// A session to the test Cassandra; panics naming `scripts/services.sh` when it is not running.
pub async fn cassandra() -> Arc<Session> {
    let addr = cassandra_addr();
    match SessionBuilder::new().known_node(&addr).build().await {
        Ok(s) => Arc::new(s),
        Err(e) => panic!("Cassandra is not reachable at {addr}: {e}; {HINT}"),
    }
}

/// A client of the test PostgreSQL; panics naming `scripts/services.sh` when it is not running.
pub async fn postgres() -> tokio_postgres::Client {
    let url = postgres_url();
    match tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
        Ok((client, conn)) => {
            tokio::spawn(conn);
            client
        }
        Err(e) => panic!("PostgreSQL is not reachable at {url}: {e}; {HINT}"),
    }
}

/// The PostgreSQL with pgvector (`FERRY_PGVECTOR_URL`) and a client of it; panics naming
/// `scripts/services.sh up --pg-vector` when it is not running.
pub async fn pgvector() -> (String, tokio_postgres::Client) {
    const START: &str = "start it with `scripts/services.sh up --pg-vector` (and `eval \"$(scripts/services.sh env)\"`)";
    let url = std::env::var("FERRY_PGVECTOR_URL").unwrap_or_else(|_| {
        panic!("FERRY_PGVECTOR_URL is not set: no PostgreSQL with pgvector; {START}")
    });
    match tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
        Ok((client, conn)) => {
            tokio::spawn(conn);
            (url, client)
        }
        Err(e) => panic!("PostgreSQL with pgvector is not reachable at {url}: {e}; {START}"),
    }
}

/// Runs a CQL statement, panicking with the statement on failure.
pub async fn cql(session: &Session, statement: &str) {
    if let Err(e) = session.query_unpaged(statement, ()).await {
        panic!("CQL failed: {statement}: {e}");
    }
}

/// Drops the table a `CREATE TABLE <name> …` statement names, if it exists, then creates it.
pub async fn recreate_table(session: &Session, create: &str) {
    let name = create
        .strip_prefix("CREATE TABLE ")
        .and_then(|rest| rest.split([' ', '(']).next())
        .unwrap_or_else(|| panic!("not a CREATE TABLE statement: {create}"));
    cql(session, &format!("DROP TABLE IF EXISTS {name}")).await;
    cql(session, create).await;
}

/// A fresh keyspace (RF 1) for one test.
pub async fn keyspace(session: &Session, name: &str) {
    cql(
        session,
        &format!(
            "CREATE KEYSPACE IF NOT EXISTS {name} WITH replication = \
             {{'class': 'SimpleStrategy', 'replication_factor': 1}}"
        ),
    )
    .await;
}

/// A scratch directory under the target dir, emptied first.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join("ferry-tests").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// Writes `ferry.toml` into `dir` with the test services' addresses and `tables` appended.
pub fn write_config(dir: &Path, run: &str, tables: &str) -> PathBuf {
    write_config_with_source(dir, "", run, tables)
}

/// Like [`write_config`], with `source` (more keys and sub-tables such as `[source.tls]`)
/// appended to the `[source]` section.
pub fn write_config_with_source(dir: &Path, source: &str, run: &str, tables: &str) -> PathBuf {
    write_config_for(dir, &cassandra_addr(), source, run, tables)
}

/// Like [`write_config_with_source`], reading from the Cassandra at `contact_point`.
pub fn write_config_for(
    dir: &Path,
    contact_point: &str,
    source: &str,
    run: &str,
    tables: &str,
) -> PathBuf {
    let run = with_run_id(dir, run);
    let text = format!(
        "[source]\ncontact_points = [\"{contact_point}\"]\n{source}\n\n[target]\nurl = \"{}\"\n\n[run]\n{run}\n\n{tables}\n",
        postgres_url()
    );
    let path = dir.join("ferry.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

/// `run` with a run id of its own, unless the test sets one: checkpoints of an earlier
/// `cargo test` must not make this one skip units.
fn with_run_id(dir: &Path, run: &str) -> String {
    if run.lines().any(|l| l.trim_start().starts_with("id ")) {
        run.to_string()
    } else {
        format!("{run}\nid = \"{}\"", unique_run_id(dir))
    }
}

/// `<dir name>-<nanoseconds since the epoch>`.
pub fn unique_run_id(dir: &Path) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let name = dir
        .file_name()
        .map_or("test".into(), |n| n.to_string_lossy());
    format!("{name}-{nanos}")
}

/// Writes `ferry.toml` into `dir` pointing at a Cassandra that is not there (port 1).
pub fn unreachable_cassandra_config(dir: &Path) -> PathBuf {
    let text = format!(
        "[source]\ncontact_points = [\"127.0.0.1:1\"]\nconnect_timeout_ms = 2000\n\n\
         [target]\nurl = \"{}\"\n\n[[table]]\nsource = \"ks.t\"\n",
        postgres_url()
    );
    let path = dir.join("ferry.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

/// Runs the `ferry` binary.
pub fn ferry(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .env("FERRY_LOG", "warn")
        .output()
        .expect("run the ferry binary")
}

/// Runs `ferry migrate` on `config` with a report next to it, asserts it succeeded, and returns
/// the report.
pub fn migrate_ok(config: &Path) -> serde_json::Value {
    migrate_ok_with(config, &[])
}

/// [`migrate_ok`] with more arguments, e.g. `--restart`.
pub fn migrate_ok_with(config: &Path, args: &[&str]) -> serde_json::Value {
    let report = config.with_file_name("report.json");
    let mut all = vec![
        "migrate",
        "--config",
        config.to_str().expect("utf-8 path"),
        "--report",
        report.to_str().expect("utf-8 path"),
    ];
    all.extend_from_slice(args);
    let out = ferry(&all);
    assert!(
        out.status.success(),
        "ferry migrate failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    read_report(&report)
}

/// Reads a JSON report.
pub fn read_report(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("report {} missing: {e}", path.display()));
    serde_json::from_str(&text).expect("report is JSON")
}

/// An order-independent hash of rows given in a canonical text form: the wrapping sum of each
/// row's hash, so duplicates and missing rows both change it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ContentHash {
    pub rows: u64,
    pub sum: u64,
}

impl ContentHash {
    pub fn add(&mut self, canonical_row: &str) {
        let mut h = DefaultHasher::new();
        canonical_row.hash(&mut h);
        self.rows += 1;
        self.sum = self.sum.wrapping_add(h.finish());
    }
}

/// Asserts a command failed the way a user should see it: non-zero exit, a message naming the
/// problem, and no panic or backtrace.
pub fn assert_clean_failure(out: &Output, expected_code: i32, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(expected_code),
        "exit code; stderr:\n{stderr}"
    );
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "stderr lacks {needle:?}:\n{stderr}"
        );
    }
    for bad in ["panicked", "backtrace", "RUST_BACKTRACE"] {
        assert!(!stderr.contains(bad), "stderr has {bad:?}:\n{stderr}");
    }
}

/// Runs `ferry query -c CONFIG ARGS…` and returns stdout, failing on a non-zero exit.
pub fn query_ok(config: &std::path::Path, args: &[&str]) -> String {
    let mut all = vec!["query", "-c", config.to_str().expect("utf-8 path")];
    all.extend_from_slice(args);
    let out = ferry(&all);
    assert!(
        out.status.success(),
        "ferry {all:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

pub fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
        .collect()
}

/// `host:port` of the three PostgreSQL nodes of `scripts/services.sh up --pg-nodes 3`
/// (`FERRY_POSTGRES_NODES`), each with a `yb_servers()` stand-in. Panics naming the script
/// when they are not all there.
pub fn postgres_nodes() -> Vec<String> {
    let hint = "start them with `scripts/services.sh up --pg-nodes 3` (and `eval \"$(scripts/services.sh env)\"`)";
    let urls = std::env::var("FERRY_POSTGRES_NODES").unwrap_or_else(|_| {
        panic!(
            "FERRY_POSTGRES_NODES is not set: placement tests need three PostgreSQL nodes; {hint}"
        )
    });
    let nodes: Vec<String> = urls
        .split(',')
        .filter_map(|u| {
            u.split_once('@')
                .and_then(|(_, rest)| rest.split('/').next())
        })
        .map(str::to_string)
        .collect();
    assert!(
        nodes.len() == 3,
        "FERRY_POSTGRES_NODES lists {} node(s), not 3; {hint}",
        nodes.len()
    );
    nodes
}

/// A `postgresql://` URL naming every node, announcing `application_name`. Its database,
/// `ferry_yb`, is the one with the `yb_servers()` stand-in; database `ferry` has none, so every
/// other test sees plain PostgreSQL.
pub fn postgres_nodes_url(application_name: &str) -> String {
    format!(
        "postgresql://ferry:ferry@{}/ferry_yb?application_name={application_name}",
        postgres_nodes().join(",")
    )
}

/// A client of database `ferry_yb` on one PostgreSQL node (`host:port`), panicking with the
/// script's name if it is down.
pub async fn postgres_node(node: &str) -> tokio_postgres::Client {
    let url = format!("postgresql://ferry:ferry@{node}/ferry_yb");
    match tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
        Ok((client, conn)) => {
            tokio::spawn(conn);
            client
        }
        Err(e) => panic!(
            "PostgreSQL node {node} is not reachable: {e}; start it with `scripts/services.sh up --pg-nodes 3`"
        ),
    }
}

/// Connections with `application_name` open on one node, from `pg_stat_activity`.
pub async fn connections_named(node: &str, application_name: &str) -> i64 {
    postgres_node(node)
        .await
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
            &[&application_name],
        )
        .await
        .expect("pg_stat_activity")
        .get(0)
}

/// Runs `scripts/services.sh ARGS…`, panicking with its output on failure.
pub fn services(args: &[&str]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/services.sh");
    let out = std::process::Command::new(&script)
        .args(args)
        .output()
        .expect("run scripts/services.sh");
    assert!(
        out.status.success(),
        "scripts/services.sh {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Stops PostgreSQL node `n` (2 or 3: node 1 serves every other test) and starts it again
/// when dropped, even when the test fails.
pub struct StoppedPgNode(u8);

impl StoppedPgNode {
    pub fn stop(n: u8) -> Self {
        assert!(
            n == 2 || n == 3,
            "tests stop PostgreSQL node 2 or 3, never node 1"
        );
        services(&["pg-stop-node", &n.to_string()]);
        Self(n)
    }
}

impl Drop for StoppedPgNode {
    fn drop(&mut self) {
        services(&["pg-start-node", &self.0.to_string()]);
    }
}

/// The TLS PostgreSQL of `scripts/services.sh up --pg-tls`: its URL without parameters
/// (`postgresql://ferry:ferry@localhost:54330/ferry`) and the CA that signed its certificate.
pub fn postgres_tls() -> (String, String) {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!(
                "{name} is not set: the TLS PostgreSQL is opt-in; start it with \
                 `scripts/services.sh up --pg-tls` (and `eval \"$(scripts/services.sh env)\"`)"
            )
        })
    };
    let url = var("FERRY_POSTGRES_TLS_URL");
    let url = url.split('?').next().unwrap_or(&url).to_string();
    (url, var("FERRY_POSTGRES_TLS_CA"))
}

/// Writes `ferry.toml` into `dir` with the `[target]` section given whole.
pub fn write_config_with_target(dir: &Path, target: &str, run: &str, tables: &str) -> PathBuf {
    let run = with_run_id(dir, run);
    let text = format!(
        "[source]\ncontact_points = [\"{}\"]\n\n[target]\n{target}\n\n[run]\n{run}\n\n{tables}\n",
        cassandra_addr()
    );
    let path = dir.join("ferry.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

/// The last lines of a log, for failure messages.
pub fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// Units committed so far in `run_id` (0 while `ferry_state` does not exist yet).
pub async fn committed_units(client: &tokio_postgres::Client, run_id: &str) -> i64 {
    client
        .query_one(
            "SELECT count(*) FROM ferry_state.units WHERE run_id = $1",
            &[&run_id],
        )
        .await
        .map_or(0, |r| r.get(0))
}

/// Waits until `run_id` has at least `units` committed units, failing if `child` ends first (with
/// the tail of its `log`, if it writes one) or 300 s pass.
pub async fn wait_for_units(
    client: &tokio_postgres::Client,
    run_id: &str,
    units: i64,
    child: &mut Child,
    log: Option<&Path>,
    context: &str,
) {
    let tail = |log: Option<&Path>| log.map(tail).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(300);
    while committed_units(client, run_id).await < units {
        if let Some(status) = child.try_wait().expect("poll ferry") {
            panic!(
                "{context}: ferry ended ({status}) before {units} units were committed:\n{}",
                tail(log)
            );
        }
        assert!(
            Instant::now() < deadline,
            "{context}: fewer than {units} units committed in 300 s:\n{}",
            tail(log)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
