//! The column kernels: one column's measure pass (each row's field width, or why the row is
//! rejected) or write pass (each kept row's field, at that row's cursor) over a chunk of rows.
//! Fixed-width values and offset-based strings and binaries have typed loops of their own;
//! everything else goes through [`append`] and a per-column scratch buffer.

use arrow::array::{Array, ArrowPrimitiveType, AsArray, PrimitiveArray};
use arrow::buffer::NullBuffer;
use arrow::datatypes::*;

use super::numeric::{self, Int, NumTo, NumericTarget};
use super::{MAX_FIELD, Node, append, null_at, temporal};

/// One column's side of a chunk: measuring (widths, rejects) or writing into the slots.
pub(super) enum Pass<'a> {
    Measure {
        start: usize,
        len: usize,
        widths: &'a mut [usize],
        rejects: &'a mut Vec<(usize, String)>,
        truncated: &'a mut u64,
    },
    Write {
        start: usize,
        len: usize,
        cursors: &'a mut [usize],
        buf: &'a mut [u8],
        /// `None` when no row of the chunk was rejected.
        rejected: Option<&'a [bool]>,
    },
}

/// Values encoded while measuring, for the write pass to copy: `ends[slot]` is where row
/// `slot`'s bytes end in `buf`.
#[derive(Default)]
pub(super) struct Scratch {
    buf: Vec<u8>,
    ends: Vec<usize>,
}

#[inline]
fn put_field(buf: &mut [u8], cursor: &mut usize, bytes: &[u8]) {
    let at = *cursor;
    buf[at..at + 4].copy_from_slice(&(bytes.len() as i32).to_be_bytes());
    buf[at + 4..at + 4 + bytes.len()].copy_from_slice(bytes);
    *cursor = at + 4 + bytes.len();
}

#[inline]
fn put_null(buf: &mut [u8], cursor: &mut usize) {
    buf[*cursor..*cursor + 4].copy_from_slice(&[0xff; 4]);
    *cursor += 4;
}

/// Runs one column's pass with the kernel for its (node, Arrow type): fixed-width and plain
/// variable-width values directly, everything else through [`append`] and the scratch buffer.
pub(super) fn run(node: &Node, a: &dyn Array, pass: &mut Pass, scratch: &mut Scratch) {
    use DataType as D;
    let nulls = a.nulls();
    match (node, a.data_type()) {
        (Node::Null, _) => fixed::<0>(pass, Some(&NullBuffer::new_null(a.len())), false, |_, _| {
            Ok([])
        }),
        (Node::Bool, D::Boolean) => {
            let b = a.as_boolean();
            fixed::<1>(pass, nulls, false, |i, _| Ok([u8::from(b.value(i))]))
        }
        (Node::Int(to), D::Int8) => ints::<Int8Type>(pass, a, *to),
        (Node::Int(to), D::Int16) => ints::<Int16Type>(pass, a, *to),
        (Node::Int(to), D::Int32) => ints::<Int32Type>(pass, a, *to),
        (Node::Int(to), D::Int64) => ints::<Int64Type>(pass, a, *to),
        (Node::Int(to), D::UInt8) => ints::<UInt8Type>(pass, a, *to),
        (Node::Int(to), D::UInt16) => ints::<UInt16Type>(pass, a, *to),
        (Node::Int(to), D::UInt32) => ints::<UInt32Type>(pass, a, *to),
        (Node::Int(to), D::UInt64) => ints::<UInt64Type>(pass, a, *to),
        (Node::Numeric(t @ NumericTarget { typmod: None, .. }), D::Decimal128(_, scale))
            if *scale >= 0 && *scale <= 36 =>
        {
            decimals(pass, a, *scale, *t)
        }
        (Node::Float(NumTo::Float8), D::Float64) => {
            let v = a.as_primitive::<Float64Type>().values();
            fixed::<8>(pass, nulls, false, |i, _| Ok(v[i].to_be_bytes()))
        }
        (Node::Float(NumTo::Float8), D::Float32) => {
            let v = a.as_primitive::<Float32Type>().values();
            fixed::<8>(pass, nulls, false, |i, _| Ok(f64::from(v[i]).to_be_bytes()))
        }
        (Node::Float(NumTo::Float4), D::Float32) => {
            let v = a.as_primitive::<Float32Type>().values();
            fixed::<4>(pass, nulls, false, |i, _| Ok(v[i].to_be_bytes()))
        }
        (Node::Date, D::Date32) => {
            let v = a.as_primitive::<Date32Type>().values();
            fixed::<4>(pass, nulls, true, |i, _| {
                temporal::date(i64::from(v[i])).map(i32::to_be_bytes)
            })
        }
        (Node::Timestamp { .. }, D::Timestamp(unit, _)) => {
            let unit = *unit;
            let v: &[i64] = match unit {
                TimeUnit::Second => a.as_primitive::<TimestampSecondType>().values(),
                TimeUnit::Millisecond => a.as_primitive::<TimestampMillisecondType>().values(),
                TimeUnit::Microsecond => a.as_primitive::<TimestampMicrosecondType>().values(),
                TimeUnit::Nanosecond => a.as_primitive::<TimestampNanosecondType>().values(),
            };
            fixed::<8>(pass, nulls, true, |i, truncated| {
                let (us, dropped) = temporal::to_us(v[i], unit, true)
                    .ok_or("timestamp outside PostgreSQL's range (4713 BC to 294276 AD)")?;
                *truncated += u64::from(dropped);
                temporal::timestamp(us).map(i64::to_be_bytes)
            })
        }
        (Node::Uuid, D::FixedSizeBinary(16)) => {
            let v = a.as_fixed_size_binary();
            fixed::<16>(pass, nulls, false, |i, _| {
                Ok(v.value(i).try_into().unwrap_or([0; 16]))
            })
        }
        (Node::Text { max_chars: None }, D::Utf8) => {
            let s = a.as_string::<i32>();
            offsets_var(pass, nulls, true, s.value_offsets(), s.values())
        }
        (Node::Text { max_chars: None }, D::LargeUtf8) => {
            let s = a.as_string::<i64>();
            offsets_var(pass, nulls, true, s.value_offsets(), s.values())
        }
        (Node::Text { max_chars: None }, D::Utf8View) => {
            let s = a.as_string_view();
            var(pass, nulls, true, |i| s.value(i).as_bytes())
        }
        (Node::Bytea, D::Binary) => {
            let s = a.as_binary::<i32>();
            offsets_var(pass, nulls, false, s.value_offsets(), s.values())
        }
        (Node::Bytea, D::LargeBinary) => {
            let s = a.as_binary::<i64>();
            offsets_var(pass, nulls, false, s.value_offsets(), s.values())
        }
        (Node::Bytea, D::BinaryView) => {
            let s = a.as_binary_view();
            var(pass, nulls, false, |i| s.value(i))
        }
        _ => staged(node, a, pass, scratch),
    }
}

fn ints<T>(pass: &mut Pass, a: &dyn Array, to: NumTo)
where
    T: ArrowPrimitiveType,
    T::Native: Int,
{
    let arr: &PrimitiveArray<T> = a.as_primitive::<T>();
    let v = arr.values();
    let nulls = a.nulls();
    // Widening into a wider integer, or into a float whose mantissa holds every value, cannot
    // fail: the measure pass then skips the values.
    let src = std::mem::size_of::<T::Native>();
    let signed = T::DATA_TYPE.is_signed_integer();
    let check = !match to {
        NumTo::Float4 => src <= 2,
        NumTo::Float8 => src <= 4,
        _ => src < to.width() || (src == to.width() && signed),
    };
    macro_rules! go {
        ($w:literal) => {
            fixed::<$w>(pass, nulls, check, |i, _| {
                let mut b = [0u8; 8];
                numeric::int_bytes(v[i].wide(), to, &mut b)?;
                let mut out = [0u8; $w];
                out.copy_from_slice(&b[..$w]);
                Ok(out)
            })
        };
    }
    if check {
        return match to.width() {
            2 => go!(2),
            4 => go!(4),
            _ => go!(8),
        };
    }
    // Cannot fail: plain conversions, no range checks in the loop.
    match to {
        NumTo::Int2 => fixed::<2>(pass, nulls, false, |i, _| {
            Ok((v[i].wide() as i16).to_be_bytes())
        }),
        NumTo::Int4 => fixed::<4>(pass, nulls, false, |i, _| {
            Ok((v[i].wide() as i32).to_be_bytes())
        }),
        NumTo::Int8 => fixed::<8>(pass, nulls, false, |i, _| {
            Ok((v[i].wide() as i64).to_be_bytes())
        }),
        NumTo::Float4 => fixed::<4>(pass, nulls, false, |i, _| {
            Ok((v[i].wide() as f32).to_be_bytes())
        }),
        NumTo::Float8 => fixed::<8>(pass, nulls, false, |i, _| {
            Ok((v[i].wide() as f64).to_be_bytes())
        }),
    }
}

/// Decimal128 into an unconstrained numeric, measured and written without the scratch buffer.
fn decimals(pass: &mut Pass, a: &dyn Array, scale: i8, t: NumericTarget) {
    let v = a.as_primitive::<Decimal128Type>().values();
    let nulls = a.nulls();
    match pass {
        Pass::Measure {
            start, len, widths, ..
        } => {
            for slot in 0..*len {
                let i = *start + slot;
                widths[slot] += 4 + if nulls.is_some_and(|n| n.is_null(i)) {
                    0
                } else {
                    numeric::decimal128_width(v[i], scale)
                };
            }
        }
        Pass::Write {
            start,
            len,
            cursors,
            buf,
            rejected,
        } => {
            for slot in 0..*len {
                if rejected.is_some_and(|r| r[slot]) {
                    continue;
                }
                let i = *start + slot;
                if nulls.is_some_and(|n| n.is_null(i)) {
                    put_null(buf, &mut cursors[slot]);
                } else {
                    let at = cursors[slot];
                    let n = numeric::write_decimal128(&mut buf[at + 4..], v[i], scale, t);
                    buf[at..at + 4].copy_from_slice(&(n as i32).to_be_bytes());
                    cursors[slot] = at + 4 + n;
                }
            }
        }
    }
}

/// A fixed-width kernel: `value(i)` is the value's bytes, or why the row is rejected.
/// `fallible` false lets the measure pass skip computing values.
#[inline]
fn fixed<const W: usize>(
    pass: &mut Pass,
    nulls: Option<&NullBuffer>,
    fallible: bool,
    value: impl Fn(usize, &mut u64) -> std::result::Result<[u8; W], String>,
) {
    match pass {
        Pass::Measure {
            start,
            len,
            widths,
            rejects,
            truncated,
        } => {
            if !fallible {
                add_widths(widths, nulls, *start, W);
                return;
            }
            for slot in 0..*len {
                let i = *start + slot;
                if nulls.is_some_and(|n| n.is_null(i)) {
                    widths[slot] += 4;
                } else {
                    match value(i, truncated) {
                        Ok(_) => widths[slot] += 4 + W,
                        Err(reason) => rejects.push((slot, reason)),
                    }
                }
            }
        }
        Pass::Write {
            start,
            len,
            cursors,
            buf,
            rejected,
        } => {
            let mut ignored = 0;
            let len_prefix = (W as i32).to_be_bytes();
            if rejected.is_none() && nulls.is_none() {
                // The common case, with nothing to skip: every slot gets a value.
                for (slot, cursor) in cursors.iter_mut().enumerate() {
                    let bytes = value(*start + slot, &mut ignored).unwrap_or([0; W]);
                    let at = *cursor;
                    let field = &mut buf[at..at + 4 + W];
                    field[..4].copy_from_slice(&len_prefix);
                    field[4..].copy_from_slice(&bytes);
                    *cursor = at + 4 + W;
                }
                return;
            }
            for slot in 0..*len {
                if rejected.is_some_and(|r| r[slot]) {
                    continue;
                }
                let i = *start + slot;
                let at = cursors[slot];
                if nulls.is_some_and(|n| n.is_null(i)) {
                    buf[at..at + 4].copy_from_slice(&[0xff; 4]);
                    cursors[slot] = at + 4;
                } else {
                    let bytes = value(i, &mut ignored).unwrap_or([0; W]);
                    let field = &mut buf[at..at + 4 + W];
                    field[..4].copy_from_slice(&(W as i32).to_be_bytes());
                    field[4..].copy_from_slice(&bytes);
                    cursors[slot] = at + 4 + W;
                }
            }
        }
    }
}

/// Adds each row's field width to `widths` for a value of `w` bytes, or 4 for a NULL.
#[inline]
fn add_widths(widths: &mut [usize], nulls: Option<&NullBuffer>, start: usize, w: usize) {
    match nulls {
        None => widths.iter_mut().for_each(|x| *x += 4 + w),
        Some(n) => {
            for (slot, x) in widths.iter_mut().enumerate() {
                *x += 4 + if n.is_valid(start + slot) { w } else { 0 };
            }
        }
    }
}

/// The variable-width kernel for offset-based strings and binaries: widths come from the
/// offsets, and a text chunk's bytes are searched for NUL in one go.
#[inline]
fn offsets_var<O: arrow::array::OffsetSizeTrait>(
    pass: &mut Pass,
    nulls: Option<&NullBuffer>,
    is_text: bool,
    offsets: &[O],
    values: &[u8],
) {
    match pass {
        Pass::Measure {
            start,
            len,
            widths,
            rejects,
            ..
        } => {
            let offs = &offsets[*start..=*start + *len];
            let (lo, hi) = (offs[0].as_usize(), offs[*len].as_usize());
            let suspect = (is_text && values[lo..hi].contains(&0)) || hi - lo > MAX_FIELD;
            // The common case, branch-free: every width from the offsets.
            let valid = |slot: usize| nulls.is_none_or(|n| n.is_valid(*start + slot));
            for (slot, (w, o)) in widths.iter_mut().zip(offs.windows(2)).enumerate() {
                *w += 4 + if valid(slot) {
                    (o[1] - o[0]).as_usize()
                } else {
                    0
                };
            }
            if suspect {
                // Some value is too large or holds a NUL: find which.
                for (slot, o) in offs.windows(2).enumerate() {
                    let v = &values[o[0].as_usize()..o[1].as_usize()];
                    if !valid(slot) {
                        continue;
                    }
                    if v.len() > MAX_FIELD {
                        rejects.push((
                            slot,
                            "value larger than PostgreSQL's 1 GB field limit".into(),
                        ));
                    } else if is_text && v.contains(&0) {
                        rejects.push((
                            slot,
                            "text contains a NUL byte, which PostgreSQL cannot store".into(),
                        ));
                    }
                }
            }
        }
        Pass::Write {
            start,
            len,
            cursors,
            buf,
            rejected,
        } => {
            let offs = &offsets[*start..=*start + *len];
            for (slot, (cursor, o)) in cursors.iter_mut().zip(offs.windows(2)).enumerate() {
                if rejected.is_some_and(|r| r[slot]) {
                    continue;
                }
                if nulls.is_some_and(|n| n.is_null(*start + slot)) {
                    put_null(buf, cursor);
                } else {
                    put_field(buf, cursor, &values[o[0].as_usize()..o[1].as_usize()]);
                }
            }
        }
    }
}

/// A variable-width kernel for bytes copied as they are (text: NUL-checked).
#[inline]
fn var<'v>(
    pass: &mut Pass,
    nulls: Option<&NullBuffer>,
    is_text: bool,
    value: impl Fn(usize) -> &'v [u8],
) {
    match pass {
        Pass::Measure {
            start,
            len,
            widths,
            rejects,
            ..
        } => {
            for slot in 0..*len {
                let i = *start + slot;
                if nulls.is_some_and(|n| n.is_null(i)) {
                    widths[slot] += 4;
                    continue;
                }
                let v = value(i);
                if v.len() > MAX_FIELD {
                    rejects.push((
                        slot,
                        "value larger than PostgreSQL's 1 GB field limit".into(),
                    ));
                } else if is_text && v.contains(&0) {
                    rejects.push((
                        slot,
                        "text contains a NUL byte, which PostgreSQL cannot store".into(),
                    ));
                } else {
                    widths[slot] += 4 + v.len();
                }
            }
        }
        Pass::Write {
            start,
            len,
            cursors,
            buf,
            rejected,
        } => {
            for slot in 0..*len {
                if rejected.is_some_and(|r| r[slot]) {
                    continue;
                }
                let i = *start + slot;
                if nulls.is_some_and(|n| n.is_null(i)) {
                    put_null(buf, &mut cursors[slot]);
                } else {
                    put_field(buf, &mut cursors[slot], value(i));
                }
            }
        }
    }
}

/// The general kernel: [`append`] into the scratch buffer while measuring, copy while writing.
fn staged(node: &Node, a: &dyn Array, pass: &mut Pass, scratch: &mut Scratch) {
    match pass {
        Pass::Measure {
            start,
            len,
            widths,
            rejects,
            truncated,
        } => {
            scratch.ends.reserve(*len);
            for slot in 0..*len {
                let i = *start + slot;
                if !null_at(a, i) {
                    let before = scratch.buf.len();
                    match append(node, a, i, &mut scratch.buf, truncated) {
                        Ok(()) if scratch.buf.len() - before <= MAX_FIELD => {
                            widths[slot] += 4 + scratch.buf.len() - before;
                        }
                        Ok(()) => {
                            scratch.buf.truncate(before);
                            rejects.push((
                                slot,
                                "value larger than PostgreSQL's 1 GB field limit".into(),
                            ));
                        }
                        Err(reason) => {
                            scratch.buf.truncate(before);
                            rejects.push((slot, reason));
                        }
                    }
                } else {
                    widths[slot] += 4;
                }
                scratch.ends.push(scratch.buf.len());
            }
        }
        Pass::Write {
            start,
            len,
            cursors,
            buf,
            rejected,
        } => {
            for slot in 0..*len {
                if rejected.is_some_and(|r| r[slot]) {
                    continue;
                }
                let from = if slot == 0 { 0 } else { scratch.ends[slot - 1] };
                if null_at(a, *start + slot) {
                    put_null(buf, &mut cursors[slot]);
                } else {
                    put_field(
                        buf,
                        &mut cursors[slot],
                        &scratch.buf[from..scratch.ends[slot]],
                    );
                }
            }
        }
    }
}
