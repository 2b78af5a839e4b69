//! SQL transform files: one `SELECT … FROM source …` per table.
//!
//! The table being migrated is registered as `source`; the transform's output schema is what the
//! sink writes. Errors point at the file, line and column, because a user with fifty transform
//! files needs to know which one to open.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use datafusion::dataframe::DataFrame;
use datafusion::error::DataFusionError;
use datafusion::execution::context::SQLOptions;
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{Expr, Ident, SelectItem, SetExpr, Statement};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::{Location, Token, TokenWithSpan, Tokenizer};

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
        // Only the end is trimmed: positions in errors must be the file's own.
        let sql = self.sql.trim_end().trim_end_matches(';');
        if let Some(second) = self.second_statement() {
            return Err(self.invalid(
                second.line,
                second.column,
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

    /// Where a second statement starts, if the text holds more than one (`;` inside strings and
    /// comments does not count).
    fn second_statement(&self) -> Option<Location> {
        let tokens = Tokenizer::new(&GenericDialect {}, &self.sql)
            .tokenize_with_location()
            .ok()?;
        let mut code = tokens.iter().filter(|t| !is_blank(&t.token));
        code.by_ref().find(|t| t.token == Token::SemiColon)?;
        code.find(|t| t.token != Token::SemiColon && t.token != Token::EOF)
            .map(|t| t.span.start)
    }

    /// Where the output columns come from in the file: the outermost SELECT list. `None` for the
    /// identity transform, which has no file to point into.
    pub fn select_list(&self) -> Option<SelectList> {
        self.path.as_ref()?;
        let dialect = GenericDialect {};
        let mut statements = Parser::parse_sql(&dialect, &self.sql).ok()?;
        let Some(Statement::Query(query)) = statements.pop() else {
            return None;
        };
        let mut body = query.body.as_ref();
        let select = loop {
            match body {
                SetExpr::Select(select) => break select,
                SetExpr::Query(q) => body = q.body.as_ref(),
                // A UNION's columns are named by its first SELECT.
                SetExpr::SetOperation { left, .. } => body = left.as_ref(),
                _ => return None,
            }
        };
        let keyword = select.select_token.0.span.start;
        let tokens = Tokenizer::new(&dialect, &self.sql)
            .tokenize_with_location()
            .ok()?;
        let starts = item_starts(&tokens, keyword, select.projection.len());
        let items = select
            .projection
            .iter()
            .enumerate()
            .map(|(k, item)| {
                let (name, wildcard) = match item {
                    SelectItem::ExprWithAlias { alias, .. } => (Some(normalized(alias)), false),
                    SelectItem::UnnamedExpr(Expr::Identifier(id)) => (Some(normalized(id)), false),
                    SelectItem::UnnamedExpr(Expr::CompoundIdentifier(ids)) => {
                        (ids.last().map(normalized), false)
                    }
                    SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => (None, true),
                    _ => (None, false),
                };
                let start = starts.get(k).copied().unwrap_or(keyword);
                SelectListItem {
                    start: Position::from(start),
                    name,
                    wildcard,
                }
            })
            .collect();
        Some(SelectList {
            select: Position::from(keyword),
            items,
        })
    }

    /// The error for output columns the target cannot take, each problem at its place in the
    /// file (from [`SelectList`]); the first place heads the message.
    pub fn refused_by_target(&self, table: &str, problems: &[(Position, String)]) -> SqlError {
        let first = problems
            .first()
            .map_or(Position { line: 1, column: 1 }, |p| p.0);
        let path = self.display_path();
        let mut message = format!(
            "{} column(s) of the output cannot be written to {table}:",
            problems.len()
        );
        for (at, problem) in problems {
            let _ = write!(
                message,
                "\n  {}:{}:{}: {problem}",
                path.display(),
                at.line,
                at.column
            );
        }
        self.invalid(first.line, first.column, message)
    }

    fn display_path(&self) -> PathBuf {
        self.path
            .clone()
            .unwrap_or_else(|| PathBuf::from("<identity transform>"))
    }

    fn invalid(&self, line: u64, column: u64, message: String) -> SqlError {
        SqlError::TransformInvalid {
            path: self.display_path(),
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

    /// For "no field named x" and "a call to 'f'" style errors, which carry no position: find
    /// the first mention.
    fn position_of_identifier(&self, message: &str) -> Option<(u64, u64)> {
        let name = ["named ", "Column '", "column '", "table '", "a call to '"]
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

/// A place in a transform file: line and column, from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: u64,
    pub column: u64,
}

impl From<Location> for Position {
    fn from(l: Location) -> Self {
        Self {
            line: l.line.max(1),
            column: l.column.max(1),
        }
    }
}

/// The outermost SELECT list of a transform: where each output column is produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectList {
    /// The SELECT keyword.
    select: Position,
    items: Vec<SelectListItem>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct SelectListItem {
    /// Its first token.
    start: Position,
    /// The output name, when it can be read off the item (an alias or a column).
    name: Option<String>,
    /// `*` or `t.*`, which stands for many output columns.
    wildcard: bool,
}

impl SelectList {
    /// Where the list starts: its first item (where a missing column would be added).
    pub fn start(&self) -> Position {
        self.items.first().map_or(self.select, |i| i.start)
    }

    /// The item that produces output column `index`, named `name`: without a wildcard, item
    /// `index` itself; with one, the item of that name, else the wildcard; else the SELECT.
    pub fn output_column(&self, index: usize, name: &str) -> Position {
        if !self.items.iter().any(|i| i.wildcard)
            && let Some(item) = self.items.get(index)
        {
            return item.start;
        }
        let named = |exact: bool| {
            self.items.iter().find(|i| {
                i.name.as_deref().is_some_and(|n| {
                    if exact {
                        n == name
                    } else {
                        n.eq_ignore_ascii_case(name)
                    }
                })
            })
        };
        named(true)
            .or_else(|| named(false))
            .or_else(|| self.items.iter().find(|i| i.wildcard))
            .map_or(self.select, |i| i.start)
    }
}

/// An identifier as DataFusion names a column: unquoted ones are lowercased.
fn normalized(id: &Ident) -> String {
    match id.quote_style {
        Some(_) => id.value.clone(),
        None => id.value.to_lowercase(),
    }
}

fn is_blank(t: &Token) -> bool {
    matches!(t, Token::Whitespace(_))
}

/// The first token of each of the `count` items after the SELECT keyword at `select`: items are
/// split at commas outside brackets; `DISTINCT`, `ALL` and `DISTINCT ON (…)` are skipped.
fn item_starts(tokens: &[TokenWithSpan], select: Location, count: usize) -> Vec<Location> {
    let Some(at) = tokens.iter().position(|t| t.span.start == select) else {
        return Vec::new();
    };
    let mut code = tokens[at + 1..]
        .iter()
        .filter(|t| !is_blank(&t.token))
        .peekable();
    let keyword = |t: Option<&&TokenWithSpan>, k: Keyword| matches!(t.map(|t| &t.token), Some(Token::Word(w)) if w.keyword == k);
    if keyword(code.peek(), Keyword::ALL) {
        code.next();
    } else if keyword(code.peek(), Keyword::DISTINCT) {
        code.next();
        if keyword(code.peek(), Keyword::ON) {
            code.next();
            let mut depth = 0usize;
            for t in code.by_ref() {
                match t.token {
                    Token::LParen => depth += 1,
                    Token::RParen => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    let mut starts = Vec::with_capacity(count);
    let mut depth = 0usize;
    let mut at_item_start = true;
    for t in code {
        if starts.len() == count && at_item_start {
            break;
        }
        if at_item_start {
            starts.push(t.span.start);
            at_item_start = false;
        }
        match t.token {
            Token::LParen | Token::LBracket | Token::LBrace => depth += 1,
            Token::RParen | Token::RBracket | Token::RBrace => depth = depth.saturating_sub(1),
            Token::Comma if depth == 0 => at_item_start = true,
            Token::EOF => break,
            _ => {}
        }
    }
    starts
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
        let err = transform("SELECT 1;\n  SELECT 2")
            .plan(&ctx().await)
            .await
            .expect_err("two statements");
        let msg = err.to_string();
        assert!(msg.starts_with("transforms/t.sql:2:3: "), "{msg}");
        assert!(msg.contains("exactly one SELECT"), "{msg}");
        // Semicolons in strings and comments, and a trailing one, are not statements.
        transform("SELECT ';' AS x FROM source; -- done; really\n")
            .plan(&ctx().await)
            .await
            .expect("one statement");
    }

    #[tokio::test]
    async fn leading_blank_lines_keep_positions() {
        let err = transform("\n\n-- header\nSELECT id,, id FROM source")
            .plan(&ctx().await)
            .await
            .expect_err("syntax error");
        let msg = err.to_string();
        assert!(msg.starts_with("transforms/t.sql:4:11: "), "{msg}");
    }

    #[tokio::test]
    async fn a_function_refusing_its_argument_points_at_the_call() {
        let err = transform("SELECT id,\n  timeuuid_to_timestamp(id) AS t\nFROM source")
            .plan(&ctx_with_udfs().await)
            .await
            .expect_err("an int is not a timeuuid");
        let msg = err.to_string();
        assert!(msg.starts_with("transforms/t.sql:2:3: "), "{msg}");
        assert!(msg.contains("timeuuid_to_timestamp"), "{msg}");
    }

    async fn ctx_with_udfs() -> SessionContext {
        let ctx = ctx().await;
        crate::udf::register(&ctx);
        ctx
    }

    fn at(line: u64, column: u64) -> Position {
        Position { line, column }
    }

    #[test]
    fn select_items_are_found_where_they_start() {
        let list = transform(
            "-- keep ids\nSELECT id,\n       CAST(x AS DECIMAL(10, 2)) AS n,\n  (a + b) AS \"S\",\n  f(a, b)\nFROM source, other",
        )
        .select_list()
        .expect("parses");
        assert_eq!(list.start(), at(2, 8));
        assert_eq!(list.output_column(0, "id"), at(2, 8));
        assert_eq!(list.output_column(1, "n"), at(3, 8));
        assert_eq!(list.output_column(2, "S"), at(4, 3));
        assert_eq!(list.output_column(3, "f(source.a,source.b)"), at(5, 3));

        let list = transform("SELECT DISTINCT ON (a) *, upper(name) AS Name2 FROM source")
            .select_list()
            .expect("parses");
        assert_eq!(list.output_column(7, "name2"), at(1, 27));
        assert_eq!(list.output_column(0, "id"), at(1, 24), "from the wildcard");

        let list = transform("WITH t AS (SELECT 1 AS a) (SELECT a FROM t) UNION ALL SELECT 2")
            .select_list()
            .expect("parses");
        assert_eq!(list.output_column(0, "a"), at(1, 35));

        assert_eq!(Transform::identity().select_list(), None);
    }

    #[test]
    fn target_refusals_list_every_place() {
        let err = transform("SELECT id FROM source").refused_by_target(
            "public.t",
            &[
                (at(1, 8), "id: Int32 cannot be written to uuid".into()),
                (
                    at(1, 8),
                    "name: NOT NULL column of public.t (text) missing".into(),
                ),
            ],
        );
        assert_eq!(
            err.to_string(),
            "transforms/t.sql:1:8: 2 column(s) of the output cannot be written to public.t:\n  \
             transforms/t.sql:1:8: id: Int32 cannot be written to uuid\n  \
             transforms/t.sql:1:8: name: NOT NULL column of public.t (text) missing"
        );
    }
}
