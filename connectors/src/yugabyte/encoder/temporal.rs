//! Dates, times, timestamps and intervals.
//!
//! ```text
//! date        = days:i32 since 2000-01-01
//! time        = µs:i64 since midnight (0 ..= 24:00:00)
//! timestamp   = µs:i64 since 2000-01-01 00:00:00 (timestamptz: the same instant in UTC)
//! interval    = µs:i64 days:i32 months:i32
//! ```
//!
//! Sub-microsecond digits are dropped (timestamps and times toward −∞, intervals toward zero)
//! and counted as truncations; everything out of PostgreSQL's range is a reject.

use arrow::datatypes::TimeUnit;

/// Microseconds between 1970-01-01 and PostgreSQL's epoch, 2000-01-01.
pub const PG_EPOCH_OFFSET_US: i64 = 946_684_800_000_000;
/// Days between 1970-01-01 and 2000-01-01.
pub const PG_EPOCH_OFFSET_DAYS: i64 = 10_957;
/// PostgreSQL's timestamp range, µs from 2000-01-01: [4713-11-24 BC, 294277-01-01).
const PG_MIN_TIMESTAMP: i64 = -211_813_488_000_000_000;
const PG_END_TIMESTAMP: i64 = 9_223_371_331_200_000_000;
/// PostgreSQL's date range, days from 2000-01-01: [4713-11-24 BC, 5874898-01-01).
const PG_MIN_DATE: i64 = -2_451_545;
const PG_END_DATE: i64 = 2_145_031_949;
pub const US_PER_DAY: i64 = 86_400_000_000;

/// A value in `unit` as whole microseconds, rounded toward −∞ (`floor`) or zero, and whether
/// digits were dropped. `None` on overflow.
#[inline]
pub fn to_us(v: i64, unit: TimeUnit, floor: bool) -> Option<(i64, bool)> {
    Some(match unit {
        TimeUnit::Second => (v.checked_mul(1_000_000)?, false),
        TimeUnit::Millisecond => (v.checked_mul(1_000)?, false),
        TimeUnit::Microsecond => (v, false),
        TimeUnit::Nanosecond => {
            let us = if floor {
                v.div_euclid(1_000)
            } else {
                v / 1_000
            };
            (us, v % 1_000 != 0)
        }
    })
}

/// Unix µs → PostgreSQL timestamp µs, range-checked.
#[inline]
pub fn timestamp(unix_us: i64) -> Result<i64, String> {
    unix_us
        .checked_sub(PG_EPOCH_OFFSET_US)
        .filter(|pg| (PG_MIN_TIMESTAMP..PG_END_TIMESTAMP).contains(pg))
        .ok_or_else(|| "timestamp outside PostgreSQL's range (4713 BC to 294276 AD)".to_string())
}

/// Unix days → PostgreSQL date, range-checked.
#[inline]
pub fn date(unix_days: i64) -> Result<i32, String> {
    let pg = unix_days - PG_EPOCH_OFFSET_DAYS;
    if (PG_MIN_DATE..PG_END_DATE).contains(&pg) {
        Ok(pg as i32)
    } else {
        Err("date outside PostgreSQL's range (4713 BC to 5874897 AD)".into())
    }
}

/// µs since midnight, range-checked.
#[inline]
pub fn time(us: i64) -> Result<i64, String> {
    if (0..=US_PER_DAY).contains(&us) {
        Ok(us)
    } else {
        Err(format!("{us} µs is not a time of day"))
    }
}

/// The 16 bytes of an interval.
#[inline]
pub fn interval(us: i64, days: i32, months: i32) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&us.to_be_bytes());
    out[8..12].copy_from_slice(&days.to_be_bytes());
    out[12..].copy_from_slice(&months.to_be_bytes());
    out
}

/// Days since 1970-01-01 of a proleptic Gregorian date (year 0 = 1 BC).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The (year, month, day) of days since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// A tiny cursor over ASCII text.
struct Scan<'a> {
    b: &'a [u8],
    at: usize,
}

impl Scan<'_> {
    fn digits(&mut self, min: usize, max: usize) -> Option<(i64, usize)> {
        let start = self.at;
        let mut v = 0i64;
        while self.at < self.b.len() && self.b[self.at].is_ascii_digit() && self.at - start < max {
            v = v * 10 + i64::from(self.b[self.at] - b'0');
            self.at += 1;
        }
        (self.at - start >= min).then_some((v, self.at - start))
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.b.get(self.at) == Some(&c) {
            self.at += 1;
            true
        } else {
            false
        }
    }
    fn done(&self) -> bool {
        self.at == self.b.len()
    }
}

fn parse_date_part(s: &mut Scan) -> Option<i64> {
    let negative = s.eat(b'-');
    let (y, _) = s.digits(4, 7)?;
    let y = if negative { -y } else { y };
    if !s.eat(b'-') {
        return None;
    }
    let (m, _) = s.digits(2, 2)?;
    if !s.eat(b'-') {
        return None;
    }
    let (d, _) = s.digits(2, 2)?;
    let (m, d) = (u32::try_from(m).ok()?, u32::try_from(d).ok()?);
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
        return None;
    }
    Some(days_from_civil(y, m, d))
}

/// `HH:MM[:SS[.ffffff…]]` → (µs since midnight, digits dropped).
fn parse_time_part(s: &mut Scan) -> Option<(i64, bool)> {
    let (h, _) = s.digits(2, 2)?;
    if !s.eat(b':') {
        return None;
    }
    let (mi, _) = s.digits(2, 2)?;
    let (mut sec, mut us, mut dropped) = (0, 0, false);
    if s.eat(b':') {
        sec = s.digits(2, 2)?.0;
        if s.eat(b'.') {
            let start = s.at;
            let (_, n) = s.digits(1, usize::MAX)?;
            let frac = &s.b[start..start + n];
            for k in 0..6 {
                us = us * 10 + frac.get(k).map_or(0, |c| i64::from(c - b'0'));
            }
            dropped = frac.iter().skip(6).any(|&c| c != b'0');
        }
    }
    if mi > 59 || sec > 60 || h > 24 || (h == 24 && (mi, sec, us) != (0, 0, 0)) {
        return None;
    }
    Some((((h * 60 + mi) * 60 + sec) * 1_000_000 + us, dropped))
}

/// `YYYY-MM-DD` → Unix days.
pub fn parse_date(text: &str) -> Result<i64, String> {
    let mut s = Scan {
        b: text.trim().as_bytes(),
        at: 0,
    };
    parse_date_part(&mut s)
        .filter(|_| s.done())
        .ok_or_else(|| format!("{text:?} is not a date (YYYY-MM-DD)"))
}

/// `HH:MM[:SS[.f]]` → µs since midnight, digits dropped.
pub fn parse_time(text: &str) -> Result<(i64, bool), String> {
    let mut s = Scan {
        b: text.trim().as_bytes(),
        at: 0,
    };
    parse_time_part(&mut s)
        .filter(|_| s.done())
        .ok_or_else(|| format!("{text:?} is not a time (HH:MM:SS)"))
}

/// `YYYY-MM-DD[( |T)HH:MM[:SS[.f]]][Z|±HH[:MM]]` → (Unix µs, digits dropped). Without an offset
/// the text is taken as UTC; with one and `keep_offset` false (a `timestamp` target), the offset
/// is ignored, as PostgreSQL does.
pub fn parse_timestamp(text: &str, keep_offset: bool) -> Result<(i64, bool), String> {
    let bad = || format!("{text:?} is not a timestamp (YYYY-MM-DD HH:MM:SS[.ffffff][+HH:MM])");
    let mut s = Scan {
        b: text.trim().as_bytes(),
        at: 0,
    };
    let days = parse_date_part(&mut s).ok_or_else(bad)?;
    let (mut us, mut dropped) = (0, false);
    if s.eat(b' ') || s.eat(b'T') || s.eat(b't') {
        (us, dropped) = parse_time_part(&mut s).ok_or_else(bad)?;
    }
    let mut offset_s = 0i64;
    let _ = s.eat(b' ');
    if s.eat(b'Z') || s.eat(b'z') {
    } else if s.b.get(s.at).is_some_and(|c| *c == b'+' || *c == b'-') {
        let sign = if s.b[s.at] == b'-' { -1 } else { 1 };
        s.at += 1;
        let (h, _) = s.digits(2, 2).ok_or_else(bad)?;
        let mut m = 0;
        if s.eat(b':') || s.b.get(s.at).is_some_and(u8::is_ascii_digit) {
            m = s.digits(2, 2).ok_or_else(bad)?.0;
        }
        if h > 15 || m > 59 {
            return Err(bad());
        }
        offset_s = sign * (h * 3600 + m * 60);
    }
    if !s.done() {
        return Err(bad());
    }
    let offset = if keep_offset { offset_s * 1_000_000 } else { 0 };
    let unix = days
        .checked_mul(US_PER_DAY)
        .and_then(|d| d.checked_add(us))
        .and_then(|t| t.checked_sub(offset))
        .ok_or_else(bad)?;
    Ok((unix, dropped))
}

/// Writes `YYYY-MM-DD` (years beyond 9999 in full, BC as a negative year) into `out`.
pub fn write_date(out: &mut Vec<u8>, unix_days: i64) {
    use std::io::Write as _;
    let (y, m, d) = civil_from_days(unix_days);
    let _ = write!(out, "{y:04}-{m:02}-{d:02}");
}

/// Writes `HH:MM:SS[.ffffff]`.
pub fn write_time(out: &mut Vec<u8>, us: i64) {
    use std::io::Write as _;
    let (s, frac) = (us.div_euclid(1_000_000), us.rem_euclid(1_000_000));
    let _ = write!(out, "{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
    if frac != 0 {
        let _ = write!(out, ".{frac:06}");
        while out.last() == Some(&b'0') {
            out.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 1, 1), PG_EPOCH_OFFSET_DAYS);
        assert_eq!(days_from_civil(2024, 2, 29), 19_782);
        for z in [-800_000, -1, 0, 59, 19_782, 2_000_000] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
    }

    #[test]
    fn text_parses_like_postgres() {
        assert_eq!(parse_date("2000-01-01"), Ok(PG_EPOCH_OFFSET_DAYS));
        assert!(parse_date("2001-02-29").is_err());
        assert_eq!(
            parse_timestamp("2000-01-01 00:00:01.5+01:00", true),
            Ok((PG_EPOCH_OFFSET_US + 1_500_000 - 3_600_000_000, false))
        );
        assert_eq!(
            parse_timestamp("2000-01-01T00:00:01.5+01", false),
            Ok((PG_EPOCH_OFFSET_US + 1_500_000, false))
        );
        assert_eq!(
            parse_timestamp("1970-01-01 00:00:00.0000001Z", true),
            Ok((0, true))
        );
        assert!(parse_timestamp("2000-13-01", true).is_err());
        assert_eq!(parse_time("24:00:00"), Ok((US_PER_DAY, false)));
        assert!(parse_time("24:00:01").is_err());
    }

    #[test]
    fn units_become_microseconds() {
        assert_eq!(to_us(-1, TimeUnit::Nanosecond, true), Some((-1, true)));
        assert_eq!(to_us(-1, TimeUnit::Nanosecond, false), Some((0, true)));
        assert_eq!(to_us(i64::MAX, TimeUnit::Second, true), None);
        assert_eq!(timestamp(PG_EPOCH_OFFSET_US), Ok(0));
        assert!(timestamp(i64::MIN).is_err());
        assert_eq!(
            interval(1, 2, 3),
            [0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3]
        );
    }
}
