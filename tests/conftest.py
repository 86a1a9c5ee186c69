"""Shared fixtures for the engine's own tests: one local platform per test module that needs one."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TypeVar

import pytest

from meshconform import runs
from meshconform.interrupts import sigterm_as_interrupt
from meshconform.meshapi.loader import Sourced, load_text
from meshconform.platform import registry
from meshconform.platform.kube import agent as agent_module
from meshconform.platform.local.platform import LocalPlatform

T = TypeVar("T")


@pytest.fixture(autouse=True)
def own_state_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test (and every CLI it runs) has its own meshconform state: it never finds, nor replaces, the platform
    that the user, another test or another engineer's run on this machine has up."""
    folder = tmp_path_factory.mktemp("state")
    monkeypatch.setenv(runs.STATE_DIR_ENV, str(folder))
    return folder


@pytest.fixture(scope="session")
def run_root() -> Path:
    return runs.new_run_dir("tests")


@pytest.fixture(scope="module")
def platform(run_root: Path, request: pytest.FixtureRequest) -> Iterator[LocalPlatform]:
    name = request.module.__name__.rsplit(".", 1)[-1]
    folder = run_root / name
    local = registry.create(registry.get("local"), registry.PlatformContext(folder, run_root, "main"))
    assert isinstance(local, LocalPlatform)
    # SIGTERM (a CI cancellation, `timeout`) unwinds like Ctrl-C, so the teardown below stops the platform;
    # without it a cancelled run left every Envoy and app of this module's platform running.
    with sigterm_as_interrupt():
        local.up()
        try:
            yield local
        finally:
            local.down()


def resources(text: str) -> list[Sourced]:
    return load_text(text, "<test>")


@contextmanager
def loopback_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A threaded HTTP server on 127.0.0.1 answering with `handler`; yields "127.0.0.1:<port>", stops on exit."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextmanager
def recording_server(record: Callable[[BaseHTTPRequestHandler], T]) -> Iterator[tuple[str, list[T]]]:
    """A loopback server answering every GET with an empty 200 (HTTP/1.1, so a client may keep its connection)
    and keeping `record(request)` of each in arrival order; yields ("127.0.0.1:<port>", the records)."""
    seen: list[T] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
            seen.append(record(self))
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    with loopback_server(Handler) as address:
        yield address, seen


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(params=["agent", "local"])
def echo(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, int, Path]]:
    """Each testbed echo (the cluster agent's, the local platform's echo.py) as a process on loopback: (which,
    port, folder of its request log and stdout)."""
    port = _free_port()
    env = {"PATH": os.environ["PATH"], "MESHCONFORM_BIND": f"127.0.0.1:{port}",
           "MESHCONFORM_REQUEST_LOG": str(tmp_path / "requests.log")}
    argv = ([sys.executable, "-I", agent_module.__file__, "echo"] if request.param == "agent"
            else [sys.executable, "-m", "meshconform.bookinfo.apps.echo"])
    with (tmp_path / "stdout.log").open("w") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, f"{request.param} echo never listened"
                time.sleep(0.05)
        yield request.param, port, tmp_path
    finally:
        proc.terminate()
        proc.wait(timeout=10)
