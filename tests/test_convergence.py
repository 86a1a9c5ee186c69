"""Waiting for a config to show: N probes in a row must see it, a miss starts the count again, and the probes still
needed go to the vantage as one batch (one call instead of N), each request on a connection of its own."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest

from meshconform.suite.checks import wait_for_all, wait_for_marker
from meshconform.suite.convergence import NeverConverged
from meshconform.suite.manifests import MARKER_HEADER
from meshconform.suite.timeouts import Timeouts
from meshconform.traffic.model import Request, Response

FAST = Timeouts(poll_interval=0.001, max_time_to_consistency=5.0)


class ScriptedVantage:
    """Answers each request with the next marker of a script (then the last one forever); records every batch."""

    name = "scripted"

    def __init__(self, markers: Sequence[str]) -> None:
        self._markers: Iterator[str] = iter(markers)
        self._last = markers[-1]
        self.batches: list[tuple[int, int, bool]] = []  # (requests, concurrency, reuse_connections)

    def send(self, requests: Sequence[Request], concurrency: int = 10,
             reuse_connections: bool = True) -> list[Response]:
        self.batches.append((len(requests), concurrency, reuse_connections))
        replies = []
        for request in requests:
            self._last = next(self._markers, self._last)
            replies.append(Response(request.request_id, 200, None, 0.001, {MARKER_HEADER: self._last}, "",
                                    request.path))
        return replies


def test_a_config_already_there_takes_one_call() -> None:
    vantage = ScriptedVantage(["new"])
    wait_for_marker(vantage, Request("/probe"), "new", FAST)  # type: ignore[arg-type]
    assert vantage.batches == [(3, 1, False)]


def test_a_miss_starts_the_count_again_and_the_next_round_goes_alone() -> None:
    vantage = ScriptedVantage(["old", "new", "old", "new", "new", "new"])
    wait_for_marker(vantage, Request("/probe"), "new", FAST)  # type: ignore[arg-type]
    # 3 rounds (old, new, old: the last missed), then one round (new), then the 2 still needed together.
    assert [size for size, _, _ in vantage.batches] == [3, 1, 2]


def test_after_a_success_the_rounds_still_needed_go_together() -> None:
    vantage = ScriptedVantage(["old", "old", "new", "new", "new"])
    wait_for_marker(vantage, Request("/probe"), "new", FAST)  # type: ignore[arg-type]
    assert [size for size, _, _ in vantage.batches] == [3, 2]


def test_several_expectations_are_one_round_each_and_all_must_hold() -> None:
    vantage = ScriptedVantage(["new"])
    expectations = [(Request("/a"), lambda r: r.headers.get(MARKER_HEADER) == "new"),
                    (Request("/b"), lambda r: r.status == 200)]
    wait_for_all(vantage, expectations, FAST, "both")  # type: ignore[arg-type]
    assert vantage.batches == [(6, 2, False)]


def test_never_seen_fails_counting_every_round() -> None:
    vantage = ScriptedVantage(["old"])
    with pytest.raises(NeverConverged) as failure:
        wait_for_marker(vantage, Request("/probe"), "new", Timeouts(poll_interval=0.001,  # type: ignore[arg-type]
                                                                     max_time_to_consistency=0.05))
    rounds = sum(size for size, _, _ in vantage.batches)
    assert failure.value.attempts == rounds and failure.value.misses.total() == rounds
    assert f"{rounds} of {rounds} attempts" in failure.value.reason, failure.value.reason
