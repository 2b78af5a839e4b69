"""Draws the PNGs of benchmarks/README.md from the JSON files ferry-bench writes.

Run through scripts/plots.sh, which provides matplotlib. Every `*.json` in --results is read
and recognised by its "scenario" key (DESIGN.md §7), whatever the file is called. Each plot is
drawn when its inputs exist and skipped with a note otherwise:

- latency.png: rows/s against connections, direct, through the proxy without delay, and with
  the latency (from the latency scenario), and the with/without ratio against the 0.8 goal;
- stages.png: scan-only, load-only and the whole migration per connection count (from e2e),
  with the encoder's rate (from encode) in words, as it is off the scale;
- ferry-vs-spark.png: Ferry against the Spark job at the same parallelism, from every JSON
  holding Spark figures (`e2e --spark`: `spark-16`/`spark-32`; `latency --spark`: `spark-16c`,
  `spark-16c-20ms`, …).

Error bars span the runs' minimum to maximum (`runs_rows_per_s`); bars and points are medians.
"""

import argparse
import json
import re
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402


def load_reports(results: Path) -> tuple:
    """(scenario -> report, every report), from every *.json in `results`. For a scenario, the
    file named after it (`latency.json`) wins, else the newest."""
    reports, everything = {}, []
    for path in sorted(results.glob("*.json"), key=lambda p: p.stat().st_mtime):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            print(f"note: skipping {path}: {e}", file=sys.stderr)
            continue
        if isinstance(data, dict) and "scenario" in data and "figures" in data:
            data["_path"] = str(path)
            everything.append(data)
            named = Path(reports.get(data["scenario"], {}).get("_path", "")).stem
            if named != data["scenario"]:
                reports[data["scenario"]] = data
    return reports, everything


def figure_map(report: dict) -> dict:
    return {f["name"]: f for f in report.get("figures", [])}


def spread(figure: dict):
    """(median, distance down to min, distance up to max) of a figure's rows/s."""
    runs = figure.get("runs_rows_per_s") or [figure["rows_per_s"]]
    med = figure["rows_per_s"]
    return med, med - min(runs), max(runs) - med


def rows_fmt(value, _pos=None) -> str:
    if value >= 1e6:
        return f"{value / 1e6:.3g}M"
    if value >= 1e3:
        return f"{value / 1e3:.3g}k"
    return f"{value:.3g}"


def subtitle(report: dict) -> str:
    versions = report.get("versions", {})
    return (
        f"{report['rows']:,} rows, {report['cores']} cores, "
        f"{versions.get('profile', '?')} profile, ferry {versions.get('ferry', '?')}"
    )


def plot_latency(report: dict, out: Path) -> Path:
    figures = figure_map(report)
    rtt = None
    series = {}  # (system, route) -> [(M, figure)]
    for name, f in figures.items():
        m = re.fullmatch(r"([a-z0-9]+)-(\d+)c(?:-(proxy|(\d+)ms))?", name)
        if not m:
            continue
        system, conns, suffix, ms = m.group(1), int(m.group(2)), m.group(3), m.group(4)
        route = "direct" if suffix is None else ("proxy" if suffix == "proxy" else "delayed")
        if ms:
            rtt = int(ms)
        series.setdefault((system, route), []).append((conns, f))
    notes = report.get("notes", [])
    path_note = next(
        (n.split(" (")[0] for n in notes if n.startswith("latency path:")), "latency path: ?"
    )
    measured = next(
        (m.group(1) for n in notes if (m := re.search(r"with latency ([\d.]+ ms)", n))), None
    )
    if measured:
        path_note += f", measured round trip {measured}"
    styles = {
        "direct": ("-", "o", "tab:blue", "no added latency"),
        "proxy": (":", "s", "tab:green", "through the proxy, no delay"),
        "delayed": ("--", "^", "tab:orange", f"+{rtt} ms round trip"),
    }
    order = list(styles)
    systems = sorted({system for system, _ in series})
    # One system: a colour per route; several (ferry, spark): a colour per system.
    palette = ["tab:blue", "tab:red", "tab:purple", "tab:brown"]
    system_color = {s: palette[i % len(palette)] for i, s in enumerate(systems)}
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    for (system, route), points in sorted(series.items(), key=lambda kv: (kv[0][0], order.index(kv[0][1]))):
        points.sort(key=lambda p: p[0])
        xs = [c for c, _ in points]
        meds, lows, highs = zip(*(spread(f) for _, f in points))
        line, marker, color, label = styles[route]
        if len(systems) > 1:
            color = system_color[system]
        left.errorbar(
            xs, meds, yerr=[lows, highs], linestyle=line, marker=marker, color=color, capsize=3,
            label=f"{system}, {label}",
        )
    left.set_xscale("log", base=2)
    left.set_xticks(sorted({c for pts in series.values() for c, _ in pts}))
    left.get_xaxis().set_major_formatter(FuncFormatter(lambda v, _p: f"{v:g}"))
    left.yaxis.set_major_formatter(FuncFormatter(rows_fmt))
    left.set_ylim(bottom=0)
    left.set_xlabel("target connections M")
    left.set_ylabel("rows/s (median, bars: min–max)")
    left.set_title("End-to-end migration rate")
    left.legend(fontsize=8)
    left.grid(True, alpha=0.3)

    ratio_runs = report.get("ratio_runs", {})
    by_system = {}
    for key, runs in ratio_runs.items():
        m = re.fullmatch(r"([a-z0-9]+)-(\d+)c-(\d+)ms/\1-\2c", key)
        if m:
            by_system.setdefault(m.group(1), []).append((int(m.group(2)), runs))
    for system, points in sorted(by_system.items()):
        points.sort(key=lambda p: p[0])
        xs = [c for c, _ in points]
        meds = [report["ratios"][f"{system}-{c}c-{rtt}ms/{system}-{c}c"] for c in xs]
        lows = [med - min(r) for med, (_, r) in zip(meds, points)]
        highs = [max(r) - med for med, (_, r) in zip(meds, points)]
        color = system_color[system] if len(systems) > 1 else "tab:orange"
        right.errorbar(xs, meds, yerr=[lows, highs], marker="^", capsize=3, color=color,
                       label=system)
    right.axhline(0.8, color="grey", linestyle="--", linewidth=1)
    right.text(1, 0.81, "goal at 16 connections: 0.8", color="grey", fontsize=8)
    right.set_xscale("log", base=2)
    right.set_xticks(left.get_xticks())
    right.get_xaxis().set_major_formatter(FuncFormatter(lambda v, _p: f"{v:g}"))
    right.set_ylim(0, 1.1)
    right.set_xlabel("target connections M")
    right.set_ylabel(f"rows/s with {rtt} ms / without (median, bars: min–max)")
    right.set_title("What the latency costs")
    right.legend(fontsize=8)
    right.grid(True, alpha=0.3)
    fig.suptitle(f"latency: {subtitle(report)}; {path_note}", fontsize=9)
    fig.tight_layout()
    target = out / "latency.png"
    fig.savefig(target, dpi=110)
    plt.close(fig)
    return target


def plot_stages(e2e: dict, encode, out: Path) -> Path:
    figures = figure_map(e2e)
    conns = sorted(
        int(m.group(1))
        for name in figures
        if (m := re.fullmatch(r"ferry-(\d+)c", name))
    )
    stages = [("scan-only", "scan-only"), ("load-only", "load-only"), ("ferry", "migration (e2e)")]
    fig, ax = plt.subplots(figsize=(9, 4.8))
    width = 0.8 / len(stages)
    for i, (prefix, label) in enumerate(stages):
        xs, meds, lows, highs = [], [], [], []
        for j, c in enumerate(conns):
            f = figures.get(f"{prefix}-{c}c")
            if f is None:
                continue
            med, lo, hi = spread(f)
            xs.append(j + (i - (len(stages) - 1) / 2) * width)
            meds.append(med)
            lows.append(lo)
            highs.append(hi)
        ax.bar(xs, meds, width, yerr=[lows, highs], capsize=3, label=label)
    # The encoder is tens of times faster than the other stages: its rate goes in words, not
    # as a bar that would flatten the rest.
    if encode is not None and (enc := figure_map(encode).get("ferry")) is not None:
        ax.text(
            0.01, 0.98,
            f"COPY encoding alone (encode, ferry on all threads, {encode['rows']:,} rows): "
            f"{rows_fmt(enc['rows_per_s'])} rows/s, off this scale",
            transform=ax.transAxes, va="top", fontsize=8,
        )
    ax.set_ylim(0, ax.get_ylim()[1] * 1.12)
    ax.yaxis.set_major_formatter(FuncFormatter(rows_fmt))
    ax.set_xticks(range(len(conns)))
    ax.set_xticklabels([str(c) for c in conns])
    ax.set_xlabel("connections M (scan-only: splits read at once)")
    ax.set_ylabel("rows/s (median, bars: min–max)")
    ax.set_title(f"Stages of the migration: e2e, {subtitle(e2e)}", fontsize=10)
    ax.legend(fontsize=8, loc="upper right")
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    target = out / "stages.png"
    fig.savefig(target, dpi=110)
    plt.close(fig)
    return target


def spark_reports(everything: list) -> list:
    """Every report with Spark figures: `e2e --spark` (`spark-P`) or `latency --spark`
    (`spark-Pc`, `spark-Pc-20ms`)."""
    return [r for r in everything if any(re.fullmatch(r"spark-\d+c?", n) for n in figure_map(r))]


def spark_pairs(report: dict) -> list:
    """(label, spark figure, ferry figure) per parallelism and route of one report."""
    figures = figure_map(report)
    rtt = report_rtt(report)
    pairs = []
    for p in (16, 32):
        for spark_name, ferry_name, label in [
            (f"spark-{p}", f"ferry-{p}c", f"P = M = {p}"),
            (f"spark-{p}c", f"ferry-{p}c", f"P = M = {p}"),
            (f"spark-{p}c-{rtt}ms", f"ferry-{p}c-{rtt}ms", f"P = M = {p}, +{rtt} ms"),
        ]:
            if spark_name in figures:
                pairs.append((label, figures[spark_name], figures.get(ferry_name)))
    return pairs


def report_rtt(report: dict) -> str:
    names = figure_map(report)
    found = (m.group(1) for n in names if (m := re.fullmatch(r".*-\d+c-(\d+)ms", n)))
    return next(found, "20")


def plot_spark(reports: list, out: Path) -> Path:
    pairs = [pair for report in reports for pair in spark_pairs(report)]
    report = reports[0]
    fig, ax = plt.subplots(figsize=(max(7, 2.4 * len(pairs)), 4.8))
    labels, bars = [], []
    for j, (p, spark, ferry) in enumerate(pairs):
        for k, (name, f) in enumerate([("Spark", spark), ("Ferry", ferry)]):
            if f is None:
                continue
            med, lo, hi = spread(f)
            bars.append(ax.bar(j + (k - 0.5) * 0.38, med, 0.36, yerr=[[lo], [hi]], capsize=3,
                               color="tab:orange" if name == "Spark" else "tab:blue"))
        if ferry is not None:
            ratio = ferry["rows_per_s"] / spark["rows_per_s"]
            ax.text(j, max(ferry["rows_per_s"], spark["rows_per_s"]) * 1.04,
                    f"ferry/spark {ratio:.1f}×", ha="center", fontsize=9)
        labels.append(p)
    ax.set_xticks(range(len(pairs)))
    ax.set_xticklabels(labels)
    ax.set_ylim(0, ax.get_ylim()[1] * 1.12)
    ax.yaxis.set_major_formatter(FuncFormatter(rows_fmt))
    ax.set_ylabel("rows/s (median, bars: min–max)")
    scenarios = " and ".join(sorted({r["scenario"] for r in reports}))
    ax.set_title(f"Ferry against the Spark job ({scenarios}), {subtitle(report)}", fontsize=10)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in ("tab:orange", "tab:blue")]
    ax.legend(handles, ["Spark (foreachPartition + COPY)", "Ferry"], fontsize=8,
              loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2)
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    target = out / "ferry-vs-spark.png"
    fig.savefig(target, dpi=110)
    plt.close(fig)
    return target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    here = Path(__file__).resolve().parent
    parser.add_argument("--results", type=Path, default=here / "results",
                        help="directory of ferry-bench JSON files (default: benchmarks/results)")
    parser.add_argument("--out", type=Path, default=here / "plots",
                        help="directory the PNGs go into (default: benchmarks/plots)")
    args = parser.parse_args()
    if not args.results.is_dir():
        print(f"error: {args.results} is not a directory", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    reports, everything = load_reports(args.results)
    print(f"read {', '.join(sorted(reports)) or 'no report'} from {args.results}")
    drawn = []
    if "latency" in reports:
        drawn.append(plot_latency(reports["latency"], args.out))
    else:
        print("note: no latency JSON: skipping latency.png")
    if "e2e" in reports:
        if "encode" not in reports:
            print("note: no encode JSON: stages.png has no encoder line")
        drawn.append(plot_stages(reports["e2e"], reports.get("encode"), args.out))
    else:
        print("note: no e2e JSON: skipping stages.png")
    spark = spark_reports(everything)
    if spark:
        drawn.append(plot_spark(spark, args.out))
    else:
        print("note: no JSON has Spark figures (spark-16, spark-32): skipping ferry-vs-spark.png")
    for path in drawn:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
