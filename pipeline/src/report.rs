//! The JSON report every data-moving command writes with `--report FILE.json`.
//!
//! The fields of the foundation contract (`command`, `status`, `elapsed_s`, and per table
//! `source`, `target`, `rows_read`, `rows_written`, `rows_rejected`, `units_total`, `units_done`,
//! `elapsed_s`) are never renamed; fields are only ever added.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ferry_connectors::yugabyte::{Reject, UnitOutcome};
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
    /// This attempt's workers' time on their units, added up: claiming (not waiting for) a
    /// unit, running and committing it, dropping its lease.
    pub units_s: f64,
    /// Of `units_s`, the time in lease statements (claim, the confirmation in the unit's
    /// transaction, drop): what coordinating workers through the run state costs.
    pub lease_s: f64,
    /// COPY bytes sent.
    pub copy_bytes: u64,
    /// Parquet bytes written (`dump`).
    pub parquet_bytes: u64,
    /// Values written with their sub-microsecond digits dropped (nanosecond timestamps, times,
    /// intervals; PostgreSQL keeps microseconds).
    pub truncated_values: u64,
    /// `rows_written / elapsed_s`.
    pub rows_per_s: f64,
    /// The first rejects, with split, row, column and reason.
    pub rejects: Vec<RejectRecord>,
    /// Rejects counted by kind ([`Reject::class`]): `encoder:<kind>` or `target:<SQLSTATE>`.
    pub rejects_by_reason: BTreeMap<String, u64>,
    /// The Parquet files this attempt wrote the rejected rows to, one per unit, in unit order.
    pub reject_files: Vec<String>,
    /// Units whose rows read ≠ rows written + rows rejected (the target dropped rows without
    /// refusing them, e.g. a trigger); the table is then not complete.
    pub unbalanced_units: Vec<usize>,
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
    /// The server's SQLSTATE when the target refused the row; null for the encoder's rejects.
    pub sqlstate: Option<String>,
}

impl RejectRecord {
    /// A reject located in `split`.
    pub fn new(split: usize, reject: Reject) -> Self {
        Self {
            split,
            row: reject.row,
            column: reject.column,
            reason: reject.reason,
            sqlstate: reject.sqlstate,
        }
    }
}

impl TableReport {
    /// Adds a committed unit's figures; `reject_file` is where its rejected rows were written.
    pub fn add_unit(&mut self, split: usize, outcome: &UnitOutcome, reject_file: Option<PathBuf>) {
        let rejected = outcome.rejects.len() as u64;
        self.units_done += 1;
        self.rows_read += outcome.rows_read;
        self.rows_written += outcome.rows_written;
        self.rows_rejected += rejected;
        self.copy_bytes += outcome.bytes;
        self.truncated_values += outcome.truncated;
        if outcome.rows_read != outcome.rows_written + rejected {
            tracing::error!(
                table = %self.source, split, rows_read = outcome.rows_read,
                rows_written = outcome.rows_written, rows_rejected = rejected,
                "rows read ≠ rows written + rows rejected: the target dropped rows without refusing them"
            );
            self.unbalanced_units.push(split);
        }
        for reject in &outcome.rejects {
            *self.rejects_by_reason.entry(reject.class()).or_default() += 1;
        }
        let room = REJECT_SAMPLES.saturating_sub(self.rejects.len());
        self.rejects.extend(
            outcome
                .rejects
                .iter()
                .take(room)
                .map(|r| RejectRecord::new(split, r.clone())),
        );
        if let Some(file) = reject_file {
            self.reject_files.push(file.display().to_string());
            // Workers finish units in any order; the report lists them by unit.
            self.reject_files.sort_by_key(|f| unit_number(f));
        }
    }

    /// Whether the table finished and every row is accounted for.
    pub fn is_complete(&self) -> bool {
        self.error.is_none()
            && self.units_done == self.units_total
            && self.rows_read == self.rows_written + self.rows_rejected
            && self.unbalanced_units.is_empty()
    }
}

/// `k` of a path ending in `unit-<k>.parquet`, to sort reject files by unit.
fn unit_number(path: &str) -> usize {
    path.rsplit_once("unit-")
        .and_then(|(_, tail)| tail.strip_suffix(".parquet"))
        .and_then(|k| k.parse().ok())
        .unwrap_or(usize::MAX)
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
    fn units_add_up_with_reject_kinds_files_and_balance() {
        let reject = |row, sqlstate: Option<&str>| Reject {
            row,
            column: "qty".into(),
            reason: match sqlstate {
                Some(s) => format!("the target refused the row: no (SQLSTATE {s})"),
                None => "70000 is out of range for smallint".into(),
            },
            sqlstate: sqlstate.map(Into::into),
        };
        let mut t = TableReport {
            units_total: 3,
            ..Default::default()
        };
        let unit = |read, written, rejects: Vec<Reject>| UnitOutcome {
            rows_read: read,
            rows_written: written,
            rejects,
            ..Default::default()
        };
        t.add_unit(
            10,
            &unit(5, 3, vec![reject(0, None), reject(4, Some("23505"))]),
            Some(PathBuf::from("/r/run/s.t/unit-10.parquet")),
        );
        t.add_unit(
            2,
            &unit(4, 3, vec![reject(1, Some("23505"))]),
            Some(PathBuf::from("/r/run/s.t/unit-2.parquet")),
        );
        t.add_unit(0, &unit(7, 7, vec![]), None);
        assert_eq!((t.rows_read, t.rows_written, t.rows_rejected), (16, 13, 3));
        assert_eq!(
            t.reject_files,
            vec!["/r/run/s.t/unit-2.parquet", "/r/run/s.t/unit-10.parquet"]
        );
        let kinds: Vec<(&str, u64)> = t
            .rejects_by_reason
            .iter()
            .map(|(k, n)| (k.as_str(), *n))
            .collect();
        assert_eq!(
            kinds,
            vec![("encoder:out_of_range", 1), ("target:23505", 2)]
        );
        assert_eq!(t.rejects[1].sqlstate.as_deref(), Some("23505"));
        assert!(t.is_complete());

        // A unit whose rows do not add up fails the table, even if the totals would.
        t.units_total += 2;
        t.add_unit(5, &unit(3, 2, vec![]), None);
        t.add_unit(6, &unit(1, 2, vec![]), None);
        assert_eq!(t.rows_read, t.rows_written + t.rows_rejected);
        assert_eq!(t.unbalanced_units, vec![5, 6]);
        assert!(!t.is_complete());
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
