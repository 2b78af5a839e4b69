//! The COPY sink: streams a partition's batches into the target inside the caller's transaction.
//!
//! The caller opens the transaction, so it can commit its own statements (a checkpoint row) with
//! the COPY, atomically. Encoding runs on the rayon pool and overlaps with sending: while one
//! batch is on the wire, the next is being encoded.
//!
//! When the server refuses some rows (a constraint, a value it rejects), the whole COPY fails and
//! the caller rolls back. [`write_unit_isolating`] then loads the unit again batch by batch, each
//! COPY under a savepoint; a refused batch is bisected down to the rows the server refuses, which
//! become rejects carrying the server's message, while every other row is loaded.
//!
//! Either way the rejected rows themselves are kept, as the plan produced them, so the caller can
//! write them out (see `ferry_pipeline::rejects`).

use std::pin::pin;

use arrow::array::{RecordBatch, UInt32Array};
use bytes::Bytes;
use datafusion::error::DataFusionError;
use datafusion::physical_plan::SendableRecordBatchStream;
use futures::{SinkExt, StreamExt, TryStreamExt};
use tokio_postgres::{Client, CopyInSink, Transaction};

use super::config::{Endpoint, Target, YugabyteConfig};
use super::encoder::{COPY_HEADER, COPY_TRAILER, CopyEncoder, Reject};
use super::tls::{self, PgTls};
use super::types::{ServerInfo, TargetTable};
use crate::error::{ConnectorError, Result};

/// Batches encoded ahead of the one being sent.
const ENCODE_AHEAD: usize = 2;

/// Opens one connection to the target, on the first URL host that answers. The connection
/// task runs on the current runtime.
pub async fn connect(config: &YugabyteConfig) -> Result<Client> {
    let target = config.target()?;
    let mut last = None;
    for endpoint in &target.hosts {
        match connect_to(&target, endpoint, None).await {
            Ok(client) => return Ok(client),
            Err(e @ ConnectorError::TargetTls { .. }) => return Err(e),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| ConnectorError::NoTargetServer {
        reason: "the url names no host".into(),
    }))
}

/// Opens one connection to `endpoint` with `target`'s credentials and TLS settings, announcing
/// `application_name` if given (else the URL's, else `ferry`).
pub async fn connect_to(
    target: &Target,
    endpoint: &Endpoint,
    application_name: Option<&str>,
) -> Result<Client> {
    let server = endpoint.to_string();
    let unreachable = |message: String| ConnectorError::TargetConnect {
        target: format!("{server} ({})", target.display),
        message,
    };
    let mut pg = target.pg.clone();
    if let Some(name) = application_name {
        pg.application_name(name);
    }
    let timeout = pg
        .get_connect_timeout()
        .copied()
        .unwrap_or(std::time::Duration::from_secs(10));
    let attempt = async {
        let stream = tokio::net::TcpStream::connect((endpoint.host.as_str(), endpoint.port))
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        stream.set_nodelay(true).ok();
        let tls = PgTls::new(target.tls.clone(), &endpoint.host);
        pg.connect_raw(stream, tls).await.map_err(|e| {
            if e.as_db_error().is_some() {
                // The server answered (bad password, no such database, starting up).
                return ConnectorError::Postgres {
                    what: format!("connection to {server}"),
                    source: e,
                };
            }
            let message = error_chain(&e);
            match &target.tls {
                Some(_) => match tls::handshake_hint(&target.tls_settings, &server, &message) {
                    Some(hint) => ConnectorError::TargetTls {
                        server: server.clone(),
                        mode: target.tls_settings.mode.to_string(),
                        message: message.clone(),
                        hint,
                    },
                    None => unreachable(message.clone()),
                },
                None => unreachable(message.clone()),
            }
        })
    };
    let (client, connection) = tokio::time::timeout(timeout, attempt)
        .await
        .map_err(|_| unreachable(format!("no answer within {} ms", timeout.as_millis())))??;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "target connection closed");
        }
    });
    Ok(client)
}

/// An error and its sources, `a: b: c` (the driver's own text leaves the cause out).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

/// What one unit's COPY did.
#[derive(Debug, Default)]
pub struct UnitOutcome {
    /// Rows that came out of the plan.
    pub rows_read: u64,
    /// Rows the server accepted (COPY's row count).
    pub rows_written: u64,
    /// Rows the encoder left out or the server refused, with reasons, in row order; rows are
    /// numbered within the unit.
    pub rejects: Vec<Reject>,
    /// The rejected rows themselves, with the plan's schema: row i of these batches, taken in
    /// order, is `rejects[i]`. Copies of just those rows (not slices that would keep whole
    /// batches alive), one small batch per input batch that had rejects.
    pub rejected_rows: Vec<RecordBatch>,
    /// COPY bytes sent.
    pub bytes: u64,
    /// Values whose sub-microsecond digits were dropped (see [`super::encoder::EncodedBatch`]).
    pub truncated: u64,
}

/// Something a COPY can run on: a connection (autocommit, fast mode) or a transaction.
pub trait CopyIn: Sync {
    fn copy_in_bytes(
        &self,
        sql: &str,
    ) -> impl Future<Output = std::result::Result<CopyInSink<Bytes>, tokio_postgres::Error>> + Send;
}

impl CopyIn for Transaction<'_> {
    fn copy_in_bytes(
        &self,
        sql: &str,
    ) -> impl Future<Output = std::result::Result<CopyInSink<Bytes>, tokio_postgres::Error>> + Send
    {
        self.copy_in(sql)
    }
}

impl CopyIn for Client {
    fn copy_in_bytes(
        &self,
        sql: &str,
    ) -> impl Future<Output = std::result::Result<CopyInSink<Bytes>, tokio_postgres::Error>> + Send
    {
        self.copy_in(sql)
    }
}

/// Runs one `COPY … FROM STDIN (FORMAT binary)` of every batch of `batches` on `tx`.
pub async fn write_unit(
    tx: &impl CopyIn,
    encoder: &CopyEncoder,
    batches: SendableRecordBatchStream,
) -> Result<UnitOutcome> {
    let sink = tx
        .copy_in_bytes(encoder.copy_sql())
        .await
        .map_err(|source| ConnectorError::Postgres {
            what: format!("COPY into {}", encoder.table()),
            source,
        })?;
    let mut sink = pin!(sink);
    let copy_err = |source| ConnectorError::Postgres {
        what: format!("COPY into {}", encoder.table()),
        source,
    };
    sink.feed(Bytes::from_static(COPY_HEADER))
        .await
        .map_err(copy_err)?;
    let mut outcome = UnitOutcome::default();
    let mut encoded = batches
        .map_err(ConnectorError::from)
        .map_ok(|batch| async move {
            let encoded = encoder.encode_async(batch.clone()).await;
            // Taken here, so the batch is dropped as soon as it is encoded.
            let rejected = take_rows(&batch, encoded.rejects.iter().map(|r| r.row))?;
            Ok::<_, ConnectorError>((encoded, rejected))
        })
        .try_buffered(ENCODE_AHEAD);
    while let Some(batch) = encoded.next().await {
        let (batch, rejected) = batch?;
        outcome.rejected_rows.extend(rejected);
        let first_row = outcome.rows_read as usize;
        outcome.rows_read += (batch.rows + batch.rejects.len()) as u64;
        outcome.bytes += batch.bytes() as u64;
        outcome.truncated += batch.truncated;
        outcome
            .rejects
            .extend(batch.rejects.into_iter().map(|mut r| {
                r.row += first_row;
                r
            }));
        for chunk in batch.chunks {
            sink.feed(chunk).await.map_err(copy_err)?;
        }
    }
    sink.feed(Bytes::from_static(COPY_TRAILER))
        .await
        .map_err(copy_err)?;
    outcome.rows_written = sink.as_mut().finish().await.map_err(copy_err)?;
    Ok(outcome)
}

/// Like [`write_unit`], but each batch is copied under a savepoint, and a batch the server refuses
/// is bisected until the refused rows are alone; those become rejects with the server's message.
/// Memory stays bounded by one batch.
pub async fn write_unit_isolating(
    tx: &mut Transaction<'_>,
    encoder: &CopyEncoder,
    mut batches: SendableRecordBatchStream,
) -> Result<UnitOutcome> {
    let mut outcome = UnitOutcome::default();
    while let Some(batch) = batches.next().await {
        let batch = batch.map_err(ConnectorError::from)?;
        let first_row = outcome.rows_read as usize;
        outcome.rows_read += batch.num_rows() as u64;
        // The batch's rejected rows, in order: ranges are loaded first to last.
        let mut rejected = Vec::new();
        // Row ranges of the batch still to load, the next one on top.
        let mut pending = Vec::new();
        pending.push(0..batch.num_rows());
        while let Some(range) = pending.pop() {
            if range.is_empty() {
                continue;
            }
            let slice = batch.slice(range.start, range.len());
            let encoded = encoder.encode_async(slice).await;
            let bytes = encoded.bytes() as u64;
            let savepoint =
                tx.savepoint("ferry_rows")
                    .await
                    .map_err(|source| ConnectorError::Postgres {
                        what: format!("SAVEPOINT in {}", encoder.table()),
                        source,
                    })?;
            match copy_chunks(&savepoint, encoder, encoded.chunks).await {
                Ok(written) => {
                    savepoint
                        .commit()
                        .await
                        .map_err(|source| ConnectorError::Postgres {
                            what: format!("RELEASE SAVEPOINT in {}", encoder.table()),
                            source,
                        })?;
                    outcome.rows_written += written;
                    outcome.bytes += bytes;
                    outcome.truncated += encoded.truncated;
                    rejected.extend(encoded.rejects.iter().map(|r| range.start + r.row));
                    outcome
                        .rejects
                        .extend(encoded.rejects.into_iter().map(|mut r| {
                            r.row += first_row + range.start;
                            r
                        }));
                }
                Err(e) if e.is_data_refusal() => {
                    savepoint
                        .rollback()
                        .await
                        .map_err(|source| ConnectorError::Postgres {
                            what: format!("ROLLBACK TO SAVEPOINT in {}", encoder.table()),
                            source,
                        })?;
                    if range.len() == 1 {
                        rejected.push(range.start);
                        outcome
                            .rejects
                            .push(server_reject(first_row + range.start, &e));
                    } else {
                        let mid = range.start + range.len() / 2;
                        pending.push(mid..range.end);
                        pending.push(range.start..mid);
                    }
                }
                Err(e) => {
                    // Not the rows' fault: the caller retries or fails the unit.
                    savepoint.rollback().await.ok();
                    return Err(e);
                }
            }
        }
        outcome
            .rejected_rows
            .extend(take_rows(&batch, rejected.into_iter())?);
    }
    Ok(outcome)
}

/// Copies rows `rows` (in that order) of `batch` into a batch of their own; none when `rows` is
/// empty.
fn take_rows(
    batch: &RecordBatch,
    rows: impl Iterator<Item = usize>,
) -> Result<Option<RecordBatch>> {
    let indices: UInt32Array = rows.map(|r| r as u32).collect();
    if indices.is_empty() {
        return Ok(None);
    }
    arrow::compute::take_record_batch(batch, &indices)
        .map(Some)
        .map_err(|e| ConnectorError::DataFusion(DataFusionError::from(e)))
}

/// One COPY of already-encoded rows.
async fn copy_chunks(
    tx: &Transaction<'_>,
    encoder: &CopyEncoder,
    chunks: Vec<Bytes>,
) -> Result<u64> {
    let copy_err = |source| ConnectorError::Postgres {
        what: format!("COPY into {}", encoder.table()),
        source,
    };
    let sink = tx
        .copy_in::<_, Bytes>(encoder.copy_sql())
        .await
        .map_err(copy_err)?;
    let mut sink = pin!(sink);
    sink.feed(Bytes::from_static(COPY_HEADER))
        .await
        .map_err(copy_err)?;
    for chunk in chunks {
        sink.feed(chunk).await.map_err(copy_err)?;
    }
    sink.feed(Bytes::from_static(COPY_TRAILER))
        .await
        .map_err(copy_err)?;
    sink.as_mut().finish().await.map_err(copy_err)
}

/// A row the server refused, with its message, SQLSTATE, and the column when the server names
/// one.
fn server_reject(row: usize, error: &ConnectorError) -> Reject {
    let mut sqlstate = None;
    let (column, reason) = match error {
        ConnectorError::Postgres { source, .. } => match source.as_db_error() {
            Some(db) => {
                sqlstate = Some(db.code().code().to_string());
                let mut reason = format!(
                    "the target refused the row: {} (SQLSTATE {})",
                    db.message(),
                    db.code().code()
                );
                if let Some(detail) = db.detail() {
                    reason.push_str(&format!("; {detail}"));
                }
                (db.column().unwrap_or_default().to_string(), reason)
            }
            None => (
                String::new(),
                format!("the target refused the row: {source}"),
            ),
        },
        other => (
            String::new(),
            format!("the target refused the row: {other}"),
        ),
    };
    Reject {
        row,
        column,
        reason,
        sqlstate,
    }
}

/// Session settings of fast mode: YugabyteDB writes each row on its own (no distributed
/// transaction) and as an upsert, so loading a unit again is idempotent by primary key.
pub const FAST_MODE_SETTINGS: &str =
    "SET yb_disable_transactional_writes = on; SET yb_enable_upsert_mode = on";

/// Checks that fast mode keeps its promise for `target`: YugabyteDB (plain PostgreSQL has no
/// such settings), a primary key (upserts are idempotent by it), and no secondary index or
/// foreign key (non-transactional writes would leave them inconsistent).
pub async fn check_fast_mode(client: &Client, target: &TargetTable) -> Result<()> {
    let refuse = |reason: String| ConnectorError::FastModeRefused {
        table: target.qualified(),
        reason,
    };
    let server = ServerInfo::load(client).await?;
    if !server.yugabyte {
        return Err(refuse(format!(
            "the target is PostgreSQL {}, not YugabyteDB (fast mode relies on \
             yb_disable_transactional_writes and yb_enable_upsert_mode)",
            server.major()
        )));
    }
    let keys = target.load_keys(client).await?;
    if keys.primary_key.is_empty() {
        return Err(refuse(
            "the table has no primary key, so loading a unit again would duplicate its rows"
                .to_string(),
        ));
    }
    if keys.has_secondary_indexes() {
        let names: Vec<&str> = keys.indexes.iter().map(|i| i.name.as_str()).collect();
        return Err(refuse(format!(
            "the table has secondary indexes ({}), which non-transactional writes would leave \
             out of step",
            names.join(", ")
        )));
    }
    if keys.has_foreign_keys() || !keys.referenced_by.is_empty() {
        let names: Vec<&str> = keys
            .foreign_keys
            .iter()
            .chain(&keys.referenced_by)
            .map(|f| f.name.as_str())
            .collect();
        return Err(refuse(format!(
            "the table has foreign keys ({}), which non-transactional writes do not check",
            names.join(", ")
        )));
    }
    Ok(())
}
