"""Is tonight worse than before? Comparing a run with earlier runs of the same configuration.

Two runs of the same configuration differ by more than their sampling error: the machine's state, its
neighbours, a fresh platform's placement. A test that sees only the noise inside one run (resampling its
requests as if independent) cries wolf at most comparisons, so every judgement here carries a run-to-run term:

- **history** (at least `Policy.min_history` valid earlier runs of the same configuration): each metric's value in
  those runs (the log of the run's percentile) gives its own run-to-run spread, and the new run is worse when it
  lies above the one-sided prediction bound of a new observation (Student's t, k - 1 degrees of freedom).
- **pair** (fewer runs, e.g. one `--baseline`): the newest of them. The difference of the two runs' log
  percentiles has the variance of each run's percentile, by a block bootstrap over its seconds (about `blocks`
  blocks of whole seconds: a burst of the machine's other work moves whole seconds, which resampling single
  requests as if independent would miss), plus twice the
  run-to-run variance `Policy.run_spread`, which a pair cannot measure: its default was measured from A/A runs
  (see `RUN_SPREAD`), and the output says "not enough history" until a history replaces it.

Every latency percentile the runs support (histograms.supported) and every error rate is a metric; the
family-wise false-alarm rate `alpha` is shared out over them (Bonferroni). A change must also exceed
`floor_us`, below which timers and HDR resolution decide. Each verdict states the smallest change it would
detect (with probability `power`) and, in one sentence, why it says what it says."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from meshconform.perf import bootstrap, histograms, result
from meshconform.perf.spec import BLOCKS, MIN_HISTORY, RUN_SPREAD

PERCENTILES = histograms.PERCENTILES
NOT_JUDGED = ("too few", "disturbed")


@dataclass(frozen=True)
class Policy:
    alpha: float = 0.05  # family-wise false-alarm rate of one comparison (all its metrics together)
    run_spread: float = RUN_SPREAD  # assumed run-to-run SD of log(percentile) without history
    min_history: int = MIN_HISTORY  # earlier valid runs of the configuration needed to measure its own spread
    floor_us: float = 100.0  # a change below this is never worse or better (timer and HDR resolution)
    error_rate: float = 0.001  # nor an error-rate change below 0.1 percentage points
    power: float = 0.8  # the smallest detectable change stated is detected with this probability
    blocks: int = BLOCKS  # blocks per series in the block bootstrap (0: every second its own block)
    resamples: int = 1000


@dataclass(frozen=True)
class Verdict:
    series: str
    metric: str  # p50, p90, p99, p99_9, error_rate
    baseline: float  # us (error_rate: a fraction); with history, the runs' geometric mean (pooled rate)
    current: float
    change: float  # latency: relative (0.25 = 25 % slower); error rate: difference of rates
    bound: float  # the change above which it is worse (relative, or a rate difference)
    detectable: float  # the smallest change detected with Policy.power (same unit as change)
    outcome: str  # worse | better | same | too few | disturbed (not judged: see _too_few, _disturbed)
    why: str  # one sentence

    def line(self) -> str:
        if self.metric == "error_rate":
            values = f"{self.baseline:.2%} -> {self.current:.2%}"
            change = f"{self.change * 100:+.2f} pp"
            detect = f"detects >= {self.detectable * 100:+.2f} pp"
        else:
            values = f"{self.baseline / 1000:.3f} -> {self.current / 1000:.3f} ms"
            change = f"{self.change:+.0%}" if self.outcome not in NOT_JUDGED else ""
            detect = f"detects >= {self.detectable:+.0%}" if math.isfinite(self.detectable) else ""
        return f"{self.series:24s} {self.metric:10s} {values:>24s} {change:>9s}  {detect:18s} {self.outcome}"


@dataclass(frozen=True)
class Comparison:
    method: str  # "history" or "pair"
    references: list[str]  # ids of the runs compared with (newest last)
    note: str  # how it was judged, one sentence (e.g. "not enough history: ...")
    verdicts: list[Verdict]
    not_in_both: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # history runs left out, each with why

    @property
    def regression(self) -> bool:
        return any(v.outcome == "worse" for v in self.verdicts)

    def to_json(self) -> dict[str, Any]:
        return {"method": self.method, "baseline_id": self.references[-1], "references": self.references,
                "note": self.note, "regression": self.regression, "compared": len(self.verdicts),
                "worse": [f"{v.series} {v.metric}" for v in self.verdicts if v.outcome == "worse"],
                "better": [f"{v.series} {v.metric}" for v in self.verdicts if v.outcome == "better"],
                "not_in_both": self.not_in_both, "skipped": self.skipped,
                "verdicts": [{"series": v.series, "metric": v.metric, "baseline": v.baseline, "current": v.current,
                              "change": v.change, "bound": v.bound, "detectable": v.detectable,
                              "outcome": v.outcome, "why": v.why} for v in self.verdicts]}


def _series(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in document["results"] if s["requests"]}


def _seconds(series: dict[str, Any]) -> bootstrap.Seconds:
    intervals = series.get("intervals")
    if intervals and intervals["histograms"]:
        return _decoded(tuple(intervals["histograms"]))
    # A result without per-second histograms: one block, so only the run-to-run term is left.
    return _decoded((series["histogram"],))


@functools.lru_cache(maxsize=512)
def _decoded(blobs: tuple[str, ...]) -> bootstrap.Seconds:
    """Decoded once: a history's runs are compared again every night, a run's series once per percentile."""
    return bootstrap.Seconds.from_blobs(blobs)


def log_percentile(series: dict[str, Any], p: float, policy: Policy, rng: np.random.Generator) -> tuple[float, float]:
    """(log of the run's percentile, its block-bootstrap standard error; 0 when it has one block)."""
    seconds = _seconds(series)
    block_s = max(1, round(seconds.counts.shape[0] / policy.blocks)) if policy.blocks else 1
    log_q, se = bootstrap.block_log_quantile(seconds, p, block_s, policy.resamples, rng)
    return log_q, (se if math.isfinite(se) else 0.0)


def _late_share(document: dict[str, Any], phase: str) -> float:
    """The share of late sends of a phase (guard.py); 0 for a result from before it was recorded."""
    found = next((ph for ph in document.get("phases", []) if ph["name"] == phase), None)
    return float(found["generator"].get("late_share", 0.0)) if found else 0.0


def _disturbed(p: float, shares: Sequence[float]) -> str | None:
    """Why percentile p is not judged when fewer than twice a run's late share of its requests lie beyond it."""
    tail = 1.0 - p / 100.0
    worst = max(shares, default=0.0)
    if worst * 2 <= tail:
        return None
    return (f"not judged: {worst:.1%} of the phase's sends were late in a run compared, more than half the "
            f"{tail:.1%} of requests beyond {histograms.key_name(p)}, so the generator's own delays could set it")


def _too_few(name: str, p: float, counts: Sequence[int]) -> str:
    return (f"not judged: {histograms.key_name(p)} needs {histograms.needed(p)} requests in every run "
            f"({histograms.MIN_TAIL} beyond it), {name} has {min(counts)}")


def _latency_verdict(series: str, p: float, now_log: float, before_log: float, spread: float, critical: float,
                     detect_z: float, floor_us: float, basis: str) -> Verdict:
    current, reference = math.exp(now_log), math.exp(before_log)
    change = current / reference - 1.0
    bound = math.expm1(critical * spread)
    detectable = math.expm1((critical + detect_z) * spread)
    metric = histograms.key_name(p)
    if now_log - before_log > critical * spread and current - reference > floor_us:
        outcome, why = "worse", (f"{metric} rose {change:+.0%} ({(current - reference) / 1000:+.3f} ms), beyond the "
                                 f"{bound:+.0%} that {basis}")
    elif before_log - now_log > critical * spread and reference - current > floor_us:
        outcome, why = "better", f"{metric} fell {change:+.0%}, beyond what {basis}"
    else:
        outcome, why = "same", f"{metric} changed {change:+.0%}: within the {bound:+.0%} that {basis}"
    return Verdict(series, metric, reference, current, change, bound, detectable, outcome, why)


def _error_verdict(series: str, errors: int, requests: int, ref_errors: int, ref_requests: int, level: float,
                   policy: Policy) -> Verdict:
    rate, ref_rate = errors / requests, ref_errors / ref_requests
    worse_p = stats.fisher_exact([[errors, requests - errors], [ref_errors, ref_requests - ref_errors]],
                                 alternative="greater").pvalue
    better_p = stats.fisher_exact([[errors, requests - errors], [ref_errors, ref_requests - ref_errors]],
                                  alternative="less").pvalue
    # The smallest rise Fisher's test flags at this level from the reference rate (normal approximation), at least
    # the practical floor.
    z = stats.norm.isf(level) + stats.norm.isf(1 - policy.power)
    spread = math.sqrt(max(ref_rate * (1 - ref_rate), 1.0 / ref_requests) * (1 / requests + 1 / ref_requests))
    detectable = max(policy.error_rate, z * spread)
    change = rate - ref_rate
    if worse_p < level and change > policy.error_rate:
        outcome, why = "worse", (f"errors rose from {ref_rate:.2%} to {rate:.2%}: Fisher's exact test "
                                 f"p = {worse_p:.2g}, below {level:.2g}")
    elif better_p < level and -change > policy.error_rate:
        outcome, why = "better", (f"errors fell from {ref_rate:.2%} to {rate:.2%} (Fisher's exact test "
                                  f"p = {better_p:.2g})")
    else:
        outcome, why = "same", (f"errors {ref_rate:.2%} -> {rate:.2%}: no change beyond chance at {level:.2g} "
                                f"and {policy.error_rate * 100:.1f} pp")
    return Verdict(series, "error_rate", ref_rate, rate, change, policy.error_rate, detectable, outcome, why)


def compare(current: dict[str, Any], references: Sequence[dict[str, Any]], policy: Policy = Policy(),
            seed: int | None = 0, skipped: Sequence[str] = ()) -> Comparison:
    """Judge `current` against `references` (valid earlier runs of its configuration, oldest first)."""
    if not references:
        raise ValueError("nothing to compare with")
    rng = np.random.default_rng(seed)
    history = len(references) >= policy.min_history
    used = list(references) if history else [references[-1]]
    mine = _series(current)
    theirs = [_series(d) for d in used]
    shared = [name for name in mine if all(name in t for t in theirs)]
    everywhere = set(mine) | {n for t in theirs for n in t}
    not_in_both = sorted(everywhere - set(shared))
    runs = [(current, mine), *zip(used, theirs, strict=True)]
    late = {name: [_late_share(d, series[name].get("phase", "")) for d, series in runs] for name in shared}
    judged = {(name, p): histograms.supported(min([mine[name]["requests"]] + [t[name]["requests"] for t in theirs]), p)
              and _disturbed(p, late[name]) is None for name in shared for p in PERCENTILES}
    metrics = sum(judged.values()) + len(shared)
    level = policy.alpha / max(1, metrics)  # one-sided, per metric
    k = len(used)
    if history:
        critical = float(stats.t.isf(level, k - 1))
        detect_z = float(stats.t.isf(1 - policy.power, k - 1))
        note = (f"against the history of {k} valid runs of this configuration: each metric's own run-to-run spread; "
                f"family-wise false-alarm rate {policy.alpha:g} over {metrics} metrics")
    else:
        critical = float(stats.norm.isf(level))
        detect_z = float(stats.norm.isf(1 - policy.power))
        have = len(references)
        note = (f"not enough history ({have} of {policy.min_history} valid runs of this configuration): judged against "
                f"run {used[-1]['id']} with an assumed run-to-run spread of {policy.run_spread:.0%} "
                f"(a history measures its own); family-wise false-alarm rate {policy.alpha:g} over {metrics} metrics")
    differ = _differences(current, used[-1])
    if differ:  # an A/B comparison (e.g. -f a fault) is meant to differ; a nightly one is not: said either way
        note += f"; the configuration differs from {used[-1]['id']}'s in: {', '.join(differ)}"
    verdicts = []
    for name in shared:
        counts = [mine[name]["requests"]] + [t[name]["requests"] for t in theirs]
        for p in PERCENTILES:
            metric = histograms.key_name(p)
            now_q = histograms.percentile(histograms.decode(mine[name]["histogram"]), p)
            ref_q = histograms.percentile(histograms.decode(theirs[-1][name]["histogram"]), p)
            if not judged[(name, p)]:
                disturbed = _disturbed(p, late[name])
                enough = histograms.supported(min(counts), p)
                verdicts.append(Verdict(name, metric, ref_q, now_q, now_q / ref_q - 1.0, math.inf, math.inf,
                                        "too few" if not enough else "disturbed",
                                        _too_few(name, p, counts) if not enough else str(disturbed)))
                continue
            now_log, now_se = log_percentile(mine[name], p, policy, rng)
            if history:
                logs, within = np.array([log_percentile(t[name], p, policy, rng) for t in theirs]).T
                # the runs' spread, never below what their own sampling noise implies
                sd = math.sqrt(max(float(np.var(logs, ddof=1)), float(np.mean(within ** 2))))
                spread = sd * math.sqrt(1.0 + 1.0 / k)
                before_log = float(np.mean(logs))
                basis = f"the {k} runs of the history vary by (alpha {policy.alpha:g} over {metrics} metrics)"
            else:
                before_log, ref_se = log_percentile(theirs[-1][name], p, policy, rng)
                spread = math.sqrt(now_se ** 2 + ref_se ** 2 + 2 * policy.run_spread ** 2)
                basis = (f"two runs differ by at this level (their seconds' spread and the assumed "
                         f"{policy.run_spread:.0%} run-to-run spread)")
            verdicts.append(_latency_verdict(name, p, now_log, before_log, spread, critical, detect_z,
                                             policy.floor_us, basis))
        ref_errors = sum(t[name]["errors"] for t in theirs)
        ref_requests = sum(t[name]["requests"] for t in theirs)
        verdicts.append(_error_verdict(name, mine[name]["errors"], mine[name]["requests"], ref_errors, ref_requests,
                                       level, policy))
    return Comparison("history" if history else "pair", [d["id"] for d in used], note, verdicts, not_in_both,
                      list(skipped))


def detectable(document: dict[str, Any], policy: Policy = Policy(),
               seed: int | None = 0) -> dict[str, dict[str, float]]:
    """Per series and reported percentile: the smallest rise a pair comparison of two runs like this one would flag
    with probability `policy.power` (its own block-bootstrap error counted twice, and twice the assumed run-to-run
    variance), so every result states what it can detect before anyone compares it."""
    rng = np.random.default_rng(seed)
    series = [s for s in document["results"] if s["requests"] and "step" not in s]
    metrics = sum(histograms.supported(s["requests"], p) for s in series for p in PERCENTILES) + len(series)
    z = float(stats.norm.isf(policy.alpha / max(1, metrics)) + stats.norm.isf(1 - policy.power))
    out: dict[str, dict[str, float]] = {}
    for entry in series:
        for p in PERCENTILES:
            if histograms.supported(entry["requests"], p):
                _, se = log_percentile(entry, p, policy, rng)
                change = math.expm1(z * math.sqrt(2 * se ** 2 + 2 * policy.run_spread ** 2))
                out.setdefault(entry["name"], {})[histograms.key_name(p)] = round(change, 3)
    return out


def pair_false_alarm_rate(measured: Sequence[tuple[float, float]], assumed: float, metrics: int,
                          alpha: float = 0.05) -> float:
    """How often a pair comparison assuming run-to-run spread `assumed` says REGRESSION between two runs of one
    configuration, if each judged latency metric's true run-to-run SD and own (block-bootstrap) error were the
    (rr, own) in `measured`; `metrics` counts every metric the comparison judges (error rates too), over which
    `compare` shares alpha. Per metric, the difference of two runs' log percentiles has SD sqrt(2 (rr^2 + own^2)),
    and `compare` flags it above z sqrt(2 (assumed^2 + own^2)), z at alpha / metrics; summed over the latency
    metrics, an upper bound on the family's rate (one run's metrics move together). With assumed = rr everywhere
    it is alpha x len(measured) / metrics exactly."""
    z = float(stats.norm.isf(alpha / max(1, metrics, len(measured))))
    return sum(float(stats.norm.sf(z * math.sqrt(2 * (assumed ** 2 + own ** 2)) / math.sqrt(2 * (rr ** 2 + own ** 2))))
               for rr, own in measured)


def smallest_safe_spread(measured: Sequence[tuple[float, float]], metrics: int, alpha: float = 0.05) -> float:
    """The smallest assumed run-to-run spread whose pair false-alarm rate is at most alpha for these metrics (the
    rate falls as the assumed spread grows), to 0.01 %: what the default `RUN_SPREAD` is set from."""
    low, high = 0.0, 2.0
    while high - low > 1e-4:
        middle = (low + high) / 2
        low, high = (middle, high) if pair_false_alarm_rate(measured, middle, metrics, alpha) > alpha else (low, middle)
    return high


def fingerprint(document: dict[str, Any]) -> dict[str, Any]:
    """What makes two runs comparable: the platform and the load configuration (not the seed, not --history)."""
    options = document["config"]["options"]
    keys = ("platform", "mode", "rate", "users", "duration_s", "warmup_s", "steps", "phases", "processes", "files")
    return {k: options.get(k) for k in keys}


def _differences(one: dict[str, Any], other: dict[str, Any]) -> list[str]:
    if "config" not in one or "config" not in other:
        return []
    mine, theirs = fingerprint(one), fingerprint(other)
    return [k for k in mine if mine[k] != theirs.get(k)]


def history(folder: Path, like: dict[str, Any] | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    """The results under `folder`, oldest first, and the ones left out with why: unreadable files, invalid runs,
    and (with `like`) runs of another configuration than `like`'s, or `like` itself."""
    found, skipped = [], []
    for path in sorted(Path(folder).rglob(result.RESULT_NAME)):
        try:
            document = result.read(path)
        except Exception as exc:  # noqa: BLE001  (one bad file must not hide the rest)
            skipped.append(f"{path}: unreadable ({exc})")
            continue
        if like is not None and document["id"] == like["id"]:
            continue
        if not document["valid"]:
            skipped.append(f"{document['id']}: invalid ({'; '.join(document['invalid_reasons'])})")
        elif like is not None and (differ := _differences(like, document)):
            skipped.append(f"{document['id']}: another configuration ({', '.join(differ)})")
        else:
            found.append(document)
    return sorted(found, key=lambda d: d["start_time"]), skipped


def all_results(folder: Path) -> list[dict[str, Any]]:
    """Every readable result under `folder`, valid or not, oldest first (for the trend picture)."""
    found = []
    for path in sorted(Path(folder).rglob(result.RESULT_NAME)):
        try:
            found.append(result.read(path))
        except Exception:  # noqa: BLE001,S112  (history() names them)
            continue
    return sorted(found, key=lambda d: d["start_time"])
