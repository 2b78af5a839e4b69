//! The COPY encoder against a real PostgreSQL: every supported (Arrow type, target type) pair
//! is COPYed in and read back through `::text`, NULLs included; rejects and the plan-time check;
//! and a property test over random schemas, read back through tokio-postgres' own decoding.

use std::sync::Arc;

use arrow::array::*;
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::*;
use bytes::Bytes;
use ferry_connectors::yugabyte::encoder::{COPY_HEADER, COPY_TRAILER, EncodedBatch};
use ferry_connectors::yugabyte::{CopyEncoder, TargetTable};
use futures::SinkExt;
use proptest::prelude::*;
use tokio_postgres::Client;

use crate::support;

/// One (Arrow type, target type) pair: three values and what `::text` shows for each.
struct Case {
    pg: &'static str,
    array: ArrayRef,
    expected: [Option<&'static str>; 3],
}

fn case(pg: &'static str, array: ArrayRef, expected: [Option<&'static str>; 3]) -> Case {
    assert_eq!(array.len(), 3, "{pg}");
    Case {
        pg,
        array,
        expected,
    }
}

async fn exec(client: &Client, sql: &str) {
    if let Err(e) = client.batch_execute(sql).await {
        panic!("{sql}: {e}");
    }
}

/// Creates `name` with columns `(i int, c0 …, c1 …)` and COPYs `columns` in; returns what the
/// encoder said.
async fn load(client: &Client, name: &str, types: &[&str], columns: Vec<ArrayRef>) -> EncodedBatch {
    let defs: Vec<String> = types
        .iter()
        .enumerate()
        .map(|(k, t)| format!(", c{k} {t}"))
        .collect();
    exec(
        client,
        &format!(
            "DROP TABLE IF EXISTS {name}; CREATE TABLE {name} (i int{})",
            defs.concat()
        ),
    )
    .await;
    let n = columns.first().map_or(0, |c| c.len());
    let mut fields = vec![Field::new("i", DataType::Int32, false)];
    let mut arrays: Vec<ArrayRef> = vec![Arc::new(Int32Array::from_iter_values(0..n as i32))];
    for (k, a) in columns.into_iter().enumerate() {
        fields.push(Field::new(format!("c{k}"), a.data_type().clone(), true));
        arrays.push(a);
    }
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).expect("batch");
    let target = TargetTable::load(client, "public", name)
        .await
        .expect("target loads");
    let encoder =
        CopyEncoder::try_new(&batch.schema(), &target).unwrap_or_else(|e| panic!("{name}: {e}"));
    let encoded = encoder.encode(&batch);
    copy(client, &encoder, &encoded).await;
    encoded
}

async fn copy(client: &Client, encoder: &CopyEncoder, encoded: &EncodedBatch) {
    let sink = client
        .copy_in::<_, Bytes>(encoder.copy_sql())
        .await
        .expect("COPY starts");
    let mut sink = std::pin::pin!(sink);
    sink.feed(Bytes::from_static(COPY_HEADER))
        .await
        .expect("header");
    for chunk in &encoded.chunks {
        sink.feed(chunk.clone()).await.expect("rows");
    }
    sink.feed(Bytes::from_static(COPY_TRAILER))
        .await
        .expect("trailer");
    let rows = sink
        .as_mut()
        .finish()
        .await
        .unwrap_or_else(|e| panic!("COPY failed: {e:?}"));
    assert_eq!(rows as usize, encoded.rows);
}

/// Every column of `name` as text, row by row in `i` order.
async fn read_text(client: &Client, name: &str, columns: usize) -> Vec<Vec<Option<String>>> {
    let list: Vec<String> = (0..columns).map(|k| format!("c{k}::text")).collect();
    client
        .query(
            &format!("SELECT {} FROM {name} ORDER BY i", list.join(", ")),
            &[],
        )
        .await
        .expect("read back")
        .iter()
        .map(|r| (0..columns).map(|k| r.get(k)).collect())
        .collect()
}

async fn round_trip(name: &str, cases: Vec<Case>) {
    let client = support::postgres().await;
    exec(
        &client,
        "SET TimeZone = 'UTC'; SET IntervalStyle = 'postgres'",
    )
    .await;
    // Created once and kept: tests run in parallel, and dropping a type drops its columns.
    exec(
        &client,
        "DO $$ BEGIN CREATE TYPE enc_pair AS (a int4, b text); \
         EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$; \
         DO $$ BEGIN CREATE DOMAIN enc_posint AS int4 CHECK (VALUE > 0); \
         EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$",
    )
    .await;
    let types: Vec<&str> = cases.iter().map(|c| c.pg).collect();
    let arrays: Vec<ArrayRef> = cases.iter().map(|c| Arc::clone(&c.array)).collect();
    let out = load(&client, name, &types, arrays).await;
    assert!(out.rejects.is_empty(), "{:?}", out.rejects);
    let rows = read_text(&client, name, cases.len()).await;
    assert_eq!(rows.len(), 3);
    for (k, c) in cases.iter().enumerate() {
        for (r, expected) in c.expected.iter().enumerate() {
            assert_eq!(
                rows[r][k].as_deref(),
                *expected,
                "{} ← {} (column c{k}, row {r})",
                c.pg,
                c.array.data_type()
            );
        }
    }
}

fn utf8(v: [Option<&str>; 3]) -> ArrayRef {
    Arc::new(StringArray::from(v.to_vec()))
}

#[tokio::test]
async fn scalars_round_trip() {
    let ts_ms = |tz: Option<&str>| -> ArrayRef {
        let a = TimestampMillisecondArray::from(vec![Some(1_709_210_096_789), Some(-1), None]);
        Arc::new(match tz {
            Some(tz) => a.with_timezone(tz),
            None => a,
        })
    };
    let uuid = [
        0x00u8, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee,
        0xff,
    ];
    let uuid_text = Some("00112233-4455-6677-8899-aabbccddeeff");
    let dict: DictionaryArray<Int32Type> = vec![Some("a"), Some("bb"), None].into_iter().collect();
    let cases = vec![
        case(
            "bool",
            Arc::new(BooleanArray::from(vec![Some(true), Some(false), None])),
            [Some("true"), Some("false"), None],
        ),
        case(
            "int2",
            Arc::new(Int8Array::from(vec![Some(-128), Some(127), None])),
            [Some("-128"), Some("127"), None],
        ),
        case(
            "int2",
            Arc::new(UInt8Array::from(vec![Some(0), Some(255), None])),
            [Some("0"), Some("255"), None],
        ),
        case(
            "int2",
            Arc::new(Int16Array::from(vec![Some(i16::MIN), Some(i16::MAX), None])),
            [Some("-32768"), Some("32767"), None],
        ),
        case(
            "int4",
            Arc::new(UInt16Array::from(vec![Some(0), Some(65535), None])),
            [Some("0"), Some("65535"), None],
        ),
        case(
            "int4",
            Arc::new(Int32Array::from(vec![Some(i32::MIN), Some(i32::MAX), None])),
            [Some("-2147483648"), Some("2147483647"), None],
        ),
        case(
            "int4",
            Arc::new(Int64Array::from(vec![Some(-5), Some(2_000_000_000), None])),
            [Some("-5"), Some("2000000000"), None],
        ),
        case(
            "int8",
            Arc::new(Int32Array::from(vec![Some(-1), Some(7), None])),
            [Some("-1"), Some("7"), None],
        ),
        case(
            "int8",
            Arc::new(UInt32Array::from(vec![Some(0), Some(u32::MAX), None])),
            [Some("0"), Some("4294967295"), None],
        ),
        case(
            "int8",
            Arc::new(Int64Array::from(vec![Some(i64::MIN), Some(i64::MAX), None])),
            [
                Some("-9223372036854775808"),
                Some("9223372036854775807"),
                None,
            ],
        ),
        case(
            "int8",
            Arc::new(UInt64Array::from(vec![
                Some(0),
                Some(i64::MAX as u64),
                None,
            ])),
            [Some("0"), Some("9223372036854775807"), None],
        ),
        case(
            "float4",
            Arc::new(Int16Array::from(vec![Some(-3), Some(1000), None])),
            [Some("-3"), Some("1000"), None],
        ),
        case(
            "float8",
            Arc::new(Int32Array::from(vec![Some(-3), Some(i32::MAX), None])),
            [Some("-3"), Some("2147483647"), None],
        ),
        case(
            "numeric",
            Arc::new(Int64Array::from(vec![Some(i64::MIN), Some(0), None])),
            [Some("-9223372036854775808"), Some("0"), None],
        ),
        case(
            "numeric",
            Arc::new(UInt64Array::from(vec![Some(u64::MAX), Some(10_000), None])),
            [Some("18446744073709551615"), Some("10000"), None],
        ),
        case(
            "float4",
            Arc::new(Float32Array::from(vec![Some(1.5), Some(-0.25), None])),
            [Some("1.5"), Some("-0.25"), None],
        ),
        case(
            "float4",
            Arc::new(Float64Array::from(vec![
                Some(0.5),
                Some(f64::INFINITY),
                None,
            ])),
            [Some("0.5"), Some("Infinity"), None],
        ),
        case(
            "float4",
            arrow::compute::cast(
                &Float32Array::from(vec![Some(1.5), Some(-2.0), None]),
                &DataType::Float16,
            )
            .expect("f16"),
            [Some("1.5"), Some("-2"), None],
        ),
        case(
            "float8",
            Arc::new(Float32Array::from(vec![Some(0.5), Some(f32::NAN), None])),
            [Some("0.5"), Some("NaN"), None],
        ),
        case(
            "float8",
            Arc::new(Float64Array::from(vec![Some(0.1), Some(1e300), None])),
            [Some("0.1"), Some("1e+300"), None],
        ),
        case(
            "numeric",
            Arc::new(Float64Array::from(vec![
                Some(0.1),
                Some(-1e-7),
                Some(f64::NAN),
            ])),
            [Some("0.1"), Some("-0.0000001"), Some("NaN")],
        ),
        case(
            "numeric",
            Arc::new(Float32Array::from(vec![
                Some(0.1),
                Some(f32::INFINITY),
                None,
            ])),
            [Some("0.1"), Some("Infinity"), None],
        ),
        case(
            "numeric",
            Arc::new(
                Decimal128Array::from(vec![
                    Some(-123_456_789_012_345_678_901_234_567_890),
                    Some(5),
                    None,
                ])
                .with_precision_and_scale(38, 10)
                .expect("dec"),
            ),
            [
                Some("-12345678901234567890.1234567890"),
                Some("0.0000000005"),
                None,
            ],
        ),
        case(
            "numeric",
            Arc::new(
                Decimal256Array::from(vec![
                    Some(i256::from_i128(10_000)),
                    Some(i256::from_i128(-1)),
                    None,
                ])
                .with_precision_and_scale(50, 5)
                .expect("dec"),
            ),
            [Some("0.10000"), Some("-0.00001"), None],
        ),
        case(
            "numeric",
            Arc::new(
                Decimal32Array::from(vec![Some(12_345), Some(0), None])
                    .with_precision_and_scale(5, 2)
                    .expect("dec"),
            ),
            [Some("123.45"), Some("0.00"), None],
        ),
        case(
            "numeric",
            Arc::new(
                Decimal64Array::from(vec![Some(10_000), Some(-99_990_000), None])
                    .with_precision_and_scale(18, 4)
                    .expect("dec"),
            ),
            [Some("1.0000"), Some("-9999.0000"), None],
        ),
        case(
            "numeric",
            utf8([
                Some("123456789012345678901234567890.000000001"),
                Some("-0.0001"),
                Some("NaN"),
            ]),
            [
                Some("123456789012345678901234567890.000000001"),
                Some("-0.0001"),
                Some("NaN"),
            ],
        ),
        case(
            "numeric",
            utf8([Some("1E+3"), Some("-Infinity"), Some("10000.00")]),
            [Some("1000"), Some("-Infinity"), Some("10000.00")],
        ),
        case(
            "numeric(10,2)",
            utf8([Some("12.5"), Some("-0.01"), None]),
            [Some("12.50"), Some("-0.01"), None],
        ),
        case(
            "text",
            utf8([Some("héllo"), Some(""), None]),
            [Some("héllo"), Some(""), None],
        ),
        case(
            "text",
            Arc::new(LargeStringArray::from(vec![Some("large"), Some("x"), None])),
            [Some("large"), Some("x"), None],
        ),
        case(
            "text",
            Arc::new(StringViewArray::from(vec![
                Some("a view longer than twelve bytes"),
                Some("short"),
                None,
            ])),
            [Some("a view longer than twelve bytes"), Some("short"), None],
        ),
        case("text", Arc::new(dict), [Some("a"), Some("bb"), None]),
        case(
            "varchar(5)",
            utf8([Some("héllo"), Some("ab"), None]),
            [Some("héllo"), Some("ab"), None],
        ),
        case(
            "name",
            utf8([Some("pg_class"), Some(""), None]),
            [Some("pg_class"), Some(""), None],
        ),
        case(
            "char(3)",
            utf8([Some("ab"), Some("abc"), None]),
            [Some("ab"), Some("abc"), None],
        ),
        case(
            "json",
            utf8([Some("{\"b\": 2, \"a\": [1]}"), Some("null"), None]),
            [Some("{\"b\": 2, \"a\": [1]}"), Some("null"), None],
        ),
        case(
            "jsonb",
            utf8([Some("{\"b\": 2, \"a\": [1]}"), Some("\"x\""), None]),
            [Some("{\"a\": [1], \"b\": 2}"), Some("\"x\""), None],
        ),
        case(
            "uuid",
            utf8([uuid_text, Some("{00112233445566778899AABBCCDDEEFF}"), None]),
            [uuid_text, uuid_text, None],
        ),
        case(
            "uuid",
            Arc::new(
                FixedSizeBinaryArray::try_from_sparse_iter_with_size(
                    vec![Some(uuid), Some([0u8; 16]), None].into_iter(),
                    16,
                )
                .expect("fsb"),
            ),
            [
                uuid_text,
                Some("00000000-0000-0000-0000-000000000000"),
                None,
            ],
        ),
        case(
            "uuid",
            Arc::new(BinaryArray::from(vec![
                Some(&uuid[..]),
                Some(&uuid[..]),
                None,
            ])),
            [uuid_text, uuid_text, None],
        ),
        case(
            "inet",
            utf8([Some("192.168.0.1"), Some("::1/64"), None]),
            // inet::text always shows the mask.
            [Some("192.168.0.1/32"), Some("::1/64"), None],
        ),
        case(
            "cidr",
            utf8([Some("10.0.0.0/8"), Some("2001:db8::/32"), None]),
            [Some("10.0.0.0/8"), Some("2001:db8::/32"), None],
        ),
        case(
            "date",
            utf8([Some("2024-02-29"), Some("0001-01-01"), None]),
            [Some("2024-02-29"), Some("0001-01-01"), None],
        ),
        case(
            "timestamp",
            utf8([
                Some("2024-02-29 12:34:56.789"),
                Some("2024-02-29T00:00:00+05"),
                None,
            ]),
            [
                Some("2024-02-29 12:34:56.789"),
                Some("2024-02-29 00:00:00"),
                None,
            ],
        ),
        case(
            "timestamptz",
            utf8([
                Some("2024-02-29 12:34:56+02"),
                Some("2024-02-29T00:00:00Z"),
                None,
            ]),
            [
                Some("2024-02-29 10:34:56+00"),
                Some("2024-02-29 00:00:00+00"),
                None,
            ],
        ),
        case(
            "time",
            utf8([Some("12:34:56.5"), Some("24:00:00"), None]),
            [Some("12:34:56.5"), Some("24:00:00"), None],
        ),
        case(
            "bytea",
            Arc::new(BinaryArray::from(vec![
                Some(&[1u8, 2, 3][..]),
                Some(&[][..]),
                None,
            ])),
            [Some("\\x010203"), Some("\\x"), None],
        ),
        case(
            "bytea",
            Arc::new(LargeBinaryArray::from(vec![
                Some(&[0xffu8][..]),
                Some(&[0u8][..]),
                None,
            ])),
            [Some("\\xff"), Some("\\x00"), None],
        ),
        case(
            "bytea",
            Arc::new(BinaryViewArray::from(vec![
                Some(&[0xabu8][..]),
                Some(&[1u8; 13][..]),
                None,
            ])),
            [Some("\\xab"), Some("\\x01010101010101010101010101"), None],
        ),
        case(
            "bytea",
            Arc::new(
                FixedSizeBinaryArray::try_from_sparse_iter_with_size(
                    vec![Some([1u8, 2, 3]), Some([0, 0, 0]), None].into_iter(),
                    3,
                )
                .expect("fsb"),
            ),
            [Some("\\x010203"), Some("\\x000000"), None],
        ),
        case(
            "date",
            Arc::new(Date32Array::from(vec![Some(19_782), Some(-719_162), None])),
            [Some("2024-02-29"), Some("0001-01-01"), None],
        ),
        case(
            "date",
            Arc::new(Date64Array::from(vec![
                Some(19_782 * 86_400_000),
                Some(0),
                None,
            ])),
            [Some("2024-02-29"), Some("1970-01-01"), None],
        ),
        case(
            "time",
            Arc::new(Time32SecondArray::from(vec![Some(3_661), Some(0), None])),
            [Some("01:01:01"), Some("00:00:00"), None],
        ),
        case(
            "time",
            Arc::new(Time32MillisecondArray::from(vec![
                Some(3_661_500),
                Some(86_399_999),
                None,
            ])),
            [Some("01:01:01.5"), Some("23:59:59.999"), None],
        ),
        case(
            "time",
            Arc::new(Time64MicrosecondArray::from(vec![
                Some(1),
                Some(86_400_000_000),
                None,
            ])),
            [Some("00:00:00.000001"), Some("24:00:00"), None],
        ),
        case(
            "time",
            Arc::new(Time64NanosecondArray::from(vec![
                Some(45_296_789_123_000),
                Some(1_000),
                None,
            ])),
            [Some("12:34:56.789123"), Some("00:00:00.000001"), None],
        ),
        case(
            "timestamp",
            Arc::new(TimestampSecondArray::from(vec![
                Some(0),
                Some(-62_135_596_800),
                None,
            ])),
            [
                Some("1970-01-01 00:00:00"),
                Some("0001-01-01 00:00:00"),
                None,
            ],
        ),
        case(
            "timestamp",
            ts_ms(None),
            [
                Some("2024-02-29 12:34:56.789"),
                Some("1969-12-31 23:59:59.999"),
                None,
            ],
        ),
        case(
            "timestamp",
            Arc::new(TimestampMicrosecondArray::from(vec![
                Some(1),
                Some(946_684_800_000_000),
                None,
            ])),
            [
                Some("1970-01-01 00:00:00.000001"),
                Some("2000-01-01 00:00:00"),
                None,
            ],
        ),
        case(
            "timestamp",
            Arc::new(TimestampNanosecondArray::from(vec![
                Some(1_000),
                Some(-1_000),
                None,
            ])),
            [
                Some("1970-01-01 00:00:00.000001"),
                Some("1969-12-31 23:59:59.999999"),
                None,
            ],
        ),
        case(
            "timestamptz",
            ts_ms(Some("UTC")),
            [
                Some("2024-02-29 12:34:56.789+00"),
                Some("1969-12-31 23:59:59.999+00"),
                None,
            ],
        ),
        case(
            "timestamptz",
            Arc::new(
                TimestampMicrosecondArray::from(vec![Some(0), Some(1), None])
                    .with_timezone("+05:00"),
            ),
            [
                Some("1970-01-01 00:00:00+00"),
                Some("1970-01-01 00:00:00.000001+00"),
                None,
            ],
        ),
        case(
            "interval",
            Arc::new(IntervalMonthDayNanoArray::from(vec![
                Some(IntervalMonthDayNano::new(1, 2, 3_000_000_000)),
                Some(IntervalMonthDayNano::new(-14, 0, -1_000)),
                None,
            ])),
            [
                Some("1 mon 2 days 00:00:03"),
                Some("-1 years -2 mons -00:00:00.000001"),
                None,
            ],
        ),
        case(
            "interval",
            Arc::new(IntervalDayTimeArray::from(vec![
                Some(IntervalDayTime::new(3, 1_500)),
                Some(IntervalDayTime::new(0, 0)),
                None,
            ])),
            [Some("3 days 00:00:01.5"), Some("00:00:00"), None],
        ),
        case(
            "interval",
            Arc::new(IntervalYearMonthArray::from(vec![Some(25), Some(-1), None])),
            [Some("2 years 1 mon"), Some("-1 mons"), None],
        ),
        case(
            "interval",
            Arc::new(DurationSecondArray::from(vec![
                Some(90_061),
                Some(-1),
                None,
            ])),
            [Some("25:01:01"), Some("-00:00:01"), None],
        ),
        case(
            "interval",
            Arc::new(DurationMillisecondArray::from(vec![
                Some(1_500),
                Some(0),
                None,
            ])),
            [Some("00:00:01.5"), Some("00:00:00"), None],
        ),
        case(
            "interval",
            Arc::new(DurationMicrosecondArray::from(vec![
                Some(1),
                Some(3_600_000_000),
                None,
            ])),
            [Some("00:00:00.000001"), Some("01:00:00"), None],
        ),
        case(
            "interval",
            Arc::new(DurationNanosecondArray::from(vec![
                Some(2_000),
                Some(0),
                None,
            ])),
            [Some("00:00:00.000002"), Some("00:00:00"), None],
        ),
        case("int4", Arc::new(NullArray::new(3)), [None, None, None]),
        case(
            "enc_posint",
            Arc::new(Int32Array::from(vec![Some(1), Some(42), None])),
            [Some("1"), Some("42"), None],
        ),
    ];
    round_trip("enc_scalars", cases).await;
}

fn list<T: ArrowPrimitiveType>(rows: Vec<Option<Vec<Option<T::Native>>>>) -> ArrayRef {
    Arc::new(ListArray::from_iter_primitive::<T, _, _>(rows))
}

#[tokio::test]
async fn nested_round_trip() {
    let int_lists =
        || list::<Int32Type>(vec![Some(vec![Some(1), None, Some(3)]), Some(vec![]), None]);
    let large = LargeListArray::from_iter_primitive::<Int64Type, _, _>(vec![
        Some(vec![Some(i64::MAX)]),
        Some(vec![None]),
        None,
    ]);
    let vectors = FixedSizeListArray::try_new(
        Arc::new(Field::new("item", DataType::Float32, true)),
        3,
        Arc::new(Float32Array::from(vec![
            1.0, 2.5, -3.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
        ])),
        Some(vec![true, true, false].into()),
    )
    .expect("vectors");
    let matrix = {
        let mut b = ListBuilder::new(ListBuilder::new(Int32Builder::new()));
        for row in [vec![vec![1, 2], vec![3, 4]], vec![vec![5]], vec![]] {
            for sub in row {
                b.values().values().append_slice(&sub);
                b.values().append(true);
            }
            b.append(true);
        }
        Arc::new(b.finish()) as ArrayRef
    };
    let texts = {
        let mut b = ListBuilder::new(StringBuilder::new());
        b.values().append_value("a,b");
        b.values().append_value("q\"uote");
        b.append(true);
        b.values().append_null();
        b.append(true);
        b.append(false);
        Arc::new(b.finish()) as ArrayRef
    };
    let uuids = {
        let mut b = ListBuilder::new(FixedSizeBinaryBuilder::new(16));
        b.values().append_value([1u8; 16]).expect("16 bytes");
        b.append(true);
        b.append(true);
        b.append(false);
        Arc::new(b.finish()) as ArrayRef
    };
    let pair = || -> ArrayRef {
        Arc::new(StructArray::new(
            Fields::from(vec![
                Field::new("a", DataType::Int32, true),
                Field::new("b", DataType::Utf8, true),
            ]),
            vec![
                Arc::new(Int32Array::from(vec![Some(1), None, Some(0)])),
                Arc::new(StringArray::from(vec![Some("x y"), Some("z"), None])),
            ],
            Some(vec![true, true, false].into()),
        ))
    };
    let tuple = Arc::new(StructArray::new(
        Fields::from(vec![
            Field::new("f0", DataType::Int32, true),
            Field::new("f1", DataType::Utf8, true),
        ]),
        vec![
            Arc::new(Int32Array::from(vec![Some(7), Some(8), Some(9)])),
            Arc::new(StringArray::from(vec![Some("t"), None, Some("")])),
        ],
        None,
    )) as ArrayRef;
    let map = {
        let mut b = MapBuilder::new(None, StringBuilder::new(), Int32Builder::new());
        b.keys().append_value("k");
        b.values().append_value(1);
        b.keys().append_value("n");
        b.values().append_null();
        b.append(true).expect("map");
        b.append(true).expect("map");
        b.append(false).expect("map");
        Arc::new(b.finish()) as ArrayRef
    };
    let int_map = {
        let mut b = MapBuilder::new(None, Int32Builder::new(), Float64Builder::new());
        b.keys().append_value(2);
        b.values().append_value(0.5);
        b.append(true).expect("map");
        b.append(true).expect("map");
        b.append(false).expect("map");
        Arc::new(b.finish()) as ArrayRef
    };
    let ts = Arc::new(
        TimestampMillisecondArray::from(vec![Some(1_000), Some(0), None]).with_timezone("UTC"),
    ) as ArrayRef;
    let dec = Arc::new(
        Decimal128Array::from(vec![Some(-5), Some(12_300), None])
            .with_precision_and_scale(10, 2)
            .expect("dec"),
    ) as ArrayRef;
    let numeric_strings = {
        let mut b = ListBuilder::new(StringBuilder::new());
        b.values().append_value("1.50");
        b.values().append_value("-2");
        b.append(true);
        b.append(true);
        b.append(false);
        Arc::new(b.finish()) as ArrayRef
    };
    let offsets = OffsetBuffer::new(vec![0, 2, 3, 3].into());
    let pairs = Arc::new(ListArray::new(
        Arc::new(Field::new("item", pair().data_type().clone(), true)),
        offsets,
        pair(),
        None,
    )) as ArrayRef;
    let cases = vec![
        case(
            "int4[]",
            int_lists(),
            [Some("{1,NULL,3}"), Some("{}"), None],
        ),
        case(
            "int8[]",
            Arc::new(large),
            [Some("{9223372036854775807}"), Some("{NULL}"), None],
        ),
        case(
            "real[]",
            Arc::new(vectors),
            [Some("{1,2.5,-3}"), Some("{0,0,0}"), None],
        ),
        case(
            "int4[]",
            matrix,
            [Some("{{1,2},{3,4}}"), Some("{{5}}"), Some("{}")],
        ),
        case(
            "text[]",
            texts,
            [Some("{\"a,b\",\"q\\\"uote\"}"), Some("{NULL}"), None],
        ),
        case(
            "uuid[]",
            uuids,
            [
                Some("{01010101-0101-0101-0101-010101010101}"),
                Some("{}"),
                None,
            ],
        ),
        case(
            "numeric[]",
            numeric_strings,
            [Some("{1.50,-2}"), Some("{}"), None],
        ),
        case(
            "enc_pair",
            pair(),
            [Some("(1,\"x y\")"), Some("(,z)"), None],
        ),
        case(
            "enc_pair",
            tuple,
            [Some("(7,t)"), Some("(8,)"), Some("(9,\"\")")],
        ),
        case(
            "enc_pair[]",
            pairs,
            [
                Some("{\"(1,\\\"x y\\\")\",\"(,z)\"}"),
                Some("{NULL}"),
                Some("{}"),
            ],
        ),
        case(
            "jsonb",
            pair(),
            [
                Some("{\"a\": 1, \"b\": \"x y\"}"),
                Some("{\"a\": null, \"b\": \"z\"}"),
                None,
            ],
        ),
        case(
            "jsonb",
            map,
            [Some("{\"k\": 1, \"n\": null}"), Some("{}"), None],
        ),
        case("jsonb", int_map, [Some("{\"2\": 0.5}"), Some("{}"), None]),
        case("json", int_lists(), [Some("[1,null,3]"), Some("[]"), None]),
        case(
            "jsonb",
            Arc::new(Float32Array::from(vec![Some(0.1), Some(-1e-7), None])),
            [Some("0.1"), Some("-0.0000001"), None],
        ),
        case(
            "jsonb",
            ts,
            [
                Some("\"1970-01-01T00:00:01Z\""),
                Some("\"1970-01-01T00:00:00Z\""),
                None,
            ],
        ),
        case("jsonb", dec, [Some("-0.05"), Some("123.00"), None]),
    ];
    round_trip("enc_nested", cases).await;
}

#[tokio::test]
async fn values_the_target_cannot_hold_are_rejected_not_aborted() {
    let client = support::postgres().await;
    let non_rectangular = {
        let mut b = ListBuilder::new(ListBuilder::new(Int32Builder::new()));
        for row in [
            vec![vec![1], vec![2, 3]],
            vec![vec![1]],
            vec![vec![1]],
            vec![vec![1]],
            vec![vec![1]],
            vec![vec![1]],
            vec![vec![1]],
            vec![vec![1]],
            vec![vec![1]],
        ] {
            for sub in row {
                b.values().values().append_slice(&sub);
                b.values().append(true);
            }
            b.append(true);
        }
        Arc::new(b.finish()) as ArrayRef
    };
    let good = |v: &str, bad: (usize, &str)| -> ArrayRef {
        let mut values = vec![v; 9];
        values[bad.0] = bad.1;
        Arc::new(StringArray::from(values))
    };
    let out = load(
        &client,
        "enc_rejects",
        &[
            "int2",
            "text",
            "uuid",
            "date",
            "jsonb",
            "numeric(5,2)",
            "timestamp",
            "int4[]",
            "inet",
        ],
        vec![
            Arc::new(Int32Array::from(vec![1, 40_000, 1, 1, 1, 1, 1, 1, 1])),
            good("ok", (2, "nul\0byte")),
            good("00112233-4455-6677-8899-aabbccddeeff", (3, "not-a-uuid")),
            Arc::new(Date32Array::from(vec![0, 0, 0, 0, i32::MAX, 0, 0, 0, 0])),
            good("{}", (5, "{\"a\":")),
            good("1.5", (6, "1.234")),
            Arc::new(TimestampSecondArray::from(vec![
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                i64::MAX,
                0,
            ])),
            non_rectangular,
            good("10.0.0.1", (8, "10.0.0.300")),
        ],
    )
    .await;
    let got: Vec<(usize, &str)> = out
        .rejects
        .iter()
        .map(|r| (r.row, r.column.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            (0, "c7"),
            (1, "c0"),
            (2, "c1"),
            (3, "c2"),
            (4, "c3"),
            (5, "c4"),
            (6, "c5"),
            (7, "c6"),
            (8, "c8")
        ],
        "{:#?}",
        out.rejects
    );
    assert_eq!(out.rows, 0);
    let count: i64 = client
        .query_one("SELECT count(*) FROM enc_rejects", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(count, 0);
}

#[tokio::test]
async fn incompatible_columns_fail_the_plan_with_every_column_listed() {
    let client = support::postgres().await;
    exec(
        &client,
        "DROP TABLE IF EXISTS enc_incompatible; \
         CREATE TABLE enc_incompatible (a int4, b uuid, c int4[], d date, e text NOT NULL)",
    )
    .await;
    let target = TargetTable::load(&client, "public", "enc_incompatible")
        .await
        .expect("loads");
    let schema = Arc::new(Schema::new(vec![
        Field::new("a", DataType::Float64, true),
        Field::new("b", DataType::Int64, true),
        Field::new("c", DataType::Utf8, true),
        Field::new("d", DataType::Date32, true),
    ]));
    let msg = CopyEncoder::try_new(&schema, &target)
        .expect_err("incompatible")
        .to_string();
    for needle in [
        "4 column(s)",
        "a: Float64 cannot be written to integer (a float into an integer column would round",
        "b: Int64 cannot be written to uuid",
        "c: Utf8 cannot be written to integer[] (only a List",
        "e: NOT NULL column",
    ] {
        assert!(msg.contains(needle), "{needle:?} not in:\n{msg}");
    }
    assert!(!msg.contains("  d:"), "{msg}");
}

/// A column kind of the property test: its target type and a strategy for its values.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Int16,
    Int32,
    Int64,
    Float64,
    Bool,
    Text,
    Numeric,
    Date,
    Timestamptz,
    Bytea,
    Uuid,
    IntArray,
    /// Decimal128(18, 3) into numeric, read back as text.
    Decimal,
    /// Timestamp(ns) into timestamp: sub-microsecond digits dropped toward the past.
    TimestampNs,
    /// List<Utf8> into text[].
    TextArray,
    /// Struct{a: Int64, b: Utf8} into jsonb, read back as JSON.
    Struct,
}

const KINDS: [Kind; 16] = [
    Kind::Int16,
    Kind::Int32,
    Kind::Int64,
    Kind::Float64,
    Kind::Bool,
    Kind::Text,
    Kind::Numeric,
    Kind::Date,
    Kind::Timestamptz,
    Kind::Bytea,
    Kind::Uuid,
    Kind::IntArray,
    Kind::Decimal,
    Kind::TimestampNs,
    Kind::TextArray,
    Kind::Struct,
];

/// One generated value, as the oracle compares it.
#[derive(Debug, Clone, PartialEq)]
enum Val {
    I(i64),
    F(f64),
    B(bool),
    S(String),
    Bytes(Vec<u8>),
    List(Vec<Option<i32>>),
    Texts(Vec<Option<String>>),
    Pair(Option<i64>, Option<String>),
}

impl Kind {
    fn pg(self) -> &'static str {
        match self {
            Kind::Int16 => "int2",
            Kind::Int32 => "int4",
            Kind::Int64 => "int8",
            Kind::Float64 => "float8",
            Kind::Bool => "bool",
            Kind::Text => "text",
            Kind::Numeric => "numeric",
            Kind::Date => "date",
            Kind::Timestamptz => "timestamptz",
            Kind::Bytea => "bytea",
            Kind::Uuid => "uuid",
            Kind::IntArray => "int4[]",
            Kind::Decimal => "numeric",
            Kind::TimestampNs => "timestamp",
            Kind::TextArray => "text[]",
            Kind::Struct => "jsonb",
        }
    }

    fn value(self) -> BoxedStrategy<Val> {
        match self {
            Kind::Int16 => any::<i16>().prop_map(|v| Val::I(v.into())).boxed(),
            Kind::Int32 => any::<i32>().prop_map(|v| Val::I(v.into())).boxed(),
            Kind::Int64 => any::<i64>().prop_map(Val::I).boxed(),
            Kind::Float64 => any::<f64>()
                .prop_filter("NaN is not equal to itself", |v| !v.is_nan())
                .prop_map(Val::F)
                .boxed(),
            Kind::Bool => any::<bool>().prop_map(Val::B).boxed(),
            Kind::Text => "[^\u{0}]{0,40}".prop_map(Val::S).boxed(),
            Kind::Numeric => ("-?", "[1-9][0-9]{0,30}|0", "(\\.[0-9]{1,20})?")
                .prop_map(|(s, i, f)| {
                    Val::S(format!(
                        "{}{i}{f}",
                        if s.is_empty() || (i == "0" && f.trim_end_matches(['0', '.']).is_empty()) {
                            ""
                        } else {
                            "-"
                        }
                    ))
                })
                .boxed(),
            Kind::Date => (-700_000i32..2_900_000)
                .prop_map(|d| Val::I(d.into()))
                .boxed(),
            Kind::Timestamptz => (-62_000_000_000_000i64..250_000_000_000_000)
                .prop_map(Val::I)
                .boxed(),
            Kind::Bytea => proptest::collection::vec(any::<u8>(), 0..40)
                .prop_map(Val::Bytes)
                .boxed(),
            Kind::Uuid => any::<[u8; 16]>()
                .prop_map(|u| Val::Bytes(u.to_vec()))
                .boxed(),
            Kind::IntArray => proptest::collection::vec(proptest::option::of(any::<i32>()), 0..6)
                .prop_map(Val::List)
                .boxed(),
            Kind::Decimal => (-999_999_999_999_999_999i64..=999_999_999_999_999_999)
                .prop_map(Val::I)
                .boxed(),
            Kind::TimestampNs => any::<i64>().prop_map(Val::I).boxed(),
            Kind::TextArray => {
                proptest::collection::vec(proptest::option::of("[^\u{0}]{0,8}"), 0..5)
                    .prop_map(Val::Texts)
                    .boxed()
            }
            Kind::Struct => (
                proptest::option::of(any::<i64>()),
                proptest::option::of("[^\u{0}]{0,8}"),
            )
                .prop_map(|(a, b)| Val::Pair(a, b))
                .boxed(),
        }
    }

    fn array(self, values: &[Option<Val>]) -> ArrayRef {
        let i = |v: &Option<Val>| match v {
            Some(Val::I(x)) => Some(*x),
            _ => None,
        };
        let bytes = |v: &Option<Val>| match v {
            Some(Val::Bytes(b)) => Some(b.clone()),
            _ => None,
        };
        match self {
            Kind::Int16 => Arc::new(Int16Array::from_iter(
                values.iter().map(|v| i(v).map(|x| x as i16)),
            )),
            Kind::Int32 => Arc::new(Int32Array::from_iter(
                values.iter().map(|v| i(v).map(|x| x as i32)),
            )),
            Kind::Int64 => Arc::new(Int64Array::from_iter(values.iter().map(i))),
            Kind::Date => Arc::new(Date32Array::from_iter(
                values.iter().map(|v| i(v).map(|x| x as i32)),
            )),
            Kind::Timestamptz => Arc::new(
                TimestampMicrosecondArray::from_iter(values.iter().map(i)).with_timezone("UTC"),
            ),
            Kind::Float64 => Arc::new(Float64Array::from_iter(values.iter().map(|v| match v {
                Some(Val::F(x)) => Some(*x),
                _ => None,
            }))),
            Kind::Bool => Arc::new(BooleanArray::from_iter(values.iter().map(|v| match v {
                Some(Val::B(x)) => Some(*x),
                _ => None,
            }))),
            Kind::Text | Kind::Numeric => {
                Arc::new(StringArray::from_iter(values.iter().map(|v| match v {
                    Some(Val::S(x)) => Some(x.clone()),
                    _ => None,
                })))
            }
            Kind::Bytea => Arc::new(BinaryArray::from_iter(values.iter().map(bytes))),
            Kind::Uuid => Arc::new(
                FixedSizeBinaryArray::try_from_sparse_iter_with_size(values.iter().map(bytes), 16)
                    .expect("16 bytes"),
            ),
            Kind::Decimal => Arc::new(
                Decimal128Array::from_iter(values.iter().map(|v| i(v).map(i128::from)))
                    .with_precision_and_scale(18, 3)
                    .expect("valid decimal"),
            ),
            Kind::TimestampNs => {
                Arc::new(TimestampNanosecondArray::from_iter(values.iter().map(i)))
            }
            Kind::TextArray => {
                let mut b = ListBuilder::new(StringBuilder::new());
                for v in values {
                    match v {
                        Some(Val::Texts(t)) => {
                            for x in t {
                                b.values().append_option(x.as_deref());
                            }
                            b.append(true);
                        }
                        _ => b.append(false),
                    }
                }
                Arc::new(b.finish())
            }
            Kind::Struct => {
                let (a, b): (Vec<Option<i64>>, Vec<Option<String>>) = values
                    .iter()
                    .map(|v| match v {
                        Some(Val::Pair(a, b)) => (*a, b.clone()),
                        _ => (None, None),
                    })
                    .unzip();
                Arc::new(StructArray::new(
                    Fields::from(vec![
                        Field::new("a", DataType::Int64, true),
                        Field::new("b", DataType::Utf8, true),
                    ]),
                    vec![
                        Arc::new(Int64Array::from(a)),
                        Arc::new(StringArray::from(b)),
                    ],
                    Some(
                        values
                            .iter()
                            .map(Option::is_some)
                            .collect::<Vec<_>>()
                            .into(),
                    ),
                ))
            }
            Kind::IntArray => list::<Int32Type>(
                values
                    .iter()
                    .map(|v| match v {
                        Some(Val::List(l)) => Some(l.clone()),
                        _ => None,
                    })
                    .collect(),
            ),
        }
    }

    /// Reads column `k` of `row` back through tokio-postgres' own binary decoding.
    fn read(self, row: &tokio_postgres::Row, k: usize) -> Option<Val> {
        match self {
            Kind::Int16 => row.get::<_, Option<i16>>(k).map(|v| Val::I(v.into())),
            Kind::Int32 => row.get::<_, Option<i32>>(k).map(|v| Val::I(v.into())),
            Kind::Int64 => row.get::<_, Option<i64>>(k).map(Val::I),
            Kind::Float64 => row.get::<_, Option<f64>>(k).map(Val::F),
            Kind::Bool => row.get::<_, Option<bool>>(k).map(Val::B),
            Kind::Text => row.get::<_, Option<String>>(k).map(Val::S),
            Kind::Numeric => row.get::<_, Option<String>>(k).map(Val::S),
            Kind::Date => row.get::<_, Option<chrono::NaiveDate>>(k).map(|d| {
                Val::I((d - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days())
            }),
            Kind::Timestamptz => row
                .get::<_, Option<chrono::DateTime<chrono::Utc>>>(k)
                .map(|t| Val::I(t.timestamp_micros())),
            Kind::Bytea => row.get::<_, Option<Vec<u8>>>(k).map(Val::Bytes),
            Kind::Uuid => row
                .get::<_, Option<uuid::Uuid>>(k)
                .map(|u| Val::Bytes(u.as_bytes().to_vec())),
            Kind::IntArray => row.get::<_, Option<Vec<Option<i32>>>>(k).map(Val::List),
            // Read as text and mapped back to the unscaled integer the oracle compares.
            Kind::Decimal => row.get::<_, Option<String>>(k).map(|t| {
                let digits: String = t.chars().filter(|c| *c != '.').collect();
                Val::I(digits.parse().expect("numeric text"))
            }),
            Kind::TimestampNs => row
                .get::<_, Option<chrono::NaiveDateTime>>(k)
                .map(|t| Val::I(t.and_utc().timestamp_micros())),
            Kind::TextArray => row.get::<_, Option<Vec<Option<String>>>>(k).map(Val::Texts),
            Kind::Struct => row
                .get::<_, Option<serde_json::Value>>(k)
                .map(|j| Val::Pair(j["a"].as_i64(), j["b"].as_str().map(str::to_string))),
        }
    }

    /// What reading back should give for a generated value.
    fn expected(self, v: &Option<Val>) -> Option<Val> {
        match (self, v) {
            // Nanoseconds become microseconds, toward the past.
            (Kind::TimestampNs, Some(Val::I(ns))) => Some(Val::I(ns.div_euclid(1000))),
            _ => v.clone(),
        }
    }
}

fn batches() -> impl Strategy<Value = (Vec<Kind>, Vec<Vec<Option<Val>>>)> {
    proptest::collection::vec(proptest::sample::select(KINDS.to_vec()), 1..7).prop_flat_map(
        |kinds| {
            let row = kinds
                .iter()
                .map(|k| proptest::option::weighted(0.8, k.value()))
                .collect::<Vec<_>>();
            (Just(kinds), proptest::collection::vec(row, 0..40))
        },
    )
}

#[test]
fn random_batches_load_and_read_back_equal() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let client = runtime.block_on(support::postgres());
    let config = ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |((kinds, rows) in batches())| {
        let columns: Vec<ArrayRef> = (0..kinds.len())
            .map(|k| kinds[k].array(&rows.iter().map(|r| r[k].clone()).collect::<Vec<_>>()))
            .collect();
        let types: Vec<&str> = kinds.iter().map(|k| k.pg()).collect();
        let cast: Vec<String> = kinds
            .iter()
            .enumerate()
            .map(|(k, kind)| match kind {
                Kind::Numeric | Kind::Decimal => format!("c{k}::text"),
                _ => format!("c{k}"),
            })
            .collect();
        let back = runtime.block_on(async {
            let out = load(&client, "enc_prop", &types, columns).await;
            assert!(out.rejects.is_empty(), "{:?}", out.rejects);
            client
                .query(&format!("SELECT {} FROM enc_prop ORDER BY i", cast.join(", ")), &[])
                .await
                .expect("read back")
        });
        prop_assert_eq!(back.len(), rows.len());
        for (r, row) in back.iter().enumerate() {
            for (k, kind) in kinds.iter().enumerate() {
                prop_assert_eq!(kind.read(row, k), kind.expected(&rows[r][k]), "{:?} c{} row {}", kind, k, r);
            }
        }
    });
}

/// Cassandra's types, read by Ferry's own scan, into their DESIGN.md default YSQL types.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cassandra_types_migrate_into_their_default_ysql_types() {
    let session = support::cassandra().await;
    let client = support::postgres().await;
    let ks = "ferry_encode";
    support::keyspace(&session, ks).await;
    support::cql(&session, &format!("DROP TABLE IF EXISTS {ks}.defaults")).await;
    support::cql(
        &session,
        &format!("CREATE TYPE IF NOT EXISTS {ks}.address (street text, zip int)"),
    )
    .await;
    support::cql(
        &session,
        &format!(
            "CREATE TABLE {ks}.defaults (id int PRIMARY KEY, t tinyint, s smallint, b bigint, \
             vi varint, de decimal, f float, d double, ok boolean, ts timestamp, dt date, \
             tm time, du duration, u uuid, tu timeuuid, ip inet, bl blob, li list<int>, \
             se set<uuid>, ma map<text, int>, tp tuple<int, text>, ad frozen<address>, \
             ve vector<float, 3>)"
        ),
    )
    .await;
    support::cql(
        &session,
        &format!(
            "INSERT INTO {ks}.defaults (id, t, s, b, vi, de, f, d, ok, ts, dt, tm, du, u, tu, ip, \
             bl, li, se, ma, tp, ad, ve) VALUES (1, -128, 32767, -9223372036854775808, \
             -123456789012345678901234567890, 12.3450, 1.5, 0.1, true, \
             '2024-02-29 12:34:56.789+0000', '2024-02-29', '12:34:56.123456789', 1mo2d3s, \
             00112233-4455-6677-8899-aabbccddeeff, 50554d6e-29bb-11e5-b345-feff819cdc9f, \
             '192.168.1.1', 0x0102, [1, 2, 3], {{00112233-4455-6677-8899-aabbccddeeff}}, \
             {{'a': 1, 'b': 2}}, (7, 'x'), {{street: 'Main', zip: 123}}, [1.5, 2, -3])"
        ),
    )
    .await;
    support::cql(
        &session,
        &format!("INSERT INTO {ks}.defaults (id, de, vi) VALUES (2, -0.001, 0)"),
    )
    .await;
    exec(
        &client,
        "DROP TABLE IF EXISTS enc_defaults; CREATE TABLE enc_defaults (id integer PRIMARY KEY, \
         t smallint, s smallint, b bigint, vi numeric, de numeric, f real, d double precision, \
         ok boolean, ts timestamptz, dt date, tm time, du interval, u uuid, tu uuid, ip inet, \
         bl bytea, li integer[], se uuid[], ma jsonb, tp jsonb, ad jsonb, ve real[])",
    )
    .await;
    let dir = support::scratch_dir("encode_defaults");
    let config = support::write_config(
        &dir,
        "connections = 1\nsplits = 2",
        &format!("[[table]]\nsource = \"{ks}.defaults\"\ntarget = \"enc_defaults\""),
    );
    let report = support::migrate_ok(&config);
    let t = &report["tables"][0];
    assert_eq!(t["rows_written"], 2, "{report}");
    assert_eq!(t["rows_rejected"], 0, "{report}");
    assert_eq!(t["truncated_values"], 1, "the time's nanoseconds: {report}");

    exec(&client, "SET TimeZone = 'UTC'").await;
    let columns = [
        "t", "s", "b", "vi", "de", "f", "d", "ok", "ts", "dt", "tm", "du", "u", "tu", "ip", "bl",
        "li", "se", "ma", "tp", "ad", "ve",
    ];
    let list: Vec<String> = columns.iter().map(|c| format!("{c}::text")).collect();
    let rows = client
        .query(
            &format!("SELECT {} FROM enc_defaults ORDER BY id", list.join(", ")),
            &[],
        )
        .await
        .expect("read back");
    let got =
        |r: usize| -> Vec<Option<String>> { (0..columns.len()).map(|k| rows[r].get(k)).collect() };
    let expected: Vec<Option<&str>> = vec![
        Some("-128"),
        Some("32767"),
        Some("-9223372036854775808"),
        Some("-123456789012345678901234567890"),
        Some("12.3450"),
        Some("1.5"),
        Some("0.1"),
        Some("true"),
        Some("2024-02-29 12:34:56.789+00"),
        Some("2024-02-29"),
        Some("12:34:56.123456"),
        Some("1 mon 2 days 00:00:03"),
        Some("00112233-4455-6677-8899-aabbccddeeff"),
        Some("50554d6e-29bb-11e5-b345-feff819cdc9f"),
        Some("192.168.1.1/32"),
        Some("\\x0102"),
        Some("{1,2,3}"),
        Some("{00112233-4455-6677-8899-aabbccddeeff}"),
        Some("{\"a\": 1, \"b\": 2}"),
        Some("{\"f0\": 7, \"f1\": \"x\"}"),
        Some("{\"zip\": 123, \"street\": \"Main\"}"),
        Some("{1.5,2,-3}"),
    ];
    for (k, (g, e)) in got(0).iter().zip(&expected).enumerate() {
        assert_eq!(g.as_deref(), *e, "column {}", columns[k]);
    }
    let second = got(1);
    assert_eq!(second[3].as_deref(), Some("0"));
    assert_eq!(second[4].as_deref(), Some("-0.001"));
    assert!(
        second
            .iter()
            .enumerate()
            .all(|(k, v)| matches!(k, 3 | 4) || v.is_none()),
        "{second:?}"
    );
}
