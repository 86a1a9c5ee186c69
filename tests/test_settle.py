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
