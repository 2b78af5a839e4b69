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
    pub const CIDR: u32 = 650;
    pub const INET: u32 = 869;
    pub const BPCHAR: u32 = 1042;
    pub const VARCHAR: u32 = 1043;
    pub const DATE: u32 = 1082;
    pub const TIME: u32 = 1083;
    pub const TIMESTAMP: u32 = 1114;
    pub const TIMESTAMPTZ: u32 = 1184;
    pub const TIMETZ: u32 = 1266;
    pub const INTERVAL: u32 = 1186;
    pub const NUMERIC: u32 = 1700;
    pub const UUID: u32 = 2950;
    pub const JSONB: u32 = 3802;
}

/// A target type as the encoder needs it: what to write, and what OIDs to put in nested headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgType {
    /// `pg_type.oid` as declared (a domain's own OID; arrays and composites carry this one).
    pub oid: u32,
    /// The OID whose binary format is written: `oid`, or a domain's base type.
    pub base_oid: u32,
    /// `atttypmod` (or the domain's `typtypmod`): `varchar(n)`, `numeric(p, s)`; -1 when none.
    pub typmod: i32,
    /// `format_type(oid, typmod)`, e.g. `character varying(20)`, for messages.
    pub name: String,
    pub shape: PgShape,
}

/// Whether a type is a scalar, an array of an element type, or a composite of attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PgShape {
    Scalar,
    /// An array type; the element is `pg_type.typelem`.
    Array(Box<PgType>),
    /// A composite type's attributes (`pg_attribute` of `typrelid`), in `attnum` order.
    Composite(Vec<(String, PgType)>),
}

impl PgType {
    /// A scalar type with no typmod (for tests and built-in targets).
    pub fn scalar(oid: u32, name: &str) -> Self {
        Self {
            oid,
            base_oid: oid,
            typmod: -1,
            name: name.to_string(),
            shape: PgShape::Scalar,
        }
    }

    /// An array of `elem`, whose own OID is `oid`.
    pub fn array(oid: u32, elem: PgType) -> Self {
        Self {
            oid,
            base_oid: oid,
            typmod: -1,
            name: format!("{}[]", elem.name),
            shape: PgShape::Array(Box::new(elem)),
        }
    }

    /// Reads `oid` from `pg_type`, following domains to their base and arrays and composites into
    /// their parts.
    pub async fn load(client: &Client, oid: u32, typmod: i32) -> Result<Self> {
        Box::pin(Self::load_depth(client, oid, typmod, 0)).await
    }

    async fn load_depth(client: &Client, oid: u32, typmod: i32, depth: usize) -> Result<Self> {
        let err = |source| ConnectorError::Postgres {
            what: format!("introspection of type {oid}"),
            source,
        };
        let row = client
            .query_one(
                "SELECT t.typtype::text, t.typcategory::text, t.typelem::oid, t.typrelid::oid, \
                        t.typbasetype::oid, t.typtypmod, format_type(t.oid, $2) \
                 FROM pg_type t WHERE t.oid = $1",
                &[&oid, &typmod],
            )
            .await
            .map_err(err)?;
        let (typtype, category): (String, String) = (row.get(0), row.get(1));
        let (elem, relid, base): (u32, u32, u32) = (row.get(2), row.get(3), row.get(4));
        let name: String = row.get(6);
        if depth > 16 {
            return Ok(Self::scalar(oid, &name));
        }
        if typtype == "d" {
            let base_typmod: i32 = row.get(5);
            let base = Box::pin(Self::load_depth(client, base, base_typmod, depth + 1)).await?;
            return Ok(Self { oid, name, ..base });
        }
        let shape = if category == "A" && elem != 0 {
            PgShape::Array(Box::new(
                Box::pin(Self::load_depth(client, elem, typmod, depth + 1)).await?,
            ))
        } else if typtype == "c" && relid != 0 {
            let rows = client
                .query(
                    "SELECT a.attname::text, a.atttypid::oid, a.atttypmod FROM pg_attribute a \
                     WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped \
                     ORDER BY a.attnum",
                    &[&relid],
                )
                .await
                .map_err(err)?;
            let mut attrs = Vec::with_capacity(rows.len());
            for r in rows {
                let ty = Box::pin(Self::load_depth(client, r.get(1), r.get(2), depth + 1)).await?;
                attrs.push((r.get(0), ty));
            }
            PgShape::Composite(attrs)
        } else {
            PgShape::Scalar
        };
        Ok(Self {
            oid,
            base_oid: oid,
            typmod,
            name,
            shape,
        })
    }
}

/// One column of the target table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetColumn {
    pub name: String,
    pub ty: PgType,
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
    /// `server_version_num`, e.g. 150004: numeric ±Infinity exists from 140000 on.
    pub server_version: u32,
}

impl TargetTable {
    /// Reads the table's columns; [`ConnectorError::TargetTableNotFound`] when it does not exist.
    pub async fn load(client: &Client, schema: &str, name: &str) -> Result<Self> {
        let qualified = format!("{}.{}", quote_ident(schema), quote_ident(name));
        let err = |source| ConnectorError::Postgres {
            what: format!("introspection of {qualified}"),
            source,
        };
        let rows = client
            .query(
                "SELECT a.attname::text, a.atttypid::oid, a.atttypmod, a.attnotnull, a.atthasdef \
                 FROM pg_attribute a \
                 WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped \
                 ORDER BY a.attnum",
                &[&qualified],
            )
            .await
            .map_err(err)?;
        if rows.is_empty() {
            return Err(ConnectorError::TargetTableNotFound(qualified));
        }
        let mut columns = Vec::with_capacity(rows.len());
        for r in &rows {
            columns.push(TargetColumn {
                name: r.get(0),
                ty: PgType::load(client, r.get(1), r.get(2)).await?,
                not_null: r.get(3),
                has_default: r.get(4),
            });
        }
        let version: String = client
            .query_one("SELECT current_setting('server_version_num')", &[])
            .await
            .map_err(err)?
            .get(0);
        Ok(Self {
            schema: schema.to_string(),
            name: name.to_string(),
            columns,
            server_version: version.trim().parse().unwrap_or(0),
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

/// Quotes a SQL identifier: `"name"`, with `"` doubled. Every identifier Ferry puts into SQL text
/// goes through this.
pub fn quote_ident(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

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
