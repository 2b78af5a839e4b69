//! The dry run as one self-contained HTML page (`--html FILE.html`): no script, no network, no
//! external asset (a Content-Security-Policy says so to the browser). Charts are inline SVG: the
//! split-size histogram, null rates per column, rejects by reason and the ETA breakdown.

use std::fmt::Write as _;

use super::text::{duration, mb};
use super::{CheckedAgainst, DryRunReport, Eta, TableDryRun};
use crate::progress::group;
use crate::report::{Status, UnitSemantics};

const TEMPLATE: &str = include_str!("template.html");

const BLUE: &str = "#2f6fde";
const RED: &str = "#d64545";
const AMBER: &str = "#de911d";
const GREEN: &str = "#3f9142";

/// The page.
pub fn render(report: &DryRunReport) -> String {
    let title = "Ferry dry run";
    let mut subtitle = format!(
        "{} table(s), {} connection(s), ETA {} for {} rows",
        report.tables.len(),
        report.connections,
        duration(report.eta.total_s),
        group(report.eta.rows)
    );
    if let Some(p) = report.sample_percent {
        let _ = write!(subtitle, "; a {p}% sample of the splits, scaled up");
    }
    let _ = write!(subtitle, "; nothing was written to the target");
    let mut body = String::new();
    match (&report.status, &report.error) {
        (Status::Ok, _) => body.push_str(
            "<div class=\"ok\">Nothing found that would stop <code>ferry migrate</code>.</div>\n",
        ),
        (Status::Failed, Some(e)) => {
            let _ = writeln!(
                body,
                "<div class=\"problems\">The dry run failed: {}</div>",
                esc(e)
            );
        }
        (Status::Failed, None) => body.push_str(
            "<div class=\"problems\"><code>ferry migrate</code> would not finish as configured: \
             see the problems below.</div>\n",
        ),
    }
    let target = match (&report.target.server, &report.target.error) {
        (Some(s), _) => format!("Target: {}", esc(s)),
        (None, Some(e)) => format!("Target not reachable: {}", esc(e)),
        _ => String::new(),
    };
    let _ = writeln!(body, "<p class=\"note\">{target}</p>");
    for t in &report.tables {
        table(&mut body, t);
    }
    TEMPLATE
        .replace("{{TITLE}}", title)
        .replace("{{SUBTITLE}}", &esc(&subtitle))
        .replace("{{BODY}}", &body)
}

fn table(out: &mut String, t: &TableDryRun) {
    let _ = writeln!(out, "<section class=\"table\">");
    let _ = writeln!(out, "<h2>{} &rarr; {}</h2>", esc(&t.source), esc(&t.target));
    let against = match t.checked_against {
        Some(CheckedAgainst::LiveTable) => "Rejects checked against the live target table",
        Some(CheckedAgainst::GeneratedDdl) => {
            "Rejects checked against the table <code>ferry schema</code> would create"
        }
        None => "Not checked against the target",
    };
    let units = match t.unit_semantics {
        UnitSemantics::Split => "one work unit per split",
        UnitSemantics::WholeTable => "the transform regroups rows: the whole table is one unit",
    };
    let _ = writeln!(
        out,
        "<p class=\"sub\">{against}; {} mode, {units}; {}/{} splits read in {}.</p>",
        esc(&t.mode),
        t.splits_read,
        t.splits_total,
        duration(t.elapsed_s)
    );
    if let Some(e) = &t.error {
        let _ = writeln!(
            out,
            "<div class=\"problems\">The dry run of this table failed: {}</div></section>",
            esc(e)
        );
        return;
    }
    let sampled = t.splits_read < t.splits_total;
    let est = if sampled { " (estimated)" } else { "" };
    let _ = writeln!(out, "<div class=\"cards\">");
    card(out, &group(t.estimated_rows), &format!("rows{est}"), "");
    card(
        out,
        &mb(t.estimated_arrow_bytes),
        &format!("Arrow{est}"),
        "",
    );
    card(out, &mb(t.estimated_copy_bytes), &format!("COPY{est}"), "");
    card(
        out,
        &group(t.rejects.estimated_total),
        &format!("predicted rejects{est}"),
        if t.rejects.estimated_total > 0 {
            "bad"
        } else {
            "good"
        },
    );
    card(
        out,
        &duration(t.eta.total_s),
        &format!("ETA (bound by {})", t.eta.bound_by),
        "",
    );
    card(
        out,
        &format!("{:.2}", t.split_sizes.skew),
        "split skew (max / median rows)",
        if t.split_sizes.skew > 2.0 { "bad" } else { "" },
    );
    let _ = writeln!(out, "</div>");
    if !t.problems.is_empty() {
        let _ = writeln!(
            out,
            "<div class=\"problems\"><b>What would stop <code>ferry migrate</code>:</b><ul>"
        );
        for p in &t.problems {
            let _ = writeln!(out, "<li>{}</li>", esc(p));
        }
        let _ = writeln!(out, "</ul></div>");
    }

    let _ = writeln!(out, "<div class=\"charts\">");
    figure(out, "Split sizes (rows per split)", &split_histogram(t));
    let nulls: Vec<Bar> = t
        .columns
        .iter()
        .map(|c| Bar {
            label: c.name.clone(),
            value: c.null_fraction * 100.0,
            text: format!("{:.1}% ({})", c.null_fraction * 100.0, group(c.null_count)),
            color: if c.target_not_null && c.null_count > 0 {
                RED
            } else {
                BLUE
            },
        })
        .collect();
    figure(out, "Null rate per column", &hbars(&nulls, 100.0));
    let rejects: Vec<Bar> = t
        .rejects
        .by_reason
        .iter()
        .map(|(k, n)| Bar {
            label: k.clone(),
            value: *n as f64,
            text: group(*n),
            color: if k.starts_with("target:") { AMBER } else { RED },
        })
        .collect();
    let rejects_svg = if rejects.is_empty() {
        "<p class=\"note\">No reject predicted.</p>".to_string()
    } else {
        let max = rejects.iter().map(|b| b.value).fold(0.0, f64::max);
        hbars(&rejects, max)
    };
    figure(out, "Predicted rejects by reason", &rejects_svg);
    figure(out, "ETA breakdown", &eta_chart(&t.eta));
    let _ = writeln!(out, "</div>");

    columns(out, t);
    rejects_table(out, t);
    partitions(out, t);
    preview(out, t);
    if let Some(ddl) = &t.generated_ddl {
        let _ = writeln!(
            out,
            "<h3>Generated target DDL</h3><pre><code>{};</code></pre>",
            esc(ddl)
        );
    }
    splits(out, t);
    let _ = writeln!(out, "</section>");
}

fn card(out: &mut String, value: &str, key: &str, class: &str) {
    let _ = writeln!(
        out,
        "<div class=\"card {class}\"><div class=\"v\">{}</div><div class=\"k\">{}</div></div>",
        esc(value),
        esc(key)
    );
}

fn figure(out: &mut String, caption: &str, content: &str) {
    let _ = writeln!(
        out,
        "<figure><figcaption>{}</figcaption>{content}</figure>",
        esc(caption)
    );
}

struct Bar {
    label: String,
    value: f64,
    text: String,
    color: &'static str,
}

/// Horizontal bars, one per row, scaled to `max`.
fn hbars(bars: &[Bar], max: f64) -> String {
    const WIDTH: f64 = 540.0;
    const LABEL: f64 = 150.0;
    const VALUE: f64 = 170.0;
    const ROW: f64 = 22.0;
    let plot = WIDTH - LABEL - VALUE;
    let height = ROW * bars.len().max(1) as f64 + 6.0;
    let mut svg = format!(
        "<svg width=\"{WIDTH}\" height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\" role=\"img\">"
    );
    for (i, b) in bars.iter().enumerate() {
        let y = 3.0 + i as f64 * ROW;
        let w = if max > 0.0 {
            (b.value / max * plot).clamp(0.0, plot)
        } else {
            0.0
        };
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\
             <rect x=\"{LABEL}\" y=\"{:.1}\" width=\"{plot:.1}\" height=\"{:.1}\" fill=\"#f0f4f8\"/>\
             <rect x=\"{LABEL}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{:.1}\" fill=\"{}\"><title>{}: {}</title></rect>\
             <text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            LABEL - 6.0,
            y + 15.0,
            esc(&cut(&b.label, 24)),
            y + 3.0,
            ROW - 6.0,
            y + 3.0,
            ROW - 6.0,
            b.color,
            esc(&b.label),
            esc(&b.text),
            LABEL + plot + 6.0,
            y + 15.0,
            esc(&b.text),
        );
    }
    svg.push_str("</svg>");
    svg
}

/// Vertical bars: splits per bucket of row counts.
fn split_histogram(t: &TableDryRun) -> String {
    let buckets = &t.split_sizes.histogram;
    if buckets.is_empty() {
        return "<p class=\"note\">No split was read.</p>".into();
    }
    const WIDTH: f64 = 520.0;
    const HEIGHT: f64 = 200.0;
    const LEFT: f64 = 40.0;
    const BOTTOM: f64 = 40.0;
    let plot_w = WIDTH - LEFT - 10.0;
    let plot_h = HEIGHT - BOTTOM - 10.0;
    let max = buckets.iter().map(|b| b.splits).max().unwrap_or(1).max(1) as f64;
    let slot = plot_w / buckets.len() as f64;
    let mut svg = format!(
        "<svg width=\"{WIDTH}\" height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\">\
         <line class=\"axis\" x1=\"{LEFT}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\"/>\
         <line class=\"axis\" x1=\"{LEFT}\" y1=\"10\" x2=\"{LEFT}\" y2=\"{:.1}\"/>\
         <text x=\"{:.1}\" y=\"18\" text-anchor=\"end\">{}</text>\
         <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">0</text>",
        10.0 + plot_h,
        LEFT + plot_w,
        10.0 + plot_h,
        10.0 + plot_h,
        LEFT - 4.0,
        max as u64,
        LEFT - 4.0,
        10.0 + plot_h,
    );
    for (i, b) in buckets.iter().enumerate() {
        let h = b.splits as f64 / max * plot_h;
        let x = LEFT + i as f64 * slot + 2.0;
        let range = if b.from_rows == b.to_rows {
            group(b.from_rows)
        } else {
            format!("{}–{}", group(b.from_rows), group(b.to_rows))
        };
        let _ = write!(
            svg,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"{BLUE}\">\
             <title>{} split(s) with {range} rows</title></rect>",
            10.0 + plot_h - h,
            (slot - 4.0).max(1.0),
            b.splits,
        );
        if b.splits > 0 {
            let _ = write!(
                svg,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                x + slot / 2.0 - 2.0,
                (10.0 + plot_h - h - 3.0).max(10.0),
                b.splits
            );
        }
    }
    let _ = write!(
        svg,
        "<text x=\"{LEFT}\" y=\"{:.1}\">{}</text>\
         <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\
         <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#616e7c\">rows per split (median {}, max {})</text></svg>",
        HEIGHT - BOTTOM + 24.0,
        group(buckets[0].from_rows),
        LEFT + plot_w,
        HEIGHT - BOTTOM + 24.0,
        group(buckets[buckets.len() - 1].to_rows),
        LEFT + plot_w / 2.0,
        HEIGHT - 4.0,
        group(t.split_sizes.median_rows),
        group(t.split_sizes.max_rows),
    );
    svg
}

fn eta_chart(eta: &Eta) -> String {
    let rate = |r: f64| format!("{} rows/s", group(r as u64));
    let mut bars = vec![
        Bar {
            label: "read + transform".into(),
            value: eta.read_s,
            text: format!("{} ({})", duration(eta.read_s), rate(eta.read_rows_per_s)),
            color: BLUE,
        },
        Bar {
            label: "COPY encoding".into(),
            value: eta.encode_s,
            text: format!(
                "{} ({})",
                duration(eta.encode_s),
                rate(eta.encode_rows_per_s)
            ),
            color: BLUE,
        },
    ];
    match (eta.load_s, eta.load_rows_per_s) {
        (Some(s), Some(r)) => bars.push(Bar {
            label: format!("load ({})", eta.load_rate_from),
            value: s,
            text: format!("{} ({})", duration(s), rate(r)),
            color: BLUE,
        }),
        _ => bars.push(Bar {
            label: "load (unknown)".into(),
            value: 0.0,
            text: "-".into(),
            color: BLUE,
        }),
    }
    bars.push(Bar {
        label: "ETA (slowest stage)".into(),
        value: eta.total_s,
        text: duration(eta.total_s),
        color: GREEN,
    });
    let max = bars.iter().map(|b| b.value).fold(0.0, f64::max);
    let mut out = hbars(&bars, max);
    if let Some(note) = &eta.probe_note {
        let _ = write!(out, "<p class=\"note\">{}</p>", esc(note));
    }
    out
}

fn columns(out: &mut String, t: &TableDryRun) {
    let _ = writeln!(
        out,
        "<h3>Columns</h3><div class=\"scroll\"><table class=\"grid\"><tr><th>column</th>\
         <th>Arrow type</th><th>target type</th><th class=\"num\">nulls</th><th class=\"num\">null %</th>\
         <th class=\"num\">distinct (approx.)</th><th>min</th><th>max</th><th class=\"num\">max length</th></tr>"
    );
    for c in &t.columns {
        let target = match &c.target_type {
            Some(ty) if c.target_not_null => format!("{ty} NOT NULL"),
            Some(ty) => ty.clone(),
            None => "-".into(),
        };
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{:.1}</td>\
             <td class=\"num\">{}</td>{}{}<td class=\"num\">{}</td></tr>",
            esc(&c.name),
            esc(&c.arrow_type),
            esc(&target),
            group(c.null_count),
            c.null_fraction * 100.0,
            c.approx_distinct.map_or("-".into(), group),
            cell(c.min.as_deref()),
            cell(c.max.as_deref()),
            c.max_length.map_or("-".into(), group),
        );
    }
    let _ = writeln!(out, "</table></div>");
}

fn rejects_table(out: &mut String, t: &TableDryRun) {
    let r = &t.rejects;
    if !r.samples.is_empty() {
        let _ = writeln!(
            out,
            "<h3>Predicted rejects: the first {} of {}</h3><div class=\"scroll\"><table class=\"grid\">\
             <tr><th class=\"num\">split</th><th class=\"num\">row</th><th>column</th><th>kind</th>\
             <th>reason</th><th>row values</th></tr>",
            r.samples.len(),
            group(r.total)
        );
        for s in &r.samples {
            let values: Vec<String> = t
                .preview
                .columns
                .iter()
                .zip(&s.values)
                .map(|(name, v)| format!("{name}={}", v.as_deref().unwrap_or("NULL")))
                .collect();
            let _ = writeln!(
                out,
                "<tr><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
                s.split,
                s.row,
                esc(&s.column),
                esc(&s.class),
                esc(&s.reason),
                esc(&values.join(", "))
            );
        }
        let _ = writeln!(out, "</table></div>");
    }
    if !r.not_predicted.is_empty() {
        let _ = writeln!(
            out,
            "<h3>Not predicted</h3><p class=\"note\">The target also checks these; rows they \
             refuse show up only in a real run.</p><ul>"
        );
        for n in &r.not_predicted {
            let _ = writeln!(out, "<li><code>{}</code></li>", esc(n));
        }
        let _ = writeln!(out, "</ul>");
    }
}

fn partitions(out: &mut String, t: &TableDryRun) {
    // Partitions of one row each (a key without clustering columns) show no skew.
    if t.largest_partitions.first().is_none_or(|p| p.rows <= 1) {
        return;
    }
    let _ = writeln!(
        out,
        "<h3>Largest partitions</h3><table class=\"grid\"><tr><th>partition key</th>\
         <th class=\"num\">rows</th><th class=\"num\">split</th></tr>"
    );
    for p in &t.largest_partitions {
        let _ = writeln!(
            out,
            "<tr><td><code>{}</code></td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            esc(&p.key),
            group(p.rows),
            p.split
        );
    }
    let _ = writeln!(out, "</table>");
}

fn preview(out: &mut String, t: &TableDryRun) {
    if t.preview.rows.is_empty() {
        return;
    }
    let _ = write!(
        out,
        "<h3>Preview: the first {} transformed rows</h3><div class=\"scroll\"><table class=\"grid\"><tr>",
        t.preview.rows.len()
    );
    for c in &t.preview.columns {
        let _ = write!(out, "<th>{}</th>", esc(c));
    }
    let _ = writeln!(out, "</tr>");
    for r in &t.preview.rows {
        out.push_str("<tr>");
        for v in r {
            out.push_str(&cell(v.as_deref()));
        }
        out.push_str("</tr>\n");
    }
    let _ = writeln!(out, "</table></div>");
}

fn splits(out: &mut String, t: &TableDryRun) {
    let s = &t.split_sizes;
    if s.splits.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "<details><summary>Every split read ({}): rows min {} / median {} / p90 {} / max {}</summary>\
         <div class=\"scroll\"><table class=\"grid\"><tr><th class=\"num\">split</th><th class=\"num\">rows</th>\
         <th class=\"num\">Arrow bytes</th><th class=\"num\">COPY bytes</th><th class=\"num\">rejects</th>\
         <th class=\"num\">seconds</th></tr>",
        s.splits.len(),
        group(s.min_rows),
        group(s.median_rows),
        group(s.p90_rows),
        group(s.max_rows)
    );
    for sp in &s.splits {
        let _ = writeln!(
            out,
            "<tr><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{:.2}</td></tr>",
            sp.split,
            group(sp.rows),
            group(sp.arrow_bytes),
            group(sp.copy_bytes),
            group(sp.rejects),
            sp.seconds
        );
    }
    let _ = writeln!(out, "</table></div></details>");
}

fn cell(v: Option<&str>) -> String {
    match v {
        Some(v) => format!("<td>{}</td>", esc(v)),
        None => "<td class=\"null\">NULL</td>".into(),
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

/// Escapes text for HTML content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dryrun::{ColumnProfile, TableDryRun, TargetInfo};

    #[test]
    fn the_page_is_self_contained_and_escapes_values() {
        let table = TableDryRun {
            source: "ks.<t>".into(),
            target: "public.t".into(),
            columns: vec![ColumnProfile {
                name: "note".into(),
                arrow_type: "Utf8".into(),
                target_type: Some("text".into()),
                target_not_null: false,
                null_count: 1,
                null_fraction: 0.5,
                min: Some("<script>alert(1)</script>".into()),
                max: None,
                approx_distinct: Some(1),
                max_length: Some(25),
            }],
            ..Default::default()
        };
        let report = DryRunReport {
            command: "dry-run".into(),
            status: Status::Ok,
            elapsed_s: 1.0,
            sample_percent: None,
            connections: 4,
            target: TargetInfo::default(),
            tables: vec![table],
            eta: Eta::default(),
            error: None,
        };
        let page = render(&report);
        assert!(page.contains("ks.&lt;t&gt;"));
        assert!(!page.contains("<script"), "values are escaped");
        assert!(!page.contains("{{"), "every placeholder is filled");
        for external in ["http://", "https://", "src=", "@import"] {
            assert!(!page.contains(external), "{external}");
        }
        assert_eq!(page.matches("<svg").count(), page.matches("</svg>").count());
    }
}
