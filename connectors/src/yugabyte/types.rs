//! Target introspection: what the target table's columns are, from `pg_attribute` and `pg_type`.
//! The encoder writes into these types, not into types guessed from Arrow.

use tokio_postgres::Client;

use crate::error::{ConnectorError, Result};

/// PostgreSQL type OIDs the encoder knows by number (they are fixed in every PostgreSQL and YSQL).
pub mod oid {
    pub const BOOL: u32 = 16;
    pub const BYTEA: u32 = 17;
    pub const NAME: u32 = 19;
    pub const INT8: u32 = 20;
    pub const INT2: u32 = 21;
    pub const INT4: u32 = 23;
    pub const TEXT: u32 = 25;
    pub const JSON: u32 = 114;
    pub const FLOAT4: u32 = 700;
    pub const FLOAT8: u32 = 701;
    pub const INET: u32 = 869;
    pub const BPCHAR: u32 = 1042;
    pub const VARCHAR: u32 = 1043;
    pub const DATE: u32 = 1082;
    pub const TIME: u32 = 1083;
    pub const TIMESTAMP: u32 = 1114;
    pub const TIMESTAMPTZ: u32 = 1184;
    pub const INTERVAL: u32 = 1186;
    pub const NUMERIC: u32 = 1700;
    pub const UUID: u32 = 2950;
    pub const JSONB: u32 = 3802;
}

/// One column of the target table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetColumn {
    pub name: String,
    /// `pg_type.oid`.
    pub type_oid: u32,
    /// `format_type(atttypid, atttypmod)`, e.g. `character varying(20)`, for messages.
    pub type_name: String,
    pub not_null: bool,
    /// Whether the column has a default (so it may be left out of the COPY).
    pub has_default: bool,
}

/// The target table: qualified name and columns in `attnum` order.
#[derive(Debug, Clone)]
pub struct TargetTable {
    pub schema: String,
    pub name: String,
    pub columns: Vec<TargetColumn>,
}

impl TargetTable {
    /// Reads the table's columns; [`ConnectorError::TargetTableNotFound`] when it does not exist.
    pub async fn load(client: &Client, schema: &str, name: &str) -> Result<Self> {
        let qualified = format!("{}.{}", quote_ident(schema), quote_ident(name));
        let rows = client
            .query(
                "SELECT a.attname::text, a.atttypid::oid, format_type(a.atttypid, a.atttypmod), \
                        a.attnotnull, a.atthasdef \
                 FROM pg_attribute a \
                 WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped \
                 ORDER BY a.attnum",
                &[&qualified],
            )
            .await
            .map_err(|source| ConnectorError::Postgres {
                what: format!("introspection of {qualified}"),
                source,
            })?;
        if rows.is_empty() {
            return Err(ConnectorError::TargetTableNotFound(qualified));
        }
        let columns = rows
            .iter()
            .map(|r| TargetColumn {
                name: r.get(0),
                type_oid: r.get(1),
                type_name: r.get(2),
                not_null: r.get(3),
                has_default: r.get(4),
            })
            .collect();
        Ok(Self {
            schema: schema.to_string(),
            name: name.to_string(),
            columns,
        })
    }

    /// `"schema"."name"`, quoted.
    pub fn qualified(&self) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(&self.name))
    }

    /// The column called `name`.
    pub fn column(&self, name: &str) -> Option<&TargetColumn> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// Quotes a SQL identifier (one function for DDL generation and the sink, in `ferry-sql`).
pub use ferry_sql::ddl::quote_ident;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted_and_escaped() {
        assert_eq!(quote_ident("users"), "\"users\"");
        assert_eq!(quote_ident("we\"ird"), "\"we\"\"ird\"");
        assert_eq!(
            quote_ident("Robert'); DROP TABLE x;--"),
            "\"Robert'); DROP TABLE x;--\""
        );
    }
}
