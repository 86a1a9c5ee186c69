"""The open-loop schedule and the coordinated-omission correction, unit by unit (no Locust)."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from meshconform.perf import guard, histograms
from meshconform.perf.recording import Recorder
from meshconform.perf.schedule import Stream, Timing


def test_stream_is_evenly_spaced_after_a_random_phase() -> None:
    stream = Stream(100.0, lambda _t: 20.0, random.Random(3))
    dues = [stream.next_due() for _ in range(5)]
    assert 100.0 <= dues[0] < 100.05
    assert [round(b - a, 9) for a, b in zip(dues, dues[1:], strict=False)] == [0.05] * 4


def test_a_late_reply_delays_the_next_request_and_that_counts() -> None:
    """Due at 0.0 and 0.1; the first reply takes 0.35 s, so the second goes out at 0.35: its latency is
    measured from 0.1 (0.26 s), while a closed-loop tool would report only 0.01 s."""
    stream = Stream(0.0, lambda _t: 10.0, random.Random(0))
    first = stream.timing(0.0, 0.0, 0.35)
    second = stream.timing(0.1, 0.35, 0.36)
    assert first.corrected_us == 350_000
    assert second.corrected_us == 260_000 and second.service_us == 10_000
    assert second.lateness == 0.0  # waiting for the reply is the target's fault, not the generator's


def test_the_generators_own_lateness_is_not_latency() -> None:
    """The event loop woke 0.8 ms late (epoll's millisecond timer): that is not the target's latency,
    but it is recorded as lateness for the saturation guard."""
    stream = Stream(0.0, lambda _t: 10.0, random.Random(0))
    timing = stream.timing(1.0, 1.0008, 1.0028)
    assert timing.lateness == pytest.approx(0.0008)
    assert timing.corrected_us == 2000 == timing.service_us


def test_recorder_keeps_only_the_window_and_counts_late_sends() -> None:
    recorder = Recorder(10.0, 20.0)
    recorder.record("t/get", Timing(9.0, 9.0, 9.1, 0.0), ok=True)  # warm-up: excluded
    recorder.record("t/get", Timing(10.0, 10.0, 10.001, 0.0), ok=True)
    recorder.record("t/get", Timing(11.0, 11.003, 11.004, 0.003), ok=True)  # 3 ms late: a late send
    recorder.record("t/get", Timing(12.0, 12.0, 12.002, 0.0), ok=False, error="HTTP 503")
    recorder.record("t/get", Timing(20.0, 20.0, 20.001, 0.0), ok=True)  # after the window
    series = recorder.series["t/get"]
    assert (series.requests, series.errors, series.error_kinds) == (3, 1, {"HTTP 503": 1})
    assert (recorder.sends, recorder.late_sends, recorder.warmup_requests) == (3, 1, 1)


def _lateness(values_us: list[float]) -> object:
    h = histograms.new()
    histograms.record_many(h, values_us)
    return h


def _health(name: str, cpu: list[float], late_us: list[float]) -> guard.GeneratorHealth:
    return guard.GeneratorHealth(name, cpu, _lateness(late_us))  # type: ignore[arg-type]


def test_saturation_guard_cpu_both_ways() -> None:
    """CPU at 90 % of a core on average (Locust's warning level) invalidates, 89 % does not; the reason names the
    phase and the process."""
    on_time = [20.0] * 1000
    assert guard.verdict("scenarios", [_health("local0", [89.0, 88.0, 90.0], on_time)], True, 5000) == []
    [reason] = guard.verdict("in-mesh", [_health("local0", [91.0, 89.0, 90.0], on_time)], True, 5000)
    assert reason.startswith("phase in-mesh, generator local0: CPU 90% of a core"), reason


def test_saturation_guard_lateness_both_ways() -> None:
    """Late means later than max(1 ms, a tenth of the median latency); more than 5 % late sends invalidate.
    Tried on each side of both limits, and per process: two processes' reasons name each."""
    median = 5000.0  # a tenth is 0.5 ms: the 1 ms floor decides
    just_under = [20.0] * 950 + [1500.0] * 50  # 5.0 % late
    just_over = [20.0] * 949 + [1500.0] * 51  # 5.1 % late
    not_late = [20.0] * 900 + [990.0] * 100  # 10 % of sends 0.99 ms late: under the floor
    assert guard.verdict("scenarios", [_health("local0", [5.0], just_under)], True, median) == []
    assert guard.verdict("scenarios", [_health("local0", [5.0], not_late)], True, median) == []
    [reason] = guard.verdict("mesh-cost", [_health("local0", [5.0], just_over)], True, median)
    assert reason.startswith("phase mesh-cost, generator local0: 5.1% of sends started more than 1.0 ms late")
    # Against a 50 ms median a tenth is 5 ms: 1.5 ms late is not late there.
    assert guard.verdict("scenarios", [_health("local0", [5.0], just_over)], True, 50_000) == []
    reasons = guard.verdict("scenarios", [_health("worker1", [5.0], just_over), _health("worker2", [5.0], just_over)],
                            True, median)
    assert [r.split(":")[0] for r in reasons] == ["phase scenarios, generator worker1",
                                                  "phase scenarios, generator worker2"]
    # A closed model has no schedule to be late for; only its CPU counts.
    assert guard.verdict("scenarios", [_health("local0", [5.0], just_over)], False, median) == []


class _FakeLoop:
    """A clock and a cooperative sleep like gevent's on epoll: a sleep wakes up to a millisecond late (libev
    rounds the epoll timeout up to whole milliseconds), a zero sleep lets a little time pass."""

    def __init__(self, rounding_s: float = 0.001) -> None:
        self.now = 100.0
        self.rounding_s = rounding_s
        self.spins = 0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        if seconds == 0:
            self.spins += 1
            self.now += 0.000_005  # one turn of the loop
        else:
            self.now += (int(seconds / self.rounding_s) + 1) * self.rounding_s  # up to the next whole millisecond


@pytest.mark.parametrize("ahead_s", [0.0, 0.0004, 0.003, 0.0237, 0.25])
def test_precise_sleep_ends_within_a_loop_turn_where_the_loops_sleep_is_a_millisecond_late(ahead_s: float) -> None:
    from meshconform.perf.timer import SPIN_MARGIN_S, precise_sleep_until
    coarse = _FakeLoop()
    moment = coarse.now + ahead_s
    while coarse.now < moment:  # what the generator did before: the loop's own sleep
        coarse.sleep(moment - coarse.now)
    loop = _FakeLoop()
    late = precise_sleep_until(loop.now + ahead_s, loop.sleep, loop.clock)
    assert 0.0 <= late <= 0.000_005 + 1e-12, late
    assert loop.spins * 0.000_005 <= SPIN_MARGIN_S + 0.000_005  # the spin never outlasts the margin
    if ahead_s > SPIN_MARGIN_S:
        assert coarse.now - moment > 0.0002  # the coarse sleep overshoots, which is what the spin is for


def test_the_timer_sends_on_time_under_gevent(tmp_path: Path) -> None:
    """The real thing, in a process of its own (gevent must patch first): 200 waits of 2-12 ms with the precise
    timer, each followed by one with gevent's own sleep. A quarter of the precise waits end within 50 us (idle:
    most within a few microseconds), while a quarter of gevent's end more than 0.1 ms late (idle: ~0.3 ms; its
    median ~0.7 ms). A quantile this low survives a busy machine's preemptions (measured at load 14: 0.5 us
    against 0.7 ms)."""
    script = tmp_path / "probe.py"
    script.write_text(
        "import gevent.monkey\ngevent.monkey.patch_all()\n"
        "import gevent, json, random, time\nimport numpy as np\n"
        "from meshconform.perf.timer import precise_sleep_until\n"
        "def coarse(moment):\n"
        "    while (pause := moment - time.perf_counter()) > 0:\n"
        "        gevent.sleep(pause)\n"
        "    return time.perf_counter() - moment\n"
        "rng = random.Random(5)\nprecise, plain = [], []\n"
        "for _ in range(200):\n"
        "    precise.append(precise_sleep_until(time.perf_counter() + rng.uniform(0.002, 0.012), gevent.sleep))\n"
        "    plain.append(coarse(time.perf_counter() + rng.uniform(0.002, 0.012)))\n"
        "print(json.dumps({'precise': np.percentile(precise, 25), 'plain': np.percentile(plain, 25),\n"
        "                  'min': min(precise)}))\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=True)
    quarter = json.loads(done.stdout)
    assert quarter["min"] >= 0.0
    assert quarter["precise"] < 0.000_05 and quarter["plain"] > 0.000_1, quarter
