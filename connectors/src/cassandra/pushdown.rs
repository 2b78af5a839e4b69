//! Filter pushdown: a query that fixes the whole partition key reads one partition from the one
//! split that owns its token, instead of scanning every split.
//!
//! `pk = literal` for every partition-key column (in a conjunction) is pushed as Exact. Other
//! filters are left to DataFusion.

use datafusion::common::ScalarValue;
use datafusion::logical_expr::{Expr, Operator};
use ferry_sql::types::{CqlType, NativeType};
use scylla::client::session::Session;
use scylla::value::{CqlDate, CqlTimestamp, CqlValue};

use super::session::SourceTable;

/// One partition to read: its key values (in key order) and its token.
#[derive(Debug, Clone)]
pub struct KeyLookup {
    pub values: Vec<CqlValue>,
    pub token: i64,
    /// Indexes of the filters this lookup answers exactly.
    pub filters: Vec<usize>,
}

/// The partition-key lookup `filters` pin down, when they fix every partition-key column to a
/// literal Ferry can bind, and the driver can compute its token.
pub fn key_lookup(session: &Session, source: &SourceTable, filters: &[&Expr]) -> Option<KeyLookup> {
    let key: Vec<_> = source.partition_key().collect();
    let mut values: Vec<Option<CqlValue>> = vec![None; key.len()];
    let mut used = Vec::new();
    for (i, filter) in filters.iter().enumerate() {
        let Expr::BinaryExpr(b) = filter else {
            continue;
        };
        if b.op != Operator::Eq {
            continue;
        }
        let (column, literal) = match (b.left.as_ref(), b.right.as_ref()) {
            (Expr::Column(c), Expr::Literal(v, _)) | (Expr::Literal(v, _), Expr::Column(c)) => {
                (c, v)
            }
            _ => continue,
        };
        let Some(k) = key.iter().position(|c| c.name == column.name) else {
            continue;
        };
        if let Some(value) = to_cql(&key[k].cql_type, literal) {
            values[k] = Some(value);
            used.push(i);
        }
    }
    let values: Vec<CqlValue> = values.into_iter().collect::<Option<_>>()?;
    let token = session
        .get_cluster_state()
        .compute_token(&source.keyspace, &source.table, &values)
        .ok()?
        .value();
    Some(KeyLookup {
        values,
        token,
        filters: used,
    })
}

/// A DataFusion literal as the CQL value of a column of type `ty`, when it is exactly that type.
fn to_cql(ty: &CqlType, value: &ScalarValue) -> Option<CqlValue> {
    use NativeType as N;
    let CqlType::Native(native) = ty.unfrozen() else {
        return None;
    };
    Some(match (native, value) {
        (N::TinyInt, ScalarValue::Int8(Some(v))) => CqlValue::TinyInt(*v),
        (N::SmallInt, ScalarValue::Int16(Some(v))) => CqlValue::SmallInt(*v),
        (N::Int, ScalarValue::Int32(Some(v))) => CqlValue::Int(*v),
        (N::BigInt, ScalarValue::Int64(Some(v))) => CqlValue::BigInt(*v),
        (N::Boolean, ScalarValue::Boolean(Some(v))) => CqlValue::Boolean(*v),
        (N::Float, ScalarValue::Float32(Some(v))) => CqlValue::Float(*v),
        (N::Double, ScalarValue::Float64(Some(v))) => CqlValue::Double(*v),
        (N::Text, ScalarValue::Utf8(Some(v)) | ScalarValue::Utf8View(Some(v))) => {
            CqlValue::Text(v.clone())
        }
        (N::Ascii, ScalarValue::Utf8(Some(v)) | ScalarValue::Utf8View(Some(v))) if v.is_ascii() => {
            CqlValue::Ascii(v.clone())
        }
        (N::Uuid, ScalarValue::FixedSizeBinary(16, Some(b))) => {
            CqlValue::Uuid(uuid::Uuid::from_slice(b).ok()?)
        }
        (N::Timestamp, ScalarValue::TimestampMillisecond(Some(v), _)) => {
            CqlValue::Timestamp(CqlTimestamp(*v))
        }
        (N::Date, ScalarValue::Date32(Some(d))) => {
            CqlValue::Date(CqlDate((i64::from(*d) + (1i64 << 31)) as u32))
        }
        (N::Blob, ScalarValue::Binary(Some(b))) => CqlValue::Blob(b.clone()),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_bind_only_to_their_exact_type() {
        let int = CqlType::Native(NativeType::Int);
        assert_eq!(
            to_cql(&int, &ScalarValue::Int32(Some(5))),
            Some(CqlValue::Int(5))
        );
        assert_eq!(to_cql(&int, &ScalarValue::Int64(Some(5))), None);
        assert_eq!(to_cql(&int, &ScalarValue::Int32(None)), None);
        let date = CqlType::Native(NativeType::Date);
        assert_eq!(
            to_cql(&date, &ScalarValue::Date32(Some(0))),
            Some(CqlValue::Date(CqlDate(1 << 31)))
        );
    }
}
