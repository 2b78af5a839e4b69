//! The error type of `ferry-connectors`, with the context a user needs (table, split, column).

use datafusion::error::DataFusionError;

/// Errors from the Cassandra source, the YugabyteDB sink and the encoder.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    /// Bad connector configuration.
    #[error("invalid {section} configuration: {message}")]
    Config {
        section: &'static str,
        message: String,
    },

    /// Cassandra could not be reached at all.
    #[error(
        "cannot connect to Cassandra at {contact_points}: {message} (is it running? for local tests: scripts/services.sh up)"
    )]
    CassandraConnect {
        contact_points: String,
        message: String,
    },

    /// Cassandra was reached, but the TLS handshake failed.
    #[error(
        "TLS to Cassandra at {contact_points} failed (tls.mode = \"{mode}\"): {message}; {hint}"
    )]
    CassandraTls {
        contact_points: String,
        mode: String,
        message: String,
        hint: String,
    },

    /// Cassandra was reached, but refused the credentials (or wanted some).
    #[error("authentication to Cassandra at {contact_points} failed: {message}; {hint}")]
    CassandraAuth {
        contact_points: String,
        message: String,
        hint: String,
    },

    /// A Cassandra request failed.
    #[error("Cassandra {what} failed: {source}")]
    Cassandra {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
        retriable: bool,
    },

    /// The source table does not exist.
    #[error("Cassandra table {keyspace}.{table} does not exist")]
    SourceTableNotFound { keyspace: String, table: String },

    /// The cluster uses a partitioner Ferry cannot split.
    #[error("the cluster uses {partitioner}; Ferry splits token ranges of Murmur3Partitioner only")]
    UnsupportedPartitioner { partitioner: String },

    /// A cell that cannot be decoded into its Arrow type.
    #[error("cannot decode {table}.{column} (CQL {cql_type}) in split {split}: {message}")]
    Decode {
        table: String,
        column: String,
        cql_type: String,
        split: usize,
        message: String,
    },

    /// A Cassandra type Ferry does not decode yet.
    #[error("column {table}.{column} has CQL type {cql_type}, which Ferry cannot read yet")]
    UnsupportedSourceType {
        table: String,
        column: String,
        cql_type: String,
    },

    /// PostgreSQL/YugabyteDB could not be reached.
    #[error(
        "cannot connect to the target database {target}: {message} (is it running? for local tests: scripts/services.sh up)"
    )]
    TargetConnect { target: String, message: String },

    /// A target server was reached, but the TLS handshake failed.
    #[error("TLS to the target server {server} failed (tls.mode = \"{mode}\"): {message}; {hint}")]
    TargetTls {
        server: String,
        mode: String,
        message: String,
        hint: String,
    },

    /// No target server is available to place a connection on.
    #[error("no target server available for a connection: {reason}")]
    NoTargetServer { reason: String },

    /// A statement on the target failed.
    #[error("target {what} failed: {}", postgres_message(.source))]
    Postgres {
        what: String,
        #[source]
        source: tokio_postgres::Error,
    },

    /// Fast mode was asked for where it cannot keep its promise.
    #[error("fast mode refused for {table}: {reason}; use mode = \"transactional\" for this table")]
    FastModeRefused { table: String, reason: String },

    /// Upsert mode was asked for where rows cannot be matched by key.
    #[error("upsert mode refused for {table}: {reason}")]
    UpsertRefused { table: String, reason: String },

    /// The target table does not exist.
    #[error("target table {0} does not exist (create it, or generate it with `ferry schema`)")]
    TargetTableNotFound(String),

    /// Plan-time compatibility check failed: every incompatible column, at once.
    #[error("{table}: {} column(s) cannot be written to the target:\n{}", problems.len(), problems.join("\n"))]
    Incompatible {
        table: String,
        problems: Vec<String>,
    },

    /// Staged data that cannot be used as it is: a missing or corrupt manifest, a manifest of a
    /// newer format, a file listed but missing, a file that differs from its manifest.
    #[error("staged data {path}: {message}")]
    Staged { path: String, message: String },

    /// An object store request failed, after object_store's own retries.
    #[error("staging: {what} {path} failed: {source}")]
    ObjectStore {
        what: String,
        path: String,
        #[source]
        source: object_store::Error,
    },

    /// Writing or reading a Parquet file failed.
    #[error("Parquet file {path}: {what}: {source}")]
    Parquet {
        what: String,
        path: String,
        #[source]
        source: parquet::errors::ParquetError,
    },

    /// An Arrow or DataFusion error while producing batches.
    #[error(transparent)]
    DataFusion(#[from] DataFusionError),
}

impl ConnectorError {
    /// Whether retrying the same operation (on a fresh connection) may succeed.
    pub fn is_retriable(&self) -> bool {
        match self {
            ConnectorError::Cassandra { retriable, .. } => *retriable,
            ConnectorError::Postgres { source, .. } => postgres_error_is_retriable(source),
            ConnectorError::TargetConnect { .. } | ConnectorError::CassandraConnect { .. } => true,
            ConnectorError::DataFusion(e) => datafusion_error_is_retriable(e),
            // A request that failed on the way (not a missing object or a refused credential).
            ConnectorError::ObjectStore { source, .. } => {
                matches!(source, object_store::Error::Generic { .. })
            }
            _ => false,
        }
    }

    /// Whether the target refused the data itself (SQLSTATE class 22, data exception, or 23,
    /// integrity constraint violation): retrying the same rows fails the same way, but the
    /// other rows of the unit can be loaded once the offending ones are found.
    pub fn is_data_refusal(&self) -> bool {
        match self {
            ConnectorError::Postgres { source, .. } => source
                .code()
                .is_some_and(|c| c.code().starts_with("22") || c.code().starts_with("23")),
            _ => false,
        }
    }
}

/// The server's own words for a database error (tokio-postgres prints only "db error"): the
/// message, SQLSTATE, and detail when there is one.
pub fn postgres_message(err: &tokio_postgres::Error) -> String {
    match err.as_db_error() {
        Some(db) => {
            let mut text = format!("{} (SQLSTATE {})", db.message(), db.code().code());
            if let Some(detail) = db.detail() {
                text.push_str(&format!("; {detail}"));
            }
            text
        }
        None => err.to_string(),
    }
}

/// Whether a DataFusion error wraps a retriable [`ConnectorError`] (scans report their failures
/// through `DataFusionError::External`).
pub fn datafusion_error_is_retriable(err: &DataFusionError) -> bool {
    match err {
        DataFusionError::External(e) => e
            .downcast_ref::<ConnectorError>()
            .is_some_and(ConnectorError::is_retriable),
        DataFusionError::Context(_, inner) => datafusion_error_is_retriable(inner),
        _ => false,
    }
}

/// Connection resets, serialization failures, admin shutdowns and YugabyteDB's transient errors.
pub fn postgres_error_is_retriable(err: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    if err.is_closed() {
        return true;
    }
    match err.as_db_error() {
        Some(db) => {
            let code = db.code();
            code == &SqlState::T_R_SERIALIZATION_FAILURE
                || code == &SqlState::T_R_DEADLOCK_DETECTED
                || code == &SqlState::ADMIN_SHUTDOWN
                || code == &SqlState::CRASH_SHUTDOWN
                || code == &SqlState::CANNOT_CONNECT_NOW
                || db.message().contains("Try again")
                || db.message().contains("Restart read required")
        }
        // No server error: an I/O failure on the connection.
        None => err.source_io().is_some(),
    }
}

trait SourceIo {
    fn source_io(&self) -> Option<&std::io::Error>;
}

impl SourceIo for tokio_postgres::Error {
    fn source_io(&self) -> Option<&std::io::Error> {
        std::error::Error::source(self).and_then(|s| s.downcast_ref::<std::io::Error>())
    }
}

impl From<ConnectorError> for DataFusionError {
    fn from(e: ConnectorError) -> Self {
        match e {
            ConnectorError::DataFusion(inner) => inner,
            other => DataFusionError::External(Box::new(other)),
        }
    }
}

/// `Result` with [`ConnectorError`].
pub type Result<T, E = ConnectorError> = std::result::Result<T, E>;
