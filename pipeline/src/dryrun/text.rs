//! The terminal summary of a dry run: per table the figures, the predicted rejects, the ETA,
//! what would stop `migrate`, a column table and the preview.

use std::fmt::Write as _;
use std::time::Duration;

use super::{CheckedAgainst, DryRunReport, Eta, TableDryRun};
use crate::progress::{clock, group};
use crate::report::{Status, UnitSemantics};

/// Widest cell of the column and preview tables.
const CELL_CHARS: usize = 24;

/// The whole summary, ready to print.
pub fn summary(report: &DryRunReport) -> String {
    let mut out = String::new();
    if let Some(p) = report.sample_percent {
        let _ = writeln!(
            out,
            "sample: {p}% of each table's splits; sizes, rejects and the ETA are scaled to all of them"
        );
    }
    match (&report.target.server, &report.target.error) {
        (Some(server), _) => {
            let _ = writeln!(out, "target: {server}");
        }
        (None, Some(e)) => {
            let _ = writeln!(out, "target: not reachable ({e})");
        }
        _ => {}
    }
    for t in &report.tables {
        out.push('\n');
        table(&mut out, t);
    }
    if !report.tables.is_empty() {
        out.push('\n');
        let _ = writeln!(
            out,
            "whole run: {} rows, ETA {} ({})",
            group(report.eta.rows),
            duration(report.eta.total_s),
            eta_parts(&report.eta)
        );
    }
    let verdict = match report.status {
        Status::Ok => "nothing found that would stop `ferry migrate`".to_string(),
        Status::Failed => match &report.error {
            Some(e) => format!("the dry run failed: {e}"),
            None => "`ferry migrate` would not finish as configured: see the problems above".into(),
        },
    };
    let _ = writeln!(out, "dry run: {verdict}; nothing was written to the target");
    out
}

fn table(out: &mut String, t: &TableDryRun) {
    let against = match t.checked_against {
        Some(CheckedAgainst::LiveTable) => "checked against the live table",
        Some(CheckedAgainst::GeneratedDdl) => "checked against the DDL `ferry schema` generates",
        None => "not checked",
    };
    let units = match t.unit_semantics {
        UnitSemantics::Split => "one unit per split",
        UnitSemantics::WholeTable => "the whole table is one unit",
    };
    let _ = writeln!(
        out,
        "{} -> {}  ({against}; {} mode, {units})",
        t.source, t.target, t.mode
    );
    if let Some(e) = &t.error {
        let _ = writeln!(out, "  error: {e}");
        return;
    }
    let _ = writeln!(
        out,
        "  read {}/{} splits: {} rows out of the transform ({} read from the source), Arrow {}, COPY {}",
        t.splits_read,
        t.splits_total,
        group(t.rows_read),
        group(t.source_rows),
        mb(t.arrow_bytes),
        mb(t.copy_bytes),
    );
    if t.splits_read < t.splits_total {
        let _ = writeln!(
            out,
            "  estimated for every split: {} rows, Arrow {}, COPY {}",
            group(t.estimated_rows),
            mb(t.estimated_arrow_bytes),
            mb(t.estimated_copy_bytes)
        );
    }
    let r = &t.rejects;
    if r.total == 0 {
        let _ = writeln!(out, "  predicted rejects: none");
    } else {
        let kinds: Vec<String> = r
            .by_reason
            .iter()
            .map(|(k, n)| format!("{k} {}", group(*n)))
            .collect();
        let _ = writeln!(
            out,
            "  predicted rejects: {} ({})",
            group(r.total),
            kinds.join(", ")
        );
        for s in r.samples.iter().take(3) {
            let _ = writeln!(
                out,
                "    e.g. split {} row {}, column {}: {}",
                s.split,
                s.row,
                s.column,
                cut(&s.reason, 120)
            );
        }
    }
    for n in &r.not_predicted {
        let _ = writeln!(out, "  not predicted: {n}");
    }
    let s = &t.split_sizes;
    if !s.splits.is_empty() {
        let _ = writeln!(
            out,
            "  split rows: min {} / median {} / p90 {} / max {} (skew {:.2})",
            group(s.min_rows),
            group(s.median_rows),
            group(s.p90_rows),
            group(s.max_rows),
            s.skew
        );
    }
    if t.largest_partitions.first().is_some_and(|p| p.rows > 1) {
        let top: Vec<String> = t
            .largest_partitions
            .iter()
            .take(3)
            .map(|p| format!("{} ({} rows)", cut(&p.key, 40), group(p.rows)))
            .collect();
        let _ = writeln!(out, "  largest partitions: {}", top.join("; "));
    }
    let _ = writeln!(
        out,
        "  ETA {} ({})",
        duration(t.eta.total_s),
        eta_parts(&t.eta)
    );
    for p in &t.problems {
        let _ = writeln!(out, "  problem: {p}");
    }
    columns(out, t);
    preview(out, t);
}

fn eta_parts(eta: &Eta) -> String {
    let load = match (eta.load_s, eta.load_rows_per_s) {
        (Some(s), Some(r)) => format!(
            "load {} at {} rows/s ({})",
            duration(s),
            group(r as u64),
            eta.load_rate_from
        ),
        _ => match &eta.probe_note {
            Some(note) => format!("load unknown: {note}"),
            None => "load unknown".into(),
        },
    };
    format!(
        "bound by {}: read {}, encode {}, {load}",
        eta.bound_by,
        duration(eta.read_s),
        duration(eta.encode_s)
    )
}

fn columns(out: &mut String, t: &TableDryRun) {
    let header = [
        "column",
        "type",
        "target",
        "nulls",
        "null %",
        "distinct~",
        "min",
        "max",
        "max len",
    ];
    let rows: Vec<Vec<String>> = t
        .columns
        .iter()
        .map(|c| {
            vec![
                c.name.clone(),
                c.arrow_type.clone(),
                match &c.target_type {
                    Some(ty) if c.target_not_null => format!("{ty} not null"),
                    Some(ty) => ty.clone(),
                    None => "-".into(),
                },
                group(c.null_count),
                format!("{:.1}", c.null_fraction * 100.0),
                c.approx_distinct.map_or("-".into(), group),
                c.min.clone().unwrap_or_else(|| "-".into()),
                c.max.clone().unwrap_or_else(|| "-".into()),
                c.max_length.map_or("-".into(), group),
            ]
        })
        .collect();
    grid(out, &header, &rows);
}

fn preview(out: &mut String, t: &TableDryRun) {
    if t.preview.rows.is_empty() {
        return;
    }
    let _ = writeln!(out, "  first {} rows:", t.preview.rows.len());
    let header: Vec<&str> = t.preview.columns.iter().map(String::as_str).collect();
    let rows: Vec<Vec<String>> = t
        .preview
        .rows
        .iter()
        .map(|r| {
            r.iter()
                .map(|v| v.clone().unwrap_or_else(|| "NULL".into()))
                .collect()
        })
        .collect();
    grid(out, &header, &rows);
}

/// An aligned table, indented, with cells cut at [`CELL_CHARS`].
fn grid(out: &mut String, header: &[&str], rows: &[Vec<String>]) {
    let cells: Vec<Vec<String>> = std::iter::once(header.iter().map(|h| h.to_string()).collect())
        .chain(rows.iter().cloned())
        .map(|r: Vec<String>| r.iter().map(|c| cut(c, CELL_CHARS)).collect())
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            cells
                .iter()
                .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    for r in &cells {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        let _ = writeln!(out, "    {}", line.join("  ").trim_end());
    }
}

fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut c: String = s.chars().take(max - 1).collect();
        c.push('…');
        c
    }
}

/// Bytes as MB with one decimal.
pub(crate) fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// Seconds as `1h02m03s`, or with a decimal under a minute.
pub(crate) fn duration(seconds: f64) -> String {
    if !seconds.is_finite() {
        return "-".into();
    }
    if seconds < 60.0 {
        format!("{seconds:.1}s")
    } else {
        clock(Duration::from_secs_f64(seconds))
    }
}
