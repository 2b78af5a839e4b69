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
pub use sink::{
    CopyIn, FAST_MODE_SETTINGS, UnitOutcome, check_fast_mode, connect, write_unit,
    write_unit_isolating,
};
pub use types::{
    ServerInfo, TargetColumn, TargetForeignKey, TargetIndex, TargetKeys, TargetTable, quote_ident,
};
