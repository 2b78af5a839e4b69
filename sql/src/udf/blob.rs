//! Blob functions: CQL's `blobAsText`/`textAsBlob`, `blobAs<type>`/`<type>AsBlob` for the
//! fixed-width types, and hex text.
//!
//! A blob holds a value serialized the way Cassandra serializes it (big-endian, fixed width per
//! type), so `blob_to_bigint` reads exactly what `bigintAsBlob` wrote. As in CQL, an empty blob
//! is the "empty" value of a non-text type and reads as NULL; any other length that is not the
//! type's width is an error.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, ArrowPrimitiveType, AsArray, BinaryArray, BinaryBuilder, BooleanArray,
    BooleanBufferBuilder, FixedSizeBinaryBuilder, PrimitiveArray, StringArray, StringBuilder,
};
use arrow::buffer::NullBuffer;
use arrow::datatypes::{
    DataType, Date32Type, Date64Type, Field, Float32Type, Float64Type, Int8Type, Int16Type,
    Int32Type, Int64Type, Time64NanosecondType, TimeUnit, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
};
use datafusion::common::types::{logical_date, logical_string};
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{Coercion, ScalarUDF, Signature, TypeSignatureClass, Volatility};

use super::uuid::hex_value;
use super::{Kernel, Udf, bytes, preview, push_hex, strings};

const NANOS_PER_DAY: i64 = 86_400_000_000_000;

pub(crate) fn udfs() -> Vec<ScalarUDF> {
    let mut out = vec![
        Udf::udf(BlobFn::ToText),
        Udf::udf(BlobFn::ToTextLossy),
        Udf::udf(BlobFn::FromText),
        Udf::udf(BlobFn::ToHex),
        Udf::udf(BlobFn::FromHex),
    ];
    for fixed in Fixed::ALL {
        out.push(Udf::udf(BlobFn::To(fixed)));
        out.push(Udf::udf(BlobFn::From(fixed)));
    }
    out
}

/// The CQL types with a fixed-width serialization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Fixed {
    BigInt,
    Int,
    SmallInt,
    TinyInt,
    Double,
    Float,
    Boolean,
    Timestamp,
    Date,
    Time,
    Uuid,
}

impl Fixed {
    const ALL: [Fixed; 11] = [
        Fixed::BigInt,
        Fixed::Int,
        Fixed::SmallInt,
        Fixed::TinyInt,
        Fixed::Double,
        Fixed::Float,
        Fixed::Boolean,
        Fixed::Timestamp,
        Fixed::Date,
        Fixed::Time,
        Fixed::Uuid,
    ];

    fn cql(self) -> &'static str {
        match self {
            Fixed::BigInt => "bigint",
            Fixed::Int => "int",
            Fixed::SmallInt => "smallint",
            Fixed::TinyInt => "tinyint",
            Fixed::Double => "double",
            Fixed::Float => "float",
            Fixed::Boolean => "boolean",
            Fixed::Timestamp => "timestamp",
            Fixed::Date => "date",
            Fixed::Time => "time",
            Fixed::Uuid => "uuid",
        }
    }

    fn width(self) -> usize {
        match self {
            Fixed::BigInt | Fixed::Double | Fixed::Timestamp | Fixed::Time => 8,
            Fixed::Int | Fixed::Float | Fixed::Date => 4,
            Fixed::SmallInt => 2,
            Fixed::TinyInt | Fixed::Boolean => 1,
            Fixed::Uuid => 16,
        }
    }

    /// The Arrow type of the CQL type (the type mapping's).
    fn arrow(self) -> DataType {
        match self {
            Fixed::BigInt => DataType::Int64,
            Fixed::Int => DataType::Int32,
            Fixed::SmallInt => DataType::Int16,
            Fixed::TinyInt => DataType::Int8,
            Fixed::Double => DataType::Float64,
            Fixed::Float => DataType::Float32,
            Fixed::Boolean => DataType::Boolean,
            Fixed::Timestamp => DataType::Timestamp(TimeUnit::Millisecond, Some(Arc::from("UTC"))),
            Fixed::Date => DataType::Date32,
            Fixed::Time => DataType::Time64(TimeUnit::Nanosecond),
            Fixed::Uuid => DataType::FixedSizeBinary(16),
        }
    }

    /// The argument types `<type>_to_blob` takes: the type itself, and narrower ones that widen
    /// to it without loss.
    fn signature(self) -> Signature {
        let v = Volatility::Immutable;
        match self {
            Fixed::Timestamp => {
                Signature::coercible(vec![Coercion::new_exact(TypeSignatureClass::Timestamp)], v)
            }
            Fixed::Date => Signature::coercible(
                vec![Coercion::new_exact(TypeSignatureClass::Native(
                    logical_date(),
                ))],
                v,
            ),
            Fixed::Uuid | Fixed::Boolean => Signature::exact(vec![self.arrow()], v),
            _ => Signature::uniform(1, vec![self.arrow()], v),
        }
    }
}

/// The blob functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum BlobFn {
    /// `blob_to_text(blob) → text`: the bytes as UTF-8; invalid UTF-8 is an error.
    ToText,
    /// `blob_to_text_lossy(blob) → text`: invalid UTF-8 sequences become U+FFFD.
    ToTextLossy,
    /// `text_to_blob(text) → blob`: the UTF-8 bytes.
    FromText,
    /// `blob_to_hex(blob) → text`: a CQL blob literal, `0x` and lowercase hex digits.
    ToHex,
    /// `hex_to_blob(text) → blob`: hex digits, with or without `0x`.
    FromHex,
    /// `blob_to_<type>(blob) → <type>`: CQL `blobAs<Type>`.
    To(Fixed),
    /// `<type>_to_blob(<type>) → blob`: CQL `<type>AsBlob`.
    From(Fixed),
}

impl Kernel for BlobFn {
    fn name(&self) -> &'static str {
        match self {
            BlobFn::ToText => "blob_to_text",
            BlobFn::ToTextLossy => "blob_to_text_lossy",
            BlobFn::FromText => "text_to_blob",
            BlobFn::ToHex => "blob_to_hex",
            BlobFn::FromHex => "hex_to_blob",
            BlobFn::To(f) => match f {
                Fixed::BigInt => "blob_to_bigint",
                Fixed::Int => "blob_to_int",
                Fixed::SmallInt => "blob_to_smallint",
                Fixed::TinyInt => "blob_to_tinyint",
                Fixed::Double => "blob_to_double",
                Fixed::Float => "blob_to_float",
                Fixed::Boolean => "blob_to_boolean",
                Fixed::Timestamp => "blob_to_timestamp",
                Fixed::Date => "blob_to_date",
                Fixed::Time => "blob_to_time",
                Fixed::Uuid => "blob_to_uuid",
            },
            BlobFn::From(f) => match f {
                Fixed::BigInt => "bigint_to_blob",
                Fixed::Int => "int_to_blob",
                Fixed::SmallInt => "smallint_to_blob",
                Fixed::TinyInt => "tinyint_to_blob",
                Fixed::Double => "double_to_blob",
                Fixed::Float => "float_to_blob",
                Fixed::Boolean => "boolean_to_blob",
                Fixed::Timestamp => "timestamp_to_blob",
                Fixed::Date => "date_to_blob",
                Fixed::Time => "time_to_blob",
                Fixed::Uuid => "uuid_to_blob",
            },
        }
    }

    fn signature(&self) -> Signature {
        let v = Volatility::Immutable;
        let text = || {
            Signature::coercible(
                vec![Coercion::new_exact(TypeSignatureClass::Native(
                    logical_string(),
                ))],
                v,
            )
        };
        let blob =
            || Signature::coercible(vec![Coercion::new_exact(TypeSignatureClass::Binary)], v);
        match self {
            BlobFn::ToText | BlobFn::ToTextLossy | BlobFn::ToHex | BlobFn::To(_) => blob(),
            BlobFn::FromText | BlobFn::FromHex => text(),
            BlobFn::From(f) => f.signature(),
        }
    }

    fn returns(&self, _: &DataType) -> Result<DataType> {
        Ok(match self {
            BlobFn::ToText | BlobFn::ToTextLossy | BlobFn::ToHex => DataType::Utf8,
            BlobFn::FromText | BlobFn::FromHex | BlobFn::From(_) => DataType::Binary,
            BlobFn::To(f) => f.arrow(),
        })
    }

    fn eval(&self, array: &ArrayRef, _: &Field) -> Result<ArrayRef> {
        let name = self.name();
        match *self {
            BlobFn::ToText => blob_to_text(name, array),
            BlobFn::ToTextLossy => {
                let blobs = bytes(name, array.as_ref())?;
                let mut out = StringBuilder::with_capacity(array.len(), 0);
                for i in 0..array.len() {
                    match blobs.get(i) {
                        Some(b) => out.append_value(String::from_utf8_lossy(b)),
                        None => out.append_null(),
                    }
                }
                Ok(Arc::new(out.finish()))
            }
            BlobFn::FromText => {
                if let Some(utf8) = array.as_any().downcast_ref::<StringArray>() {
                    // Same offsets and bytes: no copy.
                    return Ok(Arc::new(BinaryArray::from(utf8.clone())));
                }
                let texts = strings(name, array.as_ref())?;
                let mut out = BinaryBuilder::with_capacity(array.len(), 0);
                for i in 0..array.len() {
                    out.append_option(texts.get(i));
                }
                Ok(Arc::new(out.finish()))
            }
            BlobFn::ToHex => {
                let blobs = bytes(name, array.as_ref())?;
                let mut out = StringBuilder::with_capacity(array.len(), 0);
                let mut text = String::new();
                for i in 0..array.len() {
                    match blobs.get(i) {
                        Some(b) => {
                            text.clear();
                            text.push_str("0x");
                            push_hex(&mut text, b);
                            out.append_value(&text);
                        }
                        None => out.append_null(),
                    }
                }
                Ok(Arc::new(out.finish()))
            }
            BlobFn::FromHex => {
                let texts = strings(name, array.as_ref())?;
                let mut out = BinaryBuilder::with_capacity(array.len(), 0);
                let mut blob = Vec::new();
                for i in 0..array.len() {
                    match texts.get(i) {
                        Some(s) => {
                            parse_hex(name, s, &mut blob)?;
                            out.append_value(&blob);
                        }
                        None => out.append_null(),
                    }
                }
                Ok(Arc::new(out.finish()))
            }
            BlobFn::To(fixed) => blob_to(name, fixed, array),
            BlobFn::From(fixed) => to_blob(name, fixed, array),
        }
    }
}

fn blob_to_text(name: &str, array: &ArrayRef) -> Result<ArrayRef> {
    if let Some(binary) = array.as_any().downcast_ref::<BinaryArray>()
        && let Ok(text) = StringArray::try_from_binary(binary.clone())
    {
        // Valid UTF-8 throughout: same offsets and bytes, no copy.
        return Ok(Arc::new(text));
    }
    let blobs = bytes(name, array.as_ref())?;
    let mut out = StringBuilder::with_capacity(array.len(), 0);
    for i in 0..array.len() {
        match blobs.get(i).map(std::str::from_utf8) {
            None => out.append_null(),
            Some(Ok(s)) => out.append_value(s),
            Some(Err(e)) => {
                let b = blobs.get(i).unwrap_or_default();
                let at = e.valid_up_to();
                let mut hex = String::new();
                push_hex(&mut hex, &b[at..b.len().min(at + 4)]);
                return exec_err!(
                    "{name}(): the blob is not UTF-8: byte {at} of {} starts an invalid \
                     sequence (0x{hex}…); blob_to_text_lossy() replaces invalid sequences with \
                     U+FFFD, blob_to_hex() keeps every byte",
                    b.len()
                );
            }
        }
    }
    Ok(Arc::new(out.finish()))
}

/// Parses hex digits, after an optional `0x`, into `out`.
fn parse_hex(name: &str, s: &str, out: &mut Vec<u8>) -> Result<()> {
    let digits = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s)
        .as_bytes();
    out.clear();
    if !digits.len().is_multiple_of(2) {
        return exec_err!("{name}(): {} has an odd number of hex digits", preview(s));
    }
    for pair in digits.chunks_exact(2) {
        match (hex_value(pair[0]), hex_value(pair[1])) {
            (Some(hi), Some(lo)) => out.push(hi << 4 | lo),
            _ => return exec_err!("{name}(): {} is not hex digits", preview(s)),
        }
    }
    Ok(())
}

/// Reads every blob as one `fixed` value: NULL and empty blobs give NULL, other lengths fail.
fn blob_to(name: &str, fixed: Fixed, array: &ArrayRef) -> Result<ArrayRef> {
    let blobs = bytes(name, array.as_ref())?;
    let n = array.len();
    let mut valid = BooleanBufferBuilder::new(n);
    // The value of row `i` as exactly `W` bytes, or `None` for NULL/empty.
    let mut each = |i: usize| -> Result<Option<&[u8]>> {
        let b = match blobs.get(i) {
            None | Some([]) => None,
            Some(b) if b.len() == fixed.width() => Some(b),
            Some(b) => {
                return exec_err!(
                    "{name}(): a {} is {} bytes, this blob has {}",
                    fixed.cql(),
                    fixed.width(),
                    b.len()
                );
            }
        };
        valid.append(b.is_some());
        Ok(b)
    };
    fn primitive<'b, T: ArrowPrimitiveType, const W: usize>(
        n: usize,
        each: &mut dyn FnMut(usize) -> Result<Option<&'b [u8]>>,
        decode: impl Fn([u8; W]) -> Result<T::Native>,
    ) -> Result<Vec<T::Native>> {
        let mut values = Vec::with_capacity(n);
        for i in 0..n {
            values.push(match each(i)? {
                Some(b) => decode(b.try_into().expect("width checked"))?,
                None => T::Native::default(),
            });
        }
        Ok(values)
    }
    let out: ArrayRef = match fixed {
        Fixed::BigInt => {
            let v = primitive::<Int64Type, 8>(n, &mut each, |b| Ok(i64::from_be_bytes(b)))?;
            Arc::new(PrimitiveArray::<Int64Type>::new(v.into(), nulls(valid)))
        }
        Fixed::Int => {
            let v = primitive::<Int32Type, 4>(n, &mut each, |b| Ok(i32::from_be_bytes(b)))?;
            Arc::new(PrimitiveArray::<Int32Type>::new(v.into(), nulls(valid)))
        }
        Fixed::SmallInt => {
            let v = primitive::<Int16Type, 2>(n, &mut each, |b| Ok(i16::from_be_bytes(b)))?;
            Arc::new(PrimitiveArray::<Int16Type>::new(v.into(), nulls(valid)))
        }
        Fixed::TinyInt => {
            let v = primitive::<Int8Type, 1>(n, &mut each, |b| Ok(i8::from_be_bytes(b)))?;
            Arc::new(PrimitiveArray::<Int8Type>::new(v.into(), nulls(valid)))
        }
        Fixed::Double => {
            let v = primitive::<Float64Type, 8>(n, &mut each, |b| Ok(f64::from_be_bytes(b)))?;
            Arc::new(PrimitiveArray::<Float64Type>::new(v.into(), nulls(valid)))
        }
        Fixed::Float => {
            let v = primitive::<Float32Type, 4>(n, &mut each, |b| Ok(f32::from_be_bytes(b)))?;
            Arc::new(PrimitiveArray::<Float32Type>::new(v.into(), nulls(valid)))
        }
        Fixed::Timestamp => {
            let v = primitive::<TimestampMillisecondType, 8>(n, &mut each, |b| {
                Ok(i64::from_be_bytes(b))
            })?;
            Arc::new(
                PrimitiveArray::<TimestampMillisecondType>::new(v.into(), nulls(valid))
                    .with_timezone("UTC"),
            )
        }
        Fixed::Date => {
            // Days since the epoch, centred on 2^31: the shift maps u32 onto i32 exactly.
            let v = primitive::<Date32Type, 4>(n, &mut each, |b| {
                Ok((i64::from(u32::from_be_bytes(b)) - (1 << 31)) as i32)
            })?;
            Arc::new(PrimitiveArray::<Date32Type>::new(v.into(), nulls(valid)))
        }
        Fixed::Time => {
            let v = primitive::<Time64NanosecondType, 8>(n, &mut each, |b| {
                let ns = i64::from_be_bytes(b);
                if (0..NANOS_PER_DAY).contains(&ns) {
                    Ok(ns)
                } else {
                    exec_err!("{name}(): {ns} ns is not a time of day")
                }
            })?;
            Arc::new(PrimitiveArray::<Time64NanosecondType>::new(
                v.into(),
                nulls(valid),
            ))
        }
        Fixed::Boolean => {
            let mut values = BooleanBufferBuilder::new(n);
            for i in 0..n {
                // Cassandra reads any non-zero byte as true.
                values.append(each(i)?.is_some_and(|b| b[0] != 0));
            }
            Arc::new(BooleanArray::new(values.finish(), nulls(valid)))
        }
        Fixed::Uuid => {
            let mut out = FixedSizeBinaryBuilder::with_capacity(n, 16);
            for i in 0..n {
                match each(i)? {
                    Some(b) => out.append_value(b)?,
                    None => out.append_null(),
                }
            }
            Arc::new(out.finish())
        }
    };
    Ok(out)
}

fn nulls(mut valid: BooleanBufferBuilder) -> Option<NullBuffer> {
    Some(NullBuffer::new(valid.finish())).filter(|n| n.null_count() > 0)
}

/// Serializes every value as Cassandra does: big-endian, the type's width.
fn to_blob(name: &str, fixed: Fixed, array: &ArrayRef) -> Result<ArrayRef> {
    let n = array.len();
    let mut out = BinaryBuilder::with_capacity(n, n * fixed.width());
    macro_rules! each {
        ($array:expr, |$v:ident| $bytes:expr) => {{
            let a = $array;
            for i in 0..n {
                if a.is_null(i) {
                    out.append_null();
                } else {
                    let $v = a.value(i);
                    out.append_value($bytes);
                }
            }
        }};
    }
    match (fixed, array.data_type()) {
        (Fixed::BigInt, DataType::Int64) => {
            each!(array.as_primitive::<Int64Type>(), |v| v.to_be_bytes())
        }
        (Fixed::Int, DataType::Int32) => {
            each!(array.as_primitive::<Int32Type>(), |v| v.to_be_bytes())
        }
        (Fixed::SmallInt, DataType::Int16) => {
            each!(array.as_primitive::<Int16Type>(), |v| v.to_be_bytes())
        }
        (Fixed::TinyInt, DataType::Int8) => {
            each!(array.as_primitive::<Int8Type>(), |v| v.to_be_bytes())
        }
        (Fixed::Double, DataType::Float64) => {
            each!(array.as_primitive::<Float64Type>(), |v| v.to_be_bytes())
        }
        (Fixed::Float, DataType::Float32) => {
            each!(array.as_primitive::<Float32Type>(), |v| v.to_be_bytes())
        }
        (Fixed::Boolean, DataType::Boolean) => {
            each!(array.as_boolean(), |v| [u8::from(v)])
        }
        (Fixed::Time, DataType::Time64(TimeUnit::Nanosecond)) => {
            each!(array.as_primitive::<Time64NanosecondType>(), |v| v
                .to_be_bytes())
        }
        (Fixed::Uuid, DataType::FixedSizeBinary(16)) => {
            each!(array.as_fixed_size_binary(), |v| v)
        }
        (Fixed::Date, DataType::Date32) => {
            each!(array.as_primitive::<Date32Type>(), |v| cql_date(i64::from(
                v
            )))
        }
        (Fixed::Date, DataType::Date64) => {
            each!(array.as_primitive::<Date64Type>(), |v| cql_date(
                v.div_euclid(86_400_000)
            ))
        }
        // A CQL timestamp is milliseconds: finer units round towards the past, as Cassandra
        // does when it is given one.
        (Fixed::Timestamp, DataType::Timestamp(unit, _)) => match unit {
            TimeUnit::Second => {
                let a = array.as_primitive::<TimestampSecondType>();
                for i in 0..n {
                    if a.is_null(i) {
                        out.append_null();
                    } else {
                        let Some(ms) = a.value(i).checked_mul(1000) else {
                            return exec_err!("{name}(): {}s is out of range", a.value(i));
                        };
                        out.append_value(ms.to_be_bytes());
                    }
                }
            }
            TimeUnit::Millisecond => {
                each!(array.as_primitive::<TimestampMillisecondType>(), |v| v
                    .to_be_bytes())
            }
            TimeUnit::Microsecond => {
                each!(array.as_primitive::<TimestampMicrosecondType>(), |v| v
                    .div_euclid(1000)
                    .to_be_bytes())
            }
            TimeUnit::Nanosecond => {
                each!(array.as_primitive::<TimestampNanosecondType>(), |v| v
                    .div_euclid(1_000_000)
                    .to_be_bytes())
            }
        },
        (_, other) => return exec_err!("{name}() takes a {}, not {other}", fixed.cql()),
    }
    Ok(Arc::new(out.finish()))
}

/// A CQL `date`: days since the epoch + 2^31, as an unsigned 32-bit big-endian integer.
fn cql_date(days: i64) -> [u8; 4] {
    ((days + (1i64 << 31)) as u32).to_be_bytes()
}

#[cfg(test)]
mod tests {
    use arrow::array::{BinaryArray, Int32Array, Int64Array, LargeBinaryArray, StringViewArray};
    use datafusion::common::ScalarValue;

    use super::*;
    use crate::udf::test_support::{eval, scalar};

    fn blobs(values: &[Option<&[u8]>]) -> (Field, ArrayRef) {
        (
            Field::new("v", DataType::Binary, true),
            Arc::new(BinaryArray::from(values.to_vec())),
        )
    }

    #[tokio::test]
    async fn text_and_blob_round_trip() {
        let (field, values) = blobs(&[Some("héllo 🦀".as_bytes()), None, Some(b"")]);
        let text = eval("blob_to_text(v)", field.clone(), values.clone())
            .await
            .expect("valid UTF-8");
        let text = text.as_string::<i32>();
        assert_eq!(text.value(0), "héllo 🦀");
        assert!(text.is_null(1));
        assert_eq!(text.value(2), "");
        let back = eval("text_to_blob(blob_to_text(v))", field, values.clone())
            .await
            .expect("runs");
        assert_eq!(back.as_ref(), values.as_ref());
    }

    #[tokio::test]
    async fn invalid_utf8_is_an_error_or_replaced() {
        let (field, values) = blobs(&[Some(b"ok"), Some(b"ab\xffcd")]);
        let err = eval("blob_to_text(v)", field.clone(), values.clone())
            .await
            .expect_err("not UTF-8");
        assert!(
            err.contains("blob_to_text(): the blob is not UTF-8: byte 2 of 5"),
            "{err}"
        );
        assert!(err.contains("0xff6364"), "{err}");
        let lossy = eval("blob_to_text_lossy(v)", field, values)
            .await
            .expect("lossy");
        assert_eq!(lossy.as_string::<i32>().value(1), "ab\u{fffd}cd");
    }

    #[tokio::test]
    async fn hex_is_a_cql_blob_literal() {
        let (field, values) = blobs(&[Some(&[0x00, 0xff, 0x7f, 0x80]), Some(b""), None]);
        let hex = eval("blob_to_hex(v)", field.clone(), values.clone())
            .await
            .expect("runs");
        let hex = hex.as_string::<i32>();
        assert_eq!(hex.value(0), "0x00ff7f80");
        assert_eq!(hex.value(1), "0x");
        assert!(hex.is_null(2));
        let back = eval("hex_to_blob(blob_to_hex(v))", field, values.clone())
            .await
            .expect("runs");
        assert_eq!(back.as_ref(), values.as_ref());

        assert_eq!(
            scalar("hex_to_blob('00FF')").await.expect("no prefix"),
            ScalarValue::Binary(Some(vec![0, 255]))
        );
        assert_eq!(
            scalar("hex_to_blob('0X')").await.expect("empty"),
            ScalarValue::Binary(Some(vec![]))
        );
        for (bad, why) in [("0x123", "odd number"), ("0xzz", "not hex digits")] {
            let err = scalar(&format!("hex_to_blob('{bad}')"))
                .await
                .expect_err(bad);
            assert!(
                err.contains("hex_to_blob(): ") && err.contains(why),
                "{err}"
            );
        }
    }

    #[tokio::test]
    async fn blob_as_bigint_is_eight_big_endian_bytes() {
        let (field, values) = blobs(&[
            Some(&[0x80, 0, 0, 0, 0, 0, 0, 0]),
            Some(&[0, 0, 0, 0, 0, 0, 0x01, 0x02]),
            Some(b""),
            None,
        ]);
        let v = eval("blob_to_bigint(v)", field.clone(), values.clone())
            .await
            .expect("runs");
        let v = v.as_primitive::<Int64Type>();
        assert_eq!((v.value(0), v.value(1)), (i64::MIN, 258));
        assert!(v.is_null(2), "an empty blob is CQL's empty value: NULL");
        assert!(v.is_null(3));
        let back = eval("bigint_to_blob(blob_to_bigint(v))", field.clone(), values)
            .await
            .expect("runs");
        let back = back.as_binary::<i32>();
        assert_eq!(back.value(1), [0, 0, 0, 0, 0, 0, 1, 2]);
        assert!(back.is_null(2) && back.is_null(3));

        let (field, values) = blobs(&[Some(&[1, 2, 3])]);
        for (f, width) in [
            ("blob_to_bigint", 8),
            ("blob_to_int", 4),
            ("blob_to_uuid", 16),
        ] {
            let err = eval(&format!("{f}(v)"), field.clone(), values.clone())
                .await
                .expect_err("three bytes");
            assert!(err.contains(&format!("{f}(): a ")), "{err}");
            assert!(
                err.contains(&format!("is {width} bytes, this blob has 3")),
                "{err}"
            );
        }
    }

    #[tokio::test]
    async fn every_fixed_type_round_trips_through_a_blob() {
        let cases = [
            ("int", "CAST(-2 AS INT)", "0xfffffffe"),
            ("smallint", "CAST(258 AS SMALLINT)", "0x0102"),
            ("tinyint", "CAST(-1 AS TINYINT)", "0xff"),
            ("double", "1.5", "0x3ff8000000000000"),
            ("float", "CAST(1.5 AS FLOAT)", "0x3fc00000"),
            ("boolean", "true", "0x01"),
            (
                "timestamp",
                "CAST('1970-01-01T00:00:01.5Z' AS TIMESTAMP)",
                "0x00000000000005dc",
            ),
            ("date", "CAST('1970-01-02' AS DATE)", "0x80000001"),
            ("time", "CAST('00:00:01' AS TIME)", "0x000000003b9aca00"),
            (
                "uuid",
                "text_to_uuid('00000000-0000-0000-0000-0000000000ff')",
                "0x000000000000000000000000000000ff",
            ),
        ];
        for (ty, value, hex) in cases {
            let blob = format!("{ty}_to_blob({value})");
            assert_eq!(
                scalar(&format!("blob_to_hex({blob})")).await,
                Ok(ScalarValue::Utf8(Some(hex.into()))),
                "{ty}"
            );
            let same = scalar(&format!("blob_to_{ty}({blob}) = {value}"))
                .await
                .expect(ty);
            assert_eq!(same, ScalarValue::Boolean(Some(true)), "{ty}");
        }
        // Any non-zero byte is true, as Cassandra reads it.
        assert_eq!(
            scalar("blob_to_boolean(hex_to_blob('0x02'))").await,
            Ok(ScalarValue::Boolean(Some(true)))
        );
        let err = scalar("blob_to_time(hex_to_blob('0xffffffffffffffff'))")
            .await
            .expect_err("negative time");
        assert!(err.contains("not a time of day"), "{err}");
    }

    #[tokio::test]
    async fn narrower_integers_widen_and_other_layouts_work() {
        let values: ArrayRef = Arc::new(Int32Array::from(vec![Some(7), None]));
        let out = eval(
            "blob_to_hex(bigint_to_blob(v))",
            Field::new("v", DataType::Int32, true),
            values,
        )
        .await
        .expect("int widens to bigint");
        let out = out.as_string::<i32>();
        assert_eq!(out.value(0), "0x0000000000000007");
        assert!(out.is_null(1));

        let values: ArrayRef = Arc::new(LargeBinaryArray::from(vec![Some(b"\x01".as_slice())]));
        let out = eval(
            "blob_to_hex(v)",
            Field::new("v", DataType::LargeBinary, true),
            values,
        )
        .await
        .expect("large binary");
        assert_eq!(out.as_string::<i32>().value(0), "0x01");

        let values: ArrayRef = Arc::new(StringViewArray::from(vec![Some("ab"), None]));
        let out = eval(
            "text_to_blob(v)",
            Field::new("v", DataType::Utf8View, true),
            values,
        )
        .await
        .expect("string view");
        let out = out.as_binary::<i32>();
        assert_eq!((out.value(0), out.is_null(1)), (b"ab".as_slice(), true));

        let err = eval(
            "blob_to_bigint(v)",
            Field::new("v", DataType::Int64, true),
            Arc::new(Int64Array::from(vec![1])),
        )
        .await
        .expect_err("not a blob");
        assert!(err.contains("blob_to_bigint"), "{err}");
    }
}
