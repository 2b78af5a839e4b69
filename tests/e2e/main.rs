//! End-to-end tests of the `ferry` command against the real services of `scripts/services.sh`.
//!
//! One test binary with modules, because each binary links all of DataFusion.

mod config_errors;
mod encode;
mod migrate;
mod query;
mod support;
mod torture;
