"""meshconform's pytest plugin loads next to pytest-kind's and Locust's, with no clash of options
or fixtures (all of ours are prefixed --mesh- / mesh_)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def _pytest(*args: str) -> str:
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    return run.stdout


def test_options_of_all_three_plugins_are_available() -> None:
    text = _pytest("--help")
    for option in ("--mesh-platform", "--mesh-misbehave", "--cluster-name", "--keep-cluster", "--host"):
        assert option in text, option


def test_fixtures_of_all_three_plugins_are_available() -> None:
    text = _pytest("--fixtures", "--collect-only", "-q", str(Path(__file__).parent / "test_report.py"))
    names = {line.split(" ", 1)[0] for line in text.splitlines() if line and not line.startswith(" ")}
    assert {"mesh_platform", "mesh_config", "mesh_ingress", "kind_cluster", "session", "fastsession"} <= names
