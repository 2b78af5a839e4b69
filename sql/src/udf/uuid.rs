//! UUID functions: CQL's `toTimestamp`, `toUnixTimestamp` and `toDate` of a timeuuid, and the
//! text form of any UUID.
//!
//! A version-1 UUID (CQL `timeuuid`) carries a 60-bit count of 100 ns intervals since the
//! Gregorian reform, 1582-10-15 00:00 UTC:
//!
//! ```text
//! byte  0..4       4..6       6..8                 8..16
//!       time_low   time_mid   version(4) time_hi   clock_seq, node
//! ```

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, Date32Array, FixedSizeBinaryBuilder, Int8Array, Int64Array, StringBuilder,
    TimestampMillisecondArray,
};
use arrow::datatypes::{DataType, Field, TimeUnit};
use datafusion::common::types::logical_string;
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{Coercion, ScalarUDF, Signature, TypeSignatureClass, Volatility};

use super::{Kernel, Udf, push_uuid, strings};

/// Milliseconds from 1582-10-15 to 1970-01-01.
const GREGORIAN_TO_UNIX_MS: i64 = 12_219_292_800_000;
const MS_PER_DAY: i64 = 86_400_000;
const UUID: DataType = DataType::FixedSizeBinary(16);

pub(crate) fn udfs() -> Vec<ScalarUDF> {
    vec![
        Udf::udf(UuidFn::TimeuuidToTimestamp),
        Udf::udf(UuidFn::TimeuuidToUnixMs),
        Udf::udf(UuidFn::TimeuuidToDate),
        Udf::udf(UuidFn::UuidVersion),
        Udf::udf(UuidFn::UuidToText),
        Udf::udf(UuidFn::TextToUuid),
    ]
}

/// The UUID functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum UuidFn {
    /// `timeuuid_to_timestamp(timeuuid) → timestamp`: CQL `toTimestamp(timeuuid)`.
    TimeuuidToTimestamp,
    /// `timeuuid_to_unix_ms(timeuuid) → bigint`: CQL `toUnixTimestamp(timeuuid)`.
    TimeuuidToUnixMs,
    /// `timeuuid_to_date(timeuuid) → date`: CQL `toDate(timeuuid)`.
    TimeuuidToDate,
    /// `uuid_version(uuid) → tinyint`: the version nibble (1 for a timeuuid, 4 for `uuid()`).
    UuidVersion,
    /// `uuid_to_text(uuid) → text`: the canonical lowercase form.
    UuidToText,
    /// `text_to_uuid(text) → uuid`: parses the canonical form, in either case.
    TextToUuid,
}

impl Kernel for UuidFn {
    fn name(&self) -> &'static str {
        match self {
            Self::TimeuuidToTimestamp => "timeuuid_to_timestamp",
            Self::TimeuuidToUnixMs => "timeuuid_to_unix_ms",
            Self::TimeuuidToDate => "timeuuid_to_date",
            Self::UuidVersion => "uuid_version",
            Self::UuidToText => "uuid_to_text",
            Self::TextToUuid => "text_to_uuid",
        }
    }

    fn signature(&self) -> Signature {
        match self {
            Self::TextToUuid => Signature::coercible(
                vec![Coercion::new_exact(TypeSignatureClass::Native(
                    logical_string(),
                ))],
                Volatility::Immutable,
            ),
            _ => Signature::exact(vec![UUID], Volatility::Immutable),
        }
    }

    fn returns(&self, _: &DataType) -> Result<DataType> {
        Ok(match self {
            Self::TimeuuidToTimestamp => {
                DataType::Timestamp(TimeUnit::Millisecond, Some(Arc::from("UTC")))
            }
            Self::TimeuuidToUnixMs => DataType::Int64,
            Self::TimeuuidToDate => DataType::Date32,
            Self::UuidVersion => DataType::Int8,
            Self::UuidToText => DataType::Utf8,
            Self::TextToUuid => UUID,
        })
    }

    fn eval(&self, array: &ArrayRef, _: &Field) -> Result<ArrayRef> {
        let name = self.name();
        if *self == Self::TextToUuid {
            return text_to_uuid(name, array);
        }
        let Some(uuids) = array
            .as_any()
            .downcast_ref::<arrow::array::FixedSizeBinaryArray>()
            .filter(|a| a.value_length() == 16)
        else {
            return exec_err!("{name}() takes a uuid, not {}", array.data_type());
        };
        let nulls = uuids.nulls().cloned();
        let rows = 0..uuids.len();
        Ok(match self {
            Self::TimeuuidToTimestamp => {
                let ms = unix_ms_each(name, uuids)?;
                Arc::new(TimestampMillisecondArray::new(ms.into(), nulls).with_timezone("UTC"))
            }
            Self::TimeuuidToUnixMs => {
                Arc::new(Int64Array::new(unix_ms_each(name, uuids)?.into(), nulls))
            }
            Self::TimeuuidToDate => {
                let days = unix_ms_each(name, uuids)?
                    .into_iter()
                    .map(|ms| i32::try_from(ms.div_euclid(MS_PER_DAY)))
                    .collect::<Result<Vec<i32>, _>>();
                // 2^60 × 100 ns is about 3,600 years: every timeuuid's day fits an i32.
                let days = days.expect("a timeuuid's day fits in 32 bits");
                Arc::new(Date32Array::new(days.into(), nulls))
            }
            Self::UuidVersion => {
                let versions: Vec<i8> = rows.map(|i| (uuids.value(i)[6] >> 4) as i8).collect();
                Arc::new(Int8Array::new(versions.into(), nulls))
            }
            Self::UuidToText => {
                let mut out = StringBuilder::with_capacity(uuids.len(), uuids.len() * 36);
                let mut text = String::with_capacity(36);
                for i in rows {
                    if uuids.is_null(i) {
                        out.append_null();
                    } else {
                        text.clear();
                        push_uuid(&mut text, uuids.value(i));
                        out.append_value(&text);
                    }
                }
                Arc::new(out.finish())
            }
            Self::TextToUuid => unreachable!("handled above"),
        })
    }
}

/// Milliseconds since the Unix epoch of each timeuuid (0 where NULL), refusing any UUID that is
/// not version 1: its bits would give a meaningless time.
fn unix_ms_each(name: &str, uuids: &arrow::array::FixedSizeBinaryArray) -> Result<Vec<i64>> {
    let mut out = Vec::with_capacity(uuids.len());
    for i in 0..uuids.len() {
        if uuids.is_null(i) {
            out.push(0);
            continue;
        }
        match timeuuid_unix_ms(uuids.value(i)) {
            Some(ms) => out.push(ms),
            None => {
                let b = uuids.value(i);
                let mut text = String::with_capacity(36);
                push_uuid(&mut text, b);
                return exec_err!(
                    "{name}(): {text} is a version {} UUID, not a timeuuid (version 1); only a \
                     timeuuid carries a time (uuid_version() tells them apart)",
                    b[6] >> 4
                );
            }
        }
    }
    Ok(out)
}

/// The Unix time in milliseconds of a version-1 UUID, as Cassandra computes it (the 100 ns
/// count divided down, rounding towards the past), or `None` for another version.
pub fn timeuuid_unix_ms(uuid: &[u8]) -> Option<i64> {
    if uuid.len() != 16 || uuid[6] >> 4 != 1 {
        return None;
    }
    let time_low = u64::from(u32::from_be_bytes([uuid[0], uuid[1], uuid[2], uuid[3]]));
    let time_mid = u64::from(u16::from_be_bytes([uuid[4], uuid[5]]));
    let time_hi = u64::from(u16::from_be_bytes([uuid[6] & 0x0f, uuid[7]]));
    let ticks = (time_hi << 48) | (time_mid << 32) | time_low;
    // < 2^60 / 10^4: fits an i64 with room to spare.
    Some((ticks / 10_000) as i64 - GREGORIAN_TO_UNIX_MS)
}

fn text_to_uuid(name: &str, array: &ArrayRef) -> Result<ArrayRef> {
    let texts = strings(name, array.as_ref())?;
    let mut out = FixedSizeBinaryBuilder::with_capacity(array.len(), 16);
    for i in 0..array.len() {
        match texts.get(i) {
            None => out.append_null(),
            Some(s) => match parse_uuid(s) {
                Some(bytes) => out.append_value(bytes)?,
                None => {
                    return exec_err!(
                        "{name}(): {} is not a UUID (expected 8-4-4-4-12 hex digits, like \
                         123e4567-e89b-12d3-a456-426614174000)",
                        super::preview(s)
                    );
                }
            },
        }
    }
    Ok(Arc::new(out.finish()))
}

/// Parses `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (hex digits in either case), as CQL reads a
/// UUID literal.
fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let b = s.as_bytes();
    if b.len() != 36 || [8, 13, 18, 23].iter().any(|&k| b[k] != b'-') {
        return None;
    }
    let mut out = [0u8; 16];
    let mut digits = b.iter().filter(|&&c| c != b'-');
    for byte in &mut out {
        let hi = hex_value(*digits.next()?)?;
        let lo = hex_value(*digits.next()?)?;
        *byte = hi << 4 | lo;
    }
    Some(out)
}

/// The value of one hex digit.
pub(crate) fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// The version-1 UUID for `unix_ms` with the given clock sequence and node, as a test would
/// build one independently of [`timeuuid_unix_ms`].
#[cfg(test)]
pub(crate) fn make_timeuuid(unix_ms: i64, sub_ms_ticks: u64, clock_and_node: u64) -> [u8; 16] {
    let ticks = (unix_ms + GREGORIAN_TO_UNIX_MS) as u64 * 10_000 + sub_ms_ticks;
    let mut b = [0u8; 16];
    b[0..4].copy_from_slice(&(ticks as u32).to_be_bytes());
    b[4..6].copy_from_slice(&((ticks >> 32) as u16).to_be_bytes());
    b[6..8].copy_from_slice(&(((ticks >> 48) as u16 & 0x0fff) | 0x1000).to_be_bytes());
    b[8..16].copy_from_slice(&clock_and_node.to_be_bytes());
    b
}

#[cfg(test)]
mod tests {
    use arrow::array::{AsArray, FixedSizeBinaryArray, StringArray};
    use arrow::datatypes::{Date32Type, Int8Type, Int64Type, TimestampMillisecondType};
    use datafusion::common::ScalarValue;

    use super::*;
    use crate::udf::test_support::{eval, scalar};

    fn uuid_column(values: &[Option<[u8; 16]>]) -> (Field, ArrayRef) {
        let array = FixedSizeBinaryArray::try_from_sparse_iter_with_size(
            values.iter().map(|v| v.as_ref().map(|b| b.as_slice())),
            16,
        )
        .expect("16-byte values");
        (Field::new("v", UUID, true), Arc::new(array))
    }

    /// A timeuuid and its time as Cassandra 5.0 gives it (`toUnixTimestamp`, `toTimestamp`):
    /// 1714566322981 ms, 2024-05-01 12:25:22.981 UTC.
    const CASSANDRA_TIMEUUID: &str = "e1c1b3d5-07b5-11ef-8a4b-8b7f1d2c3e4f";
    const CASSANDRA_UNIX_MS: i64 = 1_714_566_322_981;

    #[test]
    fn the_time_of_a_known_timeuuid() {
        let bytes = parse_uuid(CASSANDRA_TIMEUUID).expect("valid");
        assert_eq!(timeuuid_unix_ms(&bytes), Some(CASSANDRA_UNIX_MS));
        // The epoch itself and a time before it.
        assert_eq!(timeuuid_unix_ms(&make_timeuuid(0, 0, 0)), Some(0));
        assert_eq!(timeuuid_unix_ms(&make_timeuuid(-1, 9_999, 0)), Some(-1));
        assert_eq!(
            timeuuid_unix_ms(&make_timeuuid(-GREGORIAN_TO_UNIX_MS, 0, 0)),
            Some(-GREGORIAN_TO_UNIX_MS)
        );
    }

    #[tokio::test]
    async fn timeuuid_functions_agree_and_keep_nulls() {
        let at = 1_714_566_896_789i64; // 2024-05-01T12:34:56.789Z
        let (field, values) = uuid_column(&[
            Some(make_timeuuid(at, 1234, 0x8a4b_8b7f_1d2c_3e4f)),
            None,
            Some(make_timeuuid(-86_400_001, 0, 1)),
        ]);
        let ts = eval("timeuuid_to_timestamp(v)", field.clone(), values.clone())
            .await
            .expect("runs");
        assert_eq!(
            ts.data_type(),
            &DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
        );
        let ts = ts.as_primitive::<TimestampMillisecondType>();
        assert_eq!(ts.value(0), at);
        assert!(ts.is_null(1));
        assert_eq!(ts.value(2), -86_400_001);

        let ms = eval("timeuuid_to_unix_ms(v)", field.clone(), values.clone())
            .await
            .expect("runs");
        let ms = ms.as_primitive::<Int64Type>();
        assert_eq!((ms.value(0), ms.is_null(1)), (at, true));

        let days = eval("timeuuid_to_date(v)", field.clone(), values.clone())
            .await
            .expect("runs");
        let days = days.as_primitive::<Date32Type>();
        assert_eq!(days.value(0), 19_844); // 2024-05-01
        assert!(days.is_null(1));
        assert_eq!(days.value(2), -2); // 1969-12-30T23:59:59.999Z

        let versions = eval("uuid_version(v)", field, values).await.expect("runs");
        let versions = versions.as_primitive::<Int8Type>();
        assert_eq!((versions.value(0), versions.is_null(1)), (1, true));
    }

    #[tokio::test]
    async fn a_random_uuid_has_no_time() {
        let v4 = parse_uuid("123e4567-e89b-42d3-a456-426614174000").expect("valid");
        let (field, values) = uuid_column(&[Some(v4)]);
        for f in [
            "timeuuid_to_timestamp",
            "timeuuid_to_unix_ms",
            "timeuuid_to_date",
        ] {
            let err = eval(&format!("{f}(v)"), field.clone(), values.clone())
                .await
                .expect_err("version 4");
            assert!(
                err.contains(&format!(
                    "{f}(): 123e4567-e89b-42d3-a456-426614174000 is a version 4 UUID"
                )),
                "{err}"
            );
        }
    }

    #[tokio::test]
    async fn text_round_trips() {
        let values: ArrayRef = Arc::new(StringArray::from(vec![
            Some(CASSANDRA_TIMEUUID.to_uppercase()),
            None,
            Some("00000000-0000-0000-0000-000000000000".into()),
        ]));
        let field = Field::new("v", DataType::Utf8, true);
        let back = eval("uuid_to_text(text_to_uuid(v))", field.clone(), values)
            .await
            .expect("runs");
        let back = back.as_string::<i32>();
        assert_eq!(back.value(0), CASSANDRA_TIMEUUID);
        assert!(back.is_null(1));
        assert_eq!(back.value(2), "00000000-0000-0000-0000-000000000000");

        for bad in [
            "",
            "e1c1b3d507b511ef8a4b8b7f1d2c3e4f",
            "e1c1b3d5-07b5-11ef-8a4b-8b7f1d2c3e4g",
            "{e1c1b3d5-07b5-11ef-8a4b-8b7f1d2c3e4f}",
            "e1c1b3d5-07b5-11ef-8a4b-8b7f1d2c3e4",
        ] {
            let values: ArrayRef = Arc::new(StringArray::from(vec![bad]));
            let err = eval("text_to_uuid(v)", field.clone(), values)
                .await
                .expect_err(bad);
            assert!(
                err.contains("text_to_uuid(): ") && err.contains("is not a UUID"),
                "{err}"
            );
        }
    }

    #[tokio::test]
    async fn constants_and_nulls_take_the_scalar_path() {
        let v = scalar(&format!(
            "timeuuid_to_unix_ms(text_to_uuid('{CASSANDRA_TIMEUUID}'))"
        ))
        .await
        .expect("runs");
        assert_eq!(v, ScalarValue::Int64(Some(CASSANDRA_UNIX_MS)));
        assert_eq!(
            scalar("timeuuid_to_unix_ms(NULL)").await.expect("runs"),
            ScalarValue::Int64(None)
        );
        assert_eq!(
            scalar("uuid_to_text(text_to_uuid(NULL))")
                .await
                .expect("runs"),
            ScalarValue::Utf8(None)
        );
    }

    #[tokio::test]
    async fn a_text_argument_is_refused_at_plan_time() {
        let values: ArrayRef = Arc::new(StringArray::from(vec![CASSANDRA_TIMEUUID]));
        let err = eval(
            "timeuuid_to_timestamp(v)",
            Field::new("v", DataType::Utf8, true),
            values,
        )
        .await
        .expect_err("text is not a uuid");
        assert!(err.contains("timeuuid_to_timestamp"), "{err}");
    }
}
