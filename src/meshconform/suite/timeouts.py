"""Every timeout of the suite in one place; overrides are recorded in the report."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace

# How early a proxy's timer (a fault delay, a route or per-try timeout) may fire. Envoy arms its timers on
# libevent, which counts from the time cached when the current loop iteration began, so a timer fires early by
# however long that iteration had already run (envoyproxy/envoy#12414 review; libevent/libevent#1173): seen here
# as a 0.5 s route timeout ending a request after 0.4996 s. Lower bounds on a timed duration subtract this.
TIMER_EARLINESS_S = 0.02


@dataclass(frozen=True)
class Timeouts:
    max_time_to_consistency: float = 30.0  # cap for a new config to show
    required_consecutive_successes: int = 3  # new behaviour seen N times in a row
    request_timeout: float = 10.0
    poll_interval: float = 0.1  # first pause between probes; doubles up to 1 s
    log_poll_interval: float = 0.05  # logs fill in the background: read at a steady pace, without back-off
    # Where a platform cannot tell what is under way (SupportsInFlight): a count of late arrivals (a mirror's copies,
    # tries a caller gave up on) is taken as final once unchanged this long.
    settle_quiet: float = 0.4
    # On a mesh the run's xdist workers share: how long a unit may wait for its turn (suite/turns.py), behind units
    # that run whole tests on a real cluster, and how often it looks.
    turn_wait: float = 1800.0
    turn_poll: float = 0.02

    def with_overrides(self, pairs: list[str]) -> tuple[Timeouts, dict[str, float]]:
        names = {f.name: f.type for f in fields(self)}
        overrides: dict[str, float] = {}
        for pair in pairs:
            name, _, value = pair.partition("=")
            if name not in names:
                raise ValueError(f"unknown timeout {name!r}; known: {', '.join(names)}")
            overrides[name] = _count(name, value) if name == "required_consecutive_successes" else _seconds(name, value)
        return replace(self, **overrides), overrides  # type: ignore[arg-type]

    def to_json(self) -> dict[str, float]:
        return asdict(self)


def _seconds(name: str, value: str) -> float:
    """A duration given on the command line: a finite number of seconds above 0 (with 0 or less a deadline has
    passed before its wait begins, a pause spins; with inf or nan a wait never ends)."""
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{name}={value!r}: not a number of seconds above 0")
    return seconds


def _count(name: str, value: str) -> int:
    if not value.strip().isdigit() or int(value) < 1:
        raise ValueError(f"{name}={value!r}: not a whole number of 1 or more")
    return int(value)
