"""Ctrl-C (SIGINT) or a cancellation (SIGTERM) leaves no process behind: not during `meshconform up` (nor its
run folder), not in the middle of a conformance run. Processes are identified by the PIDs and start times the
run itself recorded, never by name."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from meshconform import conformance


def _alive(record: dict) -> bool:
    try:
        fields = Path(f"/proc/{record['pid']}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    state, start_ticks = fields[0], int(fields[19])
    return start_ticks == record["start_ticks"] and state not in ("Z", "X")  # a zombie has exited


def _wait_for(condition, what: str, deadline_s: float = 90.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + deadline_s
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


def _recorded(registry: Path) -> list[dict]:
    try:
        return json.loads(registry.read_text())
    except (OSError, ValueError):
        return []


def _default_signals() -> None:
    """In the child before exec: Ctrl-C and SIGTERM at their defaults, whatever this process
    inherited (a shell's background job ignores SIGINT, and Python would keep ignoring it)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _mentioning(folder: Path) -> list[int]:
    """Live processes whose command line or environment names `folder`: everything a platform in it
    started (Envoy's bootstrap path, an app's log paths), recorded or not. Read-only: a leak
    detector, never used to stop anything."""
    needle = str(folder).encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if needle in (proc / "cmdline").read_bytes() or needle in (proc / "environ").read_bytes():
                state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if state not in ("Z", "X"):
                    found.append(int(proc.name))
        except OSError:
            continue
    return found


def _describe(pids: list[int]) -> str:
    """What each leftover process is (state, parent, command line), for the failure message."""
    lines = []
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            lines.append(f"pid {pid} state {stat[0]} ppid {stat[1]} pgid {stat[2]}: {argv[:300]}")
        except OSError:
            lines.append(f"pid {pid}: gone")
    return "; ".join(lines)


def _interrupt_and_check(process: subprocess.Popen, registry: Path, sig: signal.Signals,  # type: ignore[type-arg]
                         folder: Path) -> None:
    started = _recorded(registry)
    assert started, "nothing was recorded as started"
    process.send_signal(sig)
    process.wait(timeout=60)
    _wait_for(lambda: not any(_alive(r) for r in started), "every started process to exit", 15)
    try:
        _wait_for(lambda: not _mentioning(folder), "no process of the run to remain (recorded or not)", 15)
    except AssertionError as failure:
        raise AssertionError(f"{failure}: {_describe(_mentioning(folder))}") from None
    assert process.returncode != 0


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupting_up_leaves_no_process(sig: signal.Signals, tmp_path: Path) -> None:
    env = {**os.environ, "MESHCONFORM_REPORTS": str(tmp_path)}
    process = subprocess.Popen([sys.executable, "-m", "meshconform.cli", "up"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=_default_signals)
    # Interrupt half-way: once some workloads run, before the platform is ready.
    _wait_for(lambda: len(_recorded(next(tmp_path.glob("*/platform/processes.json"), tmp_path / "x"))) >= 6,
              "six processes to be started")
    registry = next(tmp_path.glob("*/platform/processes.json"))
    _interrupt_and_check(process, registry, sig, tmp_path)
    # An interrupted `up` keeps nothing: its run folder goes with its processes (it held only their logs and state).
    assert [path.name for path in tmp_path.iterdir()] == []


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupting_a_conformance_run_leaves_no_process(sig: signal.Signals, tmp_path: Path) -> None:
    process = subprocess.Popen([sys.executable, "-m", "pytest", str(Path(conformance.__file__).parent), "-q",
                                "-p", "no:cacheprovider", "--import-mode=importlib", f"--mesh-report-dir={tmp_path}",
                                "--mesh-run-test=bookinfo-ratings-delay"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=_default_signals)
    # Interrupt in the middle of a test: the platform is up (it described itself) and traffic flows.
    _wait_for(lambda: (tmp_path / "platform-main" / "describe.json").exists(), "the platform to come up")
    _interrupt_and_check(process, tmp_path / "platform-main" / "processes.json", sig, tmp_path)
