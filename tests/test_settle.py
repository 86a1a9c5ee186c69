"""await_settled: a count of late arrivals is final once nothing is under way (platforms that can tell), or once
it has stopped growing for the quiet window (platforms that cannot)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from meshconform.suite.convergence import NeverConverged, await_settled, under_way
from meshconform.suite.timeouts import Timeouts

FAST = replace(Timeouts(), log_poll_interval=0.001, max_time_to_consistency=5.0)


class Busy:
    """A watch that reports requests under way for its first `busy_reads` reads."""

    def __init__(self, busy_reads: int) -> None:
        self.reads, self.busy_reads = 0, busy_reads

    def __call__(self) -> dict[str, int]:
        self.reads += 1
        return {"default/echo-v1-abc": 1} if self.reads <= self.busy_reads else {}


def test_final_as_soon_as_nothing_is_under_way_without_a_quiet_window() -> None:
    watch = Busy(busy_reads=3)
    # A quiet window of an hour: returning at all shows it was not waited for.
    timeouts = replace(FAST, settle_quiet=3600.0)
    assert await_settled(lambda: 7, timeouts, "the log", watch=watch, at_least=7) == 7
    assert watch.reads == 4  # three busy reads, then the idle one that ended the wait


def test_the_count_read_after_the_idle_watch_is_the_one_returned() -> None:
    counts = iter([1, 2, 3, 4, 5])
    assert await_settled(lambda: next(counts), FAST, "the log", watch=Busy(busy_reads=2), at_least=0) == 3


def test_idle_is_not_enough_while_the_count_is_short_of_at_least() -> None:
    counts = iter([0, 1, 2, 3])
    assert await_settled(lambda: next(counts), FAST, "the log", watch=Busy(0), at_least=3) == 3


def test_requests_under_way_until_the_cap_fail_naming_where() -> None:
    timeouts = replace(FAST, max_time_to_consistency=0.05)
    with pytest.raises(NeverConverged) as failure:
        await_settled(lambda: 2, timeouts, "echo-v1's request log to settle", watch=Busy(busy_reads=10**9))
    assert "default/echo-v1-abc 1" in str(failure.value)
    assert "echo-v1's request log to settle" in failure.value.reason


def test_without_a_watch_the_count_must_stay_unchanged_for_the_quiet_window() -> None:
    counts = iter([1, 2, 2, 2, 2, 2, 2] + [2] * 10_000)
    reads = 0

    def count() -> int:
        nonlocal reads
        reads += 1
        return next(counts)
    timeouts = replace(FAST, settle_quiet=0.02)
    assert await_settled(count, timeouts, "the log", watch=None, at_least=1) == 2
    assert reads >= 3  # the change from 1 to 2 restarted the window


def test_under_way_only_for_platforms_that_tell() -> None:
    class Tells:
        def __init__(self) -> None:
            self.asked: list[tuple[object, object]] = []

        def in_flight(self, workloads, request_ids=None):  # type: ignore[no-untyped-def]
            self.asked.append((list(workloads), request_ids))
            return {}

    platform = Tells()
    watch = under_way(platform, [("default", "client")], {"id-1"})
    assert watch is not None and watch() == {}
    assert platform.asked == [([("default", "client")], {"id-1"})]
    assert under_way(object(), [("default", "client")]) is None


def test_the_platform_reads_in_flight_where_the_apps_answer_it() -> None:
    from meshconform.bookinfo.apps import common
    from meshconform.platform.local import observation

    assert observation.IN_FLIGHT_PATH == common.IN_FLIGHT_PATH


def _app_at(address: str):  # type: ignore[no-untyped-def]
    from meshconform.platform.local.translator.model import Pod

    ip, _, port = address.rpartition(":")
    return Pod("echo-1", "default", "echo", {}, "echo", ip, (int(port),), injected=False)


def test_an_apps_requests_count_by_request_id_and_a_gone_or_slow_app_is_told_apart(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import json
    import socket
    import threading
    from http.server import BaseHTTPRequestHandler

    from meshconform.platform.local import observation
    from tests.conftest import loopback_server

    release = threading.Event()

    class App(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
            if self.path != observation.IN_FLIGHT_PATH:
                self.send_error(404)
                return
            if self.server.server_address[1] == slow_port[0]:
                release.wait(10)
            body = json.dumps(["a", "a", "b", ""]).encode()
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    slow_port = [0]
    with loopback_server(App) as answering, loopback_server(App) as slow:
        slow_port[0] = int(slow.rpartition(":")[2])
        assert observation.in_flight([_app_at(answering)], {"a"}) == {"default/echo-1": 2}
        assert observation.in_flight([_app_at(answering)]) == {"default/echo-1": 4}
        assert observation.in_flight([_app_at(answering)], {"c"}) == {}
        # Alive but too slow to answer: it may be busy, so it counts as one request under way.
        monkeypatch.setattr(observation, "IN_FLIGHT_READ_TIMEOUT_S", 0.1)
        try:
            assert observation.in_flight([_app_at(slow)], {"c"}) == {"default/echo-1": 1}
        finally:
            release.set()
    # Gone (the connection is refused): nothing of it can still land.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"127.0.0.1:{probe.getsockname()[1]}"
    assert observation.in_flight([_app_at(closed)]) == {}
