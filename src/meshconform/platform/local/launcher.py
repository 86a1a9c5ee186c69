"""The local platform's app launcher: one Python process that imports what the apps import, then forks each app's
keeper from itself, as a zygote does.

Why: an app started as `python -m ...` spends ~0.18 s of CPU importing asyncio and aiohttp before it listens; at a
bring-up 21 of them did so at once on 2 cores, three quarters of the bring-up's CPU. Forked from here an app
starts with those modules loaded. The app's own module is imported only in the forked child, after its environment
is set: the apps read their environment when imported.

Each forked keeper does what keeper.sh does for Envoy (see there): it leads its own process group, runs the app as
its child, records the child's PID and every exit, restarts it after a back-off, and on SIGTERM stops its child,
waits for it and exits. The supervisor records the keeper and stops it by its group, like any other.

Protocol, over an abstract Unix socket named after the run directory (no file to leave behind, and no limit of 108
bytes on the run directory's path): the caller sends one JSON line {"module", "env", "log", "state_dir"}; the
launcher forks the keeper and answers one JSON line {"pid": keeper's PID} (or {"error": "..."}); the caller records
that PID and then sends "recorded". Only then does the keeper start the app: a caller gone before recording it
(interrupted, timed out) leaves a keeper that exits without starting anything, so no process outlives a run
unrecorded. An abstract socket has no file permissions, so the launcher serves only callers of its own user
(SO_PEERCRED) and starts only the apps' modules."""

from __future__ import annotations

import hashlib
import json
import os
import runpy
import signal
import socket
import struct
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
BACKOFF_START_S = 0.25
BACKOFF_MAX_S = 8.0
BACKOFF_RESET_AFTER_S = 10.0  # uptime after which a crash counts as a first one again
APPS_PACKAGE = "meshconform.bookinfo.apps."  # the only modules it starts
RECORDED = b"recorded\n"
RECORD_WAIT_S = 30.0  # for a caller to send its request, and to record a keeper's PID
LAUNCH_TIMEOUT_S = 30.0  # for the launcher to answer (it forks in milliseconds; a cap under load)
# Imported before any fork: what the apps import that costs time and reads no per-app environment.
PRELOADED = ("asyncio", "aiohttp", "aiohttp.web", "meshconform.traffic.model", "meshconform.traffic.sender",
             "meshconform.traffic.transport", "meshconform.platform.local.transport")


def address(run_root: Path) -> str:
    """The name of the abstract socket of the launcher of the run in `run_root` (without its leading NUL byte,
    so it can be a command-line argument)."""
    return "meshconform-launcher-" + hashlib.sha256(str(run_root.resolve()).encode()).hexdigest()[:32]


def launch(address_: str, module: str, env: dict[str, str], log: Path, state_dir: Path,
           record: Callable[[int], None], timeout_s: float = LAUNCH_TIMEOUT_S) -> int:
    """Ask the launcher at `address_` to start `module` under a keeper; `record(pid)` is called with the keeper's
    PID before the app may start. Returns that PID."""
    request = {"module": module, "env": env, "log": str(log), "state_dir": str(state_dir)}
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(timeout_s)
        conn.connect("\0" + address_)
        conn.sendall(json.dumps(request).encode() + b"\n")
        reply = _read_line(conn)
        answer = json.loads(reply) if reply else {"error": "the launcher closed the connection without an answer"}
        if "pid" not in answer:
            raise OSError(f"the app launcher could not start {module}: {answer.get('error')}")
        pid = int(answer["pid"])
        record(pid)
        conn.sendall(RECORDED)
    return pid


def accepting(address_: str) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        try:
            conn.connect("\0" + address_)
        except OSError:
            return False
    return True


def _read_line(conn: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return data.strip()


def serve(address_: str) -> NoReturn:
    for name in PRELOADED:
        __import__(name)
    # Keepers are reaped by the kernel: the supervisor judges them by PID and start time, not by waiting on them.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind("\0" + address_)
    server.listen(64)
    while True:
        conn, _ = server.accept()
        with conn:
            conn.settimeout(RECORD_WAIT_S)
            try:
                _serve_one(server, conn)
            except Exception:  # noqa: BLE001 (one caller's trouble must not end the launcher)
                traceback.print_exc()


def _serve_one(server: socket.socket, conn: socket.socket) -> None:
    try:
        request = json.loads(_read_line(conn))
        _check(conn, request)
        go_read, go_write = os.pipe()
        pid = os.fork()
        if pid == 0:
            server.close()
            conn.close()
            os.close(go_write)
            _become_keeper(request, go_read)
        os.close(go_read)
    except Exception as exc:  # noqa: BLE001 (told to the caller, which names the app)
        _send(conn, {"error": f"{type(exc).__name__}: {exc}"})
        return
    with os.fdopen(go_write, "wb") as go:
        if _send(conn, {"pid": pid}) and _acknowledged(conn):
            go.write(b"g")  # otherwise closed unwritten: the keeper exits without starting the app


def _acknowledged(conn: socket.socket) -> bool:
    try:
        return _read_line(conn) + b"\n" == RECORDED
    except OSError:  # timed out, or the caller is gone
        return False


def _send(conn: socket.socket, answer: dict[str, Any]) -> bool:
    try:
        conn.sendall(json.dumps(answer).encode() + b"\n")
    except OSError:
        return False
    return True


def _check(conn: socket.socket, request: dict[str, Any]) -> None:
    _, uid, _ = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
    if uid != os.getuid():
        raise PermissionError(f"caller of user id {uid} refused: the launcher serves its own user only")
    module = str(request.get("module", ""))
    if not module.startswith(APPS_PACKAGE) or not module[len(APPS_PACKAGE):].isidentifier():
        raise ValueError(f"{module!r} is not one of the apps ({APPS_PACKAGE}*)")


def _become_keeper(request: dict[str, Any], go: int) -> NoReturn:
    """In the forked child: a new process group, the app's log as output; once the caller has recorded this
    process (a byte on `go`), keep the app running; if it never does (`go` closes empty), exit."""
    try:
        os.setsid()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the keeper waits for its app
        null = os.open(os.devnull, os.O_RDONLY)
        out = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(null, 0)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.close(null)
        os.close(out)
        recorded = os.read(go, 1) == b"g"
        os.close(go)
        if not recorded:
            os._exit(0)
        _keep(Path(request["state_dir"]), str(request["module"]), dict(request["env"]))
    except BaseException:  # noqa: BLE001 (a keeper never returns into the launcher's loop)
        traceback.print_exc()
        os._exit(1)


def _keep(state_dir: Path, module: str, env: dict[str, str]) -> NoReturn:
    child = {"pid": 0}

    def stop(signum: int, frame: object) -> None:
        if child["pid"]:
            try:
                os.kill(child["pid"], signal.SIGTERM)
                os.waitpid(child["pid"], 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        os._exit(0)

    for sig in STOP_SIGNALS:
        signal.signal(sig, stop)
    delay = BACKOFF_START_S
    while True:
        started = time.time()
        # Held across the fork: a stop arriving in between would otherwise find no child to stop, and the group
        # signal was sent before the child existed. Held, it waits until the child's PID is known.
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        pid = os.fork()
        if pid == 0:
            _run_app(module, env)
        child["pid"] = pid
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        tmp = state_dir / "pid.tmp"
        tmp.write_text(f"{pid} {int(started)}\n")
        tmp.replace(state_dir / "pid")
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        with open(state_dir / "exits", "a") as exits:
            exits.write(f"{time.time():.9f} {128 - code if code < 0 else code}\n")  # as a shell reports it
        if time.time() - started >= BACKOFF_RESET_AFTER_S:
            delay = BACKOFF_START_S
        time.sleep(delay)
        delay = min(delay * 2, BACKOFF_MAX_S)


def _run_app(module: str, env: dict[str, str]) -> NoReturn:
    """In the app's process: its environment, default signal handling, then its module as `python -m` runs it."""
    code = 0
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a fresh interpreter
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # blocked by the keeper across the fork
        os.environ.clear()
        os.environ.update(env)
        sys.argv = [module]
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 (printed to the app's log, as an interpreter would)
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    serve(sys.argv[1])
