//! What a dry run learns from the transform's output, batch by batch: per column the null count,
//! min and max, an approximate distinct count (DataFusion's HyperLogLog `approx_distinct`) and
//! the longest text or binary value; and the largest Cassandra partitions, from runs of equal
//! partition keys (a split's rows arrive in token order, so a partition's rows are adjacent).
//!
//! Every worker keeps its own [`ColumnProfiler`]s and [`PartitionRuns`]; they are merged once the
//! scan is done, through the accumulators' own state, as DataFusion merges partial aggregates.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{DataType, FieldRef, Schema};
use arrow::row::{OwnedRow, RowConverter, SortField};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::common::ScalarValue;
use datafusion::functions_aggregate::approx_distinct::approx_distinct_udaf;
use datafusion::functions_aggregate::min_max::{MaxAccumulator, MinAccumulator};
use datafusion::logical_expr::Accumulator;
use datafusion::logical_expr::function::AccumulatorArgs;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::Column;
use serde::Serialize;

use crate::query::{is_uuid, uuids_to_text};

/// Longest value text kept in a report (min, max, preview cells, reject examples).
pub const MAX_VALUE_CHARS: usize = 80;

/// One output column's profile.
#[derive(Debug, Clone, Serialize)]
pub struct ColumnProfile {
    pub name: String,
    /// The Arrow type the transform produces.
    pub arrow_type: String,
    /// The target column's type, when the column maps to one.
    pub target_type: Option<String>,
    /// Whether the target column is NOT NULL.
    pub target_not_null: bool,
    /// Exact.
    pub null_count: u64,
    /// `null_count / rows`.
    pub null_fraction: f64,
    /// Smallest and largest non-null value, as text; none for types without an order (lists,
    /// structs, maps) or when every value is NULL.
    pub min: Option<String>,
    pub max: Option<String>,
    /// HyperLogLog estimate of the distinct non-null values (about 1% standard error).
    pub approx_distinct: Option<u64>,
    /// Longest value: characters for text, bytes for binary; none for other types.
    pub max_length: Option<u64>,
}

/// One column's accumulators.
#[derive(Debug)]
pub(crate) struct ColumnProfiler {
    field: FieldRef,
    nulls: u64,
    min: Option<Box<dyn Accumulator>>,
    max: Option<Box<dyn Accumulator>>,
    distinct: Option<Box<dyn Accumulator>>,
    /// `Some` for text and binary columns.
    max_length: Option<u64>,
}

impl ColumnProfiler {
    /// The profilers of every column of `schema`.
    pub(crate) fn for_schema(schema: &Schema) -> Vec<Self> {
        schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| Self::new(schema, i, Arc::clone(f)))
            .collect()
    }

    fn new(schema: &Schema, index: usize, field: FieldRef) -> Self {
        let dt = field.data_type();
        // Only types with a meaningful order get min/max; DataFusion would compare lists too.
        let ordered = !dt.is_nested() && dt != &DataType::Null;
        let boxed = |a: datafusion::error::Result<Box<dyn Accumulator>>| a.ok();
        let min = ordered
            .then(|| boxed(MinAccumulator::try_new(dt).map(|a| Box::new(a) as _)))
            .flatten();
        let max = ordered
            .then(|| boxed(MaxAccumulator::try_new(dt).map(|a| Box::new(a) as _)))
            .flatten();
        let expr: Arc<dyn PhysicalExpr> = Arc::new(Column::new(field.name(), index));
        let exprs = [expr];
        let fields = [Arc::clone(&field)];
        let return_field: FieldRef = Arc::new(arrow::datatypes::Field::new(
            "approx_distinct",
            DataType::UInt64,
            false,
        ));
        let distinct = approx_distinct_udaf()
            .accumulator(AccumulatorArgs {
                return_field,
                schema,
                ignore_nulls: false,
                order_bys: &[],
                is_reversed: false,
                name: "approx_distinct",
                is_distinct: false,
                exprs: &exprs,
                expr_fields: &fields,
            })
            .ok();
        let max_length = text_or_binary(dt).then_some(0);
        Self {
            field,
            nulls: 0,
            min,
            max,
            distinct,
            max_length,
        }
    }

    pub(crate) fn update(&mut self, array: &ArrayRef) {
        self.nulls += if array.data_type() == &DataType::Null {
            array.len()
        } else {
            array.null_count()
        } as u64;
        let values = std::slice::from_ref(array);
        for acc in [&mut self.min, &mut self.max, &mut self.distinct] {
            if let Some(a) = acc
                && let Err(e) = a.update_batch(values)
            {
                tracing::debug!(column = %self.field.name(), error = %e, "profile statistic dropped");
                *acc = None;
            }
        }
        if let Some(longest) = &mut self.max_length {
            *longest = (*longest).max(max_length(array.as_ref(), *longest));
        }
    }

    /// Folds `other` (the same column, profiled by another worker) into this one.
    pub(crate) fn merge(&mut self, mut other: Self) {
        self.nulls += other.nulls;
        if let (Some(a), Some(b)) = (&mut self.max_length, other.max_length) {
            *a = (*a).max(b);
        }
        for (mine, theirs) in [
            (&mut self.min, other.min.take()),
            (&mut self.max, other.max.take()),
            (&mut self.distinct, other.distinct.take()),
        ] {
            let merged = match (mine.as_mut(), theirs) {
                (Some(a), Some(mut b)) => b
                    .state()
                    .and_then(|state| {
                        state
                            .iter()
                            .map(ScalarValue::to_array)
                            .collect::<datafusion::error::Result<Vec<_>>>()
                    })
                    .and_then(|arrays| a.merge_batch(&arrays))
                    .is_ok(),
                (_, None) => false,
                (None, Some(_)) => false,
            };
            if !merged {
                *mine = None;
            }
        }
    }

    pub(crate) fn finish(mut self, rows: u64) -> ColumnProfile {
        let field = Arc::clone(&self.field);
        let text = |acc: Option<&mut Box<dyn Accumulator>>| {
            acc.and_then(|a| a.evaluate().ok())
                .and_then(|v| scalar_text(&v, &field))
        };
        let min = text(self.min.as_mut());
        let max = text(self.max.as_mut());
        let approx_distinct = self.distinct.as_mut().and_then(|a| match a.evaluate() {
            Ok(ScalarValue::UInt64(Some(n))) => Some(n),
            _ => None,
        });
        ColumnProfile {
            name: field.name().clone(),
            arrow_type: field.data_type().to_string(),
            target_type: None,
            target_not_null: false,
            null_count: self.nulls,
            null_fraction: if rows == 0 {
                0.0
            } else {
                self.nulls as f64 / rows as f64
            },
            min,
            max,
            approx_distinct,
            max_length: self.max_length,
        }
    }
}

fn text_or_binary(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
            | DataType::Binary
            | DataType::LargeBinary
            | DataType::BinaryView
            | DataType::FixedSizeBinary(_)
    )
}

/// The longest non-null value of `array` if longer than `floor` (characters for text, bytes for
/// binary), else `floor`. Characters are counted only for values with more bytes than `floor`:
/// a value never has more characters than bytes.
fn max_length(array: &dyn Array, floor: u64) -> u64 {
    let valid = |i: usize| array.is_valid(i);
    let offsets =
        |o: &[i64]| -> Vec<usize> { o.windows(2).map(|w| (w[1] - w[0]) as usize).collect() };
    match array.data_type() {
        DataType::Utf8 => {
            let a = array.as_string::<i32>();
            let lens = a.value_offsets().windows(2).map(|w| (w[1] - w[0]) as usize);
            longest_text(lens, |i| a.value(i), valid, floor)
        }
        DataType::LargeUtf8 => {
            let a = array.as_string::<i64>();
            let lens = offsets(a.value_offsets());
            longest_text(lens.into_iter(), |i| a.value(i), valid, floor)
        }
        DataType::Utf8View => {
            let a = array.as_string_view();
            let lens = a.views().iter().map(|v| *v as u32 as usize);
            longest_text(lens, |i| a.value(i), valid, floor)
        }
        DataType::Binary => {
            let a = array.as_binary::<i32>();
            let lens = a.value_offsets().windows(2).map(|w| (w[1] - w[0]) as usize);
            longest_bytes(lens, valid, floor)
        }
        DataType::LargeBinary => {
            let lens = offsets(array.as_binary::<i64>().value_offsets());
            longest_bytes(lens.into_iter(), valid, floor)
        }
        DataType::BinaryView => {
            let lens = array
                .as_binary_view()
                .views()
                .iter()
                .map(|v| *v as u32 as usize);
            longest_bytes(lens, valid, floor)
        }
        DataType::FixedSizeBinary(n) if array.null_count() < array.len() => floor.max(*n as u64),
        _ => floor,
    }
}

/// The most characters of a valid value, given each value's byte length.
fn longest_text<'a>(
    lens: impl Iterator<Item = usize>,
    value: impl Fn(usize) -> &'a str,
    valid: impl Fn(usize) -> bool,
    floor: u64,
) -> u64 {
    let mut longest = floor;
    for (i, bytes) in lens.enumerate() {
        if bytes as u64 > longest && valid(i) {
            longest = longest.max(value(i).chars().count() as u64);
        }
    }
    longest
}

/// The most bytes of a valid value.
fn longest_bytes(
    lens: impl Iterator<Item = usize>,
    valid: impl Fn(usize) -> bool,
    floor: u64,
) -> u64 {
    let mut longest = floor;
    for (i, bytes) in lens.enumerate() {
        if bytes as u64 > longest && valid(i) {
            longest = bytes as u64;
        }
    }
    longest
}

/// A scalar as report text; `None` for NULL.
fn scalar_text(value: &ScalarValue, field: &FieldRef) -> Option<String> {
    if value.is_null() {
        return None;
    }
    if is_uuid(field)
        && let ScalarValue::FixedSizeBinary(16, Some(bytes)) = value
    {
        return uuid::Uuid::from_slice(bytes).ok().map(|u| u.to_string());
    }
    let array = value.to_array().ok()?;
    Some(value_text(array.as_ref(), 0))
}

/// Value `i` of `array` as display text.
fn value_text(array: &dyn Array, i: usize) -> String {
    match ArrayFormatter::try_new(array, &FormatOptions::default()) {
        Ok(f) => formatted(&f, array, i),
        Err(_) => raw_text(array, i),
    }
}

/// Value `i` through `formatter`; a value arrow cannot format (a date or timestamp beyond
/// chrono's range, which Cassandra can hold) shows raw instead.
fn formatted(formatter: &ArrayFormatter, array: &dyn Array, i: usize) -> String {
    match formatter.value(i).try_to_string() {
        Ok(text) => display_text(&text),
        Err(_) => raw_text(array, i),
    }
}

/// Value `i` as its type and raw number, e.g. `Date32(-2147483648)`.
fn raw_text(array: &dyn Array, i: usize) -> String {
    let raw = arrow::compute::cast(&array.slice(i, 1), &DataType::Int64)
        .ok()
        .and_then(|a| {
            let a = a.as_primitive::<arrow::datatypes::Int64Type>();
            a.is_valid(0).then(|| a.value(0))
        });
    match raw {
        Some(n) => format!("{}({n})", array.data_type()),
        None => format!("({} value not printable)", array.data_type()),
    }
}

/// `s` made safe to show: control characters escaped (a NUL shows as `\0`), cut at
/// [`MAX_VALUE_CHARS`] characters with an ellipsis.
pub fn display_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(MAX_VALUE_CHARS * 2));
    for (n, c) in s.chars().enumerate() {
        if n == MAX_VALUE_CHARS {
            out.push('…');
            break;
        }
        match c {
            '\0' => out.push_str("\\0"),
            c if c.is_control() => out.extend(c.escape_default()),
            c => out.push(c),
        }
    }
    out
}

/// Every row of `batch` as display text, `None` for NULL (UUIDs hyphenated).
pub fn format_rows(batch: &RecordBatch) -> Vec<Vec<Option<String>>> {
    let batch = uuids_to_text(batch).unwrap_or_else(|_| batch.clone());
    let options = FormatOptions::default();
    let formatters: Vec<Option<ArrayFormatter>> = batch
        .columns()
        .iter()
        .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).ok())
        .collect();
    (0..batch.num_rows())
        .map(|i| {
            batch
                .columns()
                .iter()
                .zip(&formatters)
                .map(|(c, f)| {
                    if c.is_null(i) || c.data_type() == &DataType::Null {
                        None
                    } else {
                        Some(match f {
                            Some(f) => formatted(f, c.as_ref(), i),
                            None => raw_text(c.as_ref(), i),
                        })
                    }
                })
                .collect()
        })
        .collect()
}

/// A Cassandra partition and how many output rows it had.
#[derive(Debug, Clone, Serialize)]
pub struct PartitionSize {
    /// The partition key's values, `col=value` joined by `, `.
    pub key: String,
    pub rows: u64,
    pub split: usize,
}

/// Partitions kept per table.
pub const LARGEST_PARTITIONS: usize = 10;

/// The run of rows of one partition key still open at the end of a batch.
#[derive(Debug)]
struct OpenRun {
    key: OwnedRow,
    rows: u64,
    split: usize,
}

/// Finds the largest partitions from runs of equal partition keys.
#[derive(Debug)]
pub(crate) struct PartitionRuns {
    /// Output column index and name of each partition key column.
    key: Vec<(usize, String)>,
    converter: RowConverter,
    open: Option<OpenRun>,
    /// Largest first, at most [`LARGEST_PARTITIONS`].
    top: Vec<PartitionSize>,
}

/// Row `i` of `columns` in row format.
fn row_at(converter: &RowConverter, columns: &[ArrayRef], i: usize) -> Option<OwnedRow> {
    let slice: Vec<ArrayRef> = columns.iter().map(|c| c.slice(i, 1)).collect();
    converter
        .convert_columns(&slice)
        .ok()
        .map(|r| r.row(0).owned())
}

impl PartitionRuns {
    /// `None` unless every partition key column is in the output under its own name.
    pub(crate) fn new(schema: &Schema, partition_key: &[String]) -> Option<Self> {
        if partition_key.is_empty() {
            return None;
        }
        let key: Option<Vec<(usize, String)>> = partition_key
            .iter()
            .map(|name| schema.index_of(name).ok().map(|i| (i, name.clone())))
            .collect();
        let key = key?;
        let fields = key
            .iter()
            .map(|(i, _)| SortField::new(schema.field(*i).data_type().clone()))
            .collect();
        let converter = RowConverter::new(fields).ok()?;
        Some(Self {
            key,
            converter,
            open: None,
            top: Vec::new(),
        })
    }

    /// Counts the rows of `batch` (of `split`, following its previous batch) per partition.
    pub(crate) fn update(&mut self, batch: &RecordBatch, split: usize) {
        if batch.num_rows() == 0 {
            return;
        }
        let columns: Vec<ArrayRef> = self
            .key
            .iter()
            .map(|(i, _)| Arc::clone(batch.column(*i)))
            .collect();
        let Ok(ranges) = arrow::compute::partition(&columns).map(|p| p.ranges()) else {
            return;
        };
        let last = ranges.len() - 1;
        for (n, range) in ranges.into_iter().enumerate() {
            let rows = range.len() as u64;
            if n == 0 {
                let first = row_at(&self.converter, &columns, range.start);
                if let Some(open) = &mut self.open
                    && open.split == split
                    && first.as_ref().is_some_and(|f| f.row() == open.key.row())
                {
                    open.rows += rows;
                    if n < last {
                        self.close();
                    }
                    continue;
                }
                self.close();
                if n == last {
                    self.open = first.map(|key| OpenRun { key, rows, split });
                    continue;
                }
            }
            if n == last {
                self.open = row_at(&self.converter, &columns, range.start).map(|key| OpenRun {
                    key,
                    rows,
                    split,
                });
            } else if self.qualifies(rows) {
                let text = self.key_text(&columns, range.start);
                self.offer(text, rows, split);
            }
        }
    }

    /// Ends the split: its last partition is complete.
    pub(crate) fn end_split(&mut self) {
        self.close();
    }

    fn close(&mut self) {
        let Some(open) = self.open.take() else {
            return;
        };
        if !self.qualifies(open.rows) {
            return;
        }
        let text = self
            .converter
            .convert_rows([open.key.row()])
            .map(|columns| self.key_text(&columns, 0))
            .unwrap_or_default();
        self.offer(text, open.rows, open.split);
    }

    fn qualifies(&self, rows: u64) -> bool {
        self.top.len() < LARGEST_PARTITIONS || self.top.last().is_some_and(|p| rows > p.rows)
    }

    fn offer(&mut self, key: String, rows: u64, split: usize) {
        let at = self.top.partition_point(|p| p.rows >= rows);
        self.top.insert(at, PartitionSize { key, rows, split });
        self.top.truncate(LARGEST_PARTITIONS);
    }

    fn key_text(&self, columns: &[ArrayRef], row: usize) -> String {
        let options = FormatOptions::default();
        self.key
            .iter()
            .zip(columns)
            .map(|((_, name), column)| {
                let value = ArrayFormatter::try_new(column.as_ref(), &options)
                    .map(|f| formatted(&f, column.as_ref(), row))
                    .unwrap_or_else(|_| raw_text(column.as_ref(), row));
                format!("{name}={value}")
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Folds another worker's findings into these (each closed its splits already).
    pub(crate) fn merge(&mut self, mut other: Self) {
        other.close();
        self.close();
        for p in other.top {
            if self.qualifies(p.rows) {
                self.offer(p.key, p.rows, p.split);
            }
        }
    }

    /// The largest partitions, largest first.
    pub(crate) fn finish(mut self) -> Vec<PartitionSize> {
        self.close();
        self.top
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{BinaryArray, Int32Array, StringArray};
    use arrow::datatypes::Field;

    fn batch(ids: &[i32], names: &[Option<&str>]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int32, false),
            Field::new("name", DataType::Utf8, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int32Array::from(ids.to_vec())),
                Arc::new(StringArray::from(names.to_vec())),
            ],
        )
        .expect("batch")
    }

    #[test]
    fn profiles_merge_to_the_whole_columns_figures() {
        let a = batch(&[3, 1, 2], &[Some("éé"), None, Some("abc")]);
        let b = batch(&[9, 1, 5], &[Some("z"), None, None]);
        let mut left = ColumnProfiler::for_schema(&a.schema());
        let mut right = ColumnProfiler::for_schema(&b.schema());
        for (p, c) in left.iter_mut().zip(a.columns()) {
            p.update(c);
        }
        for (p, c) in right.iter_mut().zip(b.columns()) {
            p.update(c);
        }
        let profiles: Vec<ColumnProfile> = left
            .into_iter()
            .zip(right)
            .map(|(mut l, r)| {
                l.merge(r);
                l.finish(6)
            })
            .collect();
        let id = &profiles[0];
        assert_eq!(
            (id.null_count, id.min.as_deref(), id.max.as_deref()),
            (0, Some("1"), Some("9"))
        );
        assert_eq!(id.approx_distinct, Some(5));
        assert_eq!(id.max_length, None);
        let name = &profiles[1];
        assert_eq!(name.null_count, 3);
        assert!((name.null_fraction - 0.5).abs() < 1e-9);
        assert_eq!(
            (name.min.as_deref(), name.max.as_deref()),
            (Some("abc"), Some("éé"))
        );
        assert_eq!(name.approx_distinct, Some(3));
        // "abc" has 3 characters; "éé" has 4 bytes but 2 characters.
        assert_eq!(name.max_length, Some(3));
    }

    #[test]
    fn binary_lengths_are_bytes_and_nulls_do_not_count() {
        let array: ArrayRef = Arc::new(BinaryArray::from(vec![
            Some(&b"\0\0\0\0"[..]),
            None,
            Some(&b"ab"[..]),
        ]));
        assert_eq!(max_length(array.as_ref(), 0), 4);
        let strings: ArrayRef = Arc::new(StringArray::from(vec![None, Some("é")]));
        assert_eq!(max_length(strings.as_ref(), 0), 1);
    }

    #[test]
    fn dates_beyond_chronos_range_show_raw() {
        let dates: ArrayRef = Arc::new(arrow::array::Date32Array::from(vec![i32::MIN, 0]));
        assert_eq!(value_text(dates.as_ref(), 0), "Date32(-2147483648)");
        assert_eq!(value_text(dates.as_ref(), 1), "1970-01-01");
    }

    #[test]
    fn values_are_escaped_and_cut() {
        assert_eq!(display_text("a\0b\n"), "a\\0b\\n");
        let long = "x".repeat(MAX_VALUE_CHARS + 5);
        assert_eq!(display_text(&long).chars().count(), MAX_VALUE_CHARS + 1);
    }

    #[test]
    fn partitions_are_counted_across_batches_and_splits() {
        let schema = batch(&[], &[]).schema();
        let mut runs = PartitionRuns::new(&schema, &["id".to_string()]).expect("key present");
        // Split 0: partition 1 spans both batches (2 + 3 rows), then 2 (1 row), 7 (4 rows).
        runs.update(&batch(&[5, 1, 1], &[None; 3]), 0);
        runs.update(&batch(&[1, 1, 1, 2, 7, 7], &[None; 6]), 0);
        runs.update(&batch(&[7, 7], &[None; 2]), 0);
        runs.end_split();
        // Split 1 starts with the same key value: a different partition run.
        let mut other = PartitionRuns::new(&schema, &["id".to_string()]).expect("key present");
        other.update(&batch(&[7, 7, 7], &[None; 3]), 1);
        other.end_split();
        runs.merge(other);
        let top: Vec<(String, u64, usize)> = runs
            .finish()
            .into_iter()
            .map(|p| (p.key, p.rows, p.split))
            .collect();
        assert_eq!(
            top,
            vec![
                ("id=1".to_string(), 5, 0),
                ("id=7".to_string(), 4, 0),
                ("id=7".to_string(), 3, 1),
                ("id=5".to_string(), 1, 0),
                ("id=2".to_string(), 1, 0),
            ]
        );
        assert!(PartitionRuns::new(&schema, &["missing".to_string()]).is_none());
    }
}
