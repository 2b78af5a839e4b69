//! Planning one table: Cassandra scan → transform SQL → physical plan, plus the COPY encoder for
//! the target table. Everything that can be checked before data moves is checked here.

use std::sync::Arc;

use datafusion::execution::TaskContext;
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties};
use datafusion::prelude::{SessionConfig, SessionContext};
use ferry_connectors::cassandra::{CassandraTable, ScanCounters, SourceTable, plan_splits};
use ferry_connectors::yugabyte::{CopyEncoder, TargetTable};
use ferry_sql::Transform;
use ferry_sql::transform::SOURCE_TABLE;
use scylla::client::session::Session;
use tokio_postgres::Client;

use crate::checkpoint::Checkpoints;
use crate::config::{Config, TableConfig};
use crate::error::Result;

/// A table, ready to run: partition k of `plan` is work unit k.
#[derive(Debug)]
pub struct TablePlan {
    /// `keyspace.table`.
    pub source: String,
    pub target: TargetTable,
    pub plan: Arc<dyn ExecutionPlan>,
    pub task_ctx: Arc<TaskContext>,
    pub encoder: CopyEncoder,
    /// Whether unit k is exactly split k (false when the transform regroups rows, e.g. an
    /// aggregation: then the whole table is one unit).
    pub split_aligned: bool,
    pub counters: Arc<ScanCounters>,
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

/// Plans `table`: reads its Cassandra schema, applies the transform, checks the target.
pub async fn plan_table(
    config: &Config,
    table: &TableConfig,
    session: &Arc<Session>,
    client: &Client,
    checkpoints: &Checkpoints,
) -> Result<TablePlan> {
    let (keyspace, name) = table
        .source_parts()
        .expect("Config::validate checked `keyspace.table`");
    let source = SourceTable::load(session, keyspace, name)
        .await?
        .with_metadata_columns(&table.writetime, &table.ttl)?;
    let local_dc = config.source.local_dc.as_deref();
    let count = table.splits.unwrap_or(config.run.splits);
    let planned = plan_splits(session, keyspace, name, count, local_dc);
    let splits = checkpoints
        .splits(client, session, keyspace, name, local_dc, planned)
        .await?;
    let k = splits.len();
    let provider =
        CassandraTable::new(Arc::clone(session), source, splits, config.source.page_size)
            .with_max_requests(config.source.max_concurrent_requests)
            .with_filter_pushdown(config.source.filter_pushdown);
    let counters = provider.counters();
    let ctx = session_context(k);
    ctx.register_table(SOURCE_TABLE, Arc::new(provider))?;

    let transform = match &table.transform {
        Some(path) => Transform::from_file(&config.resolve(path))?,
        None => Transform::identity(),
    };
    let df = transform.plan(&ctx).await?;
    let (target_schema, target_name) = table.target_parts(&config.target.schema);
    let target = TargetTable::load(client, target_schema, target_name).await?;
    let output_schema = Arc::new(df.schema().as_arrow().clone());
    let encoder = CopyEncoder::try_new(&output_schema, &target)?;

    let mut plan = df.create_physical_plan().await?;
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
        task_ctx: ctx.task_ctx(),
        encoder,
        split_aligned,
        counters,
    })
}
