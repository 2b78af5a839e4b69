//! Unit leases: how any number of `ferry migrate` processes share one run.
//!
//! ```text
//! ferry_state.leases (run_id, target, unit) → worker, expires_at, claims
//! ```
//!
//! A worker claims the next unit that is neither committed nor leased (or whose lease expired,
//! because its worker died or stalled) in one statement (`FOR UPDATE SKIP LOCKED`, so claimers
//! never wait on each other), and its process renews every lease it holds every `lease_s / 3`.
//!
//! Exactly once does not rest on the lease: it rests on the unit's checkpoint row, committed in
//! the unit's own transaction. The lease adds that a worker which lost its lease (it stalled
//! past the expiry and another worker took the unit over) cannot commit the unit at all: the
//! transaction renews the lease as its last statement, under the lease row's lock, and rolls
//! back when the lease is no longer its own.
//!
//! Times are the server's `clock_timestamp()`, never a worker's clock, and never `now()`
//! (the start of the transaction, which may be minutes old when a unit commits).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio_postgres::{Client, GenericClient};

use crate::checkpoint::pg;
use crate::error::Result;

/// The statements that create the lease table; safe to run again.
pub(crate) const LEASES_DDL: &str = "
CREATE TABLE IF NOT EXISTS ferry_state.leases (
    run_id text NOT NULL,
    target text NOT NULL,
    unit integer NOT NULL,
    worker text,
    expires_at timestamptz NOT NULL DEFAULT '-infinity',
    claims integer NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, target, unit)
);
";

/// Who this process is, and how it prefers units.
#[derive(Debug, Clone)]
pub struct WorkerIdentity {
    /// Unique per process: `<hostname>-<pid>-<random>` unless given.
    pub id: String,
    /// Static sharding: this worker takes units `u` with `u % workers == index` first.
    pub shard: Option<(u32, u32)>,
}

impl WorkerIdentity {
    /// A new identity: `id` as given, or `<hostname>-<pid>-<8 random hex digits>` (the random
    /// part tells a restarted process with the same pid, e.g. in a container, from its
    /// predecessor, whose leases are not its own).
    pub fn new(id: Option<String>, shard: Option<(u32, u32)>) -> Self {
        let id = id.unwrap_or_else(|| {
            let host = std::env::var("HOSTNAME")
                .ok()
                .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "ferry".to_string());
            let random = uuid::Uuid::new_v4().simple().to_string();
            format!("{host}-{}-{}", std::process::id(), &random[..8])
        });
        Self { id, shard }
    }
}

impl Default for WorkerIdentity {
    fn default() -> Self {
        Self::new(None, None)
    }
}

/// The leases of one process: claims, renewal, and the check a unit commits under.
#[derive(Debug)]
pub struct Leases {
    run_id: String,
    worker: WorkerIdentity,
    lease: Duration,
    /// `(target, unit)` of every lease this process holds.
    held: Mutex<BTreeSet<(String, i32)>>,
    /// Time spent in the lease statements on the units' path (claims, confirmations, drops; not
    /// the background renewal), in nanoseconds: the leasing's cost, for the report.
    spent_ns: AtomicU64,
}

/// Adds the time from its creation to its drop to a counter.
struct Timer<'a>(&'a AtomicU64, Instant);

impl Drop for Timer<'_> {
    fn drop(&mut self) {
        self.0
            .fetch_add(self.1.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }
}

impl Leases {
    pub fn new(run_id: &str, worker: WorkerIdentity, lease: Duration) -> Arc<Self> {
        Arc::new(Self {
            run_id: run_id.to_string(),
            worker,
            lease,
            held: Mutex::default(),
            spent_ns: AtomicU64::new(0),
        })
    }

    /// Time this process spent in lease statements on the units' path so far.
    pub fn spent(&self) -> Duration {
        Duration::from_nanos(self.spent_ns.load(Ordering::Relaxed))
    }

    fn timer(&self) -> Timer<'_> {
        Timer(&self.spent_ns, Instant::now())
    }

    pub fn worker_id(&self) -> &str {
        &self.worker.id
    }

    fn lease_s(&self) -> f64 {
        self.lease.as_secs_f64()
    }

    fn held(&self) -> std::sync::MutexGuard<'_, BTreeSet<(String, i32)>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes sure `target` has a lease row per unit (`0..units`); safe to run again.
    pub async fn prepare(&self, client: &Client, target: &str, units: usize) -> Result<()> {
        client
            .execute(
                "INSERT INTO ferry_state.leases (run_id, target, unit, worker, expires_at, claims) \
                 SELECT $1, $2, generate_series(0, $3 - 1), NULL, '-infinity', 0 \
                 ON CONFLICT DO NOTHING",
                &[&self.run_id, &target, &(units as i32)],
            )
            .await
            .map_err(|e| pg("create the unit leases", e))?;
        Ok(())
    }

    /// Claims the next unit of `target` that is not committed and not leased by a live worker:
    /// this worker's shard first, then in unit order. `None` when there is none right now.
    pub async fn claim(&self, client: &Client, target: &str) -> Result<Option<usize>> {
        let _timer = self.timer();
        let (workers, index) = self.worker.shard.unwrap_or((1, 0));
        let row = client
            .query_opt(
                "UPDATE ferry_state.leases l \
                 SET worker = $3, expires_at = clock_timestamp() + $4 * interval '1 second', \
                     claims = l.claims + 1 \
                 WHERE (l.run_id, l.target, l.unit) = ( \
                   SELECT c.run_id, c.target, c.unit FROM ferry_state.leases c \
                   WHERE c.run_id = $1 AND c.target = $2 AND c.expires_at < clock_timestamp() \
                     AND NOT EXISTS (SELECT 1 FROM ferry_state.units u WHERE u.run_id = c.run_id \
                                     AND u.target = c.target AND u.unit = c.unit) \
                   ORDER BY (c.unit % $5 = $6) DESC, c.unit \
                   LIMIT 1 FOR UPDATE SKIP LOCKED) \
                 RETURNING l.unit, l.claims",
                &[
                    &self.run_id,
                    &target,
                    &self.worker.id,
                    &self.lease_s(),
                    &(workers as i32),
                    &(index as i32),
                ],
            )
            .await
            .map_err(|e| pg("claim a unit", e))?;
        Ok(row.map(|r| {
            let unit: i32 = r.get(0);
            let claims: i32 = r.get(1);
            if claims > 1 {
                tracing::info!(target = %target, split = unit, claims, worker = %self.worker.id, "took over a unit whose lease had expired");
            }
            self.held().insert((target.to_string(), unit));
            unit as usize
        }))
    }

    /// The units of `target` not committed yet, and whether each is leased by a live worker of
    /// another process (those this process cannot take until their lease expires).
    pub async fn remaining(&self, client: &Client, target: &str) -> Result<Remaining> {
        let _timer = self.timer();
        let row = client
            .query_one(
                "SELECT count(*), count(*) FILTER (WHERE l.expires_at >= clock_timestamp() \
                   AND l.worker IS DISTINCT FROM $3) \
                 FROM ferry_state.leases l WHERE l.run_id = $1 AND l.target = $2 \
                   AND NOT EXISTS (SELECT 1 FROM ferry_state.units u WHERE u.run_id = l.run_id \
                                   AND u.target = l.target AND u.unit = l.unit)",
                &[&self.run_id, &target, &self.worker.id],
            )
            .await
            .map_err(|e| pg("count the units left", e))?;
        Ok(Remaining {
            uncommitted: row.get::<_, i64>(0) as u64,
            leased_elsewhere: row.get::<_, i64>(1) as u64,
        })
    }

    /// Renews, inside the unit's transaction, the lease on `unit` as its last check before
    /// COMMIT: `false` when the lease is no longer this worker's (the caller must roll back).
    pub async fn confirm(
        &self,
        tx: &impl GenericClient,
        target: &str,
        unit: usize,
    ) -> Result<bool> {
        let _timer = self.timer();
        let n = tx
            .execute(
                "UPDATE ferry_state.leases SET expires_at = clock_timestamp() + $5 * interval '1 second' \
                 WHERE run_id = $1 AND target = $2 AND unit = $3 AND worker = $4 \
                   AND expires_at >= clock_timestamp()",
                &[
                    &self.run_id,
                    &target,
                    &(unit as i32),
                    &self.worker.id,
                    &self.lease_s(),
                ],
            )
            .await
            .map_err(|e| pg(&format!("confirm the lease of unit {unit}"), e))?;
        Ok(n == 1)
    }

    /// Takes `unit`'s lease again on `client` (a new connection, after a failed attempt): `true`
    /// when it is still this worker's or free, `false` when another worker holds it now.
    pub async fn reclaim(&self, client: &Client, target: &str, unit: usize) -> Result<bool> {
        let _timer = self.timer();
        let n = client
            .execute(
                "UPDATE ferry_state.leases SET worker = $4, \
                   expires_at = clock_timestamp() + $5 * interval '1 second' \
                 WHERE run_id = $1 AND target = $2 AND unit = $3 \
                   AND (worker = $4 OR worker IS NULL OR expires_at < clock_timestamp())",
                &[
                    &self.run_id,
                    &target,
                    &(unit as i32),
                    &self.worker.id,
                    &self.lease_s(),
                ],
            )
            .await
            .map_err(|e| pg(&format!("take the lease of unit {unit} again"), e))?;
        Ok(n == 1)
    }

    /// The unit is done with (committed, or given up): stop renewing it; when `release`, let
    /// another worker claim it at once.
    pub async fn drop_unit(&self, client: &Client, target: &str, unit: usize, release: bool) {
        let _timer = self.timer();
        self.held().remove(&(target.to_string(), unit as i32));
        if release
            && let Err(e) = client
                .execute(
                    "UPDATE ferry_state.leases SET expires_at = '-infinity' \
                     WHERE run_id = $1 AND target = $2 AND unit = $3 AND worker = $4",
                    &[&self.run_id, &target, &(unit as i32), &self.worker.id],
                )
                .await
        {
            tracing::warn!(split = unit, error = %e, "could not release a unit's lease; it frees itself when it expires");
        }
    }

    /// Renews every lease this process holds; returns the units whose lease was lost (expired
    /// and taken over) — their transactions will roll back at commit.
    pub async fn renew(&self, client: &Client) -> Result<Vec<(String, i32)>> {
        let held: Vec<(String, i32)> = self.held().iter().cloned().collect();
        if held.is_empty() {
            return Ok(Vec::new());
        }
        let (targets, units): (Vec<String>, Vec<i32>) = held.iter().cloned().unzip();
        let rows = client
            .query(
                "UPDATE ferry_state.leases l \
                 SET expires_at = clock_timestamp() + $3 * interval '1 second' \
                 FROM unnest($4::text[], $5::integer[]) AS h(target, unit) \
                 WHERE l.run_id = $1 AND l.worker = $2 AND l.target = h.target \
                   AND l.unit = h.unit AND l.expires_at >= clock_timestamp() \
                 RETURNING l.target, l.unit",
                &[
                    &self.run_id,
                    &self.worker.id,
                    &self.lease_s(),
                    &targets,
                    &units,
                ],
            )
            .await
            .map_err(|e| pg("renew the unit leases", e))?;
        let renewed: BTreeSet<(String, i32)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        Ok(held.into_iter().filter(|h| !renewed.contains(h)).collect())
    }

    /// Renews this process's leases every `lease_s / 3` until `done` resolves.
    pub async fn renew_until(
        self: Arc<Self>,
        placement: Arc<ferry_connectors::yugabyte::Placement>,
        done: tokio::sync::watch::Receiver<bool>,
    ) {
        let every = (self.lease / 3).max(Duration::from_millis(200));
        let mut done = done;
        let mut client = None;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = done.changed() => return,
            }
            if client.is_none() {
                match placement.connect().await {
                    Ok(c) => client = Some(c),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot connect to renew the unit leases; retrying");
                        continue;
                    }
                }
            }
            let Some(c) = client.as_ref() else { continue };
            match self.renew(c).await {
                Ok(lost) => {
                    for (target, unit) in lost {
                        tracing::warn!(target = %target, split = unit, worker = %self.worker.id, "lost the lease of a unit in flight (it expired and another worker took the unit over); this worker will not commit it");
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "renewing the unit leases failed; retrying on a new connection");
                    client = None;
                }
            }
        }
    }
}

/// What is left of a table for this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Remaining {
    /// Units not committed by anyone.
    pub uncommitted: u64,
    /// Of those, units leased by a live worker of another process.
    pub leased_elsewhere: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_are_unique_per_process_start_unless_given() {
        let a = WorkerIdentity::new(None, None);
        let b = WorkerIdentity::new(None, None);
        assert_ne!(a.id, b.id);
        assert!(a.id.contains(&std::process::id().to_string()), "{}", a.id);
        let given = WorkerIdentity::new(Some("pod-3".into()), Some((4, 3)));
        assert_eq!(given.id, "pod-3");
        assert_eq!(given.shard, Some((4, 3)));
    }
}
