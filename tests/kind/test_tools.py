"""The one way external programs run (meshconform.platform.kind.tools): failures become named errors that
say what to do, and a timeout stops the program's whole process group."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from meshconform.platform.kind import tools


def test_missing_program_is_named(standins) -> None:
    with pytest.raises(tools.ToolMissing) as caught:
        tools.run(["kind", "version"], timeout=5, what="read the kind version", hint="install kind")
    text = str(caught.value)
    assert "cannot read the kind version: kind is not installed or not on PATH" in text
    assert "command: kind version" in text and "what to do: install kind" in text


def test_non_zero_exit_carries_code_output_and_hint(standins) -> None:
    standins.tool("kind", [{"args": ["create"], "stderr": "ERROR: failed to create cluster: boom\n", "exit": 1}])
    with pytest.raises(tools.ToolFailed) as caught:
        tools.run(["kind", "create", "cluster"], timeout=10, what="create the cluster", hint="read kind's output")
    assert caught.value.returncode == 1
    assert "(exit 1)" in str(caught.value) and "ERROR: failed to create cluster: boom" in str(caught.value)
    assert "what to do: read kind's output" in str(caught.value)


def test_check_false_returns_the_exit_code(standins) -> None:
    standins.tool("docker", [{"args": ["info"], "stdout": "\n", "stderr": "no engine\n", "exit": 1}])
    result = tools.run(["docker", "info"], timeout=10, what="probe", check=False)
    assert (result.returncode, result.stdout, result.stderr) == (1, "\n", "no engine\n")


def test_timeout_stops_the_program_and_its_children(standins) -> None:
    standins.tool("helm", [{"args": ["install"], "sleep": 60, "sleeping_child": True}])
    started = time.monotonic()
    with pytest.raises(tools.ToolTimedOut, match="did not finish within 1 s and was stopped"):
        tools.run(["helm", "install", "x"], timeout=1, what="install")
    assert time.monotonic() - started < 20
    child = int((standins.dir / "child.pid").read_text())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(child):
        time.sleep(0.05)
    assert not _alive(child), "the program's child outlived the timeout"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat")
    return not (status.exists() and status.read_text().split()[2] == "Z")  # a zombie is gone


def test_progress_lines_arrive_as_the_program_prints_them(tmp_path: Path) -> None:
    """kind's and istioctl's minutes of output are shown line by line, not at the end: the first line is handed on
    while the program is still running, and every line is kept for the error message and progress.log."""
    import sys
    script = tmp_path / "slow.py"
    script.write_text("import sys, time\nprint('first', flush=True)\ntime.sleep(1.5)\n"
                      "print('second', file=sys.stderr, flush=True)\n")
    seen: list[tuple[str, float]] = []
    started = time.monotonic()
    result = tools.run([sys.executable, str(script)], timeout=30, what="run",
                       progress=lambda line: seen.append((line.strip(), time.monotonic() - started)))
    ended = time.monotonic() - started
    assert [line for line, _ in seen] == ["first", "second"]
    assert seen[0][1] < ended - 1.0  # handed on about 1.5 s before the program ended
    assert (result.stdout, result.stderr) == ("first\n", "second\n")
    log = tmp_path / "progress.log"
    show = tools.progress_to(log, "kind")
    show("Creating cluster \"meshconform\" ...\n")
    assert log.read_text() == 'kind: Creating cluster "meshconform" ...\n'
