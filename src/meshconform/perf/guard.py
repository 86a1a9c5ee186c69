"""The saturation guard: a load generator that could not keep up makes its figures lies, so the
result is marked invalid (with the reason) instead of being reported as if it were fine.

Two signs, per generator process: its CPU was pegged (mean over the window at or above Locust's
own 90 % warning level), or its schedule slipped (more than 5 % of sends started over 2 ms late
for reasons of the generator itself; waits for a slow reply do not count, they are latency)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from meshconform.perf.spec import CPU_SATURATED_PERCENT, LATE_FRACTION_INVALID, LATE_SEND_US


@dataclass(frozen=True)
class GeneratorHealth:
    process: str
    cpu_samples: Sequence[float]  # percent of one core, one per second of the window
    sends: int
    late_sends: int


def verdict(processes: Sequence[GeneratorHealth], open_model: bool) -> list[str]:
    """Reasons the result is invalid; empty when the generator kept up."""
    reasons = []
    for health in processes:
        if health.cpu_samples:
            mean = sum(health.cpu_samples) / len(health.cpu_samples)
            if mean >= CPU_SATURATED_PERCENT:
                reasons.append(f"generator {health.process}: CPU {mean:.0f}% of a core on average "
                               f"(>= {CPU_SATURATED_PERCENT:.0f}%): add --processes or lower the rate")
        if open_model and health.sends:
            share = health.late_sends / health.sends
            if share > LATE_FRACTION_INVALID:
                reasons.append(f"generator {health.process}: schedule slipped, {share:.1%} of sends started "
                               f"more than {LATE_SEND_US / 1000:g} ms late (limit {LATE_FRACTION_INVALID:.0%})")
    return reasons
