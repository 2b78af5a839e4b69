//! Reproducible table generator: row `i` of a shape is a pure function of `(seed, i)`, so a test
//! can recompute any row, and two runs with the same seed write the same table.

use std::sync::Arc;
use std::time::Instant;

use futures::{StreamExt, TryStreamExt, stream};
use scylla::client::session::Session;
use scylla::statement::batch::{Batch, BatchType};
use scylla::value::{CqlDate, CqlDecimal, CqlTimestamp, CqlValue, MaybeUnset};
use uuid::Uuid;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The keyspace of the benchmark tables.
pub const BENCH_KEYSPACE: &str = "ferry_bench";

/// The seed of the benchmark tables.
pub const BENCH_SEED: u64 = 1;

/// Rows being written at once.
const CONCURRENCY: usize = 256;

/// Rows per partition of the mixed shape: row `i` is in partition `i / 4`.
const MIXED_PARTITION_ROWS: usize = 4;

/// The table shapes `datagen` can write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shape {
    /// 7 columns of simple types (bigint, uuid, text, double, boolean, int, timestamp), with NULLs.
    Quickstart,
    /// 12 columns of common types: bigint, int, 2 × text, double, float, boolean, timestamp,
    /// date, uuid, decimal, blob; 4 rows per partition.
    Mixed,
    /// 4 columns: bigint key, int, double, short text; one row per partition.
    Narrow,
    /// 40 columns: bigint and int key, then 38 columns cycling through bigint, int, text,
    /// double, boolean, timestamp, uuid, float, date and a longer text; 4 rows per partition.
    Wide,
    /// Collections: a list of text, a set of int, a map of text to int, a frozen UDT
    /// (`address`: street, city, zip) and a list of UDTs; 4 rows per partition.
    Collections,
}

/// The column types of the wide shape after its key, in turn.
const WIDE_TYPES: [&str; 10] = [
    "bigint",
    "int",
    "text",
    "double",
    "boolean",
    "timestamp",
    "uuid",
    "float",
    "date",
    "text",
];
/// Value columns of the wide shape (after `id` and `seq`).
const WIDE_VALUES: usize = 38;

impl Shape {
    /// `CREATE TABLE IF NOT EXISTS` for this shape.
    pub fn create_table_cql(self, keyspace: &str, table: &str) -> String {
        match self {
            Shape::Quickstart => format!(
                "CREATE TABLE IF NOT EXISTS {keyspace}.{table} (account_id bigint, event_id uuid, \
                 kind text, amount double, ok boolean, seq int, at timestamp, \
                 PRIMARY KEY ((account_id), event_id))"
            ),
            Shape::Mixed => format!(
                "CREATE TABLE IF NOT EXISTS {keyspace}.{table} (id bigint, seq int, name text, \
                 email text, score double, ratio float, active boolean, created timestamp, \
                 birthday date, ref uuid, amount decimal, payload blob, PRIMARY KEY ((id), seq))"
            ),
            Shape::Narrow => format!(
                "CREATE TABLE IF NOT EXISTS {keyspace}.{table} (id bigint PRIMARY KEY, n int, \
                 v double, t text)"
            ),
            Shape::Wide => {
                let values: Vec<String> = (0..WIDE_VALUES)
                    .map(|c| format!("c{:02} {}", c + 2, WIDE_TYPES[c % WIDE_TYPES.len()]))
                    .collect();
                format!(
                    "CREATE TABLE IF NOT EXISTS {keyspace}.{table} (id bigint, seq int, {}, \
                     PRIMARY KEY ((id), seq))",
                    values.join(", ")
                )
            }
            Shape::Collections => format!(
                "CREATE TABLE IF NOT EXISTS {keyspace}.{table} (id bigint, seq int, \
                 tags list<text>, scores set<int>, attrs map<text, int>, \
                 home frozen<address>, past list<frozen<address>>, PRIMARY KEY ((id), seq))"
            ),
        }
    }

    /// Statements the table needs first (the collections shape's UDT).
    pub fn create_types_cql(self, keyspace: &str) -> Option<String> {
        (self == Shape::Collections).then(|| {
            format!(
                "CREATE TYPE IF NOT EXISTS {keyspace}.address (street text, city text, zip int)"
            )
        })
    }

    /// The shape's name, as `--shape` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Shape::Quickstart => "quickstart",
            Shape::Mixed => "mixed",
            Shape::Narrow => "narrow",
            Shape::Wide => "wide",
            Shape::Collections => "collections",
        }
    }

    /// The shape's columns, in table order.
    pub fn columns(self) -> Vec<String> {
        let fixed: &[&str] = match self {
            Shape::Quickstart => &[
                "account_id",
                "event_id",
                "kind",
                "amount",
                "ok",
                "seq",
                "at",
            ],
            Shape::Mixed => &[
                "id", "seq", "name", "email", "score", "ratio", "active", "created", "birthday",
                "ref", "amount", "payload",
            ],
            Shape::Narrow => &["id", "n", "v", "t"],
            Shape::Wide => {
                let mut columns = vec!["id".to_string(), "seq".to_string()];
                columns.extend((0..WIDE_VALUES).map(|c| format!("c{:02}", c + 2)));
                return columns;
            }
            Shape::Collections => &["id", "seq", "tags", "scores", "attrs", "home", "past"],
        };
        fixed.iter().map(|c| c.to_string()).collect()
    }

    /// Row `i` of the narrow, wide and collections shapes, as insert values in column order
    /// (`keyspace` names the collections shape's UDT).
    fn values(self, keyspace: &str, seed: u64, i: u64) -> Vec<MaybeUnset<CqlValue>> {
        let h = |c: u64| mix(seed, i, c);
        let set = MaybeUnset::Set;
        let text = |c: u64, len: u64| {
            let n = h(c) % len.max(1);
            CqlValue::Text(
                format!("{:016x}", h(c + 1000)).repeat(1 + n as usize / 16)[..n as usize]
                    .to_string(),
            )
        };
        let key = |rows_per_partition: u64| {
            vec![
                set(CqlValue::BigInt((i / rows_per_partition) as i64)),
                set(CqlValue::Int((i % rows_per_partition) as i32)),
            ]
        };
        match self {
            Shape::Narrow => vec![
                set(CqlValue::BigInt(i as i64)),
                set(CqlValue::Int((h(1) % 1_000_000) as i32)),
                set(CqlValue::Double((h(2) % 1_000_000) as f64 / 8.0)),
                unset((h(103) % 10 != 0).then(|| text(3, 16))),
            ],
            Shape::Wide => {
                let mut row = key(MIXED_PARTITION_ROWS as u64);
                for c in 0..WIDE_VALUES as u64 {
                    let v = match WIDE_TYPES[c as usize % WIDE_TYPES.len()] {
                        "bigint" => CqlValue::BigInt(h(c) as i64 >> 8),
                        "int" => CqlValue::Int((h(c) % 2_000_000) as i32 - 1_000_000),
                        "double" => CqlValue::Double((h(c) % 10_000_000) as f64 / 100.0),
                        "boolean" => CqlValue::Boolean(h(c) % 2 == 0),
                        "timestamp" => CqlValue::Timestamp(CqlTimestamp(
                            1_400_000_000_000 + (h(c) % 300_000_000_000) as i64,
                        )),
                        "uuid" => CqlValue::Uuid(Uuid::from_u64_pair(h(c), i)),
                        "float" => CqlValue::Float((h(c) % 100_000) as f32 / 4.0),
                        "date" => CqlValue::Date(CqlDate((1u32 << 31) + (h(c) % 20_000) as u32)),
                        _ if c % 20 == 9 => text(c, 120),
                        _ => text(c, 24),
                    };
                    // About one value in 12 is missing.
                    row.push(unset((h(200 + c) % 12 != 0).then_some(v)));
                }
                row
            }
            Shape::Collections => {
                let address = |c: u64| CqlValue::UserDefinedType {
                    keyspace: keyspace.to_string(),
                    name: "address".to_string(),
                    fields: vec![
                        ("street".to_string(), Some(text(c, 30))),
                        (
                            "city".to_string(),
                            Some(CqlValue::Text(
                                ["Oslo", "Lyon", "Porto", "Kraków", "Zürich"]
                                    [(h(c + 1) % 5) as usize]
                                    .to_string(),
                            )),
                        ),
                        (
                            "zip".to_string(),
                            (h(c + 2) % 7 != 0).then(|| CqlValue::Int((h(c + 2) % 99_999) as i32)),
                        ),
                    ],
                };
                let mut row = key(MIXED_PARTITION_ROWS as u64);
                let tags = (0..h(2) % 6).map(|k| text(10 + k, 12)).collect();
                let mut scores: Vec<i32> =
                    (0..h(3) % 8).map(|k| (h(20 + k) % 1000) as i32).collect();
                scores.sort_unstable();
                scores.dedup();
                let attrs = (0..h(4) % 5)
                    .map(|k| {
                        (
                            CqlValue::Text(format!("k{k}")),
                            CqlValue::Int((h(30 + k) % 100) as i32),
                        )
                    })
                    .collect();
                let past = (0..h(5) % 3).map(|k| address(40 + 3 * k)).collect();
                row.extend([
                    unset((h(102) % 10 != 0).then_some(CqlValue::List(tags))),
                    set(CqlValue::Set(
                        scores.into_iter().map(CqlValue::Int).collect(),
                    )),
                    set(CqlValue::Map(attrs)),
                    unset((h(104) % 8 != 0).then(|| address(60))),
                    set(CqlValue::List(past)),
                ]);
                row
            }
            Shape::Quickstart | Shape::Mixed => unreachable!("generated by their own rows"),
        }
    }
}

/// splitmix64: a fast, well-mixed hash of `(seed, row, column)`.
pub fn mix(seed: u64, row: u64, column: u64) -> u64 {
    let mut z = seed
        .wrapping_add(row.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(column.wrapping_mul(0xD1B5_4A32_D192_ED03));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// One row of the quickstart shape.
#[derive(Debug, Clone, PartialEq)]
pub struct QuickstartRow {
    pub account_id: i64,
    pub event_id: Uuid,
    pub kind: Option<String>,
    pub amount: Option<f64>,
    pub ok: Option<bool>,
    pub seq: Option<i32>,
    pub at: Option<i64>,
}

const KINDS: [&str; 5] = ["click", "view", "buy", "refund", "café ☕"];

impl QuickstartRow {
    /// Row `i` for `seed`.
    pub fn generate(seed: u64, i: u64) -> Self {
        let h = |c| mix(seed, i, c);
        let null = |c: u64, every: u64| h(100 + c) % every == 0;
        Self {
            account_id: (h(0) % 50_000) as i64 - 1_000,
            event_id: Uuid::from_u64_pair(h(1), i),
            kind: (!null(2, 17)).then(|| KINDS[(h(2) % 5) as usize].to_string()),
            amount: (!null(3, 13)).then(|| (h(3) % 10_000_000) as f64 / 100.0 - 1_000.0),
            ok: (!null(4, 11)).then(|| h(4) % 2 == 0),
            seq: (!null(5, 19)).then_some(i as i32),
            at: (!null(6, 23)).then(|| 1_500_000_000_000 + (h(6) % 400_000_000_000) as i64),
        }
    }
}

/// Row `i` of the mixed shape, as insert values.
#[allow(clippy::type_complexity)]
fn mixed_row(
    seed: u64,
    i: u64,
) -> (
    i64,
    i32,
    MaybeUnset<String>,
    MaybeUnset<String>,
    f64,
    f32,
    bool,
    CqlTimestamp,
    CqlDate,
    Uuid,
    CqlDecimal,
    MaybeUnset<Vec<u8>>,
) {
    let h = |c| mix(seed, i, c);
    let name = format!("user-{}", h(2) % 1_000_000);
    let email = format!(
        "u{}@example.{}",
        h(3) % 100_000,
        ["com", "org", "net"][(h(3) % 3) as usize]
    );
    let payload: Vec<u8> = (0..(h(11) % 64) as usize)
        .map(|k| (h(12 + k as u64) & 0xff) as u8)
        .collect();
    (
        (i / MIXED_PARTITION_ROWS as u64) as i64,
        (i % MIXED_PARTITION_ROWS as u64) as i32,
        unset((h(100) % 20 != 0).then_some(name)),
        unset((h(101) % 10 != 0).then_some(email)),
        (h(4) % 1_000_000) as f64 / 7.0,
        (h(5) % 10_000) as f32 / 3.0,
        h(6) % 2 == 0,
        CqlTimestamp(1_400_000_000_000 + (h(7) % 300_000_000_000) as i64),
        CqlDate((1u32 << 31) - 20_000 + (h(8) % 30_000) as u32),
        Uuid::from_u64_pair(h(9), i),
        CqlDecimal::from_signed_be_bytes_and_exponent(
            ((h(10) % 100_000_000) as i64).to_be_bytes().to_vec(),
            2,
        ),
        unset((h(102) % 5 != 0).then_some(payload)),
    )
}

/// A missing value is left unset rather than written as NULL: a NULL write is a tombstone,
/// and a table full of tombstones reads slowly and warns.
fn unset<T>(value: Option<T>) -> MaybeUnset<T> {
    value.map_or(MaybeUnset::Unset, MaybeUnset::Set)
}

/// Writes rows `0..rows` of `shape` into `keyspace.table` (which must exist).
pub async fn generate(
    session: &Arc<Session>,
    shape: Shape,
    keyspace: &str,
    table: &str,
    rows: u64,
    seed: u64,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    match shape {
        Shape::Quickstart => {
            let insert = session
                .prepare(format!(
                    "INSERT INTO {keyspace}.{table} (account_id, event_id, kind, amount, ok, seq, at) \
                     VALUES (?, ?, ?, ?, ?, ?, ?)"
                ))
                .await?;
            stream::iter(0..rows)
                .map(|i| {
                    let insert = &insert;
                    async move {
                        let r = QuickstartRow::generate(seed, i);
                        session
                            .execute_unpaged(
                                insert,
                                (
                                    r.account_id,
                                    r.event_id,
                                    unset(r.kind),
                                    unset(r.amount),
                                    unset(r.ok),
                                    unset(r.seq),
                                    unset(r.at.map(CqlTimestamp)),
                                ),
                            )
                            .await
                            .map(|_| ())
                    }
                })
                .buffer_unordered(CONCURRENCY)
                .try_collect::<Vec<()>>()
                .await?;
        }
        Shape::Narrow | Shape::Wide | Shape::Collections => {
            let columns = shape.columns();
            let marks = vec!["?"; columns.len()].join(", ");
            let insert = session
                .prepare(format!(
                    "INSERT INTO {keyspace}.{table} ({}) VALUES ({marks})",
                    columns.join(", ")
                ))
                .await?;
            stream::iter(0..rows)
                .map(|i| {
                    let insert = &insert;
                    let values = shape.values(keyspace, seed, i);
                    async move { session.execute_unpaged(insert, values).await.map(|_| ()) }
                })
                .buffer_unordered(CONCURRENCY)
                .try_collect::<Vec<()>>()
                .await?;
        }
        Shape::Mixed => {
            let insert = session
                .prepare(format!(
                    "INSERT INTO {keyspace}.{table} ({}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    shape.columns().join(", ")
                ))
                .await?;
            // One unlogged batch per partition (its MIXED_PARTITION_ROWS rows): a single
            // mutation for Cassandra, a quarter of the requests of row-by-row inserts.
            let batches: Vec<Batch> = (1..=MIXED_PARTITION_ROWS)
                .map(|n| {
                    let mut batch = Batch::new(BatchType::Unlogged);
                    for _ in 0..n {
                        batch.append_statement(insert.clone());
                    }
                    batch
                })
                .collect();
            let partitions = rows.div_ceil(MIXED_PARTITION_ROWS as u64);
            stream::iter(0..partitions)
                .map(|p| {
                    let first = p * MIXED_PARTITION_ROWS as u64;
                    let values: Vec<_> = (first..(first + MIXED_PARTITION_ROWS as u64).min(rows))
                        .map(|i| mixed_row(seed, i))
                        .collect();
                    let batch = &batches[values.len() - 1];
                    async move { session.batch(batch, values).await.map(|_| ()) }
                })
                .buffer_unordered(CONCURRENCY / MIXED_PARTITION_ROWS)
                .try_collect::<Vec<()>>()
                .await?;
        }
    }
    Ok(())
}

/// Makes `ferry_bench.<shape>_<rows>` hold rows `0..rows` of `shape` (seed [`BENCH_SEED`]) and
/// returns the table's name. With `reuse`, a table an earlier run finished writing is kept as it
/// is; one whose writing did not finish (no row in `ferry_bench.seeded`) is written again.
pub async fn bench_table(
    session: &Arc<Session>,
    shape: Shape,
    rows: u64,
    reuse: bool,
) -> Result<String, BoxError> {
    let keyspace = BENCH_KEYSPACE;
    let table = format!("{}_{rows}", shape.name());
    session
        .query_unpaged(
            format!(
                "CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = \
                 {{'class': 'SimpleStrategy', 'replication_factor': 1}}"
            ),
            (),
        )
        .await?;
    session
        .query_unpaged(
            format!(
                "CREATE TABLE IF NOT EXISTS {keyspace}.seeded \
                 (name text PRIMARY KEY, rows bigint, seed bigint)"
            ),
            (),
        )
        .await?;
    let seeded = format!("SELECT rows, seed FROM {keyspace}.seeded WHERE name = ?");
    let done = session
        .query_unpaged(seeded, (&table,))
        .await?
        .into_rows_result()?
        .maybe_first_row::<(i64, i64)>()?;
    if reuse && done == Some((rows as i64, BENCH_SEED as i64)) {
        return Ok(table);
    }
    eprintln!(
        "writing {rows} rows of the {} shape into {keyspace}.{table}",
        shape.name()
    );
    let forget = format!("DELETE FROM {keyspace}.seeded WHERE name = ?");
    session.query_unpaged(forget, (&table,)).await?;
    session
        .query_unpaged(format!("DROP TABLE IF EXISTS {keyspace}.{table}"), ())
        .await?;
    if let Some(cql) = shape.create_types_cql(keyspace) {
        session.query_unpaged(cql, ()).await?;
    }
    session
        .query_unpaged(shape.create_table_cql(keyspace, &table), ())
        .await?;
    let started = Instant::now();
    generate(session, shape, keyspace, &table, rows, BENCH_SEED).await?;
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "wrote {rows} rows in {seconds:.1}s ({:.0} rows/s)",
        rows as f64 / seconds
    );
    let record = format!("INSERT INTO {keyspace}.seeded (name, rows, seed) VALUES (?, ?, ?)");
    session
        .query_unpaged(record, (&table, rows as i64, BENCH_SEED as i64))
        .await?;
    Ok(table)
}
