//! The YugabyteDB (YSQL) sink; plain PostgreSQL works too.
//!
//! - [`config`]: the target URL and credentials.
//! - [`types`]: target introspection (`pg_attribute`/`pg_type`) and PostgreSQL's binary formats.
//! - [`encoder`]: [`CopyEncoder`], Arrow batches → binary COPY, typed by the *target* columns.
//! - [`sink`]: one work unit = `BEGIN; COPY … FROM STDIN (FORMAT binary); …; COMMIT`.

pub mod config;
pub mod encoder;
pub mod sink;
pub mod types;

pub use config::YugabyteConfig;
pub use encoder::{CopyEncoder, EncodedBatch, Reject};
pub use sink::{UnitOutcome, connect, write_unit};
pub use types::{PgShape, PgType, TargetColumn, TargetTable, quote_ident};
