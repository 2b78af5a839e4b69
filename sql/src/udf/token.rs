//! `token(k1, k2, …)`: the partition token, exactly as Cassandra's Murmur3Partitioner computes it
//! from the partition-key columns, in key order. Over a Cassandra source, `token(…) > x` style
//! filters on the whole partition key are pushed down to the scan.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Builder};
use arrow::datatypes::{
    DataType, Date32Type, Date64Type, Field, Float32Type, Float64Type, Int8Type, Int16Type,
    Int32Type, Int64Type, Time64NanosecondType, TimeUnit, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
};
use datafusion::common::{Result, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use crate::types::CQL_TYPE_METADATA_KEY;

/// Name of the token function, as in CQL.
pub const TOKEN: &str = "token";

/// `token(k1, …)`: Cassandra's Murmur3 token of a partition key.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct TokenUdf {
    signature: Signature,
}

impl TokenUdf {
    pub fn new() -> Self {
        Self {
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

impl Default for TokenUdf {
    fn default() -> Self {
        Self::new()
    }
}

impl ScalarUDFImpl for TokenUdf {
    fn name(&self) -> &str {
        TOKEN
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        if arg_types.is_empty() {
            return plan_err!("token() needs the partition-key columns as arguments");
        }
        for t in arg_types {
            if KeyEncoding::of(&Field::new("", t.clone(), true)).is_none() {
                return plan_err!("token() cannot hash a value of type {t}");
            }
        }
        Ok(DataType::Int64)
    }

    fn is_strict(&self) -> bool {
        true
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let encodings = args
            .arg_fields
            .iter()
            .map(|f| match KeyEncoding::of(f) {
                Some(e) => Ok(e),
                None => exec_err!("token() cannot hash a value of type {}", f.data_type()),
            })
            .collect::<Result<Vec<_>>>()?;
        let mut out = Int64Builder::with_capacity(rows);
        let mut key = Vec::with_capacity(64);
        let mut component = Vec::with_capacity(32);
        for row in 0..rows {
            if arrays.iter().any(|a| a.is_null(row)) {
                out.append_null();
                continue;
            }
            key.clear();
            if arrays.len() == 1 {
                encodings[0].write(&arrays[0], row, &mut key)?;
            } else {
                for (array, encoding) in arrays.iter().zip(&encodings) {
                    component.clear();
                    encoding.write(array, row, &mut component)?;
                    if !push_key_component(&mut key, &component) {
                        return exec_err!("token(): a key component is longer than 65535 bytes");
                    }
                }
            }
            out.append_value(murmur3_token(&key));
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish()) as ArrayRef))
    }
}

/// Appends one component of a composite partition key the way Cassandra composes them: a 2-byte
/// big-endian length, the component's bytes, and a 0 byte. `false` when it is too long for that.
pub fn push_key_component(key: &mut Vec<u8>, component: &[u8]) -> bool {
    let Ok(len) = u16::try_from(component.len()) else {
        return false;
    };
    key.extend_from_slice(&len.to_be_bytes());
    key.extend_from_slice(component);
    key.push(0);
    true
}

/// How one key column is serialized the way Cassandra serializes it (CQL native protocol).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyEncoding {
    Int8,
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    Boolean,
    /// UTF-8 bytes as they are (text, ascii, varchar).
    Text,
    /// A decimal string holding a CQL varint.
    Varint,
    /// A decimal string holding a CQL decimal.
    Decimal,
    /// An IP address string holding a CQL inet.
    Inet,
    Bytes,
    /// Milliseconds since the epoch (CQL timestamp), from any Arrow timestamp unit.
    Timestamp(TimeUnit),
    /// Days since the epoch + 2^31, unsigned (CQL date).
    Date32,
    Date64,
    /// Nanoseconds since midnight (CQL time).
    Time64Ns,
}

impl KeyEncoding {
    fn of(field: &Field) -> Option<Self> {
        let cql = field
            .metadata()
            .get(CQL_TYPE_METADATA_KEY)
            .map(String::as_str);
        Some(match field.data_type() {
            DataType::Int8 => Self::Int8,
            DataType::Int16 => Self::Int16,
            DataType::Int32 => Self::Int32,
            DataType::Int64 => Self::Int64,
            DataType::Float32 => Self::Float32,
            DataType::Float64 => Self::Float64,
            DataType::Boolean => Self::Boolean,
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => match cql {
                Some("varint") => Self::Varint,
                Some("decimal") => Self::Decimal,
                Some("inet") => Self::Inet,
                _ => Self::Text,
            },
            DataType::Binary
            | DataType::LargeBinary
            | DataType::BinaryView
            | DataType::FixedSizeBinary(_) => Self::Bytes,
            DataType::Timestamp(unit, _) => Self::Timestamp(*unit),
            DataType::Date32 => Self::Date32,
            DataType::Date64 => Self::Date64,
            DataType::Time64(TimeUnit::Nanosecond) => Self::Time64Ns,
            _ => return None,
        })
    }

    fn write(self, array: &ArrayRef, row: usize, out: &mut Vec<u8>) -> Result<()> {
        match self {
            Self::Int8 => out.extend(array.as_primitive::<Int8Type>().value(row).to_be_bytes()),
            Self::Int16 => out.extend(array.as_primitive::<Int16Type>().value(row).to_be_bytes()),
            Self::Int32 => out.extend(array.as_primitive::<Int32Type>().value(row).to_be_bytes()),
            Self::Int64 => out.extend(array.as_primitive::<Int64Type>().value(row).to_be_bytes()),
            Self::Float32 => {
                out.extend(array.as_primitive::<Float32Type>().value(row).to_be_bytes())
            }
            Self::Float64 => {
                out.extend(array.as_primitive::<Float64Type>().value(row).to_be_bytes())
            }
            Self::Boolean => out.push(u8::from(array.as_boolean().value(row))),
            Self::Text => out.extend_from_slice(string(array, row).as_bytes()),
            Self::Varint => {
                let s = string(array, row);
                match s.parse::<num_bigint::BigInt>() {
                    Ok(v) => out.extend(v.to_signed_bytes_be()),
                    Err(_) => return exec_err!("token(): {s:?} is not a varint"),
                }
            }
            Self::Decimal => {
                let s = string(array, row);
                let Some((unscaled, scale)) = parse_decimal(s) else {
                    return exec_err!("token(): {s:?} is not a decimal");
                };
                out.extend(scale.to_be_bytes());
                out.extend(unscaled.to_signed_bytes_be());
            }
            Self::Inet => {
                let s = string(array, row);
                match s.parse::<std::net::IpAddr>() {
                    Ok(std::net::IpAddr::V4(ip)) => out.extend(ip.octets()),
                    Ok(std::net::IpAddr::V6(ip)) => out.extend(ip.octets()),
                    Err(_) => return exec_err!("token(): {s:?} is not an IP address"),
                }
            }
            Self::Bytes => out.extend_from_slice(bytes(array, row)),
            Self::Timestamp(unit) => {
                let millis = match unit {
                    TimeUnit::Second => array
                        .as_primitive::<TimestampSecondType>()
                        .value(row)
                        .saturating_mul(1000),
                    TimeUnit::Millisecond => {
                        array.as_primitive::<TimestampMillisecondType>().value(row)
                    }
                    TimeUnit::Microsecond => array
                        .as_primitive::<TimestampMicrosecondType>()
                        .value(row)
                        .div_euclid(1000),
                    TimeUnit::Nanosecond => array
                        .as_primitive::<TimestampNanosecondType>()
                        .value(row)
                        .div_euclid(1_000_000),
                };
                out.extend(millis.to_be_bytes());
            }
            Self::Date32 => {
                let days = array.as_primitive::<Date32Type>().value(row);
                out.extend(cql_date(i64::from(days)).to_be_bytes());
            }
            Self::Date64 => {
                let millis = array.as_primitive::<Date64Type>().value(row);
                out.extend(cql_date(millis.div_euclid(86_400_000)).to_be_bytes());
            }
            Self::Time64Ns => out.extend(
                array
                    .as_primitive::<Time64NanosecondType>()
                    .value(row)
                    .to_be_bytes(),
            ),
        }
        Ok(())
    }
}

/// A CQL `date`: days since the epoch, centred on 2^31.
fn cql_date(days: i64) -> u32 {
    (days + (1i64 << 31)) as u32
}

fn string(array: &ArrayRef, row: usize) -> &str {
    match array.data_type() {
        DataType::LargeUtf8 => array.as_string::<i64>().value(row),
        DataType::Utf8View => array.as_string_view().value(row),
        _ => array.as_string::<i32>().value(row),
    }
}

fn bytes(array: &ArrayRef, row: usize) -> &[u8] {
    match array.data_type() {
        DataType::LargeBinary => array.as_binary::<i64>().value(row),
        DataType::BinaryView => array.as_binary_view().value(row),
        DataType::FixedSizeBinary(_) => array.as_fixed_size_binary().value(row),
        _ => array.as_binary::<i32>().value(row),
    }
}

/// `-12.340` → (-12340, 3); `5E+3` → (5, -3). The scale is what Cassandra stored, as long as the
/// string is the one Ferry decoded (plain notation keeps every fractional digit).
fn parse_decimal(s: &str) -> Option<(num_bigint::BigInt, i32)> {
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], s[i + 1..].parse::<i64>().ok()?),
        None => (s, 0),
    };
    let (digits, fraction_len) = match mantissa.split_once('.') {
        Some((int, frac)) => (format!("{int}{frac}"), frac.len() as i64),
        None => (mantissa.to_string(), 0),
    };
    let unscaled = digits.parse::<num_bigint::BigInt>().ok()?;
    let scale = i32::try_from(fraction_len - exponent).ok()?;
    Some((unscaled, scale))
}

/// The token Cassandra's Murmur3Partitioner gives a serialized partition key.
pub fn murmur3_token(key: &[u8]) -> i64 {
    let h = murmur3_x64_128_cassandra(key);
    // Cassandra never hands out the minimum token: it is the ring's start, not a key's token.
    if h == i64::MIN { i64::MAX } else { h }
}

/// The first half of MurmurHash3 x64_128 (seed 0) as Cassandra implements it: the tail bytes are
/// read as *signed* bytes and sign-extended, unlike the reference implementation.
fn murmur3_x64_128_cassandra(key: &[u8]) -> i64 {
    let (mut h1, mut h2) = (0u64, 0u64);
    let blocks = key.chunks_exact(16);
    let tail = blocks.remainder();
    for block in blocks {
        let (lo, hi) = block.split_at(8);
        let k1 = u64::from_le_bytes(lo.try_into().expect("8 bytes"));
        let k2 = u64::from_le_bytes(hi.try_into().expect("8 bytes"));
        h1 ^= mix_k1(k1);
        h1 = h1.rotate_left(27).wrapping_add(h2);
        h1 = h1.wrapping_mul(5).wrapping_add(0x52dc_e729);
        h2 ^= mix_k2(k2);
        h2 = h2.rotate_left(31).wrapping_add(h1);
        h2 = h2.wrapping_mul(5).wrapping_add(0x3849_5ab5);
    }
    let signed = |i: usize| tail[i] as i8 as i64 as u64;
    let (mut k1, mut k2) = (0u64, 0u64);
    for i in (8..tail.len()).rev() {
        k2 ^= signed(i) << ((i - 8) * 8);
    }
    if tail.len() > 8 {
        h2 ^= mix_k2(k2);
    }
    for i in (0..tail.len().min(8)).rev() {
        k1 ^= signed(i) << (i * 8);
    }
    if !tail.is_empty() {
        h1 ^= mix_k1(k1);
    }
    let len = key.len() as u64;
    h1 ^= len;
    h2 ^= len;
    h1 = h1.wrapping_add(h2);
    h2 = h2.wrapping_add(h1);
    h1 = fmix(h1);
    h2 = fmix(h2);
    h1.wrapping_add(h2) as i64
}

const C1: u64 = 0x87c3_7b91_1142_53d5;
const C2: u64 = 0x4cf5_ad43_2745_937f;

fn mix_k1(k: u64) -> u64 {
    k.wrapping_mul(C1).rotate_left(31).wrapping_mul(C2)
}

fn mix_k2(k: u64) -> u64 {
    k.wrapping_mul(C2).rotate_left(33).wrapping_mul(C1)
}

fn fmix(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^ (k >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur3_matches_cassandra() {
        // Published vectors; "kremówki" ends in bytes >= 0x80, where Cassandra's hash differs
        // from the reference MurmurHash3.
        for (key, token) in [
            ("test", -6017608668500074083),
            ("xd", 4507812186440344727),
            ("primary_key", -1632642444691073360),
            ("kremówki", 4354931215268080151),
        ] {
            assert_eq!(murmur3_token(key.as_bytes()), token, "{key}");
        }
    }

    #[test]
    fn decimals_keep_their_scale() {
        let d = |s| parse_decimal(s).map(|(u, s)| (u.to_string(), s));
        assert_eq!(d("-12.340"), Some(("-12340".into(), 3)));
        assert_eq!(d("0.001"), Some(("1".into(), 3)));
        assert_eq!(d("5E+3"), Some(("5".into(), -3)));
        assert_eq!(d("12E-1002"), Some(("12".into(), 1002)));
        assert_eq!(d("x"), None);
    }
}
