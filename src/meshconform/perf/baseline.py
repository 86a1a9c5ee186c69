"""Comparing a result with a baseline: every latency percentile and error rate of the series both
runs have, as better / same / worse with a bootstrap interval, and whether that is a regression.

A percentile is judged only with at least MIN_TAIL values above it in both runs. A metric is
worse when its interval lies above zero (the change is real at the family-wise error
rate `alpha`, shared out over the metrics by Bonferroni) AND the estimated change exceeds the
threshold (max of a share of the baseline value and an absolute floor): statistically and
practically significant. Better is the mirror image; anything else is the same."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meshconform.perf import bootstrap, histograms, result

PERCENTILES = histograms.PERCENTILES
MIN_TAIL = 10  # a percentile is judged only with at least this many values above it in both runs: the
# bootstrap of an extreme order statistic is unreliable (p99.9 needs 10 000 requests, p99 1 000)


@dataclass(frozen=True)
class Thresholds:
    relative: float = 0.10  # a change below 10 % of the baseline value is never a regression
    floor_us: float = 100.0  # nor one below 100 us (timer and scheduling noise on a busy machine)
    error_rate: float = 0.001  # nor an error-rate change below 0.1 percentage points
    alpha: float = 0.05  # family-wise false-alarm rate on identical distributions


@dataclass(frozen=True)
class Verdict:
    series: str
    metric: str  # p50, p90, p99, p99_9, error_rate
    baseline: float
    current: float
    interval: bootstrap.Interval
    tolerance: float
    outcome: str  # better | same | worse | too few (not judged: see MIN_TAIL)

    def line(self) -> str:
        if self.metric == "error_rate":
            def fmt(v: float) -> str:
                return f"{v * 100:.2f}%"
            delta = f"{self.interval.estimate * 100:+.2f} pp [{self.interval.low * 100:+.2f}, " \
                    f"{self.interval.high * 100:+.2f}]"
        else:
            def fmt(v: float) -> str:
                return f"{v / 1000:.3f} ms"
            delta = f"{self.interval.estimate / 1000:+.3f} ms [{self.interval.low / 1000:+.3f}, " \
                    f"{self.interval.high / 1000:+.3f}]"
        return f"{self.series:28s} {self.metric:10s} {fmt(self.baseline):>11s} -> {fmt(self.current):>11s}  " \
               f"{delta:34s} {self.outcome}"


def enough(requests: int, percentile: float) -> bool:
    return requests * (1.0 - percentile / 100.0) >= MIN_TAIL


def _judge(interval: bootstrap.Interval, tolerance: float) -> str:
    if interval.low > 0 and interval.estimate > tolerance:
        return "worse"
    if interval.high < 0 and interval.estimate < -tolerance:
        return "better"
    return "same"


def compare(current: dict[str, Any], baseline: dict[str, Any], thresholds: Thresholds = Thresholds(),
            seed: int | None = 0, resamples: int = bootstrap.RESAMPLES) -> list[Verdict]:
    mine = {s["name"]: s for s in current["results"]}
    theirs = {s["name"]: s for s in baseline["results"]}
    shared = [name for name in mine if name in theirs and mine[name]["requests"] and theirs[name]["requests"]]
    metrics = sum(1 + sum(enough(min(mine[n]["requests"], theirs[n]["requests"]), p) for p in PERCENTILES)
                  for n in shared)
    confidence = 1.0 - thresholds.alpha / max(1, metrics)
    verdicts = []
    for name in shared:
        now, before = histograms.decode(mine[name]["histogram"]), histograms.decode(theirs[name]["histogram"])
        intervals = bootstrap.percentile_differences(now, before, PERCENTILES, confidence, resamples, seed)
        fewest = min(mine[name]["requests"], theirs[name]["requests"])
        for p, interval in intervals.items():
            reference = histograms.percentile(before, p)
            tolerance = max(thresholds.relative * reference, thresholds.floor_us)
            outcome = _judge(interval, tolerance) if enough(fewest, p) else "too few"
            verdicts.append(Verdict(name, histograms.key_name(p), reference, histograms.percentile(now, p),
                                    interval, tolerance, outcome))
        errors = bootstrap.rate_difference(mine[name]["errors"], mine[name]["requests"], theirs[name]["errors"],
                                           theirs[name]["requests"], confidence, resamples, seed)
        verdicts.append(Verdict(name, "error_rate", theirs[name]["error_rate"], mine[name]["error_rate"], errors,
                                thresholds.error_rate, _judge(errors, thresholds.error_rate)))
    return verdicts


def summary(verdicts: list[Verdict], current: dict[str, Any], baseline: dict[str, Any]) -> dict[str, Any]:
    worse = [v for v in verdicts if v.outcome == "worse"]
    only = sorted({s["name"] for s in current["results"]} ^ {s["name"] for s in baseline["results"]})
    return {"baseline_id": baseline["id"], "regression": bool(worse), "compared": len(verdicts),
            "worse": [f"{v.series} {v.metric}" for v in worse],
            "better": [f"{v.series} {v.metric}" for v in verdicts if v.outcome == "better"],
            "not_in_both": only,
            "verdicts": [{"series": v.series, "metric": v.metric, "baseline": v.baseline, "current": v.current,
                          "change": v.interval.estimate, "ci_low": v.interval.low, "ci_high": v.interval.high,
                          "tolerance": v.tolerance, "outcome": v.outcome} for v in verdicts]}


def history(folder: Path) -> list[dict[str, Any]]:
    """Every valid-schema result under `folder`, oldest first (unreadable files are skipped, named)."""
    found = []
    for path in sorted(Path(folder).rglob(result.RESULT_NAME)):
        try:
            found.append(result.read(path))
        except Exception as exc:  # noqa: BLE001  (one bad file must not hide the trend)
            print(f"history: skipping {path}: {exc}")
    return sorted(found, key=lambda d: d["start_time"])
