//! The COPY sink: streams a partition's batches into the target inside the caller's transaction.
//!
//! The caller opens the transaction, so it can commit its own statements (a checkpoint row) with
//! the COPY, atomically. Encoding runs on the rayon pool and overlaps with sending: while one
//! batch is on the wire, the next is being encoded.

use std::pin::pin;

use bytes::Bytes;
use datafusion::physical_plan::SendableRecordBatchStream;
use futures::{SinkExt, StreamExt, TryStreamExt};
use tokio_postgres::{Client, NoTls, Transaction};

use super::config::YugabyteConfig;
use super::encoder::{COPY_HEADER, COPY_TRAILER, CopyEncoder, Reject};
use crate::error::{ConnectorError, Result};

/// Batches encoded ahead of the one being sent.
const ENCODE_AHEAD: usize = 2;

/// Opens one connection to the target. The connection task runs on the current runtime.
pub async fn connect(config: &YugabyteConfig) -> Result<Client> {
    let pg = config.pg_config()?;
    let (client, connection) =
        pg.connect(NoTls)
            .await
            .map_err(|e| ConnectorError::TargetConnect {
                target: config.display_target(),
                message: e.to_string(),
            })?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "target connection closed");
        }
    });
    Ok(client)
}

/// What one unit's COPY did.
#[derive(Debug, Default)]
pub struct UnitOutcome {
    /// Rows that came out of the plan.
    pub rows_read: u64,
    /// Rows the server accepted (COPY's row count).
    pub rows_written: u64,
    /// Rows the encoder left out, with reasons; rows are numbered within the unit.
    pub rejects: Vec<Reject>,
    /// COPY bytes sent.
    pub bytes: u64,
    /// Values whose sub-microsecond digits were dropped (see [`super::encoder::EncodedBatch`]).
    pub truncated: u64,
}

/// Runs one `COPY … FROM STDIN (FORMAT binary)` of every batch of `batches` inside `tx`.
pub async fn write_unit(
    tx: &Transaction<'_>,
    encoder: &CopyEncoder,
    batches: SendableRecordBatchStream,
) -> Result<UnitOutcome> {
    let sink = tx
        .copy_in::<_, Bytes>(encoder.copy_sql())
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
        .map_ok(|batch| async move { Ok::<_, ConnectorError>(encoder.encode_async(batch).await) })
        .try_buffered(ENCODE_AHEAD);
    while let Some(batch) = encoded.next().await {
        let batch = batch?;
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
