"""Sending on time: a wait that ends within microseconds of the moment asked for, inside gevent.

gevent's timers (libev on epoll) wake a sleeper up to about a millisecond late on an idle machine:
epoll_wait takes its timeout in whole milliseconds, which libev rounds up, so every send of a fixed-rate
schedule left ~0.7 ms late (median; p90 ~1.2 ms, measured), more than the sidecar's published cost at p90.
So a wait sleeps on the event loop until SPIN_MARGIN_S before the moment, then yields to the other
greenlets in a loop (`gevent.sleep(0)`: replies keep being read) until the clock reaches it: 3.6 us late at
the median, 30 us at p99 (bench/bench_timer.py, load 1.2). The spin costs at most SPIN_MARGIN_S of CPU per
send (~0.9 ms measured, ~3 % of a core at 30 requests/s), which the saturation guard's CPU check counts like
any other generator work.

Pure apart from the two functions it is given, so tests drive it with a fake clock."""

from __future__ import annotations

import time
from collections.abc import Callable

SPIN_MARGIN_S = 0.0015  # > libev's rounding up (1 ms) plus the kernel's timer slack (~50 us)


def precise_sleep_until(moment: float, sleep: Callable[[float], object],
                        clock: Callable[[], float] = time.perf_counter, margin_s: float = SPIN_MARGIN_S) -> float:
    """Return at `moment` (on `clock`) or as soon after it as the process gets the CPU; returns the lateness
    in seconds. `sleep(s)` is the cooperative sleep (gevent.sleep: 0 means "let the others run once")."""
    while (pause := moment - clock() - margin_s) > 0:
        sleep(pause)  # may wake early (the loop's cached clock lags) or late, by up to the margin
    while (now := clock()) < moment:
        sleep(0)
    return now - moment
