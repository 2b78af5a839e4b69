//! The Cassandra source: a DataFusion `TableProvider` whose partition k reads token-range split k.
//!
//! - [`config`]: connection and read options.
//! - [`tls`]: the rustls configuration of `[source.tls]`.
//! - [`session`]: connecting, and reading the table's schema from `system_schema`.
//! - [`ring`]: token ranges and splits.
//! - [`scan`]: [`CassandraTable`] and [`CassandraScanExec`], manual paging with one page in flight.
//! - [`types`]: decoding CQL cells straight from the response frame into Arrow builders.

pub mod config;
pub mod pushdown;
pub mod rate;
pub mod ring;
pub mod routing;
pub mod scan;
pub mod session;
pub mod sizing;
pub mod tls;
pub mod types;

pub use config::{CassandraConfig, CassandraTlsConfig, ConsistencyLevel, TlsMode};
pub use rate::RowRate;
pub use ring::{Replica, RingRange, Split, TokenRange};
pub use scan::{CassandraScanExec, CassandraTable, ScanCounters};
pub use session::{ColumnKind, SourceColumn, SourceTable, connect};
pub use sizing::{SplitCount, plan_splits};
