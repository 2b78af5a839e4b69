//! Any Arrow value as JSON text, for json/jsonb targets: lists become arrays, structs and maps
//! objects, numbers stay exact, temporal values ISO 8601 strings, binary `"\\x…"` hex (as
//! PostgreSQL's `to_json(bytea)`), FixedSizeBinary(16) a UUID string. NaN and ±Infinity have no
//! JSON form: rejected.

use std::io::Write as _;

use arrow::array::{Array, AsArray};
use arrow::datatypes::*;

use super::temporal::{to_us, write_date, write_time};

/// Whether `dt` can be written as JSON.
pub fn supported(dt: &DataType) -> bool {
    use DataType as D;
    match dt {
        D::Null | D::Boolean | D::Utf8 | D::LargeUtf8 | D::Utf8View => true,
        D::Int8 | D::Int16 | D::Int32 | D::Int64 | D::UInt8 | D::UInt16 | D::UInt32 | D::UInt64 => {
            true
        }
        D::Float32 | D::Float64 | D::Decimal128(..) | D::Decimal256(..) => true,
        D::Binary | D::LargeBinary | D::BinaryView | D::FixedSizeBinary(_) => true,
        D::Date32 | D::Date64 | D::Time32(_) | D::Time64(_) | D::Timestamp(..) => true,
        D::Duration(_) | D::Interval(_) => true,
        D::List(f) | D::LargeList(f) | D::FixedSizeList(f, _) => supported(f.data_type()),
        D::Struct(fs) => fs.iter().all(|f| supported(f.data_type())),
        D::Map(f, _) => supported(f.data_type()),
        _ => false,
    }
}

/// Escapes `s` as a JSON string.
pub fn write_str(out: &mut Vec<u8>, s: &str, jsonb: bool) -> Result<(), String> {
    out.push(b'"');
    let b = s.as_bytes();
    let mut start = 0;
    for (k, &c) in b.iter().enumerate() {
        let esc: &[u8] = match c {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0 if jsonb => return Err("jsonb cannot hold a NUL character".into()),
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&b[start..k]);
        if esc.is_empty() {
            let _ = write!(out, "\\u{c:04x}");
        } else {
            out.extend_from_slice(esc);
        }
        start = k + 1;
    }
    out.extend_from_slice(&b[start..]);
    out.push(b'"');
    Ok(())
}

fn write_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.extend_from_slice(b"\"\\\\x");
    for b in bytes {
        out.push(HEX[usize::from(b >> 4)]);
        out.push(HEX[usize::from(b & 15)]);
    }
    out.push(b'"');
}

/// Writes a UUID's canonical hyphenated form, unquoted.
pub fn write_uuid(out: &mut Vec<u8>, b: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (k, byte) in b.iter().enumerate() {
        if matches!(k, 4 | 6 | 8 | 10) {
            out.push(b'-');
        }
        out.push(HEX[usize::from(byte >> 4)]);
        out.push(HEX[usize::from(byte & 15)]);
    }
}

/// The shortest decimal that reads back as the same float (`Debug` prints `1e-7`, `0.1`, `1.0`:
/// all valid JSON numbers). A Float32 is printed as one, so `0.1f32` stays `0.1`.
fn write_float(out: &mut Vec<u8>, v: f64, single: bool) -> Result<(), String> {
    if !v.is_finite() {
        return Err(format!("{v} has no JSON form"));
    }
    let _ = if single {
        write!(out, "{:?}", v as f32)
    } else {
        write!(out, "{v:?}")
    };
    Ok(())
}

fn write_scaled(out: &mut Vec<u8>, digits: &str, scale: i8) {
    let (negative, digits) = match digits.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, digits),
    };
    if negative {
        out.push(b'-');
    }
    let scale = i64::from(scale);
    if scale <= 0 {
        out.extend_from_slice(digits.as_bytes());
        out.extend(std::iter::repeat_n(b'0', (-scale) as usize));
        return;
    }
    let scale = scale as usize;
    if digits.len() > scale {
        let (i, f) = digits.split_at(digits.len() - scale);
        out.extend_from_slice(i.as_bytes());
        out.push(b'.');
        out.extend_from_slice(f.as_bytes());
    } else {
        out.extend_from_slice(b"0.");
        out.extend(std::iter::repeat_n(b'0', scale - digits.len()));
        out.extend_from_slice(digits.as_bytes());
    }
}

/// `P[nM][nD][T[nS]]`, which PostgreSQL reads back as an interval.
fn write_iso_interval(out: &mut Vec<u8>, months: i64, days: i64, us: i64) {
    out.extend_from_slice(b"\"P");
    if months != 0 {
        let _ = write!(out, "{months}M");
    }
    if days != 0 {
        let _ = write!(out, "{days}D");
    }
    if us != 0 || (months == 0 && days == 0) {
        let sign = if us < 0 { "-" } else { "" };
        let (s, f) = (us.unsigned_abs() / 1_000_000, us.unsigned_abs() % 1_000_000);
        let _ = write!(out, "T{sign}{s}");
        if f != 0 {
            let _ = write!(out, ".{f:06}");
            while out.last() == Some(&b'0') {
                out.pop();
            }
        }
        out.push(b'S');
    }
    out.push(b'"');
}

fn list_parts(array: &dyn Array, i: usize) -> Option<(&dyn Array, usize, usize)> {
    Some(match array.data_type() {
        DataType::List(_) => {
            let l = array.as_list::<i32>();
            let o = l.value_offsets();
            (l.values().as_ref(), o[i] as usize, o[i + 1] as usize)
        }
        DataType::LargeList(_) => {
            let l = array.as_list::<i64>();
            let o = l.value_offsets();
            (l.values().as_ref(), o[i] as usize, o[i + 1] as usize)
        }
        DataType::FixedSizeList(_, n) => {
            let l = array.as_fixed_size_list();
            let n = *n as usize;
            (l.values().as_ref(), i * n, (i + 1) * n)
        }
        DataType::Map(_, _) => {
            let m = array.as_map();
            let o = m.value_offsets();
            (m.entries() as &dyn Array, o[i] as usize, o[i + 1] as usize)
        }
        _ => return None,
    })
}

/// Writes value `i` of `array` as JSON.
pub fn write_json(
    array: &dyn Array,
    i: usize,
    out: &mut Vec<u8>,
    jsonb: bool,
) -> Result<(), String> {
    use DataType as D;
    if array.is_null(i) {
        out.extend_from_slice(b"null");
        return Ok(());
    }
    match array.data_type() {
        D::Null => out.extend_from_slice(b"null"),
        D::Boolean => out.extend_from_slice(if array.as_boolean().value(i) {
            b"true"
        } else {
            b"false"
        }),
        D::Int8 => {
            let _ = write!(out, "{}", array.as_primitive::<Int8Type>().value(i));
        }
        D::Int16 => {
            let _ = write!(out, "{}", array.as_primitive::<Int16Type>().value(i));
        }
        D::Int32 => {
            let _ = write!(out, "{}", array.as_primitive::<Int32Type>().value(i));
        }
        D::Int64 => {
            let _ = write!(out, "{}", array.as_primitive::<Int64Type>().value(i));
        }
        D::UInt8 => {
            let _ = write!(out, "{}", array.as_primitive::<UInt8Type>().value(i));
        }
        D::UInt16 => {
            let _ = write!(out, "{}", array.as_primitive::<UInt16Type>().value(i));
        }
        D::UInt32 => {
            let _ = write!(out, "{}", array.as_primitive::<UInt32Type>().value(i));
        }
        D::UInt64 => {
            let _ = write!(out, "{}", array.as_primitive::<UInt64Type>().value(i));
        }
        D::Float32 => write_float(
            out,
            f64::from(array.as_primitive::<Float32Type>().value(i)),
            true,
        )?,
        D::Float64 => write_float(out, array.as_primitive::<Float64Type>().value(i), false)?,
        D::Decimal128(_, s) => {
            let mut buf = [0u8; 48];
            let mut c = std::io::Cursor::new(&mut buf[..]);
            let _ = write!(c, "{}", array.as_primitive::<Decimal128Type>().value(i));
            let n = c.position() as usize;
            write_scaled(out, std::str::from_utf8(&buf[..n]).unwrap_or("0"), *s);
        }
        D::Decimal256(_, s) => {
            let text = array.as_primitive::<Decimal256Type>().value(i).to_string();
            write_scaled(out, &text, *s);
        }
        D::Utf8 => write_str(out, array.as_string::<i32>().value(i), jsonb)?,
        D::LargeUtf8 => write_str(out, array.as_string::<i64>().value(i), jsonb)?,
        D::Utf8View => write_str(out, array.as_string_view().value(i), jsonb)?,
        D::Binary => write_hex(out, array.as_binary::<i32>().value(i)),
        D::LargeBinary => write_hex(out, array.as_binary::<i64>().value(i)),
        D::BinaryView => write_hex(out, array.as_binary_view().value(i)),
        D::FixedSizeBinary(16) => {
            out.push(b'"');
            write_uuid(out, array.as_fixed_size_binary().value(i));
            out.push(b'"');
        }
        D::FixedSizeBinary(_) => write_hex(out, array.as_fixed_size_binary().value(i)),
        D::Date32 => {
            out.push(b'"');
            write_date(out, i64::from(array.as_primitive::<Date32Type>().value(i)));
            out.push(b'"');
        }
        D::Date64 => {
            out.push(b'"');
            write_date(
                out,
                array
                    .as_primitive::<Date64Type>()
                    .value(i)
                    .div_euclid(86_400_000),
            );
            out.push(b'"');
        }
        D::Time32(_) | D::Time64(_) => {
            let us = super::time_us(array, i).ok_or("time out of range")?.0;
            out.push(b'"');
            write_time(out, us);
            out.push(b'"');
        }
        D::Timestamp(unit, tz) => {
            let v = super::timestamp_raw(array, *unit, i);
            let (us, _) = to_us(v, *unit, true).ok_or("timestamp out of range")?;
            out.push(b'"');
            write_date(out, us.div_euclid(super::temporal::US_PER_DAY));
            out.push(b'T');
            write_time(out, us.rem_euclid(super::temporal::US_PER_DAY));
            if tz.is_some() {
                out.push(b'Z');
            }
            out.push(b'"');
        }
        D::Duration(_) | D::Interval(_) => {
            let (us, days, months) = super::interval_parts(array, i)
                .ok_or("interval out of range")?
                .0;
            write_iso_interval(out, i64::from(months), i64::from(days), us);
        }
        D::List(_) | D::LargeList(_) | D::FixedSizeList(..) => {
            let (values, start, end) = list_parts(array, i).ok_or("not a list")?;
            out.push(b'[');
            for (n, k) in (start..end).enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                write_json(values, k, out, jsonb)?;
            }
            out.push(b']');
        }
        D::Struct(fields) => {
            let s = array.as_struct();
            out.push(b'{');
            for (n, (f, col)) in fields.iter().zip(s.columns()).enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                write_str(out, f.name(), jsonb)?;
                out.push(b':');
                write_json(col.as_ref(), i, out, jsonb)?;
            }
            out.push(b'}');
        }
        D::Map(_, _) => {
            let (entries, start, end) = list_parts(array, i).ok_or("not a map")?;
            let entries = entries.as_struct();
            let (keys, values) = (entries.column(0).as_ref(), entries.column(1).as_ref());
            out.push(b'{');
            for (n, k) in (start..end).enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                write_key(keys, k, out, jsonb)?;
                out.push(b':');
                write_json(values, k, out, jsonb)?;
            }
            out.push(b'}');
        }
        other => return Err(format!("{other} has no JSON form")),
    }
    Ok(())
}

/// A map key as a JSON object key: strings as they are, anything else as its JSON text, quoted.
fn write_key(keys: &dyn Array, k: usize, out: &mut Vec<u8>, jsonb: bool) -> Result<(), String> {
    if keys.is_null(k) {
        return Err("a map key is NULL, which a JSON object cannot hold".into());
    }
    match keys.data_type() {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            write_json(keys, k, out, jsonb)
        }
        _ => {
            let mut text = Vec::new();
            write_json(keys, k, &mut text, jsonb)?;
            let text = String::from_utf8(text).map_err(|e| e.to_string())?;
            match text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
                Some(inner) => {
                    out.push(b'"');
                    out.extend_from_slice(inner.as_bytes());
                    out.push(b'"');
                    Ok(())
                }
                None => write_str(out, &text, jsonb),
            }
        }
    }
}
