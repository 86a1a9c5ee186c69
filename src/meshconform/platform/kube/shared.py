"""One cluster platform per run, shared by the run's pytest-xdist workers (the registry marks cluster platforms
`shared`: the suite keeps each test's objects apart by name, and units whose claims overlap take turns, see
suite/turns.py).

The run's record (what was set up, where, what was applied, who uses it) lives in the run folder, under a file
lock. The first worker to arrive brings everything up while the others wait on the lock, then join; each worker's
`down` leaves, and the last one out removes what the run created. A failed `up` is recorded, so the workers after
it fail at once with its reason instead of trying again."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from filelock import FileLock

RECORD = "kube-run.json"


class SharedRun:
    def __init__(self, session_dir: Path) -> None:
        self.path = session_dir / RECORD
        self.lock = FileLock(str(session_dir / f"{RECORD}.lock"))  # reentrant within this object

    def read(self) -> dict[str, Any]:
        return dict(json.loads(self.path.read_text())) if self.path.exists() else {}

    def _write(self, state: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=1))
        tmp.replace(self.path)

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the run's lock (waits for a worker bringing the platform up: bounded by its own deadlines)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.lock:
            yield

    def update(self, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        """Read, change and write the record under the lock; returns the new record."""
        with self.locked():
            state = self.read()
            change(state)
            self._write(state)
            return state
