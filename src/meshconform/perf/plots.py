"""The pictures of a perf run (matplotlib, PNG): the latency-percentile curve (mesh vs no mesh and
the scenarios, the tail on a log scale), throughput and latency over time, the comparison with a
baseline (percentile curves with intervals, each judged percentile's verdict), and the nightly trend.
Percentiles are drawn only where the requests support them (histograms.supported)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from hdrh.histogram import HdrHistogram  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from meshconform.perf import histograms  # noqa: E402
from meshconform.perf.baseline import NOT_JUDGED  # noqa: E402

if TYPE_CHECKING:
    from meshconform.perf.baseline import Comparison

TAIL_TICKS = (0.0, 50.0, 90.0, 99.0, 99.9, 99.99)


def _plain_ticks(ax: Any) -> None:
    """A log latency axis labelled 20, 30, 40 rather than 2x10^1."""
    plain = FuncFormatter(lambda value, _: f"{value:g}")
    ax.yaxis.set_major_formatter(plain)
    ax.yaxis.set_minor_formatter(plain)


def _finish(fig: Any, ax: Any, path: Path) -> Path:
    """The latency plots' common end: log grid, legend, written as PNG, figure closed."""
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def percentile_curve(document: dict[str, Any], path: Path) -> Path:
    """Latency by percentile, x = 1/(1-p) on a log axis (HDR's customary plot), y log-scaled too; each curve
    ends where its requests stop supporting the percentile (histograms.MIN_TAIL beyond it)."""
    fig, ax = plt.subplots(figsize=(8, 5))
    for series in document["results"]:
        if "step" in series:  # per-step entries repeat the phase's; the steps plot shows them
            continue
        histogram = histograms.decode(series["histogram"])
        total = histogram.get_total_count()
        if not histograms.supported(total, 50.0):
            continue
        top = min(99.99, 100.0 * (1 - histograms.MIN_TAIL / total))
        ps = 100.0 - np.logspace(np.log10(100.0), np.log10(100.0 - top), 200)
        values = [v / 1000.0 for v in histograms.percentiles(histogram, ps)]
        width = 2.5 if series["target"] in ("mesh", "no-mesh") else 1.2
        ax.plot(1.0 / (1.0 - ps / 100.0), values, label=f"{series['name']} (n={total})", linewidth=width)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks([1.0 / (1.0 - p / 100.0) for p in TAIL_TICKS], [f"{p:g}%" for p in TAIL_TICKS])
    ax.set_xlabel("percentile")
    ax.set_ylabel("latency from intended send (ms)")
    ax.set_title("Latency by percentile")
    return _finish(fig, ax, path)


def _windows(series: dict[str, Any], enough: int) -> tuple[list[float], list[HdrHistogram]]:
    """The series' per-second histograms merged into windows of as many seconds as it takes to hold `enough`
    requests typically (so every point's percentile is supported): (window middles in seconds, histograms)."""
    intervals = series.get("intervals") or {}
    blobs = intervals.get("histograms") or []
    if not blobs:
        return [], []
    per_second = max(1.0, series["requests"] / len(blobs))  # seconds without requests count (alternating targets)
    width = max(1, int(np.ceil(enough / per_second)))
    first = intervals.get("first", 0)
    middles, merged = [], []
    for start in range(0, len(blobs), width):
        chunk = [b for b in blobs[start:start + width] if b]
        if chunk:
            middles.append(first + start + min(width, len(blobs) - start) / 2.0)
            merged.append(histograms.merged(chunk))
    return middles, merged


def over_time(document: dict[str, Any], path: Path) -> Path:
    """Per phase: requests per second (axis from zero) and latency over the run. Latency points are windows of
    enough seconds for a supported p50 and p90 (histograms.supported); a window too small for its p90 shows p50
    only."""
    phases = document["phases"]
    fig, axes = plt.subplots(2, len(phases), figsize=(5 * len(phases), 6), squeeze=False, sharex="col")
    for column, phase in enumerate(phases):
        rate_ax, latency_ax = axes[0][column], axes[1][column]
        keys = sorted({k for point in phase["timeline"] for k in point["series"]})
        # Targets that alternate second by second: average the rate over one full turn, so the
        # curve shows the load rather than the alternation.
        turn = max(1, len(phase.get("targets", [])))
        for key in keys:
            t = [p["t"] for p in phase["timeline"] if key in p["series"]]
            counts = np.array([p["series"][key]["requests"] for p in phase["timeline"] if key in p["series"]],
                              dtype=float)
            if turn > 1 and counts.size >= turn:
                counts = np.convolve(counts, np.ones(turn) / turn, mode="same")
            rate_ax.plot(t, counts, label=key)
        mine = [s for s in document["results"] if s["phase"] == phase["name"] and "step" not in s]
        for number, series in enumerate(mine):
            middles, windows = _windows(series, histograms.needed(90.0))
            for p, style in ((50.0, ".-"), (90.0, ".--")):
                points = [(x, histograms.percentile(h, p) / 1000) for x, h in zip(middles, windows, strict=True)
                          if histograms.supported(h.get_total_count(), p)]
                if points:
                    latency_ax.plot(*zip(*points, strict=True), style, color=f"C{number}",
                                    label=f"{series['name']} {histograms.key_name(p)}")
        rate_ax.set_title(f"{phase['name']} ({phase['model']}, {phase['requested_rps'] or 'max'} rps asked)")
        rate_ax.set_ylabel("requests/s")
        rate_ax.set_ylim(bottom=0)  # from zero: 28-32 rps is steady, not a swing
        latency_ax.set_ylabel("latency (ms)")
        latency_ax.set_yscale("log")
        _plain_ticks(latency_ax)
        latency_ax.set_xlabel("seconds into the measurement")
        for ax, size in ((rate_ax, 7), (latency_ax, 6)):
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=size)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


VERDICT_COLOURS = {"worse": "tab:red", "better": "tab:green", "same": "tab:gray"}


def _curve(histogram: HdrHistogram) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """(x = 1/(1-p), latency ms, interval low, interval high) at percentiles the histogram supports."""
    total = histogram.get_total_count()
    top = 100.0 * (1.0 - histograms.MIN_TAIL / total) if total else 0.0
    if top < 50.0:
        return None
    ps = 100.0 - np.logspace(np.log10(99.0), np.log10(100.0 - top), 24)  # from p1 to the last supported
    values = np.array(histograms.percentiles(histogram, ps)) / 1000
    bands = [histograms.percentile_interval(histogram, float(p)) for p in ps]
    low = np.array([b[0] / 1000 if b else np.nan for b in bands])
    high = np.array([b[1] / 1000 if b else np.nan for b in bands])
    return 1.0 / (1.0 - ps / 100.0), values, low, high


def comparison(document: dict[str, Any], references: list[dict[str, Any]], compared: Comparison,
               path: Path) -> Path:
    """Baseline against this run, one panel per series: latency by percentile with 95 % intervals (shaded), the
    runs compared with (the newest drawn like the run, older history runs thin), and at each judged percentile
    its verdict (colour) and change."""
    names = sorted({v.series for v in compared.verdicts})
    columns = min(3, max(1, len(names)))
    rows = max(1, int(np.ceil(len(names) / columns)))
    fig, axes = plt.subplots(rows, columns, figsize=(5.2 * columns, 3.8 * rows), squeeze=False)
    mine = {s["name"]: s for s in document["results"]}
    for index, name in enumerate(names):
        ax = axes[index // columns][index % columns]
        for number, reference in enumerate(references):
            theirs = next((s for s in reference["results"] if s["name"] == name), None)
            curve = _curve(histograms.decode(theirs["histogram"])) if theirs else None
            if curve is None:
                continue
            newest = number == len(references) - 1
            if newest:
                ax.fill_between(curve[0], curve[2], curve[3], color="tab:blue", alpha=0.2, linewidth=0)
            ax.plot(curve[0], curve[1], color="tab:blue", linewidth=1.6 if newest else 0.6, alpha=1 if newest else 0.5,
                    label=f"baseline {reference['id']}" if newest else None)
        curve = _curve(histograms.decode(mine[name]["histogram"]))
        if curve is not None:
            ax.fill_between(curve[0], curve[2], curve[3], color="tab:orange", alpha=0.25, linewidth=0)
            ax.plot(curve[0], curve[1], color="tab:orange", linewidth=1.6, label=f"this run {document['id']}")
        for verdict in compared.verdicts:
            if verdict.series != name or verdict.metric == "error_rate" or verdict.outcome in NOT_JUDGED:
                continue  # a percentile not judged is not drawn (the title names it)
            p = float(verdict.metric[1:].replace("_", "."))
            x = 1.0 / (1.0 - p / 100.0)
            ax.scatter([x], [verdict.current / 1000], s=40, zorder=3, color=VERDICT_COLOURS[verdict.outcome],
                       edgecolors="black")
            label = f"{verdict.change:+.0%} {verdict.outcome}"
            ax.annotate(label, (x, verdict.current / 1000), textcoords="offset points", xytext=(4, 6), fontsize=7)
        errors = next((v for v in compared.verdicts if v.series == name and v.metric == "error_rate"), None)
        title = name if errors is None else f"{name}  (errors: {errors.outcome})"
        for outcome in NOT_JUDGED:
            left = [v.metric for v in compared.verdicts if v.series == name and v.outcome == outcome]
            if left:
                title += f"\nnot judged, {outcome}: {', '.join(left)}"
        ax.set_title(title, fontsize=9)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks([1.0 / (1.0 - p / 100.0) for p in TAIL_TICKS[:-1]], [f"{p:g}%" for p in TAIL_TICKS[:-1]])
        ax.set_ylabel("ms from intended send", fontsize=8)
        _plain_ticks(ax)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=6)
    for index in range(len(names), rows * columns):
        axes[index // columns][index % columns].axis("off")
    verdict_text = "REGRESSION" if compared.regression else "no regression"
    fig.suptitle(f"{document['id']} against {', '.join(compared.references[-3:])}: {verdict_text} "
                 f"({compared.method}); shaded: 95 % intervals", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def by_step(document: dict[str, Any], path: Path) -> Path | None:
    """With a load shape: p50 and p99 of each series at each step, against the step's requested rate
    (the knee where latency starts to climb is what a stepped run is for). None without steps."""
    entries = [s for s in document["results"] if "step" in s]
    if not entries:
        return None
    fig, ax = plt.subplots(figsize=(8, 5))
    for base in sorted({s["name"].partition("@step")[0] for s in entries}):
        mine = sorted((s for s in entries if s["name"].partition("@step")[0] == base), key=lambda s: s["step"])
        rates = [s["step_rate"] for s in mine]
        for metric, style in (("p50", "-o"), ("p99", "--o")):
            ax.plot(rates, [s["latencies_us"].get(metric, np.nan) / 1000 for s in mine], style, markersize=4,
                    label=f"{base} {metric}")
    ax.set_xlabel("requested rate of the step (requests/s)")
    ax.set_ylabel("latency from intended send (ms)")
    ax.set_yscale("log")
    ax.set_title("Latency per load step")
    return _finish(fig, ax, path)


def trend(documents: list[dict[str, Any]], path: Path) -> Path:
    """p50 and p99 per series across runs, and the mesh cost at p99, by run start time."""
    fig, (latency_ax, cost_ax) = plt.subplots(2, 1, figsize=(9, 7))
    names = sorted({s["name"] for d in documents for s in d["results"] if "step" not in s})
    labels = [d["start_time"][:16].replace("T", " ") for d in documents]
    x = np.arange(len(documents))
    for name in names:
        for metric, style in (("p50", "-o"), ("p99", "--o")):
            ys = [next((s["latencies_us"].get(metric, np.nan) / 1000 for s in d["results"] if s["name"] == name),
                       np.nan) for d in documents]
            latency_ax.plot(x, ys, style, markersize=3, label=f"{name} {metric}")
    latency_ax.set_yscale("log")
    latency_ax.set_ylabel("latency (ms)")
    latency_ax.set_title("Nightly trend")
    latency_ax.legend(fontsize=6, ncol=2)
    for metric in ("p50", "p99"):
        cost_at = [((d.get("mesh_cost") or {}).get("percentiles") or {}).get(metric) for d in documents]
        added = np.array([v["added_us"] / 1000 if v else np.nan for v in cost_at], dtype=float)
        low = np.array([v["ci_low_us"] / 1000 if v else np.nan for v in cost_at])
        high = np.array([v["ci_high_us"] / 1000 if v else np.nan for v in cost_at])
        cost_ax.errorbar(x, added, yerr=[added - low, high - added], fmt="-o", capsize=3, label=f"mesh cost {metric}")
    cost_ax.set_ylabel("latency added by the mesh (ms)")
    cost_ax.set_xticks(x, labels, rotation=30, fontsize=7)
    cost_ax.legend(fontsize=7)
    invalid = [i for i, d in enumerate(documents) if not d["valid"]]
    for i in invalid:
        for ax in (latency_ax, cost_ax):
            ax.axvspan(i - 0.4, i + 0.4, color="red", alpha=0.1)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
