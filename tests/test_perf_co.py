"""Coordinated omission, end to end through the real Locust process: a tiny loopback server that
stalls once for 0.5 s. The open model's latencies (from the intended send time) must show the stall
in the tail; the same requests timed from their actual send (what a closed-loop tool reports)
mostly hide it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from meshconform.perf import histograms
from meshconform.perf.runner import run_phase
from meshconform.perf.spec import PhaseSpec, Target
from tests.conftest import loopback_server

STALL_S = 0.5
STALL_AFTER_FIRST_S = 2.0  # warm-up is 1 s: the stall falls inside the measured window


class _StallOnce(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    first: float | None = None
    lock = threading.Lock()

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        now = time.monotonic()
        with self.lock:
            if _StallOnce.first is None:
                _StallOnce.first = now
        start = _StallOnce.first + STALL_AFTER_FIRST_S
        if start <= now < start + STALL_S:
            time.sleep(start + STALL_S - now)  # every request arriving in the stall waits for its end
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        return None


@pytest.fixture()
def stalling_server() -> Iterator[str]:
    _StallOnce.first = None
    with loopback_server(_StallOnce) as address:
        yield f"http://{address}"


def test_a_stall_shows_in_the_open_models_tail(stalling_server: str, tmp_path: Path) -> None:
    """100 rps on 10 connections for 4 s: ~50 requests fall due during the 0.5 s stall, so about
    12 % of the corrected latencies lie between 0 and 0.5 s; timed from the actual send only the ~10
    requests caught in flight (2.5 %) do, plus the backlog's burst on a busy machine. So: the corrected
    p95 lies in the stall (> 100 ms) and is at least twice the uncorrected one, and at least 2.5 times
    as many requests exceed 100 ms corrected as uncorrected (about 5x on an idle machine; measured
    4.1x and 6.7x with load averages of 17 and 10 on 2 cores)."""
    spec = PhaseSpec("co", ["Get"], [Target("stall", stalling_server)], mode="open", rate=100.0, users=10,
                     warmup_s=1.0, duration_s=4.0)
    outcome = run_phase(spec, tmp_path, progress=None)
    series = outcome.series["stall/get"]
    assert series.errors == 0 and series.requests >= 350, (series.requests, series.error_kinds)
    corrected_p95, corrected_max = histograms.percentiles(series.corrected, [95.0, 100.0])
    service_p95 = histograms.percentile(series.service, 95.0)
    assert corrected_p95 > 100_000, f"the stall does not show in the corrected tail: p95 {corrected_p95} us"
    assert corrected_max >= 0.8 * STALL_S * 1e6, corrected_max
    assert corrected_p95 >= 2 * service_p95, f"corrected p95 {corrected_p95} us, uncorrected {service_p95} us"
    slow_corrected, slow_service = _above(series.corrected, 100_000), _above(series.service, 100_000)
    assert slow_corrected >= 2.5 * slow_service, f"over 100 ms: {slow_corrected} corrected, {slow_service} not"


def _above(histogram: object, value_us: float) -> int:
    values, counts = histograms.bins(histogram)  # type: ignore[arg-type]
    return int(counts[values > value_us].sum())
