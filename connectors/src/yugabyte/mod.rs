//! The YugabyteDB (YSQL) sink; plain PostgreSQL works too.
//!
//! - [`config`]: the target URL (several hosts), credentials, TLS and placement settings.
//! - [`tls`]: TLS sessions toward the target over rustls.
//! - [`placement`]: [`Placement`], which server each connection goes to (`yb_servers()`).
//! - [`types`]: target introspection (`pg_attribute`/`pg_type`) and PostgreSQL's binary formats.
//! - [`encoder`]: [`CopyEncoder`], Arrow batches → binary COPY, typed by the *target* columns.
//! - [`sink`]: one work unit = `BEGIN; COPY … FROM STDIN (FORMAT binary); …; COMMIT`.

pub mod config;
pub mod encoder;
pub mod placement;
pub mod sink;
pub mod tls;
pub mod types;
pub mod upsert;

pub use config::{Endpoint, Target, YugabyteConfig};
pub use encoder::{CopyEncoder, EncodedBatch, Reject};
pub use placement::{PlacedClient, PlacedConnection, Placement, Server, TopologyKey};
pub use sink::{
    CopyIn, FAST_MODE_SETTINGS, UnitOutcome, check_fast_mode, connect, connect_to, write_unit,
    write_unit_isolating,
};
pub use types::{
    PgShape, PgType, ServerInfo, TargetColumn, TargetForeignKey, TargetIndex, TargetKeys,
    TargetTable, quote_ident,
};
pub use upsert::Upsert;
