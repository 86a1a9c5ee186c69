"""A load shape (--steps) through the real Locust process against a loopback server whose service time
grows with the load it sees: each step gets its own series (`<key>@step<n>`) with the requests of that
step only, its requested rate and users, and the per-step percentiles show the latency climbing with the
rate, which the whole-phase series averages away."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from meshconform.perf import histograms, plots, result
from meshconform.perf.runner import run_phase
from meshconform.perf.spec import PhaseSpec, Step, Target
from tests.conftest import loopback_server

SLOW_AFTER_S = 2.5  # the server answers in 1 ms until this long after its first request, then in 20 ms


class _SlowsDown(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    first: float | None = None
    lock = threading.Lock()

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        now = time.monotonic()
        with self.lock:
            if _SlowsDown.first is None:
                _SlowsDown.first = now
        time.sleep(0.001 if now < _SlowsDown.first + SLOW_AFTER_S else 0.020)  # the server's own service time
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *_: object) -> None:
        return None


@pytest.fixture()
def slowing_server() -> Iterator[str]:
    _SlowsDown.first = None
    with loopback_server(_SlowsDown) as address:
        yield f"http://{address}"


def test_each_step_gets_its_own_series(slowing_server: str, tmp_path: Path) -> None:
    # Warm-up 0.5 s at step 1's rate, then 2 s at 20 rps (fast server) and 2 s at 40 rps (slow server).
    steps = [Step(users=4, rate=20.0, duration_s=2.0), Step(users=4, rate=40.0, duration_s=2.0)]
    spec = PhaseSpec("shape", ["Get"], [Target("srv", slowing_server)], mode="open", warmup_s=0.5, steps=steps)
    outcome = run_phase(spec, tmp_path, progress=None)
    whole = outcome.series["srv/get"]
    first, second = outcome.step_series["srv/get@step1"], outcome.step_series["srv/get@step2"]
    assert set(outcome.step_series) == {"srv/get@step1", "srv/get@step2"}
    assert first.requests + second.requests == whole.requests, "every measured request belongs to one step"
    # Requests are counted by their intended send time, so each step holds about its rate x duration: exact
    # up to each stream's random phase (one request per stream) on a quiet machine; on a loaded one a send
    # still due when the phase ends may never go out, hence the slack below the nominal counts.
    assert 30 <= first.requests <= 44 and 64 <= second.requests <= 84, (first.requests, second.requests)
    p50_first, p50_second = histograms.percentile(first.corrected, 50.0), histograms.percentile(second.corrected, 50.0)
    # The server's own service time rises by 19 ms between the steps; the machine's load shifts both alike.
    assert p50_second - p50_first >= 10_000, f"step p50s {p50_first} us, {p50_second} us"

    document = result.build("run-steps", [outcome], {"platform": "test"}, None, {"steps": "4:20:2,4:40:2"})
    result.validate(document)
    entries = {s["name"]: s for s in document["results"]}
    assert (entries["srv/get@step2"]["step"], entries["srv/get@step2"]["step_rate"]) == (2, 40.0)
    assert entries["srv/get@step2"]["actual_rps"] == pytest.approx(40.0, abs=3.0)
    assert entries["srv/get@step1"]["request"] == "get" and "step" not in entries["srv/get"]
    picture = plots.by_step(document, tmp_path / "steps.png")
    assert picture is not None and picture.stat().st_size > 1000
