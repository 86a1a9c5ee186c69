"""Taking turns on a mesh shared by a run's xdist workers: units whose claims overlap (suite/claims.py) never run at
the same time, and an exclusive unit runs alone.

Locks are flock(2) on files in one folder of the run:
- `mesh`: held shared by every unit while it runs, exclusively by an exclusive one;
- `gate`: taken briefly before `mesh`, and kept by an exclusive unit while it waits for `mesh`, so a stream of
  shared holders on the other workers cannot starve it;
- one file per claim, held exclusively, taken in sorted order after `mesh` (one order everywhere: no deadlock).
The kernel drops the locks of a process that dies, so a crashed worker never wedges the run. Each taker writes
who it is beside the lock, for the error of a unit that waited too long, and every turn is logged (`turns.jsonl`)."""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO

from meshconform.suite.claims import Claims

LOG = "turns.jsonl"


class TurnTimeout(AssertionError):
    """A unit waited longer than its cap for its turn; names what it waited for and who held it."""


@contextmanager
def turn(folder: Path, claims: Claims, holder: str, wait_s: float, poll_s: float) -> Iterator[float]:
    """Hold the locks `claims` needs while the body runs; yields the seconds spent waiting for them."""
    folder.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    deadline = started + wait_s
    with ExitStack() as held:
        gate = held.enter_context(_Lock(folder, "gate", holder))
        gate.take(fcntl.LOCK_EX, deadline, poll_s, "the gate before the mesh")
        mesh = held.enter_context(_Lock(folder, "mesh", holder))
        mesh.take(fcntl.LOCK_EX if claims.exclusive else fcntl.LOCK_SH, deadline, poll_s,
                  "the whole mesh" if claims.exclusive else "a share of the mesh (an exclusive unit runs)")
        gate.release()
        for key in sorted(claims.keys):
            held.enter_context(_Lock(folder, f"claim-{key}", holder)).take(
                fcntl.LOCK_EX, deadline, poll_s, f"service {key}")
        waited, began = time.monotonic() - started, time.time()
        try:
            yield waited
        finally:
            _log(folder, {"holder": holder, "claims": claims.describe(), "waited_s": round(waited, 3),
                          "began": round(began, 3), "held_s": round(time.time() - began, 3)})


def _log(folder: Path, entry: dict[str, object]) -> None:
    """One line per turn in `turns.jsonl` (bench/bench_turns.py reads it): who held which claims, how long it
    waited and held them. One write of one line in append mode: workers' lines never interleave."""
    with open(folder / LOG, "a") as out:
        out.write(json.dumps(entry) + "\n")


class _Lock:
    def __init__(self, folder: Path, name: str, holder: str) -> None:
        self.path, self.holder = folder / f"{name}.lock", holder
        self.file: IO[str] | None = None

    def __enter__(self) -> _Lock:
        self.file = open(self.path, "a+")  # noqa: SIM115 (closed in __exit__: closing drops the lock)
        return self

    def take(self, mode: int, deadline: float, poll_s: float, what: str) -> None:
        assert self.file is not None
        while True:
            try:
                fcntl.flock(self.file, mode | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TurnTimeout(f"{self.holder}: no turn on the shared mesh within its cap, waiting for {what} "
                                      f"(last taken by {self._last_taker() or 'nobody recorded'})") from None
                time.sleep(poll_s)  # another worker's unit holds it; flock has no timeout of its own
        # Who took it last, for the message of a unit that waits too long for it.
        self.path.with_suffix(".taker").write_text(f"{self.holder} (pid {os.getpid()})\n")

    def _last_taker(self) -> str:
        try:
            return self.path.with_suffix(".taker").read_text().strip()
        except OSError:
            return ""

    def release(self) -> None:
        if self.file is not None:
            fcntl.flock(self.file, fcntl.LOCK_UN)

    def __exit__(self, *_: object) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None
