"""The pictures of a perf run (matplotlib, PNG): the latency-percentile curve (mesh vs no mesh and
the scenarios, the tail on a log scale), throughput and latency over time, and the nightly trend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from meshconform.perf import histograms  # noqa: E402

TAIL_TICKS = (0.0, 50.0, 90.0, 99.0, 99.9, 99.99)


def _finish(fig: Any, ax: Any, path: Path) -> Path:
    """The latency plots' common end: log grid, legend, written as PNG, figure closed."""
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def percentile_curve(document: dict[str, Any], path: Path) -> Path:
    """Latency by percentile, x = 1/(1-p) on a log axis (HDR's customary plot), y log-scaled too."""
    fig, ax = plt.subplots(figsize=(8, 5))
    for series in document["results"]:
        if "step" in series:  # per-step entries repeat the phase's; the steps plot shows them
            continue
        histogram = histograms.decode(series["histogram"])
        total = histogram.get_total_count()
        if total < 10:
            continue
        top = min(99.99, 100.0 * (1 - 1.0 / total))
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


def over_time(document: dict[str, Any], path: Path) -> Path:
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
            entries = [p["series"][key] for p in phase["timeline"] if key in p["series"]]
            counts = np.array([e["requests"] for e in entries], dtype=float)
            if turn > 1 and counts.size >= turn:
                counts = np.convolve(counts, np.ones(turn) / turn, mode="same")
            rate_ax.plot(t, counts, label=key)
            measured = [(x, e) for x, e in zip(t, entries, strict=True) if "p50_us" in e]
            latency_ax.plot([x for x, _ in measured], [e["p50_us"] / 1000 for _, e in measured], ".-",
                            label=f"{key} p50")
            latency_ax.plot([x for x, _ in measured], [e["p99_us"] / 1000 for _, e in measured], ".--",
                            label=f"{key} p99")
        rate_ax.set_title(f"{phase['name']} ({phase['model']}, {phase['requested_rps'] or 'max'} rps asked)")
        rate_ax.set_ylabel("requests/s")
        latency_ax.set_ylabel("latency (ms)")
        latency_ax.set_yscale("log")
        latency_ax.set_xlabel("seconds into the measurement")
        rate_ax.legend(fontsize=7)
        latency_ax.legend(fontsize=6)
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
