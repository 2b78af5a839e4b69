//! Connecting to Cassandra, and reading a table's schema from `system_schema`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arrow::datatypes::{Schema, SchemaRef};
use ferry_sql::types::{CqlType, NativeType, UdtResolver};
use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::policies::load_balancing::DefaultPolicy;

use super::config::{CassandraConfig, TlsMode};
use super::tls;
use crate::error::{ConnectorError, Result};

/// Opens a session with the configured consistency, timeouts, credentials, TLS and datacenter.
pub async fn connect(config: &CassandraConfig) -> Result<Arc<Session>> {
    if config.contact_points.is_empty() {
        return Err(ConnectorError::Config {
            section: "source",
            message: "contact_points is empty".into(),
        });
    }
    config.validate()?;
    let tls_context = tls::client_config(&config.tls)?;
    let mut policy = DefaultPolicy::builder().token_aware(true);
    if let Some(dc) = &config.local_dc {
        policy = policy
            .prefer_datacenter(dc.clone())
            .permit_dc_failover(true);
    }
    let profile = ExecutionProfile::builder()
        .consistency(config.consistency.into())
        .request_timeout(Some(config.request_timeout()))
        .load_balancing_policy(policy.build())
        .build();
    let mut builder = SessionBuilder::new()
        .known_nodes(&config.contact_points)
        .connection_timeout(Duration::from_millis(config.connect_timeout_ms))
        .default_execution_profile_handle(profile.into_handle())
        .tls_context(tls_context);
    if let Some(user) = &config.username {
        let password = config.password()?.unwrap_or_default();
        builder = builder.user(user, password.expose());
    }
    let session = builder
        .build()
        .await
        .map_err(|e| connect_error(config, e.to_string()))?;
    Ok(Arc::new(session))
}

/// Tells TLS and authentication failures apart from an unreachable cluster, so the message
/// says what to fix.
fn connect_error(config: &CassandraConfig, message: String) -> ConnectorError {
    let contact_points = config.contact_points.join(",");
    if config.tls.mode != TlsMode::Disable
        && let Some(hint) = tls::handshake_hint(&config.tls, &message)
    {
        return ConnectorError::CassandraTls {
            contact_points,
            mode: config.tls.mode.to_string(),
            message,
            hint,
        };
    }
    let lower = message.to_ascii_lowercase();
    if lower.contains("authenticat") || lower.contains("credentials") {
        let hint = match &config.username {
            Some(user) => format!(
                "the cluster refused user {user:?}: check source.username and source.password \
                 (or password_file)"
            ),
            None => "the cluster requires a login: set source.username and source.password \
                     (or password_file)"
                .to_string(),
        };
        return ConnectorError::CassandraAuth {
            contact_points,
            message,
            hint,
        };
    }
    ConnectorError::CassandraConnect {
        contact_points,
        message,
    }
}

/// Where a column sits in the primary key, or which cell metadata it exposes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnKind {
    PartitionKey,
    Clustering,
    Static,
    Regular,
    /// `writetime(of)`: the write timestamp of a cell, µs since the epoch (`_writetime_<of>`).
    WriteTime {
        of: String,
    },
    /// `ttl(of)`: seconds until a cell expires, NULL when it never does (`_ttl_<of>`).
    Ttl {
        of: String,
    },
}

/// One column of a Cassandra table.
#[derive(Debug, Clone)]
pub struct SourceColumn {
    pub name: String,
    pub kind: ColumnKind,
    /// Position within the partition or clustering key; 0 for other columns.
    pub position: i32,
    pub cql_type: CqlType,
    /// Clustering order, for clustering columns.
    pub descending: bool,
}

/// A Cassandra table's schema, columns in `SELECT *` order: partition key, clustering key, then
/// static and regular columns by name.
#[derive(Debug, Clone)]
pub struct SourceTable {
    pub keyspace: String,
    pub table: String,
    pub columns: Vec<SourceColumn>,
}

impl SourceTable {
    /// Reads the schema of `keyspace.table`, resolving UDTs.
    pub async fn load(session: &Session, keyspace: &str, table: &str) -> Result<Self> {
        check_partitioner(session).await?;
        let udts = Udts::load(session, keyspace).await?;
        let result = session
            .query_unpaged(
                "SELECT column_name, kind, position, type, clustering_order FROM system_schema.columns \
                 WHERE keyspace_name = ? AND table_name = ?",
                (keyspace, table),
            )
            .await
            .map_err(|e| cassandra_err("schema query", e))?;
        let rows = result
            .into_rows_result()
            .map_err(|e| cassandra_err("schema query", e))?;
        let mut columns = Vec::new();
        for row in rows
            .rows::<(String, String, i32, String, String)>()
            .map_err(|e| cassandra_err("schema query", e))?
        {
            let (name, kind, position, type_text, order) =
                row.map_err(|e| cassandra_err("schema query", e))?;
            let kind = match kind.as_str() {
                "partition_key" => ColumnKind::PartitionKey,
                "clustering" => ColumnKind::Clustering,
                "static" => ColumnKind::Static,
                _ => ColumnKind::Regular,
            };
            let cql_type = CqlType::parse(&type_text, keyspace, &udts).map_err(|e| {
                ConnectorError::Config {
                    section: "source",
                    message: format!("column {keyspace}.{table}.{name}: {e}"),
                }
            })?;
            columns.push(SourceColumn {
                name,
                kind,
                position: position.max(0),
                cql_type,
                descending: order.eq_ignore_ascii_case("desc"),
            });
        }
        if columns.is_empty() {
            return Err(ConnectorError::SourceTableNotFound {
                keyspace: keyspace.to_string(),
                table: table.to_string(),
            });
        }
        let rank = |k: &ColumnKind| match k {
            ColumnKind::PartitionKey => 0,
            ColumnKind::Clustering => 1,
            _ => 2,
        };
        columns.sort_by(|a, b| {
            (rank(&a.kind), a.position, &a.name).cmp(&(rank(&b.kind), b.position, &b.name))
        });
        Ok(Self {
            keyspace: keyspace.to_string(),
            table: table.to_string(),
            columns,
        })
    }

    /// `keyspace.table`, for messages.
    pub fn qualified_name(&self) -> String {
        format!("{}.{}", self.keyspace, self.table)
    }

    /// Adds the opt-in metadata columns `_writetime_<col>` and `_ttl_<col>` for the named
    /// columns (`"*"` = every regular and static column that has a single write time).
    pub fn with_metadata_columns(mut self, writetime: &[String], ttl: &[String]) -> Result<Self> {
        let eligible = |c: &SourceColumn| {
            matches!(c.kind, ColumnKind::Regular | ColumnKind::Static)
                && !matches!(
                    c.cql_type,
                    CqlType::List(_) | CqlType::Set(_) | CqlType::Map(..) | CqlType::Udt { .. }
                )
        };
        let mut added = Vec::new();
        for (names, is_writetime) in [(writetime, true), (ttl, false)] {
            let targets: Vec<String> = if names.iter().any(|n| n == "*") {
                self.columns
                    .iter()
                    .filter(|c| eligible(c))
                    .map(|c| c.name.clone())
                    .collect()
            } else {
                names.to_vec()
            };
            for of in targets {
                let column = self.columns.iter().find(|c| c.name == of).ok_or_else(|| {
                    ConnectorError::Config {
                        section: "table",
                        message: format!(
                            "{}: no column {of:?} for writetime/ttl",
                            self.qualified_name()
                        ),
                    }
                })?;
                if !eligible(column) {
                    return Err(ConnectorError::Config {
                        section: "table",
                        message: format!(
                            "{}: writetime/ttl of {of:?} is not available: only regular and static \
                             columns that are not multi-cell collections or UDTs have one write time",
                            self.qualified_name()
                        ),
                    });
                }
                let (name, kind, native) = if is_writetime {
                    (
                        format!("_writetime_{of}"),
                        ColumnKind::WriteTime { of },
                        NativeType::BigInt,
                    )
                } else {
                    (
                        format!("_ttl_{of}"),
                        ColumnKind::Ttl { of },
                        NativeType::Int,
                    )
                };
                added.push(SourceColumn {
                    name,
                    kind,
                    position: 0,
                    cql_type: CqlType::Native(native),
                    descending: false,
                });
            }
        }
        self.columns.extend(added);
        Ok(self)
    }

    /// The CQL expression that selects `column`.
    pub fn select_expr(column: &SourceColumn) -> String {
        match &column.kind {
            ColumnKind::WriteTime { of } => format!("writetime({})", quote_cql(of)),
            ColumnKind::Ttl { of } => format!("ttl({})", quote_cql(of)),
            _ => quote_cql(&column.name),
        }
    }

    /// The partition key columns, in key order.
    pub fn partition_key(&self) -> impl Iterator<Item = &SourceColumn> {
        self.columns
            .iter()
            .filter(|c| c.kind == ColumnKind::PartitionKey)
    }

    /// The Arrow schema of a full scan. Key columns are not nullable.
    pub fn arrow_schema(&self) -> SchemaRef {
        let fields = self
            .columns
            .iter()
            .map(|c| {
                let nullable = !matches!(c.kind, ColumnKind::PartitionKey | ColumnKind::Clustering);
                c.cql_type.arrow_field(&c.name, nullable)
            })
            .collect::<Vec<_>>();
        Arc::new(Schema::new(fields))
    }
}

/// Quotes a CQL identifier: `"name"`, with `"` doubled.
pub fn quote_cql(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

async fn check_partitioner(session: &Session) -> Result<()> {
    let rows = session
        .query_unpaged("SELECT partitioner FROM system.local", ())
        .await
        .map_err(|e| cassandra_err("partitioner query", e))?
        .into_rows_result()
        .map_err(|e| cassandra_err("partitioner query", e))?;
    let (partitioner,): (String,) = rows
        .first_row()
        .map_err(|e| cassandra_err("partitioner query", e))?;
    if partitioner.ends_with("Murmur3Partitioner") {
        Ok(())
    } else {
        Err(ConnectorError::UnsupportedPartitioner { partitioner })
    }
}

/// The UDTs of one keyspace, from `system_schema.types`.
struct Udts(HashMap<(String, String), Vec<(String, String)>>);

impl Udts {
    async fn load(session: &Session, keyspace: &str) -> Result<Self> {
        let rows = session
            .query_unpaged(
                "SELECT type_name, field_names, field_types FROM system_schema.types WHERE keyspace_name = ?",
                (keyspace,),
            )
            .await
            .map_err(|e| cassandra_err("UDT query", e))?
            .into_rows_result()
            .map_err(|e| cassandra_err("UDT query", e))?;
        let mut map = HashMap::new();
        for row in rows
            .rows::<(String, Vec<String>, Vec<String>)>()
            .map_err(|e| cassandra_err("UDT query", e))?
        {
            let (name, names, types) = row.map_err(|e| cassandra_err("UDT query", e))?;
            map.insert(
                (keyspace.to_string(), name),
                names.into_iter().zip(types).collect(),
            );
        }
        Ok(Self(map))
    }
}

impl UdtResolver for Udts {
    fn resolve(&self, keyspace: &str, name: &str) -> Option<Vec<(String, String)>> {
        self.0
            .get(&(keyspace.to_string(), name.to_string()))
            .cloned()
    }
}

/// Wraps a driver error; timeouts, unavailable or restarting nodes and lost connections are
/// retriable.
pub(crate) fn cassandra_err(
    what: &str,
    err: impl std::error::Error + Send + Sync + 'static,
) -> ConnectorError {
    let retriable = is_transient(&err.to_string());
    ConnectorError::Cassandra {
        what: what.to_string(),
        source: Box::new(err),
        retriable,
    }
}

/// Whether a driver error's message says the failure may pass. The driver prints server errors
/// by their description, not their protocol names: `Unavailable` reads "Not enough nodes are
/// alive…", read/write timeouts "Not enough nodes responded… in time", and a node that is
/// shutting down answers `Overloaded` ("…the coordinator node is overloaded").
fn is_transient(message: &str) -> bool {
    let text = message.to_lowercase();
    [
        "timeout",
        "timed out",
        "unavailable",
        "not enough nodes",
        "overloaded",
        "bootstrapping",
        "shutting down",
        "broken pipe",
        "connection",
    ]
    .iter()
    .any(|m| text.contains(m))
}

#[cfg(test)]
mod tests {
    use super::is_transient;
    use scylla::errors::DbError;
    use scylla::statement::Consistency;

    #[test]
    fn unavailable_overloaded_and_lost_nodes_are_transient() {
        let unavailable = DbError::Unavailable {
            consistency: Consistency::LocalOne,
            required: 1,
            alive: 0,
        };
        for db in [unavailable, DbError::Overloaded, DbError::IsBootstrapping] {
            let text =
                format!("Database returned an error: {db}, Error message: Server is shutting down");
            assert!(is_transient(&text), "{text}");
        }
        assert!(is_transient(
            "No connections in the pool: The pool is broken; Last connection failed with: \
             Connection refused (os error 111)"
        ));
    }

    #[test]
    fn query_mistakes_are_not_transient() {
        for db in [
            DbError::SyntaxError,
            DbError::Invalid,
            DbError::Unauthorized,
        ] {
            let text =
                format!("Database returned an error: {db}, Error message: unconfigured table t");
            assert!(!is_transient(&text), "{text}");
        }
    }
}
