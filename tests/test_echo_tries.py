"""Both testbed echoes (the local platform's bookinfo/apps/echo.py and the cluster agent) treat `/first/<n>/` alike:
a status or delay applies to the first n arrivals of a request id only, and a try its caller gave up on is still
logged, when it is given up (the interaction checks count tries at the server without waiting out delays)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import requests

SLOW_MS = 10_000  # a delay no abandoned try may be waited out for: its record is due when the caller gives up


def _records(kind: str, folder: Path) -> list[dict[str, object]]:
    path = folder / ("stdout.log" if kind == "agent" else "requests.log")
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


def test_first_n_tries_of_a_request_id(echo: tuple[str, int, Path]) -> None:
    kind, port, folder = echo
    url = f"http://127.0.0.1:{port}"
    statuses = [requests.get(f"{url}/x/first/2/status/503", headers={"x-request-id": "r1"}, timeout=5).status_code
                for _ in range(3)]
    assert statuses == [503, 503, 200]
    assert requests.get(f"{url}/x/first/2/status/503", headers={"x-request-id": "r2"}, timeout=5).status_code == 503
    assert requests.get(f"{url}/x/status/503", headers={"x-request-id": "r1"}, timeout=5).status_code == 503
    # A slow first try the caller abandons, then a prompt second one; both are logged, the abandoned one when it
    # was abandoned (499), long before its delay would have ended.
    with pytest.raises(requests.Timeout):
        requests.get(f"{url}/y/first/1/delay/{SLOW_MS}", headers={"x-request-id": "r3"}, timeout=0.2)
    started = time.monotonic()
    assert requests.get(f"{url}/y/first/1/delay/{SLOW_MS}", headers={"x-request-id": "r3"}, timeout=5).status_code \
        == 200
    assert time.monotonic() - started < 0.5
    deadline = started + SLOW_MS / 2000
    while sum(r["request_id"] == "r3" for r in _records(kind, folder)) < 2:
        assert time.monotonic() < deadline, (
            f"{kind}: the abandoned try was not logged within {SLOW_MS / 2000:g}s: {_records(kind, folder)}")
        time.sleep(0.05)
    assert sorted(r["status"] for r in _records(kind, folder) if r["request_id"] == "r3") == [200, 499]


def test_grpc_status_header(echo: tuple[str, int, Path]) -> None:
    """`/grpc-status/<code>` puts that gRPC status in the response headers (what retryOn `unavailable` and
    `cancelled` read), on the first n tries only under `/first/<n>/`; other paths carry none."""
    _, port, _ = echo
    url = f"http://127.0.0.1:{port}"
    reply = requests.get(f"{url}/a/grpc-status/14", headers={"x-request-id": "g1"}, timeout=5)
    assert (reply.status_code, reply.headers.get("grpc-status")) == (200, "14")
    assert "grpc-status" not in requests.get(f"{url}/a/status/200", timeout=5).headers
    limited = [requests.get(f"{url}/b/first/1/grpc-status/1", headers={"x-request-id": "g2"}, timeout=5)
               for _ in range(2)]
    assert [r.headers.get("grpc-status") for r in limited] == ["1", None]
