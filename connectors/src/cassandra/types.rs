//! Decoding CQL cells, as they sit in the response frame, straight into Arrow builders.
//!
//! One [`ColumnDecoder`] per output column, chosen once per scan from the column's [`CqlType`]
//! (through [`CqlType::arrow_type`], so decoding and the declared schema cannot disagree). The
//! hot path is `push(&[u8])`: no allocation per row for fixed-width types and text.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, FixedSizeBinaryBuilder, Float32Builder,
    Float64Builder, Int8Builder, Int16Builder, Int32Builder, Int64Builder,
    IntervalMonthDayNanoBuilder, StringBuilder, Time64NanosecondBuilder,
    TimestampMillisecondBuilder,
};
use arrow::datatypes::IntervalMonthDayNano;
use ferry_sql::types::{CqlType, NativeType};

/// Why a cell could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

type DResult<T = ()> = std::result::Result<T, DecodeError>;

/// Appends cells of one column to an Arrow builder.
pub enum ColumnDecoder {
    Text(StringBuilder),
    Ascii(StringBuilder),
    Inet(StringBuilder, String),
    Varint(StringBuilder, String),
    Decimal(StringBuilder, String),
    Int8(Int8Builder),
    Int16(Int16Builder),
    Int32(Int32Builder),
    Int64(Int64Builder),
    Float32(Float32Builder),
    Float64(Float64Builder),
    Boolean(BooleanBuilder),
    Timestamp(TimestampMillisecondBuilder),
    Date(Date32Builder),
    Time(Time64NanosecondBuilder),
    Duration(IntervalMonthDayNanoBuilder),
    Uuid(FixedSizeBinaryBuilder),
    Blob(BinaryBuilder),
}

impl std::fmt::Debug for ColumnDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ColumnDecoder")
    }
}

impl ColumnDecoder {
    /// A decoder for `ty`, or `None` when Ferry cannot decode that type yet.
    pub fn new(ty: &CqlType, capacity: usize) -> Option<Self> {
        use NativeType::*;
        let CqlType::Native(native) = ty.unfrozen() else {
            return None;
        };
        let text = || StringBuilder::with_capacity(capacity, capacity * 16);
        Some(match native {
            Text => Self::Text(text()),
            Ascii => Self::Ascii(text()),
            Inet => Self::Inet(text(), String::new()),
            Varint => Self::Varint(text(), String::new()),
            Decimal => Self::Decimal(text(), String::new()),
            TinyInt => Self::Int8(Int8Builder::with_capacity(capacity)),
            SmallInt => Self::Int16(Int16Builder::with_capacity(capacity)),
            Int => Self::Int32(Int32Builder::with_capacity(capacity)),
            BigInt | Counter => Self::Int64(Int64Builder::with_capacity(capacity)),
            Float => Self::Float32(Float32Builder::with_capacity(capacity)),
            Double => Self::Float64(Float64Builder::with_capacity(capacity)),
            Boolean => Self::Boolean(BooleanBuilder::with_capacity(capacity)),
            Timestamp => Self::Timestamp(
                TimestampMillisecondBuilder::with_capacity(capacity).with_timezone("UTC"),
            ),
            Date => Self::Date(Date32Builder::with_capacity(capacity)),
            Time => Self::Time(Time64NanosecondBuilder::with_capacity(capacity)),
            Duration => Self::Duration(IntervalMonthDayNanoBuilder::with_capacity(capacity)),
            Uuid | TimeUuid => Self::Uuid(FixedSizeBinaryBuilder::with_capacity(capacity, 16)),
            Blob => Self::Blob(BinaryBuilder::with_capacity(capacity, capacity * 16)),
        })
    }

    /// Appends a NULL.
    pub fn push_null(&mut self) {
        match self {
            Self::Text(b) | Self::Ascii(b) | Self::Inet(b, _) => b.append_null(),
            Self::Varint(b, _) | Self::Decimal(b, _) => b.append_null(),
            Self::Int8(b) => b.append_null(),
            Self::Int16(b) => b.append_null(),
            Self::Int32(b) => b.append_null(),
            Self::Int64(b) => b.append_null(),
            Self::Float32(b) => b.append_null(),
            Self::Float64(b) => b.append_null(),
            Self::Boolean(b) => b.append_null(),
            Self::Timestamp(b) => b.append_null(),
            Self::Date(b) => b.append_null(),
            Self::Time(b) => b.append_null(),
            Self::Duration(b) => b.append_null(),
            Self::Uuid(b) => b.append_null(),
            Self::Blob(b) => b.append_null(),
        }
    }

    /// Whether a zero-length cell is a real value (text, blob) rather than Cassandra's "empty".
    pub fn empty_is_value(&self) -> bool {
        matches!(self, Self::Text(_) | Self::Ascii(_) | Self::Blob(_))
    }

    /// Appends one cell. A zero-length cell of a non-text type is Cassandra's "empty" value: it
    /// becomes NULL and the caller counts it (the return value is `true`).
    #[inline]
    pub fn push(&mut self, bytes: &[u8]) -> DResult<bool> {
        if bytes.is_empty() && !self.empty_is_value() {
            self.push_null();
            return Ok(true);
        }
        match self {
            Self::Text(b) => b.append_value(utf8(bytes)?),
            Self::Ascii(b) => {
                if !bytes.is_ascii() {
                    return Err(DecodeError("ascii value with non-ASCII bytes".into()));
                }
                b.append_value(utf8(bytes)?)
            }
            Self::Inet(b, buf) => {
                buf.clear();
                match bytes.len() {
                    4 => write!(buf, "{}", Ipv4Addr::from(fixed::<4>(bytes)?)),
                    16 => write!(buf, "{}", Ipv6Addr::from(fixed::<16>(bytes)?)),
                    n => return Err(DecodeError(format!("inet of {n} bytes"))),
                }
                .map_err(|e| DecodeError(e.to_string()))?;
                b.append_value(buf.as_str())
            }
            Self::Varint(b, buf) => {
                buf.clear();
                write_varint(bytes, buf);
                b.append_value(buf.as_str())
            }
            Self::Decimal(b, buf) => {
                buf.clear();
                let scale = i32::from_be_bytes(fixed::<4>(bytes.get(..4).unwrap_or(&[]))?);
                write_decimal(&bytes[4..], scale, buf);
                b.append_value(buf.as_str())
            }
            Self::Int8(b) => b.append_value(i8::from_be_bytes(fixed(bytes)?)),
            Self::Int16(b) => b.append_value(i16::from_be_bytes(fixed(bytes)?)),
            Self::Int32(b) => b.append_value(i32::from_be_bytes(fixed(bytes)?)),
            Self::Int64(b) => b.append_value(i64::from_be_bytes(fixed(bytes)?)),
            Self::Float32(b) => b.append_value(f32::from_be_bytes(fixed(bytes)?)),
            Self::Float64(b) => b.append_value(f64::from_be_bytes(fixed(bytes)?)),
            Self::Boolean(b) => b.append_value(fixed::<1>(bytes)?[0] != 0),
            Self::Timestamp(b) => b.append_value(i64::from_be_bytes(fixed(bytes)?)),
            Self::Date(b) => {
                // CQL dates are unsigned days with the epoch at 2^31.
                let raw = u32::from_be_bytes(fixed(bytes)?);
                b.append_value((i64::from(raw) - (1i64 << 31)) as i32)
            }
            Self::Time(b) => b.append_value(i64::from_be_bytes(fixed(bytes)?)),
            Self::Duration(b) => {
                let mut rest = bytes;
                let months = read_signed_vint(&mut rest)?;
                let days = read_signed_vint(&mut rest)?;
                let nanos = read_signed_vint(&mut rest)?;
                let narrow = |v: i64| {
                    i32::try_from(v).map_err(|_| DecodeError("duration field out of range".into()))
                };
                b.append_value(IntervalMonthDayNano::new(
                    narrow(months)?,
                    narrow(days)?,
                    nanos,
                ))
            }
            Self::Uuid(b) => b
                .append_value(fixed::<16>(bytes)?)
                .map_err(|e| DecodeError(e.to_string()))?,
            Self::Blob(b) => b.append_value(bytes),
        }
        Ok(false)
    }

    /// Finishes the column, leaving the builder empty for the next batch.
    pub fn finish(&mut self) -> ArrayRef {
        match self {
            Self::Text(b) | Self::Ascii(b) | Self::Inet(b, _) => Arc::new(b.finish()),
            Self::Varint(b, _) | Self::Decimal(b, _) => Arc::new(b.finish()),
            Self::Int8(b) => Arc::new(b.finish()),
            Self::Int16(b) => Arc::new(b.finish()),
            Self::Int32(b) => Arc::new(b.finish()),
            Self::Int64(b) => Arc::new(b.finish()),
            Self::Float32(b) => Arc::new(b.finish()),
            Self::Float64(b) => Arc::new(b.finish()),
            Self::Boolean(b) => Arc::new(b.finish()),
            Self::Timestamp(b) => Arc::new(b.finish()),
            Self::Date(b) => Arc::new(b.finish()),
            Self::Time(b) => Arc::new(b.finish()),
            Self::Duration(b) => Arc::new(b.finish()),
            Self::Uuid(b) => Arc::new(b.finish()),
            Self::Blob(b) => Arc::new(b.finish()),
        }
    }
}

#[inline]
fn utf8(bytes: &[u8]) -> DResult<&str> {
    std::str::from_utf8(bytes).map_err(|e| DecodeError(format!("invalid UTF-8: {e}")))
}

#[inline]
fn fixed<const N: usize>(bytes: &[u8]) -> DResult<[u8; N]> {
    bytes
        .try_into()
        .map_err(|_| DecodeError(format!("expected {N} bytes, got {}", bytes.len())))
}

/// Cassandra's variable-length integer: the count of leading 1-bits of the first byte is the
/// number of extra bytes; the value is zigzag-encoded.
fn read_signed_vint(buf: &mut &[u8]) -> DResult<i64> {
    let first = *buf
        .first()
        .ok_or_else(|| DecodeError("truncated duration".into()))?;
    let extra = first.leading_ones() as usize;
    if buf.len() < 1 + extra {
        return Err(DecodeError("truncated duration".into()));
    }
    let mut value = u64::from(first & (0xffu8.checked_shr(extra as u32).unwrap_or(0)));
    for &b in &buf[1..=extra] {
        value = (value << 8) | u64::from(b);
    }
    *buf = &buf[1 + extra..];
    Ok(((value >> 1) as i64) ^ -((value & 1) as i64))
}

/// Two's-complement big-endian integer → decimal digits.
fn write_varint(bytes: &[u8], out: &mut String) {
    if bytes.len() <= 16 {
        let negative = bytes[0] & 0x80 != 0;
        let mut v: i128 = if negative { -1 } else { 0 };
        for &b in bytes {
            v = (v << 8) | i128::from(b);
        }
        let _ = write!(out, "{v}");
    } else {
        let _ = write!(out, "{}", num_bigint::BigInt::from_signed_bytes_be(bytes));
    }
}

/// `unscaled × 10^-scale` in plain notation (no exponent), which `numeric` parses exactly.
fn write_decimal(unscaled: &[u8], scale: i32, out: &mut String) {
    if unscaled.is_empty() {
        out.push('0');
        return;
    }
    let mut digits = String::new();
    write_varint(unscaled, &mut digits);
    let (sign, digits) = match digits.strip_prefix('-') {
        Some(d) => ("-", d),
        None => ("", digits.as_str()),
    };
    out.push_str(sign);
    if scale <= 0 {
        out.push_str(digits);
        if digits != "0" {
            out.extend(std::iter::repeat_n('0', scale.unsigned_abs() as usize));
        }
    } else {
        let scale = scale as usize;
        if digits.len() > scale {
            let (int, frac) = digits.split_at(digits.len() - scale);
            out.push_str(int);
            out.push('.');
            out.push_str(frac);
        } else {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', scale - digits.len()));
            out.push_str(digits);
        }
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::Int32Type;

    use super::*;

    fn varint(bytes: &[u8]) -> String {
        let mut s = String::new();
        write_varint(bytes, &mut s);
        s
    }

    fn decimal(unscaled: &[u8], scale: i32) -> String {
        let mut s = String::new();
        write_decimal(unscaled, scale, &mut s);
        s
    }

    #[test]
    fn varints_in_twos_complement() {
        assert_eq!(varint(&[0x00]), "0");
        assert_eq!(varint(&[0x7f]), "127");
        assert_eq!(varint(&[0x80]), "-128");
        assert_eq!(varint(&[0x00, 0x80]), "128");
        assert_eq!(varint(&[0xff, 0x7f]), "-129");
        // 2^136 needs 18 bytes: the big-integer path.
        let mut big = vec![0x01];
        big.extend([0u8; 17]);
        assert_eq!(varint(&big), "87112285931760246646623899502532662132736");
    }

    #[test]
    fn decimals_keep_every_digit() {
        assert_eq!(decimal(&[0x30, 0x39], 2), "123.45");
        assert_eq!(decimal(&[0x30, 0x39], 7), "0.0012345");
        assert_eq!(decimal(&[0xcf, 0xc7], 2), "-123.45");
        assert_eq!(decimal(&[0x05], -3), "5000");
        assert_eq!(decimal(&[0x00], -3), "0");
        assert_eq!(decimal(&[0x05], 0), "5");
    }

    #[test]
    fn vints_decode_zigzag() {
        // months=1 (zigzag 2), days=-1 (zigzag 1), nanos=300 (zigzag 600 = 0x258, two bytes).
        let mut buf: &[u8] = &[0x02, 0x01, 0x82, 0x58];
        assert_eq!(read_signed_vint(&mut buf), Ok(1));
        assert_eq!(read_signed_vint(&mut buf), Ok(-1));
        assert_eq!(read_signed_vint(&mut buf), Ok(300));
        assert!(buf.is_empty());
    }

    #[test]
    fn empty_cells_of_non_text_types_become_counted_nulls() {
        let ty = CqlType::Native(NativeType::Int);
        let mut d = ColumnDecoder::new(&ty, 4).expect("int decodes");
        assert_eq!(d.push(&[0, 0, 0, 7]), Ok(false));
        assert_eq!(d.push(&[]), Ok(true));
        let a = d.finish();
        let a = a.as_primitive::<Int32Type>();
        assert_eq!((a.value(0), a.is_null(1)), (7, true));

        let mut t = ColumnDecoder::new(&CqlType::Native(NativeType::Text), 4).expect("text");
        assert_eq!(t.push(&[]), Ok(false));
        assert_eq!(t.finish().as_string::<i32>().value(0), "");
    }

    #[test]
    fn dates_are_days_from_the_epoch() {
        let mut d = ColumnDecoder::new(&CqlType::Native(NativeType::Date), 2).expect("date");
        d.push(&(1u32 << 31).to_be_bytes()).expect("epoch");
        d.push(&0u32.to_be_bytes()).expect("min date");
        let a = d.finish();
        let a = a.as_primitive::<arrow::datatypes::Date32Type>();
        assert_eq!((a.value(0), a.value(1)), (0, i32::MIN));
    }

    #[test]
    fn wrong_widths_are_errors() {
        let mut d = ColumnDecoder::new(&CqlType::Native(NativeType::BigInt), 1).expect("bigint");
        assert!(d.push(&[1, 2, 3]).is_err());
    }
}
