//! `ferry-bench load`: Ferry's write path from pre-encoded batches against PostgreSQL's own
//! server-side `COPY t FROM 'file' (FORMAT binary)` of the same bytes (the ceiling).
//!
//! The batches are built in-process from [`QuickstartRow`]s with the Arrow types Ferry's
//! Cassandra source produces, and encoded once with [`CopyEncoder`], outside every timed section.
//! Ferry's side is M connections, each running units of `BEGIN; COPY … FROM STDIN; COMMIT` as the
//! runner does; the ceiling is one COPY reading the same rows from a file on the server's disk,
//! with no client, no network and no per-unit commit in the way.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use arrow::array::{
    ArrayRef, BooleanArray, FixedSizeBinaryBuilder, Float64Array, Int32Array, Int64Array,
    RecordBatch, StringArray, TimestampMillisecondArray,
};
use arrow::datatypes::{Schema, SchemaRef};
use bytes::Bytes;
use ferry_connectors::yugabyte::encoder::{COPY_HEADER, COPY_TRAILER};
use ferry_connectors::yugabyte::{CopyEncoder, EncodedBatch, TargetTable, YugabyteConfig};
use ferry_sql::{CqlType, NativeType};
use futures::SinkExt;
use tokio_postgres::Client;

use crate::args::BenchArgs;
use crate::datagen::QuickstartRow;
use crate::scan::Pass;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The target table's columns, in the quickstart shape's order.
const COLUMNS: [(&str, NativeType, &str); 7] = [
    ("account_id", NativeType::BigInt, "bigint NOT NULL"),
    ("event_id", NativeType::Uuid, "uuid NOT NULL"),
    ("kind", NativeType::Text, "text"),
    ("amount", NativeType::Double, "double precision"),
    ("ok", NativeType::Boolean, "boolean"),
    ("seq", NativeType::Int, "integer"),
    ("at", NativeType::Timestamp, "timestamptz"),
];

/// A PostgreSQL error with the server's message, which `tokio_postgres::Error`'s `Display` omits.
fn pg(what: &str, e: tokio_postgres::Error) -> BoxError {
    match e.as_db_error() {
        Some(db) => format!("{what}: {} ({})", db.message(), db.code().code()).into(),
        None => format!("{what}: {e}").into(),
    }
}

/// The Arrow schema Ferry's Cassandra source gives the quickstart table.
pub fn quickstart_schema() -> SchemaRef {
    Arc::new(Schema::new(
        COLUMNS
            .iter()
            .enumerate()
            .map(|(i, (name, ty, _))| CqlType::Native(*ty).arrow_field(name, i >= 2))
            .collect::<Vec<_>>(),
    ))
}

/// Rows `0..rows` of the quickstart shape for `seed`, in batches of `batch_rows`.
pub fn quickstart_batches(
    seed: u64,
    rows: u64,
    batch_rows: usize,
) -> Result<Vec<RecordBatch>, BoxError> {
    let schema = quickstart_schema();
    let step = batch_rows.max(1) as u64;
    let mut batches = Vec::new();
    for start in (0..rows).step_by(step as usize) {
        let part: Vec<QuickstartRow> = (start..(start + step).min(rows))
            .map(|i| QuickstartRow::generate(seed, i))
            .collect();
        let mut uuids = FixedSizeBinaryBuilder::with_capacity(part.len(), 16);
        for r in &part {
            uuids.append_value(r.event_id.as_bytes())?;
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from_iter_values(
                part.iter().map(|r| r.account_id),
            )),
            Arc::new(uuids.finish()),
            Arc::new(StringArray::from_iter(
                part.iter().map(|r| r.kind.as_deref()),
            )),
            Arc::new(Float64Array::from_iter(part.iter().map(|r| r.amount))),
            Arc::new(BooleanArray::from_iter(part.iter().map(|r| r.ok))),
            Arc::new(Int32Array::from_iter(part.iter().map(|r| r.seq))),
            Arc::new(
                TimestampMillisecondArray::from_iter(part.iter().map(|r| r.at))
                    .with_timezone("UTC"),
            ),
        ];
        batches.push(RecordBatch::try_new(Arc::clone(&schema), columns)?);
    }
    Ok(batches)
}

/// Drops and creates `public.<table>`, with or without the primary key `(account_id, event_id)`.
pub async fn create_table(client: &Client, table: &str, primary_key: bool) -> Result<(), BoxError> {
    let mut columns: Vec<String> = COLUMNS
        .iter()
        .map(|(name, _, ty)| format!("{name} {ty}"))
        .collect();
    if primary_key {
        columns.push("PRIMARY KEY (account_id, event_id)".into());
    }
    client
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS public.{table}; CREATE TABLE public.{table} ({})",
            columns.join(", ")
        ))
        .await
        .map_err(|e| pg(&format!("creating {table}"), e))
}

/// Encodes every batch once for `public.<table>`; fails if the encoder rejects any row.
pub async fn encode_all(
    client: &Client,
    table: &str,
    batches: &[RecordBatch],
) -> Result<(CopyEncoder, Vec<EncodedBatch>), BoxError> {
    let target = TargetTable::load(client, "public", table).await?;
    let schema = batches
        .first()
        .map_or_else(quickstart_schema, RecordBatch::schema);
    let encoder = CopyEncoder::try_new(&schema, &target)?;
    let encoded: Vec<EncodedBatch> = batches.iter().map(|b| encoder.encode(b)).collect();
    if let Some(reject) = encoded.iter().flat_map(|e| &e.rejects).next() {
        return Err(format!("the encoder rejected a generated row: {reject:?}").into());
    }
    Ok((encoder, encoded))
}

/// Writes one binary COPY stream of every batch to `path`, readable by the server's OS user.
/// Returns its size in bytes.
pub fn write_copy_file(path: &Path, encoded: &[EncodedBatch]) -> Result<u64, BoxError> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
        // World-readable and searchable: the server runs as another OS user.
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
    }
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    file.write_all(COPY_HEADER)?;
    for chunk in encoded.iter().flat_map(|e| &e.chunks) {
        file.write_all(chunk)?;
    }
    file.write_all(COPY_TRAILER)?;
    file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))?;
    Ok(std::fs::metadata(path)?.len())
}

/// Empties the table, so every pass loads into the same state.
pub async fn truncate(client: &Client, table: &str) -> Result<(), BoxError> {
    client
        .batch_execute(&format!("TRUNCATE public.{table}"))
        .await
        .map_err(|e| pg(&format!("TRUNCATE {table}"), e))
}

/// Fails unless the table holds exactly `rows` rows.
pub async fn check_rows(
    client: &Client,
    table: &str,
    rows: u64,
    who: &str,
) -> Result<(), BoxError> {
    let count: i64 = client
        .query_one(&format!("SELECT count(*) FROM public.{table}"), &[])
        .await
        .map_err(|e| pg(&format!("counting {table}"), e))?
        .get(0);
    if count as u64 != rows {
        return Err(format!("{who} left {count} rows in {table}, expected {rows}").into());
    }
    Ok(())
}

/// The ceiling: `TRUNCATE`, then one server-side `COPY … FROM '<path>'` (timed).
pub async fn server_copy(
    client: &Client,
    encoder: &CopyEncoder,
    table: &str,
    path: &Path,
    bytes: u64,
) -> Result<Pass, BoxError> {
    truncate(client, table).await?;
    let file = path.to_string_lossy().replace('\'', "''");
    let sql = encoder
        .copy_sql()
        .replace("FROM STDIN", &format!("FROM '{file}'"));
    let started = Instant::now();
    let rows = client
        .execute(&sql, &[])
        .await
        .map_err(|e| pg(&format!("server-side COPY from {}", path.display()), e))?;
    Ok(Pass {
        rows,
        bytes,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Ferry's side: `TRUNCATE`, then (timed) the batches in units of `unit_batches`, dealt
/// round-robin to one task per connection of `clients`; each unit is
/// `BEGIN; COPY … FROM STDIN (FORMAT binary); COMMIT` fed the pre-encoded chunks.
pub async fn ferry_copy(
    clients: &[Arc<Client>],
    encoder: &CopyEncoder,
    table: &str,
    encoded: &Arc<Vec<EncodedBatch>>,
    unit_batches: usize,
) -> Result<Pass, BoxError> {
    let first = clients.first().ok_or("no connections")?;
    truncate(first, table).await?;
    let units: Vec<std::ops::Range<usize>> = (0..encoded.len())
        .step_by(unit_batches.max(1))
        .map(|s| s..(s + unit_batches.max(1)).min(encoded.len()))
        .collect();
    let m = clients.len();
    let started = Instant::now();
    let tasks: Vec<_> = clients
        .iter()
        .enumerate()
        .map(|(k, client)| {
            let mine: Vec<_> = units.iter().skip(k).step_by(m).cloned().collect();
            let (client, encoded) = (Arc::clone(client), Arc::clone(encoded));
            let sql = encoder.copy_sql().to_string();
            tokio::spawn(async move {
                let (mut rows, mut bytes) = (0u64, 0u64);
                for unit in mine {
                    let (r, b) = copy_unit(&client, &sql, &encoded[unit]).await?;
                    rows += r;
                    bytes += b;
                }
                Ok::<_, BoxError>((rows, bytes))
            })
        })
        .collect();
    joined(tasks, started).await
}

/// Load-only with the runner's work queue: `TRUNCATE`, then (timed) `units[k]`, work unit k's
/// pre-encoded batches, handed out in order to whichever task of `clients` is free; each unit is
/// `BEGIN; COPY … FROM STDIN (FORMAT binary); COMMIT`.
pub async fn copy_units(
    clients: &[Arc<Client>],
    encoder: &CopyEncoder,
    table: &str,
    units: &Arc<Vec<Vec<EncodedBatch>>>,
) -> Result<Pass, BoxError> {
    let first = clients.first().ok_or("no connections")?;
    truncate(first, table).await?;
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = clients
        .iter()
        .map(|client| {
            let (client, units, next) = (Arc::clone(client), Arc::clone(units), Arc::clone(&next));
            let sql = encoder.copy_sql().to_string();
            tokio::spawn(async move {
                let (mut rows, mut bytes) = (0u64, 0u64);
                while let Some(unit) = units.get(next.fetch_add(1, Ordering::SeqCst)) {
                    let (r, b) = copy_unit(&client, &sql, unit).await?;
                    rows += r;
                    bytes += b;
                }
                Ok::<_, BoxError>((rows, bytes))
            })
        })
        .collect();
    joined(tasks, started).await
}

/// The pass of `tasks` started at `started`: their (rows, bytes) summed, timed until the last
/// one ends.
async fn joined(
    tasks: Vec<tokio::task::JoinHandle<Result<(u64, u64), BoxError>>>,
    started: Instant,
) -> Result<Pass, BoxError> {
    let (mut rows, mut bytes) = (0u64, 0u64);
    for task in tasks {
        let (r, b) = task.await??;
        rows += r;
        bytes += b;
    }
    Ok(Pass {
        rows,
        bytes,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// One unit in its own transaction; returns (rows the server accepted, bytes sent).
async fn copy_unit(
    client: &Client,
    sql: &str,
    batches: &[EncodedBatch],
) -> Result<(u64, u64), BoxError> {
    client
        .batch_execute("BEGIN")
        .await
        .map_err(|e| pg("BEGIN", e))?;
    let sink = client
        .copy_in::<_, Bytes>(sql)
        .await
        .map_err(|e| pg("COPY", e))?;
    let mut sink = std::pin::pin!(sink);
    let mut bytes = (COPY_HEADER.len() + COPY_TRAILER.len()) as u64;
    sink.feed(Bytes::from_static(COPY_HEADER))
        .await
        .map_err(|e| pg("COPY", e))?;
    for chunk in batches.iter().flat_map(|b| &b.chunks) {
        bytes += chunk.len() as u64;
        // A clone of `Bytes` is a reference count, not a copy of the data.
        sink.feed(chunk.clone()).await.map_err(|e| pg("COPY", e))?;
    }
    sink.feed(Bytes::from_static(COPY_TRAILER))
        .await
        .map_err(|e| pg("COPY", e))?;
    let rows = sink.as_mut().finish().await.map_err(|e| pg("COPY", e))?;
    client
        .batch_execute("COMMIT")
        .await
        .map_err(|e| pg("COMMIT", e))?;
    Ok((rows, bytes))
}

/// Refuses a target table name that would need quoting in the SQL it is spliced into.
pub fn check_table_name(table: &str) -> Result<(), BoxError> {
    if table.is_empty()
        || !table
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(format!("--table {table:?}: use lower-case letters, digits and _").into());
    }
    Ok(())
}

/// `count` connections to `url`.
pub async fn connect_many(url: &str, count: usize) -> Result<Vec<Arc<Client>>, BoxError> {
    let config = YugabyteConfig::new(url);
    let mut clients = Vec::with_capacity(count);
    for _ in 0..count {
        clients.push(Arc::new(
            ferry_connectors::yugabyte::connect(&config).await?,
        ));
    }
    Ok(clients)
}

/// `ferry-bench load` arguments.
#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    #[command(flatten)]
    pub bench: BenchArgs,
    /// Connection counts for Ferry's side, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 2, 4, 8])]
    pub connections: Vec<usize>,
    /// Rows per Arrow batch.
    #[arg(long, default_value_t = 8192)]
    pub batch_rows: usize,
    /// Batches per unit (one transaction each).
    #[arg(long, default_value_t = 8)]
    pub unit_batches: usize,
    /// Load into a table without a primary key (default: PRIMARY KEY (account_id, event_id)).
    #[arg(long)]
    pub no_primary_key: bool,
    /// Target table, created (dropped first) in schema `public`.
    #[arg(long, default_value = "ferry_bench_load")]
    pub table: String,
    /// Ferry's connections.
    #[arg(long, env = "FERRY_POSTGRES_URL")]
    pub url: String,
    /// Connection for the server-side COPY, which needs superuser or `pg_read_server_files`
    /// (default: `--url`).
    #[arg(long)]
    pub admin_url: Option<String>,
    /// Directory for the COPY file; the server's OS user must be able to read it.
    #[arg(long, default_value = "/var/tmp/ferry-bench")]
    pub copy_dir: std::path::PathBuf,
}

/// Runs the scenario: server-side COPY and Ferry at each connection count, alternately.
pub async fn run(args: LoadArgs) -> Result<(), BoxError> {
    use crate::report::{Figure, ScenarioReport, median, peak_rss_mb};
    let table = args.table.as_str();
    check_table_name(table)?;
    let (connections, max_m) = crate::setup::connection_counts(&args.connections, None)?;
    let admin = connect_many(args.admin_url.as_deref().unwrap_or(&args.url), 1).await?;
    let admin = admin.first().ok_or("no admin connection")?;
    create_table(admin, table, !args.no_primary_key).await?;

    eprintln!("generating and encoding {} rows", args.bench.rows);
    let batches = quickstart_batches(1, args.bench.rows, args.batch_rows)?;
    let (encoder, encoded) = encode_all(admin, table, &batches).await?;
    drop(batches);
    let encoded = Arc::new(encoded);
    let path = args
        .copy_dir
        .join(format!("{table}-{}.copy", std::process::id()));
    let file_bytes = write_copy_file(&path, &encoded)?;
    let clients = connect_many(&args.url, max_m).await?;

    let result = async {
        // Warm-up: the file into the page cache, the table's files and the server's caches.
        server_copy(admin, &encoder, table, &path, file_bytes).await?;
        let mut server = Vec::new();
        let mut ferry: Vec<Vec<Pass>> = vec![Vec::new(); connections.len()];
        for run in 0..args.bench.runs.max(1) {
            // Alternate the sides, so drift on a shared machine hits all alike.
            let pass = server_copy(admin, &encoder, table, &path, file_bytes).await?;
            check_rows(admin, table, args.bench.rows, "server-side COPY").await?;
            eprintln!(
                "run {run}: server-copy {:.0} rows/s",
                pass.rows as f64 / pass.seconds
            );
            server.push(pass);
            for (i, &m) in connections.iter().enumerate() {
                let pass =
                    ferry_copy(&clients[..m], &encoder, table, &encoded, args.unit_batches).await?;
                if pass.rows != args.bench.rows {
                    return Err(format!(
                        "ferry-{m}c: COPY reported {} rows, expected {}",
                        pass.rows, args.bench.rows
                    )
                    .into());
                }
                check_rows(admin, table, args.bench.rows, &format!("ferry-{m}c")).await?;
                eprintln!(
                    "run {run}: ferry-{m}c {:.0} rows/s",
                    pass.rows as f64 / pass.seconds
                );
                ferry[i].push(pass);
            }
        }
        Ok::<_, BoxError>((server, ferry))
    }
    .await;
    let _ = std::fs::remove_file(&path);
    let (server, ferry) = result?;

    let rate = |p: &Pass| p.rows as f64 / p.seconds;
    let figure = |name: String, passes: &[Pass]| Figure::from_passes(name, passes, peak_rss_mb());
    let mut report = ScenarioReport::new("load", args.bench.rows);
    report.figures.push(figure("server-copy".into(), &server));
    // Per-run ratios against the ceiling measured in the same run.
    let ratio = |passes: &[Pass]| {
        let r: Vec<f64> = passes
            .iter()
            .zip(&server)
            .map(|(f, s)| rate(f) / rate(s))
            .collect();
        median(&r)
    };
    let mut best: Option<(usize, f64)> = None;
    for (&m, passes) in connections.iter().zip(&ferry) {
        let f = figure(format!("ferry-{m}c"), passes);
        if best.is_none_or(|(_, rps)| f.rows_per_s > rps) {
            best = Some((m, f.rows_per_s));
        }
        report.figures.push(f);
        report
            .ratios
            .insert(format!("ferry-{m}c/server-copy"), ratio(passes));
    }
    if let Some((m, _)) = best {
        let i = connections.iter().position(|&c| c == m).unwrap_or(0);
        report
            .ratios
            .insert("ferry/server-copy".into(), ratio(&ferry[i]));
        report.notes.push(format!(
            "ferry/server-copy is at the best connection count, {m}"
        ));
    }
    report.notes.push(format!(
        "quickstart shape (7 columns), {} batches of {} rows encoded once, units of {} batches \
         (one transaction each), {} primary key, {} runs each (medians), one warm-up server-side \
         COPY; the COPY file is {} bytes; peak RSS is the whole process's",
        encoded.len(),
        args.batch_rows,
        args.unit_batches,
        if args.no_primary_key { "no" } else { "with" },
        args.bench.runs,
        file_bytes
    ));
    report.publish(args.bench.json.as_deref())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::{DataType, TimeUnit};

    #[test]
    fn batches_have_the_source_types_and_every_row() {
        let batches = quickstart_batches(1, 10_001, 4096).expect("valid arrays");
        assert_eq!(batches.len(), 3);
        assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 10_001);
        let schema = batches[0].schema();
        let types: Vec<&DataType> = schema.fields().iter().map(|f| f.data_type()).collect();
        assert_eq!(
            types,
            [
                &DataType::Int64,
                &DataType::FixedSizeBinary(16),
                &DataType::Utf8,
                &DataType::Float64,
                &DataType::Boolean,
                &DataType::Int32,
                &DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            ]
        );
        // Row 4096 is the first of the second batch.
        let second = &batches[1];
        let row = QuickstartRow::generate(1, 4096);
        let ids = second
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .expect("Int64");
        assert_eq!(ids.value(0), row.account_id);
    }
}
