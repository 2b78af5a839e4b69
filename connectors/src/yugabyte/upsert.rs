//! Upsert mode: a unit's rows are copied into a temporary table shaped like the target, then merged
//! into the target with `INSERT … ON CONFLICT (primary key) DO UPDATE`, all in the unit's
//! transaction with its checkpoint.
//!
//! This is what a catch-up run needs (a second pass over rows written since the first, or into a
//! table that already holds some of them): rows whose key is already in the target replace it, the
//! others are inserted, and exactly-once still comes from the checkpoint committing with the rows.
//! It works on PostgreSQL and YugabyteDB alike.
//!
//! The temporary table carries the target's name, NOT NULL and CHECK constraints and defaults, so
//! values the target refuses are found by the COPY and become rejects as in transactional mode,
//! with the server's message naming the target table.
//! Two rows of one unit with the same key (a transform that maps several source rows to one target
//! key) merge as sequential upserts would: the one copied last wins.

use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Transaction};

use super::encoder::CopyEncoder;
use super::types::{TargetTable, quote_ident};
use crate::error::{ConnectorError, Result};

/// The statements of upsert mode for one target table and one output schema.
#[derive(Debug, Clone)]
pub struct Upsert {
    table: String,
    create: String,
    merge: String,
    /// The merge when a unit holds a key twice: per key, the row copied last.
    merge_last: String,
    encoder: CopyEncoder,
}

impl Upsert {
    /// Checks that `target` can take upserts of `encoder`'s columns (a primary key, all of whose
    /// columns the output has) and builds the statements.
    pub async fn prepare(
        client: &Client,
        target: &TargetTable,
        encoder: &CopyEncoder,
    ) -> Result<Self> {
        let keys = target.load_keys(client).await?;
        let refuse = |reason: String| ConnectorError::UpsertRefused {
            table: target.qualified(),
            reason,
        };
        if keys.primary_key.is_empty() {
            return Err(refuse(
                "the table has no primary key to match rows on; add one, or use mode = \
                 \"transactional\""
                    .into(),
            ));
        }
        let columns = encoder.column_names();
        let missing: Vec<&str> = keys
            .primary_key
            .iter()
            .filter(|k| !columns.contains(&k.as_str()))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            return Err(refuse(format!(
                "the output lacks primary-key column(s) {}; every key column must come from the \
                 source or the transform",
                missing.join(", ")
            )));
        }
        Ok(Self::new(target, encoder, &keys.primary_key))
    }

    fn new(target: &TargetTable, encoder: &CopyEncoder, primary_key: &[String]) -> Self {
        let table = target.qualified();
        // Named as the target, so the server's messages about refused rows name the table the
        // user knows; it lives in the session's own schema, and is dropped when the unit ends.
        let stage = format!("pg_temp.{}", quote_ident(&target.name));
        let list = |names: &mut dyn Iterator<Item = &str>| {
            names.map(quote_ident).collect::<Vec<_>>().join(", ")
        };
        let columns = encoder.column_names();
        let cols = list(&mut columns.iter().copied());
        let key = list(&mut primary_key.iter().map(String::as_str));
        let updates: Vec<String> = columns
            .into_iter()
            .filter(|c| !primary_key.iter().any(|k| k == c))
            .map(|c| format!("{0} = EXCLUDED.{0}", quote_ident(c)))
            .collect();
        let action = if updates.is_empty() {
            "DO NOTHING".to_string()
        } else {
            format!("DO UPDATE SET {}", updates.join(", "))
        };
        let merge = format!(
            "INSERT INTO {table} ({cols}) SELECT {cols} FROM {stage} ON CONFLICT ({key}) {action}"
        );
        // A heap table only appended to returns its rows in insertion order by ctid.
        let merge_last = format!(
            "INSERT INTO {table} ({cols}) SELECT DISTINCT ON ({key}) {cols} FROM {stage} \
             ORDER BY {key}, ctid DESC ON CONFLICT ({key}) {action}"
        );
        Self {
            create: format!(
                "CREATE TEMPORARY TABLE {} (LIKE {table} INCLUDING DEFAULTS INCLUDING \
                 CONSTRAINTS) ON COMMIT DROP",
                quote_ident(&target.name)
            ),
            encoder: encoder.copying_into(&stage),
            table,
            merge,
            merge_last,
        }
    }

    /// The encoder whose COPY fills the temporary table.
    pub fn encoder(&self) -> &CopyEncoder {
        &self.encoder
    }

    /// Creates the unit's temporary table in `tx` (it goes when `tx` ends).
    pub async fn stage(&self, tx: &Transaction<'_>) -> Result<()> {
        tx.batch_execute(&self.create)
            .await
            .map_err(|source| ConnectorError::Postgres {
                what: format!("creating the upsert table for {}", self.table),
                source,
            })
    }

    /// Merges the staged rows into the target; returns the rows inserted or updated.
    pub async fn merge(&self, tx: &mut Transaction<'_>) -> Result<u64> {
        let err = |source| ConnectorError::Postgres {
            what: format!("upsert into {}", self.table),
            source,
        };
        let savepoint = tx.savepoint("ferry_merge").await.map_err(err)?;
        match savepoint.execute(&self.merge, &[]).await {
            Ok(n) => {
                savepoint.commit().await.map_err(err)?;
                Ok(n)
            }
            // "ON CONFLICT DO UPDATE command cannot affect row a second time": a key twice.
            Err(e) if e.code() == Some(&SqlState::CARDINALITY_VIOLATION) => {
                savepoint.rollback().await.map_err(err)?;
                tracing::debug!(table = %self.table, "a unit holds a key twice; the row copied last wins");
                tx.execute(&self.merge_last, &[]).await.map_err(err)
            }
            Err(e) => Err(err(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;
    use crate::yugabyte::types::{PgType, TargetColumn};

    fn target() -> TargetTable {
        let column = |name: &str, oid: u32| TargetColumn {
            name: name.into(),
            ty: PgType::scalar(oid, if oid == 25 { "text" } else { "bigint" }),
            not_null: false,
            has_default: false,
        };
        TargetTable {
            schema: "app".into(),
            name: "Events".into(),
            columns: vec![column("id", 20), column("at", 20), column("v", 25)],
            server_version: 150000,
        }
    }

    fn encoder(names: &[(&str, DataType)]) -> CopyEncoder {
        let fields: Vec<Field> = names
            .iter()
            .map(|(n, t)| Field::new(*n, t.clone(), true))
            .collect();
        CopyEncoder::try_new(&Arc::new(Schema::new(fields)), &target()).expect("compatible")
    }

    #[test]
    fn merges_on_the_key_and_updates_the_other_columns() {
        let encoder = encoder(&[
            ("id", DataType::Int64),
            ("at", DataType::Int64),
            ("v", DataType::Utf8),
        ]);
        let upsert = Upsert::new(&target(), &encoder, &["id".into(), "at".into()]);
        assert_eq!(
            upsert.merge,
            "INSERT INTO \"app\".\"Events\" (\"id\", \"at\", \"v\") SELECT \"id\", \"at\", \"v\" \
             FROM pg_temp.\"Events\" ON CONFLICT (\"id\", \"at\") DO UPDATE SET \"v\" = \
             EXCLUDED.\"v\""
        );
        assert!(
            upsert
                .merge_last
                .contains("SELECT DISTINCT ON (\"id\", \"at\") \"id\", \"at\", \"v\" FROM")
        );
        assert!(
            upsert
                .merge_last
                .contains("ORDER BY \"id\", \"at\", ctid DESC ON CONFLICT")
        );
        assert_eq!(
            upsert.encoder().copy_sql(),
            "COPY pg_temp.\"Events\" (\"id\", \"at\", \"v\") FROM STDIN (FORMAT binary)"
        );
        // Messages still name the real target.
        assert_eq!(upsert.encoder().table(), "\"app\".\"Events\"");
        assert_eq!(
            upsert.create,
            "CREATE TEMPORARY TABLE \"Events\" (LIKE \"app\".\"Events\" INCLUDING DEFAULTS \
             INCLUDING CONSTRAINTS) ON COMMIT DROP"
        );
    }

    #[test]
    fn a_table_of_key_columns_only_does_nothing_on_conflict() {
        let encoder = encoder(&[("id", DataType::Int64)]);
        let upsert = Upsert::new(&target(), &encoder, &["id".into()]);
        assert!(upsert.merge.ends_with("ON CONFLICT (\"id\") DO NOTHING"));
    }
}
