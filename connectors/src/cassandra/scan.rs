//! [`CassandraTable`] (a DataFusion `TableProvider`) and [`CassandraScanExec`], whose partition k
//! reads split k.
//!
//! Each partition pages manually through its token ranges: as soon as a page arrives, the request
//! for the next one is sent, and the current page is decoded from the frame into Arrow builders
//! while the next is on the wire. One page = one record batch.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arrow::array::{ArrayRef, RecordBatch, RecordBatchOptions};
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::Session as DfSession;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::Expr;
use datafusion::logical_expr::TableProviderFilterPushDown;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    ChildrenPropertiesMode, DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning,
    PlanProperties, ReplaceChildrenOptions, SendableRecordBatchStream,
};
use futures::stream;
use scylla::client::session::Session;
use scylla::deserialize::row::ColumnIterator;
use scylla::response::query_result::QueryResult;
use scylla::response::{PagingState, PagingStateResponse};
use scylla::statement::prepared::PreparedStatement;
use scylla::value::CqlValue;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use super::pushdown::{CqlCondition, Pushdown};
use super::rate::RowRate;
use super::ring::{Split, TokenRange};
use super::routing::ReplicaRouting;
use super::session::{SourceTable, cassandra_err, quote_cql};
use super::types::ColumnDecoder;
use crate::error::{ConnectorError, Result};

/// Attempts per page before a retriable error fails the split.
const PAGE_ATTEMPTS: u32 = 6;
/// From this attempt on, a retried page asks for half as many rows each time.
const SHRINK_PAGE_FROM_ATTEMPT: u32 = 3;
/// The smallest page a retry shrinks to.
const MIN_PAGE_SIZE: i32 = 16;
/// Ranges narrower than this many tokens are not bisected further.
const BISECT_FLOOR: u128 = 1 << 16;

/// Page requests in flight per table when the config does not say.
pub const DEFAULT_MAX_REQUESTS: usize = 64;

/// The rows a page of `statement` holds at most.
fn page_rows(statement: &PreparedStatement) -> u64 {
    statement.get_page_size().max(1) as u64
}

/// Counters shared by every partition of a scan; read them for progress and reports.
#[derive(Debug, Default)]
pub struct ScanCounters {
    /// Rows decoded.
    pub rows: AtomicU64,
    /// Pages fetched.
    pub pages: AtomicU64,
    /// Bytes of row data received.
    pub bytes: AtomicU64,
    /// Cassandra "empty" values (zero-length non-text cells) turned into NULL.
    pub empty_values: AtomicU64,
    /// Page requests retried after a retriable error.
    pub retries: AtomicU64,
    /// Token ranges cut in two because their first page kept timing out.
    pub bisections: AtomicU64,
    /// The nodes that coordinated each split's pages, by split index.
    pub coordinators: Mutex<BTreeMap<usize, BTreeSet<String>>>,
}

/// A Cassandra table as a DataFusion table, partitioned by token-range splits.
#[derive(Debug)]
pub struct CassandraTable {
    session: Arc<Session>,
    source: Arc<SourceTable>,
    splits: Arc<Vec<Split>>,
    page_size: i32,
    permits: Arc<Semaphore>,
    rate: Option<Arc<RowRate>>,
    filter_pushdown: bool,
    counters: Arc<ScanCounters>,
}

impl CassandraTable {
    /// A table over `source`, read in `splits` (partition k = `splits[k]`).
    pub fn new(
        session: Arc<Session>,
        source: SourceTable,
        splits: Vec<Split>,
        page_size: i32,
    ) -> Self {
        Self {
            session,
            source: Arc::new(source),
            splits: Arc::new(splits),
            page_size,
            permits: Arc::new(Semaphore::new(DEFAULT_MAX_REQUESTS)),
            rate: None,
            filter_pushdown: true,
            counters: Arc::default(),
        }
    }

    /// Whether simple filters go to Cassandra with `ALLOW FILTERING` (see [`super::pushdown`]).
    pub fn with_filter_pushdown(mut self, enabled: bool) -> Self {
        self.filter_pushdown = enabled;
        self
    }

    /// Caps the page requests in flight across all partitions of this table's scans (at least
    /// one). Without a cap, a query that runs every partition at once sends two requests per split.
    pub fn with_max_requests(mut self, max: usize) -> Self {
        self.permits = Arc::new(Semaphore::new(max.max(1)));
        self
    }

    /// Caps the rows per second this table's scans read, over all their partitions (`None`: no
    /// cap). See [`RowRate`].
    pub fn with_max_rows_per_s(mut self, max: Option<u64>) -> Self {
        self.rate = max.map(|r| Arc::new(RowRate::new(r)));
        self
    }

    /// The table's schema as read from Cassandra.
    pub fn source(&self) -> &SourceTable {
        &self.source
    }

    /// The splits, in partition order.
    pub fn splits(&self) -> &[Split] {
        &self.splits
    }

    /// Counters of every scan of this table.
    pub fn counters(&self) -> Arc<ScanCounters> {
        Arc::clone(&self.counters)
    }

    /// Plans a scan of `projection` (all columns when `None`); `limit` caps each partition.
    pub async fn scan_exec(
        &self,
        projection: Option<&Vec<usize>>,
        limit: Option<usize>,
    ) -> Result<CassandraScanExec> {
        self.scan_exec_filtered(projection, &[], limit).await
    }

    /// Like [`Self::scan_exec`], reading only the partition `filters` pin down when they fix the
    /// whole partition key (see [`super::pushdown`]).
    pub async fn scan_exec_filtered(
        &self,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<CassandraScanExec> {
        let all: Vec<usize> = (0..self.source.columns.len()).collect();
        let columns = projection.cloned().unwrap_or(all);
        for &i in &columns {
            let c = &self.source.columns[i];
            if ColumnDecoder::new(&c.cql_type, 0).is_none() {
                return Err(ConnectorError::UnsupportedSourceType {
                    table: self.source.qualified_name(),
                    column: c.name.clone(),
                    cql_type: c.cql_type.to_string(),
                });
            }
        }
        let full = self.source.arrow_schema();
        let schema = Arc::new(full.project(&columns).map_err(DataFusionError::from)?);
        // An empty projection (e.g. COUNT(*)) still has to select something.
        let selected: Vec<String> = if columns.is_empty() {
            vec![quote_cql(&self.source.columns[0].name)]
        } else {
            columns
                .iter()
                .map(|&i| SourceTable::select_expr(&self.source.columns[i]))
                .collect()
        };
        let key: Vec<String> = self
            .source
            .partition_key()
            .map(|c| quote_cql(&c.name))
            .collect();
        let token = format!("token({})", key.join(", "));
        let filter_refs: Vec<&Expr> = filters.iter().collect();
        let mut pushdown = Pushdown::analyze(
            &self.session,
            &self.source,
            &filter_refs,
            self.filter_pushdown,
        );
        let key_condition = match &pushdown.lookup {
            Some(_) => key
                .iter()
                .map(|k| format!("{k} = ?"))
                .collect::<Vec<_>>()
                .join(" AND "),
            None => format!("{token} > ? AND {token} <= ?"),
        };
        let select = format!(
            "SELECT {} FROM {}.{} WHERE {key_condition}",
            selected.join(", "),
            quote_cql(&self.source.keyspace),
            quote_cql(&self.source.table),
        );
        let with_conditions = |conditions: &[CqlCondition]| {
            let mut cql = select.clone();
            for c in conditions {
                cql.push_str(" AND ");
                cql.push_str(&c.cql());
            }
            if let Some(n) = limit {
                cql.push_str(&format!(" LIMIT {n}"));
            }
            if !conditions.is_empty() {
                cql.push_str(" ALLOW FILTERING");
            }
            cql
        };
        let mut cql = with_conditions(&pushdown.conditions);
        let mut prepared = self.session.prepare(cql.as_str()).await;
        if prepared.is_err() && !pushdown.conditions.is_empty() {
            // Inexact filters are an optimisation: when Cassandra refuses them (a restriction
            // this version does not allow), DataFusion alone applies them.
            tracing::debug!(table = %self.source.qualified_name(), cql, "Cassandra refused the pushed-down filters");
            pushdown.conditions.clear();
            cql = with_conditions(&[]);
            prepared = self.session.prepare(cql.as_str()).await;
        }
        let mut statement = prepared.map_err(|e| cassandra_err("prepare", e))?;
        statement.set_page_size(self.page_size);
        statement.set_is_idempotent(true);
        Ok(CassandraScanExec::new(ScanRecipe {
            session: Arc::clone(&self.session),
            source: Arc::clone(&self.source),
            splits: Arc::clone(&self.splits),
            columns,
            schema,
            statement,
            cql,
            limit,
            pushdown: Arc::new(pushdown),
            permits: Arc::clone(&self.permits),
            rate: self.rate.clone(),
            counters: Arc::clone(&self.counters),
        }))
    }
}

#[async_trait]
impl TableProvider for CassandraTable {
    fn schema(&self) -> SchemaRef {
        self.source.arrow_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn DfSession,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(
            self.scan_exec_filtered(projection, filters, limit).await?,
        ))
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        Ok(Pushdown::analyze(&self.session, &self.source, filters, self.filter_pushdown).verdicts)
    }
}

/// Everything a partition needs to read its split.
#[derive(Debug, Clone)]
struct ScanRecipe {
    session: Arc<Session>,
    source: Arc<SourceTable>,
    splits: Arc<Vec<Split>>,
    /// Indexes into `source.columns`, in output order.
    columns: Vec<usize>,
    schema: SchemaRef,
    statement: PreparedStatement,
    cql: String,
    limit: Option<usize>,
    /// Filters the scan answers: a key lookup, token bounds, conditions bound after the token
    /// (or key) values.
    pushdown: Arc<Pushdown>,
    /// Caps the page requests in flight across every partition of the table.
    permits: Arc<Semaphore>,
    /// Caps the rows per second read across every partition of the table.
    rate: Option<Arc<RowRate>>,
    counters: Arc<ScanCounters>,
}

/// Reads token-range splits of a Cassandra table; output partition k is split k.
pub struct CassandraScanExec {
    recipe: ScanRecipe,
    properties: Arc<PlanProperties>,
}

impl fmt::Debug for CassandraScanExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CassandraScanExec")
            .field("table", &self.recipe.source.qualified_name())
            .field("splits", &self.recipe.splits.len())
            .finish()
    }
}

impl CassandraScanExec {
    fn new(recipe: ScanRecipe) -> Self {
        let properties = PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&recipe.schema)),
            Partitioning::UnknownPartitioning(recipe.splits.len().max(1)),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        Self {
            recipe,
            properties: Arc::new(properties),
        }
    }

    /// The CQL each partition runs, with its token bounds as parameters.
    pub fn cql(&self) -> &str {
        &self.recipe.cql
    }
}

impl DisplayAs for CassandraScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "CassandraScanExec: table={}, splits={}, cql={}",
            self.recipe.source.qualified_name(),
            self.recipe.splits.len(),
            self.recipe.cql
        )
    }
}

impl ExecutionPlan for CassandraScanExec {
    fn name(&self) -> &'static str {
        "CassandraScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )
    }

    fn execute(
        &self,
        partition: usize,
        _context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        let schema = Arc::clone(&self.recipe.schema);
        let Some(split) = self.recipe.splits.get(partition).cloned() else {
            // A table with no splits still has one (empty) partition.
            return Ok(Box::pin(RecordBatchStreamAdapter::new(
                schema,
                stream::empty(),
            )));
        };
        let reader = SplitReader::new(self.recipe.clone(), split);
        let batches = stream::try_unfold(reader, |mut reader| async move {
            Ok::<_, DataFusionError>(reader.next_batch().await?.map(|batch| (batch, reader)))
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, batches)))
    }
}

type PageResult = Result<(QueryResult, PagingStateResponse)>;

/// Reads one split page by page, keeping the next page request in flight.
struct SplitReader {
    recipe: ScanRecipe,
    split: Split,
    /// The statement with this split's replica routing.
    statement: PreparedStatement,
    /// Index of the range being read.
    range: usize,
    /// The page request on the wire, and whether it is the first page of its range.
    in_flight: Option<(JoinHandle<PageResult>, bool)>,
    decoders: Vec<ColumnDecoder>,
    emitted: usize,
}

impl SplitReader {
    fn new(recipe: ScanRecipe, mut split: Split) -> Self {
        split.ranges = recipe.pushdown.restrict(&split.ranges);
        if let Some(lookup) = &recipe.pushdown.lookup {
            // Only the split owning the key's token reads, and it reads just that token.
            let owns = split.ranges.iter().any(|r| r.contains(lookup.token));
            split.ranges = if owns {
                vec![TokenRange {
                    start: lookup.token - 1,
                    end: lookup.token,
                }]
            } else {
                Vec::new()
            };
        }
        let capacity = recipe.statement.get_page_size().max(1) as usize;
        let decoders = recipe
            .columns
            .iter()
            .map(|&i| {
                ColumnDecoder::new(&recipe.source.columns[i].cql_type, capacity)
                    .expect("scan_exec checked every column has a decoder")
            })
            .collect();
        let mut statement = recipe.statement.clone();
        if !split.replicas.is_empty() {
            let ids: Vec<_> = split.replicas.iter().map(|r| r.host_id).collect();
            let policy = ReplicaRouting::new(&ids, split.index);
            statement.set_load_balancing_policy(Some(Arc::new(policy)));
        }
        Self {
            recipe,
            split,
            statement,
            range: 0,
            in_flight: None,
            decoders,
            emitted: 0,
        }
    }

    fn fetch(&self, range: TokenRange, paging: PagingState) -> JoinHandle<PageResult> {
        let session = Arc::clone(&self.recipe.session);
        let mut statement = self.statement.clone();
        let pushdown = &self.recipe.pushdown;
        let mut values: Vec<CqlValue> = match &pushdown.lookup {
            Some(lookup) => lookup.values.clone(),
            None => vec![CqlValue::BigInt(range.start), CqlValue::BigInt(range.end)],
        };
        values.extend(pushdown.conditions.iter().map(|c| c.value.clone()));
        let counters = Arc::clone(&self.recipe.counters);
        let permits = Arc::clone(&self.recipe.permits);
        let rate = self.recipe.rate.clone();
        let split = self.split.index;
        tokio::spawn(async move {
            // A full page's rows, reserved once for all attempts; `decode` gives back what a
            // short page did not use.
            if let Some(rate) = &rate {
                rate.reserve(page_rows(&statement)).await;
            }
            let mut delay = Duration::from_millis(100);
            let mut attempt = 1;
            loop {
                let permit = permits
                    .acquire()
                    .await
                    .map_err(|_| ConnectorError::Cassandra {
                        what: format!("read of split {split}: the scan was shut down"),
                        source: "request permits closed".into(),
                        retriable: false,
                    })?;
                let result = session
                    .execute_single_page(&statement, &values, paging.clone())
                    .await
                    .map_err(|e| cassandra_err(&format!("read of split {split} {range:?}"), e));
                drop(permit);
                match result {
                    Err(e) if e.is_retriable() && attempt < PAGE_ATTEMPTS => {
                        tracing::warn!(split, attempt, error = %e, "page read failed, retrying");
                        counters.retries.fetch_add(1, Ordering::Relaxed);
                        if attempt >= SHRINK_PAGE_FROM_ATTEMPT {
                            // A page the server cannot produce in time (tombstones, wide rows)
                            // may come back when smaller; the paging state stays valid.
                            let smaller = (statement.get_page_size() / 2).max(MIN_PAGE_SIZE);
                            statement.set_page_size(smaller);
                        }
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(5));
                        attempt += 1;
                    }
                    other => return other,
                }
            }
        })
    }

    async fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        loop {
            if self.recipe.limit.is_some_and(|l| self.emitted >= l) {
                return Ok(None);
            }
            let (pending, first_page) = match self.in_flight.take() {
                Some(p) => p,
                None => match self.split.ranges.get(self.range) {
                    Some(&range) => (self.fetch(range, PagingState::start()), true),
                    None => return Ok(None),
                },
            };
            let result = pending.await.map_err(|e| ConnectorError::Cassandra {
                what: format!("read of split {}", self.split.index),
                source: Box::new(e),
                retriable: false,
            })?;
            let (page, paging) = match result {
                Ok(page) => page,
                Err(e) => {
                    let range = self.split.ranges[self.range];
                    if first_page && e.is_retriable() && range.width() > BISECT_FLOOR {
                        // Nothing of this range was read yet: read it as two halves instead.
                        tracing::warn!(split = self.split.index, ?range, error = %e, "bisecting a range that keeps failing");
                        self.recipe
                            .counters
                            .bisections
                            .fetch_add(1, Ordering::Relaxed);
                        let halves = range.split_evenly(2);
                        self.split.ranges.splice(self.range..=self.range, halves);
                        continue;
                    }
                    return Err(e);
                }
            };
            // Ask for the next page before decoding this one.
            match paging {
                PagingStateResponse::HasMorePages { state } => {
                    let range = self.split.ranges[self.range];
                    self.in_flight = Some((self.fetch(range, state), false));
                }
                PagingStateResponse::NoMorePages => self.range += 1,
            }
            let batch = self.decode(page)?;
            if batch.num_rows() > 0 {
                self.emitted += batch.num_rows();
                return Ok(Some(batch));
            }
        }
    }

    fn decode(&mut self, page: QueryResult) -> Result<RecordBatch> {
        let coordinator = page.request_coordinator().node().address.to_string();
        if let Ok(mut map) = self.recipe.counters.coordinators.lock() {
            map.entry(self.split.index).or_default().insert(coordinator);
        }
        let rows = page
            .into_rows_result()
            .map_err(|e| cassandra_err("page decode", e))?;
        let counters = &self.recipe.counters;
        counters.pages.fetch_add(1, Ordering::Relaxed);
        counters
            .bytes
            .fetch_add(rows.rows_bytes_size() as u64, Ordering::Relaxed);
        let mut num_rows = 0usize;
        let mut empties = 0u64;
        let iter = rows
            .rows::<ColumnIterator>()
            .map_err(|e| cassandra_err("page decode", e))?;
        for row in iter {
            let row = row.map_err(|e| cassandra_err("page decode", e))?;
            num_rows += 1;
            for (decoder, cell) in self.decoders.iter_mut().zip(row) {
                let cell = cell.map_err(|e| cassandra_err("page decode", e))?;
                match cell.slice {
                    None => decoder.push_null(),
                    Some(slice) => {
                        let empty = decoder.push(slice.as_slice()).map_err(|e| {
                            let column =
                                &self.recipe.source.columns[self.recipe.columns[cell.index]];
                            ConnectorError::Decode {
                                table: self.recipe.source.qualified_name(),
                                column: column.name.clone(),
                                cql_type: column.cql_type.to_string(),
                                split: self.split.index,
                                message: e.0,
                            }
                        })?;
                        empties += u64::from(empty);
                    }
                }
            }
        }
        counters.rows.fetch_add(num_rows as u64, Ordering::Relaxed);
        if let Some(rate) = &self.recipe.rate {
            rate.refund(page_rows(&self.statement).saturating_sub(num_rows as u64));
        }
        if empties > 0 {
            counters.empty_values.fetch_add(empties, Ordering::Relaxed);
        }
        let columns: Vec<ArrayRef> = self.decoders.iter_mut().map(|d| d.finish()).collect();
        let options = RecordBatchOptions::new().with_row_count(Some(num_rows));
        let schema: SchemaRef = Arc::clone(&self.recipe.schema);
        RecordBatch::try_new_with_options(schema, columns, &options)
            .map_err(|e| ConnectorError::DataFusion(e.into()))
    }
}
