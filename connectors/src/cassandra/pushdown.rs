//! Filter pushdown: what of a query's `WHERE` the scan can answer itself.
//!
//! - `pk = literal` for every partition-key column (in a conjunction): **Exact**; the scan reads
//!   that one partition from the one split owning its token.
//! - `token(pk…) op literal` over the whole partition key, in key order (`>`, `>=`, `<`, `<=`, `=`):
//!   **Exact**; every split's token ranges are cut to the bounds, so splits outside read nothing
//!   and partition k still is split k.
//! - `column op literal` on a clustering or regular column of a type whose CQL order is Arrow's
//!   order: **Inexact**. Sent to Cassandra as `AND column op ? … ALLOW FILTERING` so fewer rows
//!   cross the wire; DataFusion applies the filter again.
//!
//! Literals are bound as values, never spliced into the CQL text.

use datafusion::common::ScalarValue;
use datafusion::logical_expr::{Between, Expr, Operator, TableProviderFilterPushDown};
use ferry_sql::types::{CqlType, NativeType};
use ferry_sql::udf::TOKEN;
use scylla::client::session::Session;
use scylla::value::{CqlDate, CqlTime, CqlTimestamp, CqlTimeuuid, CqlValue};

use super::ring::{MAX_TOKEN, MIN_TOKEN, TokenRange};
use super::session::{ColumnKind, SourceColumn, SourceTable, quote_cql};

/// What a scan does with the filters DataFusion offers it.
#[derive(Debug, Clone, Default)]
pub struct Pushdown {
    /// Set when the filters fix the whole partition key.
    pub lookup: Option<KeyLookup>,
    /// Token bounds `(start, end]` every split's ranges are cut to; `None` when unbounded.
    pub token_bounds: Option<TokenRange>,
    /// Set when the token bounds exclude every token.
    pub empty: bool,
    /// Conditions sent to Cassandra with `ALLOW FILTERING`, re-applied by DataFusion.
    pub conditions: Vec<CqlCondition>,
    /// For each filter offered, how it is handled.
    pub verdicts: Vec<TableProviderFilterPushDown>,
}

/// `column op ?`, with the value bound at execution.
#[derive(Debug, Clone, PartialEq)]
pub struct CqlCondition {
    /// The quoted column name.
    pub column: String,
    pub op: &'static str,
    pub value: CqlValue,
}

impl CqlCondition {
    /// The CQL text, with a bind marker for the value.
    pub fn cql(&self) -> String {
        format!("{} {} ?", self.column, self.op)
    }
}

impl Pushdown {
    /// Decides, filter by filter, what the scan of `source` answers; `filtering` allows the
    /// Inexact `ALLOW FILTERING` conditions.
    pub fn analyze(
        session: &Session,
        source: &SourceTable,
        filters: &[&Expr],
        filtering: bool,
    ) -> Self {
        let mut verdicts = vec![TableProviderFilterPushDown::Unsupported; filters.len()];
        let lookup = key_lookup(session, source, filters);
        for &i in lookup.iter().flat_map(|l| &l.filters) {
            verdicts[i] = TableProviderFilterPushDown::Exact;
        }
        let mut bounds = TokenRange::FULL;
        let mut bounded = false;
        let mut conditions: Vec<CqlCondition> = Vec::new();
        for (i, filter) in filters.iter().enumerate() {
            if verdicts[i] == TableProviderFilterPushDown::Exact {
                continue;
            }
            if let Some(range) = token_bound(source, filter) {
                bounds.start = bounds.start.max(range.start);
                bounds.end = bounds.end.min(range.end);
                bounded = true;
                verdicts[i] = TableProviderFilterPushDown::Exact;
            } else if let Some(condition) =
                filtering_condition(source, filter).filter(|_| filtering)
            {
                verdicts[i] = TableProviderFilterPushDown::Inexact;
                // CQL allows one equality, or one bound each way, per column; anything more
                // stays with DataFusion alone.
                let clashes = conditions.iter().any(|c| {
                    c.column == condition.column
                        && (c.op == "="
                            || condition.op == "="
                            || c.op.as_bytes()[0] == condition.op.as_bytes()[0])
                });
                if !clashes {
                    conditions.push(condition);
                }
            }
        }
        Self {
            lookup,
            empty: bounded && bounds.start >= bounds.end,
            token_bounds: bounded.then_some(bounds),
            conditions,
            verdicts,
        }
    }

    /// `ranges` cut to the token bounds.
    pub fn restrict(&self, ranges: &[TokenRange]) -> Vec<TokenRange> {
        if self.empty {
            return Vec::new();
        }
        let Some(bounds) = self.token_bounds else {
            return ranges.to_vec();
        };
        ranges
            .iter()
            .filter_map(|r| {
                let cut = TokenRange {
                    start: r.start.max(bounds.start),
                    end: r.end.min(bounds.end),
                };
                (cut.start < cut.end).then_some(cut)
            })
            .collect()
    }
}

/// `token(k1, …) op literal` over the whole partition key as a range `(start, end]`.
fn token_bound(source: &SourceTable, filter: &Expr) -> Option<TokenRange> {
    let is_token = |e: &Expr| -> bool {
        let Expr::ScalarFunction(f) = e else {
            return false;
        };
        let key: Vec<&str> = source.partition_key().map(|c| c.name.as_str()).collect();
        f.func.name() == TOKEN
            && f.args.len() == key.len()
            && f.args
                .iter()
                .zip(&key)
                .all(|(a, k)| matches!(a, Expr::Column(c) if c.name == *k))
    };
    let range = |op: Operator, v: i64| -> Option<TokenRange> {
        let (start, end) = match op {
            Operator::Gt => (v, MAX_TOKEN),
            Operator::GtEq => (v.saturating_sub(1), MAX_TOKEN),
            Operator::Lt => (MIN_TOKEN, v.saturating_sub(1)),
            Operator::LtEq => (MIN_TOKEN, v),
            Operator::Eq => (v.saturating_sub(1), v),
            _ => return None,
        };
        Some(TokenRange { start, end })
    };
    match filter {
        Expr::BinaryExpr(b) => {
            let (op, literal) = if is_token(&b.left) {
                (b.op, b.right.as_ref())
            } else if is_token(&b.right) {
                (b.op.swap()?, b.left.as_ref())
            } else {
                return None;
            };
            range(op, as_i64(literal)?)
        }
        Expr::Between(Between {
            expr,
            negated: false,
            low,
            high,
        }) if is_token(expr) => {
            let low = range(Operator::GtEq, as_i64(low)?)?;
            let high = range(Operator::LtEq, as_i64(high)?)?;
            Some(TokenRange {
                start: low.start,
                end: high.end,
            })
        }
        _ => None,
    }
}

fn as_i64(e: &Expr) -> Option<i64> {
    let Expr::Literal(v, _) = e else {
        return None;
    };
    match v {
        ScalarValue::Int64(Some(v)) => Some(*v),
        ScalarValue::Int32(Some(v)) => Some(i64::from(*v)),
        ScalarValue::Int16(Some(v)) => Some(i64::from(*v)),
        ScalarValue::Int8(Some(v)) => Some(i64::from(*v)),
        _ => None,
    }
}

/// `column op literal` that Cassandra evaluates exactly as DataFusion does.
fn filtering_condition(source: &SourceTable, filter: &Expr) -> Option<CqlCondition> {
    let Expr::BinaryExpr(b) = filter else {
        return None;
    };
    let (column, op, literal) = match (b.left.as_ref(), b.right.as_ref()) {
        (Expr::Column(c), Expr::Literal(v, _)) => (c, b.op, v),
        (Expr::Literal(v, _), Expr::Column(c)) => (c, b.op.swap()?, v),
        _ => return None,
    };
    let column = source.columns.iter().find(|c| c.name == column.name)?;
    if !matches!(column.kind, ColumnKind::Clustering | ColumnKind::Regular) {
        return None;
    }
    let op = match op {
        Operator::Eq => "=",
        Operator::Lt => "<",
        Operator::LtEq => "<=",
        Operator::Gt => ">",
        Operator::GtEq => ">=",
        _ => return None,
    };
    let allowed = match comparable(column) {
        Comparable::Order => true,
        Comparable::Equality => op == "=",
        Comparable::No => false,
    };
    if !allowed {
        return None;
    }
    Some(CqlCondition {
        column: quote_cql(&column.name),
        op,
        value: to_cql(&column.cql_type, literal)?,
    })
}

/// Which comparisons Cassandra evaluates on `column` exactly as Arrow does on its decoded values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Comparable {
    No,
    /// `=` only: booleans, uuids, and timeuuids (CQL orders them by time first).
    Equality,
    /// `=`, `<`, `<=`, `>`, `>=`. Not floats (NaN, -0) or varint/decimal/inet (strings in Arrow).
    Order,
}

fn comparable(column: &SourceColumn) -> Comparable {
    use NativeType as N;
    match column.cql_type.unfrozen() {
        CqlType::Native(
            N::TinyInt
            | N::SmallInt
            | N::Int
            | N::BigInt
            | N::Text
            | N::Ascii
            | N::Timestamp
            | N::Date
            | N::Time
            | N::Blob,
        ) => Comparable::Order,
        CqlType::Native(N::Boolean | N::Uuid | N::TimeUuid) => Comparable::Equality,
        _ => Comparable::No,
    }
}

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
fn key_lookup(session: &Session, source: &SourceTable, filters: &[&Expr]) -> Option<KeyLookup> {
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
        (N::TimeUuid, ScalarValue::FixedSizeBinary(16, Some(b))) => {
            CqlValue::Timeuuid(CqlTimeuuid::from(uuid::Uuid::from_slice(b).ok()?))
        }
        (N::Time, ScalarValue::Time64Nanosecond(Some(v))) => CqlValue::Time(CqlTime(*v)),
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

    fn range(start: i64, end: i64) -> TokenRange {
        TokenRange { start, end }
    }

    #[test]
    fn token_bounds_cut_ranges_and_drop_the_ones_outside() {
        let pushdown = Pushdown {
            token_bounds: Some(range(-10, 20)),
            ..Pushdown::default()
        };
        let ranges = [
            range(MIN_TOKEN, -50),
            range(-50, 0),
            range(0, 100),
            range(100, MAX_TOKEN),
        ];
        assert_eq!(
            pushdown.restrict(&ranges),
            vec![range(-10, 0), range(0, 20)]
        );
        // A bound ending exactly on a range start leaves nothing of that range.
        let pushdown = Pushdown {
            token_bounds: Some(range(MIN_TOKEN, 0)),
            ..Pushdown::default()
        };
        assert_eq!(pushdown.restrict(&[range(0, 5)]), vec![]);
        let empty = Pushdown {
            token_bounds: Some(range(5, 5)),
            empty: true,
            ..Pushdown::default()
        };
        assert_eq!(empty.restrict(&ranges), vec![]);
        assert_eq!(Pushdown::default().restrict(&ranges), ranges.to_vec());
    }

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
