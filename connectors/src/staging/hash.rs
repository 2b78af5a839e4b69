//! The content hash of staged rows: order-independent, so a split read in any order, or in other
//! batches, hashes the same; any changed, missing or extra row changes it.
//!
//! ```text
//! cell(c, v)  = XXH3-64(bytes(v), seed = c)          c: the column's position, from 0
//! cell(c, ∅)  = XXH3-64("", seed = c | 2^63)         NULL
//! row         = XXH3-64(LE64(Σ_c cell(c, v_c)))      Σ wraps at 2^64
//! hash        = Σ_rows row                           wraps at 2^64; printed as 16 hex digits
//! ```
//!
//! `bytes(v)` is the value's little-endian bytes for fixed-width types (booleans one byte 0/1,
//! floats by bit pattern, timestamps, dates and times as their integer, an interval as months
//! i32, days i32, nanoseconds i64, decimals as their i128/i256), and the bytes themselves for
//! strings and binaries (a uuid: its 16 bytes). A list, map or struct value is a canonical
//! encoding of its elements: each element `0x00` if NULL, else `0x01`, its byte length as LE32,
//! then its own bytes; a list or map starts with its element count as LE32.
//!
//! Splitting a row's hash by column makes the common columns a tight loop per column, fast
//! enough to check every split again as it is loaded. XXH3 is specified and the same on every
//! platform, so a manifest can be checked anywhere.

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::*;
use arrow::error::ArrowError;
use twox_hash::XxHash3_64;

/// The name of this hash, recorded in every manifest.
pub const HASH_ALGORITHM: &str = "ferry-xxh3-cells-v1";

const NULL_SEED: u64 = 1 << 63;

/// An order-independent hash of rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ContentHash {
    pub rows: u64,
    pub sum: u64,
}

impl ContentHash {
    /// Adds every row of `batch`.
    pub fn add(&mut self, batch: &RecordBatch) -> Result<(), ArrowError> {
        let mut rows = vec![0u64; batch.num_rows()];
        for (c, column) in batch.columns().iter().enumerate() {
            add_column(&mut rows, column, c as u64)?;
        }
        for acc in rows {
            self.sum = self
                .sum
                .wrapping_add(XxHash3_64::oneshot(&acc.to_le_bytes()));
        }
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    /// Adds another hash's rows.
    pub fn merge(&mut self, other: ContentHash) {
        self.rows += other.rows;
        self.sum = self.sum.wrapping_add(other.sum);
    }

    /// The hash as the manifest writes it: 16 hex digits.
    pub fn hex(&self) -> String {
        format!("{:016x}", self.sum)
    }
}

fn null_hash(seed: u64) -> u64 {
    XxHash3_64::oneshot_with_seed(seed | NULL_SEED, b"")
}

/// Adds the cell hashes of `array` (column `seed`) to each row's accumulator.
fn add_column(rows: &mut [u64], array: &ArrayRef, seed: u64) -> Result<(), ArrowError> {
    let null = null_hash(seed);
    let mut cells = |hash: &mut dyn FnMut(usize) -> u64| {
        for (i, acc) in rows.iter_mut().enumerate() {
            let cell = if array.is_null(i) { null } else { hash(i) };
            *acc = acc.wrapping_add(cell);
        }
    };
    macro_rules! primitive {
        ($t:ty) => {{
            let values = array.as_primitive::<$t>().values();
            cells(&mut |i| XxHash3_64::oneshot_with_seed(seed, values[i].to_byte_slice()))
        }};
    }
    match array.data_type() {
        DataType::Null => cells(&mut |_| null),
        DataType::Boolean => {
            let a = array.as_boolean();
            cells(&mut |i| XxHash3_64::oneshot_with_seed(seed, &[u8::from(a.value(i))]))
        }
        DataType::Int8 => primitive!(Int8Type),
        DataType::Int16 => primitive!(Int16Type),
        DataType::Int32 => primitive!(Int32Type),
        DataType::Int64 => primitive!(Int64Type),
        DataType::UInt8 => primitive!(UInt8Type),
        DataType::UInt16 => primitive!(UInt16Type),
        DataType::UInt32 => primitive!(UInt32Type),
        DataType::UInt64 => primitive!(UInt64Type),
        DataType::Float16 => primitive!(Float16Type),
        DataType::Float32 => primitive!(Float32Type),
        DataType::Float64 => primitive!(Float64Type),
        DataType::Date32 => primitive!(Date32Type),
        DataType::Date64 => primitive!(Date64Type),
        DataType::Time32(TimeUnit::Second) => primitive!(Time32SecondType),
        DataType::Time32(_) => primitive!(Time32MillisecondType),
        DataType::Time64(TimeUnit::Microsecond) => primitive!(Time64MicrosecondType),
        DataType::Time64(_) => primitive!(Time64NanosecondType),
        DataType::Timestamp(TimeUnit::Second, _) => primitive!(TimestampSecondType),
        DataType::Timestamp(TimeUnit::Millisecond, _) => primitive!(TimestampMillisecondType),
        DataType::Timestamp(TimeUnit::Microsecond, _) => primitive!(TimestampMicrosecondType),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => primitive!(TimestampNanosecondType),
        DataType::Duration(TimeUnit::Second) => primitive!(DurationSecondType),
        DataType::Duration(TimeUnit::Millisecond) => primitive!(DurationMillisecondType),
        DataType::Duration(TimeUnit::Microsecond) => primitive!(DurationMicrosecondType),
        DataType::Duration(TimeUnit::Nanosecond) => primitive!(DurationNanosecondType),
        DataType::Interval(IntervalUnit::YearMonth) => primitive!(IntervalYearMonthType),
        DataType::Interval(IntervalUnit::DayTime) => primitive!(IntervalDayTimeType),
        DataType::Interval(IntervalUnit::MonthDayNano) => {
            let values = array.as_primitive::<IntervalMonthDayNanoType>().values();
            cells(&mut |i| XxHash3_64::oneshot_with_seed(seed, &interval_bytes(&values[i])))
        }
        DataType::Decimal32(..) => primitive!(Decimal32Type),
        DataType::Decimal64(..) => primitive!(Decimal64Type),
        DataType::Decimal128(..) => primitive!(Decimal128Type),
        DataType::Decimal256(..) => primitive!(Decimal256Type),
        DataType::Utf8 => {
            let a = array.as_string::<i32>();
            cells(&mut |i| XxHash3_64::oneshot_with_seed(seed, a.value(i).as_bytes()))
        }
        DataType::LargeUtf8 => {
            let a = array.as_string::<i64>();
            cells(&mut |i| XxHash3_64::oneshot_with_seed(seed, a.value(i).as_bytes()))
        }
        DataType::Utf8View => {
            let a = array.as_string_view();
            cells(&mut |i| XxHash3_64::oneshot_with_seed(seed, a.value(i).as_bytes()))
        }
        DataType::Binary => {
            let a = array.as_binary::<i32>();
            cells(&mut |i| XxHash3_64::oneshot_with_seed(seed, a.value(i)))
        }
        DataType::LargeBinary => {
            let a = array.as_binary::<i64>();
            cells(&mut |i| XxHash3_64::oneshot_with_seed(seed, a.value(i)))
        }
        DataType::BinaryView => {
            let a = array.as_binary_view();
            cells(&mut |i| XxHash3_64::oneshot_with_seed(seed, a.value(i)))
        }
        DataType::FixedSizeBinary(_) => {
            let a = array.as_fixed_size_binary();
            cells(&mut |i| XxHash3_64::oneshot_with_seed(seed, a.value(i)))
        }
        DataType::Dictionary(_, value_type) => {
            let plain = arrow::compute::cast(array, value_type)?;
            return add_column(rows, &plain, seed);
        }
        DataType::List(_)
        | DataType::LargeList(_)
        | DataType::FixedSizeList(..)
        | DataType::Map(..)
        | DataType::Struct(_) => {
            let mut buf = Vec::with_capacity(256);
            let mut failed = None;
            cells(&mut |i| {
                buf.clear();
                if let Err(e) = encode_nested(array.as_ref(), i, &mut buf) {
                    failed.get_or_insert(e);
                }
                XxHash3_64::oneshot_with_seed(seed, &buf)
            });
            if let Some(e) = failed {
                return Err(e);
            }
        }
        other => {
            return Err(ArrowError::NotYetImplemented(format!(
                "content hash of {other} columns"
            )));
        }
    }
    Ok(())
}

fn interval_bytes(v: &IntervalMonthDayNano) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..4].copy_from_slice(&v.months.to_le_bytes());
    out[4..8].copy_from_slice(&v.days.to_le_bytes());
    out[8..].copy_from_slice(&v.nanoseconds.to_le_bytes());
    out
}

/// The canonical bytes of the nested value at `i` (not NULL).
fn encode_nested(array: &dyn Array, i: usize, out: &mut Vec<u8>) -> Result<(), ArrowError> {
    match array.data_type() {
        DataType::List(_) => encode_elements(array.as_list::<i32>().value(i).as_ref(), out),
        DataType::LargeList(_) => encode_elements(array.as_list::<i64>().value(i).as_ref(), out),
        DataType::FixedSizeList(..) => {
            encode_elements(array.as_fixed_size_list().value(i).as_ref(), out)
        }
        DataType::Map(..) => {
            let entries = array.as_map().value(i);
            out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
            for row in 0..entries.len() {
                for column in entries.columns() {
                    encode_element(column.as_ref(), row, out)?;
                }
            }
            Ok(())
        }
        DataType::Struct(_) => {
            for column in array.as_struct().columns() {
                encode_element(column.as_ref(), i, out)?;
            }
            Ok(())
        }
        _ => {
            // A scalar inside a nested value: the same bytes as a top-level cell's.
            scalar_bytes(array, i, out)
        }
    }
}

/// A list's elements: the count, then each element.
fn encode_elements(values: &dyn Array, out: &mut Vec<u8>) -> Result<(), ArrowError> {
    out.extend_from_slice(&(values.len() as u32).to_le_bytes());
    for j in 0..values.len() {
        encode_element(values, j, out)?;
    }
    Ok(())
}

/// One element: `0x00` for NULL, else `0x01`, its length as LE32, its bytes.
fn encode_element(array: &dyn Array, i: usize, out: &mut Vec<u8>) -> Result<(), ArrowError> {
    if array.is_null(i) {
        out.push(0);
        return Ok(());
    }
    out.push(1);
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    encode_nested(array, i, out)?;
    let len = (out.len() - at - 4) as u32;
    out[at..at + 4].copy_from_slice(&len.to_le_bytes());
    Ok(())
}

/// The bytes of the scalar at `i`, as [`add_column`] hashes them.
fn scalar_bytes(array: &dyn Array, i: usize, out: &mut Vec<u8>) -> Result<(), ArrowError> {
    macro_rules! primitive {
        ($t:ty) => {
            out.extend_from_slice(array.as_primitive::<$t>().values()[i].to_byte_slice())
        };
    }
    match array.data_type() {
        DataType::Boolean => out.push(u8::from(array.as_boolean().value(i))),
        DataType::Int8 => primitive!(Int8Type),
        DataType::Int16 => primitive!(Int16Type),
        DataType::Int32 => primitive!(Int32Type),
        DataType::Int64 => primitive!(Int64Type),
        DataType::UInt8 => primitive!(UInt8Type),
        DataType::UInt16 => primitive!(UInt16Type),
        DataType::UInt32 => primitive!(UInt32Type),
        DataType::UInt64 => primitive!(UInt64Type),
        DataType::Float16 => primitive!(Float16Type),
        DataType::Float32 => primitive!(Float32Type),
        DataType::Float64 => primitive!(Float64Type),
        DataType::Date32 => primitive!(Date32Type),
        DataType::Date64 => primitive!(Date64Type),
        DataType::Time32(TimeUnit::Second) => primitive!(Time32SecondType),
        DataType::Time32(_) => primitive!(Time32MillisecondType),
        DataType::Time64(TimeUnit::Microsecond) => primitive!(Time64MicrosecondType),
        DataType::Time64(_) => primitive!(Time64NanosecondType),
        DataType::Timestamp(TimeUnit::Second, _) => primitive!(TimestampSecondType),
        DataType::Timestamp(TimeUnit::Millisecond, _) => primitive!(TimestampMillisecondType),
        DataType::Timestamp(TimeUnit::Microsecond, _) => primitive!(TimestampMicrosecondType),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => primitive!(TimestampNanosecondType),
        DataType::Duration(TimeUnit::Second) => primitive!(DurationSecondType),
        DataType::Duration(TimeUnit::Millisecond) => primitive!(DurationMillisecondType),
        DataType::Duration(TimeUnit::Microsecond) => primitive!(DurationMicrosecondType),
        DataType::Duration(TimeUnit::Nanosecond) => primitive!(DurationNanosecondType),
        DataType::Interval(IntervalUnit::YearMonth) => primitive!(IntervalYearMonthType),
        DataType::Interval(IntervalUnit::DayTime) => primitive!(IntervalDayTimeType),
        DataType::Interval(IntervalUnit::MonthDayNano) => out.extend_from_slice(&interval_bytes(
            &array.as_primitive::<IntervalMonthDayNanoType>().values()[i],
        )),
        DataType::Decimal32(..) => primitive!(Decimal32Type),
        DataType::Decimal64(..) => primitive!(Decimal64Type),
        DataType::Decimal128(..) => primitive!(Decimal128Type),
        DataType::Decimal256(..) => primitive!(Decimal256Type),
        DataType::Utf8 => out.extend_from_slice(array.as_string::<i32>().value(i).as_bytes()),
        DataType::LargeUtf8 => out.extend_from_slice(array.as_string::<i64>().value(i).as_bytes()),
        DataType::Utf8View => out.extend_from_slice(array.as_string_view().value(i).as_bytes()),
        DataType::Binary => out.extend_from_slice(array.as_binary::<i32>().value(i)),
        DataType::LargeBinary => out.extend_from_slice(array.as_binary::<i64>().value(i)),
        DataType::BinaryView => out.extend_from_slice(array.as_binary_view().value(i)),
        DataType::FixedSizeBinary(_) => {
            out.extend_from_slice(array.as_fixed_size_binary().value(i))
        }
        other => {
            return Err(ArrowError::NotYetImplemented(format!(
                "content hash of {other} values inside a list, map or struct"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int32Array, Int32Builder, ListBuilder, StringArray};

    use super::*;

    fn batch(ids: &[i32], names: &[Option<&str>]) -> RecordBatch {
        let mut lists = ListBuilder::new(Int32Builder::new());
        for id in ids {
            lists.append_value([Some(*id), None]);
        }
        let lists = lists.finish();
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int32, false),
            Field::new("name", DataType::Utf8, true),
            Field::new("l", lists.data_type().clone(), true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int32Array::from(ids.to_vec())),
                Arc::new(StringArray::from(names.to_vec())),
                Arc::new(lists),
            ],
        )
        .expect("valid")
    }

    fn hash(batches: &[RecordBatch]) -> ContentHash {
        let mut h = ContentHash::default();
        for b in batches {
            h.add(b).expect("hashable");
        }
        h
    }

    #[test]
    fn order_and_batching_do_not_matter_content_does() {
        let whole = hash(&[batch(&[1, 2, 3], &[Some("a"), None, Some("")])]);
        let shuffled = hash(&[batch(&[3], &[Some("")]), batch(&[1, 2], &[Some("a"), None])]);
        assert_eq!(whole, shuffled);
        assert_eq!(whole.rows, 3);
        // NULL and "" differ; a value moved to another row differs; a duplicate differs.
        assert_ne!(
            whole,
            hash(&[batch(&[1, 2, 3], &[Some("a"), Some(""), None])])
        );
        assert_ne!(
            whole,
            hash(&[batch(&[1, 2, 3], &[None, Some("a"), Some("")])])
        );
        assert_ne!(
            whole,
            hash(&[batch(&[1, 2, 3, 3], &[Some("a"), None, Some(""), Some("")])])
        );
        assert_eq!(whole.hex().len(), 16);
    }

    #[test]
    fn the_hash_is_pinned() {
        // The algorithm is a file format: this value must never change for HASH_ALGORITHM v1.
        let h = hash(&[batch(&[1, 2, 3], &[Some("a"), None, Some("")])]);
        let one = XxHash3_64::oneshot_with_seed(0, &1i32.to_le_bytes())
            .wrapping_add(XxHash3_64::oneshot_with_seed(1, b"a"))
            .wrapping_add({
                // [1, NULL]: count 2, then 0x01 len 4 LE32(1), then 0x00.
                let mut b = vec![2, 0, 0, 0, 1, 4, 0, 0, 0];
                b.extend_from_slice(&1i32.to_le_bytes());
                b.push(0);
                XxHash3_64::oneshot_with_seed(2, &b)
            });
        let first_row = XxHash3_64::oneshot(&one.to_le_bytes());
        let rest = hash(&[batch(&[2, 3], &[None, Some("")])]);
        assert_eq!(h.sum, first_row.wrapping_add(rest.sum));
    }
}
