//! Target introspection: what the target table's columns are, from `pg_attribute` and `pg_type`,
//! its keys and indexes, and which server it lives on.
//! The encoder writes into these types, not into types guessed from Arrow.

use ferry_sql::ddl::Dialect;
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

/// The first OID not assigned to a built-in object (`FirstNormalObjectId`): types created by
/// extensions have OIDs from here on.
const FIRST_NORMAL_OID: u32 = 16384;

/// Whether a type is a scalar, an array of an element type, or a composite of attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PgShape {
    Scalar,
    /// An array type; the element is `pg_type.typelem`.
    Array(Box<PgType>),
    /// A composite type's attributes (`pg_attribute` of `typrelid`), in `attnum` order.
    Composite(Vec<(String, PgType)>),
    /// pgvector's `vector`: float4 elements; the typmod, when set, is the dimension.
    Vector,
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
                        t.typbasetype::oid, t.typtypmod, format_type(t.oid, $2), \
                        t.typname::text \
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
        } else if typtype == "b" && oid >= FIRST_NORMAL_OID && row.get::<_, String>(7) == "vector" {
            // An extension's base type (not built in) named `vector`: pgvector's.
            PgShape::Vector
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

/// The target table's primary key, secondary indexes and foreign keys (fast mode is refused on a
/// table with secondary indexes or foreign keys). Loaded apart from [`TargetTable`], which the
/// encoder needs and builds in tests, so adding these did not change its fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetKeys {
    /// Primary key columns in key order; empty when the table has none.
    pub primary_key: Vec<String>,
    /// Every index other than the primary key's, unique ones included, by name.
    pub indexes: Vec<TargetIndex>,
    /// Foreign keys of this table (rows written here are checked against another table).
    pub foreign_keys: Vec<TargetForeignKey>,
    /// Foreign keys of other tables that reference this one.
    pub referenced_by: Vec<TargetForeignKey>,
}

/// A secondary index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetIndex {
    pub name: String,
    pub unique: bool,
    /// `pg_get_indexdef`, e.g. `CREATE INDEX i ON public.t USING btree (a)`.
    pub definition: String,
}

/// A foreign key constraint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetForeignKey {
    pub name: String,
    /// The referencing table (for [`TargetKeys::foreign_keys`], this one), as `regclass` prints it.
    pub table: String,
    /// The referenced table, as `regclass` prints it.
    pub references: String,
    /// `pg_get_constraintdef`, e.g. `FOREIGN KEY (a) REFERENCES u(id)`.
    pub definition: String,
}

impl TargetKeys {
    /// Reads the keys and indexes of `schema.name`; [`ConnectorError::TargetTableNotFound`] when
    /// it does not exist.
    pub async fn load(client: &Client, schema: &str, name: &str) -> Result<Self> {
        let qualified = format!("{}.{}", quote_ident(schema), quote_ident(name));
        let err = |source| ConnectorError::Postgres {
            what: format!("introspection of the keys of {qualified}"),
            source,
        };
        if !TargetTable::exists(client, schema, name).await? {
            return Err(ConnectorError::TargetTableNotFound(qualified));
        }
        let primary_key = client
            .query(
                "SELECT a.attname::text FROM pg_index i \
                 CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) \
                 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
                 WHERE i.indrelid = to_regclass($1) AND i.indisprimary \
                 ORDER BY k.ord",
                &[&qualified],
            )
            .await
            .map_err(err)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let indexes = client
            .query(
                "SELECT c.relname::text, i.indisunique, pg_get_indexdef(i.indexrelid) \
                 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
                 WHERE i.indrelid = to_regclass($1) AND NOT i.indisprimary \
                 ORDER BY c.relname",
                &[&qualified],
            )
            .await
            .map_err(err)?
            .iter()
            .map(|r| TargetIndex {
                name: r.get(0),
                unique: r.get(1),
                definition: r.get(2),
            })
            .collect();
        let foreign_keys = |side: &'static str| {
            let sql = format!(
                "SELECT c.conname::text, c.conrelid::regclass::text, c.confrelid::regclass::text, \
                        pg_get_constraintdef(c.oid) \
                 FROM pg_constraint c \
                 WHERE c.{side} = to_regclass($1) AND c.contype = 'f' \
                 ORDER BY c.conname"
            );
            let qualified = &qualified;
            async move {
                let rows = client.query(&sql, &[qualified]).await.map_err(err)?;
                Ok::<_, ConnectorError>(
                    rows.iter()
                        .map(|r| TargetForeignKey {
                            name: r.get(0),
                            table: r.get(1),
                            references: r.get(2),
                            definition: r.get(3),
                        })
                        .collect::<Vec<_>>(),
                )
            }
        };
        Ok(Self {
            primary_key,
            indexes,
            foreign_keys: foreign_keys("conrelid").await?,
            referenced_by: foreign_keys("confrelid").await?,
        })
    }

    /// Whether the table has an index besides its primary key.
    pub fn has_secondary_indexes(&self) -> bool {
        !self.indexes.is_empty()
    }

    /// Whether rows written to the table are checked against another table.
    pub fn has_foreign_keys(&self) -> bool {
        !self.foreign_keys.is_empty()
    }
}

impl TargetTable {
    /// Whether `schema.name` exists (a table with no columns counts, unlike for [`Self::load`]).
    pub async fn exists(client: &Client, schema: &str, name: &str) -> Result<bool> {
        let qualified = format!("{}.{}", quote_ident(schema), quote_ident(name));
        let row = client
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&qualified])
            .await
            .map_err(|source| ConnectorError::Postgres {
                what: format!("lookup of {qualified}"),
                source,
            })?;
        Ok(row.get(0))
    }

    /// This table's primary key, secondary indexes and foreign keys.
    pub async fn load_keys(&self, client: &Client) -> Result<TargetKeys> {
        TargetKeys::load(client, &self.schema, &self.name).await
    }
}

/// Which server the target is: YugabyteDB (YSQL) or plain PostgreSQL, and its PostgreSQL version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerInfo {
    /// `SELECT version()`, e.g. `PostgreSQL 11.2-YB-2.20.1.0-b0 on x86_64-pc-linux-gnu, …`.
    pub version: String,
    /// `server_version_num`, e.g. 110002 or 150012.
    pub version_num: u32,
    /// Whether the server is YugabyteDB (its version string has `-YB-`).
    pub yugabyte: bool,
}

impl ServerInfo {
    /// Asks the server.
    pub async fn load(client: &Client) -> Result<Self> {
        let row = client
            .query_one(
                "SELECT version(), current_setting('server_version_num')",
                &[],
            )
            .await
            .map_err(|source| ConnectorError::Postgres {
                what: "server detection".into(),
                source,
            })?;
        Ok(Self::from_version(
            row.get(0),
            row.get::<_, String>(1).trim(),
        ))
    }

    /// From `version()` and `server_version_num`; an unparsable number reads as 0.
    pub fn from_version(version: String, version_num: &str) -> Self {
        Self {
            yugabyte: version.contains("-YB-"),
            version_num: version_num.parse().unwrap_or(0),
            version,
        }
    }

    /// The PostgreSQL major version, e.g. 11 or 15.
    pub fn major(&self) -> u32 {
        self.version_num / 10_000
    }

    /// The `CREATE TABLE` syntax this server takes.
    pub fn ddl_dialect(&self) -> Dialect {
        if self.yugabyte {
            Dialect::YugabyteDb
        } else {
            Dialect::PostgreSql
        }
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

    #[test]
    fn yugabyte_is_told_apart_by_its_version_string() {
        let yb = ServerInfo::from_version(
            "PostgreSQL 11.2-YB-2.20.1.0-b0 on x86_64-pc-linux-gnu".into(),
            "110002",
        );
        assert!(yb.yugabyte);
        assert_eq!((yb.major(), yb.ddl_dialect()), (11, Dialect::YugabyteDb));
        let pg =
            ServerInfo::from_version("PostgreSQL 15.12 (Debian 15.12-0+deb12u2)".into(), "150012");
        assert!(!pg.yugabyte);
        assert_eq!((pg.major(), pg.ddl_dialect()), (15, Dialect::PostgreSql));
    }
}
