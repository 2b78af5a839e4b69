//! `--where`: a predicate over the transform's output columns, applied to both sides.
//!
//! It is user SQL, so it is parsed (sqlparser, as DataFusion does) and only a small subset is
//! accepted: column names, literals, comparisons, `AND`/`OR`/`NOT`, arithmetic, `IS [NOT] NULL`,
//! `[NOT] IN (…)`, `[NOT] BETWEEN`, `[NOT] LIKE`. The source side gives the text to DataFusion;
//! the target side gets SQL rendered again from the parsed tree, identifiers quoted and literals
//! escaped, never the user's text. Text columns compare under `COLLATE "C"` on the target, which
//! is DataFusion's byte order.

use datafusion::sql::sqlparser::ast::{BinaryOperator, Expr, Ident, UnaryOperator, Value};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::Token;
use ferry_connectors::yugabyte::types::oid;
use ferry_connectors::yugabyte::{TargetTable, quote_ident};

/// A checked `--where` predicate.
#[derive(Debug, Clone)]
pub struct RowFilter {
    /// The user's text, for DataFusion on the source side.
    pub sql: String,
    /// The predicate rendered for the target.
    pub target_sql: String,
}

impl RowFilter {
    /// Parses `sql` and checks it against the output `columns` (which are the target's columns of
    /// the same names in `target`).
    pub fn parse(sql: &str, columns: &[String], target: &TargetTable) -> Result<Self, String> {
        let mut parser = Parser::new(&GenericDialect {})
            .try_with_sql(sql)
            .map_err(|e| format!("--where: {e}"))?;
        let expr = parser.parse_expr().map_err(|e| format!("--where: {e}"))?;
        if parser.peek_token().token != Token::EOF {
            return Err(format!(
                "--where must be one boolean expression; unexpected {} after it",
                parser.peek_token().token
            ));
        }
        let mut out = String::new();
        Render { columns, target }.expr(&expr, &mut out)?;
        Ok(Self {
            sql: sql.to_string(),
            target_sql: out,
        })
    }
}

struct Render<'a> {
    columns: &'a [String],
    target: &'a TargetTable,
}

impl Render<'_> {
    fn column(&self, ident: &Ident, out: &mut String) -> Result<(), String> {
        // Unquoted names fold to lower case, in DataFusion as in PostgreSQL.
        let name = match ident.quote_style {
            Some(_) => ident.value.clone(),
            None => ident.value.to_lowercase(),
        };
        if !self.columns.contains(&name) {
            return Err(format!(
                "--where: {name:?} is not an output column of the transform (columns: {})",
                self.columns.join(", ")
            ));
        }
        out.push_str(&quote_ident(&name));
        let text = self.target.column(&name).is_some_and(|c| {
            matches!(
                c.ty.base_oid,
                oid::TEXT | oid::VARCHAR | oid::BPCHAR | oid::NAME
            )
        });
        if text {
            out.push_str(" COLLATE \"C\"");
        }
        Ok(())
    }

    fn expr(&self, e: &Expr, out: &mut String) -> Result<(), String> {
        match e {
            Expr::Identifier(ident) => self.column(ident, out)?,
            Expr::Value(v) => match &v.value {
                Value::Number(n, _) => {
                    if !n
                        .chars()
                        .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'))
                    {
                        return Err(format!("--where: {n:?} is not a number"));
                    }
                    out.push_str(n);
                }
                Value::SingleQuotedString(s) => {
                    out.push('\'');
                    out.push_str(&s.replace('\'', "''"));
                    out.push('\'');
                }
                Value::Boolean(b) => out.push_str(if *b { "TRUE" } else { "FALSE" }),
                Value::Null => out.push_str("NULL"),
                other => return Err(format!("--where: literal {other} is not supported")),
            },
            Expr::Nested(inner) => {
                out.push('(');
                self.expr(inner, out)?;
                out.push(')');
            }
            Expr::BinaryOp { left, op, right } => {
                let op = match op {
                    BinaryOperator::And => "AND",
                    BinaryOperator::Or => "OR",
                    BinaryOperator::Eq => "=",
                    BinaryOperator::NotEq => "<>",
                    BinaryOperator::Lt => "<",
                    BinaryOperator::LtEq => "<=",
                    BinaryOperator::Gt => ">",
                    BinaryOperator::GtEq => ">=",
                    BinaryOperator::Plus => "+",
                    BinaryOperator::Minus => "-",
                    BinaryOperator::Multiply => "*",
                    BinaryOperator::Divide => "/",
                    BinaryOperator::Modulo => "%",
                    other => return Err(format!("--where: operator {other} is not supported")),
                };
                out.push('(');
                self.expr(left, out)?;
                out.push_str(&format!(" {op} "));
                self.expr(right, out)?;
                out.push(')');
            }
            Expr::UnaryOp { op, expr } => {
                let op = match op {
                    UnaryOperator::Not => "NOT ",
                    UnaryOperator::Minus => "-",
                    UnaryOperator::Plus => "+",
                    other => return Err(format!("--where: operator {other} is not supported")),
                };
                out.push('(');
                out.push_str(op);
                self.expr(expr, out)?;
                out.push(')');
            }
            Expr::IsNull(inner) | Expr::IsNotNull(inner) => {
                out.push('(');
                self.expr(inner, out)?;
                out.push_str(if matches!(e, Expr::IsNull(_)) {
                    " IS NULL)"
                } else {
                    " IS NOT NULL)"
                });
            }
            Expr::IsTrue(inner) | Expr::IsFalse(inner) => {
                out.push('(');
                self.expr(inner, out)?;
                out.push_str(if matches!(e, Expr::IsTrue(_)) {
                    " IS TRUE)"
                } else {
                    " IS FALSE)"
                });
            }
            Expr::InList {
                expr,
                list,
                negated,
            } => {
                out.push('(');
                self.expr(expr, out)?;
                out.push_str(if *negated { " NOT IN (" } else { " IN (" });
                for (i, item) in list.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    self.expr(item, out)?;
                }
                out.push_str("))");
            }
            Expr::Between {
                expr,
                negated,
                low,
                high,
            } => {
                out.push('(');
                self.expr(expr, out)?;
                out.push_str(if *negated {
                    " NOT BETWEEN "
                } else {
                    " BETWEEN "
                });
                self.expr(low, out)?;
                out.push_str(" AND ");
                self.expr(high, out)?;
                out.push(')');
            }
            Expr::Like {
                negated,
                any: false,
                expr,
                pattern,
                escape_char: None,
            } => {
                out.push('(');
                self.expr(expr, out)?;
                out.push_str(if *negated { " NOT LIKE " } else { " LIKE " });
                self.expr(pattern, out)?;
                out.push(')');
            }
            other => {
                return Err(format!(
                    "--where: {other} is not supported (use column names, literals, comparisons, \
                     AND/OR/NOT, IS NULL, IN, BETWEEN, LIKE)"
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_connectors::yugabyte::{PgType, TargetColumn};

    fn target() -> TargetTable {
        let col = |name: &str, oid: u32| TargetColumn {
            name: name.into(),
            ty: PgType::scalar(oid, "t"),
            not_null: false,
            has_default: false,
        };
        TargetTable {
            schema: "public".into(),
            name: "t".into(),
            columns: vec![col("id", oid::INT4), col("kind", oid::TEXT)],
            server_version: 150000,
        }
    }

    fn render(sql: &str) -> Result<String, String> {
        let columns = vec!["id".to_string(), "kind".to_string()];
        RowFilter::parse(sql, &columns, &target()).map(|f| f.target_sql)
    }

    #[test]
    fn predicates_are_rendered_again_quoted() {
        assert_eq!(
            render("ID > 5 AND kind IN ('a', 'b''c')").as_deref(),
            Ok("((\"id\" > 5) AND (\"kind\" COLLATE \"C\" IN ('a', 'b''c')))")
        );
        assert_eq!(
            render("NOT (kind IS NULL) OR id BETWEEN 1 AND 2").as_deref(),
            Ok("((NOT ((\"kind\" COLLATE \"C\" IS NULL))) OR (\"id\" BETWEEN 1 AND 2))")
        );
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            "id > 1; DROP TABLE t",
            "id > (SELECT 1)",
            "pg_sleep(10) IS NULL",
            "nope = 1",
            "id = 1 -- x\n OR true) OR (true",
            "CAST(id AS text) = '1'",
        ] {
            assert!(render(bad).is_err(), "{bad} was accepted");
        }
    }
}
