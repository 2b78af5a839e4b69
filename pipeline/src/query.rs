//! `ferry query`: ad-hoc SQL over live Cassandra tables, or over staged tables with `--from URL`
//! (no Cassandra needed), and the writers that print its result.
//!
//! Every keyspace named by a `[[table]]` of the config becomes a DataFusion schema of the default
//! catalog, so `SELECT count(*) FROM ks.events` reads `ks.events`. A keyspace's tables are looked
//! up on first use ([`KeyspaceSchema`]), which costs one schema read per table the query touches,
//! however many tables the config lists, and makes the unlisted tables of those keyspaces
//! queryable too.
//!
//! Output is written to any `io::Write` as a text table, CSV or newline-delimited JSON; UUID
//! columns become hyphenated text first. It knows nothing about the terminal: the CLI passes
//! stdout and decides what to say about a cut-off result.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

use arrow::array::{
    Array, ArrayRef, AsArray, LargeListArray, ListArray, MapArray, RecordBatch, RecordBatchOptions,
    StringBuilder, StructArray,
};
use arrow::datatypes::{DataType, Field, FieldRef, Fields, Schema};
use arrow::error::ArrowError;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use async_trait::async_trait;
use datafusion::catalog::{MemorySchemaProvider, SchemaProvider, TableProvider};
use datafusion::dataframe::DataFrame;
use datafusion::error::DataFusionError;
use datafusion::execution::context::SQLOptions;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::Statement as SqlStatement;
use ferry_connectors::ConnectorError;
use ferry_connectors::cassandra::{
    self, CassandraConfig, CassandraTable, SourceTable, SplitCount, plan_splits,
};
use ferry_connectors::staging::{StagedTable, StagingLocation};
use ferry_sql::types::{ARROW_EXTENSION_NAME_KEY, ARROW_UUID_EXTENSION};
use futures::StreamExt;
use scylla::client::session::Session;

use crate::config::{Config, TableConfig};
use crate::error::{PipelineError, Result};

/// Rows the `table` format prints unless told otherwise: it must hold them all to size columns.
pub const DEFAULT_TABLE_MAX_ROWS: usize = 1000;

/// How a query result is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// An aligned text table (arrow's pretty printer); buffered, so capped by default.
    Table,
    /// CSV with a header line, streamed batch by batch.
    Csv,
    /// One JSON object per row and line, streamed batch by batch.
    Json,
}

impl OutputFormat {
    /// The row cap when the user gives none: [`DEFAULT_TABLE_MAX_ROWS`] for `table`, none for
    /// the streamed formats.
    pub fn default_max_rows(self) -> Option<usize> {
        match self {
            OutputFormat::Table => Some(DEFAULT_TABLE_MAX_ROWS),
            OutputFormat::Csv | OutputFormat::Json => None,
        }
    }
}

/// What [`write_result`] printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryOutput {
    /// Rows written.
    pub rows: usize,
    /// Whether the row cap cut the result (the query had more rows than were printed).
    pub truncated: bool,
}

/// A DataFusion session over the configured Cassandra keyspaces, sharing one driver session, or
/// over the tables staged at one URL.
pub struct QuerySession {
    ctx: SessionContext,
    keyspaces: BTreeMap<String, Keyspace>,
    /// The staging URL the tables come from, when they are staged.
    staged_at: Option<String>,
}

/// A keyspace the session knows.
enum Keyspace {
    Cassandra(Arc<KeyspaceSchema>),
    /// The keyspace's staged tables, every one opened (and checked) up front.
    Staged(Arc<MemorySchemaProvider>),
}

impl std::fmt::Debug for QuerySession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuerySession")
            .field("session_id", &self.ctx.session_id())
            .field("keyspaces", &self.keyspaces.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl QuerySession {
    /// Connects to Cassandra once and registers the config's keyspaces.
    pub async fn connect(config: &Config) -> Result<Self> {
        let session = cassandra::connect(&config.source).await?;
        Self::new(config, session)
    }

    /// Registers the config's keyspaces over an existing driver session.
    pub fn new(config: &Config, session: Arc<Session>) -> Result<Self> {
        fn parts(table: &TableConfig) -> (&str, &str) {
            table
                .source_parts()
                .expect("Config::validate checked `keyspace.table`")
        }
        // A [[keyspace]] entry's tables are loaded when a query names them.
        let names = (config.tables.iter().map(|t| parts(t).0))
            .chain(config.keyspaces.iter().map(|k| k.name.as_str()));
        let mut keyspaces: BTreeMap<String, KeyspaceSchema> = names
            .map(|keyspace| {
                let schema = KeyspaceSchema {
                    keyspace: keyspace.to_string(),
                    session: Arc::clone(&session),
                    source: config.source.clone(),
                    default_splits: config.run.splits,
                    local_dc: config.source.local_dc.clone(),
                    configured: BTreeMap::new(),
                    loaded: Mutex::default(),
                };
                (keyspace.to_string(), schema)
            })
            .collect();
        for table in &config.tables {
            let (keyspace, name) = parts(table);
            if let Some(schema) = keyspaces.get_mut(keyspace) {
                let splits = table.splits.unwrap_or(config.run.splits);
                schema.configured.insert(name.to_string(), splits);
            }
        }
        let ctx = query_session_context();
        let catalog_name = ctx
            .state()
            .config()
            .options()
            .catalog
            .default_catalog
            .clone();
        let catalog = ctx.catalog(&catalog_name).ok_or_else(|| {
            DataFusionError::Internal(format!("the default catalog {catalog_name} is missing"))
        })?;
        let keyspaces: BTreeMap<String, Arc<KeyspaceSchema>> = keyspaces
            .into_iter()
            .map(|(k, s)| (k, Arc::new(s)))
            .collect();
        for (name, schema) in &keyspaces {
            catalog.register_schema(name, Arc::clone(schema) as Arc<dyn SchemaProvider>)?;
        }
        let keyspaces = keyspaces
            .into_iter()
            .map(|(k, s)| (k, Keyspace::Cassandra(s)))
            .collect();
        Ok(Self {
            ctx,
            keyspaces,
            staged_at: None,
        })
    }

    /// A session over every table staged at `location` (`keyspace.table` folders with a
    /// manifest), each checked against its manifest as it is opened. Cassandra is not needed.
    pub async fn staged(location: &StagingLocation) -> Result<Self> {
        let names = location.tables().await?;
        if names.is_empty() {
            return Err(ConnectorError::Staged {
                path: location.url().to_string(),
                message: "no staged table here (no <keyspace>.<table>/_manifest.json); run \
                          `ferry dump` first, or check the URL"
                    .into(),
            }
            .into());
        }
        let ctx = query_session_context();
        let catalog_name = ctx
            .state()
            .config()
            .options()
            .catalog
            .default_catalog
            .clone();
        let catalog = ctx.catalog(&catalog_name).ok_or_else(|| {
            DataFusionError::Internal(format!("the default catalog {catalog_name} is missing"))
        })?;
        let mut keyspaces: BTreeMap<String, Arc<MemorySchemaProvider>> = BTreeMap::new();
        for name in names {
            let Some((keyspace, table)) = name.split_once('.') else {
                continue;
            };
            let staged = StagedTable::open(location.table(&name)).await?;
            let schema = keyspaces
                .entry(keyspace.to_string())
                .or_insert_with(|| Arc::new(MemorySchemaProvider::new()));
            schema.register_table(table.to_string(), Arc::new(staged))?;
        }
        for (name, schema) in &keyspaces {
            catalog.register_schema(name, Arc::clone(schema) as Arc<dyn SchemaProvider>)?;
        }
        Ok(Self {
            ctx,
            keyspaces: keyspaces
                .into_iter()
                .map(|(k, s)| (k, Keyspace::Staged(s)))
                .collect(),
            staged_at: Some(location.url().to_string()),
        })
    }

    /// The DataFusion session, e.g. to register UDFs or more tables.
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// Plans one query. Anything wrong with the query itself (syntax, an unknown keyspace, table
    /// or column, DDL or DML) is [`PipelineError::Query`]; a Cassandra failure while reading a
    /// table's schema is a connector error.
    pub async fn sql(&self, sql: &str) -> Result<DataFrame> {
        let sql = sql.trim().trim_end_matches(';');
        if sql.trim().is_empty() {
            return Err(PipelineError::Query("the query is empty".into()));
        }
        let state = self.ctx.state();
        let options = state.config().options();
        let dialect = options.sql_parser.dialect;
        let (default_catalog, default_schema) = (
            options.catalog.default_catalog.clone(),
            options.catalog.default_schema.clone(),
        );
        let statement = state
            .sql_to_statement(sql, &dialect)
            .map_err(|e| PipelineError::Query(e.strip_backtrace()))?;
        // Resolve a query's tables here first, so a missing one is named as `keyspace.table`
        // (DataFusion would say `datafusion.ks.t`, or blame the schema `public` for an
        // unqualified name). Other statements go straight to `SQLOptions`, which refuses them.
        let references = if is_query(&statement) {
            state
                .resolve_table_references(&statement)
                .map_err(|e| PipelineError::Query(e.strip_backtrace()))?
        } else {
            Vec::new()
        };
        for reference in references {
            let written = reference.to_string();
            // Table functions (`generate_series(1, 10)`) show up as bare table references.
            if reference.schema().is_none() && state.table_functions().contains_key(&written) {
                continue;
            }
            let resolved = reference.resolve(&default_catalog, &default_schema);
            if resolved.schema.as_ref() == "information_schema" {
                continue;
            }
            if resolved.catalog.as_ref() != default_catalog {
                return Err(PipelineError::Query(format!(
                    "table {written}: unknown catalog {}; name tables `keyspace.table`",
                    resolved.catalog
                )));
            }
            let Some(keyspace) = self.keyspaces.get(resolved.schema.as_ref()) else {
                return Err(self.unknown_keyspace(&written, &resolved.schema, &default_schema));
            };
            match keyspace {
                Keyspace::Cassandra(keyspace) => {
                    if keyspace.load(&resolved.table).await?.is_none() {
                        return Err(PipelineError::Query(format!(
                            "Cassandra table {}.{} does not exist",
                            keyspace.keyspace, resolved.table
                        )));
                    }
                }
                Keyspace::Staged(tables) => {
                    if !tables.table_exist(&resolved.table) {
                        return Err(PipelineError::Query(format!(
                            "no staged table {}.{} at {} (staged there: {})",
                            resolved.schema,
                            resolved.table,
                            self.staged_at.as_deref().unwrap_or("the staging URL"),
                            self.staged_tables().join(", ")
                        )));
                    }
                }
            }
        }
        // Queries only: `ferry query` must never create, change or drop anything.
        let options = SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false);
        self.ctx
            .sql_with_options(sql, options)
            .await
            .map_err(classify_planning_error)
    }

    /// Every staged table, `keyspace.table`.
    fn staged_tables(&self) -> Vec<String> {
        let mut names = Vec::new();
        for (name, keyspace) in &self.keyspaces {
            if let Keyspace::Staged(tables) = keyspace {
                let mut inside = tables.table_names();
                inside.sort();
                names.extend(inside.into_iter().map(|t| format!("{name}.{t}")));
            }
        }
        names
    }

    fn unknown_keyspace(&self, written: &str, schema: &str, default_schema: &str) -> PipelineError {
        if let Some(url) = &self.staged_at {
            return PipelineError::Query(format!(
                "table {written} not found: name tables `keyspace.table`; staged at {url}: {}",
                self.staged_tables().join(", ")
            ));
        }
        let known = self
            .keyspaces
            .keys()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(", ");
        if schema == default_schema && !written.contains('.') {
            PipelineError::Query(format!(
                "table {written} not found: name tables `keyspace.table` (configured keyspaces: \
                 {known})"
            ))
        } else {
            PipelineError::Query(format!(
                "table {written} not found: keyspace {schema} has no [[table]] in the config \
                 (configured keyspaces: {known})"
            ))
        }
    }
}

/// Unlike [`crate::plan::session_context`], which never repartitions because partition k must
/// stay split k (one work unit, one checkpoint), a query has no units: DataFusion may hash-
/// repartition aggregations, joins and sorts across every core, which is what makes `GROUP BY`
/// over many splits fast. `information_schema` is on so `SHOW TABLES` works.
fn query_session_context() -> SessionContext {
    let ctx = SessionContext::new_with_config(SessionConfig::new().with_information_schema(true));
    ferry_sql::udf::register(&ctx);
    ctx
}

/// Whether `statement` is a query (`SELECT`, `WITH`, `VALUES`, …), possibly under `EXPLAIN`.
fn is_query(statement: &DfStatement) -> bool {
    match statement {
        DfStatement::Statement(s) => matches!(s.as_ref(), SqlStatement::Query(_)),
        DfStatement::Explain(e) => is_query(&e.statement),
        _ => false,
    }
}

/// A connector failure behind a planning error stays a connector error (exit 1); anything else
/// is the query's fault (exit 2).
fn classify_planning_error(err: DataFusionError) -> PipelineError {
    if let DataFusionError::External(e) = err.find_root()
        && e.downcast_ref::<ConnectorError>().is_some()
    {
        return PipelineError::DataFusion(err);
    }
    PipelineError::Query(err.strip_backtrace())
}

/// One Cassandra keyspace as a DataFusion schema. Tables are read from `system_schema` on first
/// use and kept; configured tables use their `splits`, other tables `run.splits`.
#[derive(Debug)]
pub struct KeyspaceSchema {
    keyspace: String,
    session: Arc<Session>,
    source: CassandraConfig,
    default_splits: SplitCount,
    /// Datacenter whose replicas serve the reads.
    local_dc: Option<String>,
    /// The `[[table]]` entries of this keyspace: name → splits.
    configured: BTreeMap<String, SplitCount>,
    loaded: Mutex<HashMap<String, Arc<CassandraTable>>>,
}

impl KeyspaceSchema {
    /// The table `name`, read from Cassandra on first use; `None` when it does not exist.
    pub async fn load(&self, name: &str) -> Result<Option<Arc<CassandraTable>>, ConnectorError> {
        if let Some(table) = self.cached(name) {
            return Ok(Some(table));
        }
        let source = match SourceTable::load(&self.session, &self.keyspace, name).await {
            Ok(source) => source,
            Err(ConnectorError::SourceTableNotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let splits = self
            .configured
            .get(name)
            .copied()
            .unwrap_or(self.default_splits);
        let splits = plan_splits(
            &self.session,
            &self.keyspace,
            name,
            splits,
            self.local_dc.as_deref(),
        )
        .await?;
        tracing::debug!(keyspace = %self.keyspace, table = name, splits = splits.len(), "table schema loaded");
        let table = Arc::new(
            CassandraTable::new(
                Arc::clone(&self.session),
                source,
                splits,
                self.source.page_size,
            )
            .with_max_requests(self.source.max_concurrent_requests)
            .with_max_rows_per_s(self.source.max_rows_per_s.map(u64::from))
            .with_filter_pushdown(self.source.filter_pushdown),
        );
        // Two concurrent first uses may both load; the second insert is as good as the first.
        self.loaded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.to_string(), Arc::clone(&table));
        Ok(Some(table))
    }

    fn cached(&self, name: &str) -> Option<Arc<CassandraTable>> {
        self.loaded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
    }
}

#[async_trait]
impl SchemaProvider for KeyspaceSchema {
    /// The configured tables and any other table already used; listing the whole keyspace
    /// would take a round trip this synchronous method cannot make.
    fn table_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.configured.keys().cloned().collect();
        names.extend(
            self.loaded
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .keys()
                .cloned(),
        );
        names.sort();
        names.dedup();
        names
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>, DataFusionError> {
        Ok(self.load(name).await?.map(|t| t as Arc<dyn TableProvider>))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.configured.contains_key(name) || self.cached(name).is_some()
    }
}

/// Executes `df` and writes its rows to `out` in `format`, batch by batch for CSV and JSON.
/// With `max_rows`, at most that many rows are read past the limit (the plan gets `LIMIT n+1`,
/// pushed down to Cassandra where it can be) and printed.
pub async fn write_result<W: Write>(
    df: DataFrame,
    format: OutputFormat,
    max_rows: Option<usize>,
    out: W,
) -> Result<QueryOutput> {
    // `EXPLAIN` must stay the root of its plan; its few rows are capped below like any others.
    let explain = matches!(
        df.logical_plan(),
        LogicalPlan::Explain(_) | LogicalPlan::Analyze(_)
    );
    let df = match max_rows {
        Some(n) if !explain => df.limit(0, Some(n.saturating_add(1)))?,
        _ => df,
    };
    let mut stream = df.execute_stream().await?;
    let empty = uuids_to_text(&RecordBatch::new_empty(stream.schema())).map_err(output_err)?;
    let mut out = PipeWatch::new(out);
    let mut sink = Sink::new(format, &mut out, empty.schema());
    let mut output = QueryOutput {
        rows: 0,
        truncated: false,
    };
    let result = async {
        if format == OutputFormat::Csv {
            // The header, even when no row follows.
            sink.write(&empty)?;
        }
        while let Some(batch) = stream.next().await {
            let mut batch = batch?;
            if let Some(n) = max_rows {
                let room = n - output.rows;
                if batch.num_rows() > room {
                    batch = batch.slice(0, room);
                    output.truncated = true;
                }
            }
            if batch.num_rows() > 0 {
                sink.write(&uuids_to_text(&batch).map_err(output_err)?)?;
                output.rows += batch.num_rows();
            }
            if output.truncated {
                break;
            }
        }
        sink.finish()
    }
    .await;
    match result {
        // The reader went away (`ferry query … | head`): stop quietly, like other Unix tools.
        Err(_) if out.closed => Ok(output),
        Err(e) => Err(e),
        Ok(()) => Ok(output),
    }
}

fn output_err(source: ArrowError) -> PipelineError {
    PipelineError::Output { source }
}

/// The per-format writer.
enum Sink<'a, W: Write> {
    Table {
        out: &'a mut W,
        schema: Arc<Schema>,
        batches: Vec<RecordBatch>,
    },
    Csv(Box<arrow::csv::Writer<&'a mut W>>),
    Json(arrow::json::LineDelimitedWriter<&'a mut W>),
}

impl<'a, W: Write> Sink<'a, W> {
    fn new(format: OutputFormat, out: &'a mut W, schema: Arc<Schema>) -> Self {
        match format {
            OutputFormat::Table => Sink::Table {
                out,
                schema,
                batches: Vec::new(),
            },
            OutputFormat::Csv => Sink::Csv(Box::new(
                arrow::csv::WriterBuilder::new()
                    .with_header(true)
                    .build(out),
            )),
            OutputFormat::Json => Sink::Json(
                arrow::json::WriterBuilder::new()
                    .with_explicit_nulls(true)
                    .build::<_, arrow::json::writer::LineDelimited>(out),
            ),
        }
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        match self {
            Sink::Table { batches, .. } => batches.push(batch.clone()),
            Sink::Csv(w) => {
                // arrow's CSV writer flushes after every batch by itself.
                w.write(&nested_to_text(batch).map_err(output_err)?)
                    .map_err(output_err)?;
            }
            Sink::Json(w) => {
                w.write(batch).map_err(output_err)?;
                w.get_mut().flush().map_err(io_output_err)?;
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<()> {
        match self {
            Sink::Table {
                out,
                schema,
                batches,
            } => {
                let table =
                    arrow::util::pretty::pretty_format_batches_with_schema(schema, &batches)
                        .map_err(output_err)?;
                writeln!(out, "{table}").map_err(io_output_err)?;
                out.flush().map_err(io_output_err)
            }
            Sink::Csv(w) => w.into_inner().flush().map_err(io_output_err),
            Sink::Json(mut w) => {
                w.finish().map_err(output_err)?;
                w.into_inner().flush().map_err(io_output_err)
            }
        }
    }
}

fn io_output_err(e: std::io::Error) -> PipelineError {
    output_err(ArrowError::IoError(e.to_string(), e))
}

/// Remembers whether the reader closed the pipe: arrow's CSV writer turns I/O errors into text,
/// so the error kind cannot be recovered from what it returns.
struct PipeWatch<W> {
    inner: W,
    closed: bool,
}

impl<W: Write> PipeWatch<W> {
    fn new(inner: W) -> Self {
        Self {
            inner,
            closed: false,
        }
    }

    fn watch<T>(&mut self, result: std::io::Result<T>) -> std::io::Result<T> {
        if let Err(e) = &result
            && e.kind() == std::io::ErrorKind::BrokenPipe
        {
            self.closed = true;
        }
        result
    }
}

impl<W: Write> Write for PipeWatch<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let result = self.inner.write(buf);
        self.watch(result)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let result = self.inner.flush();
        self.watch(result)
    }
}

/// Whether `field` is a UUID: `FixedSizeBinary(16)` tagged with the `arrow.uuid` extension, or
/// with no extension tag at all. DataFusion drops field metadata through most functions
/// (`min(id)`, `coalesce(a, b)`), and Ferry's sources produce `FixedSizeBinary(16)` only for
/// `uuid` and `timeuuid`, so an untagged one is a UUID that lost its tag.
pub fn is_uuid(field: &Field) -> bool {
    matches!(field.data_type(), DataType::FixedSizeBinary(16))
        && field
            .metadata()
            .get(ARROW_EXTENSION_NAME_KEY)
            .is_none_or(|name| name == ARROW_UUID_EXTENSION)
}

/// Whether `field` is a UUID or holds one (in a list, set, map or UDT).
fn holds_uuid(field: &Field) -> bool {
    is_uuid(field)
        || match field.data_type() {
            DataType::List(child) | DataType::LargeList(child) | DataType::Map(child, _) => {
                holds_uuid(child)
            }
            DataType::Struct(fields) => fields.iter().any(|f| holds_uuid(f)),
            _ => false,
        }
}

/// Replaces every UUID column ([`is_uuid`], also inside lists, maps and structs) with its
/// hyphenated lower-case text (`Utf8`), so every output format prints `5f0c…-…` instead of 32 hex digits. Batches without
/// UUIDs are returned as they are.
pub fn uuids_to_text(batch: &RecordBatch) -> Result<RecordBatch, ArrowError> {
    let schema = batch.schema();
    if !schema.fields().iter().any(|f| holds_uuid(f)) {
        return Ok(batch.clone());
    }
    let mut fields = Vec::with_capacity(batch.num_columns());
    let mut columns = Vec::with_capacity(batch.num_columns());
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        let (field, column) = column_uuids_to_text(field, column)?;
        fields.push(field);
        columns.push(column);
    }
    let schema = Schema::new_with_metadata(fields, schema.metadata().clone());
    RecordBatch::try_new_with_options(
        Arc::new(schema),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )
}

fn column_uuids_to_text(
    field: &FieldRef,
    array: &ArrayRef,
) -> Result<(FieldRef, ArrayRef), ArrowError> {
    if !holds_uuid(field) {
        return Ok((Arc::clone(field), Arc::clone(array)));
    }
    let (data_type, array): (DataType, ArrayRef) = match field.data_type() {
        DataType::FixedSizeBinary(16) => (DataType::Utf8, uuid_array_to_text(array)?),
        DataType::List(child) => {
            let list = array.as_list::<i32>();
            let (child, values) = column_uuids_to_text(child, list.values())?;
            let list = ListArray::try_new(
                Arc::clone(&child),
                list.offsets().clone(),
                values,
                list.nulls().cloned(),
            )?;
            (DataType::List(child), Arc::new(list))
        }
        DataType::LargeList(child) => {
            let list = array.as_list::<i64>();
            let (child, values) = column_uuids_to_text(child, list.values())?;
            let list = LargeListArray::try_new(
                Arc::clone(&child),
                list.offsets().clone(),
                values,
                list.nulls().cloned(),
            )?;
            (DataType::LargeList(child), Arc::new(list))
        }
        DataType::Struct(children) => {
            let (fields, columns) = struct_uuids_to_text(children, array.as_struct())?;
            let nulls = array.nulls().cloned();
            let array = StructArray::try_new(fields.clone(), columns, nulls)?;
            (DataType::Struct(fields), Arc::new(array))
        }
        DataType::Map(entries, sorted) => {
            let map = array.as_map();
            let DataType::Struct(children) = entries.data_type() else {
                return Err(ArrowError::InvalidArgumentError(format!(
                    "map column {} has non-struct entries",
                    field.name()
                )));
            };
            let (fields, columns) = struct_uuids_to_text(children, map.entries())?;
            let entries_array = StructArray::try_new(fields.clone(), columns, None)?;
            let entries = Arc::new(
                entries
                    .as_ref()
                    .clone()
                    .with_data_type(DataType::Struct(fields)),
            );
            let map = MapArray::try_new(
                Arc::clone(&entries),
                map.offsets().clone(),
                entries_array,
                map.nulls().cloned(),
                *sorted,
            )?;
            (DataType::Map(entries, *sorted), Arc::new(map))
        }
        _ => return Ok((Arc::clone(field), Arc::clone(array))),
    };
    // The extension tag described the 16 bytes; it would be wrong on the text.
    let mut metadata = field.metadata().clone();
    if is_uuid(field) {
        metadata.remove(ARROW_EXTENSION_NAME_KEY);
        metadata.remove("ARROW:extension:metadata");
    }
    let field = field
        .as_ref()
        .clone()
        .with_data_type(data_type)
        .with_metadata(metadata);
    Ok((Arc::new(field), array))
}

fn struct_uuids_to_text(
    children: &Fields,
    array: &StructArray,
) -> Result<(Fields, Vec<ArrayRef>), ArrowError> {
    let mut fields = Vec::with_capacity(children.len());
    let mut columns = Vec::with_capacity(children.len());
    for (child, column) in children.iter().zip(array.columns()) {
        let (child, column) = column_uuids_to_text(child, column)?;
        fields.push(child);
        columns.push(column);
    }
    Ok((Fields::from(fields), columns))
}

fn uuid_array_to_text(array: &ArrayRef) -> Result<ArrayRef, ArrowError> {
    let bytes = array.as_fixed_size_binary();
    let mut text = StringBuilder::with_capacity(bytes.len(), bytes.len() * 36);
    let mut buffer = uuid::Uuid::encode_buffer();
    for value in bytes.iter() {
        match value {
            Some(value) => {
                let value = <[u8; 16]>::try_from(value).map_err(|_| {
                    ArrowError::InvalidArgumentError(format!(
                        "a UUID has {} bytes, not 16",
                        value.len()
                    ))
                })?;
                text.append_value(
                    uuid::Uuid::from_bytes(value)
                        .hyphenated()
                        .encode_lower(&mut buffer),
                );
            }
            None => text.append_null(),
        }
    }
    Ok(Arc::new(text.finish()))
}

/// CSV has no nested values: lists, sets, maps and UDTs become their display text
/// (`[1, 2]`, `{a: 1}`), which arrow's CSV writer would otherwise refuse.
fn nested_to_text(batch: &RecordBatch) -> Result<RecordBatch, ArrowError> {
    let schema = batch.schema();
    if !schema.fields().iter().any(|f| f.data_type().is_nested()) {
        return Ok(batch.clone());
    }
    let options = FormatOptions::default();
    let mut fields = Vec::with_capacity(batch.num_columns());
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(batch.num_columns());
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        if !field.data_type().is_nested() {
            fields.push(Arc::clone(field));
            columns.push(Arc::clone(column));
            continue;
        }
        let formatter = ArrayFormatter::try_new(column.as_ref(), &options)?;
        let mut text = StringBuilder::with_capacity(column.len(), column.len() * 16);
        for i in 0..column.len() {
            if column.is_null(i) {
                text.append_null();
            } else {
                text.append_value(formatter.value(i).try_to_string()?);
            }
        }
        fields.push(Arc::new(
            field.as_ref().clone().with_data_type(DataType::Utf8),
        ));
        columns.push(Arc::new(text.finish()));
    }
    RecordBatch::try_new_with_options(
        Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone())),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use arrow::array::FixedSizeBinaryBuilder;
    use arrow::array::{FixedSizeBinaryArray, Int32Array, ListBuilder, StringArray};

    use super::*;

    const A: &str = "5f0c6f5e-1b2a-4c3d-8e9f-0a1b2c3d4e5f";
    const B: &str = "00000000-0000-0000-0000-0000000000ff";

    fn uuid_field(name: &str) -> Field {
        Field::new(name, DataType::FixedSizeBinary(16), true).with_metadata(HashMap::from([
            (
                ARROW_EXTENSION_NAME_KEY.to_string(),
                ARROW_UUID_EXTENSION.to_string(),
            ),
            ("ferry.cql_type".to_string(), "timeuuid".to_string()),
        ]))
    }

    fn uuid_bytes(text: &str) -> [u8; 16] {
        *uuid::Uuid::parse_str(text).expect("valid uuid").as_bytes()
    }

    fn uuid_column(values: &[Option<&str>]) -> ArrayRef {
        let bytes: Vec<Option<[u8; 16]>> = values.iter().map(|v| v.map(uuid_bytes)).collect();
        Arc::new(
            FixedSizeBinaryArray::try_from_sparse_iter_with_size(bytes.into_iter(), 16)
                .expect("valid uuids"),
        )
    }

    #[test]
    fn uuid_columns_become_hyphenated_text_with_nulls_kept() {
        let schema = Schema::new(vec![
            uuid_field("id"),
            Field::new("n", DataType::Int32, false),
        ]);
        let batch = RecordBatch::try_new(
            Arc::new(schema),
            vec![
                uuid_column(&[Some(A), None, Some(B)]),
                Arc::new(Int32Array::from(vec![1, 2, 3])),
            ],
        )
        .expect("valid batch");
        let out = uuids_to_text(&batch).expect("converts");
        let field = out.schema().field(0).clone();
        assert_eq!(field.data_type(), &DataType::Utf8);
        assert!(field.metadata().get(ARROW_EXTENSION_NAME_KEY).is_none());
        assert_eq!(
            field.metadata().get("ferry.cql_type").map(String::as_str),
            Some("timeuuid")
        );
        let text = out.column(0).as_string::<i32>();
        assert_eq!(text, &StringArray::from(vec![Some(A), None, Some(B)]));
        // Other columns are untouched.
        assert_eq!(out.column(1), batch.column(1));
    }

    #[test]
    fn untagged_uuids_convert_but_other_extensions_and_uuid_free_batches_do_not() {
        // What `min(id)` returns: the bytes without the extension tag.
        let untagged = Schema::new(vec![Field::new("m", DataType::FixedSizeBinary(16), true)]);
        let batch = RecordBatch::try_new(Arc::new(untagged), vec![uuid_column(&[Some(A)])])
            .expect("valid batch");
        let out = uuids_to_text(&batch).expect("converts");
        assert_eq!(
            out.column(0).as_string::<i32>(),
            &StringArray::from(vec![A])
        );

        let other = Field::new("h", DataType::FixedSizeBinary(16), true).with_metadata(
            HashMap::from([(ARROW_EXTENSION_NAME_KEY.to_string(), "x.hash".to_string())]),
        );
        let batch = RecordBatch::try_new(
            Arc::new(Schema::new(vec![other])),
            vec![uuid_column(&[Some(A)])],
        )
        .expect("valid batch");
        assert_eq!(uuids_to_text(&batch).expect("converts"), batch);

        let ints = Schema::new(vec![Field::new("n", DataType::Int32, false)]);
        let batch = RecordBatch::try_new(Arc::new(ints), vec![Arc::new(Int32Array::from(vec![1]))])
            .expect("valid batch");
        assert_eq!(uuids_to_text(&batch).expect("converts"), batch);
    }

    #[test]
    fn uuids_inside_lists_become_text() {
        let child = Arc::new(uuid_field("item"));
        let mut builder =
            ListBuilder::new(FixedSizeBinaryBuilder::new(16)).with_field(Arc::clone(&child));
        builder
            .values()
            .append_value(uuid_bytes(A))
            .expect("16 bytes");
        builder
            .values()
            .append_value(uuid_bytes(B))
            .expect("16 bytes");
        builder.append(true);
        builder.append(false);
        let list: ArrayRef = Arc::new(builder.finish());
        let schema = Schema::new(vec![Field::new("ids", list.data_type().clone(), true)]);
        let batch = RecordBatch::try_new(Arc::new(schema), vec![list]).expect("valid batch");
        let out = uuids_to_text(&batch).expect("converts");
        let list = out.column(0).as_list::<i32>();
        assert!(list.is_null(1));
        let values = list.value(0);
        assert_eq!(values.as_string::<i32>(), &StringArray::from(vec![A, B]));
        let DataType::List(child) = out.schema().field(0).data_type().clone() else {
            panic!("still a list");
        };
        assert_eq!(child.data_type(), &DataType::Utf8);
    }

    #[test]
    fn the_table_format_prints_uuid_text() {
        let schema = Schema::new(vec![uuid_field("id")]);
        let batch = RecordBatch::try_new(Arc::new(schema), vec![uuid_column(&[Some(A)])])
            .expect("valid batch");
        let out = uuids_to_text(&batch).expect("converts");
        let table = arrow::util::pretty::pretty_format_batches(&[out])
            .expect("formats")
            .to_string();
        assert!(table.contains(A), "{table}");
    }

    #[test]
    fn nested_columns_become_display_text_for_csv() {
        let mut builder = ListBuilder::new(arrow::array::Int32Builder::new());
        builder.values().append_value(1);
        builder.values().append_value(2);
        builder.append(true);
        builder.append(false);
        let list: ArrayRef = Arc::new(builder.finish());
        let schema = Schema::new(vec![Field::new("xs", list.data_type().clone(), true)]);
        let batch = RecordBatch::try_new(Arc::new(schema), vec![list]).expect("valid batch");
        let out = nested_to_text(&batch).expect("converts");
        assert_eq!(
            out.column(0).as_string::<i32>(),
            &StringArray::from(vec![Some("[1, 2]"), None])
        );
    }

    #[test]
    fn only_queries_have_their_tables_resolved_first() {
        let state = SessionContext::new().state();
        let dialect = state.config().options().sql_parser.dialect;
        let parse = |sql: &str| state.sql_to_statement(sql, &dialect).expect("parses");
        assert!(is_query(&parse("SELECT * FROM ks.t")));
        assert!(is_query(&parse("WITH a AS (SELECT 1) SELECT * FROM a")));
        assert!(is_query(&parse("EXPLAIN SELECT * FROM ks.t")));
        assert!(!is_query(&parse("CREATE TABLE x AS SELECT 1")));
        assert!(!is_query(&parse("DROP TABLE ks.t")));
        assert!(!is_query(&parse("INSERT INTO ks.t VALUES (1)")));
    }

    #[test]
    fn broken_pipes_are_remembered() {
        struct Closed;
        impl Write for Closed {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut out = PipeWatch::new(Closed);
        assert!(out.write_all(b"x").is_err());
        assert!(out.closed);
    }
}
