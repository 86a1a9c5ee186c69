"""The saturation guard: a load generator that could not keep up makes its figures lies, so the
result is marked invalid (with the phase, the process and the reason) instead of being reported as fine.

What it protects is the latency measured. A reply is timed when the generator reads it; a generator that is
busy (its own CPU) or waiting for a CPU (the machine's other work) reads it late, and that delay lands in the
latency. The generator cannot see its reads' delays, but it sees the same delays when it sends: with the
precise timer (timer.py) a send on an idle machine starts within microseconds of its time (the README's idle
figure), so a late send is a wait for the CPU or for the event loop, which the reads around it share. So:

- **Late sends**: a send is late when it starts more than a tenth of the phase's median latency after its
  time (at least LATE_SEND_US): a reply read that late is off by more than a tenth of a typical latency.
  More than LATE_FRACTION_INVALID (5 %) of the sends late and the run is invalid: that many late reads could
  move p50 at most to p52.5 and p90 to p95 of the latencies, even if every late read fell on the slowest
  requests (for the page's spread, SD 0.5 of log latency: +6 % and +20 %), against a smallest detectable change
  of +100 % and more in a comparison without history. Below the limit the run is valid, but a percentile with
  fewer than twice the phase's late share of requests beyond it (p99 above 0.5 % late sends, p99.9 above
  0.05 %) could be set by late reads alone: the comparison does not judge it ("disturbed", baseline.py).
  5 % is also fortio's level for warning that its sleeps fell behind. Measured here: a quiet run's sends are
  4-7 us late at the median (the precise timer); at load ~1.2 from other work, 0.1-5 % of a phase's sends
  were more than 1 ms late; at load 5 and more, 7-35 %.
- **CPU**: a process averaging CPU_SATURATED_PERCENT of a core (Locust's own warning level) has its event
  loop busy nearly all the time, so every reply waits in the socket for it, late sends or not.

Waiting for a slow reply before the next send is not lateness (that is latency: the open model's correction)."""

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


def late_share(lateness: HdrHistogram, limit_us: float) -> float:
    """The share of sends later than `limit_us`."""
    sends = int(lateness.get_total_count())
    if not sends:
        return 0.0
    values, counts = histograms.bins(lateness)
    return float(counts[values > limit_us].sum()) / sends


def verdict(phase: str, processes: Sequence[GeneratorHealth], open_model: bool, median_latency_us: float) -> list[str]:
    """Reasons the phase's result is invalid, each naming the phase and the process; empty when it kept up."""
    reasons = []
    limit = late_limit_us(median_latency_us)
    for health in processes:
        where = f"phase {phase}, generator {health.process}"
        if health.cpu_samples:
            mean = sum(health.cpu_samples) / len(health.cpu_samples)
            if mean >= CPU_SATURATED_PERCENT:
                reasons.append(f"{where}: CPU {mean:.0f}% of a core on average (>= {CPU_SATURATED_PERCENT:.0f}%): "
                               "add --processes or lower the rate")
        if open_model:
            share = late_share(health.lateness, limit)
            if share > LATE_FRACTION_INVALID:
                reasons.append(f"{where}: {share:.1%} of sends started more than {limit / 1000:.1f} ms late (limit "
                               f"{LATE_FRACTION_INVALID:.0%}): the machine's other work or the generator itself kept "
                               "it from the CPU, so replies were read late too")
    return reasons
