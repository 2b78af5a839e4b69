//! Cassandra connection and read options (the `[source]` section of `ferry.toml`).

use std::time::Duration;

use serde::Deserialize;

use crate::secret::Secret;

/// How Ferry connects to Cassandra and reads from it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CassandraConfig {
    /// Contact points, `host:port`. One reachable node is enough; the driver discovers the rest.
    pub contact_points: Vec<String>,
    /// Datacenter to read from; reads are routed to replicas in it. Default: any.
    #[serde(default)]
    pub local_dc: Option<String>,
    /// Username for password authentication.
    #[serde(default)]
    pub username: Option<String>,
    /// Password for password authentication; use `${ENV_VAR}` rather than a literal.
    #[serde(default)]
    pub password: Option<Secret>,
    /// Consistency level of every read. Default `LOCAL_ONE`.
    #[serde(default)]
    pub consistency: ConsistencyLevel,
    /// Rows per page. Each page becomes one Arrow record batch. Default 5000.
    #[serde(default = "default_page_size")]
    pub page_size: i32,
    /// Per-request timeout in milliseconds. Default 30000.
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// Connection timeout in milliseconds. Default 5000.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Most page requests in flight at once per table, across all its splits. Each split being
    /// read keeps at most two (the page being decoded and the next). Default 64.
    #[serde(default = "default_max_concurrent_requests")]
    pub max_concurrent_requests: usize,
    /// Send simple filters of a transform or query (`column op literal` on clustering and
    /// regular columns) to Cassandra with `ALLOW FILTERING`, so fewer rows cross the wire.
    /// DataFusion applies them again either way. Default true.
    #[serde(default = "default_true")]
    pub filter_pushdown: bool,
}

impl CassandraConfig {
    /// A configuration with defaults, for the given contact points.
    pub fn new(contact_points: Vec<String>) -> Self {
        Self {
            contact_points,
            local_dc: None,
            username: None,
            password: None,
            consistency: ConsistencyLevel::default(),
            page_size: default_page_size(),
            request_timeout_ms: default_request_timeout_ms(),
            connect_timeout_ms: default_connect_timeout_ms(),
            max_concurrent_requests: default_max_concurrent_requests(),
            filter_pushdown: true,
        }
    }

    /// The per-request timeout.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
}

fn default_page_size() -> i32 {
    5000
}

fn default_request_timeout_ms() -> u64 {
    30_000
}

fn default_connect_timeout_ms() -> u64 {
    5_000
}

fn default_max_concurrent_requests() -> usize {
    super::scan::DEFAULT_MAX_REQUESTS
}

fn default_true() -> bool {
    true
}

/// Read consistency levels that make sense for a bulk read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ConsistencyLevel {
    One,
    Two,
    Three,
    Quorum,
    All,
    #[default]
    LocalOne,
    LocalQuorum,
    EachQuorum,
}

impl From<ConsistencyLevel> for scylla::statement::Consistency {
    fn from(c: ConsistencyLevel) -> Self {
        use scylla::statement::Consistency as C;
        match c {
            ConsistencyLevel::One => C::One,
            ConsistencyLevel::Two => C::Two,
            ConsistencyLevel::Three => C::Three,
            ConsistencyLevel::Quorum => C::Quorum,
            ConsistencyLevel::All => C::All,
            ConsistencyLevel::LocalOne => C::LocalOne,
            ConsistencyLevel::LocalQuorum => C::LocalQuorum,
            ConsistencyLevel::EachQuorum => C::EachQuorum,
        }
    }
}
