//! Arrays and composites.
//!
//! ```text
//! array     = ndim:i32 has_null:i32 elem_oid:u32 (size:i32 lower_bound:i32=1)[ndim]
//!             ( len:i32 bytes | -1:i32 )[Π sizes]          (row-major; ndim 0 = empty array)
//! composite = ncols:i32 ( attr_oid:u32 ( len:i32 bytes | -1:i32 ) )[ncols]
//! ```
//!
//! Nested lists become dimensions of one array when every sub-list at a level has the same
//! length (PostgreSQL arrays are rectangular); otherwise the row is rejected.

use std::ops::Range;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Float16Type, Float32Type, Float64Type};

use super::{MAX_DIMS, Node, append, null_at};

/// The child values and the range of list `i` (List, LargeList, FixedSizeList).
pub(super) fn list_range(a: &dyn Array, i: usize) -> Option<(&dyn Array, Range<usize>)> {
    Some(match a.data_type() {
        DataType::List(_) => {
            let l = a.as_list::<i32>();
            let o = l.value_offsets();
            (l.values().as_ref(), o[i] as usize..o[i + 1] as usize)
        }
        DataType::LargeList(_) => {
            let l = a.as_list::<i64>();
            let o = l.value_offsets();
            (l.values().as_ref(), o[i] as usize..o[i + 1] as usize)
        }
        DataType::FixedSizeList(_, n) => {
            let n = *n as usize;
            (a.as_fixed_size_list().values().as_ref(), i * n..(i + 1) * n)
        }
        _ => return None,
    })
}

/// Finds the size of every dimension below `level`, checking the lists are rectangular.
fn shape(
    values: &dyn Array,
    range: Range<usize>,
    level: usize,
    dims: usize,
    sizes: &mut [i32; MAX_DIMS],
) -> Result<(), String> {
    if level + 1 == dims {
        return Ok(());
    }
    for k in range {
        if null_at(values, k) {
            return Err("a NULL sub-list: a PostgreSQL array must be rectangular".into());
        }
        let (inner, r) = list_range(values, k).ok_or("not a list")?;
        let n = i32::try_from(r.len()).map_err(|_| "list too long")?;
        if sizes[level + 1] < 0 {
            sizes[level + 1] = n;
        } else if sizes[level + 1] != n {
            return Err(format!(
                "sub-lists of lengths {} and {n}: a PostgreSQL array must be rectangular",
                sizes[level + 1]
            ));
        }
        shape(inner, r, level + 1, dims, sizes)?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn elements(
    values: &dyn Array,
    range: Range<usize>,
    level: usize,
    dims: usize,
    elem: &Node,
    out: &mut Vec<u8>,
    has_null: &mut bool,
    truncated: &mut u64,
) -> Result<(), String> {
    for k in range {
        if level + 1 < dims {
            let (inner, r) = list_range(values, k).ok_or("not a list")?;
            elements(inner, r, level + 1, dims, elem, out, has_null, truncated)?;
        } else if null_at(values, k) {
            *has_null = true;
            out.extend_from_slice(&(-1i32).to_be_bytes());
        } else {
            put_with_length(out, |out| append(elem, values, k, out, truncated))?;
        }
    }
    Ok(())
}

/// Writes a length placeholder, the value, then the length.
fn put_with_length(
    out: &mut Vec<u8>,
    value: impl FnOnce(&mut Vec<u8>) -> Result<(), String>,
) -> Result<(), String> {
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    value(out)?;
    let len = i32::try_from(out.len() - at - 4).map_err(|_| "element larger than 2 GB")?;
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

/// List `i` of `a` as an array of `elem_oid` with `dims` dimensions.
pub(super) fn put_array(
    elem_oid: u32,
    dims: usize,
    elem: &Node,
    a: &dyn Array,
    i: usize,
    out: &mut Vec<u8>,
    truncated: &mut u64,
) -> Result<(), String> {
    let (values, range) = list_range(a, i).ok_or("not a list")?;
    let mut sizes = [-1i32; MAX_DIMS];
    sizes[0] = i32::try_from(range.len()).map_err(|_| "list too long")?;
    shape(values, range.clone(), 0, dims, &mut sizes)?;
    let sizes = &mut sizes[..dims];
    if sizes.iter().any(|&n| n <= 0) {
        out.extend_from_slice(&0i32.to_be_bytes());
        out.extend_from_slice(&0i32.to_be_bytes());
        out.extend_from_slice(&elem_oid.to_be_bytes());
        return Ok(());
    }
    out.extend_from_slice(&(dims as i32).to_be_bytes());
    let flags_at = out.len();
    out.extend_from_slice(&0i32.to_be_bytes());
    out.extend_from_slice(&elem_oid.to_be_bytes());
    for n in sizes.iter() {
        out.extend_from_slice(&n.to_be_bytes());
        out.extend_from_slice(&1i32.to_be_bytes());
    }
    let mut has_null = false;
    elements(values, range, 0, dims, elem, out, &mut has_null, truncated)?;
    if has_null {
        out[flags_at + 3] = 1;
    }
    Ok(())
}

/// pgvector's limit on a vector's dimensions.
const VECTOR_MAX_DIMS: usize = 16_000;

/// List `i` of `a` (of floats) as a pgvector `vector`: int16 dimensions, int16 zero, then each
/// element as float4. pgvector refuses NULL, NaN and infinite elements, and a dimension count
/// other than the column's; those are this row's reject reasons instead.
pub(super) fn put_vector(
    dims: Option<usize>,
    a: &dyn Array,
    i: usize,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let (values, range) = list_range(a, i).ok_or("not a list")?;
    let n = range.len();
    if n == 0 || n > VECTOR_MAX_DIMS {
        return Err(format!(
            "a vector of {n} dimensions (pgvector takes 1 to {VECTOR_MAX_DIMS})"
        ));
    }
    if let Some(d) = dims
        && d != n
    {
        return Err(format!("a vector of {n} dimensions into vector({d})"));
    }
    out.extend_from_slice(&(n as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    for j in range {
        if values.is_null(j) {
            return Err(format!(
                "element {} is NULL (a vector has no NULL elements)",
                j + 1
            ));
        }
        let x = match values.data_type() {
            DataType::Float32 => values.as_primitive::<Float32Type>().value(j),
            DataType::Float16 => values.as_primitive::<Float16Type>().value(j).to_f32(),
            DataType::Float64 => {
                let v = values.as_primitive::<Float64Type>().value(j);
                let x = v as f32;
                if f64::from(x) != v && v.is_finite() {
                    return Err(format!("element {v} has no exact float4 value"));
                }
                x
            }
            other => return Err(format!("{other} elements")),
        };
        if !x.is_finite() {
            return Err(format!("element {x} (pgvector stores finite values only)"));
        }
        out.extend_from_slice(&x.to_be_bytes());
    }
    Ok(())
}

/// Struct value `i` of `a` as a composite.
pub(super) fn put_record(
    fields: &[(u32, usize, Node)],
    a: &dyn Array,
    i: usize,
    out: &mut Vec<u8>,
    truncated: &mut u64,
) -> Result<(), String> {
    let s = a.as_struct();
    out.extend_from_slice(&(fields.len() as i32).to_be_bytes());
    for (attr_oid, child, node) in fields {
        out.extend_from_slice(&attr_oid.to_be_bytes());
        let column = s.column(*child).as_ref();
        if null_at(column, i) {
            out.extend_from_slice(&(-1i32).to_be_bytes());
        } else {
            put_with_length(out, |out| append(node, column, i, out, truncated))?;
        }
    }
    Ok(())
}
