"""Runs an external program (kind, istioctl, helm, docker/podman, a vendor hook) the one way this package
does: argv only (no shell), a deadline from `timeouts.py`, its own process group so a timeout or Ctrl-C
stops it and its children, and every failure turned into a named error that says what to do."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from meshconform.errors import PlatformError

TAIL = 1500  # characters of a failed program's output quoted in the error


class ToolError(PlatformError):
    """An external program could not do its job."""

    def __init__(self, message: str, *, argv: Sequence[str] = (), hint: str = "") -> None:
        self.argv = list(argv)
        self.hint = hint
        text = message + (f"\n  command: {shlex.join(self.argv)}" if self.argv else "")
        super().__init__(text + (f"\n  what to do: {hint}" if hint else ""))


class ToolMissing(ToolError):
    """The program is not installed (or not executable)."""


class ToolFailed(ToolError):
    """The program exited non-zero."""

    def __init__(self, message: str, *, argv: Sequence[str], returncode: int, output: str, hint: str = "") -> None:
        self.returncode = returncode
        self.output = output
        super().__init__(f"{message} (exit {returncode})" + (f"\n  output (last lines):\n{_indent(output)}"
                                                            if output.strip() else ""), argv=argv, hint=hint)


class ToolTimedOut(ToolError):
    """The program did not finish before its deadline (it was stopped)."""


class ToolOutputError(ToolError):
    """The program succeeded but printed something we cannot read (partial or unexpected output)."""


def _indent(text: str) -> str:
    tail = text.strip()[-TAIL:]
    return "\n".join("    " + line for line in tail.splitlines())


@dataclass(frozen=True)
class Result:
    argv: list[str]
    stdout: str
    stderr: str
    returncode: int = 0


Progress = Callable[[str], None]  # takes each line a long-running program prints, as it prints it


def progress_to(log: Path, label: str) -> Progress:
    """Each line shown on stderr as `<label>: <line>` the moment the program prints it (kind's and istioctl's own
    progress lines), and kept in `log` (a run's progress.log): minutes of silence look like a hang."""
    def show(line: str) -> None:
        text = f"{label}: {line.rstrip()}"
        print(text, file=sys.stderr, flush=True)
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("a") as out:
            out.write(text + "\n")
    return show


def _communicate(process: subprocess.Popen[str], stdin: str | None, timeout: float,
                 progress: Progress | None) -> tuple[str, str]:
    """As Popen.communicate, handing each output line to `progress` as it comes."""
    if progress is None:
        return process.communicate(stdin, timeout=timeout)
    if stdin is not None and process.stdin is not None:
        process.stdin.write(stdin)
        process.stdin.close()
    taken: dict[str, list[str]] = {"stdout": [], "stderr": []}

    def follow(name: str, stream: IO[str]) -> None:
        for line in iter(stream.readline, ""):
            taken[name].append(line)
            progress(line)
    readers = [threading.Thread(target=follow, args=(name, stream), daemon=True)
               for name, stream in (("stdout", process.stdout), ("stderr", process.stderr)) if stream is not None]
    for reader in readers:
        reader.start()
    process.wait(timeout=timeout)  # TimeoutExpired, as communicate raises it
    for reader in readers:
        reader.join(timeout=5)
    return "".join(taken["stdout"]), "".join(taken["stderr"])


def run(argv: Sequence[str | Path], *, timeout: float, what: str, env: Mapping[str, str] | None = None,
        hint: str = "", check: bool = True, stdin: str | None = None, progress: Progress | None = None) -> Result:
    """Run `argv` to completion within `timeout` seconds. `what` names the step for the error message
    ("create the kind cluster"), `hint` says what the user can do if it fails, `env` is added to ours, `progress`
    takes each output line as it is printed."""
    args = [str(a) for a in argv]
    full_env = {**os.environ, **(env or {})}
    try:
        process = subprocess.Popen(args, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full_env,
                                   start_new_session=True)  # own group: killpg reaches its children too
    except FileNotFoundError:
        raise ToolMissing(f"cannot {what}: {args[0]} is not installed or not on PATH", argv=args,
                          hint=hint) from None
    except PermissionError:
        raise ToolMissing(f"cannot {what}: {args[0]} is not executable", argv=args, hint=hint) from None
    try:
        stdout, stderr = _communicate(process, stdin, timeout, progress)
    except subprocess.TimeoutExpired:
        _stop(process)
        raise ToolTimedOut(f"cannot {what}: {Path(args[0]).name} did not finish within {timeout:g} s and was "
                           "stopped", argv=args, hint=hint) from None
    except BaseException:  # Ctrl-C, SIGTERM as KeyboardInterrupt: leave no process behind
        _stop(process)
        raise
    if check and process.returncode != 0:
        raise ToolFailed(f"cannot {what}: {Path(args[0]).name} failed", argv=args, returncode=process.returncode,
                         output=(stderr or "") + (stdout or ""), hint=hint)
    return Result(args, stdout or "", stderr or "", process.returncode)


def _stop(process: subprocess.Popen[str]) -> None:
    """SIGTERM to the whole group, SIGKILL if it lingers; reap it."""
    for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.communicate(timeout=grace)
            break
        except subprocess.TimeoutExpired:
            continue
    try:  # the leader is gone; children it left in the group go too
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
