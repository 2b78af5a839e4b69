//! `ferry explain`: what `migrate` would do with each table, without reading its rows: the splits
//! (token ranges, replicas, sizes from Cassandra's size estimates), DataFusion's logical and
//! physical plans after the transform, what the scan pushes down to Cassandra (projection, filters,
//! the CQL), the target (its column mapping, or the DDL `ferry schema` would generate), and which
//! write mode and unit semantics apply. Nothing is written anywhere.

use std::fmt::Write as _;
use std::sync::Arc;

use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::{LogicalPlan, TableProviderFilterPushDown};
use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties, displayable};
use ferry_connectors::ConnectorError;
use ferry_connectors::cassandra::sizing::estimated_bytes;
use ferry_connectors::cassandra::{self, CassandraScanExec, plan_splits};
use ferry_connectors::yugabyte::{self, ServerInfo, TargetTable};
use ferry_sql::ddl::Dialect;
use scylla::client::session::Session;
use serde::Serialize;
use tokio_postgres::Client;

use crate::config::{Config, TableConfig, WriteMode};
use crate::dryrun::TargetCheck;
use crate::error::Result;
use crate::plan::{expand_tables, load_source, plan_source};
use crate::report::UnitSemantics;
use crate::schema::primary_key;

/// What `ferry explain` found.
#[derive(Debug, Clone, Serialize)]
pub struct ExplainOutput {
    /// `version()` of the target, when it could be reached.
    pub target_server: Option<String>,
    pub target_error: Option<String>,
    pub tables: Vec<TableExplain>,
}

/// One table's plan.
#[derive(Debug, Clone, Serialize)]
pub struct TableExplain {
    pub source: String,
    pub target: String,
    /// `transactional` or `fast`.
    pub mode: String,
    pub unit_semantics: UnitSemantics,
    /// What one unit is and what a failure or a resume does with it.
    pub unit_meaning: String,
    pub connections: usize,
    pub max_rejects: Option<u64>,
    /// Cassandra's size estimate of the whole table (0 when it knows nothing yet).
    pub estimated_bytes: u64,
    pub splits: Vec<SplitExplain>,
    pub logical_plan: String,
    pub physical_plan: String,
    pub pushdown: Vec<ScanPushdown>,
    pub target_table: TargetExplain,
}

/// One split: a work unit when the plan keeps splits apart.
#[derive(Debug, Clone, Serialize)]
pub struct SplitExplain {
    pub index: usize,
    /// `(start, end]` token ranges.
    pub ranges: Vec<String>,
    /// `ip:port` of the replicas reads are routed to.
    pub replicas: Vec<String>,
    /// The table's estimate times the split's share of the ring.
    pub estimated_bytes: u64,
}

/// What one table scan asks Cassandra for.
#[derive(Debug, Clone, Serialize)]
pub struct ScanPushdown {
    /// The columns read.
    pub projection: Vec<String>,
    /// Each filter handed to the scan and how it is answered.
    pub filters: Vec<FilterPushdown>,
    pub limit: Option<usize>,
    /// The statement each split runs (token bounds bound per range).
    pub cql: Option<String>,
}

/// A filter and who applies it.
#[derive(Debug, Clone, Serialize)]
pub struct FilterPushdown {
    pub filter: String,
    /// `cassandra` (exact), `both` (Cassandra narrows, DataFusion checks again) or `datafusion`.
    pub applied_by: String,
}

/// The target side.
#[derive(Debug, Clone, Serialize)]
pub struct TargetExplain {
    pub exists: bool,
    /// Output column → target column, when the table exists.
    pub mapping: Vec<ColumnMapping>,
    /// The statement `ferry schema` would run, when it does not.
    pub ddl: Option<String>,
    /// Why the output does not fit (what would stop `migrate` before moving data).
    pub incompatible: Vec<String>,
}

/// One output column and where it goes.
#[derive(Debug, Clone, Serialize)]
pub struct ColumnMapping {
    pub column: String,
    pub arrow_type: String,
    pub target_type: Option<String>,
    pub not_null: bool,
}

/// Explains every table of `config`.
pub async fn explain(config: &Config) -> Result<ExplainOutput> {
    let session = cassandra::connect(&config.source).await?;
    let mut config = config.clone();
    expand_tables(&mut config, &session).await?;
    let (client, target_error) = match yugabyte::connect(&config.target).await {
        Ok(c) => (Some(c), None),
        Err(e) => (None, Some(e.to_string())),
    };
    let server = match &client {
        Some(c) => Some(ServerInfo::load(c).await?),
        None => None,
    };
    let mut tables = Vec::with_capacity(config.tables.len());
    for table in &config.tables {
        tables
            .push(explain_table(&config, table, &session, client.as_ref(), server.as_ref()).await?);
    }
    Ok(ExplainOutput {
        target_server: server.map(|s| s.version),
        target_error,
        tables,
    })
}

async fn explain_table(
    config: &Config,
    table: &TableConfig,
    session: &Arc<Session>,
    client: Option<&Client>,
    server: Option<&ServerInfo>,
) -> Result<TableExplain> {
    let source = load_source(table, session).await?;
    let key = primary_key(&source);
    let count = table.splits.unwrap_or(config.run.splits);
    let local_dc = config.source.local_dc.as_deref();
    let splits = plan_splits(session, &source.keyspace, &source.table, count, local_dc).await?;
    let table_bytes = estimated_bytes(session, &source.keyspace, &source.table)
        .await
        .unwrap_or(0);
    let ring = u128::from(u64::MAX) + 1;
    let split_rows: Vec<SplitExplain> = splits
        .iter()
        .map(|s| SplitExplain {
            index: s.index,
            ranges: s
                .ranges
                .iter()
                .map(|r| format!("({}, {}]", r.start, r.end))
                .collect(),
            replicas: s.replicas.iter().map(|r| r.address.clone()).collect(),
            estimated_bytes: (u128::from(table_bytes) * s.width() / ring) as u64,
        })
        .collect();
    let k = splits.len();
    let planned = plan_source(config, table, session, source, splits).await?;
    let optimized = planned.frame.clone().into_optimized_plan()?;
    let logical_plan = optimized.display_indent().to_string();
    let mut pushdown = Vec::new();
    optimized.apply(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            let filters: Vec<&datafusion::prelude::Expr> = scan.filters.iter().collect();
            let verdicts = scan.source.supports_filters_pushdown(&filters)?;
            pushdown.push(ScanPushdown {
                projection: scan
                    .projected_schema
                    .fields()
                    .iter()
                    .map(|f| f.name().clone())
                    .collect(),
                filters: scan
                    .filters
                    .iter()
                    .zip(verdicts)
                    .map(|(f, v)| FilterPushdown {
                        filter: f.to_string(),
                        applied_by: match v {
                            TableProviderFilterPushDown::Exact => "cassandra",
                            TableProviderFilterPushDown::Inexact => "both",
                            TableProviderFilterPushDown::Unsupported => "datafusion",
                        }
                        .into(),
                    })
                    .collect(),
                limit: scan.fetch,
                cql: None,
            });
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    let physical = planned.frame.clone().create_physical_plan().await?;
    let physical_plan = displayable(physical.as_ref()).indent(true).to_string();
    let mut cqls = Vec::new();
    scan_cql(&physical, &mut cqls);
    for (p, cql) in pushdown.iter_mut().zip(cqls) {
        p.cql = Some(cql);
    }
    let split_aligned = physical.output_partitioning().partition_count() == k;
    let mode = table.mode(&config.run);
    let unit_semantics = if split_aligned {
        UnitSemantics::Split
    } else {
        UnitSemantics::WholeTable
    };
    let unit_meaning = match (mode, unit_semantics) {
        (WriteMode::Transactional, UnitSemantics::Split) => format!(
            "{k} units, unit k = split k: each unit is one transaction with its checkpoint; a \
             failed unit rolls back and is retried, a resumed run skips committed units"
        ),
        (WriteMode::Transactional, UnitSemantics::WholeTable) => "one unit: the transform \
            regroups rows across splits, so the whole table is one transaction"
            .into(),
        (WriteMode::Fast, UnitSemantics::Split) => format!(
            "{k} units, unit k = split k, upserted without a transaction (YugabyteDB fast mode): \
             a unit loaded again overwrites its own rows by primary key"
        ),
        (WriteMode::Fast, UnitSemantics::WholeTable) => "one unit, upserted without a \
            transaction: the target table is emptied before each attempt"
            .into(),
        (WriteMode::Upsert, UnitSemantics::Split) => format!(
            "{k} units, unit k = split k: each unit is one transaction with its checkpoint, its \
             rows merged into the target by primary key (rows already there are replaced)"
        ),
        (WriteMode::Upsert, UnitSemantics::WholeTable) => "one unit: the transform regroups \
            rows across splits, so the whole table is one transaction, merged by primary key"
            .into(),
    };

    let (schema, name) = table.target_parts(&config.target.schema);
    let output = Arc::new(planned.frame.schema().as_arrow().clone());
    let live = match client {
        Some(c) => match TargetTable::load(c, schema, name).await {
            Ok(t) => Some(t),
            Err(ConnectorError::TargetTableNotFound(_)) => None,
            Err(e) => return Err(e.into()),
        },
        None => None,
    };
    let target_table = match &live {
        Some(t) => {
            let check = TargetCheck::live(
                client.expect("a live table came from a client"),
                t.clone(),
                &output,
            )
            .await?;
            TargetExplain {
                exists: true,
                mapping: output
                    .fields()
                    .iter()
                    .map(|f| {
                        let col = t.column(f.name());
                        ColumnMapping {
                            column: f.name().clone(),
                            arrow_type: f.data_type().to_string(),
                            target_type: col.map(|c| c.ty.name.clone()),
                            not_null: col.is_some_and(|c| c.not_null),
                        }
                    })
                    .collect(),
                ddl: None,
                incompatible: check.incompatible,
            }
        }
        None => {
            let dialect = server.map_or(Dialect::PostgreSql, ServerInfo::ddl_dialect);
            let check = TargetCheck::generated(
                schema,
                name,
                &output,
                &key,
                dialect,
                server.map_or(0, |s| s.version_num),
            );
            TargetExplain {
                exists: false,
                mapping: Vec::new(),
                ddl: check.ddl.map(|d| d.sql),
                incompatible: check.incompatible,
            }
        }
    };
    Ok(TableExplain {
        source: table.source.clone(),
        target: format!("{schema}.{name}"),
        mode: mode.name().into(),
        unit_semantics,
        unit_meaning,
        connections: config.run.connections,
        max_rejects: table.max_rejects.or(config.run.max_rejects),
        estimated_bytes: table_bytes,
        splits: split_rows,
        logical_plan,
        physical_plan,
        pushdown,
        target_table,
    })
}

/// The CQL of every Cassandra scan under `plan`, depth first.
fn scan_cql(plan: &Arc<dyn ExecutionPlan>, out: &mut Vec<String>) {
    if let Some(scan) = plan.downcast_ref::<CassandraScanExec>() {
        out.push(scan.cql().to_string());
    }
    for child in plan.children() {
        scan_cql(child, out);
    }
}

impl ExplainOutput {
    /// The explanation as text.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        match (&self.target_server, &self.target_error) {
            (Some(s), _) => {
                let _ = writeln!(out, "target: {s}");
            }
            (None, Some(e)) => {
                let _ = writeln!(out, "target: not reachable ({e})");
            }
            _ => {}
        }
        for t in &self.tables {
            let _ = writeln!(out, "\n== {} -> {}", t.source, t.target);
            let _ = writeln!(
                out,
                "mode: {}, {} connection(s), max_rejects {}",
                t.mode,
                t.connections,
                t.max_rejects.map_or("none".into(), |m| m.to_string())
            );
            let _ = writeln!(out, "units: {}", t.unit_meaning);
            let _ = writeln!(
                out,
                "\nsplits: {} (table estimate {} bytes from system.size_estimates)",
                t.splits.len(),
                t.estimated_bytes
            );
            for s in &t.splits {
                let _ = writeln!(
                    out,
                    "  {:>4}  ~{} bytes  replicas [{}]  {}",
                    s.index,
                    s.estimated_bytes,
                    s.replicas.join(", "),
                    s.ranges.join(" ")
                );
            }
            let _ = writeln!(out, "\npushed down to Cassandra:");
            for p in &t.pushdown {
                let _ = writeln!(out, "  projection: {}", p.projection.join(", "));
                if p.filters.is_empty() {
                    let _ = writeln!(out, "  filters: none");
                }
                for f in &p.filters {
                    let _ = writeln!(out, "  filter: {}  (applied by {})", f.filter, f.applied_by);
                }
                if let Some(l) = p.limit {
                    let _ = writeln!(out, "  limit: {l}");
                }
                if let Some(cql) = &p.cql {
                    let _ = writeln!(out, "  cql: {cql}");
                }
            }
            let _ = writeln!(out, "\nlogical plan:\n{}", indent(&t.logical_plan));
            let _ = writeln!(out, "physical plan:\n{}", indent(&t.physical_plan));
            let tt = &t.target_table;
            if tt.exists {
                let _ = writeln!(out, "target columns:");
                for m in &tt.mapping {
                    let _ = writeln!(
                        out,
                        "  {} ({}) -> {}{}",
                        m.column,
                        m.arrow_type,
                        m.target_type.as_deref().unwrap_or("(no such column)"),
                        if m.not_null { " NOT NULL" } else { "" }
                    );
                }
            } else if let Some(ddl) = &tt.ddl {
                let _ = writeln!(
                    out,
                    "the target table does not exist; `ferry schema` would create it:\n{}",
                    indent(&format!("{ddl};"))
                );
            }
            if !tt.incompatible.is_empty() {
                let _ = writeln!(
                    out,
                    "does not fit the target (migrate would stop before moving data):\n{}",
                    tt.incompatible.join("\n")
                );
            }
        }
        out
    }
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
