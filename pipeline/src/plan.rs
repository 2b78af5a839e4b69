//! Planning one table: Cassandra scan → transform SQL ([`plan_source`], which needs no target) →
//! physical plan, plus the COPY encoder for the target table ([`plan_table`]). A load plans the
//! same way from staged Parquet ([`plan_staged_table`]): only the source of partition k differs.
//! Everything that can be checked before data moves is checked here.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::datatypes::{Schema, SchemaRef};
use datafusion::dataframe::DataFrame;
use datafusion::execution::TaskContext;
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties};
use datafusion::prelude::{SessionConfig, SessionContext};
use ferry_connectors::ConnectorError;
use ferry_connectors::cassandra::{CassandraTable, ScanCounters, SourceTable, Split, plan_splits};
use ferry_connectors::staging::{Manifest, StagedTable};
use ferry_connectors::yugabyte::{self, CopyEncoder, TargetTable, Upsert};
use ferry_sql::Transform;
use ferry_sql::transform::SOURCE_TABLE;
use scylla::client::session::Session;
use tokio_postgres::Client;

use crate::checkpoint::{Checkpoints, StagedUnit};
use crate::config::{Config, TableConfig, WriteMode};
use crate::error::{PipelineError, Result};
use crate::rejects::RejectFiles;

/// A table, ready to run: partition k of `plan` is work unit k.
#[derive(Debug)]
pub struct TablePlan {
    /// `keyspace.table`.
    pub source: String,
    pub target: TargetTable,
    pub plan: Arc<dyn ExecutionPlan>,
    pub task_ctx: Arc<TaskContext>,
    pub encoder: CopyEncoder,
    /// Upsert mode's temporary table and merge (`None` in the other modes).
    pub upsert: Option<Upsert>,
    /// Whether unit k is exactly split k (false when the transform regroups rows, e.g. an
    /// aggregation: then the whole table is one unit).
    pub split_aligned: bool,
    pub counters: Arc<ScanCounters>,
    pub mode: WriteMode,
    /// Rejected rows beyond which the table stops.
    pub max_rejects: Option<u64>,
    /// Where each unit's rejected rows are written.
    pub rejects: RejectFiles,
}

impl TablePlan {
    /// The number of work units.
    pub fn units(&self) -> usize {
        self.plan.output_partitioning().partition_count()
    }
}

/// A DataFusion session for transforms over `source` read in `splits` partitions.
pub fn session_context(splits: usize) -> SessionContext {
    // Never repartition: partition k must stay split k, so a unit's rows are exactly its split.
    let config = SessionConfig::new()
        .with_target_partitions(splits.max(1))
        .with_round_robin_repartition(false)
        .with_repartition_joins(false)
        .with_repartition_aggregations(false)
        .with_repartition_windows(false)
        .with_repartition_sorts(false)
        .with_repartition_file_scans(false)
        .with_information_schema(false);
    let ctx = SessionContext::new_with_config(config);
    ferry_sql::udf::register(&ctx);
    ctx
}

/// The Cassandra side of a table and its transform, planned without looking at the target.
#[derive(Debug)]
pub struct SourcePlan {
    /// The Cassandra schema, with the configured writetime/ttl columns.
    pub source: SourceTable,
    /// The transform over `source`; its schema is what the target receives.
    pub frame: DataFrame,
    /// The transform's SQL and file, to point errors into it.
    pub transform: Transform,
    /// The task context of the session the frame was planned in, to execute it.
    pub task_ctx: Arc<TaskContext>,
    /// The number of splits `source` is read in (0 when planned for its schema only).
    pub splits: usize,
    pub counters: Arc<ScanCounters>,
}

impl SourcePlan {
    /// The transform's output schema.
    pub fn output_schema(&self) -> SchemaRef {
        Arc::new(self.frame.schema().as_arrow().clone())
    }
}

/// Adds to `config.tables` every table its `[[keyspace]]` entries select, listed from the
/// cluster's schema (tables only: materialized views are not moved), then keeps only the tables
/// `--tables` names.
pub async fn expand_tables(config: &mut Config, session: &Session) -> Result<()> {
    if !config.keyspaces.is_empty() {
        session.refresh_metadata().await.map_err(|e| {
            ferry_connectors::ConnectorError::Cassandra {
                what: "schema refresh (listing [[keyspace]] tables)".into(),
                source: Box::new(e),
                retriable: true,
            }
        })?;
        let cluster = session.get_cluster_state();
        let listing: BTreeMap<String, Vec<String>> = config
            .keyspaces
            .iter()
            .filter_map(|k| {
                let keyspace = cluster.get_keyspace(&k.name)?;
                Some((k.name.clone(), keyspace.tables.keys().cloned().collect()))
            })
            .collect();
        config
            .expand_keyspaces(&listing)
            .map_err(|message| PipelineError::Config {
                path: config.path.clone(),
                message,
            })?;
    }
    config.select_tables().map_err(PipelineError::Argument)
}

/// Reads `table`'s Cassandra schema, with the writetime/ttl columns its config asks for.
pub async fn load_source(table: &TableConfig, session: &Session) -> Result<SourceTable> {
    let (keyspace, name) = table
        .source_parts()
        .expect("Config::validate checked `keyspace.table`");
    Ok(SourceTable::load(session, keyspace, name)
        .await?
        .with_metadata_columns(&table.writetime, &table.ttl)?)
}

/// Plans `table`'s transform over `source` read in `splits`. With no splits the plan can be
/// inspected (its schema) but reads nothing.
pub async fn plan_source(
    config: &Config,
    table: &TableConfig,
    session: &Arc<Session>,
    source: SourceTable,
    splits: Vec<Split>,
) -> Result<SourcePlan> {
    let k = splits.len();
    let provider = CassandraTable::new(
        Arc::clone(session),
        source.clone(),
        splits,
        config.source.page_size,
    )
    .with_max_requests(config.source.max_concurrent_requests)
    .with_max_rows_per_s(config.source.max_rows_per_s.map(u64::from))
    .with_filter_pushdown(config.source.filter_pushdown);
    let counters = provider.counters();
    let ctx = session_context(k);
    ctx.register_table(SOURCE_TABLE, Arc::new(provider))?;
    let transform = match &table.transform {
        Some(path) => Transform::from_file(&config.resolve(path))?,
        None => Transform::identity(),
    };
    let frame = transform.plan(&ctx).await?;
    Ok(SourcePlan {
        source,
        frame,
        transform,
        task_ctx: ctx.task_ctx(),
        splits: k,
        counters,
    })
}

/// Plans `table`: reads its Cassandra schema, applies the transform, checks the target.
pub async fn plan_table(
    config: &Config,
    table: &TableConfig,
    session: &Arc<Session>,
    client: &Client,
    checkpoints: &Checkpoints,
) -> Result<TablePlan> {
    let source = load_source(table, session).await?;
    let local_dc = config.source.local_dc.as_deref();
    let count = table.splits.unwrap_or(config.run.splits);
    let (keyspace, name) = (source.keyspace.clone(), source.table.clone());
    let planned = plan_splits(session, &keyspace, &name, count, local_dc);
    let splits = checkpoints
        .splits(client, session, &keyspace, &name, local_dc, planned)
        .await?;
    let planned = plan_source(config, table, session, source, splits).await?;
    let rows = TransformedRows {
        frame: planned.frame,
        transform: planned.transform,
        task_ctx: planned.task_ctx,
        splits: planned.splits,
        counters: planned.counters,
    };
    plan_target(config, table, client, rows).await
}

/// Plans `table` from staged data: partition k reads staged split k, then the transform (none
/// when the dump applied it), then the target's checks. The split plan recorded for the run is
/// the staged splits, so a resumed load finds the same units or is refused.
pub async fn plan_staged_table(
    config: &Config,
    table: &TableConfig,
    staged: Arc<StagedTable>,
    client: &Client,
    checkpoints: &Checkpoints,
) -> Result<TablePlan> {
    let units: Vec<StagedUnit> = staged
        .manifest()
        .splits
        .iter()
        .map(|s| StagedUnit {
            ranges: s.token_ranges.clone(),
            identity: format!(
                "rows={} hash={}",
                s.rows,
                s.content_hash.as_deref().unwrap_or("-")
            ),
        })
        .collect();
    checkpoints.staged_splits(client, &units).await?;
    let rows = plan_staged_source(config, table, staged).await?;
    plan_target(config, table, client, rows).await
}

/// Rows planned through their transform (partition k = split k), ready for the target side.
#[derive(Debug)]
pub struct TransformedRows {
    pub frame: DataFrame,
    /// The transform the load applies, to point errors into it.
    pub transform: Transform,
    pub task_ctx: Arc<TaskContext>,
    /// Staged splits, the source's partitions.
    pub splits: usize,
    pub counters: Arc<ScanCounters>,
}

/// Plans `table`'s load transform over its staged rows, registered as `source`.
pub async fn plan_staged_source(
    config: &Config,
    table: &TableConfig,
    staged: Arc<StagedTable>,
) -> Result<TransformedRows> {
    let k = staged.splits();
    let counters = staged.counters();
    let transform = load_transform(config, table, staged.manifest())?;
    let ctx = session_context(k);
    ctx.register_table(SOURCE_TABLE, staged)?;
    let frame = transform.plan(&ctx).await?;
    Ok(TransformedRows {
        frame,
        transform,
        task_ctx: ctx.task_ctx(),
        splits: k,
        counters,
    })
}

/// The transform a load applies: the table's, unless the dump applied a transform already (then
/// none, whatever the config says now, with a warning when the two differ).
pub fn load_transform(
    config: &Config,
    table: &TableConfig,
    manifest: &Manifest,
) -> Result<Transform> {
    let configured = match &table.transform {
        Some(path) => Some((path, Transform::from_file(&config.resolve(path))?)),
        None => None,
    };
    match (&manifest.transform, configured) {
        (None, Some((_, transform))) => Ok(transform),
        (None, None) => Ok(Transform::identity()),
        (Some(dumped), configured) => {
            let same = configured
                .as_ref()
                .is_some_and(|(_, t)| t.sql.trim() == dumped.sql.trim());
            if !same {
                tracing::warn!(
                    table = %table.source,
                    dumped_with = %dumped.file,
                    configured = %configured.as_ref().map_or("none".to_string(), |(p, _)| p.display().to_string()),
                    "the dump applied a transform already, so the load applies none; the config's transform differs from the one the dump applied"
                );
            }
            Ok(Transform::identity())
        }
    }
}

/// The target side of a table whose rows are `rows`: checks the target
/// and the write mode, builds the COPY encoder, and the physical plan whose partition k is unit
/// k, or one unit when the transform regroups rows across splits.
async fn plan_target(
    config: &Config,
    table: &TableConfig,
    client: &Client,
    rows: TransformedRows,
) -> Result<TablePlan> {
    let TransformedRows {
        frame,
        transform,
        task_ctx,
        splits: k,
        counters,
    } = rows;
    let (target_schema, target_name) = table.target_parts(&config.target.schema);
    let target = TargetTable::load(client, target_schema, target_name).await?;
    let mode = table.mode(&config.run);
    if mode == WriteMode::Fast {
        yugabyte::check_fast_mode(client, &target).await?;
    }
    let output: SchemaRef = Arc::new(frame.schema().as_arrow().clone());
    let encoder = CopyEncoder::try_new(&output, &target)
        .map_err(|e| point_into_transform(&transform, &output, e))?;
    let upsert = match mode {
        WriteMode::Upsert => Some(Upsert::prepare(client, &target, &encoder).await?),
        WriteMode::Transactional | WriteMode::Fast => None,
    };

    let mut plan = frame.create_physical_plan().await?;
    let split_aligned = plan.output_partitioning().partition_count() == k;
    if !split_aligned {
        tracing::warn!(
            table = %table.source,
            partitions = plan.output_partitioning().partition_count(),
            splits = k,
            "the transform regroups rows across splits; the table runs as one unit"
        );
        plan = Arc::new(CoalescePartitionsExec::new(plan));
    }
    Ok(TablePlan {
        source: table.source.clone(),
        target,
        plan,
        task_ctx,
        encoder,
        upsert,
        split_aligned,
        counters,
        mode,
        max_rejects: table.max_rejects.or(config.run.max_rejects),
        rejects: RejectFiles::new(config, table),
    })
}

/// Points each output column the target refuses at the SELECT item that produces it, and each
/// NOT NULL target column the output lacks at the SELECT list. Without a transform file the
/// error stays as it is.
fn point_into_transform(
    transform: &Transform,
    output: &Schema,
    err: ConnectorError,
) -> PipelineError {
    let (ConnectorError::Incompatible { table, problems }, Some(list)) =
        (&err, transform.select_list())
    else {
        return err.into();
    };
    // Each problem reads `<column>: …`; an output column's problem names that column.
    let located: Vec<_> = problems
        .iter()
        .map(|p| {
            let p = p.trim_start();
            let produced = output
                .fields()
                .iter()
                .enumerate()
                .filter(|(_, f)| {
                    p.strip_prefix(f.name().as_str())
                        .is_some_and(|r| r.starts_with(": "))
                })
                .max_by_key(|(_, f)| f.name().len());
            let at = match produced {
                Some((i, f)) => list.output_column(i, f.name()),
                None => list.start(),
            };
            (at, p.to_string())
        })
        .collect();
    transform.refused_by_target(table, &located).into()
}
