"""The saturation guard: a load generator that could not keep up makes its figures lies, so the
result is marked invalid (with the reason) instead of being reported as if it were fine.

Two signs, per generator process: its CPU was pegged (mean over the window at or above Locust's
own 90 % warning level), or its schedule slipped: more than 5 % of sends started late for reasons
of the generator itself (waits for a slow reply do not count, they are latency) by more than
max(2 ms, a tenth of the median latency). A process starved of CPU also reads replies late, which
the lateness of its sends stands for; lateness well below the latencies measured cannot move them
much (and is not counted as latency), lateness of their order can."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hdrh.histogram import HdrHistogram

from meshconform.perf import histograms
from meshconform.perf.spec import CPU_SATURATED_PERCENT, LATE_FRACTION_INVALID, LATE_SEND_US

LATE_SHARE_OF_MEDIAN = 0.1


@dataclass(frozen=True)
class GeneratorHealth:
    process: str
    cpu_samples: Sequence[float]  # percent of one core, one per second of the window
    lateness: HdrHistogram  # each send's own lateness (us)


def late_limit_us(median_latency_us: float) -> float:
    return max(float(LATE_SEND_US), LATE_SHARE_OF_MEDIAN * median_latency_us)


def verdict(processes: Sequence[GeneratorHealth], open_model: bool, median_latency_us: float) -> list[str]:
    """Reasons the result is invalid; empty when the generator kept up."""
    reasons = []
    limit = late_limit_us(median_latency_us)
    for health in processes:
        if health.cpu_samples:
            mean = sum(health.cpu_samples) / len(health.cpu_samples)
            if mean >= CPU_SATURATED_PERCENT:
                reasons.append(f"generator {health.process}: CPU {mean:.0f}% of a core on average "
                               f"(>= {CPU_SATURATED_PERCENT:.0f}%): add --processes or lower the rate")
        sends = health.lateness.get_total_count()
        if open_model and sends:
            values, counts = histograms.bins(health.lateness)
            share = float(counts[values > limit].sum()) / sends
            if share > LATE_FRACTION_INVALID:
                reasons.append(f"generator {health.process}: schedule slipped, {share:.1%} of sends started "
                               f"more than {limit / 1000:.1f} ms late (limit {LATE_FRACTION_INVALID:.0%})")
    return reasons
