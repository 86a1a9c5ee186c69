"""The app launcher (platform/local/launcher.py) forks each app with its own environment under a keeper that
restarts it and records its exits, works from a run directory too long for a Unix socket path, starts nothing
but the apps, and leaves no process behind once the supervisor stops what it recorded."""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from meshconform.platform.local import addresses, launcher
from meshconform.platform.local.processes import clean_env
from meshconform.platform.local.supervisor import ProcessRecord, Supervisor

DEADLINE_S = 30.0


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.02)


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


@pytest.fixture
def deep_root(tmp_path: Path) -> Path:
    """A run directory whose path alone is longer than a Unix socket path may be (108 bytes)."""
    root = tmp_path / ("nested-run-directory-" * 6) / "platform"
    root.mkdir(parents=True)
    assert len(str(root)) > 108
    return root


@pytest.fixture
def running_launcher(deep_root: Path) -> Iterator[tuple[Supervisor, str]]:
    supervisor = Supervisor(deep_root / "processes.json")
    address = launcher.address(deep_root)
    supervisor.start("launcher", [sys.executable, "-m", "meshconform.platform.local.launcher", address], clean_env(),
                     deep_root / "launcher.log")
    try:
        _wait_for(lambda: launcher.accepting(address), "the launcher to listen")
        yield supervisor, address
    finally:
        supervisor.stop(grace=2.0)


def _echo(supervisor: Supervisor, address: str, root: Path, pod: str) -> tuple[ProcessRecord, str]:
    bind = f"127.0.0.1:{addresses.free_port()}"
    env = clean_env() | {"HOSTNAME": pod, "MESHCONFORM_NAMESPACE": "tests", "MESHCONFORM_BIND": bind}
    record = supervisor.launch(f"app:tests/{pod}", address, "meshconform.bookinfo.apps.echo", env,
                               root / f"{pod}.log")
    return record, f"http://{bind}/"


def _answer(url: str) -> dict[str, object] | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:  # noqa: S310 (loopback)
            return dict(json.loads(reply.read()))
    except OSError:
        return None


def test_each_app_has_its_own_environment_and_is_restarted(running_launcher: tuple[Supervisor, str],
                                                           deep_root: Path) -> None:
    supervisor, address = running_launcher
    first, first_url = _echo(supervisor, address, deep_root, "echo-a")
    second, second_url = _echo(supervisor, address, deep_root, "echo-b")
    _wait_for(lambda: _answer(first_url) is not None and _answer(second_url) is not None, "both apps to answer")
    # Each app read its own environment when its module was imported (after the fork), not the launcher's.
    assert (_answer(first_url) or {}).get("pod") == "echo-a"
    assert (_answer(second_url) or {}).get("pod") == "echo-b"

    killed = supervisor.status(first).pid
    assert killed is not None and supervisor.status(first).state == "running"
    os.kill(killed, signal.SIGKILL)
    _wait_for(lambda: supervisor.status(first).restarts == 1 and supervisor.status(first).state == "running",
              "the killed app to be restarted")
    status = supervisor.status(first)
    assert status.pid != killed and status.last_exit is not None and status.last_exit.status == 128 + 9, status
    _wait_for(lambda: (_answer(first_url) or {}).get("pod") == "echo-a", "the restarted app to answer")
    assert supervisor.status(second).restarts == 0

    children = [p for p in (supervisor.status(first).pid, supervisor.status(second).pid) if p is not None]
    supervisor.stop(grace=2.0)
    assert not [r for r in (first, second) if supervisor.is_alive(r)], "a keeper outlived stop()"
    _wait_for(lambda: not [pid for pid in children if _running(pid)], "the apps to end with their keepers")


def test_only_the_apps_are_started(running_launcher: tuple[Supervisor, str], deep_root: Path) -> None:
    _, address = running_launcher
    for module in ("os", "meshconform.bookinfo.apps.echo; import os", "meshconform.cli"):
        with pytest.raises(OSError, match="is not one of the apps"):
            launcher.launch(address, module, {}, deep_root / "refused.log", deep_root, record=lambda pid: None)


def test_a_caller_gone_before_recording_leaves_nothing_running(running_launcher: tuple[Supervisor, str],
                                                                deep_root: Path) -> None:
    """A keeper whose PID the caller never recorded (interrupted, timed out) must not start its app: nothing would
    ever stop it."""
    _, address = running_launcher
    port = addresses.free_port()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(DEADLINE_S)
        conn.connect("\0" + address)
        env = clean_env() | {"MESHCONFORM_BIND": f"127.0.0.1:{port}"}
        request = {"module": "meshconform.bookinfo.apps.echo", "env": env, "log": str(deep_root / "unrecorded.log"),
                   "state_dir": str(deep_root)}
        conn.sendall(json.dumps(request).encode() + b"\n")
        keeper = int(json.loads(conn.makefile("rb").readline())["pid"])
        assert _running(keeper)
    try:
        # Gone without "recorded": the keeper exits, and its app never listens.
        _wait_for(lambda: not _running(keeper), f"the unrecorded keeper {keeper} to exit")
        assert not addresses.accepting("127.0.0.1", port), "an unrecorded app started"
        assert not (deep_root / "pid").exists(), "the unrecorded keeper started a child"
    finally:
        if _running(keeper):  # the behaviour under test broke: end what this test caused, by its process group
            os.killpg(keeper, signal.SIGKILL)
