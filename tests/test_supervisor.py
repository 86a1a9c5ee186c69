"""The supervisor stops a pod's whole process group: a child slow to honour SIGTERM keeps its keeper waiting,
so the supervisor escalates to SIGKILL instead of judging the pod stopped while the child still runs."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from meshconform.platform.local.supervisor import Supervisor

# Ignores SIGTERM (as a process still starting up may not act on it yet), writes its PID, then idles.
STUBBORN = ("import os, signal, sys, time\n"
            "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "open(sys.argv[1] + '.tmp', 'w').write(str(os.getpid()))\n"
            "os.replace(sys.argv[1] + '.tmp', sys.argv[1])\n"
            "time.sleep(120)\n")


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _wait_for_file(path: Path, deadline_s: float = 30.0) -> str:
    deadline = time.monotonic() + deadline_s
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} was not written within {deadline_s}s"
        time.sleep(0.02)
    return path.read_text()


def _wait_until_ended(pid: int, failure: str, deadline_s: float = 10.0) -> None:
    deadline = time.monotonic() + deadline_s
    while _running(pid):
        assert time.monotonic() < deadline, failure
        time.sleep(0.02)


def test_stop_ends_a_child_that_ignores_sigterm(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path / "processes.json")
    pid_file = tmp_path / "child.pid"
    record = supervisor.start("app:default/stubborn", [sys.executable, "-c", STUBBORN, str(pid_file)], {},
                              tmp_path / "stubborn.log")
    child = int(_wait_for_file(pid_file))
    try:
        supervisor.stop(grace=1.0)
        assert not supervisor.is_alive(record), "the keeper outlived stop()"
        _wait_until_ended(child, f"child {child} still runs after stop(): the keeper left without it")
    finally:
        supervisor.stop(grace=0.1)
        if _running(child):  # the behaviour under test broke: end the child this test started, by its PID
            os.kill(child, signal.SIGKILL)


# Starts a process of its group that the keeper does not know (as a child started just as the stop came): STUBBORN,
# which ignores SIGTERM and writes its PID. This one idles until the keeper stops it.
LEAVES_ONE_BEHIND = ("import subprocess, sys, time\n"
                     f"subprocess.Popen([sys.executable, '-c', {STUBBORN!r}, sys.argv[1]])\n"
                     "time.sleep(120)\n")


def test_stop_ends_a_process_of_the_group_its_keeper_left_behind(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path / "processes.json")
    pid_file = tmp_path / "behind.pid"
    record = supervisor.start("app:default/leaves-one", [sys.executable, "-c", LEAVES_ONE_BEHIND, str(pid_file)], {},
                              tmp_path / "leaves-one.log")
    behind = int(_wait_for_file(pid_file))
    try:
        assert os.getpgid(behind) == record.pid, "the process left behind must be in the keeper's group"
        supervisor.stop(grace=2.0)
        assert not supervisor.is_alive(record), "the keeper outlived stop()"
        _wait_until_ended(behind, f"{behind}, of the stopped group, still runs after stop()")
    finally:
        if _running(behind):  # the behaviour under test broke: end the process this test started, by its PID
            os.kill(behind, signal.SIGKILL)


def test_a_process_record_cut_short_is_named_not_a_traceback(tmp_path: Path) -> None:
    """processes.json cut short (edited by hand, a failed disk): every command, down included, ended in a
    JSONDecodeError traceback. Now one error naming the file, that nothing was stopped, and where the PIDs are."""
    from meshconform.errors import PlatformError
    registry = tmp_path / "processes.json"
    registry.write_text('[{"name": "launcher", "pid": 12')
    with pytest.raises(PlatformError) as refused:
        Supervisor(registry).stop()
    assert str(refused.value).startswith(f"{registry} cannot be read (JSONDecodeError: ")
    assert "none was stopped" in str(refused.value) and f"{tmp_path / 'keepers'}/*/pid" in str(refused.value)
