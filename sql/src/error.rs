//! The error type of `ferry-sql`.

use std::path::PathBuf;

/// Errors from parsing types and loading transforms.
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    /// A CQL type string from `system_schema` that Ferry cannot parse.
    #[error("cannot parse CQL type `{text}`: {reason}")]
    CqlTypeParse { text: String, reason: String },

    /// A CQL type Ferry has no mapping for.
    #[error("CQL type `{0}` is not supported")]
    UnsupportedCqlType(String),

    /// A transform file that cannot be read.
    #[error("cannot read transform file {}: {source}", path.display())]
    TransformRead {
        path: PathBuf,
        source: std::io::Error,
    },

    /// A transform file whose SQL is not what Ferry accepts.
    #[error("{}:{line}:{column}: {message}", path.display())]
    TransformInvalid {
        path: PathBuf,
        line: u64,
        column: u64,
        message: String,
    },
}

/// `Result` with [`SqlError`].
pub type Result<T, E = SqlError> = std::result::Result<T, E>;
