"""Taking turns on a shared mesh (suite/turns.py): overlapping claims wait for each other, disjoint ones run at once,
an exclusive unit is not starved by a stream of shared ones, a unit that waits too long is told who held the lock,
and the locks of a process that died are free again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from meshconform.suite.claims import Claims
from meshconform.suite.turns import LOG, TurnTimeout, turn

ECHO, BOOKS, ALONE = Claims(frozenset({"echo"})), Claims(frozenset({"reviews"})), Claims(frozenset(), True, "x")
POLL = 0.005


class Holder(threading.Thread):
    """Takes a turn and keeps it until released; `inside` is set once it has it."""

    def __init__(self, folder: Path, claims: Claims, name: str, log: list[str]) -> None:
        super().__init__(daemon=True)
        self.folder, self.claims, self.label, self.log = folder, claims, name, log
        self.inside, self.leave = threading.Event(), threading.Event()

    def run(self) -> None:
        with turn(self.folder, self.claims, self.label, 10, POLL):
            self.log.append(f"{self.label} in")
            self.inside.set()
            assert self.leave.wait(10), f"{self.label} was never released"
            self.log.append(f"{self.label} out")

    def stop(self) -> None:
        self.leave.set()
        self.join(10)


def test_overlapping_claims_wait_and_disjoint_claims_do_not(tmp_path: Path) -> None:
    log: list[str] = []
    first = Holder(tmp_path, ECHO, "first", log)
    first.start()
    assert first.inside.wait(10)
    books = Holder(tmp_path, BOOKS, "books", log)
    books.start()
    assert books.inside.wait(10), "a unit claiming other services must not wait"
    second = Holder(tmp_path, ECHO, "second", log)
    second.start()
    assert not second.inside.wait(0.3), "a unit claiming echo got in while another held echo"
    first.stop()
    assert second.inside.wait(10)
    second.stop()
    books.stop()
    assert log.index("first out") < log.index("second in")
    # Every turn is logged for bench/bench_turns.py: who, with which claims, how long it waited and held them.
    logged = [json.loads(line) for line in (tmp_path / LOG).read_text().splitlines()]
    assert sorted(entry["holder"] for entry in logged) == ["books", "first", "second"]
    first_turn, second_turn = (next(entry for entry in logged if entry["holder"] == h) for h in ("first", "second"))
    assert second_turn["claims"] == "echo" and second_turn["waited_s"] > 0
    # logged to the millisecond: allow the rounding of two figures
    assert second_turn["began"] >= first_turn["began"] + first_turn["held_s"] - 0.002, (first_turn, second_turn)


def test_an_exclusive_unit_waits_for_shared_ones_and_later_shared_ones_wait_for_it(tmp_path: Path) -> None:
    log: list[str] = []
    shared = Holder(tmp_path, ECHO, "shared", log)
    shared.start()
    assert shared.inside.wait(10)
    alone = Holder(tmp_path, ALONE, "alone", log)
    alone.start()
    _wait_until(lambda: _taker(tmp_path, "gate").startswith("alone"), "the exclusive unit to take the gate")
    assert not alone.inside.wait(0.3), "an exclusive unit got in beside a running one"
    later = Holder(tmp_path, BOOKS, "later", log)  # disjoint from `shared`: only the waiting exclusive unit stops it
    later.start()
    assert not later.inside.wait(0.3), "a shared unit overtook an exclusive one that was waiting"
    shared.stop()
    assert alone.inside.wait(10)
    assert not later.inside.is_set()
    alone.stop()
    assert later.inside.wait(10)
    later.stop()
    assert log == ["shared in", "shared out", "alone in", "alone out", "later in", "later out"]


def _taker(folder: Path, lock: str) -> str:
    path = folder / f"{lock}.taker"
    return path.read_text() if path.exists() else ""


def _wait_until(condition: Callable[[], bool], what: str, cap_s: float = 10) -> None:
    deadline = time.monotonic() + cap_s
    while not condition():
        assert time.monotonic() < deadline, f"waited {cap_s} s for {what}"
        time.sleep(POLL)


def test_a_unit_that_waits_too_long_is_told_what_for_and_who_took_it(tmp_path: Path) -> None:
    holder = Holder(tmp_path, ECHO, "gw1 weighted-split-echo", [])
    holder.start()
    assert holder.inside.wait(10)
    with pytest.raises(TurnTimeout, match=r"gw0 fault-abort: .*service echo \(last taken by gw1 weighted-split-echo"):
        with turn(tmp_path, ECHO, "gw0 fault-abort", 0.2, POLL):
            pass
    holder.stop()


def test_the_locks_of_a_process_that_died_are_free(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    code = ("import sys, time; from pathlib import Path; from meshconform.suite.claims import Claims; "
            "from meshconform.suite.turns import turn\n"
            "with turn(Path(sys.argv[1]), Claims(frozenset(), True, 'x'), 'doomed', 10, 0.005):\n"
            "    Path(sys.argv[2]).touch(); time.sleep(60)\n")
    process = subprocess.Popen([sys.executable, "-c", code, str(tmp_path), str(ready)])
    try:
        _wait_until(lambda: ready.exists() or process.poll() is not None, "the holder to take its turn", 30)
        assert process.poll() is None, "the holder exited before taking its turn"
        with pytest.raises(TurnTimeout):
            with turn(tmp_path, ECHO, "waiting", 0.1, POLL):
                pass
    finally:
        os.kill(process.pid, signal.SIGKILL)  # the process this test started, by its PID
        process.wait(10)
    with turn(tmp_path, ALONE, "after", 5, POLL) as waited:
        assert waited < 5
