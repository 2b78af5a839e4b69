//! `cql_to_json(value)`: any value as the JSON text CQL's `toJson()` gives it, and
//! `duration_to_text(duration)`: a duration in CQL's own notation (`1y2mo3d4h5m6s7ms8us9ns`).
//!
//! The JSON follows Cassandra's shapes, so a document built from a Cassandra table looks the same
//! whether `SELECT JSON` or Ferry produced it: lists, sets, vectors and tuples are arrays, UDTs and
//! maps objects (map keys that are not text become their JSON text, quoted), `varint`/`decimal`
//! exact numbers, `blob` a `"0x…"` string, `uuid` its canonical string, `timestamp`
//! `"yyyy-mm-dd hh:mm:ss.fffZ"`, `date` `"yyyy-mm-dd"`, `time` `"hh:mm:ss.fffffffff"`,
//! `duration` its CQL notation. NaN and ±Infinity have no JSON form: like Cassandra, they become
//! `null`.
//!
//! Where a value comes from a CQL column, its Arrow field carries the CQL type
//! ([`CQL_TYPE_METADATA_KEY`]): that is what tells a tuple from a UDT and a `varint` from text.

use std::fmt::Write as _;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use arrow::datatypes::{
    DataType, Date32Type, Date64Type, Decimal128Type, Decimal256Type, DecimalType, Field,
    Float16Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type,
    IntervalDayTimeType, IntervalMonthDayNanoType, IntervalUnit, IntervalYearMonthType, TimeUnit,
    UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use datafusion::common::{Result, exec_err, plan_err};
use datafusion::logical_expr::{
    Coercion, ScalarUDF, Signature, TypeSignature, TypeSignatureClass, Volatility,
};

use super::{Kernel, Udf, push_hex, push_uuid};
use crate::types::CQL_TYPE_METADATA_KEY;

const NANOS_PER_SECOND: i64 = 1_000_000_000;
const MS_PER_DAY: i64 = 86_400_000;

pub(crate) fn udfs() -> Vec<ScalarUDF> {
    vec![
        Udf::udf(JsonFn::CqlToJson),
        Udf::udf(JsonFn::DurationToText),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum JsonFn {
    /// `cql_to_json(any) → text`.
    CqlToJson,
    /// `duration_to_text(duration) → text`.
    DurationToText,
}

impl Kernel for JsonFn {
    fn name(&self) -> &'static str {
        match self {
            JsonFn::CqlToJson => "cql_to_json",
            JsonFn::DurationToText => "duration_to_text",
        }
    }

    fn signature(&self) -> Signature {
        let v = Volatility::Immutable;
        match self {
            JsonFn::CqlToJson => Signature::any(1, v),
            JsonFn::DurationToText => Signature::one_of(
                vec![
                    TypeSignature::Coercible(vec![Coercion::new_exact(
                        TypeSignatureClass::Interval,
                    )]),
                    TypeSignature::Coercible(vec![Coercion::new_exact(
                        TypeSignatureClass::Duration,
                    )]),
                ],
                v,
            ),
        }
    }

    fn returns(&self, arg: &DataType) -> Result<DataType> {
        if *self == JsonFn::CqlToJson
            && let Err(why) = Node::plan(&Field::new("", arg.clone(), true))
        {
            return plan_err!("cql_to_json() cannot render {arg}: {why}");
        }
        Ok(DataType::Utf8)
    }

    fn eval(&self, array: &ArrayRef, field: &Field) -> Result<ArrayRef> {
        let name = self.name();
        let node = match self {
            JsonFn::CqlToJson => match Node::plan(field) {
                Ok(node) => node,
                Err(why) => {
                    return exec_err!("{name}() cannot render {}: {why}", field.data_type());
                }
            },
            JsonFn::DurationToText => Node::Duration,
        };
        let mut out = StringBuilder::with_capacity(array.len(), 0);
        let mut text = String::new();
        for i in 0..array.len() {
            if array.is_null(i) {
                out.append_null();
                continue;
            }
            text.clear();
            if let Err(why) = node.write(array.as_ref(), i, &mut text) {
                return exec_err!("{name}(): {why}");
            }
            if *self == JsonFn::DurationToText {
                // The JSON string's quotes go; the notation has nothing to escape.
                text.pop();
                text.remove(0);
            }
            out.append_value(&text);
        }
        Ok(Arc::new(out.finish()))
    }
}

/// How to write one value of an Arrow type, decided once per column from its field.
#[derive(Debug)]
enum Node {
    Null,
    Bool,
    /// Any integer type.
    Int,
    Float,
    Decimal,
    /// A JSON string.
    Text,
    /// Text holding a CQL `varint` or `decimal`: written as a number.
    Number,
    Blob,
    Uuid,
    Date,
    Time(TimeUnit),
    /// Has a time zone: an instant, written in UTC with `Z`.
    Timestamp {
        unit: TimeUnit,
        instant: bool,
    },
    Duration,
    List(Box<Node>),
    /// A CQL tuple: an array.
    Tuple(Vec<Node>),
    /// A UDT or any other struct: an object.
    Object(Vec<(String, Node)>),
    Map(Box<Node>, Box<Node>),
}

impl Node {
    fn plan(field: &Field) -> Result<Node, String> {
        use DataType as D;
        let cql = field
            .metadata()
            .get(CQL_TYPE_METADATA_KEY)
            .map(String::as_str)
            .map(unfrozen);
        Ok(match field.data_type() {
            D::Null => Node::Null,
            D::Boolean => Node::Bool,
            D::Int8 | D::Int16 | D::Int32 | D::Int64 => Node::Int,
            D::UInt8 | D::UInt16 | D::UInt32 | D::UInt64 => Node::Int,
            D::Float16 | D::Float32 | D::Float64 => Node::Float,
            D::Decimal128(..) | D::Decimal256(..) => Node::Decimal,
            D::Utf8 | D::LargeUtf8 | D::Utf8View => match cql {
                Some("varint" | "decimal") => Node::Number,
                _ => Node::Text,
            },
            D::FixedSizeBinary(16) => Node::Uuid,
            D::Binary | D::LargeBinary | D::BinaryView | D::FixedSizeBinary(_) => Node::Blob,
            D::Date32 | D::Date64 => Node::Date,
            D::Time32(unit) | D::Time64(unit) => Node::Time(*unit),
            D::Timestamp(unit, tz) => Node::Timestamp {
                unit: *unit,
                instant: tz.is_some(),
            },
            D::Interval(_) | D::Duration(_) => Node::Duration,
            D::List(f) | D::LargeList(f) | D::FixedSizeList(f, _) => {
                Node::List(Box::new(Node::plan(f)?))
            }
            D::Struct(fields) => {
                if cql.is_some_and(|t| t.starts_with("tuple<")) {
                    Node::Tuple(
                        fields
                            .iter()
                            .map(|f| Node::plan(f))
                            .collect::<Result<_, _>>()?,
                    )
                } else {
                    Node::Object(
                        fields
                            .iter()
                            .map(|f| Ok((f.name().clone(), Node::plan(f)?)))
                            .collect::<Result<_, String>>()?,
                    )
                }
            }
            D::Map(entries, _) => {
                let D::Struct(kv) = entries.data_type() else {
                    return Err("a map whose entries are not a struct".into());
                };
                if kv.len() != 2 {
                    return Err("a map whose entries are not key and value".into());
                }
                Node::Map(Box::new(Node::plan(&kv[0])?), Box::new(Node::plan(&kv[1])?))
            }
            other => return Err(format!("{other} has no CQL JSON form")),
        })
    }

    /// Writes value `i` of `array` (not NULL at the top level) as JSON.
    fn write(&self, array: &dyn Array, i: usize, out: &mut String) -> Result<(), String> {
        if array.is_null(i) {
            out.push_str("null");
            return Ok(());
        }
        match self {
            Node::Null => out.push_str("null"),
            Node::Bool => out.push_str(if array.as_boolean().value(i) {
                "true"
            } else {
                "false"
            }),
            Node::Int => write_int(array, i, out),
            Node::Float => {
                let (v, single) = match array.data_type() {
                    DataType::Float16 => {
                        (array.as_primitive::<Float16Type>().value(i).to_f64(), true)
                    }
                    DataType::Float32 => (
                        f64::from(array.as_primitive::<Float32Type>().value(i)),
                        true,
                    ),
                    _ => (array.as_primitive::<Float64Type>().value(i), false),
                };
                if !v.is_finite() {
                    out.push_str("null");
                } else if single {
                    // Printed as an f32, so 0.1f32 stays `0.1`.
                    let _ = write!(out, "{:?}", v as f32);
                } else {
                    let _ = write!(out, "{v:?}");
                }
            }
            Node::Decimal => match array.data_type() {
                DataType::Decimal128(p, s) => out.push_str(&Decimal128Type::format_decimal(
                    array.as_primitive::<Decimal128Type>().value(i),
                    *p,
                    *s,
                )),
                DataType::Decimal256(p, s) => out.push_str(&Decimal256Type::format_decimal(
                    array.as_primitive::<Decimal256Type>().value(i),
                    *p,
                    *s,
                )),
                other => return Err(format!("{other} is not a decimal")),
            },
            Node::Text => push_json_string(out, string_at(array, i)),
            Node::Number => {
                let s = string_at(array, i);
                if is_json_number(s) {
                    out.push_str(s);
                } else {
                    push_json_string(out, s);
                }
            }
            Node::Blob => {
                let b = match array.data_type() {
                    DataType::LargeBinary => array.as_binary::<i64>().value(i),
                    DataType::BinaryView => array.as_binary_view().value(i),
                    DataType::FixedSizeBinary(_) => array.as_fixed_size_binary().value(i),
                    _ => array.as_binary::<i32>().value(i),
                };
                out.push_str("\"0x");
                push_hex(out, b);
                out.push('"');
            }
            Node::Uuid => {
                out.push('"');
                push_uuid(out, array.as_fixed_size_binary().value(i));
                out.push('"');
            }
            Node::Date => {
                let days = match array.data_type() {
                    DataType::Date64 => array
                        .as_primitive::<Date64Type>()
                        .value(i)
                        .div_euclid(MS_PER_DAY),
                    _ => i64::from(array.as_primitive::<Date32Type>().value(i)),
                };
                out.push('"');
                push_date(out, days);
                out.push('"');
            }
            Node::Time(unit) => {
                let (v, digits) = time_value(array, i, *unit);
                out.push('"');
                push_time(out, v, digits)?;
                out.push('"');
            }
            Node::Timestamp { unit, instant } => {
                let (v, per_second, digits) = timestamp_value(array, i, *unit);
                let (seconds, fraction) = (v.div_euclid(per_second), v.rem_euclid(per_second));
                out.push('"');
                push_date(out, seconds.div_euclid(86_400));
                out.push(' ');
                let in_day = seconds.rem_euclid(86_400);
                let _ = write!(
                    out,
                    "{:02}:{:02}:{:02}.{fraction:0digits$}",
                    in_day / 3600,
                    in_day / 60 % 60,
                    in_day % 60,
                );
                if *instant {
                    out.push('Z');
                }
                out.push('"');
            }
            Node::Duration => {
                let (months, days, nanos) = duration_parts(array, i)?;
                out.push('"');
                push_duration(out, months, days, nanos)?;
                out.push('"');
            }
            Node::List(item) => {
                let (values, range) = list_range(array, i)?;
                out.push('[');
                for (n, k) in range.enumerate() {
                    if n > 0 {
                        out.push_str(", ");
                    }
                    item.write(values, k, out)?;
                }
                out.push(']');
            }
            Node::Tuple(items) => {
                let s = array.as_struct();
                out.push('[');
                for (n, (item, column)) in items.iter().zip(s.columns()).enumerate() {
                    if n > 0 {
                        out.push_str(", ");
                    }
                    item.write(column.as_ref(), i, out)?;
                }
                out.push(']');
            }
            Node::Object(fields) => {
                let s = array.as_struct();
                out.push('{');
                for (n, ((name, node), column)) in fields.iter().zip(s.columns()).enumerate() {
                    if n > 0 {
                        out.push_str(", ");
                    }
                    push_json_string(out, name);
                    out.push_str(": ");
                    node.write(column.as_ref(), i, out)?;
                }
                out.push('}');
            }
            Node::Map(key, value) => {
                let map = array.as_map();
                let offsets = map.value_offsets();
                let (keys, values) = (map.keys().as_ref(), map.values().as_ref());
                out.push('{');
                for (n, k) in (offsets[i] as usize..offsets[i + 1] as usize).enumerate() {
                    if n > 0 {
                        out.push_str(", ");
                    }
                    if keys.is_null(k) {
                        return Err("a map key is NULL, which a JSON object cannot hold".into());
                    }
                    // A JSON object key is a string: other keys become their JSON text, quoted.
                    let start = out.len();
                    key.write(keys, k, out)?;
                    if !out[start..].starts_with('"') {
                        let text = out.split_off(start);
                        push_json_string(out, &text);
                    }
                    out.push_str(": ");
                    value.write(values, k, out)?;
                }
                out.push('}');
            }
        }
        Ok(())
    }
}

/// `frozen<T>` → `T`, as the metadata spells it.
fn unfrozen(mut t: &str) -> &str {
    while let Some(inner) = t.strip_prefix("frozen<").and_then(|r| r.strip_suffix('>')) {
        t = inner;
    }
    t
}

fn write_int(array: &dyn Array, i: usize, out: &mut String) {
    let _ = match array.data_type() {
        DataType::Int8 => write!(out, "{}", array.as_primitive::<Int8Type>().value(i)),
        DataType::Int16 => write!(out, "{}", array.as_primitive::<Int16Type>().value(i)),
        DataType::Int32 => write!(out, "{}", array.as_primitive::<Int32Type>().value(i)),
        DataType::Int64 => write!(out, "{}", array.as_primitive::<Int64Type>().value(i)),
        DataType::UInt8 => write!(out, "{}", array.as_primitive::<UInt8Type>().value(i)),
        DataType::UInt16 => write!(out, "{}", array.as_primitive::<UInt16Type>().value(i)),
        DataType::UInt32 => write!(out, "{}", array.as_primitive::<UInt32Type>().value(i)),
        _ => write!(out, "{}", array.as_primitive::<UInt64Type>().value(i)),
    };
}

fn string_at(array: &dyn Array, i: usize) -> &str {
    match array.data_type() {
        DataType::LargeUtf8 => array.as_string::<i64>().value(i),
        DataType::Utf8View => array.as_string_view().value(i),
        _ => array.as_string::<i32>().value(i),
    }
}

/// The child values of list (or map) value `i` and their index range.
fn list_range(array: &dyn Array, i: usize) -> Result<(&dyn Array, std::ops::Range<usize>), String> {
    Ok(match array.data_type() {
        DataType::List(_) => {
            let l = array.as_list::<i32>();
            let o = l.value_offsets();
            (l.values().as_ref(), o[i] as usize..o[i + 1] as usize)
        }
        DataType::LargeList(_) => {
            let l = array.as_list::<i64>();
            let o = l.value_offsets();
            (l.values().as_ref(), o[i] as usize..o[i + 1] as usize)
        }
        DataType::FixedSizeList(_, n) => {
            let l = array.as_fixed_size_list();
            let n = *n as usize;
            (l.values().as_ref(), i * n..(i + 1) * n)
        }
        other => return Err(format!("{other} is not a list")),
    })
}

/// Appends `s` as a JSON string: quotes, backslashes and control characters escaped, everything
/// else as it is.
fn push_json_string(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('"');
    let mut start = 0;
    for (k, c) in s.bytes().enumerate() {
        let escaped = match c {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..k]);
        if escaped.is_empty() {
            let _ = write!(out, "\\u{c:04x}");
        } else {
            out.push_str(escaped);
        }
        start = k + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Whether `s` is a JSON number: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
fn is_json_number(s: &str) -> bool {
    let b = s.as_bytes();
    let mut k = usize::from(b.first() == Some(&b'-'));
    let digits = |k: &mut usize| {
        let start = *k;
        while b.get(*k).is_some_and(u8::is_ascii_digit) {
            *k += 1;
        }
        *k - start
    };
    match b.get(k) {
        Some(b'0') => k += 1,
        Some(b'1'..=b'9') => {
            digits(&mut k);
        }
        _ => return false,
    }
    if b.get(k) == Some(&b'.') {
        k += 1;
        if digits(&mut k) == 0 {
            return false;
        }
    }
    if matches!(b.get(k), Some(b'e' | b'E')) {
        k += 1;
        if matches!(b.get(k), Some(b'+' | b'-')) {
            k += 1;
        }
        if digits(&mut k) == 0 {
            return false;
        }
    }
    k == b.len()
}

/// (year, month, day) of a day count since 1970-01-01, proleptic Gregorian.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `yyyy-mm-dd` as java.time writes it (and so Cassandra): at least four year digits, a `+`
/// before years past 9999, a `-` before years before 1 (year 0 is 1 BC).
fn push_date(out: &mut String, days: i64) {
    let (year, month, day) = civil_from_days(days);
    let _ = if year > 9999 {
        write!(out, "+{year}")
    } else if year < 0 {
        write!(out, "-{:04}", -year)
    } else {
        write!(out, "{year:04}")
    };
    let _ = write!(out, "-{month:02}-{day:02}");
}

fn time_value(array: &dyn Array, i: usize, unit: TimeUnit) -> (i64, usize) {
    use arrow::datatypes::{
        Time32MillisecondType, Time32SecondType, Time64MicrosecondType, Time64NanosecondType,
    };
    match (array.data_type(), unit) {
        (DataType::Time32(_), TimeUnit::Second) => (
            i64::from(array.as_primitive::<Time32SecondType>().value(i)),
            0,
        ),
        (DataType::Time32(_), _) => (
            i64::from(array.as_primitive::<Time32MillisecondType>().value(i)),
            3,
        ),
        (_, TimeUnit::Microsecond) => (array.as_primitive::<Time64MicrosecondType>().value(i), 6),
        _ => (array.as_primitive::<Time64NanosecondType>().value(i), 9),
    }
}

/// `hh:mm:ss[.f…]` of a time of day with `digits` fractional digits (0, 3, 6 or 9).
fn push_time(out: &mut String, v: i64, digits: usize) -> Result<(), String> {
    let per_second = 10i64.pow(digits as u32);
    if !(0..86_400 * per_second).contains(&v) {
        return Err(format!("{v} is not a time of day"));
    }
    let (s, f) = (v / per_second, v % per_second);
    let _ = write!(out, "{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
    if digits > 0 {
        let _ = write!(out, ".{f:0digits$}");
    }
    Ok(())
}

/// A timestamp's raw value, its units per second, and the fractional digits to print: CQL's
/// three for seconds and milliseconds, all of them for finer units.
fn timestamp_value(array: &dyn Array, i: usize, unit: TimeUnit) -> (i64, i64, usize) {
    use arrow::datatypes::{
        TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
        TimestampSecondType,
    };
    match unit {
        TimeUnit::Second => (array.as_primitive::<TimestampSecondType>().value(i), 1, 0),
        TimeUnit::Millisecond => (
            array.as_primitive::<TimestampMillisecondType>().value(i),
            1000,
            3,
        ),
        TimeUnit::Microsecond => (
            array.as_primitive::<TimestampMicrosecondType>().value(i),
            1_000_000,
            6,
        ),
        TimeUnit::Nanosecond => (
            array.as_primitive::<TimestampNanosecondType>().value(i),
            NANOS_PER_SECOND,
            9,
        ),
    }
}

/// (months, days, nanoseconds) of any interval or duration value.
fn duration_parts(array: &dyn Array, i: usize) -> Result<(i64, i64, i64), String> {
    use arrow::datatypes::{
        DurationMicrosecondType, DurationMillisecondType, DurationNanosecondType,
        DurationSecondType,
    };
    Ok(match array.data_type() {
        DataType::Interval(IntervalUnit::MonthDayNano) => {
            let v = array.as_primitive::<IntervalMonthDayNanoType>().value(i);
            (i64::from(v.months), i64::from(v.days), v.nanoseconds)
        }
        DataType::Interval(IntervalUnit::YearMonth) => (
            i64::from(array.as_primitive::<IntervalYearMonthType>().value(i)),
            0,
            0,
        ),
        DataType::Interval(IntervalUnit::DayTime) => {
            let v = array.as_primitive::<IntervalDayTimeType>().value(i);
            (0, i64::from(v.days), i64::from(v.milliseconds) * 1_000_000)
        }
        DataType::Duration(unit) => {
            let (v, scale) = match unit {
                TimeUnit::Second => (
                    array.as_primitive::<DurationSecondType>().value(i),
                    NANOS_PER_SECOND,
                ),
                TimeUnit::Millisecond => (
                    array.as_primitive::<DurationMillisecondType>().value(i),
                    1_000_000,
                ),
                TimeUnit::Microsecond => (
                    array.as_primitive::<DurationMicrosecondType>().value(i),
                    1000,
                ),
                TimeUnit::Nanosecond => {
                    (array.as_primitive::<DurationNanosecondType>().value(i), 1)
                }
            };
            let nanos = v
                .checked_mul(scale)
                .ok_or_else(|| format!("a duration of {v} {unit:?}s is out of range"))?;
            (0, 0, nanos)
        }
        other => return Err(format!("{other} is not a duration")),
    })
}

/// CQL's duration notation, as Cassandra's `Duration.toString` writes it: a sign, then each
/// non-zero unit from years to nanoseconds (`-1y2mo3d4h5m6s7ms8us9ns`). Cassandra writes a zero
/// duration as an empty string; this writes `0s`, which CQL reads back.
fn push_duration(out: &mut String, months: i64, days: i64, nanos: i64) -> Result<(), String> {
    let negative = months < 0 || days < 0 || nanos < 0;
    if negative && (months > 0 || days > 0 || nanos > 0) {
        return Err(format!(
            "a duration of {months} months, {days} days and {nanos} ns mixes signs, which CQL \
             durations cannot"
        ));
    }
    if months == 0 && days == 0 && nanos == 0 {
        out.push_str("0s");
        return Ok(());
    }
    if negative {
        out.push('-');
    }
    let mut unit = |value: u64, per: u64, name: &str| -> u64 {
        if value >= per {
            let _ = write!(out, "{}{name}", value / per);
            value % per
        } else {
            value
        }
    };
    let months = unit(months.unsigned_abs(), 12, "y");
    unit(months, 1, "mo");
    unit(days.unsigned_abs(), 1, "d");
    let mut rest = nanos.unsigned_abs();
    for (per, name) in [
        (3600 * NANOS_PER_SECOND as u64, "h"),
        (60 * NANOS_PER_SECOND as u64, "m"),
        (NANOS_PER_SECOND as u64, "s"),
        (1_000_000, "ms"),
        (1000, "us"),
        (1, "ns"),
    ] {
        rest = unit(rest, per, name);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use arrow::array::{
        Float32Array, Float64Array, IntervalMonthDayNanoArray, ListArray, StringArray, StructArray,
        TimestampMillisecondArray,
    };
    use arrow::datatypes::{Int32Type, IntervalMonthDayNano};
    use datafusion::common::ScalarValue;

    use super::*;
    use crate::types::{CqlType, NoUdts};
    use crate::udf::test_support::{eval, scalar};

    fn json(out: &ArrayRef) -> Vec<Option<String>> {
        out.as_string::<i32>()
            .iter()
            .map(|v| v.map(str::to_string))
            .collect()
    }

    fn cql_field(name: &str, cql: &str) -> Field {
        CqlType::parse(cql, "ks", &NoUdts)
            .expect("parses")
            .arrow_field(name, true)
    }

    #[test]
    fn dates_are_written_as_java_time_writes_them() {
        // Cassandra 5.0's toJson() of these dates (cqlsh; day counts from toUnixTimestamp).
        for (days, text) in [
            (0, "1970-01-01"),
            (-1, "1969-12-31"),
            (2_932_896, "9999-12-31"),
            (2_932_897, "+10000-01-01"),
            (-141_427, "1582-10-15"),
            (-719_528, "0000-01-01"),
            (-719_529, "-0001-12-31"),
            (-141_438, "1582-10-04"),
            (-2_545_740, "-5000-01-01"),
            (-2_147_483_648, "-5877641-06-23"),
            (2_147_483_647, "+5881580-07-11"),
        ] {
            let mut out = String::new();
            push_date(&mut out, days);
            assert_eq!(out, text, "{days}");
        }
    }

    #[test]
    fn durations_use_cql_notation() {
        let d = |m, d, n| {
            let mut out = String::new();
            push_duration(&mut out, m, d, n).map(|()| out)
        };
        // Cassandra's toJson() of the same literals.
        assert_eq!(
            d(14, 3, 14_706_007_008_009).as_deref(),
            Ok("1y2mo3d4h5m6s7ms8us9ns")
        );
        assert_eq!(
            d(-14, -3, -14_706_007_008_009).as_deref(),
            Ok("-1y2mo3d4h5m6s7ms8us9ns")
        );
        assert_eq!(d(1, 0, 0).as_deref(), Ok("1mo"));
        assert_eq!(d(0, 0, -1).as_deref(), Ok("-1ns"));
        assert_eq!(d(0, 2_147_483_647, 0).as_deref(), Ok("2147483647d"));
        assert_eq!(d(0, 0, 5_400 * NANOS_PER_SECOND).as_deref(), Ok("1h30m"));
        assert_eq!(d(0, 0, 0).as_deref(), Ok("0s"));
        assert!(d(1, -1, 0).expect_err("mixed").contains("mixes signs"));
    }

    #[test]
    fn numbers_from_text_are_checked() {
        for ok in ["0", "-1", "1E+30", "-0.00001", "0.000", "12e-1002", "3.14"] {
            assert!(is_json_number(ok), "{ok}");
        }
        for bad in ["", "-", "01", "1.", ".5", "1e", "NaN", "1 ", "+1"] {
            assert!(!is_json_number(bad), "{bad}");
        }
    }

    #[tokio::test]
    async fn collections_tuples_and_udts_take_cassandras_shapes() {
        // tuple<int, text> and a UDT-like struct, from the type mapping with its metadata.
        let tuple = cql_field("v", "frozen<tuple<int, text>>");
        let DataType::Struct(fields) = tuple.data_type().clone() else {
            panic!("a tuple is a struct")
        };
        let values: ArrayRef = Arc::new(StructArray::new(
            fields,
            vec![
                Arc::new(arrow::array::Int32Array::from(vec![Some(7), None, Some(1)])),
                Arc::new(StringArray::from(vec![Some("元"), None, Some("a\"b\n")])),
            ],
            Some(vec![true, true, false].into()),
        ));
        let out = eval("cql_to_json(v)", tuple, values).await.expect("runs");
        assert_eq!(
            json(&out),
            [
                Some(r#"[7, "元"]"#.into()),
                Some("[null, null]".into()),
                None
            ]
        );

        // A plain struct (no CQL type): an object, keys escaped.
        let out = scalar("cql_to_json(named_struct('a\"', 1, 'b', 'x'))")
            .await
            .expect("runs");
        assert_eq!(
            out,
            ScalarValue::Utf8(Some(r#"{"a\"": 1, "b": "x"}"#.into()))
        );

        // list<int> with a NULL element and an empty list.
        let list = Field::new("v", DataType::new_list(DataType::Int32, true), true);
        let values: ArrayRef = Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
            Some(vec![Some(1), None, Some(-3)]),
            Some(vec![]),
            None,
        ]));
        let out = eval("cql_to_json(v)", list, values).await.expect("runs");
        assert_eq!(
            json(&out),
            [Some("[1, null, -3]".into()), Some("[]".into()), None]
        );
    }

    #[tokio::test]
    async fn maps_quote_keys_that_are_not_text() {
        let out = scalar("cql_to_json(map([1, 2], ['one', '']))")
            .await
            .expect("runs");
        assert_eq!(
            out,
            ScalarValue::Utf8(Some(r#"{"1": "one", "2": ""}"#.into()))
        );
        let out = scalar("cql_to_json(map(['k'], [[1, 2]]))")
            .await
            .expect("runs");
        assert_eq!(out, ScalarValue::Utf8(Some(r#"{"k": [1, 2]}"#.into())));
    }

    #[tokio::test]
    async fn scalars_take_cql_forms() {
        let cases = [
            ("cql_to_json(text_to_blob('ab'))", r#""0x6162""#),
            (
                "cql_to_json(text_to_uuid('123E4567-E89B-12D3-A456-426614174000'))",
                r#""123e4567-e89b-12d3-a456-426614174000""#,
            ),
            ("cql_to_json(CAST('2024-02-29' AS DATE))", r#""2024-02-29""#),
            (
                "cql_to_json(CAST('23:59:59.5' AS TIME))",
                r#""23:59:59.500000000""#,
            ),
            ("cql_to_json(true)", "true"),
            ("cql_to_json(CAST(-5 AS TINYINT))", "-5"),
            ("cql_to_json(CAST(12.50 AS DECIMAL(5, 2)))", "12.50"),
            ("cql_to_json('tab\there')", r#""tab\there""#),
            ("cql_to_json(CAST(1 AS DOUBLE) / 0)", "null"),
        ];
        for (expr, expected) in cases {
            assert_eq!(
                scalar(expr).await,
                Ok(ScalarValue::Utf8(Some(expected.into()))),
                "{expr}"
            );
        }
    }

    #[tokio::test]
    async fn cql_columns_keep_their_types() {
        let ts = cql_field("v", "timestamp");
        let values: ArrayRef = Arc::new(
            TimestampMillisecondArray::from(vec![Some(-1), Some(1_714_566_322_981), None])
                .with_timezone("UTC"),
        );
        let out = eval("cql_to_json(v)", ts, values).await.expect("runs");
        assert_eq!(
            json(&out),
            [
                Some(r#""1969-12-31 23:59:59.999Z""#.into()),
                Some(r#""2024-05-01 12:25:22.981Z""#.into()),
                None
            ]
        );

        // varint and decimal text are numbers; text that merely looks like one stays a string.
        for (cql, expected) in [
            ("varint", "-129"),
            ("decimal", "1E+30"),
            ("text", r#""-129""#),
        ] {
            let field = cql_field("v", cql);
            let text = if cql == "decimal" { "1E+30" } else { "-129" };
            let values: ArrayRef = Arc::new(StringArray::from(vec![text]));
            let out = eval("cql_to_json(v)", field, values).await.expect("runs");
            assert_eq!(json(&out), [Some(expected.into())], "{cql}");
        }

        let floats = cql_field("v", "float");
        let values: ArrayRef =
            Arc::new(Float32Array::from(vec![0.1, -0.0, f32::NAN, 3.4028235e38]));
        let out = eval("cql_to_json(v)", floats, values).await.expect("runs");
        assert_eq!(
            json(&out),
            [
                Some("0.1".into()),
                Some("-0.0".into()),
                Some("null".into()),
                Some("3.4028235e38".into())
            ]
        );
        let doubles = Field::new("v", DataType::Float64, true);
        let values: ArrayRef = Arc::new(Float64Array::from(vec![f64::NEG_INFINITY, 1e300]));
        let out = eval("cql_to_json(v)", doubles, values).await.expect("runs");
        assert_eq!(json(&out), [Some("null".into()), Some("1e300".into())]);
    }

    #[tokio::test]
    async fn durations_render_in_both_functions() {
        let field = cql_field("v", "duration");
        let values: ArrayRef = Arc::new(IntervalMonthDayNanoArray::from(vec![
            Some(IntervalMonthDayNano::new(14, 3, 1_000)),
            Some(IntervalMonthDayNano::new(0, 0, 0)),
            None,
        ]));
        let text = eval("duration_to_text(v)", field.clone(), values.clone())
            .await
            .expect("runs");
        assert_eq!(
            json(&text),
            [Some("1y2mo3d1us".into()), Some("0s".into()), None]
        );
        let out = eval("cql_to_json(v)", field, values).await.expect("runs");
        assert_eq!(json(&out)[0].as_deref(), Some(r#""1y2mo3d1us""#));

        let mixed: ArrayRef = Arc::new(IntervalMonthDayNanoArray::from(vec![
            IntervalMonthDayNano::new(1, -1, 0),
        ]));
        let err = eval(
            "duration_to_text(v)",
            Field::new("v", DataType::Interval(IntervalUnit::MonthDayNano), true),
            mixed,
        )
        .await
        .expect_err("mixed signs");
        assert!(
            err.contains("duration_to_text(): ") && err.contains("mixes signs"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn unrenderable_types_fail_at_plan_time() {
        let field = Field::new(
            "v",
            DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
            true,
        );
        let values: ArrayRef = Arc::new(
            vec!["a"]
                .into_iter()
                .collect::<arrow::array::DictionaryArray<Int32Type>>(),
        );
        let err = eval("cql_to_json(v)", field, values)
            .await
            .expect_err("dictionary");
        assert!(err.contains("cql_to_json() cannot render"), "{err}");
    }
}
