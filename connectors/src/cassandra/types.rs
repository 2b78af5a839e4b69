//! Decoding CQL cells, as they sit in the response frame, straight into Arrow builders.
//!
//! One [`ColumnDecoder`] per output column, chosen once per scan from the column's [`CqlType`]
//! (through [`CqlType::arrow_type`], so decoding and the declared schema cannot disagree). The
//! hot path is `push(&[u8])`: no allocation per row for fixed-width types and text.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use arrow::array::builder::NullBufferBuilder;
use arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, FixedSizeBinaryBuilder,
    FixedSizeListArray, Float32Builder, Float64Builder, Int8Builder, Int16Builder, Int32Builder,
    Int64Builder, IntervalMonthDayNanoBuilder, ListArray, MapArray, StringBuilder, StructArray,
    Time64NanosecondBuilder, TimestampMillisecondBuilder,
};
use arrow::buffer::{OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{DataType, IntervalMonthDayNano};
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
    /// `list` and `set`: `[n:i32] ([len:i32] bytes)*`.
    List(Box<Nested>),
    /// `map`: `[n:i32] ([len:i32] key [len:i32] value)*`.
    Map(Box<Nested>),
    /// `tuple` and UDTs: `([len:i32] bytes)*`, trailing fields may be absent (= NULL).
    Struct(Box<Nested>),
    /// `vector<T, n>`: n values back to back, each prefixed by a vint length when T has no
    /// fixed width.
    Vector(Box<Nested>),
}

/// The state of a nested decoder: its children, offsets and validity.
pub struct Nested {
    data_type: DataType,
    children: Vec<ColumnDecoder>,
    offsets: Vec<i32>,
    nulls: NullBufferBuilder,
    /// For vectors: the element count, and the element width when it is fixed.
    dimension: usize,
    fixed_width: Option<usize>,
}

impl Nested {
    fn new(data_type: DataType, children: Vec<ColumnDecoder>, capacity: usize) -> Box<Self> {
        let mut offsets = Vec::with_capacity(capacity + 1);
        offsets.push(0);
        Box::new(Self {
            data_type,
            children,
            offsets,
            nulls: NullBufferBuilder::new(capacity),
            dimension: 0,
            fixed_width: None,
        })
    }

    fn child_len(&self) -> i32 {
        *self.offsets.last().expect("offsets start with 0")
    }
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
        let data_type = ty.arrow_type();
        let native = match ty.unfrozen() {
            CqlType::Native(native) => native,
            CqlType::List(el) | CqlType::Set(el) => {
                let child = Self::new(el, capacity)?;
                return Some(Self::List(Nested::new(data_type, vec![child], capacity)));
            }
            CqlType::Map(k, v) => {
                let children = vec![Self::new(k, capacity)?, Self::new(v, capacity)?];
                return Some(Self::Map(Nested::new(data_type, children, capacity)));
            }
            CqlType::Tuple(items) => {
                let children = items
                    .iter()
                    .map(|t| Self::new(t, capacity))
                    .collect::<Option<Vec<_>>>()?;
                return Some(Self::Struct(Nested::new(data_type, children, capacity)));
            }
            CqlType::Udt { fields, .. } => {
                let children = fields
                    .iter()
                    .map(|(_, t)| Self::new(t, capacity))
                    .collect::<Option<Vec<_>>>()?;
                return Some(Self::Struct(Nested::new(data_type, children, capacity)));
            }
            CqlType::Vector(el, n) => {
                let child = Self::new(el, capacity * usize::from(*n))?;
                let mut nested = Nested::new(data_type, vec![child], capacity);
                nested.dimension = usize::from(*n);
                nested.fixed_width = fixed_width(el);
                return Some(Self::Vector(nested));
            }
            CqlType::Frozen(_) => unreachable!("unfrozen() removed every Frozen"),
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
            Self::List(n) | Self::Map(n) => {
                let len = n.child_len();
                n.offsets.push(len);
                n.nulls.append_null();
            }
            Self::Struct(n) => {
                n.children.iter_mut().for_each(Self::push_null);
                n.nulls.append_null();
            }
            Self::Vector(n) => {
                // A fixed-size list keeps `dimension` child slots even for a NULL vector.
                for _ in 0..n.dimension {
                    n.children[0].push_null();
                }
                n.nulls.append_null();
            }
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
            Self::List(n) => {
                let mut rest = bytes;
                let count = read_count(&mut rest)?;
                let mut empties = false;
                for _ in 0..count {
                    empties |= push_cell(&mut n.children[0], &mut rest)?;
                }
                let len = n.child_len() + count;
                n.offsets.push(len);
                n.nulls.append_non_null();
                return Ok(empties);
            }
            Self::Map(n) => {
                let mut rest = bytes;
                let count = read_count(&mut rest)?;
                let mut empties = false;
                for _ in 0..count {
                    let (keys, values) = n.children.split_at_mut(1);
                    // Arrow map keys cannot be NULL, so neither NULL nor "empty" keys are allowed.
                    let key_len = rest
                        .get(..4)
                        .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]));
                    if key_len.is_some_and(|l| l < 0 || (l == 0 && !keys[0].empty_is_value())) {
                        return Err(DecodeError("map with a NULL or empty key".into()));
                    }
                    empties |= push_cell(&mut keys[0], &mut rest)?;
                    empties |= push_cell(&mut values[0], &mut rest)?;
                }
                let len = n.child_len() + count;
                n.offsets.push(len);
                n.nulls.append_non_null();
                return Ok(empties);
            }
            Self::Struct(n) => {
                let mut rest = bytes;
                let mut empties = false;
                for child in &mut n.children {
                    if rest.is_empty() {
                        // Fields added to a UDT after the value was written are absent.
                        child.push_null();
                    } else {
                        empties |= push_cell(child, &mut rest)?;
                    }
                }
                n.nulls.append_non_null();
                return Ok(empties);
            }
            Self::Vector(n) => {
                let mut rest = bytes;
                let mut empties = false;
                for _ in 0..n.dimension {
                    let len = match n.fixed_width {
                        Some(w) => w,
                        None => read_unsigned_vint(&mut rest)? as usize,
                    };
                    let value = take(&mut rest, len)?;
                    empties |= n.children[0].push(value)?;
                }
                n.nulls.append_non_null();
                return Ok(empties);
            }
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
            Self::List(n) | Self::Map(n) | Self::Struct(n) | Self::Vector(n) => n.finish(),
        }
    }
}

impl Nested {
    fn finish(&mut self) -> ArrayRef {
        let children: Vec<ArrayRef> = self
            .children
            .iter_mut()
            .map(ColumnDecoder::finish)
            .collect();
        let nulls = self.nulls.finish();
        let offsets = std::mem::replace(&mut self.offsets, vec![0]);
        let offsets = OffsetBuffer::new(ScalarBuffer::from(offsets));
        let [child]: [ArrayRef; 1] = match &self.data_type {
            DataType::Struct(fields) => {
                return Arc::new(StructArray::new(fields.clone(), children, nulls));
            }
            DataType::Map(entries, ordered) => {
                let DataType::Struct(kv) = entries.data_type() else {
                    unreachable!("CqlType::arrow_type builds Map(Struct)");
                };
                let entries_array = StructArray::new(kv.clone(), children, None);
                return Arc::new(MapArray::new(
                    entries.clone(),
                    offsets,
                    entries_array,
                    nulls,
                    *ordered,
                ));
            }
            _ => children
                .try_into()
                .expect("lists and vectors have one child"),
        };
        match &self.data_type {
            DataType::List(field) => Arc::new(ListArray::new(field.clone(), offsets, child, nulls)),
            DataType::FixedSizeList(field, n) => {
                Arc::new(FixedSizeListArray::new(field.clone(), *n, child, nulls))
            }
            other => unreachable!("no nested decoder for {other}"),
        }
    }
}

/// The element width of a vector whose elements Cassandra packs without a length prefix.
///
/// Only the types whose Cassandra `AbstractType` declares a fixed length: `tinyint`,
/// `smallint`, `date` and `time` have constant sizes too, but Cassandra still prefixes them
/// with a vint length inside a vector, so they must not be listed here.
fn fixed_width(ty: &CqlType) -> Option<usize> {
    use NativeType::*;
    match ty.unfrozen() {
        CqlType::Native(Boolean) => Some(1),
        CqlType::Native(Int | Float) => Some(4),
        CqlType::Native(BigInt | Double | Timestamp) => Some(8),
        CqlType::Native(Uuid | TimeUuid) => Some(16),
        _ => None,
    }
}

fn take<'a>(buf: &mut &'a [u8], len: usize) -> DResult<&'a [u8]> {
    if buf.len() < len {
        return Err(DecodeError(format!(
            "truncated value: need {len} bytes, {} left",
            buf.len()
        )));
    }
    let (head, tail) = buf.split_at(len);
    *buf = tail;
    Ok(head)
}

fn read_count(buf: &mut &[u8]) -> DResult<i32> {
    let n = i32::from_be_bytes(fixed(take(buf, 4)?)?);
    if n < 0 {
        return Err(DecodeError(format!("negative element count {n}")));
    }
    Ok(n)
}

/// Reads one `[len:i32] bytes` cell (len < 0 = NULL) into `decoder`; true when it was "empty".
fn push_cell(decoder: &mut ColumnDecoder, buf: &mut &[u8]) -> DResult<bool> {
    let len = i32::from_be_bytes(fixed(take(buf, 4)?)?);
    if len < 0 {
        decoder.push_null();
        return Ok(false);
    }
    let value = take(buf, len as usize)?;
    decoder.push(value)
}

/// An unsigned vint, as vectors of variable-width types prefix their elements.
fn read_unsigned_vint(buf: &mut &[u8]) -> DResult<u64> {
    let first = *buf
        .first()
        .ok_or_else(|| DecodeError("truncated vint".into()))?;
    let extra = first.leading_ones() as usize;
    let bytes = take(buf, 1 + extra)?;
    let mut value = u64::from(first & (0xffu8.checked_shr(extra as u32).unwrap_or(0)));
    for &b in &bytes[1..] {
        value = (value << 8) | u64::from(b);
    }
    Ok(value)
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
    let value = read_unsigned_vint(buf)?;
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

/// Beyond this many zeros, decimals are written as `digitsE±exponent`.
const MAX_PLAIN_SCALE: u32 = 1000;

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
    if scale.unsigned_abs() > MAX_PLAIN_SCALE {
        // Plain notation would be megabytes of zeros: keep it exact in scientific notation.
        out.push_str(digits);
        let _ = write!(out, "E{}", -i64::from(scale));
        return;
    }
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
        assert_eq!(decimal(&[0x01], i32::MIN), "1E2147483648");
        assert_eq!(decimal(&[0xff], 5000), "-1E-5000");
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

#[cfg(test)]
mod nested_tests {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{
        Date32Type, Float32Type, Int8Type, Int16Type, Int32Type, Time64NanosecondType,
    };
    use ferry_sql::types::NoUdts;

    use super::*;

    fn decoder(cql: &str) -> ColumnDecoder {
        ColumnDecoder::new(&CqlType::parse(cql, "ks", &NoUdts).expect("parses"), 4)
            .expect("decodable")
    }

    fn cell(bytes: &[u8]) -> Vec<u8> {
        let mut v = (bytes.len() as i32).to_be_bytes().to_vec();
        v.extend_from_slice(bytes);
        v
    }

    #[test]
    fn lists_with_null_and_empty_rows() {
        let mut d = decoder("list<int>");
        let mut value = 2i32.to_be_bytes().to_vec();
        value.extend(cell(&7i32.to_be_bytes()));
        value.extend(cell(&(-1i32).to_be_bytes()));
        assert_eq!(d.push(&value), Ok(false));
        d.push_null();
        assert_eq!(d.push(&0i32.to_be_bytes()), Ok(false));
        let a = d.finish();
        let list = a.as_list::<i32>();
        assert_eq!(list.len(), 3);
        assert!(list.is_null(1));
        assert_eq!(list.value(2).len(), 0);
        let first = list.value(0);
        assert_eq!(first.as_primitive::<Int32Type>().values(), &[7, -1]);
        assert_eq!(
            a.data_type(),
            &CqlType::parse("list<int>", "ks", &NoUdts)
                .expect("parses")
                .arrow_type()
        );
    }

    #[test]
    fn maps_and_tuples_and_vectors() {
        let mut m = decoder("map<text, int>");
        let mut value = 1i32.to_be_bytes().to_vec();
        value.extend(cell(b"k"));
        value.extend(cell(&5i32.to_be_bytes()));
        m.push(&value).expect("map");
        let a = m.finish();
        let map = a.as_map();
        assert_eq!(map.keys().as_string::<i32>().value(0), "k");
        assert_eq!(map.values().as_primitive::<Int32Type>().value(0), 5);

        // A tuple whose second field is absent (written before the field existed).
        let mut t = decoder("tuple<int, text>");
        t.push(&cell(&3i32.to_be_bytes())).expect("tuple");
        let a = t.finish();
        let st = a.as_struct();
        assert_eq!(st.column(0).as_primitive::<Int32Type>().value(0), 3);
        assert!(st.column(1).is_null(0));

        let mut v = decoder("vector<float, 2>");
        let mut value = 1.5f32.to_be_bytes().to_vec();
        value.extend(2.5f32.to_be_bytes());
        v.push(&value).expect("vector");
        v.push_null();
        let a = v.finish();
        let fsl = a.as_fixed_size_list();
        assert_eq!(
            fsl.value(0).as_primitive::<Float32Type>().values(),
            &[1.5, 2.5]
        );
        assert!(fsl.is_null(1));
        assert_eq!(fsl.values().len(), 4);
    }

    #[test]
    fn variable_width_vectors_prefix_elements_with_vints() {
        let mut v = decoder("vector<text, 2>");
        v.push(&[1, b'a', 2, b'b', b'c']).expect("vector");
        let a = v.finish();
        let texts = a.as_fixed_size_list().value(0);
        let texts = texts.as_string::<i32>();
        assert_eq!((texts.value(0), texts.value(1)), ("a", "bc"));
    }

    #[test]
    fn vectors_of_short_fixed_size_types_are_length_prefixed() {
        // As Cassandra 5.0 writes `[-128, 127]` and `['1970-01-01', '1970-01-02']`: each
        // element after a one-byte vint length, unlike int/float/bigint/uuid elements.
        let mut v = decoder("vector<tinyint, 2>");
        v.push(&[1, 0x80, 1, 0x7f]).expect("tinyint vector");
        let a = v.finish();
        let items = a.as_fixed_size_list().value(0);
        assert_eq!(items.as_primitive::<Int8Type>().values(), &[-128, 127]);

        let mut v = decoder("vector<smallint, 1>");
        v.push(&[2, 0x80, 0x00]).expect("smallint vector");
        let a = v.finish();
        let items = a.as_fixed_size_list().value(0);
        assert_eq!(items.as_primitive::<Int16Type>().values(), &[-32768]);

        let mut v = decoder("vector<date, 2>");
        v.push(&[4, 0x80, 0, 0, 0, 4, 0x80, 0, 0, 1])
            .expect("date vector");
        let a = v.finish();
        let items = a.as_fixed_size_list().value(0);
        assert_eq!(items.as_primitive::<Date32Type>().values(), &[0, 1]);

        let mut v = decoder("vector<time, 1>");
        let mut value = vec![8];
        value.extend(86_399_999_999_999i64.to_be_bytes());
        v.push(&value).expect("time vector");
        let a = v.finish();
        let items = a.as_fixed_size_list().value(0);
        assert_eq!(
            items.as_primitive::<Time64NanosecondType>().values(),
            &[86_399_999_999_999]
        );
    }

    #[test]
    fn truncated_collections_are_errors() {
        let mut d = decoder("list<int>");
        assert!(d.push(&[0, 0, 0, 2, 0, 0, 0, 4, 0, 0]).is_err());
        let mut m = decoder("map<int, int>");
        let mut value = 1i32.to_be_bytes().to_vec();
        value.extend((-1i32).to_be_bytes());
        assert!(m.push(&value).is_err());
    }
}
