"""What one load phase is: targets, model, rate, timing. Shared (as JSON) by the `meshconform perf`
process and the Locust processes it starts; no Locust import here."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

Mode = Literal["open", "closed"]

# Thresholds and limits of a perf run, in one place.
HISTOGRAM_MAX_US = 60_000_000  # 60 s: anything slower is clamped (and is a timeout anyway)
HISTOGRAM_DIGITS = 3  # 3 significant digits: 0.1 % resolution, 1 us at the bottom
NETWORK_TIMEOUT_S = 10.0  # a request that takes longer counts as an error
CONNECT_TIMEOUT_S = 5.0
CPU_SATURATED_PERCENT = 90.0  # mean generator CPU (of one core) in the window: Locust's own warning level
LATE_SEND_US = 1_000  # a send this late (or a tenth of the median latency, if more) is late: guard.py says why
LATE_FRACTION_INVALID = 0.05  # more than 5 % late sends: the run is invalid (guard.py)
WORKER_CONNECT_S = 30.0  # distributed mode: all workers connected to the master within this
# The run-to-run standard deviation of log(percentile) between runs of one configuration, assumed while there is no
# history to measure it (baseline.py). Measured from A/A runs on a shared 2-core machine (README, "Performance
# baselines"; bench/bench_perf_aa.py re-measures it): 0.135 at p50 and 0.178 at p90 over the series (up to 0.29
# for one series' p90); with those spreads a pair comparison stays at or under alpha = 5 % false alarms only when it
# assumes at least 0.184 (15 % would give ~12 %), so 0.20, rounded up because 6 runs estimate it loosely.
RUN_SPREAD = 0.20
MIN_HISTORY = 5  # earlier valid runs of a configuration needed to use their own run-to-run spread instead
BLOCKS = 10  # the comparison's block bootstrap cuts each series into about this many blocks of whole seconds
INTERVAL_S = 1.0  # each series also keeps one histogram per second of the window (by intended send time)
PROCESS_EXIT_GRACE_S = 20.0  # a phase's processes get this long past their planned end


@dataclass(frozen=True)
class Target:
    """Where a stream of requests goes: a base URL, and the Host header to send (None: the URL's)."""

    name: str
    base_url: str
    host: str | None = None


@dataclass(frozen=True)
class Step:
    """One step of a load shape: this many users at this total rate (open) for this long."""

    users: int
    rate: float
    duration_s: float


@dataclass
class PhaseSpec:
    name: str
    user_classes: list[str]  # names in meshconform.perf.scenarios
    targets: list[Target]  # with several, users alternate between them every block_s
    mode: Mode = "open"
    rate: float = 50.0  # total requests/s (open); per-user pacing is rate/users (closed)
    users: int = 10  # connections: each user holds one connection
    warmup_s: float = 5.0
    duration_s: float = 30.0
    block_s: float = 1.0
    steps: list[Step] = field(default_factory=list)  # a LoadTestShape when given (warm-up = first step's)
    processes: int = 1  # >1: Locust's distributed mode (a master and this many workers)
    out_dir: str = "."
    csv: bool = False
    html: bool = False
    login_user: str = "jason"
    path: str = "/"  # what the Get user requests
    seed: int = 0

    @property
    def total_s(self) -> float:
        return self.warmup_s + (sum(s.duration_s for s in self.steps) if self.steps else self.duration_s)

    def rate_at(self, elapsed: float) -> tuple[float, int, int]:
        """(total rate, users, step index) at `elapsed` seconds after the test started."""
        if not self.steps:
            return self.rate, self.users, 0
        t = elapsed - self.warmup_s
        end = 0.0
        for index, step in enumerate(self.steps):
            end += step.duration_s
            if t < end:
                return step.rate, step.users, index
        last = self.steps[-1]
        return last.rate, last.users, len(self.steps) - 1

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PhaseSpec:
        data = dict(data)
        data["targets"] = [Target(**t) for t in data["targets"]]
        data["steps"] = [Step(**s) for s in data.get("steps", [])]
        return cls(**data)

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=1))

    @classmethod
    def read(cls, path: Path) -> PhaseSpec:
        return cls.from_json(json.loads(path.read_text()))
