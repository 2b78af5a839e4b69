//! The JSON report every data-moving command writes with `--report FILE.json`.
//!
//! The fields of the foundation contract (`command`, `status`, `elapsed_s`, and per table
//! `source`, `target`, `rows_read`, `rows_written`, `rows_rejected`, `units_total`, `units_done`,
//! `elapsed_s`) are never renamed; fields are only ever added.

use std::path::Path;

use ferry_connectors::yugabyte::Reject;
use serde::Serialize;

use crate::error::{PipelineError, Result};

/// Rejects listed per table in the report; the count is always complete.
pub const REJECT_SAMPLES: usize = 100;

/// A whole command's report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub command: String,
    /// `ok` when every table finished with rows read = rows written + rows rejected.
    pub status: Status,
    pub elapsed_s: f64,
    pub tables: Vec<TableReport>,
    /// Why the command failed, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Whether the run was stopped by Ctrl-C or SIGTERM (its status is then `failed`; running
    /// the same command again resumes).
    pub interrupted: bool,
}

/// What one work unit of a table is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum UnitSemantics {
    /// Unit k is Cassandra split k, through the transform: the units partition the rows.
    #[default]
    Split,
    /// The transform regroups rows across splits (aggregation, window, ORDER BY, DISTINCT…), so
    /// the whole table is one unit: one transaction, or in fast mode a truncate before each
    /// attempt.
    WholeTable,
}

/// `ok` or `failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Failed,
}

/// One table's figures.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TableReport {
    /// `keyspace.table`.
    pub source: String,
    /// `schema.table`.
    pub target: String,
    /// Rows that came out of the transform (what the sink was asked to write).
    pub rows_read: u64,
    pub rows_written: u64,
    pub rows_rejected: u64,
    pub units_total: u64,
    /// `split` or `whole-table`: what a unit is (see [`UnitSemantics`]).
    pub unit_semantics: UnitSemantics,
    /// Units committed, by this attempt or an earlier one of the same run.
    pub units_done: u64,
    /// Units an earlier attempt of the run had committed, skipped by this one.
    pub units_skipped: u64,
    /// Rows those earlier attempts wrote. The `rows_*` counts above are this attempt's.
    pub rows_written_before: u64,
    pub elapsed_s: f64,
    /// Rows the Cassandra scan returned, before the transform's filters.
    pub source_rows: u64,
    /// Cassandra "empty" values turned into NULL.
    pub empty_values: u64,
    /// Work units retried after a retriable error.
    pub unit_retries: u64,
    /// COPY bytes sent.
    pub copy_bytes: u64,
    /// Values written with their sub-microsecond digits dropped (nanosecond timestamps, times,
    /// intervals; PostgreSQL keeps microseconds).
    pub truncated_values: u64,
    /// `rows_written / elapsed_s`.
    pub rows_per_s: f64,
    /// The first rejects, with split, row, column and reason.
    pub rejects: Vec<RejectRecord>,
    /// Why the table failed, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A rejected row: where it was and why.
#[derive(Debug, Clone, Serialize)]
pub struct RejectRecord {
    pub split: usize,
    /// Row number within the split's output.
    pub row: usize,
    pub column: String,
    pub reason: String,
}

impl RejectRecord {
    /// A reject of the encoder, located in `split`.
    pub fn new(split: usize, reject: Reject) -> Self {
        Self {
            split,
            row: reject.row,
            column: reject.column,
            reason: reject.reason,
        }
    }
}

impl TableReport {
    /// Whether the table finished and every row is accounted for.
    pub fn is_complete(&self) -> bool {
        self.error.is_none()
            && self.units_done == self.units_total
            && self.rows_read == self.rows_written + self.rows_rejected
    }
}

impl Report {
    /// A report whose status follows from its tables.
    pub fn new(
        command: &str,
        elapsed_s: f64,
        tables: Vec<TableReport>,
        error: Option<String>,
    ) -> Self {
        let ok =
            error.is_none() && !tables.is_empty() && tables.iter().all(TableReport::is_complete);
        Self {
            command: command.to_string(),
            status: if ok { Status::Ok } else { Status::Failed },
            elapsed_s,
            tables,
            error,
            interrupted: false,
        }
    }

    /// Writes the report as pretty JSON, atomically (temp file, then rename).
    pub fn write(&self, path: &Path) -> Result<()> {
        let write_err = |source| PipelineError::Write {
            path: path.to_path_buf(),
            source,
        };
        let json = serde_json::to_vec_pretty(self).map_err(|e| write_err(e.into()))?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, json).map_err(write_err)?;
        std::fs::rename(&tmp, path).map_err(write_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_requires_every_row_accounted_for() {
        let mut t = TableReport {
            rows_read: 10,
            rows_written: 9,
            rows_rejected: 1,
            units_total: 2,
            units_done: 2,
            ..Default::default()
        };
        assert_eq!(
            Report::new("migrate", 1.0, vec![t.clone()], None).status,
            Status::Ok
        );
        t.rows_rejected = 0;
        assert_eq!(
            Report::new("migrate", 1.0, vec![t], None).status,
            Status::Failed
        );
    }

    #[test]
    fn contract_fields_are_present() {
        let r = Report::new("migrate", 1.5, vec![TableReport::default()], None);
        let v = serde_json::to_value(&r).expect("serializes");
        for key in ["command", "status", "elapsed_s", "tables"] {
            assert!(v.get(key).is_some(), "{key}");
        }
        for key in [
            "source",
            "target",
            "rows_read",
            "rows_written",
            "rows_rejected",
            "units_total",
            "units_done",
            "elapsed_s",
        ] {
            assert!(v["tables"][0].get(key).is_some(), "{key}");
        }
    }
}
