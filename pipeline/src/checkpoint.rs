//! Run state in the target database (schema `ferry_state`), so a killed run resumes exactly.
//!
//! Not schema `ferry`: PostgreSQL's default `search_path` starts with `"$user"`, so for a role
//! named `ferry` a schema of that name would capture every unqualified table it creates.
//!
//! ```text
//! ferry_state.splits  (run_id, target, unit) → ranges    the split plan, fixed by the first attempt
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

use std::collections::BTreeMap;

use ferry_connectors::ConnectorError;
use ferry_connectors::cassandra::ring::ring_ranges;
use ferry_connectors::cassandra::{Split, TokenRange};
use scylla::client::session::Session;
use tokio_postgres::{Client, GenericClient};

use crate::error::{PipelineError, Result};

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
    PRIMARY KEY (run_id, target, unit)
);
";

/// Creates schema `ferry_state` and its tables when missing.
pub async fn ensure_schema(client: &Client) -> Result<()> {
    match client.batch_execute(SCHEMA_DDL).await {
        Ok(()) => Ok(()),
        // Two processes creating the schema at once: the loser sees a duplicate; the winner's
        // tables are what it wanted.
        Err(e)
            if e.code()
                .is_some_and(|c| c.code() == "23505" || c.code() == "42P07") =>
        {
            Ok(())
        }
        Err(source) => Err(pg("create the run-state schema `ferry_state`", source)),
    }
}

/// What a committed unit recorded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnitRecord {
    pub rows_read: u64,
    pub rows_written: u64,
    pub rows_rejected: u64,
    pub copy_bytes: u64,
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
                 since, so the rows they stand for are gone; run `ferry migrate --fresh` to load \
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
                     with --fresh) to plan the table again",
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
        client
            .execute(
                "INSERT INTO ferry_state.splits (run_id, target, unit, ranges, target_oid) \
                 SELECT $1, $2, unnest($3::integer[]), unnest($4::text[]), $5 \
                 ON CONFLICT DO NOTHING",
                &[&self.run_id, &self.target, &units, &ranges, &oid],
            )
            .await
            .map_err(|e| pg("store the split plan", e))?;
        self.stored_splits(client).await?.ok_or_else(|| {
            PipelineError::RunState(format!(
                "the split plan of {} vanished right after it was stored",
                self.target
            ))
        })
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
                "SELECT unit, rows_read, rows_written, rows_rejected, copy_bytes FROM ferry_state.units \
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
    ) -> Result<bool> {
        let n = tx
            .execute(
                "INSERT INTO ferry_state.units \
                 (run_id, target, unit, rows_read, rows_written, rows_rejected, copy_bytes) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
                &[
                    &self.run_id,
                    &self.target,
                    &(unit as i32),
                    &(record.rows_read as i64),
                    &(record.rows_written as i64),
                    &(record.rows_rejected as i64),
                    &(record.copy_bytes as i64),
                ],
            )
            .await
            .map_err(|e| pg(&format!("record unit {unit}"), e))?;
        Ok(n == 1)
    }

    /// Forgets this table's run state: its split plan and committed units. The target rows stay.
    pub async fn forget(&self, client: &Client) -> Result<()> {
        for table in ["ferry_state.units", "ferry_state.splits"] {
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
}

fn pg(what: &str, source: tokio_postgres::Error) -> PipelineError {
    PipelineError::Connector(ConnectorError::Postgres {
        what: what.to_string(),
        source,
    })
}
