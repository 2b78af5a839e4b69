//! Which rows the target would reject, found without writing: the COPY encoder's plan-time check
//! and its per-value checks (the same [`CopyEncoder`] `migrate` uses), then the target's NOT NULL
//! columns, in column order as the server checks them, for the rows the encoder keeps.
//!
//! The target is the live table when it exists, else the table `ferry schema` would create (its
//! generated DDL, typed without asking the server). Constraints that need the server's own
//! evaluation (CHECK, UNIQUE, foreign keys, triggers) are listed as not predicted.

use std::collections::HashSet;

use arrow::array::{Array, RecordBatch};
use arrow::datatypes::{DataType, Schema};
use ferry_connectors::ConnectorError;
use ferry_connectors::yugabyte::types::oid;
use ferry_connectors::yugabyte::{
    CopyEncoder, PgType, Reject, TargetColumn, TargetKeys, TargetTable,
};
use ferry_sql::ddl::{self, PrimaryKey, TableDdl};
use serde::Serialize;
use tokio_postgres::Client;

use crate::error::Result;

/// What the predictions were checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckedAgainst {
    /// The target table as it is in the database.
    LiveTable,
    /// The table `ferry schema` would create (the target table does not exist, or the target
    /// could not be reached).
    GeneratedDdl,
}

/// The target side of a table's dry run.
#[derive(Debug, Clone)]
pub struct TargetCheck {
    pub against: CheckedAgainst,
    pub table: TargetTable,
    /// The generated statement, when checked against it.
    pub ddl: Option<TableDdl>,
    /// `None` when the plan-time check failed (`incompatible` says why): `migrate` would stop
    /// before moving data.
    pub encoder: Option<CopyEncoder>,
    pub incompatible: Vec<String>,
    /// Output column index and name of each NOT NULL target column, in the target's order.
    pub not_null: Vec<(usize, String)>,
    /// What the target checks that a dry run cannot predict.
    pub not_predicted: Vec<String>,
    /// The generated table's columns and key in plain PostgreSQL syntax (`(…)`), for the load
    /// probe's temporary table; `None` for a live table (the probe copies its definition).
    generated_columns: Option<String>,
}

impl TargetCheck {
    /// Checks `output` against the live `table`.
    pub async fn live(client: &Client, table: TargetTable, output: &Schema) -> Result<Self> {
        let not_predicted = not_predicted(client, &table).await?;
        Ok(Self::new(
            CheckedAgainst::LiveTable,
            table,
            None,
            output,
            not_predicted,
        ))
    }

    /// Checks `output` against the table `ddl::create_table` generates for it, in
    /// `schema.name`, keyed by `key`; `server_version` is the target's `server_version_num`
    /// (0 when unknown: numeric ±Infinity then counts as out of range, as before PostgreSQL 14).
    pub fn generated(
        schema: &str,
        name: &str,
        output: &Schema,
        key: &PrimaryKey,
        dialect: ddl::Dialect,
        server_version: u32,
    ) -> Self {
        let ddl = ddl::create_table(schema, name, output, key, dialect);
        let has = |c: &str| output.fields().iter().any(|f| f.name() == c);
        let keep_key = !key.partition.is_empty()
            && key.partition.iter().all(|c| has(c))
            && key.clustering.iter().all(|c| has(&c.name));
        let key_columns: HashSet<&str> = key
            .partition
            .iter()
            .map(String::as_str)
            .chain(key.clustering.iter().map(|c| c.name.as_str()))
            .collect();
        let mut unknown = Vec::new();
        let columns = output
            .fields()
            .iter()
            .map(|f| {
                let type_name = ddl::ysql_type(f);
                let ty = builtin_type(&type_name).unwrap_or_else(|| {
                    unknown.push(format!(
                        "  {}: generated type {type_name} is not known",
                        f.name()
                    ));
                    PgType::scalar(0, &type_name)
                });
                TargetColumn {
                    name: f.name().clone(),
                    ty,
                    not_null: keep_key && key_columns.contains(f.name().as_str()),
                    has_default: false,
                }
            })
            .collect();
        let table = TargetTable {
            schema: schema.to_string(),
            name: name.to_string(),
            columns,
            server_version,
        };
        // The probe's temporary table: plain PostgreSQL syntax (no HASH), the same columns.
        let plain = ddl::create_table(schema, name, output, key, ddl::Dialect::PostgreSql);
        let generated_columns = plain
            .sql
            .find(" (")
            .map(|at| plain.sql[at + 1..].to_string());
        let mut check = Self::new(
            CheckedAgainst::GeneratedDdl,
            table,
            Some(ddl),
            output,
            Vec::new(),
        );
        check.generated_columns = generated_columns;
        check.incompatible.extend(unknown);
        if keep_key {
            check.not_predicted.push(
                "PRIMARY KEY: rows whose key repeats (the transform changes a key column)".into(),
            );
        }
        check
    }

    fn new(
        against: CheckedAgainst,
        table: TargetTable,
        ddl: Option<TableDdl>,
        output: &Schema,
        not_predicted: Vec<String>,
    ) -> Self {
        let schema = std::sync::Arc::new(output.clone());
        let (encoder, incompatible) = match CopyEncoder::try_new(&schema, &table) {
            Ok(e) => (Some(e), Vec::new()),
            Err(ConnectorError::Incompatible { problems, .. }) => (None, problems),
            Err(other) => (None, vec![other.to_string()]),
        };
        let not_null = table
            .columns
            .iter()
            .filter(|c| c.not_null)
            .filter_map(|c| output.index_of(&c.name).ok().map(|i| (i, c.name.clone())))
            .collect();
        Self {
            against,
            table,
            ddl,
            encoder,
            incompatible,
            not_null,
            not_predicted,
            generated_columns: None,
        }
    }

    /// `CREATE TEMP TABLE <name> …` with the target table's columns and NOT NULLs, dropped at
    /// the end of the transaction; with `keys`, also its CHECK constraints and indexes (foreign
    /// keys never).
    pub fn probe_table_sql(&self, name: &str, keys: bool) -> String {
        match (&self.generated_columns, keys) {
            (Some(columns), true) => format!("CREATE TEMP TABLE {name} {columns} ON COMMIT DROP"),
            (Some(_), false) => self.generated_probe_without_key(name),
            (None, keys) => format!(
                "CREATE TEMP TABLE {name} (LIKE {} INCLUDING DEFAULTS{}) ON COMMIT DROP",
                self.table.qualified(),
                if keys {
                    " INCLUDING CONSTRAINTS INCLUDING INDEXES"
                } else {
                    ""
                }
            ),
        }
    }

    fn generated_probe_without_key(&self, name: &str) -> String {
        let columns: Vec<String> = self
            .table
            .columns
            .iter()
            .map(|c| {
                format!(
                    "{} {}{}",
                    ddl::quote_ident(&c.name),
                    c.ty.name,
                    if c.not_null { " NOT NULL" } else { "" }
                )
            })
            .collect();
        format!(
            "CREATE TEMP TABLE {name} ({}) ON COMMIT DROP",
            columns.join(", ")
        )
    }

    /// The rows of `batch` the target would refuse for a NULL in a NOT NULL column, leaving out
    /// the rows in `encoder_rejects` (sorted by row: those never reach the server). The server
    /// names the first such column in table order, and so does the prediction.
    pub fn not_null_rejects(&self, batch: &RecordBatch, encoder_rejects: &[Reject]) -> Vec<Reject> {
        let mut out = Vec::new();
        let mut taken: Option<Vec<bool>> = None;
        for (index, name) in &self.not_null {
            let column = batch.column(*index);
            let all_null = column.data_type() == &DataType::Null;
            if column.null_count() == 0 && !all_null {
                continue;
            }
            let taken = taken.get_or_insert_with(|| {
                let mut t = vec![false; batch.num_rows()];
                for r in encoder_rejects {
                    t[r.row] = true;
                }
                t
            });
            for (row, slot) in taken.iter_mut().enumerate() {
                if !*slot && (all_null || column.is_null(row)) {
                    *slot = true;
                    out.push(Reject {
                        row,
                        column: name.clone(),
                        reason: format!(
                            "the target would refuse the row: null value in column \"{name}\" of \
                             relation \"{}\" violates not-null constraint (SQLSTATE 23502)",
                            self.table.name
                        ),
                        sqlstate: Some("23502".into()),
                    });
                }
            }
        }
        out.sort_by_key(|r| r.row);
        out
    }
}

/// The live table's constraints whose refusals a dry run does not predict.
async fn not_predicted(client: &Client, table: &TargetTable) -> Result<Vec<String>> {
    let keys: TargetKeys = table.load_keys(client).await?;
    let mut out = Vec::new();
    if !keys.primary_key.is_empty() {
        out.push(format!(
            "PRIMARY KEY ({}): rows whose key is already in the table or repeats",
            keys.primary_key.join(", ")
        ));
    }
    for index in keys.indexes.iter().filter(|i| i.unique) {
        out.push(format!("UNIQUE index {}: {}", index.name, index.definition));
    }
    for fk in &keys.foreign_keys {
        out.push(format!("foreign key {}: {}", fk.name, fk.definition));
    }
    let qualified = table.qualified();
    let err = |source| ConnectorError::Postgres {
        what: format!("introspection of the constraints of {qualified}"),
        source,
    };
    let checks = client
        .query(
            "SELECT conname::text, pg_get_constraintdef(oid) FROM pg_constraint \
             WHERE conrelid = to_regclass($1) AND contype = 'c' ORDER BY conname",
            &[&qualified],
        )
        .await
        .map_err(err)?;
    for row in checks {
        out.push(format!(
            "CHECK constraint {}: {}",
            row.get::<_, String>(0),
            row.get::<_, String>(1)
        ));
    }
    let triggers = client
        .query(
            "SELECT tgname::text FROM pg_trigger WHERE tgrelid = to_regclass($1) \
             AND NOT tgisinternal ORDER BY tgname",
            &[&qualified],
        )
        .await
        .map_err(err)?;
    for row in triggers {
        out.push(format!("trigger {}", row.get::<_, String>(0)));
    }
    Ok(out)
}

/// The built-in type a generated column declares (`ddl::ysql_type`'s vocabulary): its fixed OID,
/// arrays of those, and `numeric(p, s)`'s typmod.
fn builtin_type(name: &str) -> Option<PgType> {
    if let Some(elem) = name.strip_suffix("[]") {
        let elem = builtin_type(elem)?;
        let array_oid = match elem.oid {
            oid::BOOL => 1000,
            oid::BYTEA => 1001,
            oid::INT2 => 1005,
            oid::INT4 => 1007,
            oid::TEXT => 1009,
            oid::VARCHAR => 1015,
            oid::INT8 => 1016,
            oid::FLOAT4 => 1021,
            oid::FLOAT8 => 1022,
            oid::INET => 1041,
            oid::TIMESTAMP => 1115,
            oid::DATE => 1182,
            oid::TIME => 1183,
            oid::TIMESTAMPTZ => 1185,
            oid::INTERVAL => 1187,
            oid::NUMERIC => 1231,
            oid::UUID => 2951,
            oid::JSONB => 3807,
            _ => return None,
        };
        return Some(PgType::array(array_oid, elem));
    }
    if let Some(args) = name
        .strip_prefix("numeric(")
        .and_then(|rest| rest.strip_suffix(')'))
    {
        let (p, s) = args.split_once(',')?;
        let (p, s): (i32, i32) = (p.trim().parse().ok()?, s.trim().parse().ok()?);
        return Some(PgType {
            typmod: ((p << 16) | s) + 4,
            name: format!("numeric({p},{s})"),
            ..PgType::scalar(oid::NUMERIC, "numeric")
        });
    }
    let (o, canonical) = match name {
        "boolean" => (oid::BOOL, "boolean"),
        "smallint" => (oid::INT2, "smallint"),
        "integer" => (oid::INT4, "integer"),
        "bigint" => (oid::INT8, "bigint"),
        "real" => (oid::FLOAT4, "real"),
        "double precision" => (oid::FLOAT8, "double precision"),
        "numeric" => (oid::NUMERIC, "numeric"),
        "text" => (oid::TEXT, "text"),
        "uuid" => (oid::UUID, "uuid"),
        "bytea" => (oid::BYTEA, "bytea"),
        "date" => (oid::DATE, "date"),
        "time" => (oid::TIME, "time without time zone"),
        "timestamp" => (oid::TIMESTAMP, "timestamp without time zone"),
        "timestamptz" => (oid::TIMESTAMPTZ, "timestamp with time zone"),
        "interval" => (oid::INTERVAL, "interval"),
        "inet" => (oid::INET, "inet"),
        "json" => (oid::JSON, "json"),
        "jsonb" => (oid::JSONB, "jsonb"),
        _ => return None,
    };
    Some(PgType::scalar(o, canonical))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int32Array, StringArray};
    use arrow::datatypes::Field;
    use ferry_connectors::yugabyte::PgShape;
    use std::sync::Arc;

    #[test]
    fn generated_types_are_known_with_their_oids() {
        for name in [
            "boolean",
            "smallint",
            "integer",
            "bigint",
            "real",
            "double precision",
            "numeric",
            "text",
            "uuid",
            "bytea",
            "date",
            "time",
            "timestamp",
            "timestamptz",
            "interval",
            "inet",
            "jsonb",
            "integer[]",
            "text[]",
            "real[]",
            "uuid[]",
            "numeric(12, 2)",
        ] {
            assert!(builtin_type(name).is_some(), "{name}");
        }
        let n = builtin_type("numeric(12, 2)").expect("numeric");
        assert_eq!((n.base_oid, n.typmod), (oid::NUMERIC, (12 << 16 | 2) + 4));
        assert!(matches!(
            builtin_type("date[]").expect("array").shape,
            PgShape::Array(_)
        ));
        assert!(builtin_type("geometry").is_none());
    }

    #[test]
    fn not_null_is_predicted_in_table_order_after_the_encoder() {
        let schema = Schema::new(vec![
            Field::new("id", DataType::Int32, true),
            Field::new("note", DataType::Utf8, true),
            Field::new("qty", DataType::Int32, true),
        ]);
        let key = PrimaryKey {
            partition: vec!["id".into()],
            clustering: Vec::new(),
        };
        let check = TargetCheck::generated(
            "public",
            "t",
            &schema,
            &key,
            ddl::Dialect::PostgreSql,
            150000,
        );
        assert_eq!(check.against, CheckedAgainst::GeneratedDdl);
        assert!(check.encoder.is_some(), "{:?}", check.incompatible);
        assert_eq!(check.not_null, vec![(0, "id".to_string())]);
        assert_eq!(
            check.probe_table_sql("p", false),
            "CREATE TEMP TABLE p (\"id\" integer NOT NULL, \"note\" text, \"qty\" integer) ON COMMIT DROP"
        );
        assert_eq!(
            check.probe_table_sql("p", true),
            "CREATE TEMP TABLE p (\n    \"id\" integer NOT NULL,\n    \"note\" text,\n    \"qty\" integer,\n    PRIMARY KEY (\"id\")\n) ON COMMIT DROP"
        );
        let batch = RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(Int32Array::from(vec![None, Some(1), None])),
                Arc::new(StringArray::from(vec![Some("a"), Some("b"), Some("c")])),
                Arc::new(Int32Array::from(vec![Some(1), None, Some(3)])),
            ],
        )
        .expect("batch");
        let encoder_reject = Reject {
            row: 2,
            column: "note".into(),
            reason: "x".into(),
            sqlstate: None,
        };
        let rejects = check.not_null_rejects(&batch, &[encoder_reject]);
        assert_eq!(rejects.len(), 1);
        assert_eq!((rejects[0].row, rejects[0].column.as_str()), (0, "id"));
        assert_eq!(rejects[0].class(), "target:23502");
    }
}
