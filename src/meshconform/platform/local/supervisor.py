"""Starts processes in their own process groups, records them, and stops exactly those.

Never by name: every stop targets a recorded process group, after checking (by the kernel's
start time) that the PID still belongs to the process we started."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from meshconform.interrupts import deferred_interrupts


@dataclass(frozen=True)
class ProcessRecord:
    name: str
    pid: int
    start_ticks: int
    log: str


def _start_ticks(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat: when the process started, to guard against PID reuse."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    if fields[0] == "Z":  # a zombie has exited; only its parent's wait is missing
        return None
    return int(fields[19])


class Supervisor:
    def __init__(self, registry: Path) -> None:
        self.registry = registry
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    def records(self) -> list[ProcessRecord]:
        if not self.registry.exists():
            return []
        return [ProcessRecord(**r) for r in json.loads(self.registry.read_text())]

    def _save(self, records: list[ProcessRecord]) -> None:
        tmp = self.registry.with_suffix(".tmp")
        tmp.write_text(json.dumps([asdict(r) for r in records], indent=1))
        tmp.replace(self.registry)

    def start(self, name: str, argv: list[str], env: dict[str, str], log: Path) -> ProcessRecord:
        log.parent.mkdir(parents=True, exist_ok=True)
        with deferred_interrupts(), open(log, "ab") as out:  # a started process is always recorded
            proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
            self._children[proc.pid] = proc
            record = ProcessRecord(name, proc.pid, _start_ticks(proc.pid) or 0, str(log))
            self._save([*(r for r in self.records() if r.name != name), record])
        return record

    def is_alive(self, record: ProcessRecord) -> bool:
        child = self._children.get(record.pid)
        if child is not None:
            return child.poll() is None
        ticks = _start_ticks(record.pid)
        return ticks is not None and ticks == record.start_ticks

    def exited(self) -> list[ProcessRecord]:
        return [r for r in self.records() if not self.is_alive(r)]

    def stop(self, names: set[str] | None = None, grace: float = 5.0) -> None:
        """SIGTERM each recorded group, wait up to `grace`, then SIGKILL what is left.
        Ctrl-C while stopping is held until everything is stopped."""
        with deferred_interrupts():
            self._stop(names, grace)

    def _stop(self, names: set[str] | None, grace: float) -> None:
        records = self.records()
        targets = [r for r in records if names is None or r.name in names]
        for record in targets:
            if self.is_alive(record):
                _signal_group(record.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        pending = [r for r in targets if self.is_alive(r)]
        while pending and time.monotonic() < deadline:
            time.sleep(0.02)
            pending = [r for r in pending if self.is_alive(r)]
        for record in pending:
            _signal_group(record.pid, signal.SIGKILL)
        for record in targets:
            child = self._children.pop(record.pid, None)
            if child is not None:
                try:
                    child.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    pass
        self._save([r for r in records if r not in targets])


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass
