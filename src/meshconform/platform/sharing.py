"""One thing shared by every xdist worker of a run (the kind cluster, the installed mesh, the shared local
platform): the first worker makes it while the others wait on a file lock in the run's folder, each worker
registers as a user, and the last one out takes it down. The record (JSON beside the lock) says what was made
and by whom, so a later `meshconform down` in another process removes exactly that."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from meshconform.errors import PlatformError


class SharedResource:
    def __init__(self, session_dir: Path, key: str, wait: float) -> None:
        self.record = session_dir / f"{key}.json"
        self.lock = FileLock(str(session_dir / f"{key}.lock"), timeout=wait)
        self.key = key
        self.wait = wait

    def read(self) -> dict[str, Any] | None:
        if not self.record.exists():
            return None
        data: dict[str, Any] = json.loads(self.record.read_text())
        return data

    def _write(self, data: dict[str, Any]) -> None:
        temporary = self.record.with_suffix(".tmp")
        temporary.write_text(json.dumps(data, indent=1))
        temporary.replace(self.record)

    def acquire(self, worker: str, make: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """The shared record, made by `make()` if no live one exists; `worker` is registered as a user.
        `make` runs under the lock, so the other workers wait (up to `wait` seconds) and then reuse it."""
        with self._locked():
            data = self.read()
            if data is None or data.get("released"):
                data = {**make(), "users": []}
            if worker not in data["users"]:
                data["users"].append(worker)
            self._write(data)
            return data

    def release(self, worker: str, destroy: Callable[[dict[str, Any]], None]) -> None:
        """Unregister `worker`; the last user calls `destroy(record)` (which decides whether anything is
        removed: only what was made, and only when not kept)."""
        with self._locked():
            data = self.read()
            if data is None or data.get("released"):
                return
            if worker in data["users"]:
                data["users"].remove(worker)
            if not data["users"]:
                try:
                    destroy(data)
                finally:
                    data["released"] = True
                    self._write(data)
            else:
                self._write(data)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            self.lock.acquire()
        except Timeout:
            raise PlatformError(f"waited {self.wait:g} s for another worker to finish with {self.key} "
                                f"({self.lock.lock_file}); if no meshconform process is running, delete it") from None
        try:
            yield
        finally:
            self.lock.release()
