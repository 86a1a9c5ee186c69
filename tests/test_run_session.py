"""`meshconform run` validates the platform's options and runs its preflight once, then hands the pytest plugin that
session as it is (not `--mesh-<name>=value` text for pytest to parse and check again): the plugin and the platform
fixture, serial or on xdist workers, do not preflight again; a platform option given to pytest instead is refused."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

HERE = Path(__file__).parent / "platforms"
UNIT = '''
from meshconform.suite.unit import conformance_test
from meshconform.traffic.model import Request


@conformance_test("hello-counted", "The minimal platform answers with its greeting.", features={"SidecarInjection"})
def test_hello(mesh_platform, mesh_meshed_client, mesh_result):
    [reply] = mesh_meshed_client.send([Request("/")])
    mesh_result.figure("greeting", reply.json()["greeting"])
'''


def _run(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    (tmp_path / "test_unit.py").write_text(UNIT)
    log = tmp_path / "preflights.log"
    log.unlink(missing_ok=True)
    env = {**os.environ, "MESHCONFORM_PLATFORMS": "minimal_platform:COUNTED_PLATFORM",
           "MESHCONFORM_PREFLIGHT_LOG": str(log), "MESHCONFORM_REPORTS": str(tmp_path / "reports"),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))}
    run = subprocess.run([sys.executable, "-m", "meshconform.cli", "run", "--platform", "minimal-counted", *args],
                         env=env, capture_output=True, text=True, timeout=180, cwd=tmp_path)
    return run, log.read_text().splitlines() if log.exists() else []


@pytest.mark.parametrize("workers", ["0", "2"])
def test_run_preflights_once_and_hands_its_settings_over(tmp_path: Path, workers: str) -> None:
    run, preflights = _run(tmp_path, "--counted-greeting", "salut", "-n", workers, "--",
                           str(tmp_path / "test_unit.py"), "--mesh-run-test=hello-counted")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert [line.split()[1] for line in preflights] == ["salut"], preflights  # once, with the validated settings
    [report] = (tmp_path / "reports").glob("*/conformance.yaml")
    data = yaml.safe_load(report.read_text())
    assert [(t["id"], t["figures"]) for t in data["tests"]] == [("hello-counted", {"greeting": "salut"})]


@pytest.mark.parametrize(("given", "named"), [("--mesh-counted-greeting=hola", "--counted-greeting"),
                                               ("--mesh-platform=local", "--platform")])
def test_a_platform_option_given_to_pytest_instead_is_refused(tmp_path: Path, given: str, named: str) -> None:
    run, preflights = _run(tmp_path, "--", str(tmp_path / "test_unit.py"), given)
    assert run.returncode == 4, run.stdout[-2000:] + run.stderr[-2000:]
    assert f"give {named} to run itself" in run.stdout + run.stderr


def test_run_help_lists_the_suites_pytest_options(request: pytest.FixtureRequest) -> None:
    """`meshconform run` passes what follows `--` to pytest: its help names every --mesh-* option the plugin adds
    to pytest (this very run's), but the platform's, which `run` takes itself. It named none at first, and then
    missed --mesh-platform-dir and --mesh-found-config, which the README sends the reader to `run --help` for."""
    from click.testing import CliRunner

    from meshconform.cli import cli
    from meshconform.platform import registry
    shown = CliRunner().invoke(cli, ["run", "--help"]).output
    platforms = {"mesh_platform", *(f"mesh_{option.dest}" for _, option in registry.all_options())}
    pytests = sorted("--" + dest.replace("_", "-") for dest in vars(request.config.option)
                     if dest.startswith("mesh_") and dest not in platforms)
    assert "--mesh-platform-dir" in pytests and "--mesh-found-config" in pytests
    assert [name for name in pytests if f"  {name}" not in shown] == []
    assert "--mesh-run-test: run only these test ids" in shown and "--misbehave" in shown


def test_run_helps_example_is_one_line_to_copy() -> None:
    """The example under `run --help` was wrapped inside an option ("--mesh-" / "timeout=..."): copied, it broke."""
    from click.testing import CliRunner

    from meshconform.cli import cli
    shown = CliRunner().invoke(cli, ["run", "--help"], terminal_width=80).output
    assert "meshconform run -n 2 -- --mesh-run-test=mirror-full --mesh-timeout=max_time_to_consistency=60" in shown
    assert ".;" not in " ".join(shown.split())  # summaries ending in a full stop were joined as "Not Istio.; local-..."


def test_the_command_line_does_not_import_pytest_until_it_runs_the_suite() -> None:
    """Every command (status, get, apply...) imported pytest (~0.18 s of the CLI's ~0.7 s) to build run's help."""
    probe = subprocess.run([sys.executable, "-c", "import sys, meshconform.cli; print('pytest' in sys.modules)"],
                           capture_output=True, text=True, timeout=60)
    assert probe.stdout.strip() == "False", probe.stderr[-2000:]


def test_a_preflight_refusal_names_each_option_as_pytest_takes_it(tmp_path: Path) -> None:
    """A platform writes its messages for the command line (`--container-engine podman`, `--platform cluster`); in
    pytest each is `--mesh-<name>`. Only the first `--` was rewritten: kind's refusal told pytest users to pass
    `--mesh-container-engine podman` or `--platform cluster`, which pytest does not take."""
    (tmp_path / "test_unit.py").write_text(UNIT)
    env = {**os.environ, "MESHCONFORM_PLATFORMS": "minimal_platform:COUNTED_PLATFORM",
           "MESHCONFORM_PREFLIGHT_LOG": str(tmp_path / "preflights.log"), "MESHCONFORM_REPORTS": str(tmp_path),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))}
    run = subprocess.run([sys.executable, "-m", "pytest", str(tmp_path / "test_unit.py"), "-p", "no:cacheprovider",
                          "--mesh-platform=minimal-counted", "--mesh-counted-greeting=refuse"],
                         env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert run.returncode == 4, run.stdout[-2000:] + run.stderr[-2000:]
    assert ("pass --mesh-counted-greeting hello, or use --mesh-platform minimal (--platform-dir stays as it is)"
            in run.stderr), run.stderr[-2000:]
