"""The open-loop schedule: when each request of a stream *should* be sent, and what that makes
its latency (coordinated-omission correction, as wrk2 does).

Each user is one stream on one connection with a fixed spacing of users/rate seconds and a random
phase (streams are staggered, like fortio's -uniform). If a reply comes back late, the requests
that fell due meanwhile go out back to back, and each is timed from its intended send time: a
stall of the target shows in the tail instead of silently thinning the sample. Pure: no Locust."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Timing:
    """One request, on the monotonic clock (seconds)."""

    intended: float  # when the schedule wanted it sent (closed model: when it was sent)
    sent: float
    done: float
    lateness: float  # how late the send started for reasons of the generator itself (not the reply)

    @property
    def corrected_us(self) -> int:
        """Latency from the intended send time (what a user arriving on schedule sees), less the
        generator's own lateness: the wait for a slow previous reply counts (that is the correction),
        the event loop waking up late does not (epoll's millisecond timer would add ~0.5 ms to
        every request; the saturation guard watches that lateness instead)."""
        return max(1, round((self.done - self.intended - self.lateness) * 1e6))

    @property
    def service_us(self) -> int:
        """Latency measured from the actual send (what a closed-loop tool such as wrk reports)."""
        return max(1, round((self.done - self.sent) * 1e6))


class Stream:
    """Intended send times of one user. `rate` gives the user's own rate (requests/s) at a time."""

    def __init__(self, start: float, rate: Callable[[float], float], rng: random.Random | None = None) -> None:
        first = rate(start)
        spacing = 1.0 / first if first > 0 else 1.0
        self._rate = rate
        self._next = start + (rng or random.Random()).uniform(0.0, spacing)
        self._last_done = start

    def next_due(self) -> float:
        due = self._next
        current = self._rate(due)
        self._next = due + (1.0 / current if current > 0 else 1.0)
        return due

    def timing(self, intended: float, sent: float, done: float) -> Timing:
        """Record one request; lateness excludes time spent waiting for the previous reply."""
        lateness = max(0.0, sent - max(intended, self._last_done))
        self._last_done = done
        return Timing(intended, sent, done, lateness)
