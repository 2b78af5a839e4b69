//! Arrow columns as Parquet stores them, and back, exactly.
//!
//! Parquet has no type for `Interval(MonthDayNano)` (its own INTERVAL holds milliseconds), so
//! such a column, nested or not, is written as a struct `{months: int32, days: int32,
//! nanoseconds: int64}` and read back into the interval. Every other type Ferry produces is
//! written as it is.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, FixedSizeListArray, Int32Array, Int64Array,
    IntervalMonthDayNanoArray, LargeListArray, ListArray, MapArray, RecordBatch,
    RecordBatchOptions, StructArray,
};
use arrow::datatypes::{
    DataType, Field, FieldRef, Fields, Int32Type, Int64Type, IntervalMonthDayNano,
    IntervalMonthDayNanoType, IntervalUnit, Schema, SchemaRef,
};
use arrow::error::ArrowError;

/// The struct an `Interval(MonthDayNano)` is written as.
pub fn interval_fields() -> Fields {
    Fields::from(vec![
        Field::new("months", DataType::Int32, false),
        Field::new("days", DataType::Int32, false),
        Field::new("nanoseconds", DataType::Int64, false),
    ])
}

/// Whether `dt` holds a type Parquet cannot store as it is.
pub fn needs_conversion(dt: &DataType) -> bool {
    match dt {
        DataType::Interval(IntervalUnit::MonthDayNano) => true,
        DataType::List(f)
        | DataType::LargeList(f)
        | DataType::FixedSizeList(f, _)
        | DataType::Map(f, _) => needs_conversion(f.data_type()),
        DataType::Struct(fs) => fs.iter().any(|f| needs_conversion(f.data_type())),
        _ => false,
    }
}

/// `dt` as Parquet stores it.
pub fn parquet_type(dt: &DataType) -> DataType {
    let child = |f: &FieldRef| Arc::new(parquet_field(f));
    match dt {
        DataType::Interval(IntervalUnit::MonthDayNano) => DataType::Struct(interval_fields()),
        DataType::List(f) => DataType::List(child(f)),
        DataType::LargeList(f) => DataType::LargeList(child(f)),
        DataType::FixedSizeList(f, n) => DataType::FixedSizeList(child(f), *n),
        DataType::Map(f, sorted) => DataType::Map(child(f), *sorted),
        DataType::Struct(fs) => DataType::Struct(fs.iter().map(child).collect()),
        other => other.clone(),
    }
}

/// `field` as Parquet stores it, same name, nullability and metadata.
pub fn parquet_field(field: &Field) -> Field {
    if !needs_conversion(field.data_type()) {
        return field.clone();
    }
    Field::new(
        field.name(),
        parquet_type(field.data_type()),
        field.is_nullable(),
    )
    .with_metadata(field.metadata().clone())
}

/// `schema` as Parquet stores it.
pub fn parquet_schema(schema: &Schema) -> SchemaRef {
    Arc::new(Schema::new_with_metadata(
        schema
            .fields()
            .iter()
            .map(|f| parquet_field(f))
            .collect::<Vec<_>>(),
        schema.metadata().clone(),
    ))
}

/// `batch` as Parquet stores it: `schema` is [`parquet_schema`] of the batch's.
pub fn to_parquet(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, ArrowError> {
    if !batch
        .schema_ref()
        .fields()
        .iter()
        .any(|f| needs_conversion(f.data_type()))
    {
        return RecordBatch::try_new_with_options(
            Arc::clone(schema),
            batch.columns().to_vec(),
            &RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
        );
    }
    let columns = batch
        .schema_ref()
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(f, a)| writable(f, a).map(|(_, a)| a))
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new_with_options(
        Arc::clone(schema),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )
}

/// A batch read from Parquet, back in `schema` (the one [`parquet_schema`] was made from, or a
/// projection of it).
pub fn from_parquet(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, ArrowError> {
    let columns = schema
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(f, a)| readable(f.data_type(), a))
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new_with_options(
        Arc::clone(schema),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )
}

/// `array` (of `field`) as Parquet can store it, exactly: every `Interval(MonthDayNano)`,
/// nested or not, becomes a struct of its three parts; everything else is unchanged.
pub fn writable(field: &FieldRef, array: &ArrayRef) -> Result<(FieldRef, ArrayRef), ArrowError> {
    if !needs_conversion(array.data_type()) {
        return Ok((Arc::clone(field), Arc::clone(array)));
    }
    let with_type = |dt: DataType| {
        Arc::new(
            Field::new(field.name(), dt, field.is_nullable())
                .with_metadata(field.metadata().clone()),
        )
    };
    match array.data_type() {
        DataType::Interval(IntervalUnit::MonthDayNano) => {
            let a = array.as_primitive::<IntervalMonthDayNanoType>();
            let parts: Vec<ArrayRef> = vec![
                Arc::new(Int32Array::from_iter_values(
                    a.values().iter().map(|v| v.months),
                )),
                Arc::new(Int32Array::from_iter_values(
                    a.values().iter().map(|v| v.days),
                )),
                Arc::new(Int64Array::from_iter_values(
                    a.values().iter().map(|v| v.nanoseconds),
                )),
            ];
            let s = StructArray::try_new(interval_fields(), parts, a.nulls().cloned())?;
            Ok((with_type(DataType::Struct(interval_fields())), Arc::new(s)))
        }
        DataType::List(child) => {
            let l = array.as_list::<i32>();
            let (child, values) = writable(child, l.values())?;
            let out = ListArray::try_new(
                Arc::clone(&child),
                l.offsets().clone(),
                values,
                l.nulls().cloned(),
            )?;
            Ok((with_type(DataType::List(child)), Arc::new(out)))
        }
        DataType::LargeList(child) => {
            let l = array.as_list::<i64>();
            let (child, values) = writable(child, l.values())?;
            let out = LargeListArray::try_new(
                Arc::clone(&child),
                l.offsets().clone(),
                values,
                l.nulls().cloned(),
            )?;
            Ok((with_type(DataType::LargeList(child)), Arc::new(out)))
        }
        DataType::FixedSizeList(child, size) => {
            let l = array.as_fixed_size_list();
            let (child, values) = writable(child, l.values())?;
            let out =
                FixedSizeListArray::try_new(Arc::clone(&child), *size, values, l.nulls().cloned())?;
            Ok((
                with_type(DataType::FixedSizeList(child, *size)),
                Arc::new(out),
            ))
        }
        DataType::Struct(children) => {
            let s = array.as_struct();
            let (fields, columns): (Vec<FieldRef>, Vec<ArrayRef>) = children
                .iter()
                .zip(s.columns())
                .map(|(f, c)| writable(f, c))
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .unzip();
            let fields = Fields::from(fields);
            let out = StructArray::try_new(fields.clone(), columns, s.nulls().cloned())?;
            Ok((with_type(DataType::Struct(fields)), Arc::new(out)))
        }
        DataType::Map(entries_field, sorted) => {
            let m = array.as_map();
            let entries: ArrayRef = Arc::new(m.entries().clone());
            let (entries_field, entries) = writable(entries_field, &entries)?;
            let out = MapArray::try_new(
                Arc::clone(&entries_field),
                m.offsets().clone(),
                entries.as_struct().clone(),
                m.nulls().cloned(),
                *sorted,
            )?;
            Ok((
                with_type(DataType::Map(entries_field, *sorted)),
                Arc::new(out),
            ))
        }
        _ => Ok((Arc::clone(field), Arc::clone(array))),
    }
}

/// `array`, read from Parquet, as `want`: the inverse of [`writable`]. Any other difference
/// (a reader that gives back a related type) is cast.
fn readable(want: &DataType, array: &ArrayRef) -> Result<ArrayRef, ArrowError> {
    if array.data_type() == want {
        return Ok(Arc::clone(array));
    }
    match (want, array.data_type()) {
        (DataType::Interval(IntervalUnit::MonthDayNano), DataType::Struct(_)) => {
            let s = array.as_struct();
            if s.num_columns() != 3 {
                return Err(ArrowError::SchemaError(format!(
                    "an interval is stored as a struct of 3 fields, this one has {}",
                    s.num_columns()
                )));
            }
            let months = s.column(0).as_primitive::<Int32Type>();
            let days = s.column(1).as_primitive::<Int32Type>();
            let nanos = s.column(2).as_primitive::<Int64Type>();
            let values = (0..s.len())
                .map(|i| IntervalMonthDayNano::new(months.value(i), days.value(i), nanos.value(i)));
            Ok(Arc::new(IntervalMonthDayNanoArray::new(
                values.collect(),
                s.nulls().cloned(),
            )))
        }
        (DataType::List(f), DataType::List(_)) => {
            let l = array.as_list::<i32>();
            let values = readable(f.data_type(), l.values())?;
            Ok(Arc::new(ListArray::try_new(
                Arc::clone(f),
                l.offsets().clone(),
                values,
                l.nulls().cloned(),
            )?))
        }
        (DataType::LargeList(f), DataType::LargeList(_)) => {
            let l = array.as_list::<i64>();
            let values = readable(f.data_type(), l.values())?;
            Ok(Arc::new(LargeListArray::try_new(
                Arc::clone(f),
                l.offsets().clone(),
                values,
                l.nulls().cloned(),
            )?))
        }
        (DataType::FixedSizeList(f, n), DataType::FixedSizeList(_, m)) if n == m => {
            let l = array.as_fixed_size_list();
            let values = readable(f.data_type(), l.values())?;
            Ok(Arc::new(FixedSizeListArray::try_new(
                Arc::clone(f),
                *n,
                values,
                l.nulls().cloned(),
            )?))
        }
        (DataType::Struct(fields), DataType::Struct(got)) if fields.len() == got.len() => {
            let s = array.as_struct();
            let columns = fields
                .iter()
                .zip(s.columns())
                .map(|(f, c)| readable(f.data_type(), c))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Arc::new(StructArray::try_new(
                fields.clone(),
                columns,
                s.nulls().cloned(),
            )?))
        }
        (DataType::Map(entries, sorted), DataType::Map(..)) => {
            let m = array.as_map();
            let got: ArrayRef = Arc::new(m.entries().clone());
            let back = readable(entries.data_type(), &got)?;
            Ok(Arc::new(MapArray::try_new(
                Arc::clone(entries),
                m.offsets().clone(),
                back.as_struct().clone(),
                m.nulls().cloned(),
                *sorted,
            )?))
        }
        _ => arrow::compute::cast(array, want),
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{Int32Builder, ListBuilder, StringArray};

    use super::*;

    #[test]
    fn intervals_go_to_structs_and_back_even_nested() {
        let iv = IntervalMonthDayNano::new(14, -3, 1_000_000_001);
        let flat: ArrayRef = Arc::new(IntervalMonthDayNanoArray::from(vec![Some(iv), None]));
        let nested: ArrayRef = Arc::new(
            ListArray::try_new(
                Arc::new(Field::new("item", flat.data_type().clone(), true)),
                arrow::buffer::OffsetBuffer::new(vec![0, 2, 2].into()),
                Arc::clone(&flat),
                None,
            )
            .expect("valid"),
        );
        let mut lists = ListBuilder::new(Int32Builder::new());
        lists.append_value([Some(1), None]);
        lists.append_null();
        let lists: ArrayRef = Arc::new(lists.finish());
        let schema = Arc::new(Schema::new(vec![
            Field::new("d", flat.data_type().clone(), true),
            Field::new("ds", nested.data_type().clone(), true),
            Field::new("l", lists.data_type().clone(), true),
            Field::new("s", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                flat,
                nested,
                lists,
                Arc::new(StringArray::from(vec![Some("a"), None])),
            ],
        )
        .expect("valid");
        let stored = parquet_schema(&schema);
        assert_eq!(
            stored.field(0).data_type(),
            &DataType::Struct(interval_fields())
        );
        assert_eq!(stored.field(2), schema.field(2), "unchanged");
        let written = to_parquet(&batch, &stored).expect("writable");
        assert_eq!(written.schema(), stored);
        let back = from_parquet(&written, &schema).expect("readable");
        assert_eq!(back, batch);
    }
}
