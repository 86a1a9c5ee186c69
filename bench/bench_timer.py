"""How late a gevent load generator sends, with gevent's own sleep and with perf's precise timer
(timer.precise_sleep_until), and what the precise wait costs in CPU. One process, nothing else running
in it: run it on an idle machine for the README's idle figure (and note `uptime`).

Each of --waits waits targets a moment 5-30 ms ahead (the spacing of a 30-200 rps schedule); lateness is
perf_counter at return minus the moment. Prints p50/p90/p99/max lateness and the CPU seconds per wait.

Run: .venv/bin/python bench/bench_timer.py [--waits 2000]"""

from __future__ import annotations

import gevent.monkey

gevent.monkey.patch_all()

import argparse  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import time  # noqa: E402

import gevent  # noqa: E402
import numpy as np  # noqa: E402

from meshconform.perf.timer import SPIN_MARGIN_S, precise_sleep_until  # noqa: E402


def gevent_sleep_until(moment: float) -> None:
    """The generator's wait before the precise timer: gevent.sleep until the moment (again if early)."""
    while (pause := moment - time.perf_counter()) > 0:
        gevent.sleep(pause)


def measure(wait: object, count: int, rng: random.Random) -> tuple[np.ndarray, float]:
    late = np.empty(count)
    cpu = time.process_time()
    for i in range(count):
        moment = time.perf_counter() + rng.uniform(0.005, 0.030)
        wait(moment)  # type: ignore[operator]
        late[i] = time.perf_counter() - moment
    return late * 1e6, (time.process_time() - cpu) / count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--waits", type=int, default=2000)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs, gevent loop {gevent.get_hub().loop}")
    rng = random.Random(1)
    for name, wait in (("gevent.sleep", gevent_sleep_until),
                       (f"precise (spin margin {SPIN_MARGIN_S * 1000:g} ms)",
                        lambda moment: precise_sleep_until(moment, gevent.sleep))):
        late, cpu = measure(wait, args.waits, rng)
        p50, p90, p99 = np.percentile(late, [50, 90, 99])
        print(f"{name:32s} lateness p50 {p50:7.1f} us  p90 {p90:7.1f} us  p99 {p99:7.1f} us  max {late.max():8.1f} us"
              f"   CPU {cpu * 1e6:6.1f} us per wait")


if __name__ == "__main__":
    main()
