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
//! then each column writes its value into every row's slot. Chunks of rows are encoded in
//! parallel on the rayon pool.

use std::ops::Range;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{
    DataType, Date32Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type,
    SchemaRef, TimeUnit,
};
use bytes::Bytes;
use rayon::prelude::*;

use super::types::{TargetTable, oid};
use crate::error::{ConnectorError, Result};

/// The 19-byte header of a binary COPY stream.
pub const COPY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// The trailer: a field count of -1.
pub const COPY_TRAILER: &[u8] = &[0xff, 0xff];

/// Rows per chunk encoded on one rayon task.
const CHUNK_ROWS: usize = 4096;

/// Microseconds between 1970-01-01 and PostgreSQL's epoch, 2000-01-01.
const PG_EPOCH_OFFSET_US: i64 = 946_684_800_000_000;
/// Days between 1970-01-01 and 2000-01-01.
const PG_EPOCH_OFFSET_DAYS: i32 = 10_957;
/// PostgreSQL's timestamp range, µs from 2000-01-01: [4713-11-24 BC, 294277-01-01).
const PG_MIN_TIMESTAMP: i64 = -211_813_488_000_000_000;
const PG_END_TIMESTAMP: i64 = 9_223_371_331_200_000_000;
/// PostgreSQL's date range, days from 2000-01-01: [4713-11-24 BC, 5874898-01-01).
const PG_MIN_DATE: i64 = -2_451_545;
const PG_END_DATE: i64 = 2_145_031_949;

/// A row that was not encoded, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Reject {
    /// Row index within the batch.
    pub row: usize,
    pub column: String,
    pub reason: String,
}

/// The COPY rows of one batch (no header or trailer), in chunks ready for the wire.
#[derive(Debug, Default)]
pub struct EncodedBatch {
    pub chunks: Vec<Bytes>,
    /// Rows encoded.
    pub rows: usize,
    /// Rows left out, with reasons.
    pub rejects: Vec<Reject>,
}

impl EncodedBatch {
    /// Bytes of COPY data.
    pub fn bytes(&self) -> usize {
        self.chunks.iter().map(Bytes::len).sum()
    }
}

/// How one Arrow column becomes one target column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bool,
    /// Any signed integer into int2/int4/int8 (`width` bytes), range-checked.
    Int {
        width: u8,
    },
    Float4,
    Float8,
    /// Float32 into float8: exact.
    Float4To8,
    /// Utf8 / LargeUtf8 / Utf8View into text, varchar, bpchar, name: the bytes, minus NULs.
    Text,
    /// FixedSizeBinary(16) into uuid.
    UuidBinary,
    /// A UUID string into uuid.
    UuidText,
    /// A timestamp into timestamp/timestamptz; `per_us` converts the Arrow unit.
    Timestamp {
        unit: TimeUnit,
    },
    Date,
    Bytea,
}

#[derive(Debug, Clone)]
struct ColumnPlan {
    /// Index of the column in the input batch.
    input: usize,
    name: String,
    kind: Kind,
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
            match kind_for(field.data_type(), col.type_oid) {
                Some(kind) => columns.push(ColumnPlan {
                    input,
                    name: field.name().clone(),
                    kind,
                }),
                None => problems.push(format!(
                    "  {}: {} cannot be written to {} (cast it in the transform)",
                    field.name(),
                    field.data_type(),
                    col.type_name
                )),
            }
        }
        for col in &target.columns {
            if col.not_null && !col.has_default && schema.field_with_name(&col.name).is_err() {
                problems.push(format!(
                    "  {}: NOT NULL column of {} ({}) missing from the output",
                    col.name,
                    target.qualified(),
                    col.type_name
                ));
            }
        }
        if !problems.is_empty() {
            return Err(ConnectorError::Incompatible {
                table: target.qualified(),
                problems,
            });
        }
        let names: Vec<String> = columns
            .iter()
            .map(|c| super::types::quote_ident(&c.name))
            .collect();
        let copy_sql = format!(
            "COPY {} ({}) FROM STDIN (FORMAT binary)",
            target.qualified(),
            names.join(", ")
        );
        Ok(Self {
            table: target.qualified(),
            columns: Arc::new(columns),
            copy_sql,
        })
    }

    /// The `COPY … FROM STDIN (FORMAT binary)` statement for this encoder's columns.
    pub fn copy_sql(&self) -> &str {
        &self.copy_sql
    }

    /// Encodes `batch` on the calling thread (chunks in parallel on the current rayon pool).
    pub fn encode(&self, batch: &RecordBatch) -> EncodedBatch {
        let n = batch.num_rows();
        let ranges: Vec<Range<usize>> = (0..n)
            .step_by(CHUNK_ROWS)
            .map(|s| s..(s + CHUNK_ROWS).min(n))
            .collect();
        let arrays: Vec<&ArrayRef> = self.columns.iter().map(|c| batch.column(c.input)).collect();
        let parts: Vec<(Vec<u8>, usize, Vec<Reject>)> = if ranges.len() > 1 {
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
        for (buf, rows, rejects) in parts {
            out.rows += rows;
            out.rejects.extend(rejects);
            if !buf.is_empty() {
                out.chunks.push(Bytes::from(buf));
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

    fn encode_chunk(
        &self,
        arrays: &[&ArrayRef],
        range: Range<usize>,
    ) -> (Vec<u8>, usize, Vec<Reject>) {
        let len = range.len();
        let mut widths = vec![2u32; len];
        let mut rejected = vec![false; len];
        let mut rejects = Vec::new();
        for (plan, array) in self.columns.iter().zip(arrays) {
            measure(plan, array, range.clone(), &mut widths, &mut |i, reason| {
                if !rejected[i] {
                    rejected[i] = true;
                    rejects.push(Reject {
                        row: range.start + i,
                        column: plan.name.clone(),
                        reason,
                    });
                }
            });
        }
        let mut cursors = vec![0usize; len];
        let mut total = 0usize;
        for i in 0..len {
            cursors[i] = total;
            if !rejected[i] {
                total += widths[i] as usize;
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
        for (plan, array) in self.columns.iter().zip(arrays) {
            write(
                plan.kind,
                array,
                range.clone(),
                &mut cursors,
                &mut buf,
                &rejected,
            );
        }
        rejects.sort_by_key(|r| r.row);
        let rows = len - rejects.len();
        (buf, rows, rejects)
    }

    /// The target table, quoted, for messages.
    pub fn table(&self) -> &str {
        &self.table
    }
}

fn kind_for(arrow: &DataType, target: u32) -> Option<Kind> {
    use DataType as D;
    Some(match (arrow, target) {
        (D::Boolean, oid::BOOL) => Kind::Bool,
        (D::Int8 | D::Int16 | D::Int32 | D::Int64, oid::INT2) => Kind::Int { width: 2 },
        (D::Int8 | D::Int16 | D::Int32 | D::Int64, oid::INT4) => Kind::Int { width: 4 },
        (D::Int8 | D::Int16 | D::Int32 | D::Int64, oid::INT8) => Kind::Int { width: 8 },
        (D::Float32, oid::FLOAT4) => Kind::Float4,
        (D::Float32, oid::FLOAT8) => Kind::Float4To8,
        (D::Float64, oid::FLOAT8) => Kind::Float8,
        (
            D::Utf8 | D::LargeUtf8 | D::Utf8View,
            oid::TEXT | oid::VARCHAR | oid::BPCHAR | oid::NAME,
        ) => Kind::Text,
        (D::Utf8 | D::LargeUtf8 | D::Utf8View, oid::UUID) => Kind::UuidText,
        (D::FixedSizeBinary(16), oid::UUID) => Kind::UuidBinary,
        (D::Timestamp(unit, _), oid::TIMESTAMP | oid::TIMESTAMPTZ) => {
            Kind::Timestamp { unit: *unit }
        }
        (D::Date32, oid::DATE) => Kind::Date,
        (D::Binary | D::LargeBinary | D::BinaryView | D::FixedSizeBinary(_), oid::BYTEA) => {
            Kind::Bytea
        }
        _ => return None,
    })
}

/// A signed integer column's value at `i`, widened to i64.
fn int_at(array: &dyn Array, i: usize) -> i64 {
    match array.data_type() {
        DataType::Int8 => i64::from(array.as_primitive::<Int8Type>().value(i)),
        DataType::Int16 => i64::from(array.as_primitive::<Int16Type>().value(i)),
        DataType::Int32 => i64::from(array.as_primitive::<Int32Type>().value(i)),
        _ => array.as_primitive::<Int64Type>().value(i),
    }
}

fn timestamp_us(array: &dyn Array, unit: TimeUnit, i: usize) -> Option<i64> {
    use arrow::datatypes::{
        TimestampMicrosecondType as Us, TimestampMillisecondType as Ms,
        TimestampNanosecondType as Ns, TimestampSecondType as S,
    };
    let us = match unit {
        TimeUnit::Second => array.as_primitive::<S>().value(i).checked_mul(1_000_000)?,
        TimeUnit::Millisecond => array.as_primitive::<Ms>().value(i).checked_mul(1_000)?,
        TimeUnit::Microsecond => array.as_primitive::<Us>().value(i),
        TimeUnit::Nanosecond => array.as_primitive::<Ns>().value(i).div_euclid(1_000),
    };
    let pg = us.checked_sub(PG_EPOCH_OFFSET_US)?;
    (PG_MIN_TIMESTAMP..PG_END_TIMESTAMP)
        .contains(&pg)
        .then_some(pg)
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

/// Parses the 36-character hyphenated form (and the 32-digit bare form) into 16 bytes.
fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let mut out = [0u8; 16];
    let mut n = 0usize;
    let hex = s.as_bytes();
    if !(hex.len() == 36 || hex.len() == 32) {
        return None;
    }
    let mut i = 0;
    while i < hex.len() {
        if hex[i] == b'-' && hex.len() == 36 && matches!(i, 8 | 13 | 18 | 23) {
            i += 1;
            continue;
        }
        let hi = (hex[i] as char).to_digit(16)?;
        let lo = (*hex.get(i + 1)? as char).to_digit(16)?;
        *out.get_mut(n)? = (hi * 16 + lo) as u8;
        n += 1;
        i += 2;
    }
    (n == 16).then_some(out)
}

/// Adds each row's encoded width to `widths`, reporting values the target cannot hold.
fn measure(
    plan: &ColumnPlan,
    array: &ArrayRef,
    range: Range<usize>,
    widths: &mut [u32],
    reject: &mut dyn FnMut(usize, String),
) {
    let array = array.as_ref();
    for (slot, i) in range.enumerate() {
        if array.is_null(i) {
            widths[slot] += 4;
            continue;
        }
        let value_len: Result<usize, String> = match plan.kind {
            Kind::Bool => Ok(1),
            Kind::Int { width } => {
                let v = int_at(array, i);
                let fits = match width {
                    2 => i16::try_from(v).is_ok(),
                    4 => i32::try_from(v).is_ok(),
                    _ => true,
                };
                if fits {
                    Ok(usize::from(width))
                } else {
                    Err(format!("{v} is out of range for a {}-byte integer", width))
                }
            }
            Kind::Float4 => Ok(4),
            Kind::Float8 | Kind::Float4To8 => Ok(8),
            Kind::Text => {
                let s = str_at(array, i);
                if s.as_bytes().contains(&0) {
                    Err("text contains a NUL byte, which PostgreSQL cannot store".into())
                } else {
                    Ok(s.len())
                }
            }
            Kind::UuidBinary => Ok(16),
            Kind::UuidText => match parse_uuid(str_at(array, i)) {
                Some(_) => Ok(16),
                None => Err(format!("{:?} is not a UUID", str_at(array, i))),
            },
            Kind::Timestamp { unit } => match timestamp_us(array, unit, i) {
                Some(_) => Ok(8),
                None => Err("timestamp outside PostgreSQL's range (4713 BC to 294276 AD)".into()),
            },
            Kind::Date => {
                let days = i64::from(array.as_primitive::<Date32Type>().value(i))
                    - i64::from(PG_EPOCH_OFFSET_DAYS);
                if (PG_MIN_DATE..PG_END_DATE).contains(&days) {
                    Ok(4)
                } else {
                    Err("date outside PostgreSQL's range (4713 BC to 5874897 AD)".into())
                }
            }
            Kind::Bytea => Ok(bytes_at(array, i).len()),
        };
        match value_len {
            Ok(n) => match u32::try_from(n) {
                Ok(n) if n < (1 << 30) => widths[slot] += 4 + n,
                _ => reject(
                    slot,
                    "value larger than PostgreSQL's 1 GB field limit".into(),
                ),
            },
            Err(reason) => reject(slot, reason),
        }
    }
}

#[inline]
fn put(buf: &mut [u8], cursor: &mut usize, bytes: &[u8]) {
    buf[*cursor..*cursor + bytes.len()].copy_from_slice(bytes);
    *cursor += bytes.len();
}

#[inline]
fn put_field(buf: &mut [u8], cursor: &mut usize, bytes: &[u8]) {
    put(buf, cursor, &(bytes.len() as i32).to_be_bytes());
    put(buf, cursor, bytes);
}

/// Writes each kept row's value at its cursor. `measure` has validated every value.
fn write(
    kind: Kind,
    array: &ArrayRef,
    range: Range<usize>,
    cursors: &mut [usize],
    buf: &mut [u8],
    rejected: &[bool],
) {
    let array = array.as_ref();
    for (slot, i) in range.enumerate() {
        if rejected[slot] {
            continue;
        }
        let cursor = &mut cursors[slot];
        if array.is_null(i) {
            put(buf, cursor, &(-1i32).to_be_bytes());
            continue;
        }
        match kind {
            Kind::Bool => put_field(buf, cursor, &[u8::from(array.as_boolean().value(i))]),
            Kind::Int { width } => {
                let v = int_at(array, i);
                match width {
                    2 => put_field(buf, cursor, &(v as i16).to_be_bytes()),
                    4 => put_field(buf, cursor, &(v as i32).to_be_bytes()),
                    _ => put_field(buf, cursor, &v.to_be_bytes()),
                }
            }
            Kind::Float4 => put_field(
                buf,
                cursor,
                &array.as_primitive::<Float32Type>().value(i).to_be_bytes(),
            ),
            Kind::Float4To8 => put_field(
                buf,
                cursor,
                &f64::from(array.as_primitive::<Float32Type>().value(i)).to_be_bytes(),
            ),
            Kind::Float8 => put_field(
                buf,
                cursor,
                &array.as_primitive::<Float64Type>().value(i).to_be_bytes(),
            ),
            Kind::Text => put_field(buf, cursor, str_at(array, i).as_bytes()),
            Kind::UuidBinary => put_field(buf, cursor, array.as_fixed_size_binary().value(i)),
            Kind::UuidText => {
                let uuid = parse_uuid(str_at(array, i)).expect("measure validated the UUID");
                put_field(buf, cursor, &uuid)
            }
            Kind::Timestamp { unit } => {
                let us = timestamp_us(array, unit, i).expect("measure validated the range");
                put_field(buf, cursor, &us.to_be_bytes())
            }
            Kind::Date => {
                let days = array.as_primitive::<Date32Type>().value(i) - PG_EPOCH_OFFSET_DAYS;
                put_field(buf, cursor, &days.to_be_bytes())
            }
            Kind::Bytea => put_field(buf, cursor, bytes_at(array, i)),
        }
    }
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
                    type_oid,
                    type_name: format!("oid{type_oid}"),
                    not_null,
                    has_default: false,
                })
                .collect(),
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

    #[test]
    fn uuids_parse_from_text() {
        assert_eq!(
            parse_uuid("00112233-4455-6677-8899-aabbccddeeff"),
            Some([
                0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd,
                0xee, 0xff
            ])
        );
        assert_eq!(
            parse_uuid("00112233445566778899aabbccddeeff").map(|u| u[15]),
            Some(0xff)
        );
        assert_eq!(parse_uuid("0011-2233"), None);
        assert_eq!(parse_uuid("zz112233-4455-6677-8899-aabbccddeeff"), None);
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
