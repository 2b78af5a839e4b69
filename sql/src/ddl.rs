//! DDL generation: the `CREATE TABLE` statement for a transform's output schema.
//!
//! A column that comes straight from Cassandra carries its CQL type in the field metadata
//! ([`CQL_TYPE_METADATA_KEY`]) and gets [`CqlType::ysql_type`]; a derived column gets a YSQL type
//! from its Arrow type ([`arrow_ysql_type`]). The Cassandra primary key becomes the target's when
//! every key column is in the output under its own name; otherwise the table gets no primary key
//! and a warning says why (a subset of the key columns may hold duplicates, which a primary key
//! would refuse in the middle of a run).

use std::fmt::Write as _;

use arrow::datatypes::{DataType, Field, Schema};

use crate::types::{
    ARROW_EXTENSION_NAME_KEY, ARROW_UUID_EXTENSION, CQL_TYPE_METADATA_KEY, CqlType, UdtResolver,
};

/// Which primary key syntax to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// YSQL: `PRIMARY KEY ((pk1, pk2) HASH, ck1 ASC, ck2 DESC)`, sharded like Cassandra.
    YugabyteDb,
    /// Plain PostgreSQL: `PRIMARY KEY (pk1, pk2, ck1, ck2)`; clustering order is not kept.
    PostgreSql,
}

/// A clustering column and its order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusteringColumn {
    pub name: String,
    pub descending: bool,
}

/// A Cassandra primary key: partition key and clustering columns, each in key order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrimaryKey {
    pub partition: Vec<String>,
    pub clustering: Vec<ClusteringColumn>,
}

impl PrimaryKey {
    fn columns(&self) -> impl Iterator<Item = &str> {
        self.partition
            .iter()
            .map(String::as_str)
            .chain(self.clustering.iter().map(|c| c.name.as_str()))
    }
}

/// A generated statement and what the user should know about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDdl {
    /// `CREATE TABLE IF NOT EXISTS …`, without a trailing `;`.
    pub sql: String,
    /// Why the statement differs from the Cassandra table (e.g. no primary key).
    pub warnings: Vec<String>,
}

/// Generates `CREATE TABLE IF NOT EXISTS "schema"."table" (…)` for `output`, the transform's
/// output schema, keyed by `key` where every key column survives the transform.
pub fn create_table(
    schema: &str,
    table: &str,
    output: &Schema,
    key: &PrimaryKey,
    dialect: Dialect,
) -> TableDdl {
    let mut warnings = Vec::new();
    let has = |name: &str| output.fields().iter().any(|f| f.name() == name);
    let missing: Vec<&str> = key.columns().filter(|c| !has(c)).collect();
    let keep_key = !key.partition.is_empty() && missing.is_empty();
    if !missing.is_empty() {
        warnings.push(format!(
            "{}.{}: no PRIMARY KEY: the transform drops or renames key column(s) {}, and the \
             remaining columns are not known to be unique; keep every key column under its own \
             name, or create the table yourself",
            schema,
            table,
            missing.join(", ")
        ));
    }
    let is_key = |name: &str| keep_key && key.columns().any(|c| c == name);

    let mut sql = format!(
        "CREATE TABLE IF NOT EXISTS {}.{} (",
        quote_ident(schema),
        quote_ident(table)
    );
    let mut first = true;
    let mut sep = |sql: &mut String| {
        sql.push_str(if first { "\n    " } else { ",\n    " });
        first = false;
    };
    for field in output.fields() {
        sep(&mut sql);
        let _ = write!(sql, "{} {}", quote_ident(field.name()), ysql_type(field));
        if is_key(field.name()) {
            sql.push_str(" NOT NULL");
        }
    }
    if keep_key {
        sep(&mut sql);
        sql.push_str("PRIMARY KEY (");
        let quoted = |names: &mut dyn Iterator<Item = &str>| {
            names.map(quote_ident).collect::<Vec<_>>().join(", ")
        };
        let mut parts = Vec::new();
        match dialect {
            Dialect::YugabyteDb => {
                let partition = quoted(&mut key.partition.iter().map(String::as_str));
                parts.push(if key.partition.len() == 1 {
                    format!("{partition} HASH")
                } else {
                    format!("({partition}) HASH")
                });
                parts.extend(key.clustering.iter().map(|c| {
                    let order = if c.descending { "DESC" } else { "ASC" };
                    format!("{} {order}", quote_ident(&c.name))
                }));
            }
            Dialect::PostgreSql => parts.push(quoted(&mut key.columns())),
        }
        sql.push_str(&parts.join(", "));
        sql.push(')');
    }
    sql.push_str("\n)");
    TableDdl { sql, warnings }
}

/// The YSQL type of an output column: its CQL type's when it still has the Arrow type that CQL
/// type decodes into, otherwise one from its Arrow type.
pub fn ysql_type(field: &Field) -> String {
    field
        .metadata()
        .get(CQL_TYPE_METADATA_KEY)
        .and_then(|text| CqlType::parse(text, "", &AnyUdt).ok())
        .filter(|cql| cql.arrow_type().equals_datatype(field.data_type()))
        .map(|cql| cql.ysql_type())
        .unwrap_or_else(|| arrow_ysql_type(field))
}

/// A YSQL type for a derived column, from its Arrow type alone.
pub fn arrow_ysql_type(field: &Field) -> String {
    let scalar = match field.data_type() {
        DataType::Boolean => "boolean",
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => "smallint",
        DataType::Int32 | DataType::UInt16 => "integer",
        DataType::Int64 | DataType::UInt32 => "bigint",
        DataType::UInt64 => "numeric",
        DataType::Float16 | DataType::Float32 => "real",
        DataType::Float64 => "double precision",
        DataType::Decimal32(p, s)
        | DataType::Decimal64(p, s)
        | DataType::Decimal128(p, s)
        | DataType::Decimal256(p, s) => {
            // PostgreSQL 11 refuses a negative scale or one above the precision.
            return if *s >= 0 && i16::from(*s) <= i16::from(*p) {
                format!("numeric({p}, {s})")
            } else {
                "numeric".to_string()
            };
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null => "text",
        DataType::FixedSizeBinary(16)
            if field
                .metadata()
                .get(ARROW_EXTENSION_NAME_KEY)
                .is_some_and(|e| e == ARROW_UUID_EXTENSION) =>
        {
            "uuid"
        }
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => "bytea",
        DataType::Date32 | DataType::Date64 => "date",
        DataType::Time32(_) | DataType::Time64(_) => "time",
        DataType::Timestamp(_, Some(_)) => "timestamptz",
        DataType::Timestamp(_, None) => "timestamp",
        DataType::Duration(_) | DataType::Interval(_) => "interval",
        DataType::List(item)
        | DataType::LargeList(item)
        | DataType::ListView(item)
        | DataType::LargeListView(item)
        | DataType::FixedSizeList(item, _) => {
            // PostgreSQL arrays are rectangular: only arrays of scalars map to one.
            return match item.data_type() {
                t if t.is_nested() => "jsonb".to_string(),
                _ => format!("{}[]", ysql_type(item)),
            };
        }
        DataType::Dictionary(_, value) => {
            return arrow_ysql_type(&Field::new(field.name(), (**value).clone(), true));
        }
        DataType::RunEndEncoded(_, values) => return ysql_type(values),
        DataType::Struct(_) | DataType::Map(..) | DataType::Union(..) => "jsonb",
    };
    scalar.to_string()
}

/// Quotes a SQL identifier: `"name"`, with `"` doubled. Every identifier Ferry puts into SQL text
/// goes through this.
pub fn quote_ident(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// Field metadata names a UDT without its fields; any UDT maps to `jsonb`, so its fields do not
/// matter here. (Its Arrow type then has no fields either, so the type check falls back to the
/// Arrow type, which is `Struct` and also `jsonb`.)
struct AnyUdt;

impl UdtResolver for AnyUdt {
    fn resolve(&self, _: &str, _: &str) -> Option<Vec<(String, String)>> {
        Some(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::datatypes::{IntervalUnit, TimeUnit};

    use super::*;
    use crate::types::NoUdts;

    fn cql(name: &str, ty: &str) -> Field {
        let nullable = true;
        CqlType::parse(ty, "ks", &NoUdts)
            .expect("valid CQL type")
            .arrow_field(name, nullable)
    }

    fn key(partition: &[&str], clustering: &[(&str, bool)]) -> PrimaryKey {
        PrimaryKey {
            partition: partition.iter().map(|s| s.to_string()).collect(),
            clustering: clustering
                .iter()
                .map(|&(name, descending)| ClusteringColumn {
                    name: name.to_string(),
                    descending,
                })
                .collect(),
        }
    }

    fn events() -> Schema {
        Schema::new(vec![
            cql("tenant", "text"),
            cql("day", "date"),
            cql("at", "timestamp"),
            cql("seq", "int"),
            cql("payload", "map<text, int>"),
            cql("amount", "decimal"),
            cql("id", "timeuuid"),
        ])
    }

    #[test]
    fn yugabyte_keys_hash_the_partition_and_keep_clustering_order() {
        let key = key(&["tenant", "day"], &[("at", true), ("seq", false)]);
        let ddl = create_table("public", "events", &events(), &key, Dialect::YugabyteDb);
        assert_eq!(
            ddl.sql,
            "CREATE TABLE IF NOT EXISTS \"public\".\"events\" (\n    \
             \"tenant\" text NOT NULL,\n    \
             \"day\" date NOT NULL,\n    \
             \"at\" timestamptz NOT NULL,\n    \
             \"seq\" integer NOT NULL,\n    \
             \"payload\" jsonb,\n    \
             \"amount\" numeric,\n    \
             \"id\" uuid,\n    \
             PRIMARY KEY ((\"tenant\", \"day\") HASH, \"at\" DESC, \"seq\" ASC)\n)"
        );
        assert!(ddl.warnings.is_empty());
    }

    #[test]
    fn postgres_keys_list_the_columns_in_key_order() {
        let key = key(&["tenant", "day"], &[("at", true), ("seq", false)]);
        let ddl = create_table("public", "events", &events(), &key, Dialect::PostgreSql);
        assert!(
            ddl.sql.ends_with(
                "    \"id\" uuid,\n    PRIMARY KEY (\"tenant\", \"day\", \"at\", \"seq\")\n)"
            ),
            "{}",
            ddl.sql
        );
    }

    #[test]
    fn a_single_partition_column_hashes_without_parentheses() {
        let schema = Schema::new(vec![cql("id", "uuid"), cql("v", "blob")]);
        let ddl = create_table("s", "t", &schema, &key(&["id"], &[]), Dialect::YugabyteDb);
        assert_eq!(
            ddl.sql,
            "CREATE TABLE IF NOT EXISTS \"s\".\"t\" (\n    \"id\" uuid NOT NULL,\n    \
             \"v\" bytea,\n    PRIMARY KEY (\"id\" HASH)\n)"
        );
    }

    #[test]
    fn odd_identifiers_are_quoted() {
        let schema = Schema::new(vec![cql("we\"ird", "int"), cql("Mixed Case", "text")]);
        let key = key(&["we\"ird"], &[("Mixed Case", true)]);
        let ddl = create_table("my schema", "t\"1", &schema, &key, Dialect::YugabyteDb);
        assert_eq!(
            ddl.sql,
            "CREATE TABLE IF NOT EXISTS \"my schema\".\"t\"\"1\" (\n    \
             \"we\"\"ird\" integer NOT NULL,\n    \
             \"Mixed Case\" text NOT NULL,\n    \
             PRIMARY KEY (\"we\"\"ird\" HASH, \"Mixed Case\" DESC)\n)"
        );
        let ddl = create_table("my schema", "t\"1", &schema, &key, Dialect::PostgreSql);
        assert!(
            ddl.sql
                .ends_with("PRIMARY KEY (\"we\"\"ird\", \"Mixed Case\")\n)"),
            "{}",
            ddl.sql
        );
    }

    #[test]
    fn a_dropped_key_column_drops_the_primary_key_with_a_warning() {
        let schema = Schema::new(vec![cql("tenant", "text"), cql("seq", "int")]);
        let key = key(&["tenant"], &[("at", false), ("seq", false)]);
        for dialect in [Dialect::YugabyteDb, Dialect::PostgreSql] {
            let ddl = create_table("public", "t", &schema, &key, dialect);
            assert_eq!(
                ddl.sql,
                "CREATE TABLE IF NOT EXISTS \"public\".\"t\" (\n    \"tenant\" text,\n    \
                 \"seq\" integer\n)"
            );
            assert_eq!(ddl.warnings.len(), 1);
            assert!(
                ddl.warnings[0].contains("no PRIMARY KEY") && ddl.warnings[0].contains(" at,"),
                "{}",
                ddl.warnings[0]
            );
        }
    }

    #[test]
    fn derived_columns_map_from_their_arrow_type() {
        let cases = [
            (DataType::Int64, "bigint"),
            (DataType::UInt64, "numeric"),
            (DataType::Float32, "real"),
            (DataType::Decimal128(12, 2), "numeric(12, 2)"),
            (DataType::Decimal128(5, -2), "numeric"),
            (DataType::Utf8View, "text"),
            (DataType::Binary, "bytea"),
            (DataType::Date32, "date"),
            (DataType::Time64(TimeUnit::Microsecond), "time"),
            (
                DataType::Timestamp(TimeUnit::Nanosecond, Some(Arc::from("UTC"))),
                "timestamptz",
            ),
            (
                DataType::Timestamp(TimeUnit::Microsecond, None),
                "timestamp",
            ),
            (DataType::Interval(IntervalUnit::MonthDayNano), "interval"),
            (DataType::new_list(DataType::Int16, true), "smallint[]"),
            (
                DataType::new_list(DataType::new_list(DataType::Int16, true), true),
                "jsonb",
            ),
            (
                DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
                "text",
            ),
            (DataType::Null, "text"),
        ];
        for (arrow, ysql) in cases {
            assert_eq!(
                ysql_type(&Field::new("x", arrow.clone(), true)),
                ysql,
                "{arrow}"
            );
        }
        let uuid = Field::new("u", DataType::FixedSizeBinary(16), true)
            .with_metadata([(ARROW_EXTENSION_NAME_KEY.into(), ARROW_UUID_EXTENSION.into())].into());
        assert_eq!(ysql_type(&uuid), "uuid");
    }

    #[test]
    fn cql_metadata_wins_only_while_the_arrow_type_matches() {
        // decimal is Utf8 in Arrow: numeric while it is the column itself...
        assert_eq!(ysql_type(&cql("a", "decimal")), "numeric");
        assert_eq!(ysql_type(&cql("a", "inet")), "inet");
        let udt = Field::new(
            "a",
            DataType::Struct(vec![Field::new("zip", DataType::Int32, true)].into()),
            true,
        )
        .with_metadata([(CQL_TYPE_METADATA_KEY.into(), "frozen<address>".into())].into());
        assert_eq!(ysql_type(&udt), "jsonb");
        // ...but a value cast to another type keeps only its Arrow type.
        let cast = cql("a", "decimal").with_data_type(DataType::Float64);
        assert_eq!(ysql_type(&cast), "double precision");
    }

    /// Through a real transform: aliases keep the CQL type, expressions get one from Arrow.
    #[tokio::test]
    async fn a_transform_that_renames_and_derives_columns() {
        use datafusion::datasource::MemTable;
        use datafusion::prelude::SessionContext;

        use crate::transform::{SOURCE_TABLE, Transform};

        let source = Arc::new(Schema::new(vec![
            cql("id", "uuid").with_nullable(false),
            cql("name", "text"),
            cql("n", "int"),
            cql("amount", "decimal"),
            cql("addr", "inet"),
        ]));
        let ctx = SessionContext::new();
        let table = MemTable::try_new(Arc::clone(&source), vec![vec![]]).expect("valid table");
        ctx.register_table(SOURCE_TABLE, Arc::new(table))
            .expect("registers");
        let transform = Transform {
            path: None,
            sql:
                "SELECT id, name AS label, upper(name) AS shout, CAST(n AS BIGINT) * 2 AS doubled, \
                  amount, addr AS \"where\", n / 2.0 AS half FROM source"
                    .into(),
        };
        let df = transform.plan(&ctx).await.expect("plans");
        let ddl = create_table(
            "public",
            "people",
            df.schema().as_arrow(),
            &key(&["id"], &[]),
            Dialect::YugabyteDb,
        );
        assert_eq!(
            ddl.sql,
            "CREATE TABLE IF NOT EXISTS \"public\".\"people\" (\n    \
             \"id\" uuid NOT NULL,\n    \
             \"label\" text,\n    \
             \"shout\" text,\n    \
             \"doubled\" bigint,\n    \
             \"amount\" numeric,\n    \
             \"where\" inet,\n    \
             \"half\" double precision,\n    \
             PRIMARY KEY (\"id\" HASH)\n)"
        );
    }
}
