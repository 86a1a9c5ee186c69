"""The open-loop schedule and the coordinated-omission correction, unit by unit (no Locust)."""

from __future__ import annotations

import random

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


def test_saturation_guard() -> None:
    """Invalid when CPU averages >= 90 %, or when more than 5 % of sends are later than
    max(2 ms, a tenth of the median latency)."""
    on_time = [100.0] * 1000
    busy = guard.GeneratorHealth("local0", [95.0, 97.0, 93.0], _lateness(on_time))  # type: ignore[arg-type]
    slipping = guard.GeneratorHealth("worker1", [40.0], _lateness([100.0] * 940 + [3000.0] * 60))  # type: ignore[arg-type]
    fine = guard.GeneratorHealth("worker2", [40.0, 60.0], _lateness([100.0] * 980 + [3000.0] * 20))  # type: ignore[arg-type]
    assert guard.verdict([fine], open_model=True, median_latency_us=1000) == []
    reasons = guard.verdict([busy, slipping, fine], open_model=True, median_latency_us=1000)
    assert len(reasons) == 2 and "CPU 95%" in reasons[0] and "6.0% of sends" in reasons[1], reasons
    # 3 ms late against a 50 ms median is within a tenth of it: not a slip.
    assert guard.verdict([slipping], open_model=True, median_latency_us=50_000) == []
    # A closed model has no schedule to slip; only its CPU counts.
    assert guard.verdict([slipping], open_model=False, median_latency_us=1000) == []
