//! [`CopyEncoder`]: Arrow record batches → PostgreSQL binary COPY rows, typed by the target.
//!
//! ```text
//! stream  = header row* trailer
//! header  = "PGCOPY\n\xff\r\n\0" flags:i32=0 ext_len:i32=0
//! row     = nfields:i16 ( len:i32 bytes[len] | -1:i32 )*      (NULL = length -1, no bytes)
//! trailer = -1:i16
//! ```
//!
//! A batch is encoded column by column into a row-major buffer: first every row's length is
//! measured (which is also where values the target cannot hold are found and the row rejected),
//! then each column writes its value into every row's slot. Fixed-width values and plain
//! strings/bytes are measured from the array and written straight into the slots; everything
//! else (numeric, parsed text, arrays, composites, JSON) is encoded once while measuring into a
//! per-column scratch buffer, then copied. Chunks of rows are encoded in parallel on the rayon
//! pool.
//!
//! Per type family: [`numeric`], [`temporal`], [`text`], [`nested`] (arrays, composites) and
//! [`json`]; the typed loops over a chunk are in [`kernels`]. The mapping itself is
//! [`node_for`]; docs/types.md documents it.

mod json;
mod kernels;
mod nested;
mod numeric;
mod temporal;
mod text;

use std::ops::Range;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::*;
use bytes::Bytes;
use rayon::prelude::*;

use super::types::{PgShape, PgType, TargetTable, oid};
use crate::error::{ConnectorError, Result};
use kernels::{Pass, Scratch, run};
use numeric::{Int, NumTo, NumericTarget};

/// The 19-byte header of a binary COPY stream.
pub const COPY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// The trailer: a field count of -1.
pub const COPY_TRAILER: &[u8] = &[0xff, 0xff];

/// Rows per chunk encoded on one rayon task.
const CHUNK_ROWS: usize = 4096;
/// PostgreSQL's largest field.
const MAX_FIELD: usize = (1 << 30) - 1;
/// PostgreSQL's MAXDIM.
const MAX_DIMS: usize = 6;

/// A row that was not encoded (or that the server refused, see [`super::sink`]), and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Reject {
    /// Row index within the batch.
    pub row: usize,
    /// The column at fault; empty when a server refusal names none (a unique key, a table CHECK).
    pub column: String,
    pub reason: String,
    /// The server's SQLSTATE, when the server refused the row; `None` for the encoder's rejects.
    pub sqlstate: Option<String>,
}

impl Reject {
    /// A short, stable name for the kind of reject, to count rejects by: `target:<SQLSTATE>`
    /// for rows the server refused, `encoder:<kind>` for values the encoder found the target
    /// cannot hold (`nul_character`, `out_of_range`, `inexact`, `too_long`, `invalid_text`,
    /// `not_rectangular`, `no_json_form`, `field_too_large`, `unreadable`, else `other`).
    pub fn class(&self) -> String {
        if let Some(state) = &self.sqlstate {
            return format!("target:{state}");
        }
        if self.reason.starts_with("the target refused the row") {
            return "target:unknown".to_string();
        }
        format!("encoder:{}", encoder_reason_kind(&self.reason))
    }
}

/// The kind of an encoder reason. The reasons are this module's own words; a reason starting
/// with the offending value (`"x" is not a number`) is matched after the value, so that a value
/// cannot look like another kind.
fn encoder_reason_kind(reason: &str) -> &'static str {
    let words = match reason.strip_prefix('"') {
        // Skip the Debug-quoted value: up to the first quote not escaped by a backslash.
        Some(rest) => {
            let mut escaped = false;
            let end = rest.char_indices().find_map(|(i, c)| {
                let close = c == '"' && !escaped;
                escaped = c == '\\' && !escaped;
                close.then_some(i + 1)
            });
            end.map_or(reason, |e| &rest[e..])
        }
        None => reason,
    };
    let has = |needle: &str| words.contains(needle);
    if reason.starts_with("cannot be read: ") {
        "unreadable"
    } else if has("NUL") || has("\\u0000") {
        "nul_character"
    } else if has("1 GB field limit") {
        "field_too_large"
    } else if has("not exactly representable") || has("would be rounded") {
        "inexact"
    } else if has("out of range")
        || has("digits after the decimal point")
        || has("outside PostgreSQL's range")
        || has("field overflow")
        || has("Infinity")
        || has("not a time of day")
    {
        "out_of_range"
    } else if has("do not fit in") {
        "too_long"
    } else if has("rectangular") {
        "not_rectangular"
    } else if has("no JSON form") || has("a JSON object cannot hold") {
        "no_json_form"
    } else if has(" is not a") || has("not valid JSON") || has("not a UUID") || has("cidr") {
        "invalid_text"
    } else {
        "other"
    }
}

/// The COPY rows of one batch (no header or trailer), in chunks ready for the wire.
#[derive(Debug, Default)]
pub struct EncodedBatch {
    pub chunks: Vec<Bytes>,
    /// Rows encoded.
    pub rows: usize,
    /// Rows left out, with reasons.
    pub rejects: Vec<Reject>,
    /// Values whose sub-microsecond digits were dropped (nanosecond timestamps, times,
    /// intervals): the one documented, counted conversion.
    pub truncated: u64,
}

impl EncodedBatch {
    /// Bytes of COPY data.
    pub fn bytes(&self) -> usize {
        self.chunks.iter().map(Bytes::len).sum()
    }
}

/// `COPY relation (columns) FROM STDIN (FORMAT binary)`.
fn copy_statement(relation: &str, columns: &[ColumnPlan]) -> String {
    let names: Vec<String> = columns
        .iter()
        .map(|c| super::types::quote_ident(&c.name))
        .collect();
    format!(
        "COPY {relation} ({}) FROM STDIN (FORMAT binary)",
        names.join(", ")
    )
}

/// How one Arrow value becomes one value of a target type. The Arrow side is read from the
/// array at encode time; the plan only guarantees the pair is supported.
#[derive(Debug, Clone, PartialEq)]
enum Node {
    /// An all-NULL (Arrow `Null`) column: NULL into any type.
    Null,
    Bool,
    /// Any integer into int2/int4/int8 (range-checked) or float4/float8 (exact only).
    Int(NumTo),
    /// Float32/Float64 into float4 (exact only) or float8.
    Float(NumTo),
    /// Integers, floats, decimals and decimal strings into numeric.
    Numeric(NumericTarget),
    /// Strings into text, varchar(n), bpchar(n): the bytes, minus NULs, length-checked.
    Text {
        max_chars: Option<usize>,
    },
    /// Strings into name (at most 63 bytes).
    Name,
    /// A string holding a JSON document (validated), or any value serialized as JSON.
    Json {
        jsonb: bool,
        document: bool,
    },
    /// FixedSizeBinary(16), 16-byte binaries, or UUID strings into uuid.
    Uuid,
    Inet {
        cidr: bool,
    },
    Bytea,
    /// Date32, Date64 or `YYYY-MM-DD` strings into date.
    Date,
    /// Timestamps in any unit or timestamp strings; a string's offset counts for timestamptz.
    Timestamp {
        keep_offset: bool,
    },
    /// Time32/Time64 or `HH:MM:SS` strings into time.
    Time,
    /// Interval (any unit) or Duration into interval.
    Interval,
    /// List/LargeList/FixedSizeList into an array; `dims` nested lists become dimensions.
    Array {
        elem_oid: u32,
        dims: usize,
        elem: Box<Node>,
    },
    /// Struct into a composite: per attribute, its type OID, struct child and encoding.
    Composite(Vec<(u32, usize, Node)>),
    /// A list of floats into pgvector's `vector`, of `dims` dimensions when the column says.
    Vector {
        dims: Option<usize>,
    },
}

#[derive(Debug, Clone)]
struct ColumnPlan {
    /// Index of the column in the input batch.
    input: usize,
    name: String,
    node: Node,
    /// Dictionary, Decimal32/64 and Float16 are cast once per batch to the type the node reads.
    cast_to: Option<DataType>,
}

/// Encodes batches of one Arrow schema into the columns of one target table.
#[derive(Debug, Clone)]
pub struct CopyEncoder {
    table: String,
    columns: Arc<Vec<ColumnPlan>>,
    copy_sql: String,
}

impl CopyEncoder {
    /// Matches `schema` to `target` by column name and checks every (Arrow type, target type)
    /// pair. Fails with every problem listed, before any data moves.
    pub fn try_new(schema: &SchemaRef, target: &TargetTable) -> Result<Self> {
        let mut problems = Vec::new();
        let mut columns = Vec::new();
        for (input, field) in schema.fields().iter().enumerate() {
            let Some(col) = target.column(field.name()) else {
                problems.push(format!(
                    "  {}: not a column of {} (rename it in the transform, or add it to the table)",
                    field.name(),
                    target.qualified()
                ));
                continue;
            };
            let normal = normalize(field.data_type());
            match node_for(&normal, &col.ty, target.server_version) {
                Ok(node) => columns.push(ColumnPlan {
                    input,
                    name: field.name().clone(),
                    node,
                    cast_to: (&normal != field.data_type()).then_some(normal),
                }),
                Err(why) => problems.push(format!(
                    "  {}: {} cannot be written to {} ({why}; cast it in the transform)",
                    field.name(),
                    field.data_type(),
                    col.ty.name
                )),
            }
        }
        for col in &target.columns {
            if col.not_null && !col.has_default && schema.field_with_name(&col.name).is_err() {
                problems.push(format!(
                    "  {}: NOT NULL column of {} ({}) missing from the output",
                    col.name,
                    target.qualified(),
                    col.ty.name
                ));
            }
        }
        if !problems.is_empty() {
            return Err(ConnectorError::Incompatible {
                table: target.qualified(),
                problems,
            });
        }
        Ok(Self {
            copy_sql: copy_statement(&target.qualified(), &columns),
            table: target.qualified(),
            columns: Arc::new(columns),
        })
    }

    /// The `COPY … FROM STDIN (FORMAT binary)` statement for this encoder's columns.
    pub fn copy_sql(&self) -> &str {
        &self.copy_sql
    }

    /// The same encoder with its COPY into `relation` (a quoted name) instead, for a table with
    /// the same columns; messages still name the target table.
    pub fn copying_into(&self, relation: &str) -> Self {
        Self {
            copy_sql: copy_statement(relation, &self.columns),
            ..self.clone()
        }
    }

    /// The target columns the COPY writes, in COPY order.
    pub fn column_names(&self) -> Vec<&str> {
        self.columns.iter().map(|c| c.name.as_str()).collect()
    }

    /// The target table, quoted, for messages.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Encodes `batch` on the calling thread (chunks in parallel on the current rayon pool).
    pub fn encode(&self, batch: &RecordBatch) -> EncodedBatch {
        self.encode_with(batch, true)
    }

    /// Encodes `batch` chunk after chunk on the calling thread only.
    pub fn encode_sequential(&self, batch: &RecordBatch) -> EncodedBatch {
        self.encode_with(batch, false)
    }

    fn encode_with(&self, batch: &RecordBatch, parallel: bool) -> EncodedBatch {
        let n = batch.num_rows();
        let ranges: Vec<Range<usize>> = (0..n)
            .step_by(CHUNK_ROWS)
            .map(|s| s..(s + CHUNK_ROWS).min(n))
            .collect();
        let mut cast_rejects = Vec::new();
        let arrays: Vec<ArrayRef> = self
            .columns
            .iter()
            .map(|c| {
                let array = batch.column(c.input);
                match &c.cast_to {
                    None => Arc::clone(array),
                    Some(to) => arrow::compute::cast(array, to).unwrap_or_else(|e| {
                        // The plan only casts where arrow can; a failure rejects every row.
                        cast_rejects.push((c.name.clone(), e.to_string()));
                        arrow::array::new_null_array(to, array.len())
                    }),
                }
            })
            .collect();
        if let Some((column, reason)) = cast_rejects.into_iter().next() {
            return EncodedBatch {
                rejects: (0..n)
                    .map(|row| Reject {
                        row,
                        column: column.clone(),
                        reason: format!("cannot be read: {reason}"),
                        sqlstate: None,
                    })
                    .collect(),
                ..EncodedBatch::default()
            };
        }
        let parts: Vec<Chunk> = if parallel && ranges.len() > 1 {
            ranges
                .into_par_iter()
                .map(|r| self.encode_chunk(&arrays, r))
                .collect()
        } else {
            ranges
                .into_iter()
                .map(|r| self.encode_chunk(&arrays, r))
                .collect()
        };
        let mut out = EncodedBatch::default();
        for part in parts {
            out.rows += part.rows;
            out.truncated += part.truncated;
            out.rejects.extend(part.rejects);
            if !part.buf.is_empty() {
                out.chunks.push(Bytes::from(part.buf));
            }
        }
        out
    }

    /// Encodes `batch` on the rayon pool, without blocking the async runtime.
    pub async fn encode_async(&self, batch: RecordBatch) -> EncodedBatch {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let encoder = self.clone();
        rayon::spawn(move || {
            let _ = tx.send(encoder.encode(&batch));
        });
        rx.await
            .expect("the rayon task always sends unless it panicked, which is a bug")
    }

    fn encode_chunk(&self, arrays: &[ArrayRef], range: Range<usize>) -> Chunk {
        let len = range.len();
        let mut widths = vec![2usize; len];
        let mut rejected = vec![false; len];
        let mut rejects = Vec::new();
        let mut column_rejects = Vec::new();
        let mut truncated = 0u64;
        let mut scratch: Vec<Scratch> = Vec::with_capacity(self.columns.len());
        for (plan, array) in self.columns.iter().zip(arrays) {
            let mut s = Scratch::default();
            let mut pass = Pass::Measure {
                start: range.start,
                len,
                widths: &mut widths,
                rejects: &mut column_rejects,
                truncated: &mut truncated,
            };
            run(&plan.node, array.as_ref(), &mut pass, &mut s);
            for (slot, reason) in column_rejects.drain(..) {
                if !rejected[slot] {
                    rejected[slot] = true;
                    rejects.push(Reject {
                        row: range.start + slot,
                        column: plan.name.clone(),
                        reason,
                        sqlstate: None,
                    });
                }
            }
            scratch.push(s);
        }
        let mut cursors = vec![0usize; len];
        let mut total = 0usize;
        for i in 0..len {
            cursors[i] = total;
            if !rejected[i] {
                total += widths[i];
            }
        }
        let mut buf = vec![0u8; total];
        let nfields = (self.columns.len() as i16).to_be_bytes();
        for i in 0..len {
            if !rejected[i] {
                buf[cursors[i]..cursors[i] + 2].copy_from_slice(&nfields);
                cursors[i] += 2;
            }
        }
        for ((plan, array), s) in self.columns.iter().zip(arrays).zip(&mut scratch) {
            let mut pass = Pass::Write {
                start: range.start,
                len,
                cursors: &mut cursors,
                buf: &mut buf,
                rejected: (!rejects.is_empty()).then_some(&rejected[..]),
            };
            run(&plan.node, array.as_ref(), &mut pass, s);
        }
        rejects.sort_by_key(|r| r.row);
        Chunk {
            buf,
            rows: len - rejects.len(),
            rejects,
            truncated,
        }
    }
}

struct Chunk {
    buf: Vec<u8>,
    rows: usize,
    rejects: Vec<Reject>,
    truncated: u64,
}

/// Replaces the Arrow types the encoder reads through a cast: dictionaries by their values,
/// Decimal32/64 by Decimal128, Float16 by Float32 (all exact), also inside nested types.
fn normalize(dt: &DataType) -> DataType {
    use DataType as D;
    let field =
        |f: &FieldRef| Arc::new(f.as_ref().clone().with_data_type(normalize(f.data_type())));
    match dt {
        D::Dictionary(_, v) => normalize(v),
        D::Decimal32(p, s) | D::Decimal64(p, s) => D::Decimal128(*p, *s),
        D::Float16 => D::Float32,
        D::List(f) => D::List(field(f)),
        D::LargeList(f) => D::LargeList(field(f)),
        D::FixedSizeList(f, n) => D::FixedSizeList(field(f), *n),
        D::Struct(fs) => D::Struct(fs.iter().map(field).collect()),
        D::Map(f, sorted) => D::Map(field(f), *sorted),
        other => other.clone(),
    }
}

fn is_int(dt: &DataType) -> bool {
    dt.is_integer()
}

fn is_str(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    )
}

fn is_bin(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Binary
            | DataType::LargeBinary
            | DataType::BinaryView
            | DataType::FixedSizeBinary(_)
    )
}

fn list_child(dt: &DataType) -> Option<&DataType> {
    match dt {
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            Some(f.data_type())
        }
        _ => None,
    }
}

/// The encoding of Arrow type `dt` (normalized) into target type `pg`, or why there is none.
fn node_for(dt: &DataType, pg: &PgType, version: u32) -> std::result::Result<Node, String> {
    use DataType as D;
    if dt == &D::Null {
        return Ok(Node::Null);
    }
    match &pg.shape {
        PgShape::Array(elem) => {
            let Some(mut inner) = list_child(dt) else {
                return Err("only a List, LargeList or FixedSizeList becomes an array".into());
            };
            let mut dims = 1;
            loop {
                match node_for(inner, elem, version) {
                    Ok(node) => {
                        return Ok(Node::Array {
                            elem_oid: elem.oid,
                            dims,
                            elem: Box::new(node),
                        });
                    }
                    Err(why) => match list_child(inner) {
                        Some(next) if dims < MAX_DIMS => {
                            inner = next;
                            dims += 1;
                        }
                        _ => return Err(format!("elements: {why}")),
                    },
                }
            }
        }
        PgShape::Composite(attrs) => {
            let D::Struct(fields) = dt else {
                return Err("only a Struct becomes a composite".into());
            };
            let by_name: Option<Vec<usize>> = attrs
                .iter()
                .map(|(name, _)| fields.iter().position(|f| f.name() == name))
                .collect();
            let children = match by_name {
                Some(idx) if idx.len() == fields.len() => idx,
                _ if fields.len() == attrs.len() => (0..fields.len()).collect(),
                _ => {
                    return Err(format!(
                        "the struct's fields ({}) do not match the attributes ({})",
                        fields
                            .iter()
                            .map(|f| f.name().as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                        attrs
                            .iter()
                            .map(|a| a.0.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
            };
            let mut out = Vec::with_capacity(attrs.len());
            for ((name, ty), child) in attrs.iter().zip(children) {
                let node = node_for(fields[child].data_type(), ty, version)
                    .map_err(|why| format!("attribute {name}: {why}"))?;
                out.push((ty.oid, child, node));
            }
            Ok(Node::Composite(out))
        }
        PgShape::Vector => {
            let dims = usize::try_from(pg.typmod).ok().filter(|&d| d > 0);
            match (dt, list_child(dt)) {
                (D::FixedSizeList(_, n), _) if dims.is_some_and(|d| d != *n as usize) => Err(
                    format!("a vector of {n} dimensions does not fit {}", pg.name),
                ),
                (_, Some(D::Float16 | D::Float32 | D::Float64)) => Ok(Node::Vector { dims }),
                _ => Err("only a list of floats becomes a vector".into()),
            }
        }
        PgShape::Scalar => scalar_node(dt, pg, version),
    }
}

fn scalar_node(dt: &DataType, pg: &PgType, version: u32) -> std::result::Result<Node, String> {
    use DataType as D;
    let to = |o: u32| match o {
        oid::INT2 => NumTo::Int2,
        oid::INT4 => NumTo::Int4,
        oid::INT8 => NumTo::Int8,
        oid::FLOAT4 => NumTo::Float4,
        _ => NumTo::Float8,
    };
    let o = pg.base_oid;
    Ok(match (dt, o) {
        (D::Boolean, oid::BOOL) => Node::Bool,
        (d, oid::INT2 | oid::INT4 | oid::INT8 | oid::FLOAT4 | oid::FLOAT8) if is_int(d) => {
            Node::Int(to(o))
        }
        (D::Float32 | D::Float64, oid::FLOAT4 | oid::FLOAT8) => Node::Float(to(o)),
        (d, oid::NUMERIC)
            if is_int(d)
                || is_str(d)
                || matches!(
                    d,
                    D::Float32 | D::Float64 | D::Decimal128(..) | D::Decimal256(..)
                ) =>
        {
            Node::Numeric(NumericTarget::new(pg.typmod, version))
        }
        (d, oid::TEXT | oid::VARCHAR | oid::BPCHAR) if is_str(d) => Node::Text {
            max_chars: (pg.typmod >= 4).then(|| (pg.typmod - 4) as usize),
        },
        (d, oid::NAME) if is_str(d) => Node::Name,
        (d, oid::JSON | oid::JSONB) if is_str(d) => Node::Json {
            jsonb: o == oid::JSONB,
            document: true,
        },
        (d, oid::JSON | oid::JSONB) if json::supported(d) => Node::Json {
            jsonb: o == oid::JSONB,
            document: false,
        },
        (D::FixedSizeBinary(16), oid::UUID) => Node::Uuid,
        (d, oid::UUID) if is_str(d) || matches!(d, D::Binary | D::LargeBinary | D::BinaryView) => {
            Node::Uuid
        }
        (d, oid::INET | oid::CIDR) if is_str(d) => Node::Inet {
            cidr: o == oid::CIDR,
        },
        (d, oid::BYTEA) if is_bin(d) => Node::Bytea,
        (D::Date32 | D::Date64, oid::DATE) => Node::Date,
        (d, oid::DATE) if is_str(d) => Node::Date,
        (D::Timestamp(..), oid::TIMESTAMP | oid::TIMESTAMPTZ) => {
            Node::Timestamp { keep_offset: true }
        }
        (d, oid::TIMESTAMP | oid::TIMESTAMPTZ) if is_str(d) => Node::Timestamp {
            keep_offset: o == oid::TIMESTAMPTZ,
        },
        (D::Time32(_) | D::Time64(_), oid::TIME) => Node::Time,
        (d, oid::TIME) if is_str(d) => Node::Time,
        (D::Interval(_) | D::Duration(_), oid::INTERVAL) => Node::Interval,
        (d, _) if is_str(d) => {
            return Err(
                "strings are parsed only into text types, json(b), uuid, inet, cidr, numeric, \
                 date, time and timestamp(tz)"
                    .into(),
            );
        }
        (D::Float32 | D::Float64, oid::INT2 | oid::INT4 | oid::INT8) => {
            return Err("a float into an integer column would round".into());
        }
        (d, oid::INT2 | oid::INT4 | oid::INT8 | oid::FLOAT4 | oid::FLOAT8 | oid::NUMERIC)
            if d.is_numeric() =>
        {
            return Err("no exact conversion".into());
        }
        (d, _) if !json::supported(d) && o == oid::JSONB => {
            return Err("this Arrow type has no JSON form".into());
        }
        _ => return Err("no encoding between these types".into()),
    })
}

/// Whether value `i` is NULL (an Arrow `Null` array has no validity buffer, yet is all NULL).
#[inline]
fn null_at(array: &dyn Array, i: usize) -> bool {
    array.is_null(i) || array.data_type() == &DataType::Null
}

/// Any integer array's value at `i`.
fn int_at(a: &dyn Array, i: usize) -> i128 {
    match a.data_type() {
        DataType::Int8 => a.as_primitive::<Int8Type>().value(i).wide(),
        DataType::Int16 => a.as_primitive::<Int16Type>().value(i).wide(),
        DataType::Int32 => a.as_primitive::<Int32Type>().value(i).wide(),
        DataType::Int64 => a.as_primitive::<Int64Type>().value(i).wide(),
        DataType::UInt8 => a.as_primitive::<UInt8Type>().value(i).wide(),
        DataType::UInt16 => a.as_primitive::<UInt16Type>().value(i).wide(),
        DataType::UInt32 => a.as_primitive::<UInt32Type>().value(i).wide(),
        _ => a.as_primitive::<UInt64Type>().value(i).wide(),
    }
}

fn str_at(array: &dyn Array, i: usize) -> &str {
    match array.data_type() {
        DataType::LargeUtf8 => array.as_string::<i64>().value(i),
        DataType::Utf8View => array.as_string_view().value(i),
        _ => array.as_string::<i32>().value(i),
    }
}

fn bytes_at(array: &dyn Array, i: usize) -> &[u8] {
    match array.data_type() {
        DataType::LargeBinary => array.as_binary::<i64>().value(i),
        DataType::BinaryView => array.as_binary_view().value(i),
        DataType::FixedSizeBinary(_) => array.as_fixed_size_binary().value(i),
        _ => array.as_binary::<i32>().value(i),
    }
}

/// A timestamp array's raw value at `i`, in its own unit.
fn timestamp_raw(a: &dyn Array, unit: TimeUnit, i: usize) -> i64 {
    match unit {
        TimeUnit::Second => a.as_primitive::<TimestampSecondType>().value(i),
        TimeUnit::Millisecond => a.as_primitive::<TimestampMillisecondType>().value(i),
        TimeUnit::Microsecond => a.as_primitive::<TimestampMicrosecondType>().value(i),
        TimeUnit::Nanosecond => a.as_primitive::<TimestampNanosecondType>().value(i),
    }
}

/// A Time32/Time64 value as µs since midnight, and whether digits were dropped.
fn time_us(a: &dyn Array, i: usize) -> Option<(i64, bool)> {
    let (v, unit) = match a.data_type() {
        DataType::Time32(TimeUnit::Second) => (
            i64::from(a.as_primitive::<Time32SecondType>().value(i)),
            TimeUnit::Second,
        ),
        DataType::Time32(_) => (
            i64::from(a.as_primitive::<Time32MillisecondType>().value(i)),
            TimeUnit::Millisecond,
        ),
        DataType::Time64(TimeUnit::Microsecond) => (
            a.as_primitive::<Time64MicrosecondType>().value(i),
            TimeUnit::Microsecond,
        ),
        _ => (
            a.as_primitive::<Time64NanosecondType>().value(i),
            TimeUnit::Nanosecond,
        ),
    };
    temporal::to_us(v, unit, true)
}

/// An Interval/Duration value as (µs, days, months), and whether digits were dropped.
fn interval_parts(a: &dyn Array, i: usize) -> Option<((i64, i32, i32), bool)> {
    Some(match a.data_type() {
        DataType::Interval(IntervalUnit::MonthDayNano) => {
            let v = a.as_primitive::<IntervalMonthDayNanoType>().value(i);
            let (us, dropped) = temporal::to_us(v.nanoseconds, TimeUnit::Nanosecond, false)?;
            ((us, v.days, v.months), dropped)
        }
        DataType::Interval(IntervalUnit::DayTime) => {
            let v = a.as_primitive::<IntervalDayTimeType>().value(i);
            ((i64::from(v.milliseconds) * 1_000, v.days, 0), false)
        }
        DataType::Interval(IntervalUnit::YearMonth) => (
            (0, 0, a.as_primitive::<IntervalYearMonthType>().value(i)),
            false,
        ),
        DataType::Duration(unit) => {
            let v = match unit {
                TimeUnit::Second => a.as_primitive::<DurationSecondType>().value(i),
                TimeUnit::Millisecond => a.as_primitive::<DurationMillisecondType>().value(i),
                TimeUnit::Microsecond => a.as_primitive::<DurationMicrosecondType>().value(i),
                TimeUnit::Nanosecond => a.as_primitive::<DurationNanosecondType>().value(i),
            };
            let (us, dropped) = temporal::to_us(v, *unit, false)?;
            ((us, 0, 0), dropped)
        }
        _ => return None,
    })
}

/// Appends value `i` of `a` (not NULL) as `node`'s binary format. `truncated` counts dropped
/// sub-microsecond digits.
fn append(
    node: &Node,
    a: &dyn Array,
    i: usize,
    out: &mut Vec<u8>,
    truncated: &mut u64,
) -> std::result::Result<(), String> {
    use DataType as D;
    let mut fixed = [0u8; 8];
    match node {
        Node::Null => {}
        Node::Bool => out.push(u8::from(a.as_boolean().value(i))),
        Node::Int(to) => {
            let n = numeric::int_bytes(int_at(a, i), *to, &mut fixed)?;
            out.extend_from_slice(&fixed[..n]);
        }
        Node::Float(to) => {
            let v = match a.data_type() {
                D::Float32 => f64::from(a.as_primitive::<Float32Type>().value(i)),
                _ => a.as_primitive::<Float64Type>().value(i),
            };
            let n = numeric::float_bytes(v, *to, &mut fixed)?;
            out.extend_from_slice(&fixed[..n]);
        }
        Node::Numeric(t) => match a.data_type() {
            D::Float32 => numeric::put_float(
                out,
                f64::from(a.as_primitive::<Float32Type>().value(i)),
                true,
                *t,
            )?,
            D::Float64 => {
                numeric::put_float(out, a.as_primitive::<Float64Type>().value(i), false, *t)?
            }
            D::Decimal128(_, s) => {
                numeric::put_decimal128(out, a.as_primitive::<Decimal128Type>().value(i), *s, *t)?
            }
            D::Decimal256(_, s) => {
                numeric::put_decimal256(out, a.as_primitive::<Decimal256Type>().value(i), *s, *t)?
            }
            d if is_str(d) => numeric::put_decimal_str(out, str_at(a, i), *t)?,
            _ => numeric::put_int(out, int_at(a, i), *t)?,
        },
        Node::Text { max_chars } => {
            let s = str_at(a, i);
            text::check_text(s, *max_chars)?;
            out.extend_from_slice(s.as_bytes());
        }
        Node::Name => {
            let s = str_at(a, i);
            text::check_name(s)?;
            out.extend_from_slice(s.as_bytes());
        }
        Node::Json { jsonb, document } => {
            if *jsonb {
                out.push(1);
            }
            if *document {
                let s = str_at(a, i);
                text::check_json(s, *jsonb)?;
                out.extend_from_slice(s.as_bytes());
            } else {
                json::write_json(a, i, out, *jsonb)?;
            }
        }
        Node::Uuid => {
            if is_str(a.data_type()) {
                let s = str_at(a, i);
                let u = text::parse_uuid(s).ok_or_else(|| format!("{s:?} is not a UUID"))?;
                out.extend_from_slice(&u);
            } else {
                let b = bytes_at(a, i);
                if b.len() != 16 {
                    return Err(format!("{} bytes are not a UUID (16 bytes)", b.len()));
                }
                out.extend_from_slice(b);
            }
        }
        Node::Inet { cidr } => text::put_inet(out, str_at(a, i), *cidr)?,
        Node::Bytea => out.extend_from_slice(bytes_at(a, i)),
        Node::Date => {
            let days = match a.data_type() {
                D::Date32 => i64::from(a.as_primitive::<Date32Type>().value(i)),
                D::Date64 => {
                    let ms = a.as_primitive::<Date64Type>().value(i);
                    if ms.rem_euclid(86_400_000) != 0 {
                        *truncated += 1;
                    }
                    ms.div_euclid(86_400_000)
                }
                _ => temporal::parse_date(str_at(a, i))?,
            };
            out.extend_from_slice(&temporal::date(days)?.to_be_bytes());
        }
        Node::Timestamp { keep_offset } => {
            let (us, dropped) = match a.data_type() {
                D::Timestamp(unit, _) => {
                    temporal::to_us(timestamp_raw(a, *unit, i), *unit, true)
                        .ok_or("timestamp outside PostgreSQL's range (4713 BC to 294276 AD)")?
                }
                _ => temporal::parse_timestamp(str_at(a, i), *keep_offset)?,
            };
            *truncated += u64::from(dropped);
            out.extend_from_slice(&temporal::timestamp(us)?.to_be_bytes());
        }
        Node::Time => {
            let (us, dropped) = if is_str(a.data_type()) {
                temporal::parse_time(str_at(a, i))?
            } else {
                time_us(a, i).ok_or("time out of range")?
            };
            *truncated += u64::from(dropped);
            out.extend_from_slice(&temporal::time(us)?.to_be_bytes());
        }
        Node::Interval => {
            let ((us, days, months), dropped) =
                interval_parts(a, i).ok_or("duration out of PostgreSQL's interval range")?;
            *truncated += u64::from(dropped);
            out.extend_from_slice(&temporal::interval(us, days, months));
        }
        Node::Array {
            elem_oid,
            dims,
            elem,
        } => nested::put_array(*elem_oid, *dims, elem, a, i, out, truncated)?,
        Node::Composite(fields) => nested::put_record(fields, a, i, out, truncated)?,
        Node::Vector { dims } => nested::put_vector(*dims, a, i, out)?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{
        BooleanArray, FixedSizeBinaryArray, Int32Array, Int64Array, StringArray,
        TimestampMillisecondArray,
    };
    use arrow::datatypes::{Field, Schema};

    use super::*;
    use crate::yugabyte::types::TargetColumn;

    fn target(cols: &[(&str, u32, bool)]) -> TargetTable {
        TargetTable {
            schema: "public".into(),
            name: "t".into(),
            columns: cols
                .iter()
                .map(|&(name, type_oid, not_null)| TargetColumn {
                    name: name.into(),
                    ty: PgType::scalar(type_oid, &format!("oid{type_oid}")),
                    not_null,
                    has_default: false,
                })
                .collect(),
            server_version: 150_000,
        }
    }

    fn batch(fields: Vec<(Field, ArrayRef)>) -> RecordBatch {
        let (fields, arrays): (Vec<_>, Vec<_>) = fields.into_iter().unzip();
        RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).expect("valid batch")
    }

    #[test]
    fn header_and_trailer_are_pgcopy() {
        assert_eq!(COPY_HEADER.len(), 19);
        assert_eq!(&COPY_HEADER[..11], b"PGCOPY\n\xff\r\n\0");
    }

    #[test]
    fn rows_are_byte_exact() {
        let b = batch(vec![
            (
                Field::new("id", DataType::Int32, false),
                Arc::new(Int32Array::from(vec![1, 2])) as ArrayRef,
            ),
            (
                Field::new("name", DataType::Utf8, true),
                Arc::new(StringArray::from(vec![Some("ab"), None])),
            ),
        ]);
        let t = target(&[("id", oid::INT8, true), ("name", oid::TEXT, false)]);
        let enc = CopyEncoder::try_new(&b.schema(), &t).expect("compatible");
        assert_eq!(
            enc.copy_sql(),
            "COPY \"public\".\"t\" (\"id\", \"name\") FROM STDIN (FORMAT binary)"
        );
        let out = enc.encode(&b);
        assert_eq!(out.rows, 2);
        let bytes: Vec<u8> = out.chunks.concat();
        #[rustfmt::skip]
        let expected: Vec<u8> = vec![
            0, 2, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, b'a', b'b',
            0, 2, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 2, 0xff, 0xff, 0xff, 0xff,
        ];
        assert_eq!(bytes, expected);
    }

    #[test]
    fn timestamps_shift_to_the_2000_epoch_in_microseconds() {
        let b = batch(vec![
            (
                Field::new(
                    "ts",
                    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
                    true,
                ),
                Arc::new(
                    TimestampMillisecondArray::from(vec![946_684_800_001]).with_timezone("UTC"),
                ) as ArrayRef,
            ),
            (
                Field::new("ok", DataType::Boolean, true),
                Arc::new(BooleanArray::from(vec![true])),
            ),
            (
                Field::new("u", DataType::FixedSizeBinary(16), true),
                Arc::new(
                    FixedSizeBinaryArray::try_from_iter(std::iter::once([7u8; 16])).expect("valid"),
                ),
            ),
        ]);
        let t = target(&[
            ("ts", oid::TIMESTAMPTZ, false),
            ("ok", oid::BOOL, false),
            ("u", oid::UUID, false),
        ]);
        let bytes = CopyEncoder::try_new(&b.schema(), &t)
            .expect("compatible")
            .encode(&b)
            .chunks
            .concat();
        let mut expected = vec![0, 3, 0, 0, 0, 8];
        expected.extend(1000i64.to_be_bytes());
        expected.extend([0, 0, 0, 1, 1, 0, 0, 0, 16]);
        expected.extend([7u8; 16]);
        assert_eq!(bytes, expected);
    }

    #[test]
    fn bad_values_are_rejected_and_the_rest_kept() {
        let b = batch(vec![
            (
                Field::new("n", DataType::Int64, true),
                Arc::new(Int64Array::from(vec![1, 70_000, 3])) as ArrayRef,
            ),
            (
                Field::new("s", DataType::Utf8, true),
                Arc::new(StringArray::from(vec!["a\0b", "ok", "ok"])),
            ),
        ]);
        let t = target(&[("n", oid::INT2, false), ("s", oid::TEXT, false)]);
        let out = CopyEncoder::try_new(&b.schema(), &t)
            .expect("compatible")
            .encode(&b);
        assert_eq!(out.rows, 1);
        let reasons: Vec<(usize, &str)> = out
            .rejects
            .iter()
            .map(|r| (r.row, r.column.as_str()))
            .collect();
        assert_eq!(reasons, vec![(0, "s"), (1, "n")]);
        assert!(out.rejects[0].reason.contains("NUL"));
    }

    #[test]
    fn incompatible_columns_are_all_listed() {
        let b = batch(vec![
            (
                Field::new("a", DataType::Boolean, true),
                Arc::new(BooleanArray::from(vec![true])) as ArrayRef,
            ),
            (
                Field::new("extra", DataType::Int32, true),
                Arc::new(Int32Array::from(vec![1])),
            ),
        ]);
        let t = target(&[("a", oid::INT4, false), ("required", oid::TEXT, true)]);
        let err = CopyEncoder::try_new(&b.schema(), &t).expect_err("incompatible");
        let msg = err.to_string();
        assert!(msg.contains("3 column(s)"), "{msg}");
        assert!(
            msg.contains("a: Boolean cannot be written to oid23"),
            "{msg}"
        );
        assert!(msg.contains("extra: not a column"), "{msg}");
        assert!(msg.contains("required: NOT NULL column"), "{msg}");
    }

    /// Encodes a one-column batch into a column of type `ty`; the fields of each row, without
    /// the field count.
    /// `public.t` with one nullable column `c` of type `ty`.
    fn one_column(ty: PgType) -> TargetTable {
        TargetTable {
            schema: "public".into(),
            name: "t".into(),
            columns: vec![TargetColumn {
                name: "c".into(),
                ty,
                not_null: false,
                has_default: false,
            }],
            server_version: 150_000,
        }
    }

    fn fields(array: ArrayRef, ty: PgType) -> (Vec<Vec<u8>>, EncodedBatch) {
        let b = batch(vec![(
            Field::new("c", array.data_type().clone(), true),
            array,
        )]);
        let out = CopyEncoder::try_new(&b.schema(), &one_column(ty))
            .expect("compatible")
            .encode(&b);
        let bytes = out.chunks.concat();
        let mut rows = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            assert_eq!(&bytes[at..at + 2], &[0, 1]);
            let len = i32::from_be_bytes(bytes[at + 2..at + 6].try_into().expect("4 bytes"));
            let end = at + 6 + len.max(0) as usize;
            rows.push(bytes[at + 2..end].to_vec());
            at = end;
        }
        (rows, out)
    }

    fn be(parts: &[i32]) -> Vec<u8> {
        parts.iter().flat_map(|p| p.to_be_bytes()).collect()
    }

    fn int_list(rows: Vec<Option<Vec<Option<i32>>>>) -> ArrayRef {
        Arc::new(arrow::array::ListArray::from_iter_primitive::<
            Int32Type,
            _,
            _,
        >(rows))
    }

    #[test]
    fn lists_become_arrays_with_null_elements() {
        let ty = PgType::array(1007, PgType::scalar(oid::INT4, "integer"));
        let (rows, _) = fields(
            int_list(vec![Some(vec![Some(1), None, Some(3)]), Some(vec![]), None]),
            ty,
        );
        let mut expected = be(&[40, 1, 1, 23, 3, 1, 4, 1, -1, 4, 3]);
        assert_eq!(rows[0], expected);
        expected = be(&[12, 0, 0, 23]);
        assert_eq!(rows[1], expected);
        assert_eq!(rows[2], be(&[-1]));
    }

    #[test]
    fn nested_lists_become_dimensions_when_rectangular() {
        let inner = Arc::new(Field::new("item", DataType::Int32, true));
        let lists = |rows: Vec<Vec<Vec<i32>>>| -> ArrayRef {
            let mut b = arrow::array::ListBuilder::new(arrow::array::ListBuilder::new(
                arrow::array::Int32Builder::new(),
            ));
            for row in rows {
                for sub in row {
                    b.values().values().append_slice(&sub);
                    b.values().append(true);
                }
                b.append(true);
            }
            let a = b.finish();
            assert_eq!(
                a.data_type(),
                &DataType::List(Arc::new(Field::new(
                    "item",
                    DataType::List(inner.clone()),
                    true
                )))
            );
            Arc::new(a)
        };
        let ty = PgType::array(1007, PgType::scalar(oid::INT4, "integer"));
        let (rows, out) = fields(
            lists(vec![
                vec![vec![1, 2], vec![3, 4]],
                vec![vec![1], vec![2, 3]],
            ]),
            ty,
        );
        assert_eq!(
            rows[0],
            be(&[60, 2, 0, 23, 2, 1, 2, 1, 4, 1, 4, 2, 4, 3, 4, 4])
        );
        assert_eq!(out.rejects.len(), 1);
        assert!(
            out.rejects[0].reason.contains("rectangular"),
            "{:?}",
            out.rejects
        );
    }

    #[test]
    fn vectors_become_real_arrays() {
        let values = arrow::array::Float32Array::from(vec![1.0, 2.0]);
        let a = arrow::array::FixedSizeListArray::try_new(
            Arc::new(Field::new("item", DataType::Float32, true)),
            2,
            Arc::new(values),
            None,
        )
        .expect("valid");
        let (rows, _) = fields(
            Arc::new(a),
            PgType::array(1021, PgType::scalar(oid::FLOAT4, "real")),
        );
        let mut expected = be(&[36, 1, 0, 700, 2, 1, 4]);
        expected.extend(1.0f32.to_be_bytes());
        expected.extend(4i32.to_be_bytes());
        expected.extend(2.0f32.to_be_bytes());
        assert_eq!(rows[0], expected);
    }

    fn pgvector(dims: i32) -> PgType {
        PgType {
            oid: 16_385,
            base_oid: 16_385,
            typmod: dims,
            name: format!("vector({dims})"),
            shape: PgShape::Vector,
        }
    }

    #[test]
    fn float_lists_become_pgvector_vectors_and_bad_elements_rejects() {
        // Rows: a good vector, one with NaN, one with a NULL element, a NULL vector, 2 dimensions.
        let values = arrow::array::Float32Array::from(vec![
            Some(1.5),
            Some(-2.0),
            Some(3.0),
            Some(f32::NAN),
            Some(0.0),
            Some(0.0),
            Some(1.0),
            None,
            Some(1.0),
            Some(0.0),
            Some(0.0),
            Some(0.0),
            Some(1.0),
            Some(2.0),
        ]);
        let a = arrow::array::ListArray::try_new(
            Arc::new(Field::new("item", DataType::Float32, true)),
            arrow::buffer::OffsetBuffer::new(vec![0, 3, 6, 9, 12, 14].into()),
            Arc::new(values),
            Some(vec![true, true, true, false, true].into()),
        )
        .expect("valid");
        let (rows, out) = fields(Arc::new(a), pgvector(3));
        let mut expected = 16i32.to_be_bytes().to_vec();
        expected.extend([0, 3, 0, 0]);
        for x in [1.5f32, -2.0, 3.0] {
            expected.extend(x.to_be_bytes());
        }
        assert_eq!(rows, vec![expected, (-1i32).to_be_bytes().to_vec()]);
        let reasons: Vec<(usize, &str)> = out
            .rejects
            .iter()
            .map(|r| (r.row, r.reason.as_str()))
            .collect();
        assert_eq!(reasons.len(), 3, "{reasons:?}");
        assert!(
            reasons[0].0 == 1 && reasons[0].1.contains("NaN"),
            "{reasons:?}"
        );
        assert!(
            reasons[1].0 == 2 && reasons[1].1.contains("NULL"),
            "{reasons:?}"
        );
        assert!(
            reasons[2].0 == 4 && reasons[2].1.contains("2 dimensions into vector(3)"),
            "{reasons:?}"
        );
    }

    #[test]
    fn a_vector_of_another_dimension_or_type_is_refused_at_plan_time() {
        let list = |n: i32, dt: DataType| {
            Field::new(
                "c",
                DataType::FixedSizeList(Arc::new(Field::new("item", dt, true)), n),
                true,
            )
        };
        let check = |field: Field, ty: PgType| {
            CopyEncoder::try_new(&Arc::new(Schema::new(vec![field])), &one_column(ty))
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        assert_eq!(check(list(3, DataType::Float32), pgvector(3)), Ok(()));
        assert_eq!(check(list(4, DataType::Float64), pgvector(-1)), Ok(()));
        let err = check(list(4, DataType::Float32), pgvector(3)).expect_err("4 into 3");
        assert!(err.contains("4 dimensions does not fit vector(3)"), "{err}");
        let err = check(list(3, DataType::Utf8), pgvector(3)).expect_err("text");
        assert!(
            err.contains("only a list of floats becomes a vector"),
            "{err}"
        );
    }

    #[test]
    fn structs_become_composites_with_attribute_oids() {
        let a = arrow::array::StructArray::from(vec![
            (
                Arc::new(Field::new("b", DataType::Utf8, true)),
                Arc::new(StringArray::from(vec![Some("x")])) as ArrayRef,
            ),
            (
                Arc::new(Field::new("a", DataType::Int32, true)),
                Arc::new(Int32Array::from(vec![None])) as ArrayRef,
            ),
        ]);
        let ty = PgType {
            oid: 90_000,
            base_oid: 90_000,
            typmod: -1,
            name: "pair".into(),
            shape: PgShape::Composite(vec![
                ("a".into(), PgType::scalar(oid::INT4, "integer")),
                ("b".into(), PgType::scalar(oid::TEXT, "text")),
            ]),
        };
        let (rows, _) = fields(Arc::new(a), ty);
        let mut expected = be(&[21, 2, 23, -1, 25, 1]);
        expected.push(b'x');
        assert_eq!(rows[0], expected);
    }

    #[test]
    fn maps_and_structs_serialize_to_jsonb() {
        let mut b = arrow::array::MapBuilder::new(
            None,
            arrow::array::StringBuilder::new(),
            arrow::array::Int32Builder::new(),
        );
        b.keys().append_value("k\"");
        b.values().append_value(1);
        b.keys().append_value("n");
        b.values().append_null();
        b.append(true).expect("map");
        let (rows, _) = fields(Arc::new(b.finish()), PgType::scalar(oid::JSONB, "jsonb"));
        let mut expected = be(&[19]);
        expected.push(1);
        expected.extend(br#"{"k\"":1,"n":null}"#);
        assert_eq!(rows[0], expected);
    }

    #[test]
    fn strings_parse_into_their_targets() {
        let s = |v: &str| Arc::new(StringArray::from(vec![v])) as ArrayRef;
        let (rows, _) = fields(s("-12.5"), PgType::scalar(oid::NUMERIC, "numeric"));
        assert_eq!(
            rows[0],
            [0, 0, 0, 12, 0, 2, 0, 0, 0x40, 0, 0, 1, 0, 12, 0x13, 0x88]
        );
        let (rows, _) = fields(s("2000-01-02"), PgType::scalar(oid::DATE, "date"));
        assert_eq!(rows[0], be(&[4, 1]));
        let (rows, _) = fields(s("[1, {\"a\": null}]"), PgType::scalar(oid::JSON, "json"));
        assert_eq!(&rows[0][4..], b"[1, {\"a\": null}]");
        let (rows, _) = fields(s("::1"), PgType::scalar(oid::INET, "inet"));
        assert_eq!(rows[0][..8], [0, 0, 0, 20, 3, 128, 0, 16]);
        let (rows, out) = fields(s("nope"), PgType::scalar(oid::UUID, "uuid"));
        assert!(rows.is_empty());
        assert!(out.rejects[0].reason.contains("not a UUID"));
    }

    #[test]
    fn decimals_dictionaries_and_half_floats_are_read_through_casts() {
        let d = arrow::array::Decimal128Array::from(vec![-1250])
            .with_precision_and_scale(10, 3)
            .expect("valid");
        let (rows, _) = fields(Arc::new(d), PgType::scalar(oid::NUMERIC, "numeric"));
        // -1.250 = −(1 + 2500/10000): two digits, weight 0, dscale 3.
        assert_eq!(
            rows[0],
            [0, 0, 0, 12, 0, 2, 0, 0, 0x40, 0, 0, 3, 0, 1, 0x09, 0xc4]
        );
        let d32 = arrow::array::Decimal32Array::from(vec![5])
            .with_precision_and_scale(5, 1)
            .expect("valid");
        let (rows, _) = fields(Arc::new(d32), PgType::scalar(oid::NUMERIC, "numeric"));
        assert_eq!(
            rows[0],
            [0, 0, 0, 10, 0, 1, 0xff, 0xff, 0, 0, 0, 1, 0x13, 0x88]
        );
        let dict: arrow::array::DictionaryArray<Int32Type> =
            vec!["a", "b", "a"].into_iter().collect();
        let (rows, _) = fields(Arc::new(dict), PgType::scalar(oid::TEXT, "text"));
        assert_eq!(rows[2], [0, 0, 0, 1, b'a']);
        let h = arrow::compute::cast(
            &arrow::array::Float32Array::from(vec![1.5]),
            &DataType::Float16,
        )
        .expect("cast");
        let (rows, _) = fields(h, PgType::scalar(oid::FLOAT4, "real"));
        assert_eq!(&rows[0][4..], 1.5f32.to_be_bytes());
    }

    #[test]
    fn temporal_values_are_byte_exact_and_truncations_counted() {
        let iv = arrow::array::IntervalMonthDayNanoArray::from(vec![IntervalMonthDayNano::new(
            1, 2, 3_000_500,
        )]);
        let (rows, out) = fields(Arc::new(iv), PgType::scalar(oid::INTERVAL, "interval"));
        let mut expected = be(&[16]);
        expected.extend(3000i64.to_be_bytes());
        expected.extend(be(&[2, 1]));
        assert_eq!(rows[0], expected);
        assert_eq!(out.truncated, 1);
        let t = arrow::array::Time64NanosecondArray::from(vec![1_000_000_000]);
        let (rows, out) = fields(Arc::new(t), PgType::scalar(oid::TIME, "time"));
        assert_eq!(&rows[0][4..], 1_000_000i64.to_be_bytes());
        assert_eq!(out.truncated, 0);
        let d = arrow::array::DurationSecondArray::from(vec![-90]);
        let (rows, _) = fields(Arc::new(d), PgType::scalar(oid::INTERVAL, "interval"));
        assert_eq!(&rows[0][4..12], (-90_000_000i64).to_be_bytes());
        let d64 = arrow::array::Date64Array::from(vec![86_400_000 * 10_958]);
        let (rows, _) = fields(Arc::new(d64), PgType::scalar(oid::DATE, "date"));
        assert_eq!(rows[0], be(&[4, 1]));
        let d32 = arrow::array::Date32Array::from(vec![i32::MAX]);
        let (_, out) = fields(Arc::new(d32), PgType::scalar(oid::DATE, "date"));
        assert!(out.rejects[0].reason.contains("range"));
    }

    #[test]
    fn reject_classes_name_the_kind_of_every_encoder_reason() {
        let class = |array: ArrayRef, ty: PgType| {
            let (_, out) = fields(array, ty);
            assert_eq!(out.rejects.len(), 1, "{:?}", out.rejects);
            out.rejects[0].class()
        };
        let s = |v: &str| Arc::new(StringArray::from(vec![v])) as ArrayRef;
        let cases: Vec<(ArrayRef, PgType, &str)> = vec![
            (
                s("a\0b"),
                PgType::scalar(oid::TEXT, "text"),
                "nul_character",
            ),
            (
                Arc::new(Int64Array::from(vec![70_000])),
                PgType::scalar(oid::INT2, "smallint"),
                "out_of_range",
            ),
            (
                Arc::new(arrow::array::Date32Array::from(vec![i32::MAX])),
                PgType::scalar(oid::DATE, "date"),
                "out_of_range",
            ),
            (
                Arc::new(arrow::array::Float64Array::from(vec![0.1])),
                PgType::scalar(oid::FLOAT4, "real"),
                "inexact",
            ),
            (
                s("abcd"),
                PgType {
                    typmod: 3 + 4,
                    ..PgType::scalar(oid::VARCHAR, "character varying(3)")
                },
                "too_long",
            ),
            (s("nope"), PgType::scalar(oid::UUID, "uuid"), "invalid_text"),
            (s("{"), PgType::scalar(oid::JSONB, "jsonb"), "invalid_text"),
            // The value is skipped before matching: this is a bad number, not a NUL.
            (
                s("NUL byte \" out of range"),
                PgType::scalar(oid::NUMERIC, "numeric"),
                "invalid_text",
            ),
            (
                int_list_2d(),
                PgType::array(1007, PgType::scalar(oid::INT4, "integer")),
                "not_rectangular",
            ),
        ];
        for (array, ty, kind) in cases {
            let name = ty.name.clone();
            assert_eq!(class(array, ty), format!("encoder:{kind}"), "into {name}");
        }
        let refused = Reject {
            row: 0,
            column: String::new(),
            reason: "the target refused the row: duplicate key (SQLSTATE 23505)".into(),
            sqlstate: Some("23505".into()),
        };
        assert_eq!(refused.class(), "target:23505");
    }

    /// One ragged two-dimensional list: `[[1], [1, 2]]`.
    fn int_list_2d() -> ArrayRef {
        let inner = int_list(vec![Some(vec![Some(1)]), Some(vec![Some(1), Some(2)])]);
        let field = Arc::new(Field::new("item", inner.data_type().clone(), true));
        Arc::new(arrow::array::ListArray::new(
            field,
            arrow::buffer::OffsetBuffer::new(vec![0, 2].into()),
            inner,
            None,
        ))
    }

    #[test]
    fn unsigned_and_float_narrowing_is_checked() {
        let u = arrow::array::UInt64Array::from(vec![1, u64::MAX]);
        let (rows, out) = fields(Arc::new(u), PgType::scalar(oid::INT8, "bigint"));
        assert_eq!(rows.len(), 1);
        assert!(out.rejects[0].reason.contains("out of range"));
        let f = arrow::array::Float64Array::from(vec![0.5, 0.1]);
        let (rows, out) = fields(Arc::new(f), PgType::scalar(oid::FLOAT4, "real"));
        assert_eq!(&rows[0][4..], 0.5f32.to_be_bytes());
        assert_eq!(out.rejects.len(), 1);
    }

    #[test]
    fn incompatible_nested_types_explain_why() {
        let b = batch(vec![(
            Field::new(
                "l",
                DataType::List(Arc::new(Field::new("item", DataType::Float64, true))),
                true,
            ),
            Arc::new(arrow::array::new_empty_array(&DataType::List(Arc::new(
                Field::new("item", DataType::Float64, true),
            )))) as ArrayRef,
        )]);
        let mut t = target(&[]);
        t.columns.push(TargetColumn {
            name: "l".into(),
            ty: PgType::array(1007, PgType::scalar(oid::INT4, "integer")),
            not_null: false,
            has_default: false,
        });
        let msg = CopyEncoder::try_new(&b.schema(), &t)
            .expect_err("incompatible")
            .to_string();
        assert!(msg.contains("integer[]"), "{msg}");
        assert!(
            msg.contains("elements: a float into an integer column would round"),
            "{msg}"
        );
    }

    #[test]
    fn large_batches_are_encoded_in_parallel_chunks_in_order() {
        let n = CHUNK_ROWS * 3 + 5;
        let b = batch(vec![(
            Field::new("id", DataType::Int32, false),
            Arc::new(Int32Array::from_iter_values(0..n as i32)) as ArrayRef,
        )]);
        let t = target(&[("id", oid::INT4, true)]);
        let out = CopyEncoder::try_new(&b.schema(), &t)
            .expect("compatible")
            .encode(&b);
        assert_eq!(out.rows, n);
        let bytes = out.chunks.concat();
        assert_eq!(bytes.len(), n * 10);
        for (k, row) in bytes.chunks(10).enumerate() {
            assert_eq!(&row[6..], &(k as i32).to_be_bytes());
        }
    }
}
