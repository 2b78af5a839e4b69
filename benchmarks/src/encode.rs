//! `ferry-bench encode`: Ferry's COPY encoder against pgpq (PyPI) on the same Arrow batches.
//!
//! The batches are generated in-process, written once to an Arrow IPC file, and read back by
//! both sides before any timing. Ferry encodes into the DESIGN.md default YSQL types; pgpq into
//! the types it infers. Where the two agree on a column's binary format, the field bytes are
//! compared one by one.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use arrow::array::*;
use arrow::datatypes::*;
use ferry_connectors::yugabyte::encoder::{COPY_HEADER, COPY_TRAILER};
use ferry_connectors::yugabyte::types::oid;
use ferry_connectors::yugabyte::{CopyEncoder, PgType, TargetColumn, TargetTable};
use rayon::prelude::*;

use crate::args::BenchArgs;
use crate::datagen::mix;
use crate::report::{Figure, ScenarioReport, median, peak_rss_mb};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The table shapes of the encode scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EncodeShape {
    /// The 12 columns of the `mixed` Cassandra shape, as Ferry's source decodes them (the
    /// decimal as Decimal128(12, 2), so that pgpq encodes it as numeric too).
    Mixed,
    /// 4 columns: bigint, int, double, text.
    Narrow,
}

impl EncodeShape {
    /// Each column: name, Arrow type, target type OID and name.
    fn columns(self) -> Vec<(&'static str, DataType, u32, &'static str)> {
        let mut cols = vec![
            ("id", DataType::Int64, oid::INT8, "bigint"),
            ("seq", DataType::Int32, oid::INT4, "integer"),
        ];
        match self {
            EncodeShape::Narrow => cols.extend([
                ("score", DataType::Float64, oid::FLOAT8, "double precision"),
                ("name", DataType::Utf8, oid::TEXT, "text"),
            ]),
            EncodeShape::Mixed => cols.extend([
                ("name", DataType::Utf8, oid::TEXT, "text"),
                ("email", DataType::Utf8, oid::TEXT, "text"),
                ("score", DataType::Float64, oid::FLOAT8, "double precision"),
                ("ratio", DataType::Float32, oid::FLOAT4, "real"),
                ("active", DataType::Boolean, oid::BOOL, "boolean"),
                (
                    "created",
                    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
                    oid::TIMESTAMPTZ,
                    "timestamp with time zone",
                ),
                ("birthday", DataType::Date32, oid::DATE, "date"),
                ("ref", DataType::FixedSizeBinary(16), oid::UUID, "uuid"),
                (
                    "amount",
                    DataType::Decimal128(12, 2),
                    oid::NUMERIC,
                    "numeric",
                ),
                ("payload", DataType::Binary, oid::BYTEA, "bytea"),
            ]),
        }
        cols
    }

    pub fn schema(self) -> SchemaRef {
        Arc::new(Schema::new(
            self.columns()
                .into_iter()
                .map(|(name, dt, _, _)| Field::new(name, dt, !matches!(name, "id" | "seq")))
                .collect::<Vec<_>>(),
        ))
    }

    /// The target table Ferry encodes into (no database needed: the types are built-in).
    pub fn target(self) -> TargetTable {
        TargetTable {
            schema: "public".into(),
            name: format!("encode_{self:?}").to_lowercase(),
            columns: self
                .columns()
                .into_iter()
                .map(|(name, _, type_oid, type_name)| TargetColumn {
                    name: name.into(),
                    ty: PgType::scalar(type_oid, type_name),
                    not_null: false,
                    has_default: false,
                })
                .collect(),
            server_version: 150_000,
        }
    }

    /// Rows `start..start + len`, a pure function of the row index (as `datagen`'s rows are).
    pub fn batch(self, start: u64, len: usize) -> RecordBatch {
        let rows = start..start + len as u64;
        let h = |i: u64, c: u64| mix(1, i, c);
        let names =
            || {
                StringArray::from_iter(rows.clone().map(|i| {
                    (h(i, 100) % 20 != 0).then(|| format!("user-{}", h(i, 2) % 1_000_000))
                }))
            };
        let mut arrays: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from_iter_values(
                rows.clone().map(|i| (i / 4) as i64),
            )),
            Arc::new(Int32Array::from_iter_values(
                rows.clone().map(|i| (i % 4) as i32),
            )),
        ];
        let score = || {
            Arc::new(Float64Array::from_iter_values(
                rows.clone().map(|i| (h(i, 4) % 1_000_000) as f64 / 7.0),
            )) as ArrayRef
        };
        match self {
            EncodeShape::Narrow => {
                arrays.push(score());
                arrays.push(Arc::new(names()));
            }
            EncodeShape::Mixed => {
                arrays.push(Arc::new(names()));
                arrays.push(Arc::new(StringArray::from_iter(rows.clone().map(|i| {
                    (h(i, 101) % 10 != 0).then(|| {
                        format!(
                            "u{}@example.{}",
                            h(i, 3) % 100_000,
                            ["com", "org", "net"][(h(i, 3) % 3) as usize]
                        )
                    })
                }))));
                arrays.push(score());
                arrays.push(Arc::new(Float32Array::from_iter_values(
                    rows.clone().map(|i| (h(i, 5) % 10_000) as f32 / 3.0),
                )));
                arrays.push(Arc::new(BooleanArray::from_iter(
                    rows.clone().map(|i| Some(h(i, 6) % 2 == 0)),
                )));
                arrays.push(Arc::new(
                    TimestampMillisecondArray::from_iter_values(
                        rows.clone()
                            .map(|i| 1_400_000_000_000 + (h(i, 7) % 300_000_000_000) as i64),
                    )
                    .with_timezone("UTC"),
                ));
                arrays.push(Arc::new(Date32Array::from_iter_values(
                    rows.clone().map(|i| (h(i, 8) % 30_000) as i32 - 20_000),
                )));
                let mut refs = FixedSizeBinaryBuilder::with_capacity(len, 16);
                for i in rows.clone() {
                    let mut u = [0u8; 16];
                    u[..8].copy_from_slice(&h(i, 9).to_be_bytes());
                    u[8..].copy_from_slice(&i.to_be_bytes());
                    refs.append_value(u).expect("16 bytes");
                }
                arrays.push(Arc::new(refs.finish()));
                arrays.push(Arc::new(
                    Decimal128Array::from_iter_values(
                        rows.clone().map(|i| (h(i, 10) % 100_000_000) as i128),
                    )
                    .with_precision_and_scale(12, 2)
                    .expect("valid decimal"),
                ));
                let mut payload = BinaryBuilder::new();
                for i in rows.clone() {
                    if h(i, 102) % 5 == 0 {
                        payload.append_null();
                    } else {
                        let bytes: Vec<u8> = (0..(h(i, 11) % 64))
                            .map(|k| (h(i, 12 + k) & 0xff) as u8)
                            .collect();
                        payload.append_value(bytes);
                    }
                }
                arrays.push(Arc::new(payload.finish()));
            }
        }
        RecordBatch::try_new(self.schema(), arrays).expect("the generator matches its schema")
    }
}

/// Writes `rows` rows of `shape` in batches of `batch_rows` to an Arrow IPC file.
pub fn write_ipc(
    shape: EncodeShape,
    rows: u64,
    batch_rows: usize,
    path: &Path,
) -> Result<(), BoxError> {
    let file = std::fs::File::create(path)?;
    let mut writer = arrow::ipc::writer::FileWriter::try_new(file, &shape.schema())?;
    let mut start = 0;
    while start < rows {
        let len = (rows - start).min(batch_rows as u64) as usize;
        writer.write(&shape.batch(start, len))?;
        start += len as u64;
    }
    writer.finish()?;
    Ok(())
}

/// Reads every batch of an Arrow IPC file into memory.
pub fn read_ipc(path: &Path) -> Result<Vec<RecordBatch>, BoxError> {
    let reader = arrow::ipc::reader::FileReader::try_new(std::fs::File::open(path)?, None)?;
    Ok(reader.collect::<Result<Vec<_>, _>>()?)
}

pub use crate::report::Pass;

/// Ferry on the calling thread only, batch after batch. Each batch's bytes are counted and
/// dropped, as a COPY sink would after sending them (pgpq's side does the same).
pub fn ferry_single(encoder: &CopyEncoder, batches: &[RecordBatch]) -> Pass {
    let started = Instant::now();
    let (mut rows, mut bytes) = (0u64, (COPY_HEADER.len() + COPY_TRAILER.len()) as u64);
    for b in batches {
        let out = encoder.encode_sequential(b);
        rows += out.rows as u64;
        bytes += out.bytes() as u64;
    }
    Pass {
        rows,
        bytes,
        seconds: started.elapsed().as_secs_f64(),
    }
}

/// Ferry on the rayon pool: batches, and chunks within them, in parallel; streamed likewise.
pub fn ferry_pool(encoder: &CopyEncoder, batches: &[RecordBatch]) -> Pass {
    let started = Instant::now();
    let (rows, bytes) = batches
        .par_iter()
        .map(|b| {
            let out = encoder.encode(b);
            (out.rows as u64, out.bytes() as u64)
        })
        .reduce(|| (0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    Pass {
        rows,
        bytes: bytes + (COPY_HEADER.len() + COPY_TRAILER.len()) as u64,
        seconds: started.elapsed().as_secs_f64(),
    }
}

/// Ferry's whole COPY stream, header to trailer, for the comparison (untimed).
pub fn ferry_stream(encoder: &CopyEncoder, batches: &[RecordBatch]) -> Vec<u8> {
    let mut out = COPY_HEADER.to_vec();
    for b in batches {
        for chunk in encoder.encode_sequential(b).chunks {
            out.extend_from_slice(&chunk);
        }
    }
    out.extend_from_slice(COPY_TRAILER);
    out
}

/// What the pgpq script reported.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct PgpqRun {
    pub seconds: Vec<f64>,
    pub bytes: u64,
    pub rows: u64,
    /// Column name and the PostgreSQL type pgpq chose.
    pub types: Vec<(String, String)>,
    pub pgpq: String,
    pub pyarrow: String,
    pub peak_rss_mb: f64,
}

/// Runs `scripts/pgpq.sh` on the IPC file.
pub fn pgpq(script: &Path, ipc: &Path, dump: Option<&Path>) -> Result<PgpqRun, BoxError> {
    let mut cmd = std::process::Command::new(script);
    cmd.arg(ipc);
    if let Some(d) = dump {
        cmd.arg("--dump").arg(d);
    }
    let out = cmd.output()?;
    if !out.status.success() {
        return Err(format!(
            "{} failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// Splits a binary COPY stream into rows of fields (`None` = NULL).
fn fields(stream: &[u8]) -> Result<Vec<Vec<Option<&[u8]>>>, String> {
    let mut at = COPY_HEADER.len();
    let mut rows = Vec::new();
    let take = |at: &mut usize, n: usize| -> Result<&[u8], String> {
        let s = stream.get(*at..*at + n).ok_or("truncated COPY stream")?;
        *at += n;
        Ok(s)
    };
    loop {
        let n = i16::from_be_bytes(take(&mut at, 2)?.try_into().map_err(|_| "count")?);
        if n < 0 {
            return Ok(rows);
        }
        let mut row = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let len = i32::from_be_bytes(take(&mut at, 4)?.try_into().map_err(|_| "length")?);
            row.push(if len < 0 {
                None
            } else {
                Some(take(&mut at, len as usize)?)
            });
        }
        rows.push(row);
    }
}

/// Compares Ferry's and pgpq's field bytes on every column whose binary formats agree.
/// One line per column.
pub fn compare(
    shape: EncodeShape,
    ferry: &[u8],
    pgpq: &[u8],
    pgpq_types: &[(String, String)],
) -> Result<Vec<String>, String> {
    let (a, b) = (fields(ferry)?, fields(pgpq)?);
    if a.len() != b.len() {
        return Err(format!("Ferry wrote {} rows, pgpq {}", a.len(), b.len()));
    }
    let mut lines = Vec::new();
    for (k, (name, _, _, ferry_type)) in shape.columns().into_iter().enumerate() {
        let pgpq_type = pgpq_types.get(k).map_or("?", |t| t.1.as_str());
        // Same binary format under different names: timestamp/timestamptz, bytea/uuid bytes.
        let same_format = matches!(
            (ferry_type, pgpq_type),
            ("bigint", "INT8")
                | ("integer", "INT4")
                | ("text", "TEXT")
                | ("double precision", "FLOAT8")
                | ("real", "FLOAT4")
                | ("boolean", "BOOL")
                | ("timestamp with time zone", "TIMESTAMP" | "TIMESTAMPTZ")
                | ("date", "DATE")
                | ("uuid", "BYTEA")
                | ("numeric", "NUMERIC")
                | ("bytea", "BYTEA")
        );
        if !same_format {
            lines.push(format!(
                "{name}: not compared (Ferry {ferry_type}, pgpq {pgpq_type})"
            ));
            continue;
        }
        let differing: Vec<usize> = (0..a.len()).filter(|&r| a[r][k] != b[r][k]).collect();
        lines.push(match differing.first() {
            None => format!("{name}: byte-identical ({ferry_type} / pgpq {pgpq_type})"),
            Some(&r) => format!(
                "{name}: {} of {} rows differ ({ferry_type} / pgpq {pgpq_type}); first row {r}: Ferry {:02x?}, pgpq {:02x?}",
                differing.len(),
                a.len(),
                a[r][k],
                b[r][k]
            ),
        });
    }
    Ok(lines)
}

#[derive(Debug, clap::Args)]
pub struct EncodeArgs {
    #[command(flatten)]
    pub bench: BenchArgs,
    /// Table shape.
    #[arg(long, value_enum, default_value = "mixed")]
    pub shape: EncodeShape,
    /// Rows per Arrow batch (DataFusion's default batch size).
    #[arg(long, default_value_t = 8192)]
    pub batch_rows: usize,
    /// Where the Arrow IPC file and pgpq's output go.
    #[arg(long, default_value = "target/bench-encode")]
    pub dir: PathBuf,
    /// Keep the Arrow IPC file (pgpq's output is always removed once compared).
    #[arg(long)]
    pub keep: bool,
    /// The script that runs pgpq (creates its Python venv on first use).
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/pgpq.sh"))]
    pub pgpq: PathBuf,
}

/// Runs the scenario.
pub fn run(args: EncodeArgs) -> Result<(), BoxError> {
    std::fs::create_dir_all(&args.dir)?;
    let shape_name = format!("{:?}", args.shape).to_lowercase();
    let ipc = args
        .dir
        .join(format!("{shape_name}-{}.arrow", args.bench.rows));
    let dump = args
        .dir
        .join(format!("{shape_name}-{}.pgpq.copy", args.bench.rows));
    eprintln!(
        "writing {} rows of {shape_name} to {}",
        args.bench.rows,
        ipc.display()
    );
    write_ipc(args.shape, args.bench.rows, args.batch_rows, &ipc)?;
    let batches = read_ipc(&ipc)?;
    let encoder = CopyEncoder::try_new(&args.shape.schema(), &args.shape.target())?;

    // Warm-up of both sides, which also produces the bytes to compare.
    let ferry_bytes = ferry_stream(&encoder, &batches);
    let warm = pgpq(&args.pgpq, &ipc, Some(&dump))?;
    let comparison = compare(
        args.shape,
        &ferry_bytes,
        &std::fs::read(&dump)?,
        &warm.types,
    )?;
    drop(ferry_bytes);
    let _ = std::fs::remove_file(&dump);

    let (mut single, mut pool, mut py) = (Vec::new(), Vec::new(), Vec::new());
    let mut pgpq_rss: f64 = warm.peak_rss_mb;
    for _ in 0..args.bench.runs.max(1) {
        // Alternate the three, so drift on a shared machine hits all alike.
        single.push(ferry_single(&encoder, &batches));
        pool.push(ferry_pool(&encoder, &batches));
        let run = pgpq(&args.pgpq, &ipc, None)?;
        pgpq_rss = pgpq_rss.max(run.peak_rss_mb);
        py.push(Pass {
            rows: run.rows,
            bytes: run.bytes,
            seconds: run.seconds.first().copied().unwrap_or(f64::NAN),
        });
    }
    for (name, passes) in [("ferry-1t", &single), ("ferry", &pool), ("pgpq", &py)] {
        if let Some(bad) = passes.iter().find(|p| p.rows != args.bench.rows) {
            return Err(format!(
                "{name} encoded {} rows, expected {}",
                bad.rows, args.bench.rows
            )
            .into());
        }
    }
    let figure = |name: &str, passes: &[Pass], rss: f64| Figure::from_passes(name, passes, rss);
    let mut report = ScenarioReport::new("encode", args.bench.rows);
    report.versions.insert("pgpq".into(), warm.pgpq.clone());
    report
        .versions
        .insert("pyarrow".into(), warm.pyarrow.clone());
    report
        .figures
        .push(figure("ferry-1t", &single, peak_rss_mb()));
    report.figures.push(figure("ferry", &pool, peak_rss_mb()));
    report.figures.push(figure("pgpq", &py, pgpq_rss));
    let ratio = |ours: &[Pass]| {
        let r: Vec<f64> = ours
            .iter()
            .zip(&py)
            .map(|(f, p)| p.seconds / f.seconds)
            .collect();
        median(&r)
    };
    report.ratios.insert("ferry-1t/pgpq".into(), ratio(&single));
    report.ratios.insert("ferry/pgpq".into(), ratio(&pool));
    report.notes.push(format!(
        "shape {shape_name}, {} rows in batches of {}, {} runs each (medians, run by run ratios), \
         one warm-up pass each; Ferry into the DESIGN.md default types, pgpq into its inferred \
         types; pgpq timed inside Python around its encode loop only; ferry-1t on one thread, \
         ferry on the rayon pool ({} threads); Ferry's peak RSS is the whole bench process's",
        args.bench.rows,
        args.batch_rows,
        args.bench.runs,
        rayon::current_num_threads()
    ));
    report.notes.extend(comparison);
    if !args.keep {
        let _ = std::fs::remove_file(&ipc);
    }
    report.publish(args.bench.json.as_deref())?;
    Ok(())
}
