//! End-to-end tests of the `ferry` command against the real services of `scripts/services.sh`.
//!
//! One test binary with modules, because each binary links all of DataFusion.

mod bench;
mod cluster;
mod config_errors;
mod dryrun;
mod encode;
mod faults;
mod migrate;
mod placement;
mod pushdown;
mod query;
mod refusals;
mod resume;
mod runs;
mod scaleout;
mod schema;
mod staging;
mod support;
mod target_tls;
mod tls;
mod torture;
mod transforms;
mod upsert;
mod validate;
mod vector;
