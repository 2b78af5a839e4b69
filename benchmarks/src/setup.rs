//! What the scenarios set up alike: the Cassandra benchmark table, a target table made afresh
//! the way `ferry schema --apply` makes it, the scan of the table's splits, and the rows read
//! once and encoded for the load-only anchor.

use std::sync::Arc;

use ferry_connectors::cassandra::{self, CassandraTable, SourceTable, SplitCount, plan_splits};
use ferry_connectors::yugabyte::{CopyEncoder, EncodedBatch, TargetTable};
use ferry_pipeline::Config;
use scylla::client::session::Session;
use tokio_postgres::Client;

use crate::args::SourceArgs;
use crate::datagen::{self, BENCH_KEYSPACE, Shape};
use crate::{load, scan};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A benchmark table in [`BENCH_KEYSPACE`], and a session to it.
pub struct BenchSource {
    pub session: Arc<Session>,
    /// The table's name in [`BENCH_KEYSPACE`].
    pub table: String,
}

impl BenchSource {
    /// Connects to `source.cassandra` and writes the `shape` table of `rows` rows, unless
    /// `source.reuse` and an earlier run finished writing it.
    pub async fn open(source: &SourceArgs, shape: Shape, rows: u64) -> Result<Self, BoxError> {
        let session = cassandra::connect(&cassandra::CassandraConfig::new(vec![
            source.cassandra.clone(),
        ]))
        .await?;
        let table = datagen::bench_table(&session, shape, rows, source.reuse).await?;
        Ok(Self { session, table })
    }

    /// `keyspace.table`, as a config's `[[table]] source`.
    pub fn qualified(&self) -> String {
        format!("{BENCH_KEYSPACE}.{}", self.table)
    }

    /// The table read in `splits` splits, as a migration plans them.
    pub async fn scan(&self, splits: usize, page_size: i32) -> Result<CassandraTable, BoxError> {
        let planned = plan_splits(
            &self.session,
            BENCH_KEYSPACE,
            &self.table,
            SplitCount::Fixed(splits),
            None,
        )
        .await?;
        Ok(CassandraTable::new(
            Arc::clone(&self.session),
            SourceTable::load(&self.session, BENCH_KEYSPACE, &self.table).await?,
            planned,
            page_size,
        ))
    }
}

/// An admin connection to `url`, with `public.<table>` dropped and created again from the
/// Cassandra table, as `ferry schema --apply` creates it for `config`.
pub async fn fresh_target(
    url: &str,
    table: &str,
    config: &Config,
) -> Result<Arc<Client>, BoxError> {
    load::check_table_name(table)?;
    let admin = load::connect_many(url, 1)
        .await?
        .pop()
        .ok_or("no admin connection")?;
    admin
        .batch_execute(&format!("DROP TABLE IF EXISTS public.{table}"))
        .await?;
    ferry_pipeline::schema::schema(config, true).await?;
    Ok(admin)
}

/// The rows of a table in COPY format, split by split: the load-only anchor's input.
pub struct Encoded {
    pub units: Arc<Vec<Vec<EncodedBatch>>>,
    /// The encoder, for the anchor's COPY statements.
    pub encoder: CopyEncoder,
    pub rows: u64,
    pub copy_bytes: u64,
}

/// Reads every split of `scan` once, `concurrency` at a time (the scan's warm-up), and encodes
/// the rows for `public.<table>`; fails if the encoder rejects a row or the count is not `rows`.
pub async fn encode_once(
    scan: &CassandraTable,
    concurrency: usize,
    admin: &Client,
    table: &str,
    rows: u64,
) -> Result<Encoded, BoxError> {
    eprintln!("reading the table once (the scan's warm-up) and encoding it for load-only");
    let batches = scan::collect_splits(scan, concurrency).await?;
    let schema = batches
        .iter()
        .flatten()
        .next()
        .map(|b| b.schema())
        .ok_or("the source table is empty")?;
    let target = TargetTable::load(admin, "public", table).await?;
    let encoder = CopyEncoder::try_new(&schema, &target)?;
    let units: Vec<Vec<EncodedBatch>> = batches
        .iter()
        .map(|split| split.iter().map(|b| encoder.encode(b)).collect())
        .collect();
    drop(batches);
    if let Some(reject) = units.iter().flatten().flat_map(|e| &e.rejects).next() {
        return Err(format!("the encoder rejected a source row: {reject:?}").into());
    }
    let encoded: u64 = units.iter().flatten().map(|e| e.rows as u64).sum();
    if encoded != rows {
        return Err(format!("the scan read {encoded} rows, expected {rows}").into());
    }
    let copy_bytes = units.iter().flatten().map(|e| e.bytes() as u64).sum();
    Ok(Encoded {
        units: Arc::new(units),
        encoder,
        rows,
        copy_bytes,
    })
}

/// The connection counts of `--connections` (zeros dropped) and the largest; with `splits`, fails
/// unless there are at least as many splits as the largest count, so that no connection idles.
pub fn connection_counts(
    connections: &[usize],
    splits: Option<usize>,
) -> Result<(Vec<usize>, usize), BoxError> {
    let counts: Vec<usize> = connections.iter().copied().filter(|&m| m > 0).collect();
    let max = counts
        .iter()
        .copied()
        .max()
        .ok_or("--connections is empty")?;
    if let Some(splits) = splits.filter(|&k| k < max) {
        return Err(format!(
            "--splits {splits} is less than --connections {max}: some connections would have no \
             unit"
        )
        .into());
    }
    Ok((counts, max))
}
