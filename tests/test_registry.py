"""The platform registry: a platform registered from outside (tests/platforms/minimal_platform.py) is
selectable by the CLI and by pytest, with its own options, and foreign or misspelt options are errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from meshconform.errors import PlatformError
from meshconform.platform import registry

HERE = Path(__file__).parent / "platforms"


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "MESHCONFORM_PLATFORMS": "minimal_platform:PLATFORM", "MESHCONFORM_REPORTS": str(tmp_path),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))}


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "meshconform.cli", *args], env=_env(tmp_path),
                          capture_output=True, text=True, timeout=120)


def test_a_registered_platform_is_usable_from_the_cli(tmp_path: Path) -> None:
    listed = _cli(tmp_path, "platforms")
    assert "minimal: answers every request in process" in listed.stdout and "--greeting" in listed.stdout
    up = _cli(tmp_path, "up", "--platform", "minimal", "--greeting", "salut")
    assert up.returncode == 0, up.stderr
    status = _cli(tmp_path, "status", "--platform", "minimal")
    assert status.returncode == 0, status.stderr
    assert "platform: minimal" in status.stdout and "default/hello-0" in status.stdout
    wrong = _cli(tmp_path, "status", "--platform", "local")
    assert wrong.returncode == 1 and "is 'minimal'" in wrong.stderr and "not 'local'" in wrong.stderr
    down = _cli(tmp_path, "down")
    assert down.returncode == 0 and "stopped" in down.stdout
    assert _cli(tmp_path, "status").returncode == 1  # nothing up any more


def test_a_foreign_option_is_a_usage_error(tmp_path: Path) -> None:
    run = _cli(tmp_path, "up", "--platform", "minimal", "--misbehave", "weights-skewed")
    assert run.returncode == 1
    assert "--misbehave is an option of platform local, not minimal" in run.stderr


def test_a_registered_platform_is_selectable_in_pytest(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "pytest", str(HERE / "user_test_minimal.py"), "-q",
                          "-p", "no:cacheprovider", "--import-mode=importlib", "--mesh-platform=minimal",
                          "--mesh-greeting=bonjour", f"--mesh-report-dir={tmp_path / 'run'}"],
                         env=_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert "1 passed" in run.stdout


def test_unknown_platform_and_bad_reference_are_named() -> None:
    with pytest.raises(PlatformError, match="unknown platform 'kinder'"):
        registry.get("kinder")
    with pytest.raises(PlatformError, match="not 'module:attribute'"):
        registry._load_reference("just_a_module")
