//! SQL transform files: one `SELECT … FROM source …` per table.
//!
//! The table being migrated is registered as `source`; the transform's output schema is what the
//! sink writes. Errors point at the file, line and column, because a user with fifty transform
//! files needs to know which one to open.

use std::path::{Path, PathBuf};

use datafusion::dataframe::DataFrame;
use datafusion::error::DataFusionError;
use datafusion::execution::context::SQLOptions;
use datafusion::prelude::SessionContext;

use crate::error::{Result, SqlError};

/// The name under which a transform sees the table it reshapes.
pub const SOURCE_TABLE: &str = "source";

/// A transform: SQL text and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transform {
    /// The file it was read from, for error messages; `None` for the implicit `SELECT *`.
    pub path: Option<PathBuf>,
    /// The SQL text.
    pub sql: String,
}

impl Transform {
    /// The identity transform, used when a table has no transform file.
    pub fn identity() -> Self {
        Self {
            path: None,
            sql: format!("SELECT * FROM {SOURCE_TABLE}"),
        }
    }

    /// Reads a transform file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let sql = std::fs::read_to_string(path).map_err(|source| SqlError::TransformRead {
            path: path.to_path_buf(),
            source,
        })?;
        let transform = Self {
            path: Some(path.to_path_buf()),
            sql,
        };
        if transform.sql.trim().is_empty() {
            return Err(transform.invalid(1, 1, "the transform file is empty".into()));
        }
        Ok(transform)
    }

    /// Plans the transform against `ctx`, where `source` must already be registered.
    pub async fn plan(&self, ctx: &SessionContext) -> Result<DataFrame> {
        let sql = self.sql.trim().trim_end_matches(';');
        if sql.contains(';') {
            return Err(self.invalid(
                1,
                1,
                "a transform holds exactly one SELECT statement".into(),
            ));
        }
        // Queries only: a transform must never run DDL or DML inside Ferry's session.
        let options = SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false);
        let df = ctx
            .sql_with_options(sql, options)
            .await
            .map_err(|e| self.locate(e))?;
        Ok(df)
    }

    fn invalid(&self, line: u64, column: u64, message: String) -> SqlError {
        SqlError::TransformInvalid {
            path: self
                .path
                .clone()
                .unwrap_or_else(|| PathBuf::from("<identity transform>")),
            line,
            column,
            message,
        }
    }

    /// Turns a DataFusion planning error into one that names the file, line and column.
    fn locate(&self, err: DataFusionError) -> SqlError {
        let message = err.strip_backtrace();
        let (line, column) = position_in_message(&message)
            .or_else(|| message.contains("found: EOF").then(|| self.end_position()))
            .or_else(|| self.position_of_identifier(&message))
            .unwrap_or((1, 1));
        self.invalid(line, column, message)
    }

    /// For "no field named x" style errors, which carry no position: find the first mention.
    fn position_of_identifier(&self, message: &str) -> Option<(u64, u64)> {
        let name = ["named ", "Column '", "column '", "table '"]
            .iter()
            .find_map(|marker| {
                let rest = &message[message.find(marker)? + marker.len()..];
                let rest = rest.trim_start_matches(['\'', '"']);
                let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'))?;
                let ident = rest[..end].trim_end_matches('.');
                Some(ident.rsplit('.').next().unwrap_or(ident).to_string())
            })?;
        if name.is_empty() {
            return None;
        }
        let is_ident = |c: char| c.is_alphanumeric() || c == '_';
        for (i, line) in self.sql.lines().enumerate() {
            for (col, _) in line.match_indices(name.as_str()) {
                let before = line[..col].chars().next_back();
                let after = line[col + name.len()..].chars().next();
                if !before.is_some_and(is_ident) && !after.is_some_and(is_ident) {
                    return Some((i as u64 + 1, col as u64 + 1));
                }
            }
        }
        None
    }

    /// Where the text ends, for "unexpected end of input" errors.
    fn end_position(&self) -> (u64, u64) {
        let text = self.sql.trim_end();
        let line = text.lines().count().max(1) as u64;
        let column = text.lines().last().map_or(0, |l| l.chars().count()) as u64 + 1;
        (line, column)
    }
}

/// sqlparser reports positions as `Line: N, Column: M`.
fn position_in_message(message: &str) -> Option<(u64, u64)> {
    let at = message.find("Line: ")?;
    let rest = &message[at + "Line: ".len()..];
    let line_end = rest.find(|c: char| !c.is_ascii_digit())?;
    let line = rest[..line_end].parse().ok()?;
    let rest = &rest[line_end..];
    let col_at = rest.find("Column: ")? + "Column: ".len();
    let rest = &rest[col_at..];
    let col_end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let column = rest[..col_end].parse().ok()?;
    Some((line, column))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int32Array, RecordBatch};
    use arrow::datatypes::{DataType, Field, Schema};
    use datafusion::datasource::MemTable;

    use super::*;

    async fn ctx() -> SessionContext {
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int32, false)]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(Int32Array::from(vec![1, 2, 3]))],
        )
        .expect("valid batch");
        let ctx = SessionContext::new();
        let table = MemTable::try_new(schema, vec![vec![batch]]).expect("valid table");
        ctx.register_table(SOURCE_TABLE, Arc::new(table))
            .expect("registers");
        ctx
    }

    fn transform(sql: &str) -> Transform {
        Transform {
            path: Some(PathBuf::from("transforms/t.sql")),
            sql: sql.to_string(),
        }
    }

    #[tokio::test]
    async fn syntax_errors_name_file_line_and_column() {
        let err = transform("SELECT id\nFROM source\nWHERE id >")
            .plan(&ctx().await)
            .await
            .expect_err("syntax error");
        let msg = err.to_string();
        assert!(msg.starts_with("transforms/t.sql:3:"), "{msg}");
    }

    #[tokio::test]
    async fn unknown_columns_point_at_their_first_mention() {
        let err = transform("SELECT id,\n  nope AS x\nFROM source")
            .plan(&ctx().await)
            .await
            .expect_err("unknown column");
        let msg = err.to_string();
        assert!(msg.starts_with("transforms/t.sql:2:3:"), "{msg}");
    }

    #[tokio::test]
    async fn a_valid_transform_plans() {
        let df = transform("SELECT id * 2 AS doubled FROM source WHERE id > 1;")
            .plan(&ctx().await)
            .await
            .expect("plans");
        assert_eq!(df.schema().field(0).name(), "doubled");
    }

    #[tokio::test]
    async fn two_statements_are_refused() {
        let err = transform("SELECT 1; SELECT 2")
            .plan(&ctx().await)
            .await
            .expect_err("two statements");
        assert!(err.to_string().contains("exactly one SELECT"), "{err}");
    }
}
