//! Numbers: integers and floats into int2/int4/int8/float4/float8, and anything decimal into
//! `numeric`.
//!
//! ```text
//! numeric = ndigits:i16 weight:i16 sign:u16 dscale:u16 digit:i16[ndigits]
//! value   = Σ digit[k] · 10000^(weight − k)      (digits base 10000, no leading/trailing zero digit)
//! sign    = 0x0000 + | 0x4000 − | 0xC000 NaN | 0xD000 +Infinity | 0xF000 −Infinity (PostgreSQL ≥ 14)
//! dscale  = decimal digits shown after the point
//! ```

use std::io::Write as _;

use arrow::datatypes::i256;

const POS: u16 = 0x0000;
const NEG: u16 = 0x4000;
const NAN: u16 = 0xC000;
const PINF: u16 = 0xD000;
const NINF: u16 = 0xF000;
/// PostgreSQL's limits: 131072 digits before the point (weight < 32768), 16383 after.
const MAX_WEIGHT: i64 = 32_767;
const MAX_DSCALE: i64 = 16_383;

/// What the target `numeric` column allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NumericTarget {
    /// `numeric(precision, scale)`, or `None` for plain `numeric`.
    pub typmod: Option<(i32, i32)>,
    /// Whether the server has numeric ±Infinity (PostgreSQL 14 and later).
    pub infinity: bool,
}

impl NumericTarget {
    pub fn new(typmod: i32, server_version: u32) -> Self {
        // PostgreSQL 15 packs a signed 11-bit scale; see NUMERIC_TYPMOD_SCALE.
        let typmod = (typmod >= 4).then(|| {
            let t = typmod - 4;
            ((t >> 16) & 0xffff, ((t & 0x7ff) ^ 1024) - 1024)
        });
        Self {
            typmod,
            infinity: server_version >= 140_000,
        }
    }
}

/// An integer of any Arrow width.
pub trait Int: Copy {
    fn wide(self) -> i128;
}

macro_rules! int_impl {
    ($($t:ty),*) => { $(impl Int for $t { #[inline] fn wide(self) -> i128 { self as i128 } })* };
}
int_impl!(i8, i16, i32, i64, u8, u16, u32, u64);

/// Which integer or float type a number goes into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumTo {
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
}

impl NumTo {
    pub fn width(self) -> usize {
        match self {
            NumTo::Int2 => 2,
            NumTo::Int4 | NumTo::Float4 => 4,
            NumTo::Int8 | NumTo::Float8 => 8,
        }
    }
}

fn out_of_range(v: impl std::fmt::Display, to: &str) -> String {
    format!("{v} is out of range for {to}")
}

/// An integer into `to`: range-checked, and exact when the target is a float.
#[inline]
pub fn int_bytes(v: i128, to: NumTo, out: &mut [u8; 8]) -> Result<usize, String> {
    match to {
        NumTo::Int2 => {
            let x = i16::try_from(v).map_err(|_| out_of_range(v, "smallint"))?;
            out[..2].copy_from_slice(&x.to_be_bytes());
            Ok(2)
        }
        NumTo::Int4 => {
            let x = i32::try_from(v).map_err(|_| out_of_range(v, "integer"))?;
            out[..4].copy_from_slice(&x.to_be_bytes());
            Ok(4)
        }
        NumTo::Int8 => {
            let x = i64::try_from(v).map_err(|_| out_of_range(v, "bigint"))?;
            out.copy_from_slice(&x.to_be_bytes());
            Ok(8)
        }
        NumTo::Float4 => {
            if v.unsigned_abs() > 1 << 24 && (v as f32) as i128 != v {
                return Err(format!("{v} is not exactly representable as real"));
            }
            out[..4].copy_from_slice(&(v as f32).to_be_bytes());
            Ok(4)
        }
        NumTo::Float8 => {
            if v.unsigned_abs() > 1 << 53 && (v as f64) as i128 != v {
                return Err(format!(
                    "{v} is not exactly representable as double precision"
                ));
            }
            out.copy_from_slice(&(v as f64).to_be_bytes());
            Ok(8)
        }
    }
}

/// A float into float4 (exact only) or float8.
#[inline]
pub fn float_bytes(v: f64, to: NumTo, out: &mut [u8; 8]) -> Result<usize, String> {
    match to {
        NumTo::Float4 => {
            let x = v as f32;
            if f64::from(x) != v && !v.is_nan() {
                return Err(format!("{v} is not exactly representable as real"));
            }
            out[..4].copy_from_slice(&x.to_be_bytes());
            Ok(4)
        }
        _ => {
            out.copy_from_slice(&v.to_be_bytes());
            Ok(8)
        }
    }
}

fn header(out: &mut Vec<u8>, ndigits: i16, weight: i16, sign: u16, dscale: u16) {
    out.extend_from_slice(&ndigits.to_be_bytes());
    out.extend_from_slice(&weight.to_be_bytes());
    out.extend_from_slice(&sign.to_be_bytes());
    out.extend_from_slice(&dscale.to_be_bytes());
}

/// NaN, or ±Infinity where the target has it.
pub fn put_special(
    out: &mut Vec<u8>,
    nan: bool,
    negative: bool,
    t: NumericTarget,
) -> Result<(), String> {
    if nan {
        header(out, 0, 0, NAN, 0);
        return Ok(());
    }
    if !t.infinity {
        return Err("numeric Infinity needs PostgreSQL 14 or later".into());
    }
    if t.typmod.is_some() {
        return Err("a numeric(p, s) column cannot hold Infinity".into());
    }
    header(out, 0, 0, if negative { NINF } else { PINF }, 0);
    Ok(())
}

/// Appends the numeric whose decimal digits are `int` then `frac` (ASCII), times 10^`exp`.
///
/// The digit at index p of `int ++ frac` has decimal exponent `e = int.len() + exp − 1 − p`;
/// base-10000 digit k holds the exponents 4k..4k+3, so the weight is ⌊e(first non-zero) / 4⌋.
pub fn put_decimal(
    out: &mut Vec<u8>,
    negative: bool,
    int: &[u8],
    frac: &[u8],
    exp: i64,
    t: NumericTarget,
) -> Result<(), String> {
    let n = int.len() + frac.len();
    let digit = |p: usize| -> u8 {
        if p < int.len() {
            int[p] - b'0'
        } else {
            frac[p - int.len()] - b'0'
        }
    };
    let dscale = (frac.len() as i64 - exp).max(0);
    if dscale > MAX_DSCALE {
        return Err(format!(
            "more than {MAX_DSCALE} digits after the decimal point"
        ));
    }
    let point = int.len() as i64 + exp;
    let Some(first) = (0..n).find(|&p| digit(p) != 0) else {
        if let Some((_, scale)) = t.typmod {
            header(out, 0, 0, POS, scale.max(0) as u16);
        } else {
            header(out, 0, 0, POS, dscale as u16);
        }
        return Ok(());
    };
    let last = (first..n).rfind(|&p| digit(p) != 0).unwrap_or(first);
    let e_first = point - 1 - first as i64;
    let e_last = point - 1 - last as i64;
    let weight = e_first.div_euclid(4);
    let last_group = e_last.div_euclid(4);
    if weight > MAX_WEIGHT {
        return Err("numeric value out of range (more than 131072 digits before the point)".into());
    }
    if let Some((precision, scale)) = t.typmod {
        let int_digits = (e_first + 1).max(0);
        if int_digits > i64::from(precision - scale) {
            return Err(format!(
                "numeric field overflow: needs {int_digits} digit(s) before the point, numeric({precision}, {scale}) has {}",
                precision - scale
            ));
        }
        if e_last < -i64::from(scale) {
            return Err(format!(
                "would be rounded to numeric({precision}, {scale}) (digits beyond scale {scale})"
            ));
        }
    }
    let ndigits = weight - last_group + 1;
    header(
        out,
        ndigits as i16,
        weight as i16,
        if negative { NEG } else { POS },
        dscale as u16,
    );
    let mut group = weight;
    let mut acc: i16 = 0;
    for p in first..=last {
        let e = point - 1 - p as i64;
        let g = e.div_euclid(4);
        if g != group {
            out.extend_from_slice(&acc.to_be_bytes());
            acc = 0;
            group = g;
        }
        acc += i16::from(digit(p)) * [1, 10, 100, 1000][e.rem_euclid(4) as usize];
    }
    out.extend_from_slice(&acc.to_be_bytes());
    Ok(())
}

/// Parses PostgreSQL's numeric input syntax (`-12.5e3`, `.5`, `NaN`, `Infinity`) and appends it.
pub fn put_decimal_str(out: &mut Vec<u8>, s: &str, t: NumericTarget) -> Result<(), String> {
    let bad = || format!("{s:?} is not a number");
    let s = s.trim();
    let (negative, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if body.eq_ignore_ascii_case("nan") && body.len() == s.len() {
        return put_special(out, true, false, t);
    }
    if body.eq_ignore_ascii_case("infinity") || body.eq_ignore_ascii_case("inf") {
        return put_special(out, false, negative, t);
    }
    let b = body.as_bytes();
    let int_end = b
        .iter()
        .position(|c| !c.is_ascii_digit())
        .unwrap_or(b.len());
    let int = &b[..int_end];
    let mut rest = &b[int_end..];
    let mut frac: &[u8] = &[];
    if let Some((b'.', after)) = rest.split_first() {
        let end = after
            .iter()
            .position(|c| !c.is_ascii_digit())
            .unwrap_or(after.len());
        frac = &after[..end];
        rest = &after[end..];
    }
    if int.is_empty() && frac.is_empty() {
        return Err(bad());
    }
    let mut exp = 0i64;
    if let Some((b'e' | b'E', after)) = rest.split_first() {
        let text = std::str::from_utf8(after).map_err(|_| bad())?;
        if text.is_empty() || text.len() > 12 {
            return Err(bad());
        }
        exp = text.parse().map_err(|_| bad())?;
        rest = &[];
    }
    if !rest.is_empty() {
        return Err(bad());
    }
    put_decimal(out, negative, int, frac, exp, t)
}

/// Writes the decimal digits of `v` into the end of `buf`, returning where they start.
fn digits_u128(mut v: u128, buf: &mut [u8; 80]) -> usize {
    let mut at = buf.len();
    if let Ok(mut small) = u64::try_from(v) {
        // 64-bit division is several times faster than 128-bit.
        loop {
            at -= 1;
            buf[at] = b'0' + (small % 10) as u8;
            small /= 10;
            if small == 0 {
                return at;
            }
        }
    }
    loop {
        at -= 1;
        buf[at] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            return at;
        }
    }
}

/// An integer into numeric.
pub fn put_int(out: &mut Vec<u8>, v: i128, t: NumericTarget) -> Result<(), String> {
    let mut buf = [0u8; 80];
    let at = digits_u128(v.unsigned_abs(), &mut buf);
    put_decimal(out, v < 0, &buf[at..], &[], 0, t)
}

/// The base-10000 digits of a Decimal128 whose point, once |v| is scaled by 10^pad, falls
/// between digits: the fast path for decimals into an unconstrained numeric.
struct Groups {
    /// Least significant first.
    digits: [i16; 11],
    /// Digits in use, and the first non-zero one from the bottom.
    n: usize,
    low: usize,
    weight: i16,
}

impl Groups {
    // Always inlined: returned through memory, the struct costs a store-forwarding stall.
    #[inline(always)]
    fn of(v: i128, scale: i8) -> Option<Self> {
        let pad = (4 - u32::from(scale as u8) % 4) % 4;
        let mut digits = [0i16; 11];
        let mut n = 0;
        // 64-bit arithmetic is several times faster than 128-bit: most decimals fit.
        let small = u64::try_from(v.unsigned_abs())
            .ok()
            .and_then(|x| x.checked_mul([1, 10, 100, 1000][pad as usize]));
        let u = match small {
            Some(x) => u128::from(x),
            None => v.unsigned_abs().checked_mul(10u128.pow(pad))?,
        };
        match small.ok_or(()) {
            Ok(mut x) => {
                while x > 0 {
                    digits[n] = (x % 10_000) as i16;
                    x /= 10_000;
                    n += 1;
                }
            }
            Err(_) => {
                let mut x = u;
                while x > 0 {
                    digits[n] = (x % 10_000) as i16;
                    x /= 10_000;
                    n += 1;
                }
            }
        }
        let low = digits[..n].iter().position(|&g| g != 0).unwrap_or(0);
        let weight = n as i16 - 1 - ((i16::from(scale) + pad as i16) / 4);
        Some(Self {
            digits,
            n,
            low,
            weight,
        })
    }

    #[inline]
    fn width(&self) -> usize {
        8 + 2 * (self.n - self.low)
    }

    #[inline(always)]
    fn write(&self, out: &mut [u8], negative: bool, scale: i8) {
        let dscale = u16::from(scale as u8);
        let (ndigits, weight, sign) = match self.n {
            0 => (0i16, 0i16, POS),
            _ => (
                (self.n - self.low) as i16,
                self.weight,
                if negative { NEG } else { POS },
            ),
        };
        out[0..2].copy_from_slice(&ndigits.to_be_bytes());
        out[2..4].copy_from_slice(&weight.to_be_bytes());
        out[4..6].copy_from_slice(&sign.to_be_bytes());
        out[6..8].copy_from_slice(&dscale.to_be_bytes());
        for (k, g) in self.digits[self.low..self.n].iter().rev().enumerate() {
            out[8 + 2 * k..10 + 2 * k].copy_from_slice(&g.to_be_bytes());
        }
    }
}

/// The encoded width of a Decimal128 (scale 0..=36) as an unconstrained numeric.
#[inline]
pub fn decimal128_width(v: i128, scale: i8) -> usize {
    // Most values fit 64 bits: count the base-10000 digits without producing them.
    let pad = (4 - u32::from(scale as u8) % 4) % 4;
    if let Some(mut x) = u64::try_from(v.unsigned_abs())
        .ok()
        .and_then(|x| x.checked_mul([1, 10, 100, 1000][pad as usize]))
    {
        if x == 0 {
            return 8;
        }
        let n = x.ilog10() as usize / 4 + 1;
        let mut low = 0;
        while x % 10_000 == 0 {
            x /= 10_000;
            low += 1;
        }
        return 8 + 2 * (n - low);
    }
    match Groups::of(v, scale) {
        Some(d) => d.width(),
        None => {
            let mut out = Vec::new();
            let _ = put_decimal128(&mut out, v, scale, UNCONSTRAINED);
            out.len()
        }
    }
}

/// Writes a Decimal128 (scale 0..=36) as an unconstrained numeric into `out`, which holds
/// [`decimal128_width`] bytes; returns that width.
#[inline(always)]
pub fn write_decimal128(out: &mut [u8], v: i128, scale: i8, t: NumericTarget) -> usize {
    match Groups::of(v, scale) {
        Some(d) => {
            d.write(out, v < 0, scale);
            d.width()
        }
        None => {
            let mut tmp = Vec::new();
            let _ = put_decimal128(&mut tmp, v, scale, t);
            out[..tmp.len()].copy_from_slice(&tmp);
            tmp.len()
        }
    }
}

const UNCONSTRAINED: NumericTarget = NumericTarget {
    typmod: None,
    infinity: true,
};

/// A Decimal128 `v` × 10^−`scale` into numeric.
pub fn put_decimal128(
    out: &mut Vec<u8>,
    v: i128,
    scale: i8,
    t: NumericTarget,
) -> Result<(), String> {
    if t.typmod.is_none()
        && (0..=36).contains(&scale)
        && let Some(d) = Groups::of(v, scale)
    {
        let at = out.len();
        out.resize(at + d.width(), 0);
        d.write(&mut out[at..], v < 0, scale);
        return Ok(());
    }
    let mut buf = [0u8; 80];
    let at = digits_u128(v.unsigned_abs(), &mut buf);
    put_scaled(out, v < 0, &buf[at..], scale, t)
}

/// A Decimal256 `v` × 10^−`scale` into numeric.
pub fn put_decimal256(
    out: &mut Vec<u8>,
    v: i256,
    scale: i8,
    t: NumericTarget,
) -> Result<(), String> {
    let negative = v.is_negative();
    // |v| in chunks of 18 digits, least significant first (Decimal256 holds ≤ 76 digits).
    let ten18 = i256::from_i128(1_000_000_000_000_000_000);
    let mut rest = v;
    let mut chunks = [0u64; 5];
    let mut count = 0;
    while rest != i256::ZERO && count < chunks.len() {
        let r = rest
            .wrapping_rem(ten18)
            .to_i128()
            .unwrap_or(0)
            .unsigned_abs();
        chunks[count] = r as u64;
        rest = rest.wrapping_div(ten18);
        count += 1;
    }
    let mut buf = [b'0'; 96];
    for (k, chunk) in chunks.iter().enumerate().take(count) {
        let mut c = *chunk;
        for d in 0..18 {
            buf[96 - 1 - (k * 18 + d)] = b'0' + (c % 10) as u8;
            c /= 10;
        }
    }
    let start = 96 - (count * 18).max(1);
    put_scaled(out, negative, &buf[start..], scale, t)
}

fn put_scaled(
    out: &mut Vec<u8>,
    negative: bool,
    digits: &[u8],
    scale: i8,
    t: NumericTarget,
) -> Result<(), String> {
    let scale = i64::from(scale);
    if scale <= 0 {
        return put_decimal(out, negative, digits, &[], -scale, t);
    }
    // Split at the point; a scale longer than the digits means leading fraction zeros, which
    // a negative exponent expresses without padding.
    let split = digits.len().saturating_sub(scale as usize);
    let (int, frac) = digits.split_at(split);
    put_decimal(out, negative, int, frac, -(scale - frac.len() as i64), t)
}

/// A float into numeric: its shortest round-trip decimal form (what `{:e}` prints).
pub fn put_float(out: &mut Vec<u8>, v: f64, single: bool, t: NumericTarget) -> Result<(), String> {
    if !v.is_finite() {
        return put_special(out, v.is_nan(), v < 0.0, t);
    }
    let mut buf = [0u8; 40];
    let mut cursor = std::io::Cursor::new(&mut buf[..]);
    let written = if single {
        write!(cursor, "{:e}", v as f32)
    } else {
        write!(cursor, "{v:e}")
    };
    written.map_err(|_| "float formatting overflowed".to_string())?;
    let len = cursor.position() as usize;
    let text = std::str::from_utf8(&buf[..len]).map_err(|_| "float formatting".to_string())?;
    put_decimal_str(out, text, t)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAIN: NumericTarget = NumericTarget {
        typmod: None,
        infinity: true,
    };

    fn num(s: &str) -> Vec<i64> {
        let mut out = Vec::new();
        put_decimal_str(&mut out, s, PLAIN).expect("valid numeric");
        out.chunks(2)
            .map(|c| i64::from(i16::from_be_bytes([c[0], c[1]])))
            .collect()
    }

    // [ndigits, weight, sign, dscale, digits…]; sign read as i16, so 0x4000 = 16384, 0xC000 = -16384.
    #[test]
    fn numeric_edge_cases_are_byte_exact() {
        assert_eq!(num("0"), vec![0, 0, 0, 0]);
        assert_eq!(num("0.000"), vec![0, 0, 0, 3]);
        assert_eq!(num("-0"), vec![0, 0, 0, 0]);
        assert_eq!(num("1"), vec![1, 0, 0, 0, 1]);
        assert_eq!(num("-1"), vec![1, 0, 16384, 0, 1]);
        assert_eq!(num("9999"), vec![1, 0, 0, 0, 9999]);
        assert_eq!(num("10000"), vec![1, 1, 0, 0, 1]);
        assert_eq!(num("10001"), vec![2, 1, 0, 0, 1, 1]);
        assert_eq!(num("123456789.5"), vec![4, 2, 0, 1, 1, 2345, 6789, 5000]);
        assert_eq!(num("0.0001"), vec![1, -1, 0, 4, 1]);
        assert_eq!(num("0.00001"), vec![1, -2, 0, 5, 1000]);
        assert_eq!(num("-0.5"), vec![1, -1, 16384, 1, 5000]);
        assert_eq!(num("1.50"), vec![2, 0, 0, 2, 1, 5000]);
        assert_eq!(num("1e4"), vec![1, 1, 0, 0, 1]);
        assert_eq!(num("1.5E-3"), vec![1, -1, 0, 4, 15]);
        assert_eq!(num("NaN"), vec![0, 0, -16384, 0]);
        assert_eq!(num("-Infinity"), vec![0, 0, 0xF000 - 0x10000, 0]);
    }

    #[test]
    fn decimals_scale_into_digits() {
        let dec = |v: i128, s: i8| {
            let mut out = Vec::new();
            put_decimal128(&mut out, v, s, PLAIN).expect("fits");
            out
        };
        let text = |s: &str| {
            let mut out = Vec::new();
            put_decimal_str(&mut out, s, PLAIN).expect("valid");
            out
        };
        assert_eq!(dec(12345, 2), text("123.45"));
        assert_eq!(dec(-5, 4), text("-0.0005"));
        assert_eq!(dec(7, -3), text("7000"));
        assert_eq!(dec(0, 3), text("0.000"));
        for (v, s) in [
            (0, 3),
            (1, 0),
            (10_000, 0),
            (120_000, 1),
            (-99_990_000, 4),
            (i128::MAX, 0),
        ] {
            assert_eq!(decimal128_width(v, s), dec(v, s).len(), "{v} scale {s}");
        }
        assert_eq!(dec(10_000_000, 0), text("10000000"));
        assert_eq!(dec(-99_990_000, 4), text("-9999.0000"));
        assert_eq!(
            dec(i128::MAX, 38),
            text("1.70141183460469231731687303715884105727")
        );
        assert_eq!(
            dec(i128::MIN + 1, 0),
            text("-170141183460469231731687303715884105727")
        );
        let mut wide = Vec::new();
        put_decimal256(
            &mut wide,
            i256::from_i128(-123_456_789_012_345_678_901),
            3,
            PLAIN,
        )
        .expect("fits");
        assert_eq!(wide, text("-123456789012345678.901"));
        let mut f = Vec::new();
        put_float(&mut f, 0.1, false, PLAIN).expect("finite");
        assert_eq!(f, text("0.1"));
    }

    #[test]
    fn typmod_and_server_limits_reject() {
        let t = NumericTarget::new(((5 << 16) | 2) + 4, 150_000);
        assert_eq!(t.typmod, Some((5, 2)));
        let mut out = Vec::new();
        assert!(put_decimal_str(&mut out, "123.45", t).is_ok());
        assert!(put_decimal_str(&mut out, "1234.5", t).is_err());
        assert!(put_decimal_str(&mut out, "1.234", t).is_err());
        let old = NumericTarget::new(-1, 130_000);
        assert!(put_decimal_str(&mut out, "Infinity", old).is_err());
        assert!(put_decimal_str(&mut out, "NaN", old).is_ok());
        assert!(put_decimal_str(&mut out, "1.2.3", PLAIN).is_err());
        assert!(put_decimal_str(&mut out, "", PLAIN).is_err());
    }

    #[test]
    fn integers_narrow_with_range_checks() {
        let mut b = [0u8; 8];
        assert_eq!(int_bytes(-2, NumTo::Int2, &mut b), Ok(2));
        assert_eq!(&b[..2], &[0xff, 0xfe]);
        assert!(int_bytes(40_000, NumTo::Int2, &mut b).is_err());
        assert!(int_bytes(i128::from(u64::MAX), NumTo::Int8, &mut b).is_err());
        assert!(int_bytes((1 << 53) + 1, NumTo::Float8, &mut b).is_err());
        assert!(float_bytes(0.1, NumTo::Float4, &mut b).is_err());
        assert_eq!(float_bytes(0.5, NumTo::Float4, &mut b), Ok(4));
    }
}
