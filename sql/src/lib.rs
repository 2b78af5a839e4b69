//! `ferry-sql` owns everything Ferry knows about SQL and types, independent of any database driver:
//! the CQL → Arrow → YSQL type mapping (one table, used by decoding, DDL generation, dry-run checks
//! and docs), SQL transform files, and the UDFs transforms may call.
//!
//! It must not know about Cassandra sessions, PostgreSQL connections or the runner: connectors
//! depend on this crate, never the other way round.

pub mod ddl;
pub mod error;
pub mod transform;
pub mod types;
pub mod udf;

pub use error::{Result, SqlError};
pub use transform::Transform;
pub use types::{CqlType, NativeType};
