"""A local app serves every port its pod declares (MESHCONFORM_BIND lists them), as a container listens on its
containerPorts: inbound passthrough reaches the app on a port no Service targets."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_echo_answers_on_every_bound_port(tmp_path: Path) -> None:
    ports = [_free_port(), _free_port()]
    env = {"PATH": os.environ["PATH"], "HOSTNAME": "echo-0",
           "MESHCONFORM_BIND": ",".join(f"127.0.0.1:{p}" for p in ports),
           "MESHCONFORM_REQUEST_LOG": str(tmp_path / "requests.log")}
    proc = subprocess.Popen([sys.executable, "-m", "meshconform.bookinfo.apps.echo"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        for port in ports:
            while True:
                try:
                    answer = requests.get(f"http://127.0.0.1:{port}/x", timeout=2)
                    break
                except requests.ConnectionError:
                    assert proc.poll() is None and time.monotonic() < deadline, f"nothing listened on {port}"
                    time.sleep(0.05)
            assert answer.status_code == 200 and answer.json()["pod"] == "echo-0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
