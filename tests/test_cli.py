"""The command line as a new user meets it: the platform that is up is found from any directory (a pointer in the
user's state directory, each test with its own: tests/conftest.py), the run directory `up` prints is accepted where a
platform folder is, `delete --ignore-not-found` says what was not there, and Ctrl-C while the command line is still
importing ends it in one line."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import platformdirs
import pytest
from click.testing import CliRunner

from meshconform import cli, runs
from meshconform.errors import PlatformError
from meshconform.meshapi.loader import load_text
from meshconform.platform import registry
from meshconform.platform.local.platform import LocalPlatform

PLATFORMS = Path(__file__).parent / "platforms"


def _env(**extra: str) -> dict[str, str]:
    """The minimal platform registered (tests/platforms); reports under the working directory."""
    env = {key: value for key, value in os.environ.items() if key != "MESHCONFORM_REPORTS"}
    return {**env, "MESHCONFORM_PLATFORMS": "minimal_platform:PLATFORM",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(PLATFORMS), os.environ.get("PYTHONPATH")])), **extra}


def _cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.run([sys.executable, "-m", "meshconform.cli", *args], env=_env(), cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_the_platform_that_is_up_is_found_from_any_directory(tmp_path: Path) -> None:
    here, there = tmp_path / "here", tmp_path / "there"
    up = _cli(here, "up", "--platform", "minimal", "--greeting", "salut")
    assert up.returncode == 0, up.stderr
    status = _cli(there, "status")
    assert status.returncode == 0, status.stderr
    assert "platform: minimal" in status.stdout and f"run directory: {here / 'reports'}" in status.stdout
    again = _cli(there, "up", "--platform", "minimal")  # a second platform is not started from elsewhere
    assert again.returncode == 1 and "a minimal platform is already up (in " in again.stderr, again.stderr
    assert not (there / "reports").exists()
    down = _cli(there, "down")
    assert down.returncode == 0 and "stopped" in down.stdout
    assert _cli(here, "status").returncode == 1 and not runs.active_pointer().exists()



def test_up_does_not_forget_a_platform_it_could_not_reach(tmp_path: Path) -> None:
    """A second `up` took any failure to attach to the recorded platform for "no longer running": with a cluster out
    of reach it started a new platform and overwrote the pointer, and nothing would ever take the cluster down."""
    first = _cli(tmp_path, "up", "--platform", "minimal")
    assert first.returncode == 0, first.stderr
    recorded = runs.read_active()
    assert recorded is not None
    (recorded.folder / "unreachable").touch()
    try:
        again = _cli(tmp_path, "up", "--platform", "minimal")
        assert again.returncode == 1 and "is recorded as up" in again.stderr and "no answer" in again.stderr, again
        assert runs.read_active() == recorded
    finally:
        (recorded.folder / "unreachable").unlink()
        assert _cli(tmp_path, "down").returncode == 0

def test_the_state_directory_is_the_users_unless_overridden(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(runs.STATE_DIR_ENV)
    assert runs.active_pointer() == Path(platformdirs.user_state_dir("meshconform")) / "active-platform.json"
    monkeypatch.setenv(runs.STATE_DIR_ENV, str(tmp_path))
    assert runs.active_pointer() == tmp_path / "active-platform.json"


def test_a_pointer_left_beside_the_reports_by_an_earlier_version_is_still_found(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MESHCONFORM_REPORTS", raising=False)
    legacy = tmp_path / "reports" / ".active-platform.json"
    legacy.parent.mkdir()
    legacy.write_text('{"platform": "local", "platform_dir": "/somewhere/platform"}')
    assert runs.read_active() == runs.ActivePlatform("local", Path("/somewhere/platform"))
    runs.clear_active()  # `down` clears it with the pointer
    assert runs.read_active() is None and not legacy.exists()


def test_a_pointer_cut_short_is_named_and_down_forgets_it(tmp_path: Path) -> None:
    """A pointer that is not JSON (cut short, edited) gave every command a JSONDecodeError traceback."""
    runs.active_pointer().parent.mkdir(parents=True, exist_ok=True)
    runs.active_pointer().write_text('{"platform": "local", "platform_d')
    status = _cli(tmp_path, "status")
    assert status.returncode == 1 and "Traceback" not in status.stderr, status.stderr
    assert status.stderr.startswith(f"error: {runs.active_pointer()} does not say which platform is up (")
    assert "run 'meshconform down' to forget it" in status.stderr
    down = _cli(tmp_path, "down")
    assert down.returncode == 0 and "nothing was stopped" in down.stdout, down.stderr
    assert not runs.active_pointer().exists()


def test_a_platform_whose_folder_is_gone_is_not_said_to_be_stopped(tmp_path: Path) -> None:
    """The run folder removed under a platform that was up: `down` said "stopped; logs and config stay in" a folder
    that did not exist, and `status` named a missing owner.json without saying what to do."""
    gone = tmp_path / "removed" / "platform"
    runs.write_active("local", gone)
    status = _cli(tmp_path, "status")
    assert status.returncode == 1 and f"is gone: {gone} holds none any more" in status.stderr, status.stderr
    down = _cli(tmp_path, "down")
    assert down.returncode == 0, down.stderr
    assert "stopped" not in down.stdout and f"nothing to stop: {gone} holds no platform any more" in down.stdout
    assert runs.read_active() is None



def test_up_with_a_file_the_platform_refuses_leaves_nothing(tmp_path: Path) -> None:
    """`up -f FILE` with a resource the platform refuses: one error naming file, resource and field, the platform
    stopped, and no run folder of a platform that never served (one was left for every such try)."""
    refused = tmp_path / "sidecar.yaml"
    refused.write_text("apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: narrow}\n"
                       "spec: {outboundTrafficPolicy: {mode: REGISTRY_ONLY}}\n")
    up = _cli(tmp_path, "up", "--platform", "minimal", "-f", str(refused))
    assert up.returncode == 1 and up.stderr == (f"error: {refused}: Sidecar default/narrow: spec: valid Istio, not "
                                                "implemented by the minimal platform\n"), up.stderr
    assert not (tmp_path / "reports").exists() or list((tmp_path / "reports").iterdir()) == []
    assert runs.read_active() is None


def test_a_local_platform_whose_state_file_is_cut_short_is_named_and_down_still_stops_it(tmp_path: Path) -> None:
    """platform.json cut short (edited by hand, a disk that failed): status, apply and down each ended in a
    JSONDecodeError traceback, and down stopped nothing: all 37 processes stayed."""
    up = _cli(tmp_path, "up")
    assert up.returncode == 0, up.stderr
    folder = Path(re.search(r"^run directory: (.+)$", up.stdout, re.M).group(1)) / "platform"  # type: ignore[union-attr]
    state, whole = folder / "platform.json", (folder / "platform.json").read_text()
    pids = [record["pid"] for record in json.loads((folder / "processes.json").read_text())]
    state.write_text(whole[:200])
    try:
        for command in (["status"], ["apply", "-f", str(PLATFORMS.parent / "samples" / "httpbin-gateway.yaml")]):
            refused = _cli(tmp_path, *command)
            assert refused.returncode == 1 and "Traceback" not in refused.stderr, refused.stderr
            assert refused.stderr.startswith(f"error: {state} cannot be read (JSONDecodeError: "), refused.stderr
            assert "run 'meshconform down' to stop its processes" in refused.stderr
        assert "a local platform is already up" in _cli(tmp_path, "up").stderr  # not a second one beside it
        down = _cli(tmp_path, "down")
        assert down.returncode == 0 and "stopped" in down.stdout, down.stderr
        assert [pid for pid in pids if _running(pid)] == []
    finally:
        state.write_text(whole)
        _cli(tmp_path, "down")


def _running(pid: int) -> bool:
    """Whether `pid` runs (a zombie its new parent has not reaped yet has ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False

def test_the_run_directory_up_prints_is_accepted_for_the_platform_folder(tmp_path: Path) -> None:
    up = _cli(tmp_path, "up", "--platform", "minimal", "--greeting", "bonjour")
    assert up.returncode == 0, up.stderr
    run_dir = Path(re.search(r"^run directory: (.+)$", up.stdout, re.M).group(1))  # type: ignore[union-attr]
    assert not (run_dir / registry.RECORD_FILE).exists() and (run_dir / "platform" / registry.RECORD_FILE).exists()
    try:
        run = subprocess.run([sys.executable, "-m", "pytest", str(PLATFORMS / "user_test_minimal.py"), "-q",
                              "-p", "no:cacheprovider", "--import-mode=importlib", "--mesh-platform=minimal",
                              f"--mesh-platform-dir={run_dir}", f"--mesh-report-dir={tmp_path / 'run'}"],
                             env=_env(), cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert run.returncode == 0 and "1 passed" in run.stdout, run.stdout[-2000:] + run.stderr[-2000:]
    finally:
        _cli(tmp_path, "down")
    with pytest.raises(PlatformError, match=r"holds no meshconform platform: give the run directory 'meshconform up' "
                                            r"printed, or its platform/ folder \(neither has owner.json\)"):
        registry.attach(tmp_path)


SAMPLE = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: echo-cli}
spec: {host: echo}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: never-applied}
spec: {host: echo}
"""


@pytest.mark.slow
def test_delete_ignore_not_found_says_what_was_deleted_and_what_was_not_there(
        platform: LocalPlatform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    manifest = tmp_path / "rules.yaml"
    manifest.write_text(SAMPLE)
    platform.apply(load_text(SAMPLE, str(manifest))[:1])
    monkeypatch.setattr(cli, "_attached", lambda name: platform)
    result = CliRunner().invoke(cli.cli, ["delete", "--ignore-not-found", "-f", str(manifest)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["DestinationRule default/echo-cli deleted",
                                          "DestinationRule default/never-applied not found"]
    assert "echo-cli" not in {item.resource.metadata.name for item in platform.resources()}
    # Without the flag a missing one is an error, and nothing is deleted.
    platform.apply(load_text(SAMPLE, str(manifest))[:1])
    refused = CliRunner().invoke(cli.cli, ["delete", "-f", str(manifest)])
    assert refused.exit_code != 0 and "not found on the platform" in str(refused.exception)
    assert "echo-cli" in {item.resource.metadata.name for item in platform.resources()}
    platform.delete(load_text(SAMPLE, str(manifest))[:1])


# Ctrl-C while the command line imports: a finder raising KeyboardInterrupt where the module would load, as SIGINT
# does at that moment (the command line's imports take ~0.5 s, most of its first second); or raising it while a
# class is defined, where Python 3.11 wraps it in a RuntimeError (an interrupt inside pydantic's model classes).
INTERRUPTED_IMPORT = """
import sys
class Stop:
    def __set_name__(self, owner, name):
        raise KeyboardInterrupt
class Interrupt:
    def find_spec(self, name, path=None, target=None):
        if name == {module!r}:
            if {in_class}:
                class Model:
                    field = Stop()
            raise KeyboardInterrupt
        return None
sys.meta_path.insert(0, Interrupt())
sys.argv = ["meshconform", "up"]
from meshconform.console import main
main()
"""


@pytest.mark.parametrize("in_class", [False, True], ids=["importing", "defining-a-class"])
@pytest.mark.parametrize("module", ["click", "meshconform.platform.registry"])  # the first import; a model module
def test_ctrl_c_while_the_command_line_imports_ends_in_one_line(module: str, in_class: bool, tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-c", INTERRUPTED_IMPORT.format(module=module, in_class=in_class)],
                         cwd=tmp_path, env=_env(MESHCONFORM_REPORTS=str(tmp_path / "reports")), capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 130 and run.stderr == "interrupted: everything started was stopped\n", run.stderr
    assert not (tmp_path / "reports").exists()


def test_the_installed_command_is_the_guarded_entry_point() -> None:
    from importlib.metadata import entry_points
    [script] = [e for e in entry_points(group="console_scripts") if e.name == "meshconform"]
    assert script.value == "meshconform.console:main"
