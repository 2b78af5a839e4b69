//! The torture table: every CQL type, edge values, NULLs and Cassandra "empty" cells, read through
//! Ferry's scan and through the driver's typed API, compared value by value.
//!
//! The driver is the oracle: it decodes the same cells independently of `types.rs`, so any
//! disagreement is a decoding bug on one side, named by row key and column.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{
    DataType, Date32Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type,
    IntervalMonthDayNanoType, Time64NanosecondType, TimestampMillisecondType,
};
use datafusion::prelude::SessionContext;
use ferry_connectors::cassandra::{
    CassandraConfig, CassandraTable, SourceTable, SplitCount, connect, plan_splits,
};
use futures::TryStreamExt;
use num_bigint::BigInt;
use scylla::value::{CqlValue, Row};

use crate::support;

const KEYSPACE: &str = "ferry_torture";
const TABLE: &str = "everything";

/// Every CQL type except `counter` (which cannot share a table with other regular columns).
const COLUMNS: &str = "
    pk int, ck int,
    c_static text STATIC,
    c_ascii ascii, c_text text, c_varchar varchar,
    c_tinyint tinyint, c_smallint smallint, c_int int, c_bigint bigint,
    c_varint varint, c_decimal decimal, c_float float, c_double double, c_boolean boolean,
    c_timestamp timestamp, c_date date, c_time time, c_duration duration,
    c_uuid uuid, c_timeuuid timeuuid, c_inet inet, c_blob blob,
    c_list list<int>, c_set set<text>, c_map map<text, int>, c_tuple tuple<int, text>,
    c_frozen_udt frozen<address>, c_udt address,
    c_map_of_lists map<text, frozen<list<int>>>, c_list_of_maps list<frozen<map<int, text>>>,
    c_vector vector<float, 3>, c_vector_text vector<text, 2>,
    c_vec_tinyint vector<tinyint, 2>, c_vec_smallint vector<smallint, 2>,
    c_vec_date vector<date, 2>, c_vec_time vector<time, 2>, c_vec_boolean vector<boolean, 2>,
    c_vec_bigint vector<bigint, 2>, c_vec_uuid vector<uuid, 2>, c_vec_varint vector<varint, 2>,
    c_vec_list vector<frozen<list<int>>, 2>,
    PRIMARY KEY (pk, ck)";

/// Columns written as Cassandra "empty" values (`blobAsX(0x)`) in row (3, 0).
const EMPTY_COLUMNS: &[(&str, &str)] = &[
    ("c_int", "int"),
    ("c_bigint", "bigint"),
    ("c_varint", "varint"),
    ("c_decimal", "decimal"),
    ("c_float", "float"),
    ("c_double", "double"),
    ("c_boolean", "boolean"),
    ("c_timestamp", "timestamp"),
    ("c_uuid", "uuid"),
    ("c_timeuuid", "timeuuid"),
    ("c_inet", "inet"),
];

/// Fixed rows, as CQL `INSERT` column lists and values (after `pk, ck`).
const ROWS: &[&str] = &[
    // All NULLs except the key.
    "(pk, ck) VALUES (0, 0)",
    // Vectors of every element width: Cassandra packs only some fixed-size types unprefixed.
    "(pk, ck, c_vec_tinyint, c_vec_smallint, c_vec_date, c_vec_time, c_vec_boolean, c_vec_bigint,
      c_vec_uuid, c_vec_varint, c_vec_list)
     VALUES (0, 1, [-128, 127], [-32768, 32767], ['-5000-01-01', '9999-12-31'],
      ['00:00:00', '23:59:59.999999999'], [true, false],
      [-9223372036854775808, 9223372036854775807],
      [00000000-0000-0000-0000-000000000000, ffffffff-ffff-ffff-ffff-ffffffffffff],
      [-1000000000000000000000000000000000000000000000000000000000000, 0], [[1, 2], []])",
    // Minimum values, negative scale, far-past dates, negative duration, empty frozen collections.
    "(pk, ck, c_static, c_ascii, c_text, c_varchar, c_tinyint, c_smallint, c_int, c_bigint,
      c_varint, c_decimal, c_float, c_double, c_boolean, c_timestamp, c_date, c_time,
      c_duration, c_uuid, c_timeuuid, c_inet, c_blob, c_list, c_set, c_map, c_tuple,
      c_frozen_udt, c_udt, c_map_of_lists, c_list_of_maps, c_vector, c_vector_text)
     VALUES (1, 0, 'static one', '', '', '', -128, -32768, -2147483648, -9223372036854775808,
      -1000000000000000000000000000000000000000000000000000000000000, 1E+30,
      -3.4028235E38, -1.7976931348623157E308, false, -9223372036854775808, '-5000-01-01',
      '00:00:00', -1y2mo3d4h5m6s7ms8us9ns, 00000000-0000-0000-0000-000000000000,
      00000000-0000-1000-8000-000000000000, '0.0.0.0', 0x, [-2147483648], {''}, {'': 0},
      (null, null), {street: '', zip: 0, tags: {}}, {street: null, zip: null, tags: null},
      {'empty': []}, [{}], [-0.0, 0.0, -1.0E-45], ['a', 'é'])",
    // Maximum values, large scale, far-future dates, the last nanosecond of the day.
    "(pk, ck, c_ascii, c_text, c_varchar, c_tinyint, c_smallint, c_int, c_bigint,
      c_varint, c_decimal, c_float, c_double, c_boolean, c_timestamp, c_date, c_time,
      c_duration, c_uuid, c_timeuuid, c_inet, c_blob, c_list, c_set, c_map, c_tuple,
      c_frozen_udt, c_udt, c_map_of_lists, c_list_of_maps, c_vector, c_vector_text)
     VALUES (1, 1, '~ !\"#$%&''()*+,-./0-9:;<=>?@A-Z[\\]^_`a-z{|}', 'héllo 世界 🦀🚀 Ωμέγα', '日本語テキスト',
      127, 32767, 2147483647, 9223372036854775807,
      1000000000000000000000000000000000000000000000000000000000000,
      3.14159265358979323846264338327950288419716939937510582097494459230781640628620899,
      3.4028235E38, 1.7976931348623157E308, true, 9223372036854775807, '9999-12-31',
      '23:59:59.999999999', 1y2mo3d4h5m6s7ms8us9ns, ffffffff-ffff-ffff-ffff-ffffffffffff,
      now(), 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 0x00ff7f80,
      [1, 2, 3, 2147483647, 1], {'a', 'b', '🦀'}, {'x': 2147483647, 'y': -1, 'é': 0},
      (2147483647, '元'), {street: 'Main St 1', zip: 99999, tags: {'x', 'y'}},
      {street: '🏠', zip: -1, tags: {'z'}},
      {'a': [1, 2], 'b': [], 'c': [-3]}, [{1: 'one', 2: ''}, {}, {-1: '负'}],
      [1.5, -2.25, 3.4028235E38], ['ab', '🦀🦀'])",
    // Special floats, IPv4/IPv6 edge forms, a partly-set UDT and tuple, unusual dates.
    "(pk, ck, c_float, c_double, c_inet, c_date, c_time, c_tuple, c_udt, c_decimal, c_varint,
      c_timestamp, c_duration)
     VALUES (1, 2, NaN, -Infinity, '::ffff:1.2.3.4', 0, 1, (7, null), {zip: 5},
      -0.00000000000000000000000000000000000000000000000001, -1, -1, 0s)",
    "(pk, ck, c_float, c_double, c_inet, c_date, c_decimal, c_varint, c_timestamp, c_duration)
     VALUES (1, 3, Infinity, NaN, '::1', 4294967295, 0.000, 0, 0, 1mo)",
    "(pk, ck, c_inet, c_date, c_decimal, c_varint, c_duration)
     VALUES (1, 4, '255.255.255.255', '1582-10-04', -1E-5, 128, -1ns)",
    "(pk, ck, c_inet, c_date, c_varint, c_duration)
     VALUES (1, 5, '2001:db8::8a2e:370:7334', '+10000-01-01', -129, 2147483647d)",
];

/// Rows (pk 5) with an empty value nested in a collection, tuple or UDT: each is one counted cell.
const NESTED_EMPTIES: &[&str] = &[
    "c_tuple) VALUES (5, 0, (blobAsInt(0x), 'x'))",
    "c_udt) VALUES (5, 1, {street: 'a', zip: blobAsInt(0x)})",
    "c_list) VALUES (5, 2, [blobAsInt(0x), 1])",
    "c_frozen_udt) VALUES (5, 3, {street: 'a', zip: blobAsInt(0x)})",
    "c_map) VALUES (5, 4, {'k': blobAsInt(0x), 'l': 2})",
    "c_map_of_lists) VALUES (5, 5, {'k': [blobAsInt(0x)]})",
];

// Not written: '' inside `vector<text, n>`. scylla 1.9 reads a zero-length vector element as
// NULL and fails the row (`ExpectedNonNull`), so the oracle cannot check it.

/// Rows that exercise splits: many partitions spread over the ring.
const SPREAD_PARTITIONS: i32 = 200;

/// Creates and fills the torture table as `keyspace.table` (its UDT `address` in `keyspace`).
pub(crate) async fn seed_into(
    session: &scylla::client::session::Session,
    keyspace: &str,
    table: &str,
) {
    support::keyspace(session, keyspace).await;
    support::cql(session, &format!("DROP TABLE IF EXISTS {keyspace}.{table}")).await;
    support::cql(session, &format!("DROP TYPE IF EXISTS {keyspace}.address")).await;
    support::cql(
        session,
        &format!("CREATE TYPE {keyspace}.address (street text, zip int, tags frozen<set<text>>)"),
    )
    .await;
    support::cql(
        session,
        &format!("CREATE TABLE {keyspace}.{table} ({COLUMNS})"),
    )
    .await;
    for row in ROWS {
        support::cql(session, &format!("INSERT INTO {keyspace}.{table} {row}")).await;
    }

    // Cassandra "empty" values: zero-length cells of types that are not text or blob.
    let (columns, values): (Vec<&str>, Vec<String>) = EMPTY_COLUMNS
        .iter()
        .map(|(c, t)| (*c, format!("blobAs{t}(0x)")))
        .unzip();
    support::cql(
        session,
        &format!(
            "INSERT INTO {keyspace}.{table} (pk, ck, c_static, {}) VALUES (3, 0, 'static three', {})",
            columns.join(", "),
            values.join(", ")
        ),
    )
    .await;

    for row in NESTED_EMPTIES {
        support::cql(
            session,
            &format!("INSERT INTO {keyspace}.{table} (pk, ck, {row}"),
        )
        .await;
    }

    // ~2 MB of text and of blob in one row, bound rather than inlined.
    let big_text: String = "ferry→🦀 ".repeat(2 * 1024 * 1024 / 12);
    let big_blob: Vec<u8> = (0..2 * 1024 * 1024).map(|i: u32| (i % 251) as u8).collect();
    session
        .query_unpaged(
            format!("INSERT INTO {keyspace}.{table} (pk, ck, c_text, c_blob) VALUES (2, 0, ?, ?)"),
            (big_text, big_blob),
        )
        .await
        .expect("insert the 2 MB row");

    // A static column shared by many rows of one partition, and many small partitions.
    for ck in 0..20 {
        support::cql(
            session,
            &format!(
                "INSERT INTO {keyspace}.{table} (pk, ck, c_static, c_int, c_list) \
                 VALUES (4, {ck}, 'shared', {ck}, [{ck}, {ck}])"
            ),
        )
        .await;
    }
    for pk in 10..10 + SPREAD_PARTITIONS {
        support::cql(
            session,
            &format!(
                "INSERT INTO {keyspace}.{table} (pk, ck, c_text, c_bigint, c_map, c_vector) \
                 VALUES ({pk}, 0, 'row {pk}', {}, {{'k{pk}': {pk}}}, [{pk}, 0.5, -{pk}])",
                i64::from(pk) * 1_000_000_007
            ),
        )
        .await;
    }
}

/// The rows [`seed_into`] writes.
pub(crate) const SEEDED_ROWS: usize =
    ROWS.len() + 2 + NESTED_EMPTIES.len() + 20 + SPREAD_PARTITIONS as usize;

#[tokio::test]
async fn every_cql_type_decodes_like_the_driver() {
    let session = support::cassandra().await;
    seed_into(&session, KEYSPACE, TABLE).await;
    let expected_rows = SEEDED_ROWS;
    let scan = compare_with_driver(&session, TABLE, expected_rows).await;
    assert_eq!(
        scan.empty_cells,
        (EMPTY_COLUMNS.len() + NESTED_EMPTIES.len()) as u64,
        "cells holding an empty value, as the driver sees them"
    );
    assert_eq!(
        scan.counted_empties, scan.empty_cells,
        "empty cells counted by Ferry"
    );
}

#[tokio::test]
async fn counters_decode_like_the_driver() {
    let session = support::cassandra().await;
    support::keyspace(&session, KEYSPACE).await;
    support::recreate_table(
        &session,
        &format!(
            "CREATE TABLE {KEYSPACE}.counts (pk int, ck int, hits counter, misses counter, \
             PRIMARY KEY (pk, ck))"
        ),
    )
    .await;
    let deltas: [(i64, i64); 4] = [(i64::MAX, 0), (i64::MIN, -1), (0, 1), (-7, 7)];
    for (i, (hits, misses)) in deltas.iter().enumerate() {
        support::cql(
            &session,
            &format!(
                "UPDATE {KEYSPACE}.counts SET hits = hits + {hits}, misses = misses + {misses} \
                 WHERE pk = {i} AND ck = 0"
            ),
        )
        .await;
    }
    // Only one counter of this row is ever written: the other reads as NULL.
    support::cql(
        &session,
        &format!("UPDATE {KEYSPACE}.counts SET hits = hits + 1 WHERE pk = 9 AND ck = 9"),
    )
    .await;
    let scan = compare_with_driver(&session, "counts", deltas.len() + 1).await;
    assert_eq!((scan.empty_cells, scan.counted_empties), (0, 0));
}

/// What one comparison saw.
struct Compared {
    /// Top-level cells holding a Cassandra "empty" value at any depth, per the driver.
    empty_cells: u64,
    /// `ScanCounters::empty_values` after Ferry's scan.
    counted_empties: u64,
}

/// Reads `ferry_torture.{table}` (keyed by int `pk`, `ck`) through Ferry's scan over 4 ring
/// splits and through the driver, and fails naming every cell where they differ.
async fn compare_with_driver(
    session: &scylla::client::session::Session,
    table: &str,
    expected_rows: usize,
) -> Compared {
    // Ferry's side: the real scan, through DataFusion.
    let ferry_session = connect(&CassandraConfig::new(vec![support::cassandra_addr()]))
        .await
        .expect("connect");
    let source = SourceTable::load(&ferry_session, KEYSPACE, table)
        .await
        .expect("load the table schema");
    let names: Vec<String> = source.columns.iter().map(|c| c.name.clone()).collect();
    let splits = plan_splits(&ferry_session, KEYSPACE, table, SplitCount::Fixed(4), None)
        .await
        .expect("plan splits");
    assert!(splits.len() >= 4, "{} splits", splits.len());
    let provider = CassandraTable::new(ferry_session, source, splits, 1000);
    let counters = provider.counters();
    let ctx = SessionContext::new();
    ctx.register_table("t", Arc::new(provider))
        .expect("register");
    let batches = ctx
        .sql("SELECT * FROM t")
        .await
        .expect("plan")
        .collect()
        .await
        .expect("scan");

    // The oracle: the same columns, in the same order, through the driver's typed API.
    let select = format!(
        "SELECT {} FROM {KEYSPACE}.{table}",
        names
            .iter()
            .map(|n| format!("\"{n}\""))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let oracle: Vec<Row> = session
        .query_iter(select, ())
        .await
        .expect("driver query")
        .rows_stream::<Row>()
        .expect("row type")
        .try_collect()
        .await
        .expect("driver rows");

    let pk = names.iter().position(|n| n == "pk").expect("pk column");
    let ck = names.iter().position(|n| n == "ck").expect("ck column");
    let mut arrow_rows: BTreeMap<(i32, i32), (&RecordBatch, usize)> = BTreeMap::new();
    for batch in &batches {
        let pks = batch.column(pk).as_primitive::<Int32Type>();
        let cks = batch.column(ck).as_primitive::<Int32Type>();
        for r in 0..batch.num_rows() {
            let key = (pks.value(r), cks.value(r));
            assert!(
                arrow_rows.insert(key, (batch, r)).is_none(),
                "row {key:?} read twice"
            );
        }
    }
    assert_eq!(oracle.len(), expected_rows, "rows seen by the driver");
    assert_eq!(arrow_rows.len(), expected_rows, "rows read by Ferry");

    let mut failures = Vec::new();
    let mut empty_cells = 0u64;
    for row in &oracle {
        let key = match (&row.columns[pk], &row.columns[ck]) {
            (Some(CqlValue::Int(p)), Some(CqlValue::Int(c))) => (*p, *c),
            other => panic!("unexpected key {other:?}"),
        };
        let Some((batch, r)) = arrow_rows.get(&key) else {
            failures.push(format!("row {key:?}: missing from Ferry's scan"));
            continue;
        };
        for (i, cell) in row.columns.iter().enumerate() {
            let array = batch.column(i);
            empty_cells += u64::from(cell.as_ref().is_some_and(holds_empty));
            let result = match cell {
                None | Some(CqlValue::Empty) => null_at(array.as_ref(), *r),
                Some(v) => cql_equals_arrow(v, array.as_ref(), *r),
            };
            if let Err(e) = result {
                failures.push(format!("row {key:?} column {}: {e}", names[i]));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches in {table}:\n{}",
        failures.len(),
        failures.join("\n")
    );
    Compared {
        empty_cells,
        counted_empties: counters.empty_values.load(Ordering::Relaxed),
    }
}

/// Whether `value` is, or contains at any depth, a Cassandra "empty" value.
fn holds_empty(value: &CqlValue) -> bool {
    match value {
        CqlValue::Empty => true,
        CqlValue::List(items) | CqlValue::Set(items) | CqlValue::Vector(items) => {
            items.iter().any(holds_empty)
        }
        CqlValue::Map(entries) => entries
            .iter()
            .any(|(k, v)| holds_empty(k) || holds_empty(v)),
        CqlValue::Tuple(fields) => fields.iter().flatten().any(holds_empty),
        CqlValue::UserDefinedType { fields, .. } => fields
            .iter()
            .filter_map(|(_, v)| v.as_ref())
            .any(holds_empty),
        _ => false,
    }
}

fn null_at(array: &dyn Array, row: usize) -> Result<(), String> {
    if array.is_null(row) {
        Ok(())
    } else {
        Err(format!(
            "driver has NULL, Ferry has {}",
            arrow::util::display::array_value_to_string(array, row).unwrap_or_default()
        ))
    }
}

/// Whether `value` (decoded by the driver) equals Ferry's Arrow value at `row`; the error names
/// both values.
fn cql_equals_arrow(value: &CqlValue, array: &dyn Array, row: usize) -> Result<(), String> {
    if array.is_null(row) {
        return Err(format!("driver has {value:?}, Ferry has NULL"));
    }
    let mismatch = || {
        format!(
            "driver has {value:?}, Ferry has {} ({})",
            arrow::util::display::array_value_to_string(array, row).unwrap_or_default(),
            array.data_type()
        )
    };
    let check = |ok: bool| if ok { Ok(()) } else { Err(mismatch()) };
    match (value, array.data_type()) {
        (CqlValue::Ascii(s) | CqlValue::Text(s), DataType::Utf8) => {
            check(array.as_string::<i32>().value(row) == s)
        }
        (CqlValue::Blob(b), DataType::Binary) => {
            check(array.as_binary::<i32>().value(row) == b.as_slice())
        }
        (CqlValue::TinyInt(v), DataType::Int8) => {
            check(array.as_primitive::<Int8Type>().value(row) == *v)
        }
        (CqlValue::SmallInt(v), DataType::Int16) => {
            check(array.as_primitive::<Int16Type>().value(row) == *v)
        }
        (CqlValue::Int(v), DataType::Int32) => {
            check(array.as_primitive::<Int32Type>().value(row) == *v)
        }
        (CqlValue::BigInt(v), DataType::Int64) => {
            check(array.as_primitive::<Int64Type>().value(row) == *v)
        }
        (CqlValue::Counter(v), DataType::Int64) => {
            check(array.as_primitive::<Int64Type>().value(row) == v.0)
        }
        // Bit-exact, so NaN, -0.0 and subnormals count.
        (CqlValue::Float(v), DataType::Float32) => {
            check(array.as_primitive::<Float32Type>().value(row).to_bits() == v.to_bits())
        }
        (CqlValue::Double(v), DataType::Float64) => {
            check(array.as_primitive::<Float64Type>().value(row).to_bits() == v.to_bits())
        }
        (CqlValue::Boolean(v), DataType::Boolean) => check(array.as_boolean().value(row) == *v),
        (CqlValue::Varint(v), DataType::Utf8) => {
            let expected = BigInt::from_signed_bytes_be(v.as_signed_bytes_be_slice());
            check(array.as_string::<i32>().value(row) == expected.to_string())
        }
        (CqlValue::Decimal(d), DataType::Utf8) => {
            let (digits, scale) = d.as_signed_be_bytes_slice_and_exponent();
            let unscaled = BigInt::from_signed_bytes_be(digits);
            let text = array.as_string::<i32>().value(row);
            check(decimal_equals(text, &unscaled, scale)?)
        }
        (CqlValue::Timestamp(t), DataType::Timestamp(_, _)) => {
            check(array.as_primitive::<TimestampMillisecondType>().value(row) == t.0)
        }
        (CqlValue::Date(d), DataType::Date32) => {
            let days = i64::from(d.0) - (1i64 << 31);
            check(i64::from(array.as_primitive::<Date32Type>().value(row)) == days)
        }
        (CqlValue::Time(t), DataType::Time64(_)) => {
            check(array.as_primitive::<Time64NanosecondType>().value(row) == t.0)
        }
        (CqlValue::Duration(d), DataType::Interval(_)) => {
            let v = array.as_primitive::<IntervalMonthDayNanoType>().value(row);
            check((v.months, v.days, v.nanoseconds) == (d.months, d.days, d.nanoseconds))
        }
        (CqlValue::Uuid(u), DataType::FixedSizeBinary(16)) => {
            check(array.as_fixed_size_binary().value(row) == u.as_bytes())
        }
        (CqlValue::Timeuuid(u), DataType::FixedSizeBinary(16)) => {
            check(array.as_fixed_size_binary().value(row) == u.as_bytes())
        }
        (CqlValue::Inet(ip), DataType::Utf8) => {
            check(array.as_string::<i32>().value(row) == ip.to_string())
        }
        (CqlValue::List(items) | CqlValue::Set(items), DataType::List(_)) => {
            let child = array.as_list::<i32>().value(row);
            elements_equal(items.iter().map(Some), child.as_ref())
                .map_err(|e| format!("{e} (in {})", mismatch()))
        }
        (CqlValue::Vector(items), DataType::FixedSizeList(_, _)) => {
            let child = array.as_fixed_size_list().value(row);
            elements_equal(items.iter().map(Some), child.as_ref())
                .map_err(|e| format!("{e} (in {})", mismatch()))
        }
        (CqlValue::Map(entries), DataType::Map(_, _)) => {
            let entries_array = array.as_map().value(row);
            let keys = entries_array.column(0);
            let values = entries_array.column(1);
            elements_equal(entries.iter().map(|(k, _)| Some(k)), keys.as_ref())
                .and_then(|()| {
                    elements_equal(entries.iter().map(|(_, v)| Some(v)), values.as_ref())
                })
                .map_err(|e| format!("{e} (in {})", mismatch()))
        }
        (CqlValue::Tuple(fields), DataType::Struct(_)) => {
            struct_equals(fields.iter().map(Option::as_ref), array, row)
                .map_err(|e| format!("{e} (in {})", mismatch()))
        }
        (CqlValue::UserDefinedType { fields, .. }, DataType::Struct(arrow_fields)) => {
            // The driver names the fields; they must be the Arrow fields, in order.
            for ((name, _), f) in fields.iter().zip(arrow_fields.iter()) {
                if name != f.name() {
                    return Err(format!("UDT field {name} is Arrow field {}", f.name()));
                }
            }
            struct_equals(fields.iter().map(|(_, v)| v.as_ref()), array, row)
                .map_err(|e| format!("{e} (in {})", mismatch()))
        }
        _ => Err(format!("no comparison for {}", mismatch())),
    }
}

/// Compares a sequence of driver values with every element of `child`.
fn elements_equal<'a>(
    items: impl ExactSizeIterator<Item = Option<&'a CqlValue>>,
    child: &dyn Array,
) -> Result<(), String> {
    if items.len() != child.len() {
        return Err(format!(
            "driver has {} elements, Ferry has {}",
            items.len(),
            child.len()
        ));
    }
    for (i, item) in items.enumerate() {
        match item {
            None | Some(CqlValue::Empty) => null_at(child, i),
            Some(v) => cql_equals_arrow(v, child, i),
        }
        .map_err(|e| format!("element {i}: {e}"))?;
    }
    Ok(())
}

/// Compares tuple or UDT fields; fields the driver does not have must be NULL in Arrow.
fn struct_equals<'a>(
    fields: impl Iterator<Item = Option<&'a CqlValue>>,
    array: &dyn Array,
    row: usize,
) -> Result<(), String> {
    let st = array.as_struct();
    let fields: Vec<Option<&CqlValue>> = fields.collect();
    if fields.len() > st.num_columns() {
        return Err(format!(
            "driver has {} fields, Ferry has {}",
            fields.len(),
            st.num_columns()
        ));
    }
    for (i, column) in st.columns().iter().enumerate() {
        match fields.get(i).copied().flatten() {
            None | Some(CqlValue::Empty) => null_at(column.as_ref(), row),
            Some(v) => cql_equals_arrow(v, column.as_ref(), row),
        }
        .map_err(|e| format!("field {i}: {e}"))?;
    }
    Ok(())
}

/// Whether the plain decimal `text` (as Ferry writes it) equals `unscaled × 10^-scale`.
fn decimal_equals(text: &str, unscaled: &BigInt, scale: i32) -> Result<bool, String> {
    if text.contains(['e', 'E']) {
        return Err(format!("decimal {text:?} is not in plain notation"));
    }
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    let text_unscaled: BigInt = format!("{int}{frac}")
        .parse()
        .map_err(|e| format!("decimal {text:?} does not parse: {e}"))?;
    let text_scale = i64::try_from(frac.len()).map_err(|e| e.to_string())?;
    // Bring both to the larger scale: a × 10^(m - s) == b × 10^(m - t).
    let scale = i64::from(scale);
    let m = text_scale.max(scale);
    let pow = |e: i64| BigInt::from(10u8).pow(u32::try_from(e).unwrap_or(u32::MAX));
    Ok(&text_unscaled * pow(m - text_scale) == unscaled * pow(m - scale))
}
