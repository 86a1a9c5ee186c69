"""Starts processes in their own process groups, records them, keeps them running, and stops exactly those.

Each process runs under a keeper in its process group (keeper.sh; for the Python apps, the one launcher.py forks)
that restarts it with back-off when it exits and records every exit, as a kubelet does for a container; `status`
reads that record. Never by name: every stop targets a recorded process group, after checking (by the kernel's
start time) that the PID still belongs to the process we started."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from meshconform.errors import PlatformError
from meshconform.interrupts import deferred_interrupts
from meshconform.platform.local import launcher

KEEPER = Path(__file__).with_name("keeper.sh")


@dataclass(frozen=True)
class ProcessRecord:
    name: str
    pid: int  # the keeper's, which leads the process group
    start_ticks: int
    log: str
    state_dir: str = ""  # the keeper's record: the child's pid, its exits


@dataclass(frozen=True)
class Exit:
    time: float
    status: int  # as the shell reports it: 128 + N when killed by signal N

    def describe(self) -> str:
        how = f"killed by signal {self.status - 128}" if self.status > 128 else f"exited with code {self.status}"
        return f"{how} at {time.strftime('%H:%M:%S', time.localtime(self.time))}"


@dataclass(frozen=True)
class ProcessStatus:
    """A process as `kubectl get pods` shows a container: running or not, restarts, how it last ended."""

    name: str
    state: str  # running | restarting (back-off after an exit) | stopped (its keeper is gone)
    pid: int | None  # the running child's
    restarts: int
    last_exit: Exit | None

    def describe(self) -> str:
        last = f", last {self.last_exit.describe()}" if self.last_exit else ""
        return f"{self.state} (restarts {self.restarts}{last})"


def _stat(pid: int | str) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state first), or None for a process that is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2:].split()


def _start_ticks(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat: when the process started, to guard against PID reuse."""
    fields = _stat(pid)
    if fields is None or fields[0] == "Z":  # a zombie has exited; only its parent's wait is missing
        return None
    return int(fields[19])


class Supervisor:
    def __init__(self, registry: Path) -> None:
        self.registry = registry
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    def records(self) -> list[ProcessRecord]:
        if not self.registry.exists():
            return []
        try:
            return [ProcessRecord(**r) for r in json.loads(self.registry.read_text())]
        except (ValueError, TypeError) as exc:  # cut short, edited by hand: said, not a traceback from every command
            raise PlatformError(f"{self.registry} cannot be read ({type(exc).__name__}: {exc}): the processes it "
                                f"recorded cannot be found from it, so none was stopped; each keeper wrote its child's "
                                f"PID in {self.registry.parent / 'keepers'}/*/pid") from None

    def _save(self, records: list[ProcessRecord]) -> None:
        tmp = self.registry.with_suffix(".tmp")
        tmp.write_text(json.dumps([asdict(r) for r in records], indent=1))
        tmp.replace(self.registry)

    def start(self, name: str, argv: list[str], env: dict[str, str], log: Path) -> ProcessRecord:
        state_dir = self._fresh_state_dir(name, log)
        with deferred_interrupts(), open(log, "ab") as out:  # a started process is always recorded
            proc = subprocess.Popen(["/bin/sh", str(KEEPER), str(state_dir), *argv], env=env, stdout=out,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
            self._children[proc.pid] = proc
            record = ProcessRecord(name, proc.pid, _start_ticks(proc.pid) or 0, str(log), str(state_dir))
            self._save([*(r for r in self.records() if r.name != name), record])
        return record

    def launch(self, name: str, launcher_address: str, module: str, env: dict[str, str], log: Path) -> ProcessRecord:
        """Start Python module `module` forked by the app launcher (launcher.py), under a keeper of its own that
        does what keeper.sh does; recorded and stopped like a process `start` started."""
        state_dir = self._fresh_state_dir(name, log)
        records: list[ProcessRecord] = []

        def save(pid: int) -> None:  # before the launcher lets the app start
            records.append(ProcessRecord(name, pid, _start_ticks(pid) or 0, str(log), str(state_dir)))
            self._save([*(r for r in self.records() if r.name != name), records[0]])

        with deferred_interrupts():
            launcher.launch(launcher_address, module, env, log, state_dir, save)
        return records[0]

    def _fresh_state_dir(self, name: str, log: Path) -> Path:
        log.parent.mkdir(parents=True, exist_ok=True)
        state_dir = self.registry.parent / "keepers" / name.replace("/", ".").replace(":", "-")
        state_dir.mkdir(parents=True, exist_ok=True)
        for leftover in state_dir.iterdir():  # a restarted pod starts with a clean record
            leftover.unlink()
        return state_dir

    def status(self, record: ProcessRecord) -> ProcessStatus:
        folder = Path(record.state_dir)
        exits = _exits(folder / "exits")
        child = _child_pid(folder / "pid")
        if not self.is_alive(record):
            state = "stopped"
        elif child is not None and (not exits or _start_ticks(child) is not None):
            state = "running"
        else:
            state = "restarting"
        return ProcessStatus(record.name, state, child if state == "running" else None, len(exits),
                             exits[-1] if exits else None)

    def crashes(self, since: float) -> list[tuple[ProcessRecord, Exit]]:
        """Processes that exited at or after `since` (each with its latest exit), or whose keeper is gone."""
        found = []
        for record in self.records():
            exits = [e for e in _exits(Path(record.state_dir) / "exits") if e.time >= since]
            if exits:
                found.append((record, exits[-1]))
            elif not self.is_alive(record):
                found.append((record, Exit(time.time(), -1)))
        return found

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
        # A process its keeper left behind: a stop that came while keeper.sh was starting its child runs the trap
        # before `child=$!`, so the keeper exits without stopping it (an Envoy that got the group's SIGTERM that
        # early was seen to outlive it). Still in the keeper's group, it is found by that and ended.
        for record in _groups_with_members(targets):
            _signal_group(record.pid, signal.SIGKILL)
        for record in targets:
            child = self._children.pop(record.pid, None)
            if child is not None:
                try:
                    child.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    pass
        self._save([r for r in records if r not in targets])


def _groups_with_members(records: list[ProcessRecord]) -> list[ProcessRecord]:
    """The records whose process group still has a live member that started no earlier than its keeper. While a
    group has a member, its ID cannot be reused, so signalling it reaches only processes of ours."""
    groups = {r.pid: r for r in records if r.start_ticks}  # without its start time, a group is not known ours
    if not groups:
        return []
    found: dict[int, ProcessRecord] = {}
    for entry in Path("/proc").iterdir():
        fields = _stat(entry.name) if entry.name.isdigit() else None
        if fields is None or fields[0] in ("Z", "X"):
            continue
        record = groups.get(int(fields[2]))
        if record is not None and int(fields[19]) >= record.start_ticks:
            found[record.pid] = record
    return list(found.values())


def _exits(path: Path) -> list[Exit]:
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return []
    return [Exit(float(when), int(status)) for when, status in (line.split() for line in lines if line.strip())]


def _child_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass
