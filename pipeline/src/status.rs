//! `ferry status`: where a run stands, read from its run state in the target database alone
//! (Cassandra is not needed), so it can be asked from anywhere while the run goes on.

use serde::Serialize;
use tokio_postgres::Client;

use crate::checkpoint::pg;
use crate::config::Config;
use crate::error::Result;

/// A run, as its run state records it.
#[derive(Debug, Clone, Serialize)]
pub struct RunState {
    pub run_id: String,
    /// `running`, `finished`, `failed` or `interrupted`; `unknown` when the run row is missing
    /// (state written by a Ferry without the runs table).
    pub status: String,
    /// How many times `migrate` ran with this run id (since the last `--restart`).
    pub attempts: i32,
    pub started_at: Option<String>,
    pub attempt_started_at: Option<String>,
    pub finished_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub tables: Vec<TableState>,
    /// Every worker that holds a lease or committed a unit in this run.
    pub workers: Vec<WorkerState>,
}

/// One worker (a `ferry migrate` process) of a run.
#[derive(Debug, Clone, Serialize)]
pub struct WorkerState {
    pub worker: String,
    /// Whether it holds a lease that has not expired: it is working on a unit right now.
    pub alive: bool,
    /// Units it is loading now.
    pub units_in_flight: i64,
    /// Units it committed in this run, and their rows.
    pub units_committed: i64,
    pub rows_written: i64,
    /// Its rows per second, from its first unit's start to its last commit.
    pub rows_per_s: Option<f64>,
}

/// One table of a run.
#[derive(Debug, Clone, Serialize)]
pub struct TableState {
    /// `schema.table` in the target.
    pub target: String,
    /// Units planned; 0 while the run has not reached the table.
    pub units_total: i64,
    pub units_done: i64,
    pub rows_read: i64,
    pub rows_written: i64,
    pub rows_rejected: i64,
    /// Rows written per second by the current (or last) attempt.
    pub rows_per_s: Option<f64>,
    /// Seconds left for the units not done, at that attempt's pace.
    pub eta_s: Option<f64>,
}

/// The state of `config`'s run (`run.id`), or `None` when nothing has run under that id.
pub async fn status(config: &Config, client: &Client) -> Result<Option<RunState>> {
    let run_id = config.run.id.as_str();
    let has_state = client
        .query_one(
            "SELECT to_regclass('ferry_state.units') IS NOT NULL \
             AND to_regclass('ferry_state.runs') IS NOT NULL \
             AND to_regclass('ferry_state.leases') IS NOT NULL",
            &[],
        )
        .await
        .map_err(|e| pg("look for the run state", e))?
        .get::<_, bool>(0);
    if !has_state {
        return Ok(None);
    }
    let run = client
        .query_opt(
            "SELECT status, attempts, started_at::text, attempt_started_at::text, \
             finished_at::text, error FROM ferry_state.runs WHERE run_id = $1",
            &[&run_id],
        )
        .await
        .map_err(|e| pg("read ferry_state.runs", e))?;
    // Per table: all units, and those of the current attempt, whose span (from the earliest
    // start, i.e. commit time minus the unit's duration, to the last commit) gives the pace.
    let rows = client
        .query(
            "WITH attempt AS ( \
               SELECT coalesce((SELECT attempt_started_at FROM ferry_state.runs \
                                WHERE run_id = $1), '-infinity'::timestamptz) AS at) \
             SELECT s.target, count(*)::bigint, count(u.unit)::bigint, \
               coalesce(sum(u.rows_read), 0)::bigint, coalesce(sum(u.rows_written), 0)::bigint, \
               coalesce(sum(u.rows_rejected), 0)::bigint, \
               count(u.unit) FILTER (WHERE u.committed_at >= a.at)::bigint, \
               coalesce(sum(u.rows_written) FILTER (WHERE u.committed_at >= a.at), 0)::bigint, \
               extract(epoch FROM max(u.committed_at) FILTER (WHERE u.committed_at >= a.at) \
                 - min(u.committed_at - coalesce(u.elapsed_ms, 0) * interval '1 millisecond') \
                   FILTER (WHERE u.committed_at >= a.at))::float8 \
             FROM ferry_state.splits s CROSS JOIN attempt a \
             LEFT JOIN ferry_state.units u \
               ON u.run_id = s.run_id AND u.target = s.target AND u.unit = s.unit \
             WHERE s.run_id = $1 GROUP BY s.target",
            &[&run_id],
        )
        .await
        .map_err(|e| pg("read the run's units", e))?;
    if run.is_none() && rows.is_empty() {
        return Ok(None);
    }
    let mut tables: Vec<TableState> = rows
        .iter()
        .map(|r| {
            let (total, done): (i64, i64) = (r.get(1), r.get(2));
            let (attempt_units, attempt_rows): (i64, i64) = (r.get(6), r.get(7));
            let span: Option<f64> = r.get(8);
            let span = span.filter(|s| *s > 0.0 && attempt_units > 0);
            TableState {
                target: r.get(0),
                units_total: total,
                units_done: done,
                rows_read: r.get(3),
                rows_written: r.get(4),
                rows_rejected: r.get(5),
                rows_per_s: span.map(|s| attempt_rows as f64 / s),
                eta_s: span
                    .filter(|_| done < total)
                    .map(|s| s * (total - done) as f64 / attempt_units as f64),
            }
        })
        .collect();
    // Config order first (tables the run has not reached yet show with 0 units), then others.
    let mut ordered = Vec::with_capacity(tables.len());
    for table in &config.tables {
        let (schema, name) = table.target_parts(&config.target.schema);
        let target = format!("{schema}.{name}");
        match tables.iter().position(|t| t.target == target) {
            Some(i) => ordered.push(tables.remove(i)),
            None => ordered.push(TableState {
                target,
                units_total: 0,
                units_done: 0,
                rows_read: 0,
                rows_written: 0,
                rows_rejected: 0,
                rows_per_s: None,
                eta_s: None,
            }),
        }
    }
    tables.sort_by(|a, b| a.target.cmp(&b.target));
    ordered.extend(tables);
    let workers = workers(client, run_id).await?;
    let get = |i: usize| run.as_ref().and_then(|r| r.get::<_, Option<String>>(i));
    Ok(Some(RunState {
        run_id: run_id.to_string(),
        status: run
            .as_ref()
            .map_or_else(|| "unknown".to_string(), |r| r.get(0)),
        attempts: run.as_ref().map_or(0, |r| r.get(1)),
        started_at: get(2),
        attempt_started_at: get(3),
        finished_at: get(4),
        error: get(5),
        tables: ordered,
        workers,
    }))
}

/// The workers of run `run_id`: leases held now, and units committed.
async fn workers(client: &Client, run_id: &str) -> Result<Vec<WorkerState>> {
    let rows = client
        .query(
            "WITH held AS ( \
               SELECT l.worker, count(*) FILTER (WHERE l.expires_at >= clock_timestamp() \
                 AND NOT EXISTS (SELECT 1 FROM ferry_state.units u WHERE u.run_id = l.run_id \
                                 AND u.target = l.target AND u.unit = l.unit))::bigint AS n \
               FROM ferry_state.leases l WHERE l.run_id = $1 AND l.worker IS NOT NULL \
               GROUP BY l.worker), \
             done AS ( \
               SELECT worker, count(*)::bigint AS units, sum(rows_written)::bigint AS rows, \
                 extract(epoch FROM max(committed_at) \
                   - min(committed_at - coalesce(elapsed_ms, 0) * interval '1 millisecond'))::float8 \
                   AS span \
               FROM ferry_state.units WHERE run_id = $1 AND worker IS NOT NULL GROUP BY worker) \
             SELECT coalesce(h.worker, d.worker), coalesce(h.n, 0), coalesce(d.units, 0), \
               coalesce(d.rows, 0), d.span \
             FROM held h FULL JOIN done d ON h.worker = d.worker ORDER BY 1",
            &[&run_id],
        )
        .await
        .map_err(|e| pg("read the run's workers", e))?;
    Ok(rows
        .iter()
        .map(|r| {
            let in_flight: i64 = r.get(1);
            let rows: i64 = r.get(3);
            let span: Option<f64> = r.get(4);
            WorkerState {
                worker: r.get(0),
                alive: in_flight > 0,
                units_in_flight: in_flight,
                units_committed: r.get(2),
                rows_written: rows,
                rows_per_s: span.filter(|s| *s > 0.0).map(|s| rows as f64 / s),
            }
        })
        .collect())
}
