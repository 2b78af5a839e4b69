//! Target DDL: the `CREATE TABLE` statement of each configured table, generated from its
//! Cassandra schema through its transform's output schema (`ferry schema`, and `migrate` with
//! `create_tables = true`). The statement itself is `ferry_sql::ddl`'s; this module plans the
//! transform, picks the syntax from the target server, and runs the statement when asked.

use std::sync::Arc;

use ferry_connectors::ConnectorError;
use ferry_connectors::cassandra::{self, ColumnKind, SourceTable};
use ferry_connectors::staging::{Manifest, StagedTable};
use ferry_connectors::yugabyte::{self, ServerInfo, TargetTable};
use ferry_sql::ddl::{self, ClusteringColumn, Dialect, PrimaryKey, TableDdl};
use scylla::client::session::Session;
use tokio_postgres::Client;

use crate::config::{Config, TableConfig};
use crate::error::Result;
use crate::plan::{expand_tables, load_source, plan_source, plan_staged_source};

/// One table's generated statement.
#[derive(Debug, Clone)]
pub struct TableSchema {
    /// `keyspace.table`.
    pub source: String,
    /// `schema.table`, for messages.
    pub target: String,
    pub ddl: TableDdl,
    /// After `apply`: whether the statement created the table (false: it already existed and
    /// was left as it is). `None` when nothing was applied.
    pub created: Option<bool>,
}

/// What `ferry schema` did.
#[derive(Debug, Clone)]
pub struct SchemaOutput {
    /// The target server the syntax was chosen for.
    pub server: ServerInfo,
    pub tables: Vec<TableSchema>,
}

/// Generates the statement of every table of `config` in the target server's syntax and, with
/// `apply`, runs each one whose table does not exist yet.
pub async fn schema(config: &Config, apply: bool) -> Result<SchemaOutput> {
    let session = cassandra::connect(&config.source).await?;
    let mut config = config.clone();
    expand_tables(&mut config, &session).await?;
    let config = &config;
    let client = yugabyte::connect(&config.target).await?;
    let server = ServerInfo::load(&client).await?;
    let mut tables = Vec::with_capacity(config.tables.len());
    for table in &config.tables {
        let (schema, name) = table.target_parts(&config.target.schema);
        let ddl = table_ddl(config, table, &session, server.ddl_dialect()).await?;
        let created = if apply {
            let created = !target_exists(&client, schema, name).await?;
            if created {
                execute(&client, &ddl, schema, name).await?;
            }
            Some(created)
        } else {
            None
        };
        tables.push(TableSchema {
            source: table.source.clone(),
            target: format!("{schema}.{name}"),
            ddl,
            created,
        });
    }
    Ok(SchemaOutput { server, tables })
}

/// The `CREATE TABLE` statement for `table`'s target, in `dialect`.
pub async fn table_ddl(
    config: &Config,
    table: &TableConfig,
    session: &Arc<Session>,
    dialect: Dialect,
) -> Result<TableDdl> {
    let source = load_source(table, session).await?;
    let key = primary_key(&source);
    // No splits: only the output schema is needed, so the ring is not read.
    let planned = plan_source(config, table, session, source, Vec::new()).await?;
    let (schema, name) = table.target_parts(&config.target.schema);
    Ok(ddl::create_table(
        schema,
        name,
        &planned.output_schema(),
        &key,
        dialect,
    ))
}

/// Creates `table`'s target when it does not exist (`create_tables = true`); returns the
/// statement it ran, if any.
pub async fn create_missing_table(
    config: &Config,
    table: &TableConfig,
    session: &Arc<Session>,
    client: &Client,
) -> Result<Option<TableDdl>> {
    let (schema, name) = table.target_parts(&config.target.schema);
    if target_exists(client, schema, name).await? {
        return Ok(None);
    }
    let dialect = ServerInfo::load(client).await?.ddl_dialect();
    let ddl = table_ddl(config, table, session, dialect).await?;
    for warning in &ddl.warnings {
        tracing::warn!(table = %table.source, "{warning}");
    }
    execute(client, &ddl, schema, name).await?;
    tracing::info!(table = %table.source, target = %format!("{schema}.{name}"), "created the target table");
    Ok(Some(ddl))
}

/// Creates `table`'s target from its staged data when it does not exist (`ferry load` with
/// `create_tables = true`): the manifest's Cassandra key, the load transform's output columns.
pub async fn create_missing_staged_table(
    config: &Config,
    table: &TableConfig,
    staged: &Arc<StagedTable>,
    client: &Client,
) -> Result<Option<TableDdl>> {
    let (schema, name) = table.target_parts(&config.target.schema);
    if target_exists(client, schema, name).await? {
        return Ok(None);
    }
    let dialect = ServerInfo::load(client).await?.ddl_dialect();
    let key = staged_primary_key(staged.manifest());
    let planned = plan_staged_source(config, table, Arc::clone(staged)).await?;
    let ddl = ddl::create_table(
        schema,
        name,
        planned.frame.schema().as_arrow(),
        &key,
        dialect,
    );
    for warning in &ddl.warnings {
        tracing::warn!(table = %table.source, "{warning}");
    }
    execute(client, &ddl, schema, name).await?;
    tracing::info!(table = %table.source, target = %format!("{schema}.{name}"), "created the target table");
    Ok(Some(ddl))
}

/// The Cassandra primary key a manifest records, in key order.
pub fn staged_primary_key(manifest: &Manifest) -> PrimaryKey {
    let schema = &manifest.cassandra_schema;
    PrimaryKey {
        partition: schema
            .partition_key()
            .iter()
            .map(|c| c.name.clone())
            .collect(),
        clustering: schema
            .clustering()
            .iter()
            .map(|c| ClusteringColumn {
                name: c.name.clone(),
                descending: c.descending,
            })
            .collect(),
    }
}

/// The Cassandra primary key of `source`, in key order.
pub fn primary_key(source: &SourceTable) -> PrimaryKey {
    let mut key = PrimaryKey::default();
    // `SourceTable::load` orders columns partition key first, then clustering, each by position.
    for c in &source.columns {
        match c.kind {
            ColumnKind::PartitionKey => key.partition.push(c.name.clone()),
            ColumnKind::Clustering => key.clustering.push(ClusteringColumn {
                name: c.name.clone(),
                descending: c.descending,
            }),
            _ => {}
        }
    }
    key
}

async fn target_exists(client: &Client, schema: &str, name: &str) -> Result<bool> {
    Ok(TargetTable::exists(client, schema, name).await?)
}

async fn execute(client: &Client, ddl: &TableDdl, schema: &str, name: &str) -> Result<()> {
    client
        .batch_execute(&ddl.sql)
        .await
        .map_err(|source| ConnectorError::Postgres {
            what: format!("CREATE TABLE {schema}.{name}"),
            source,
        })?;
    Ok(())
}
