//! Which split a target row belongs to: its partition key, read back from the target's binary
//! values, serialized the way Cassandra serializes the source column, hashed with Murmur3.
//!
//! ```text
//! target value (PG binary) ──► CQL value bytes ──► key = bytes            (one column)
//!                                               └► key = (len:u16 bytes 0)* (composite)
//! token = murmur3(key)  ──► split k such that token ∈ (start, end] of one of k's ranges
//! ```

use std::net::IpAddr;

use ferry_connectors::cassandra::TokenRange;
use ferry_connectors::yugabyte::types::oid;
use ferry_sql::NativeType;
use ferry_sql::udf::token::{murmur3_token, push_key_component};
use num_bigint::BigInt;

/// Microseconds from 1970-01-01 to 2000-01-01, PostgreSQL's epoch.
const PG_EPOCH_US: i64 = 946_684_800_000_000;
/// Days from 1970-01-01 to 2000-01-01.
const PG_EPOCH_DAYS: i64 = 10_957;

/// One partition-key column: where it is in the output and how to serialize it.
#[derive(Debug, Clone)]
pub struct KeyColumn {
    /// The source (Cassandra) column.
    pub source: String,
    /// Its position among the output columns.
    pub output: usize,
    pub cql: NativeType,
    /// The target column's base type OID.
    pub pg: u32,
}

/// The partition key of a table, in key order.
#[derive(Debug, Clone)]
pub struct PartitionKey {
    pub columns: Vec<KeyColumn>,
}

impl PartitionKey {
    /// The token of a row whose key values are `values` (in key order); `None` when a value is
    /// NULL or cannot be a value of the source column's type.
    pub fn token(&self, values: &[Option<&[u8]>], scratch: &mut (Vec<u8>, Vec<u8>)) -> Option<i64> {
        let (key, component) = scratch;
        key.clear();
        if let [column] = &self.columns[..] {
            cql_bytes(column.cql, column.pg, values.first().copied()??, key)?;
        } else {
            for (column, value) in self.columns.iter().zip(values) {
                component.clear();
                cql_bytes(column.cql, column.pg, (*value)?, component)?;
                if !push_key_component(key, component) {
                    return None;
                }
            }
        }
        Some(murmur3_token(key))
    }
}

/// Whether a source column of type `cql` stored in a target column of base type `pg` can be
/// serialized back as Cassandra would, exactly.
pub fn supported(cql: NativeType, pg: u32) -> bool {
    use NativeType as N;
    let int = matches!(pg, oid::INT2 | oid::INT4 | oid::INT8 | oid::NUMERIC);
    let text = matches!(pg, oid::TEXT | oid::VARCHAR | oid::NAME | oid::BPCHAR);
    match cql {
        N::TinyInt | N::SmallInt | N::Int | N::BigInt | N::Counter | N::Varint => int || text,
        N::Decimal => matches!(pg, oid::NUMERIC) || text,
        N::Float | N::Double => matches!(pg, oid::FLOAT4 | oid::FLOAT8),
        N::Boolean => pg == oid::BOOL,
        N::Ascii | N::Text => text,
        N::Uuid | N::TimeUuid => pg == oid::UUID || text,
        N::Inet => matches!(pg, oid::INET | oid::CIDR) || text,
        N::Blob => pg == oid::BYTEA,
        N::Timestamp => matches!(pg, oid::TIMESTAMP | oid::TIMESTAMPTZ),
        N::Date => pg == oid::DATE,
        N::Time => pg == oid::TIME,
        N::Duration => false,
    }
}

/// An integer column's value, without allocating.
fn small_int(pg: u32, v: &[u8]) -> Option<i64> {
    Some(match pg {
        oid::INT2 => i64::from(i16::from_be_bytes(v.try_into().ok()?)),
        oid::INT4 => i64::from(i32::from_be_bytes(v.try_into().ok()?)),
        oid::INT8 => i64::from_be_bytes(v.try_into().ok()?),
        _ => return None,
    })
}

fn int_of(pg: u32, v: &[u8]) -> Option<BigInt> {
    Some(match pg {
        oid::INT2 | oid::INT4 | oid::INT8 => BigInt::from(small_int(pg, v)?),
        oid::NUMERIC => {
            let (unscaled, scale) = numeric_unscaled(v)?;
            if scale != 0 {
                return None;
            }
            unscaled
        }
        _ => std::str::from_utf8(v).ok()?.trim().parse().ok()?,
    })
}

/// Appends the CQL serialization of a target value.
fn cql_bytes(cql: NativeType, pg: u32, v: &[u8], out: &mut Vec<u8>) -> Option<()> {
    use NativeType as N;
    let text = || std::str::from_utf8(v).ok();
    if let (N::TinyInt | N::SmallInt | N::Int | N::BigInt | N::Counter, Some(i)) =
        (cql, small_int(pg, v))
    {
        match cql {
            N::TinyInt => out.extend(i8::try_from(i).ok()?.to_be_bytes()),
            N::SmallInt => out.extend(i16::try_from(i).ok()?.to_be_bytes()),
            N::Int => out.extend(i32::try_from(i).ok()?.to_be_bytes()),
            _ => out.extend(i.to_be_bytes()),
        }
        return Some(());
    }
    match cql {
        N::TinyInt => out.extend(i8::try_from(int_of(pg, v)?).ok()?.to_be_bytes()),
        N::SmallInt => out.extend(i16::try_from(int_of(pg, v)?).ok()?.to_be_bytes()),
        N::Int => out.extend(i32::try_from(int_of(pg, v)?).ok()?.to_be_bytes()),
        N::BigInt | N::Counter => out.extend(i64::try_from(int_of(pg, v)?).ok()?.to_be_bytes()),
        N::Varint => out.extend(int_of(pg, v)?.to_signed_bytes_be()),
        N::Decimal => {
            let (unscaled, scale) = match pg {
                oid::NUMERIC => numeric_unscaled(v)?,
                _ => parse_decimal(text()?.trim())?,
            };
            out.extend(scale.to_be_bytes());
            out.extend(unscaled.to_signed_bytes_be());
        }
        N::Float => match pg {
            oid::FLOAT4 => out.extend_from_slice(v),
            _ => {
                let d = f64::from_be_bytes(v.try_into().ok()?);
                let f = d as f32;
                if f64::from(f) != d && !d.is_nan() {
                    return None;
                }
                out.extend(f.to_be_bytes());
            }
        },
        N::Double => match pg {
            oid::FLOAT8 => out.extend_from_slice(v),
            _ => out.extend(f64::from(f32::from_be_bytes(v.try_into().ok()?)).to_be_bytes()),
        },
        N::Boolean => out.extend_from_slice(v),
        N::Ascii | N::Text => {
            let end = if pg == oid::BPCHAR {
                v.iter().rposition(|b| *b != b' ').map_or(0, |i| i + 1)
            } else {
                v.len()
            };
            out.extend_from_slice(&v[..end]);
        }
        N::Uuid | N::TimeUuid => match pg {
            oid::UUID => out.extend_from_slice(v),
            _ => out.extend(uuid::Uuid::parse_str(text()?.trim()).ok()?.as_bytes()),
        },
        N::Inet => match pg {
            oid::INET | oid::CIDR => out.extend_from_slice(v.get(4..)?),
            _ => match text()?.trim().parse::<IpAddr>().ok()? {
                IpAddr::V4(ip) => out.extend(ip.octets()),
                IpAddr::V6(ip) => out.extend(ip.octets()),
            },
        },
        N::Blob => out.extend_from_slice(v),
        N::Timestamp => {
            let us = i64::from_be_bytes(v.try_into().ok()?);
            let ms = us.checked_add(PG_EPOCH_US)?.div_euclid(1000);
            out.extend(ms.to_be_bytes());
        }
        N::Date => {
            let days = i64::from(i32::from_be_bytes(v.try_into().ok()?)) + PG_EPOCH_DAYS;
            out.extend(((days + (1i64 << 31)) as u32).to_be_bytes());
        }
        N::Time => {
            let us = i64::from_be_bytes(v.try_into().ok()?);
            out.extend(us.checked_mul(1000)?.to_be_bytes());
        }
        N::Duration => return None,
    }
    Some(())
}

/// A binary numeric as (unscaled value, display scale): 12.340 → (12340, 3).
pub fn numeric_unscaled(v: &[u8]) -> Option<(BigInt, i32)> {
    let (text, scale) = numeric_text(v)?;
    let digits: String = text.chars().filter(|c| *c != '.').collect();
    Some((digits.parse().ok()?, scale))
}

/// A binary numeric as decimal text with exactly its display scale, and that scale.
pub fn numeric_text(v: &[u8]) -> Option<(String, i32)> {
    let be16 = |at: usize| Some(i16::from_be_bytes(v.get(at..at + 2)?.try_into().ok()?));
    let n = usize::try_from(be16(0)?).ok()?;
    let weight = i64::from(be16(2)?);
    let sign = be16(4)? as u16;
    let dscale = usize::try_from(be16(6)?).ok()?;
    if sign != 0 && sign != 0x4000 {
        return None;
    }
    let digit = |i: i64| -> i16 {
        usize::try_from(i)
            .ok()
            .filter(|i| *i < n)
            .and_then(|i| be16(8 + 2 * i))
            .unwrap_or(0)
    };
    let mut text = String::new();
    if sign == 0x4000 {
        text.push('-');
    }
    if weight < 0 {
        text.push('0');
    } else {
        for i in 0..=weight {
            if i == 0 {
                text.push_str(&digit(i).to_string());
            } else {
                text.push_str(&format!("{:04}", digit(i)));
            }
        }
    }
    if dscale > 0 {
        let mut frac = String::new();
        for j in 1..=(dscale.div_ceil(4) as i64) {
            frac.push_str(&format!("{:04}", digit(weight + j)));
        }
        frac.truncate(dscale);
        text.push('.');
        text.push_str(&frac);
    }
    Some((text, dscale as i32))
}

/// `-12.340` → (-12340, 3); `5E+3` → (5, -3).
fn parse_decimal(s: &str) -> Option<(BigInt, i32)> {
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], s[i + 1..].parse::<i64>().ok()?),
        None => (s, 0),
    };
    let (digits, fraction_len) = match mantissa.split_once('.') {
        Some((int, frac)) => (format!("{int}{frac}"), frac.len() as i64),
        None => (mantissa.to_string(), 0),
    };
    Some((
        digits.parse().ok()?,
        i32::try_from(fraction_len - exponent).ok()?,
    ))
}

/// Token → split, over the splits' token ranges (which do not overlap).
#[derive(Debug, Clone)]
pub struct SplitIndex {
    /// `(start, end, split)`, sorted by `end`.
    ranges: Vec<(i64, i64, usize)>,
}

impl SplitIndex {
    pub fn new(splits: &[Vec<TokenRange>]) -> Self {
        let mut ranges: Vec<_> = splits
            .iter()
            .enumerate()
            .flat_map(|(k, rs)| rs.iter().map(move |r| (r.start, r.end, k)))
            .collect();
        ranges.sort_by_key(|r| r.1);
        Self { ranges }
    }

    /// The split whose ranges hold `token`.
    pub fn split_of(&self, token: i64) -> Option<usize> {
        let i = self.ranges.partition_point(|r| r.1 < token);
        let (start, end, k) = *self.ranges.get(i)?;
        (start < token && token <= end).then_some(k)
    }
}

/// A target value as text, for the report's examples.
pub fn display(pg: u32, v: Option<&[u8]>) -> String {
    let Some(v) = v else {
        return "NULL".into();
    };
    let fixed = |n: usize| v.len() == n;
    let shown = match pg {
        oid::BOOL if fixed(1) => Some((v[0] != 0).to_string()),
        oid::INT2 | oid::INT4 | oid::INT8 => int_of(pg, v).map(|i| i.to_string()),
        oid::FLOAT4 if fixed(4) => v.try_into().ok().map(|b| f32::from_be_bytes(b).to_string()),
        oid::FLOAT8 if fixed(8) => v.try_into().ok().map(|b| f64::from_be_bytes(b).to_string()),
        oid::NUMERIC => numeric_text(v).map(|(t, _)| t),
        oid::TEXT | oid::VARCHAR | oid::NAME | oid::BPCHAR | oid::JSON => {
            std::str::from_utf8(v).ok().map(str::to_string)
        }
        oid::UUID => uuid::Uuid::from_slice(v).ok().map(|u| u.to_string()),
        oid::DATE if fixed(4) => v.try_into().ok().map(|b| {
            let days = i64::from(i32::from_be_bytes(b)) + PG_EPOCH_DAYS;
            let (y, m, d) = civil_from_days(days);
            format!("{y:04}-{m:02}-{d:02}")
        }),
        oid::TIMESTAMP | oid::TIMESTAMPTZ if fixed(8) => v.try_into().ok().map(|b| {
            let us = i64::from_be_bytes(b) + PG_EPOCH_US;
            let (days, rest) = (us.div_euclid(86_400_000_000), us.rem_euclid(86_400_000_000));
            let (y, m, d) = civil_from_days(days);
            let s = rest / 1_000_000;
            format!(
                "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:06}Z",
                s / 3600,
                s / 60 % 60,
                s % 60,
                rest % 1_000_000
            )
        }),
        oid::INET | oid::CIDR => match v.get(4..) {
            Some(a) if a.len() == 4 => <[u8; 4]>::try_from(a)
                .ok()
                .map(|b| IpAddr::from(b).to_string()),
            Some(a) if a.len() == 16 => <[u8; 16]>::try_from(a)
                .ok()
                .map(|b| IpAddr::from(b).to_string()),
            _ => None,
        },
        _ => None,
    };
    shown.unwrap_or_else(|| {
        let hex: String = v.iter().map(|b| format!("{b:02x}")).collect();
        format!("\\x{hex}")
    })
}

/// (year, month, day) of a day count since 1970-01-01 (proleptic Gregorian).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric(digits: &[i16], weight: i16, sign: u16, dscale: u16) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend((digits.len() as i16).to_be_bytes());
        v.extend(weight.to_be_bytes());
        v.extend(sign.to_be_bytes());
        v.extend(dscale.to_be_bytes());
        for d in digits {
            v.extend(d.to_be_bytes());
        }
        v
    }

    #[test]
    fn numerics_read_back_with_their_scale() {
        assert_eq!(
            numeric_text(&numeric(&[12, 3400], 0, 0x4000, 3)),
            Some(("-12.340".into(), 3))
        );
        assert_eq!(
            numeric_text(&numeric(&[1], -2, 0, 8)),
            Some(("0.00000001".into(), 8))
        );
        assert_eq!(
            numeric_text(&numeric(&[1, 0], 1, 0, 0)),
            Some(("10000".into(), 0))
        );
        assert_eq!(numeric_text(&numeric(&[], 0, 0, 0)), Some(("0".into(), 0)));
    }

    #[test]
    fn tokens_match_cassandra_for_ints_and_texts() {
        // token(1) for an int key and token('test') for a text key, from Cassandra.
        let one = PartitionKey {
            columns: vec![KeyColumn {
                source: "k".into(),
                output: 0,
                cql: NativeType::Int,
                pg: oid::INT8,
            }],
        };
        let mut scratch = Default::default();
        assert_eq!(
            one.token(&[Some(&1i64.to_be_bytes())], &mut scratch),
            Some(-4069959284402364209)
        );
        let text = PartitionKey {
            columns: vec![KeyColumn {
                source: "k".into(),
                output: 0,
                cql: NativeType::Text,
                pg: oid::TEXT,
            }],
        };
        assert_eq!(
            text.token(&[Some(b"test")], &mut scratch),
            Some(-6017608668500074083)
        );
        assert_eq!(text.token(&[None], &mut scratch), None);
    }

    #[test]
    fn tokens_find_their_split() {
        let r = |start, end| TokenRange { start, end };
        let index = SplitIndex::new(&[vec![r(i64::MIN, -10), r(100, i64::MAX)], vec![r(-10, 100)]]);
        assert_eq!(index.split_of(-10), Some(0));
        assert_eq!(index.split_of(-9), Some(1));
        assert_eq!(index.split_of(100), Some(1));
        assert_eq!(index.split_of(101), Some(0));
        assert_eq!(index.split_of(i64::MAX), Some(0));
        assert_eq!(index.split_of(i64::MIN), None);
    }

    #[test]
    fn values_display_readably() {
        assert_eq!(display(oid::INT4, Some(&7i32.to_be_bytes())), "7");
        assert_eq!(display(oid::DATE, Some(&0i32.to_be_bytes())), "2000-01-01");
        assert_eq!(
            display(oid::TIMESTAMPTZ, Some(&1_500_000i64.to_be_bytes())),
            "2000-01-01T00:00:01.500000Z"
        );
        assert_eq!(display(oid::BYTEA, Some(&[0xab])), "\\xab");
        assert_eq!(display(oid::TEXT, None), "NULL");
    }
}
