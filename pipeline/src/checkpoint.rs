//! Run state in the target database (schema `ferry_state`), so a killed run resumes exactly.
//!
//! Not schema `ferry`: PostgreSQL's default `search_path` starts with `"$user"`, so for a role
//! named `ferry` a schema of that name would capture every unqualified table it creates.
//!
//! ```text
//! ferry_state.runs    (run_id) → attempts, status        one row per run, updated by each attempt
//! ferry_state.splits  (run_id, target, unit) → ranges    the split plan, fixed by the first attempt
//!                                           [, staged]  (a load: which staged split, by hash)
//! ferry_state.units   (run_id, target, unit) → counts    one row per committed unit
//! ```
//!
//! The split plan also records the target table's OID: checkpoints of a table that has since been
//! dropped and created again are refused, instead of skipping units whose rows are gone.
//!
//! A unit's checkpoint row is inserted in the same transaction as its COPY, so a unit is either
//! loaded and recorded, or neither. A resumed run reads the split plan back instead of planning
//! anew (the ring or the size estimates may have changed since, which would move rows between
//! units), and skips every recorded unit.
//!
//! A load (`ferry load`) stores its split plan too: unit k is staged split k, recorded with its
//! token ranges and what identifies its rows (content hash and row count), so a resumed load
//! refuses staged data that changed since it started instead of skipping the wrong rows.

use std::collections::BTreeMap;

use ferry_connectors::ConnectorError;
use ferry_connectors::cassandra::ring::ring_ranges;
use ferry_connectors::cassandra::{Split, TokenRange};
use ferry_sql::ddl::quote_ident;
use scylla::client::session::Session;
use tokio_postgres::{Client, GenericClient};

use crate::error::{PipelineError, Result};
use crate::lease::LEASES_DDL;

/// The statements that create the run-state tables; safe to run again.
const SCHEMA_DDL: &str = "
CREATE SCHEMA IF NOT EXISTS ferry_state;
CREATE TABLE IF NOT EXISTS ferry_state.splits (
    run_id text NOT NULL,
    target text NOT NULL,
    unit integer NOT NULL,
    ranges text NOT NULL,
    target_oid bigint NOT NULL,
    PRIMARY KEY (run_id, target, unit)
);
CREATE TABLE IF NOT EXISTS ferry_state.units (
    run_id text NOT NULL,
    target text NOT NULL,
    unit integer NOT NULL,
    rows_read bigint NOT NULL,
    rows_written bigint NOT NULL,
    rows_rejected bigint NOT NULL,
    copy_bytes bigint NOT NULL,
    committed_at timestamptz NOT NULL DEFAULT now(),
    elapsed_ms bigint,
    worker text,
    PRIMARY KEY (run_id, target, unit)
);
ALTER TABLE ferry_state.units ADD COLUMN IF NOT EXISTS elapsed_ms bigint;
ALTER TABLE ferry_state.units ADD COLUMN IF NOT EXISTS worker text;
ALTER TABLE ferry_state.splits ADD COLUMN IF NOT EXISTS staged text;
CREATE TABLE IF NOT EXISTS ferry_state.runs (
    run_id text PRIMARY KEY,
    config text NOT NULL,
    ferry_version text NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    attempt_started_at timestamptz NOT NULL DEFAULT now(),
    attempts integer NOT NULL DEFAULT 1,
    finished_at timestamptz,
    status text NOT NULL,
    error text
);
";

/// Creates schema `ferry_state` and its tables when missing.
pub async fn ensure_schema(client: &Client) -> Result<()> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = async {
            client.batch_execute(SCHEMA_DDL).await?;
            client.batch_execute(LEASES_DDL).await
        }
        .await;
        match result {
            Ok(()) => return Ok(()),
            // Processes creating the schema at once: the loser sees a duplicate, and the rest of
            // its batch did not run. Every statement is idempotent: run it again.
            Err(e)
                if attempt < 10
                    && e.code()
                        .is_some_and(|c| matches!(c.code(), "23505" | "42P07" | "42701")) =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(50 * attempt)).await;
            }
            Err(source) => return Err(pg("create the run-state schema `ferry_state`", source)),
        }
    }
}

/// What a committed unit recorded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnitRecord {
    pub rows_read: u64,
    pub rows_written: u64,
    pub rows_rejected: u64,
    pub copy_bytes: u64,
    /// How long the unit's committed attempt took.
    pub elapsed_ms: u64,
}

/// How a run ended, in `ferry_state.runs.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Running,
    Finished,
    Failed,
    Interrupted,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Finished => "finished",
            Self::Failed => "failed",
            Self::Interrupted => "interrupted",
        }
    }
}

/// Records that an attempt of run `run_id` starts: a new row, or the next attempt of an old one.
///
/// An update, then an insert, rather than one `INSERT … ON CONFLICT DO UPDATE`: the run state
/// stays writable through anything that cannot take an upsert (a foreign table), and every
/// column gets its value from here, not from a default.
pub async fn run_started(client: &Client, run_id: &str, config: &str) -> Result<()> {
    let version = env!("CARGO_PKG_VERSION");
    let err = |e| pg("record the run's start", e);
    loop {
        let updated = client
            .execute(
                "UPDATE ferry_state.runs SET attempt_started_at = now(), attempts = attempts + 1, \
                 finished_at = NULL, error = NULL, status = 'running', config = $2, \
                 ferry_version = $3 WHERE run_id = $1",
                &[&run_id, &config, &version],
            )
            .await
            .map_err(err)?;
        if updated > 0 {
            return Ok(());
        }
        let inserted = client
            .execute(
                "INSERT INTO ferry_state.runs (run_id, config, ferry_version, started_at, \
                 attempt_started_at, attempts, status) \
                 VALUES ($1, $2, $3, now(), now(), 1, 'running') ON CONFLICT DO NOTHING",
                &[&run_id, &config, &version],
            )
            .await
            .map_err(err)?;
        if inserted > 0 {
            return Ok(());
        }
        // Another worker of the run inserted it meanwhile: count this attempt too.
    }
}

/// Records how the current attempt of run `run_id` ended.
pub async fn run_ended(
    client: &Client,
    run_id: &str,
    status: RunStatus,
    error: Option<&str>,
) -> Result<()> {
    client
        .execute(
            "UPDATE ferry_state.runs SET status = $2, error = $3, finished_at = now() \
             WHERE run_id = $1",
            &[&run_id, &status.as_str(), &error],
        )
        .await
        .map_err(|e| pg("record the run's end", e))?;
    Ok(())
}

/// Forgets run `run_id` entirely (its run row; tables are forgotten one by one).
pub async fn forget_run(client: &Client, run_id: &str) -> Result<()> {
    client
        .execute("DELETE FROM ferry_state.runs WHERE run_id = $1", &[&run_id])
        .await
        .map_err(|e| pg("forget the run", e))?;
    Ok(())
}

/// What a load records of staged split k, to know it again when the run resumes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedUnit {
    /// The Cassandra token ranges the split was read from.
    pub ranges: Vec<TokenRange>,
    /// The split's rows, e.g. `rows=1000 hash=0123456789abcdef`.
    pub identity: String,
}

/// The checkpoints of one target table in one run.
#[derive(Debug, Clone)]
pub struct Checkpoints {
    run_id: String,
    /// The qualified target table, as its run-state key.
    target: String,
    schema: String,
    table: String,
}

impl Checkpoints {
    /// The checkpoints of run `run_id` into `schema.table`.
    pub fn new(run_id: &str, schema: &str, table: &str) -> Self {
        Self {
            run_id: run_id.to_string(),
            target: format!("{schema}.{table}"),
            schema: schema.to_string(),
            table: table.to_string(),
        }
    }

    /// The qualified target table, as its key in the run state (`schema.table`).
    pub fn key(&self) -> &str {
        &self.target
    }

    /// The target table's OID, when it exists.
    async fn target_oid(&self, client: &Client) -> Result<Option<i64>> {
        let row = client
            .query_opt(
                "SELECT c.oid::bigint FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = $1 AND c.relname = $2",
                &[&self.schema, &self.table],
            )
            .await
            .map_err(|e| pg("look up the target table", e))?;
        Ok(row.map(|r| r.get(0)))
    }

    /// Refuses checkpoints recorded against another table of the same name.
    async fn check_target(&self, client: &Client) -> Result<()> {
        let Some(oid) = self.target_oid(client).await? else {
            // Planning reports the missing table.
            return Ok(());
        };
        let stored: Option<i64> = client
            .query_opt(
                "SELECT max(target_oid) FROM ferry_state.splits WHERE run_id = $1 AND target = $2",
                &[&self.run_id, &self.target],
            )
            .await
            .map_err(|e| pg("read the stored split plan", e))?
            .and_then(|r| r.get(0));
        match stored {
            Some(stored) if stored != oid => Err(PipelineError::RunState(format!(
                "run `{}` has checkpoints for {}, but that table was dropped and created again \
                 since, so the rows they stand for are gone; run `ferry migrate --restart` to load \
                 it again, or use another --run-id",
                self.run_id, self.target
            ))),
            _ => Ok(()),
        }
    }

    /// The split plan stored by an earlier attempt of this run, as token ranges per unit.
    pub async fn stored_splits(&self, client: &Client) -> Result<Option<Vec<Vec<TokenRange>>>> {
        let rows = client
            .query(
                "SELECT unit, ranges FROM ferry_state.splits WHERE run_id = $1 AND target = $2 \
                 ORDER BY unit",
                &[&self.run_id, &self.target],
            )
            .await
            .map_err(|e| pg("read the stored split plan", e))?;
        if rows.is_empty() {
            return Ok(None);
        }
        let mut out = Vec::with_capacity(rows.len());
        for (i, row) in rows.iter().enumerate() {
            let unit: i32 = row.get(0);
            let text: &str = row.get(1);
            let ranges: Vec<TokenRange> = serde_json::from_str(text).map_err(|e| {
                PipelineError::RunState(format!(
                    "ferry_state.splits row ({}, {}, {unit}) is not a list of token ranges: {e}",
                    self.run_id, self.target
                ))
            })?;
            if unit as usize != i {
                return Err(PipelineError::RunState(format!(
                    "ferry_state.splits of run {} for {} has no unit {i}; delete its rows (or run \
                     with --restart) to plan the table again",
                    self.run_id, self.target
                )));
            }
            out.push(ranges);
        }
        Ok(Some(out))
    }

    /// Stores the split plan of the first attempt, in one statement. When another process
    /// stored one first, that one wins and is returned.
    pub async fn store_splits(
        &self,
        client: &Client,
        splits: &[Split],
    ) -> Result<Vec<Vec<TokenRange>>> {
        let oid = self.target_oid(client).await?.unwrap_or(0);
        let units: Vec<i32> = splits.iter().map(|s| s.index as i32).collect();
        let ranges: Vec<String> = splits
            .iter()
            .map(|s| {
                serde_json::to_string(&s.ranges).expect("token ranges always serialize to JSON")
            })
            .collect();
        // All or nothing: workers planning the table at once (with different split counts, say)
        // must not mix their plans. Every plan has a unit 0, so the second one to insert waits
        // on the first one's unit 0, then finds it taken and rolls back all of its own rows.
        let store = async {
            client.batch_execute("BEGIN").await?;
            let inserted = client
                .execute(
                    "INSERT INTO ferry_state.splits (run_id, target, unit, ranges, target_oid) \
                     SELECT $1, $2, unnest($3::integer[]), unnest($4::text[]), $5 \
                     ON CONFLICT DO NOTHING",
                    &[&self.run_id, &self.target, &units, &ranges, &oid],
                )
                .await?;
            let end = if inserted as usize == units.len() {
                "COMMIT"
            } else {
                "ROLLBACK"
            };
            client.batch_execute(end).await
        }
        .await;
        if let Err(e) = store {
            let _ = client.batch_execute("ROLLBACK").await;
            return Err(pg("store the split plan", e));
        }
        self.stored_splits(client).await?.ok_or_else(|| {
            PipelineError::RunState(format!(
                "the split plan of {} vanished right after it was stored",
                self.target
            ))
        })
    }

    /// Whether this run's split plan for the table is a load's (staged splits).
    async fn plan_is_staged(&self, client: &Client) -> Result<Option<bool>> {
        let row = client
            .query_one(
                "SELECT count(*), count(staged) FROM ferry_state.splits \
                 WHERE run_id = $1 AND target = $2",
                &[&self.run_id, &self.target],
            )
            .await
            .map_err(|e| pg("read the stored split plan", e))?;
        let (all, staged): (i64, i64) = (row.get(0), row.get(1));
        Ok((all > 0).then_some(staged > 0))
    }

    /// The split plan of a load: unit k is staged split k, `units[k]`. The first attempt of the
    /// run stores it; a later one must find the same staged splits (same token ranges, same
    /// identity), else it is refused: the rows its committed units stand for may be gone.
    pub async fn staged_splits(&self, client: &Client, units: &[StagedUnit]) -> Result<()> {
        self.check_target(client).await?;
        if self.plan_is_staged(client).await? == Some(false) {
            return Err(PipelineError::RunState(format!(
                "run `{}` loaded {} from Cassandra (`ferry migrate`); a load from staged data \
                 needs a run of its own: use another --run-id, or --restart",
                self.run_id, self.target
            )));
        }
        let oid = self.target_oid(client).await?.unwrap_or(0);
        let numbers: Vec<i32> = (0..units.len() as i32).collect();
        let ranges: Vec<String> = units
            .iter()
            .map(|u| serde_json::to_string(&u.ranges).expect("token ranges always serialize"))
            .collect();
        let identities: Vec<&str> = units.iter().map(|u| u.identity.as_str()).collect();
        client
            .execute(
                "INSERT INTO ferry_state.splits (run_id, target, unit, ranges, target_oid, staged) \
                 SELECT $1, $2, unnest($3::integer[]), unnest($4::text[]), $5, \
                 unnest($6::text[]) ON CONFLICT DO NOTHING",
                &[
                    &self.run_id,
                    &self.target,
                    &numbers,
                    &ranges,
                    &oid,
                    &identities,
                ],
            )
            .await
            .map_err(|e| pg("store the split plan", e))?;
        let rows = client
            .query(
                "SELECT unit, ranges, staged FROM ferry_state.splits \
                 WHERE run_id = $1 AND target = $2 ORDER BY unit",
                &[&self.run_id, &self.target],
            )
            .await
            .map_err(|e| pg("read the stored split plan", e))?;
        let changed = |what: String| {
            PipelineError::RunState(format!(
                "run `{}` started loading {} from staged data that has changed since ({what}); \
                 run `ferry load --restart` to load the table again from the start, or use \
                 another --run-id",
                self.run_id, self.target
            ))
        };
        if rows.len() != units.len() {
            return Err(changed(format!(
                "it had {} splits, it has {} now",
                rows.len(),
                units.len()
            )));
        }
        for (k, (row, unit)) in rows.iter().zip(units).enumerate() {
            let stored_ranges: &str = row.get(1);
            let stored: Option<&str> = row.get(2);
            let same_ranges = serde_json::from_str::<Vec<TokenRange>>(stored_ranges)
                .is_ok_and(|r| r == unit.ranges);
            if row.get::<_, i32>(0) as usize != k || !same_ranges {
                return Err(changed(format!("split {k} covers other token ranges")));
            }
            if stored != Some(unit.identity.as_str()) {
                return Err(changed(format!(
                    "split {k} was {}, it is {} now",
                    stored.unwrap_or("unknown"),
                    unit.identity
                )));
            }
        }
        Ok(())
    }

    /// The table's splits: the stored plan when an earlier attempt of this run made one,
    /// routed to today's replicas; else `plan`'s, stored for the attempts to come.
    pub async fn splits(
        &self,
        client: &Client,
        session: &Session,
        keyspace: &str,
        table: &str,
        local_dc: Option<&str>,
        plan: impl Future<Output = ferry_connectors::Result<Vec<Split>>>,
    ) -> Result<Vec<Split>> {
        self.check_target(client).await?;
        if self.plan_is_staged(client).await? == Some(true) {
            return Err(PipelineError::RunState(format!(
                "run `{}` loaded {} from staged data (`ferry load`); a migration needs a run of \
                 its own: use another --run-id, or --restart",
                self.run_id, self.target
            )));
        }
        let stored = match self.stored_splits(client).await? {
            Some(stored) => {
                tracing::info!(target = %self.target, run = %self.run_id, splits = stored.len(), "resuming with the stored split plan");
                stored
            }
            None => {
                let planned = plan.await?;
                let stored = self.store_splits(client, &planned).await?;
                if stored.len() == planned.len()
                    && stored.iter().zip(&planned).all(|(s, p)| *s == p.ranges)
                {
                    return Ok(planned);
                }
                stored
            }
        };
        let ring = ring_ranges(session, keyspace, table, local_dc)?;
        Ok(Split::routed(stored, &ring))
    }

    /// Units already committed in this run.
    pub async fn committed(&self, client: &Client) -> Result<BTreeMap<usize, UnitRecord>> {
        let rows = client
            .query(
                "SELECT unit, rows_read, rows_written, rows_rejected, copy_bytes, elapsed_ms \
                 FROM ferry_state.units \
                 WHERE run_id = $1 AND target = $2",
                &[&self.run_id, &self.target],
            )
            .await
            .map_err(|e| pg("read the committed units", e))?;
        Ok(rows
            .iter()
            .map(|r| {
                let unit: i32 = r.get(0);
                let count = |i: usize| r.get::<_, i64>(i) as u64;
                let record = UnitRecord {
                    rows_read: count(1),
                    rows_written: count(2),
                    rows_rejected: count(3),
                    copy_bytes: count(4),
                    elapsed_ms: r.get::<_, Option<i64>>(5).unwrap_or(0) as u64,
                };
                (unit as usize, record)
            })
            .collect())
    }

    /// Records `unit` inside the unit's own transaction. `false` when the unit was already
    /// recorded (another worker committed it first): the caller must roll back.
    pub async fn record(
        &self,
        tx: &impl GenericClient,
        unit: usize,
        record: &UnitRecord,
        worker: &str,
    ) -> Result<bool> {
        let n = tx
            .execute(
                "INSERT INTO ferry_state.units \
                 (run_id, target, unit, rows_read, rows_written, rows_rejected, copy_bytes, \
                 elapsed_ms, worker, committed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now()) \
                 ON CONFLICT DO NOTHING",
                &[
                    &self.run_id,
                    &self.target,
                    &(unit as i32),
                    &(record.rows_read as i64),
                    &(record.rows_written as i64),
                    &(record.rows_rejected as i64),
                    &(record.copy_bytes as i64),
                    &(record.elapsed_ms as i64),
                    &worker,
                ],
            )
            .await
            .map_err(|e| pg(&format!("record unit {unit}"), e))?;
        Ok(n == 1)
    }

    /// Forgets this table's run state (its split plan and committed units); the target rows
    /// stay, so the caller empties the table when it wants the units loaded again.
    pub async fn forget(&self, client: &Client) -> Result<()> {
        for table in [
            "ferry_state.units",
            "ferry_state.splits",
            "ferry_state.leases",
        ] {
            client
                .execute(
                    &format!("DELETE FROM {table} WHERE run_id = $1 AND target = $2"),
                    &[&self.run_id, &self.target],
                )
                .await
                .map_err(|e| pg("forget the run state", e))?;
        }
        Ok(())
    }

    /// Starts the table over: empties the target table (when it exists) and forgets this
    /// table's run state (its split plan and committed units), in one transaction.
    pub async fn restart(&self, client: &mut Client) -> Result<()> {
        let exists = self.target_oid(client).await?.is_some();
        let tx = client
            .transaction()
            .await
            .map_err(|e| pg("begin the restart", e))?;
        if exists {
            let target = format!("{}.{}", quote_ident(&self.schema), quote_ident(&self.table));
            tx.batch_execute(&format!("TRUNCATE TABLE {target}"))
                .await
                .map_err(|e| pg(&format!("truncate {} for --restart", self.target), e))?;
        }
        for table in [
            "ferry_state.units",
            "ferry_state.splits",
            "ferry_state.leases",
        ] {
            tx.execute(
                &format!("DELETE FROM {table} WHERE run_id = $1 AND target = $2"),
                &[&self.run_id, &self.target],
            )
            .await
            .map_err(|e| pg("forget the run state", e))?;
        }
        tx.commit().await.map_err(|e| pg("commit the restart", e))
    }
}

pub(crate) fn pg(what: &str, source: tokio_postgres::Error) -> PipelineError {
    PipelineError::Connector(ConnectorError::Postgres {
        what: what.to_string(),
        source,
    })
}
