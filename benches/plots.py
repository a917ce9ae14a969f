#!/usr/bin/env python3
"""Draws the benchmark plots in papers/plots/ from the benchmarks' own output (no plotting
library: plain SVG, so the script needs only Python 3).

- prove_time.svg: prove seconds against model size (multiply-accumulates), zkinfer and EZKL,
  from benches/ezkl/side_by_side.sh's results.json (model sizes from ``zkinfer info --json`` on
  the model directories that run compiled).
- optimistic_cheater.svg: a cheating executor's expected gain per job against honest work, by
  cheating rate, for several audit probabilities, from ``optimistic_sim --json``
  (benches/src/bin/optimistic_sim.rs; target/optimistic_sim.json).
- aggregation_gas.svg: settlement gas per job against the number of jobs settled by one
  aggregated proof (``submitBatch``), beside a job settled alone (``submitProof``), from the
  reports of ``scripts/aggregation.sh`` (``ZKINFER_AGG_REPORT=target/aggregation``).
- msm_throughput.svg: MSM throughput (terms per second) against size for each backend, from
  criterion's output of ``cargo bench -p zkinfer-benches --bench bench_main -- msm_2`` (the
  groups ``msm_2^N``, read from target/criterion/msm_2_N/<backend>/new/).

Run: python3 benches/plots.py [--side-by-side target/side_by_side/results.json] [--aggregation target/aggregation]
     [--criterion target/criterion] [--zkinfer target/release/zkinfer] [--out papers/plots]
A plot whose input is missing is skipped with a message.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
W, H, L, R, T, B = 680, 420, 80, 210, 40, 60  # size and margins


def short(v: float) -> str:
    """1000000 as 1M, 100000 as 100k."""
    for scale, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if v >= scale:
            return f"{v / scale:g}{unit}"
    return f"{v:g}"


def log_ticks(lo: float, hi: float) -> list[float]:
    return [10.0**e for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)]


def render(
    title: str, xlabel: str, ylabel: str, px, py, xticks: list[tuple[float, str]], yticks: list[tuple[float, str]],
    series: dict[str, list[tuple]], lines: bool = True, marker: int = 5, zero_line: bool = False,
) -> str:
    """The frame, ticks, labels, series (points `(x, y[, label])`) and legend of a plot, given its
    coordinate maps `px` and `py`."""
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{W / 2}" y="22" text-anchor="middle" font-size="15">{title}</text>',
           f'<rect x="{L}" y="{T}" width="{W - L - R}" height="{H - T - B}" fill="none" stroke="#444"/>']
    for x, label in xticks:
        out.append(f'<line x1="{px(x):.1f}" y1="{T}" x2="{px(x):.1f}" y2="{H - B}" stroke="#ddd"/>')
        out.append(f'<text x="{px(x):.1f}" y="{H - B + 16}" text-anchor="middle">{label}</text>')
    for y, label in yticks:
        out.append(f'<line x1="{L}" y1="{py(y):.1f}" x2="{W - R}" y2="{py(y):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{L - 6}" y="{py(y) + 4:.1f}" text-anchor="end">{label}</text>')
    if zero_line:
        out.append(f'<line x1="{L}" y1="{py(0):.1f}" x2="{W - R}" y2="{py(0):.1f}" stroke="#000" stroke-dasharray="4 3"/>')
    out.append(f'<text x="{(L + W - R) / 2}" y="{H - 16}" text-anchor="middle">{xlabel}</text>')
    out.append(f'<text x="18" y="{(T + H - B) / 2}" text-anchor="middle" transform="rotate(-90 18 {(T + H - B) / 2})">{ylabel}</text>')
    for i, (name, s) in enumerate(series.items()):
        c = COLORS[i % len(COLORS)]
        s = sorted(s)
        if lines:
            out.append(f'<polyline fill="none" stroke="{c}" stroke-width="2" points="{" ".join(f"{px(p[0]):.1f},{py(p[1]):.1f}" for p in s)}"/>')
        for x, y, *label in s:
            out.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="{marker}" fill="{c}"/>')
            if label and label[0]:
                out.append(f'<text x="{px(x) + 6:.1f}" y="{py(y) - 6:.1f}" fill="{c}">{label[0]}</text>')
        ly = T + 10 + 18 * i
        out.append(f'<line x1="{W - R + 12}" y1="{ly}" x2="{W - R + 32}" y2="{ly}" stroke="{c}" stroke-width="2"/>')
        out.append(f'<text x="{W - R + 38}" y="{ly + 4}">{name}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def svg_plot(
    title: str, xlabel: str, ylabel: str, series: dict[str, list[tuple[float, float, str]]], x_log2: bool = False, lines: bool = True
) -> str:
    """A log-log plot: markers per series, joined by a line when `lines`; points may carry a label."""
    pts = [p for s in series.values() for p in s]
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    if x_log2:
        xlo, xhi = 2.0 ** math.floor(math.log2(min(xs))), 2.0 ** math.ceil(math.log2(max(xs)))
        xt = [2.0**e for e in range(int(math.log2(xlo)), int(math.log2(xhi)) + 1, 2)]
    else:
        xt = log_ticks(min(xs), max(xs))
        xlo, xhi = xt[0], xt[-1]
    yt = log_ticks(min(ys), max(ys))
    ylo, yhi = yt[0], yt[-1]

    def px(x: float) -> float:
        return L + (math.log(x) - math.log(xlo)) / (math.log(xhi) - math.log(xlo)) * (W - L - R)

    def py(y: float) -> float:
        return H - B - (math.log(y) - math.log(ylo)) / (math.log(yhi) - math.log(ylo)) * (H - T - B)

    xticks = [(x, f"2^{int(round(math.log2(x)))}" if x_log2 else short(x)) for x in xt]
    return render(title, xlabel, ylabel, px, py, xticks, [(y, short(y)) for y in yt], series, lines=lines)


def prove_time(results: Path, zkinfer: Path) -> str | None:
    if not results.exists():
        print(f"skipped prove_time.svg: {results} is missing (run benches/ezkl/side_by_side.sh)")
        return None
    series: dict[str, list[tuple[float, float, str]]] = {"zkinfer": [], "EZKL": []}
    for r in json.loads(results.read_text()):
        model_dir = results.parent / r["model"] / "zkinfer" / "model"
        info = json.loads(subprocess.run([str(zkinfer), "info", str(model_dir), "--json"], check=True, capture_output=True, text=True).stdout)
        macs = info["macs"]
        series["zkinfer"].append((macs, r["zkinfer"]["prove"]["wall_s"], r["model"]))
        series["EZKL"].append((macs, r["ezkl"]["prove"]["wall_s"], r["model"]))
    # Different architectures: points, not a trend line.
    return svg_plot("Prove time against model size (same ONNX, input, machine)", "multiply-accumulates", "prove seconds", series, lines=False)


def msm_throughput(criterion: Path) -> str | None:
    series: dict[str, list[tuple[float, float, str]]] = {}
    for bench in sorted(criterion.glob("msm_2_*/*/new/benchmark.json")):
        meta = json.loads(bench.read_text())
        m = re.fullmatch(r"msm_2\^(\d+)", meta["group_id"])
        if not m:
            continue
        n = 2.0 ** int(m.group(1))
        seconds = json.loads((bench.parent / "estimates.json").read_text())["median"]["point_estimate"] / 1e9
        series.setdefault(meta["function_id"], []).append((n, n / seconds, ""))
    if not series:
        print(f"skipped msm_throughput.svg: no msm_2^N criterion benchmarks under {criterion}")
        return None
    return svg_plot("MSM throughput on BN254 G1 (2 cores)", "terms (n)", "terms per second", series, x_log2=True)


def nice_ticks(lo: float, hi: float, count: int = 5) -> tuple[list[float], float, float]:
    """About `count` ticks at a step of 1, 2 or 5 times a power of ten, covering [lo, hi]."""
    span = (hi - lo) or 1.0
    raw = span / count
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first, last = math.floor(lo / step), math.ceil(hi / step)
    ticks = [round(i * step, 12) for i in range(first, last + 1)]
    return ticks, ticks[0], ticks[-1]


def svg_linear(title: str, xlabel: str, ylabel: str, series: dict[str, list[tuple[float, float]]]) -> str:
    """A linear plot with a zero line: one polyline with markers per series."""
    pts = [p for s in series.values() for p in s]
    xs, xlo, xhi = nice_ticks(0.0, max(p[0] for p in pts))
    ys, ylo, yhi = nice_ticks(min(0.0, min(p[1] for p in pts)), max(0.0, max(p[1] for p in pts)))

    def px(x: float) -> float:
        return L + (x - xlo) / (xhi - xlo) * (W - L - R)

    def py(y: float) -> float:
        return H - B - (y - ylo) / (yhi - ylo) * (H - T - B)

    xticks = [(x, f"{x:g}") for x in xs]
    yticks = [(y, f"{y:g}") for y in ys]
    return render(title, xlabel, ylabel, px, py, xticks, yticks, series, marker=4, zero_line=True)


def optimistic(sim: Path) -> str | None:
    if not sim.exists():
        print(f"skipped optimistic_cheater.svg: {sim} is missing (cargo run --release -p zkinfer-benches --bin optimistic_sim -- --json {sim})")
        return None
    doc = json.loads(sim.read_text())
    least = doc["least_audit_p"]
    series: dict[str, list[tuple[float, float]]] = {}
    for r in doc["rows"]:
        p = r["audit_p"]
        name = f"p = {100 * p:g}%" + (" (least)" if abs(p - least) < 1e-9 else "")
        series.setdefault(name, []).append((100 * r["cheat_rate"], r["cheater_gain_per_job"]))
    return svg_linear("Cheater's gain per job against honest work", "cheating rate (%)", "ETH per job", series)


def aggregation(reports: Path) -> str | None:
    files = sorted(reports.glob("aggregation_n*.json")) if reports.is_dir() else []
    if not files:
        print(f"skipped aggregation_gas.svg: no {reports}/aggregation_n*.json (ZKINFER_AGG_REPORT={reports} scripts/aggregation.sh N)")
        return None
    reports_all = sorted((json.loads(f.read_text()) for f in files), key=lambda r: r["n"])
    rows = [r for r in reports_all if r.get("k", 22) == 22]
    series = {
        "one aggregated proof (submitBatch, top circuit at k = 22)": [(r["n"], r["submit_batch_gas"] / r["n"] / 1e3) for r in rows],
        "each job alone (submitProof)": [(r["n"], r["submit_proof_gas"] / 1e3) for r in rows],
    }
    for k in sorted({r["k"] for r in reports_all} - {22}):
        series[f"top circuit at k = {k}"] = [(r["n"], r["submit_batch_gas"] / r["n"] / 1e3) for r in reports_all if r["k"] == k]
    return svg_linear("Settlement gas per job (anvil, Osaka)", "jobs in the batch", "thousand gas per job", series)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--side-by-side", type=Path, default=ROOT / "target/side_by_side/results.json")
    p.add_argument("--criterion", type=Path, default=ROOT / "target/criterion")
    p.add_argument("--zkinfer", type=Path, default=ROOT / "target/release/zkinfer")
    p.add_argument("--optimistic-sim", type=Path, default=ROOT / "target/optimistic_sim.json")
    p.add_argument("--aggregation", type=Path, default=ROOT / "target/aggregation")
    p.add_argument("--out", type=Path, default=ROOT / "papers/plots")
    a = p.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    plots = [
        ("prove_time.svg", prove_time(a.side_by_side, a.zkinfer)),
        ("msm_throughput.svg", msm_throughput(a.criterion)),
        ("optimistic_cheater.svg", optimistic(a.optimistic_sim)),
        ("aggregation_gas.svg", aggregation(a.aggregation)),
    ]
    for name, svg in plots:
        if svg:
            tmp = a.out / f".{name}.tmp"  # written whole, then renamed: never half a plot
            tmp.write_text(svg)
            tmp.replace(a.out / name)
            print(f"wrote {a.out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
