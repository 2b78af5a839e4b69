//! What two rows being "equal" means, and the order-independent digest of a split's rows.
//!
//! Both sides are compared in the target's binary COPY representation: a source row is what
//! [`ferry_connectors::yugabyte::CopyEncoder`] sends, a target row is what
//! `COPY (SELECT …) TO STDOUT (FORMAT binary)` returns. The two are byte-identical for most types;
//! where PostgreSQL stores an equal value in another form, both sides go through [`Canon`] first:
//!
//! ```text
//! numeric  digits stripped of leading/trailing zero groups, display scale dropped (1.50 = 1.5)
//! jsonb    parsed and written again with sorted keys (the server reorders keys, drops duplicates)
//! bpchar   trailing blanks dropped (the server pads to the declared length)
//! array    empty arrays as 0 dimensions, the has-nulls flag recomputed, elements canonical
//! record   attribute type OIDs zeroed, attributes canonical
//! ```
//!
//! ```text
//! row hash    = XXH3-128(canonical tuple)          tuple = nfields:i16 (len:i32 bytes | -1)*
//! split digest = (rows, Σ row hash mod 2^128, ⊕ row hash)
//! ```

use std::ops::Range;

use ferry_connectors::yugabyte::PgType;
use ferry_connectors::yugabyte::types::{PgShape, oid};
use twox_hash::{XxHash3_64, XxHash3_128};

/// The order-independent digest of a set of rows: equal multisets of rows give equal digests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Digest {
    pub rows: u64,
    sum: u128,
    xor: u128,
}

impl Digest {
    pub fn add(&mut self, row_hash: u128) {
        self.rows += 1;
        self.sum = self.sum.wrapping_add(row_hash);
        self.xor ^= row_hash;
    }

    pub fn merge(&mut self, other: &Digest) {
        self.rows += other.rows;
        self.sum = self.sum.wrapping_add(other.sum);
        self.xor ^= other.xor;
    }

    /// The digest as 32 hex digits (sum then xor, folded), for reports.
    pub fn hex(&self) -> String {
        format!("{:032x}", self.sum ^ self.xor.rotate_left(64))
    }
}

/// How a value of one target type is made canonical before it is hashed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Canon {
    /// The bytes as they are.
    Raw,
    Numeric,
    Jsonb,
    Bpchar,
    Array(Box<Canon>),
    Composite(Vec<Canon>),
}

impl Canon {
    pub fn for_type(ty: &PgType) -> Self {
        match &ty.shape {
            PgShape::Array(elem) => Canon::Array(Box::new(Canon::for_type(elem))),
            PgShape::Composite(attrs) => {
                Canon::Composite(attrs.iter().map(|(_, t)| Canon::for_type(t)).collect())
            }
            // pgvector sends a vector as Ferry encodes it: dimensions, zero, float4s.
            PgShape::Vector => Canon::Raw,
            PgShape::Scalar => match ty.base_oid {
                oid::NUMERIC => Canon::Numeric,
                oid::JSONB => Canon::Jsonb,
                oid::BPCHAR => Canon::Bpchar,
                _ => Canon::Raw,
            },
        }
    }

    pub fn is_raw(&self) -> bool {
        *self == Canon::Raw
    }

    /// Appends the canonical form of `value` (a binary COPY field, without its length) to `out`.
    /// A value that does not parse as its type is appended as it is.
    pub fn write(&self, value: &[u8], out: &mut Vec<u8>) {
        let start = out.len();
        let ok = match self {
            Canon::Raw => {
                out.extend_from_slice(value);
                true
            }
            Canon::Numeric => numeric(value, out).is_some(),
            Canon::Jsonb => jsonb(value, out).is_some(),
            Canon::Bpchar => {
                let end = value.iter().rposition(|b| *b != b' ').map_or(0, |i| i + 1);
                out.extend_from_slice(&value[..end]);
                true
            }
            Canon::Array(elem) => array(elem, value, out).is_some(),
            Canon::Composite(attrs) => composite(attrs, value, out).is_some(),
        };
        if !ok {
            out.truncate(start);
            out.extend_from_slice(value);
        }
    }
}

/// Appends `value` canonical, preceded by its canonical length (or -1 for NULL).
fn write_field(canon: &Canon, value: Option<&[u8]>, out: &mut Vec<u8>) {
    match value {
        None => out.extend_from_slice(&(-1i32).to_be_bytes()),
        Some(v) if canon.is_raw() => {
            out.extend_from_slice(&(v.len() as i32).to_be_bytes());
            out.extend_from_slice(v);
        }
        Some(v) => {
            let at = out.len();
            out.extend_from_slice(&[0; 4]);
            canon.write(v, out);
            let len = (out.len() - at - 4) as i32;
            out[at..at + 4].copy_from_slice(&len.to_be_bytes());
        }
    }
}

fn be_i16(b: &[u8], at: usize) -> Option<i16> {
    Some(i16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn be_i32(b: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// numeric: `ndigits:i16 weight:i16 sign:u16 dscale:u16 digit:i16*` (base-10000 digits).
fn numeric(v: &[u8], out: &mut Vec<u8>) -> Option<()> {
    let n = usize::try_from(be_i16(v, 0)?).ok()?;
    let mut weight = be_i16(v, 2)?;
    let sign = be_i16(v, 4)? as u16;
    if v.len() != 8 + 2 * n {
        return None;
    }
    if sign != 0 && sign != 0x4000 {
        // NaN, +Infinity, -Infinity.
        out.extend_from_slice(&[0, 0, 0, 0]);
        out.extend_from_slice(&sign.to_be_bytes());
        out.extend_from_slice(&[0, 0]);
        return Some(());
    }
    let digits: Vec<i16> = (0..n)
        .map(|i| be_i16(v, 8 + 2 * i))
        .collect::<Option<_>>()?;
    let mut d = &digits[..];
    while let Some((&0, rest)) = d.split_first() {
        d = rest;
        weight -= 1;
    }
    while let Some((&0, rest)) = d.split_last() {
        d = rest;
    }
    if d.is_empty() {
        out.extend_from_slice(&[0; 8]);
        return Some(());
    }
    out.extend_from_slice(&(d.len() as i16).to_be_bytes());
    out.extend_from_slice(&weight.to_be_bytes());
    out.extend_from_slice(&sign.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    for digit in d {
        out.extend_from_slice(&digit.to_be_bytes());
    }
    Some(())
}

/// jsonb: a version byte (1), then the document as text.
fn jsonb(v: &[u8], out: &mut Vec<u8>) -> Option<()> {
    let (&1, text) = v.split_first()? else {
        return None;
    };
    let value: serde_json::Value = serde_json::from_slice(text).ok()?;
    out.push(1);
    write_json(&value, out);
    Some(())
}

/// JSON with object keys sorted and numbers in one form, whatever serde_json's features are.
fn write_json(value: &serde_json::Value, out: &mut Vec<u8>) {
    use serde_json::Value;
    match value {
        Value::Null | Value::Bool(_) | Value::String(_) => {
            out.extend_from_slice(value.to_string().as_bytes());
        }
        Value::Number(n) => {
            let text = if let Some(i) = n.as_i64() {
                i.to_string()
            } else if let Some(u) = n.as_u64() {
                u.to_string()
            } else {
                n.as_f64()
                    .map_or_else(|| n.to_string(), |f| format!("{f:?}"))
            };
            out.extend_from_slice(text.as_bytes());
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json(item, out);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(Value::String(k.clone()).to_string().as_bytes());
                out.push(b':');
                write_json(v, out);
            }
            out.push(b'}');
        }
    }
}

/// array: `ndim:i32 has_nulls:i32 elem_oid:u32 (len:i32 lbound:i32)^ndim (len:i32 bytes | -1)*`.
fn array(elem: &Canon, v: &[u8], out: &mut Vec<u8>) -> Option<()> {
    let ndim = usize::try_from(be_i32(v, 0)?).ok()?;
    let mut at = 12;
    let mut total = if ndim == 0 { 0usize } else { 1 };
    let mut dims = Vec::with_capacity(ndim);
    for _ in 0..ndim {
        let len = usize::try_from(be_i32(v, at)?).ok()?;
        let lbound = be_i32(v, at + 4)?;
        total = total.checked_mul(len)?;
        dims.push((len, lbound));
        at += 8;
    }
    if total == 0 {
        out.extend_from_slice(&[0; 12]);
        return (at == v.len()).then_some(());
    }
    let mut elems = Vec::with_capacity(total);
    for _ in 0..total {
        let len = be_i32(v, at)?;
        at += 4;
        if len < 0 {
            elems.push(None);
        } else {
            let len = len as usize;
            elems.push(Some(v.get(at..at + len)?));
            at += len;
        }
    }
    if at != v.len() {
        return None;
    }
    out.extend_from_slice(&(ndim as i32).to_be_bytes());
    let has_nulls = i32::from(elems.iter().any(Option::is_none));
    out.extend_from_slice(&has_nulls.to_be_bytes());
    out.extend_from_slice(&[0; 4]);
    for (len, lbound) in dims {
        out.extend_from_slice(&(len as i32).to_be_bytes());
        out.extend_from_slice(&lbound.to_be_bytes());
    }
    for e in elems {
        write_field(elem, e, out);
    }
    Some(())
}

/// record: `natts:i32 (oid:u32 len:i32 bytes | oid:u32 -1)*`.
fn composite(attrs: &[Canon], v: &[u8], out: &mut Vec<u8>) -> Option<()> {
    let natts = usize::try_from(be_i32(v, 0)?).ok()?;
    let mut at = 4;
    out.extend_from_slice(&(natts as i32).to_be_bytes());
    for i in 0..natts {
        let len = be_i32(v, at + 4)?;
        at += 8;
        out.extend_from_slice(&[0; 4]);
        let canon = attrs.get(i).unwrap_or(&Canon::Raw);
        if len < 0 {
            write_field(canon, None, out);
        } else {
            let len = len as usize;
            write_field(canon, Some(v.get(at..at + len)?), out);
            at += len;
        }
    }
    (at == v.len()).then_some(())
}

/// One binary COPY tuple: the whole row's bytes and each field's range in them (`None` = NULL).
#[derive(Debug, Default)]
pub struct Tuple {
    pub fields: Vec<Option<Range<usize>>>,
}

impl Tuple {
    /// Reads the tuple at the start of `buf`; its length in bytes, or `None` when `buf` does not
    /// hold a whole tuple. `Err` on the trailer (-1) or a malformed tuple.
    pub fn read(&mut self, buf: &[u8]) -> Result<Option<usize>, String> {
        let Some(n) = be_i16(buf, 0) else {
            return Ok(None);
        };
        if n < 0 {
            return Err("trailer".into());
        }
        self.fields.clear();
        let mut at = 2;
        for _ in 0..n {
            let Some(len) = be_i32(buf, at) else {
                return Ok(None);
            };
            at += 4;
            if len < 0 {
                self.fields.push(None);
            } else {
                let end = at + len as usize;
                if end > buf.len() {
                    return Ok(None);
                }
                self.fields.push(Some(at..end));
                at = end;
            }
        }
        Ok(Some(at))
    }

    pub fn field<'a>(&self, row: &'a [u8], i: usize) -> Option<&'a [u8]> {
        self.fields.get(i)?.as_ref().map(|r| &row[r.clone()])
    }
}

/// How the rows of one table are hashed: a [`Canon`] per output column.
#[derive(Debug, Clone)]
pub struct RowShape {
    pub canon: Vec<Canon>,
    all_raw: bool,
}

impl RowShape {
    pub fn new(types: &[&PgType]) -> Self {
        let canon: Vec<Canon> = types.iter().map(|t| Canon::for_type(t)).collect();
        let all_raw = canon.iter().all(Canon::is_raw);
        Self { canon, all_raw }
    }

    /// The 128-bit hash of a row (its tuple bytes `row`, fields located by `tuple`).
    pub fn row_hash(&self, row: &[u8], tuple: &Tuple, scratch: &mut Vec<u8>) -> u128 {
        if self.all_raw {
            return XxHash3_128::oneshot(row);
        }
        scratch.clear();
        scratch.extend_from_slice(&row[..2]);
        for (i, canon) in self.canon.iter().enumerate() {
            write_field(canon, tuple.field(row, i), scratch);
        }
        XxHash3_128::oneshot(scratch)
    }

    /// Each column's 64-bit hash, to name the columns that differ.
    pub fn column_hashes(&self, row: &[u8], tuple: &Tuple, scratch: &mut Vec<u8>) -> Vec<u64> {
        self.canon
            .iter()
            .enumerate()
            .map(|(i, canon)| match tuple.field(row, i) {
                None => u64::MAX ^ i as u64,
                Some(v) => {
                    scratch.clear();
                    canon.write(v, scratch);
                    XxHash3_64::oneshot_with_seed(i as u64, scratch)
                }
            })
            .collect()
    }

    /// The canonical bytes of columns `columns`, length-prefixed: a row's identity.
    pub fn key(&self, row: &[u8], tuple: &Tuple, columns: &[usize]) -> Vec<u8> {
        let mut out = Vec::with_capacity(32);
        for &i in columns {
            write_field(&self.canon[i], tuple.field(row, i), &mut out);
        }
        out
    }
}

/// Splits a canonical key made by [`RowShape::key`] back into its values.
pub fn key_values(key: &[u8]) -> Vec<Option<&[u8]>> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(len) = be_i32(key, at) {
        at += 4;
        if len < 0 {
            out.push(None);
        } else {
            let end = (at + len as usize).min(key.len());
            out.push(Some(&key[at..end]));
            at = end;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric_bytes(ndigits: &[i16], weight: i16, sign: u16, dscale: u16) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend((ndigits.len() as i16).to_be_bytes());
        v.extend(weight.to_be_bytes());
        v.extend(sign.to_be_bytes());
        v.extend(dscale.to_be_bytes());
        for d in ndigits {
            v.extend(d.to_be_bytes());
        }
        v
    }

    fn canon(c: &Canon, v: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        c.write(v, &mut out);
        out
    }

    #[test]
    fn numeric_scale_and_zero_groups_do_not_matter() {
        // 1.5 (dscale 1) and 1.50 with a trailing zero group and a leading one.
        let a = numeric_bytes(&[1, 5000], 0, 0, 1);
        let b = numeric_bytes(&[0, 1, 5000, 0], 1, 0, 2);
        assert_eq!(canon(&Canon::Numeric, &a), canon(&Canon::Numeric, &b));
        let c = numeric_bytes(&[1, 5001], 0, 0, 4);
        assert_ne!(canon(&Canon::Numeric, &a), canon(&Canon::Numeric, &c));
        // Zero, whatever its sign and scale.
        let z1 = numeric_bytes(&[], 0, 0, 3);
        let z2 = numeric_bytes(&[0], 2, 0x4000, 0);
        assert_eq!(canon(&Canon::Numeric, &z1), canon(&Canon::Numeric, &z2));
    }

    #[test]
    fn jsonb_key_order_and_spacing_do_not_matter() {
        let a = b"\x01{\"b\": [1, 2.5], \"a\": \"x\"}";
        let b = b"\x01{\"a\":\"x\",\"b\":[1,2.5]}";
        assert_eq!(canon(&Canon::Jsonb, a), canon(&Canon::Jsonb, b));
        assert_ne!(
            canon(&Canon::Jsonb, a),
            canon(&Canon::Jsonb, b"\x01{\"a\":\"y\",\"b\":[1,2.5]}")
        );
    }

    #[test]
    fn empty_arrays_and_null_flags_are_canonical() {
        let int4 = |v: i32| v.to_be_bytes().to_vec();
        // One dimension of length 0, against PostgreSQL's zero dimensions.
        let mut empty1 = [int4(1), int4(1), int4(23), int4(0), int4(1)].concat();
        let empty0 = [int4(0), int4(0), int4(23)].concat();
        let c = Canon::Array(Box::new(Canon::Raw));
        assert_eq!(canon(&c, &empty1), canon(&c, &empty0));
        // [7] with has_nulls set but no NULL.
        empty1 = [
            int4(1),
            int4(1),
            int4(23),
            int4(1),
            int4(1),
            int4(4),
            int4(7),
        ]
        .concat();
        let clean = [
            int4(1),
            int4(0),
            int4(23),
            int4(1),
            int4(1),
            int4(4),
            int4(7),
        ]
        .concat();
        assert_eq!(canon(&c, &empty1), canon(&c, &clean));
    }

    #[test]
    fn digests_ignore_order_and_see_duplicates() {
        let (mut a, mut b) = (Digest::default(), Digest::default());
        for h in [1u128, 2, 3] {
            a.add(h);
        }
        for h in [3u128, 1, 2] {
            b.add(h);
        }
        assert_eq!(a, b);
        b.add(3);
        assert_ne!(a, b);
    }

    #[test]
    fn tuples_are_read_whole_or_not_at_all() {
        let row = [0u8, 2, 0, 0, 0, 1, 7, 0xff, 0xff, 0xff, 0xff];
        let mut t = Tuple::default();
        assert_eq!(t.read(&row), Ok(Some(row.len())));
        assert_eq!(t.field(&row, 0), Some(&[7u8][..]));
        assert_eq!(t.field(&row, 1), None);
        assert_eq!(t.read(&row[..8]), Ok(None));
        assert!(t.read(&[0xff, 0xff]).is_err());
    }
}
