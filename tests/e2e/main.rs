//! End-to-end tests of the `ferry` command against the real services of `scripts/services.sh`.
//!
//! One test binary with modules, because each binary links all of DataFusion.

mod cluster;
mod config_errors;
mod encode;
mod migrate;
mod placement;
mod pushdown;
mod query;
mod refusals;
mod resume;
mod runs;
mod schema;
mod staging;
mod support;
mod target_tls;
mod tls;
mod torture;
