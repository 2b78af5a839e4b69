//! Connection placement: which server each of a run's M target connections goes to.
//!
//! On YugabyteDB, `yb_servers()` lists the tservers with their cloud, region and zone. A new
//! connection goes to the server with the fewest connections *Ferry* has placed there (so 30
//! connections over 3 servers are 10/10/10), among the servers matching the topology keys of
//! the best priority that has any server up; with no match, any server, unless
//! `fallback_to_topology_keys_only`. On plain PostgreSQL (no `yb_servers()`), the servers are
//! the URL's hosts, used in turn. A server whose connection failed is quarantined for
//! `quarantine_s`, and the list is read again every `placement_refresh_s` and after a failure.

use std::collections::{HashMap, HashSet};
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio_postgres::Client;
use tokio_postgres::error::SqlState;

use super::config::{Endpoint, Target, YugabyteConfig};
use super::sink::connect_to;
use crate::error::{ConnectorError, Result};

/// One `topology_keys` entry: `cloud.region.zone` (zone may be `*`), priority 1 unless
/// written `cloud.region.zone:N`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopologyKey {
    pub cloud: String,
    pub region: String,
    /// `None` for `*`: any zone of the region.
    pub zone: Option<String>,
    pub priority: u32,
}

impl TopologyKey {
    /// Parses `cloud.region.zone[:priority]`.
    pub fn parse(text: &str) -> Result<Self> {
        let invalid = |why: &str| ConnectorError::Config {
            section: "target",
            message: format!(
                "topology key {text:?} {why}: write cloud.region.zone or cloud.region.*, \
                 optionally followed by :priority (1 = first choice)"
            ),
        };
        let (place, priority) = match text.rsplit_once(':') {
            Some((place, p)) => {
                let priority = p
                    .parse::<u32>()
                    .ok()
                    .filter(|p| *p >= 1)
                    .ok_or_else(|| invalid("has a priority that is not a whole number ≥ 1"))?;
                (place, priority)
            }
            None => (text, 1),
        };
        let parts: Vec<&str> = place.split('.').collect();
        let [cloud, region, zone] = parts.as_slice() else {
            return Err(invalid("does not have three parts"));
        };
        if [cloud, region, zone].iter().any(|p| p.is_empty()) {
            return Err(invalid("has an empty part"));
        }
        if *cloud == "*" || *region == "*" {
            return Err(invalid("has `*` outside the zone"));
        }
        Ok(Self {
            cloud: cloud.to_string(),
            region: region.to_string(),
            zone: (*zone != "*").then(|| zone.to_string()),
            priority,
        })
    }

    /// Whether `server` is in this key's cloud, region and zone.
    pub fn matches(&self, server: &Server) -> bool {
        self.cloud == server.cloud
            && self.region == server.region
            && self.zone.as_ref().is_none_or(|z| *z == server.zone)
    }
}

/// One row of `yb_servers()` (or a URL host, on plain PostgreSQL: no placement information).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    pub endpoint: Endpoint,
    /// Connections the server reports (all clients), used only to break ties.
    pub num_connections: i64,
    pub node_type: String,
    pub cloud: String,
    pub region: String,
    pub zone: String,
    pub public_ip: String,
    pub uuid: String,
}

impl Server {
    /// A URL host of a plain PostgreSQL target.
    pub fn from_url_host(endpoint: Endpoint) -> Self {
        Self {
            endpoint,
            num_connections: 0,
            node_type: String::new(),
            cloud: String::new(),
            region: String::new(),
            zone: String::new(),
            public_ip: String::new(),
            uuid: String::new(),
        }
    }
}

/// The server the next connection should go to: the least-placed one among the servers of
/// the best topology-key priority that has any server not in `excluded`; then, unless
/// `keys_only`, among all servers. Ties go to the fewest reported connections, then to list
/// order. `Err` says why no server fits.
pub fn choose<'a>(
    servers: &'a [Server],
    keys: &[TopologyKey],
    keys_only: bool,
    placed: &HashMap<Endpoint, usize>,
    excluded: &HashSet<Endpoint>,
) -> std::result::Result<&'a Server, String> {
    let available: Vec<&Server> = servers
        .iter()
        .filter(|s| !excluded.contains(&s.endpoint))
        .collect();
    let least = |candidates: Vec<&'a Server>| {
        candidates.into_iter().enumerate().min_by_key(|(i, s)| {
            (
                placed.get(&s.endpoint).copied().unwrap_or(0),
                s.num_connections,
                *i,
            )
        })
    };
    if keys.is_empty() {
        return least(available)
            .map(|(_, s)| s)
            .ok_or_else(|| "every target server is down or quarantined".into());
    }
    let mut priorities: Vec<u32> = keys.iter().map(|k| k.priority).collect();
    priorities.sort_unstable();
    priorities.dedup();
    for priority in priorities {
        let tier: Vec<&Server> = available
            .iter()
            .copied()
            .filter(|s| keys.iter().any(|k| k.priority == priority && k.matches(s)))
            .collect();
        if let Some((_, s)) = least(tier) {
            return Ok(s);
        }
    }
    if keys_only {
        return Err(
            "no server matching topology_keys is up, and fallback_to_topology_keys_only is set"
                .into(),
        );
    }
    least(available)
        .map(|(_, s)| s)
        .ok_or_else(|| "every target server is down or quarantined".into())
}

#[derive(Default)]
struct State {
    servers: Vec<Server>,
    /// `Some(true)` once `yb_servers()` answered, `Some(false)` when it does not exist.
    yugabyte: Option<bool>,
    refreshed: Option<Instant>,
    stale: bool,
    /// Open connections Ferry placed, per server.
    placed: HashMap<Endpoint, usize>,
    /// Servers left out until the instant.
    quarantined: HashMap<Endpoint, Instant>,
}

/// Places a run's target connections. Shared by all workers (`Arc<Placement>`).
pub struct Placement {
    target: Target,
    keys: Vec<TopologyKey>,
    keys_only: bool,
    refresh_every: Duration,
    quarantine_for: Duration,
    state: Mutex<State>,
    refreshing: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Placement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Placement")
            .field("target", &self.target)
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

impl Placement {
    /// A placement for `config`'s target. Reads no server yet.
    pub fn new(config: &YugabyteConfig) -> Result<Arc<Self>> {
        let keys = config
            .topology_keys
            .iter()
            .map(|k| TopologyKey::parse(k))
            .collect::<Result<Vec<_>>>()?;
        Ok(Arc::new(Self {
            target: config.target()?,
            keys,
            keys_only: config.fallback_to_topology_keys_only,
            refresh_every: Duration::from_secs(config.placement_refresh_s),
            quarantine_for: Duration::from_secs(config.quarantine_s),
            state: Mutex::new(State::default()),
            refreshing: tokio::sync::Mutex::new(()),
        }))
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves counts that are still usable.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Opens a connection on the best server for it (see the module docs). A server that
    /// cannot be reached is quarantined and the next best one is tried.
    pub async fn connect(self: &Arc<Self>) -> Result<PlacedClient> {
        self.refresh_if_due().await?;
        let mut tried = HashSet::new();
        let mut last_error = None;
        loop {
            let endpoint = {
                let mut state = self.state();
                let now = Instant::now();
                state.quarantined.retain(|_, until| *until > now);
                let mut excluded: HashSet<Endpoint> = state.quarantined.keys().cloned().collect();
                excluded.extend(tried.iter().cloned());
                let chosen = match choose(
                    &state.servers,
                    &self.keys,
                    self.keys_only,
                    &state.placed,
                    &excluded,
                ) {
                    Ok(s) => Ok(s.endpoint.clone()),
                    // Everything quarantined: a quarantined server beats none.
                    Err(_) => choose(
                        &state.servers,
                        &self.keys,
                        self.keys_only,
                        &state.placed,
                        &tried,
                    )
                    .map(|s| s.endpoint.clone()),
                };
                match chosen {
                    Ok(endpoint) => {
                        *state.placed.entry(endpoint.clone()).or_default() += 1;
                        endpoint
                    }
                    Err(reason) => {
                        return Err(last_error.unwrap_or(ConnectorError::NoTargetServer { reason }));
                    }
                }
            };
            match connect_to(&self.target, &endpoint, None).await {
                Ok(client) => {
                    tracing::debug!(server = %endpoint, "target connection placed");
                    return Ok(PlacedClient {
                        client,
                        endpoint,
                        placement: Arc::clone(self),
                    });
                }
                Err(e) => {
                    self.release(&endpoint);
                    if !e.is_retriable() {
                        return Err(e);
                    }
                    self.quarantine(&endpoint, &e.to_string());
                    tried.insert(endpoint);
                    last_error = Some(e);
                }
            }
        }
    }

    /// Takes back a connection that failed: if it is closed, its server is quarantined; the
    /// server list is read again before the next placement.
    pub fn report_failure(&self, client: PlacedClient) {
        let lost = client.client.is_closed();
        let endpoint = client.endpoint.clone();
        drop(client);
        if lost {
            self.quarantine(&endpoint, "its connection was lost");
        }
        self.state().stale = true;
    }

    /// Open connections per server, placed by this placement.
    pub fn placed(&self) -> Vec<(Endpoint, usize)> {
        let mut placed: Vec<_> = self
            .state()
            .placed
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(e, n)| (e.clone(), *n))
            .collect();
        placed.sort();
        placed
    }

    /// The servers known now (reads them first if never read).
    pub async fn servers(&self) -> Result<Vec<Server>> {
        self.refresh_if_due().await?;
        Ok(self.state().servers.clone())
    }

    /// Whether the target has `yb_servers()`, once known.
    pub fn is_yugabyte(&self) -> Option<bool> {
        self.state().yugabyte
    }

    fn release(&self, endpoint: &Endpoint) {
        let mut state = self.state();
        if let Some(n) = state.placed.get_mut(endpoint) {
            *n = n.saturating_sub(1);
        }
    }

    fn quarantine(&self, endpoint: &Endpoint, why: &str) {
        tracing::warn!(
            server = %endpoint,
            seconds = self.quarantine_for.as_secs(),
            reason = why,
            "target server quarantined"
        );
        let mut state = self.state();
        state
            .quarantined
            .insert(endpoint.clone(), Instant::now() + self.quarantine_for);
        state.stale = true;
    }

    async fn refresh_if_due(&self) -> Result<()> {
        let due = |state: &State| {
            state.stale
                || state
                    .refreshed
                    .is_none_or(|at| at.elapsed() >= self.refresh_every)
        };
        if !due(&self.state()) {
            return Ok(());
        }
        let _one_at_a_time = self.refreshing.lock().await;
        if !due(&self.state()) {
            return Ok(());
        }
        let found = self.discover().await;
        let mut state = self.state();
        state.refreshed = Some(Instant::now());
        state.stale = false;
        match found? {
            Some((servers, yugabyte)) => {
                tracing::debug!(servers = servers.len(), yugabyte, "target servers read");
                state.servers = servers;
                state.yugabyte = Some(yugabyte);
            }
            None if state.servers.is_empty() => {
                // Nothing answered: place on the URL's hosts, so connecting says why.
                state.servers = self.url_servers();
            }
            None => {}
        }
        Ok(())
    }

    fn url_servers(&self) -> Vec<Server> {
        self.target
            .hosts
            .iter()
            .cloned()
            .map(Server::from_url_host)
            .collect()
    }

    /// Reads `yb_servers()` from the first server that answers: the URL's hosts first, then
    /// the servers known from before, quarantined ones last. `None` when none answered.
    async fn discover(&self) -> Result<Option<(Vec<Server>, bool)>> {
        let (mut order, quarantined) = {
            let state = self.state();
            let mut order: Vec<Endpoint> = self.target.hosts.clone();
            for s in &state.servers {
                if !order.contains(&s.endpoint) {
                    order.push(s.endpoint.clone());
                }
            }
            let quarantined: HashSet<Endpoint> = state.quarantined.keys().cloned().collect();
            (order, quarantined)
        };
        order.sort_by_key(|e| quarantined.contains(e));
        let name = format!("{}-discovery", self.target.application_name());
        for endpoint in order {
            let client = match connect_to(&self.target, &endpoint, Some(&name)).await {
                Ok(c) => c,
                Err(e) if e.is_retriable() => {
                    tracing::debug!(server = %endpoint, error = %e, "cannot read yb_servers() there");
                    continue;
                }
                Err(e) => return Err(e),
            };
            match read_yb_servers(&client).await {
                Ok(servers) if servers.is_empty() => return Ok(Some((self.url_servers(), true))),
                Ok(servers) => return Ok(Some((servers, true))),
                Err(e) if e.code() == Some(&SqlState::UNDEFINED_FUNCTION) => {
                    return Ok(Some((self.url_servers(), false)));
                }
                Err(e) => {
                    tracing::debug!(server = %endpoint, error = %e, "yb_servers() failed there");
                }
            }
        }
        Ok(None)
    }
}

async fn read_yb_servers(
    client: &Client,
) -> std::result::Result<Vec<Server>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT host::text, port::bigint, num_connections::bigint, node_type::text, \
             cloud::text, region::text, zone::text, public_ip::text, uuid::text FROM yb_servers()",
            &[],
        )
        .await?;
    let text = |row: &tokio_postgres::Row, i: usize| -> String {
        row.get::<_, Option<String>>(i).unwrap_or_default()
    };
    Ok(rows
        .iter()
        .filter_map(|row| {
            let port = u16::try_from(row.get::<_, Option<i64>>(1)?).ok()?;
            Some(Server {
                endpoint: Endpoint::new(text(row, 0), port),
                num_connections: row.get::<_, Option<i64>>(2).unwrap_or(0),
                node_type: text(row, 3),
                cloud: text(row, 4),
                region: text(row, 5),
                zone: text(row, 6),
                public_ip: text(row, 7),
                uuid: text(row, 8),
            })
        })
        .collect())
}

/// A connection placed by a [`Placement`]; dereferences to the driver's `Client`. Dropping
/// it gives its place back.
pub struct PlacedClient {
    client: Client,
    endpoint: Endpoint,
    placement: Arc<Placement>,
}

impl PlacedClient {
    /// The server it is connected to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }
}

impl Deref for PlacedClient {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

impl DerefMut for PlacedClient {
    fn deref_mut(&mut self) -> &mut Client {
        &mut self.client
    }
}

impl Drop for PlacedClient {
    fn drop(&mut self) {
        self.placement.release(&self.endpoint);
    }
}

/// A worker's connection: placed when first needed, and again after it failed.
pub struct PlacedConnection {
    placement: Arc<Placement>,
    client: Option<PlacedClient>,
}

impl PlacedConnection {
    /// A slot that places its connection on first use, or starts with `client`.
    pub fn new(placement: Arc<Placement>, client: Option<PlacedClient>) -> Self {
        Self { placement, client }
    }

    /// The open connection, placing a new one if there is none or it was closed.
    pub async fn client(&mut self) -> Result<&mut Client> {
        if self.client.as_ref().is_some_and(|c| c.is_closed()) {
            self.failed();
        }
        let client = match self.client.take() {
            Some(client) => client,
            None => self.placement.connect().await?,
        };
        Ok(&mut **self.client.insert(client))
    }

    /// The connection may be the problem: give it back to the placement, which quarantines
    /// its server if it was lost; the next [`Self::client`] places a new one.
    pub fn failed(&mut self) {
        if let Some(client) = self.client.take() {
            self.placement.report_failure(client);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(port: u16, cloud: &str, region: &str, zone: &str) -> Server {
        Server {
            endpoint: Endpoint::new("127.0.0.1", port),
            num_connections: 0,
            node_type: "primary".into(),
            cloud: cloud.into(),
            region: region.into(),
            zone: zone.into(),
            public_ip: String::new(),
            uuid: String::new(),
        }
    }

    fn three() -> Vec<Server> {
        vec![
            server(1, "cloud1", "region1", "zone1"),
            server(2, "cloud1", "region1", "zone2"),
            server(3, "cloud1", "region2", "zone1"),
        ]
    }

    fn keys(texts: &[&str]) -> Vec<TopologyKey> {
        texts
            .iter()
            .map(|t| TopologyKey::parse(t).expect("valid key"))
            .collect()
    }

    /// Places `n` connections, returning how many went to each port.
    fn place(servers: &[Server], keys: &[TopologyKey], excluded: &[u16], n: usize) -> Vec<usize> {
        let excluded: HashSet<Endpoint> = excluded
            .iter()
            .map(|p| Endpoint::new("127.0.0.1", *p))
            .collect();
        let mut placed = HashMap::new();
        for _ in 0..n {
            let s = choose(servers, keys, false, &placed, &excluded).expect("a server");
            *placed.entry(s.endpoint.clone()).or_default() += 1;
        }
        servers
            .iter()
            .map(|s| placed.get(&s.endpoint).copied().unwrap_or(0))
            .collect()
    }

    #[test]
    fn parses_topology_keys() {
        assert_eq!(
            TopologyKey::parse("aws.us-east-1.us-east-1a").expect("valid"),
            TopologyKey {
                cloud: "aws".into(),
                region: "us-east-1".into(),
                zone: Some("us-east-1a".into()),
                priority: 1
            }
        );
        let k = TopologyKey::parse("c.r.*:2").expect("valid");
        assert_eq!((k.zone, k.priority), (None, 2));
        for bad in [
            "c.r", "c.r.z.x", "c..z", "c.r.z:0", "c.r.z:x", "*.r.z", "c.*.z", "",
        ] {
            let e = TopologyKey::parse(bad).expect_err(bad).to_string();
            assert!(e.contains("topology key") && e.contains(bad), "{e}");
        }
    }

    #[test]
    fn keys_match_cloud_region_and_zone() {
        let s = server(1, "c", "r", "z");
        assert!(keys(&["c.r.z"])[0].matches(&s));
        assert!(keys(&["c.r.*"])[0].matches(&s));
        assert!(!keys(&["c.r.y"])[0].matches(&s));
        assert!(!keys(&["c.q.*"])[0].matches(&s));
    }

    #[test]
    fn spreads_evenly_over_every_server() {
        assert_eq!(place(&three(), &[], &[], 30), vec![10, 10, 10]);
        assert_eq!(place(&three(), &[], &[], 4), vec![2, 1, 1]);
        assert_eq!(place(&three(), &[], &[2], 30), vec![15, 0, 15]);
    }

    #[test]
    fn ties_go_to_the_server_reporting_fewer_connections() {
        let mut servers = three();
        servers[0].num_connections = 50;
        assert_eq!(place(&servers, &[], &[], 2), vec![0, 1, 1]);
    }

    #[test]
    fn topology_keys_choose_by_priority_then_fall_back() {
        let k = keys(&["cloud1.region1.zone2", "cloud1.region2.*:2"]);
        assert_eq!(place(&three(), &k, &[], 30), vec![0, 30, 0]);
        assert_eq!(place(&three(), &k, &[2], 30), vec![0, 0, 30]);
        // Neither priority has a server up: any server.
        assert_eq!(place(&three(), &k, &[2, 3], 5), vec![5, 0, 0]);
        let region = keys(&["cloud1.region1.*"]);
        assert_eq!(place(&three(), &region, &[], 30), vec![15, 15, 0]);
    }

    #[test]
    fn keys_only_refuses_other_servers() {
        let k = keys(&["cloud1.region1.zone2"]);
        let excluded = HashSet::from([Endpoint::new("127.0.0.1", 2)]);
        let e = choose(&three(), &k, true, &HashMap::new(), &excluded).expect_err("no server");
        assert!(e.contains("fallback_to_topology_keys_only"), "{e}");
        let all: HashSet<Endpoint> = three().into_iter().map(|s| s.endpoint).collect();
        assert!(choose(&three(), &[], false, &HashMap::new(), &all).is_err());
    }
}
