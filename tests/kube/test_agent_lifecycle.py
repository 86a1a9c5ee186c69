"""The testbed agent as a container's PID 1 meets it: SIGTERM on pod deletion. Without a handler PID 1 ignores
the signal and every deletion waits out the grace period; with one the agent exits 0 at once. A plain process
would die of the signal either way, so the test tells the two apart by the exit status: 0 (handled) versus -15
(killed by the default action)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from importlib import resources

import pytest

AGENT = resources.files("meshconform.platform.kube").joinpath("agent.py")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(("role", "variable"), [("echo", "MESHCONFORM_BIND"), ("client", "MESHCONFORM_CONTROL")])
def test_the_agent_exits_at_once_on_sigterm(role: str, variable: str) -> None:
    port = _free_port()
    agent = subprocess.Popen([sys.executable, str(AGENT), role], env={**os.environ, variable: f"127.0.0.1:{port}"},
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while True:  # listening: it has set up everything it sets up before serving
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert agent.poll() is None and time.monotonic() < deadline, agent.stderr.read() if agent.stderr else ""
                time.sleep(0.05)
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(timeout=5) == 0  # handled: not -15
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()
