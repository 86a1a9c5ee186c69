"""The nightly perf workflow (.github/workflows/perf-nightly.yml): manual and nightly, actions pinned by version,
the nightly preset on kind compared with the history kept on the perf-history branch, only a valid run without a
regression (or one a maintainer accepts) added to it, reports uploaded every time without the private
kubeconfigs, and the job failing on a regression or an invalid run after both. actionlint runs where installed."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

WORKFLOW = Path(__file__).parents[1] / ".github" / "workflows" / "perf-nightly.yml"


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(WORKFLOW.read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as true
    return data


@pytest.fixture(scope="module")
def steps(workflow: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s.get("name", s.get("uses", "")): s for s in workflow["jobs"]["perf"]["steps"]}


def test_triggers_permissions_and_one_run_at_a_time(workflow: dict[str, Any]) -> None:
    assert set(workflow["on"]) == {"workflow_dispatch", "schedule"}
    cron = workflow["on"]["schedule"][0]["cron"].split()
    assert len(cron) == 5 and cron[2:] == ["*", "*", "*"]  # once a day
    assert workflow["permissions"] == {"contents": "write"}  # the history branch only
    assert workflow["concurrency"]["cancel-in-progress"] is False
    assert workflow["jobs"]["perf"]["runs-on"] == "ubuntu-24.04"


def test_actions_are_pinned_by_version(workflow: dict[str, Any]) -> None:
    uses = [s["uses"] for job in workflow["jobs"].values() for s in job["steps"] if "uses" in s]
    assert uses and all(re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+\.\d+\.\d+", u) for u in uses), uses


def test_it_runs_the_nightly_preset_on_kind_against_the_history(steps: dict[str, dict[str, Any]]) -> None:
    fetch = steps["Fetch the history (branch perf-history; none on the first night)"]["run"]
    assert "--branch perf-history" in fetch and 'mkdir -p "$HISTORY/runs"' in fetch
    run = steps["Run the nightly preset on kind and compare with the history"]["run"]
    assert re.search(r"meshconform perf --preset nightly --history \"\$HISTORY\"", run)
    assert "--platform kind" in run and "set +e" in run and 'echo "code=$code" >> "$GITHUB_OUTPUT"' in run


def test_only_a_valid_run_without_regression_joins_the_history(steps: dict[str, dict[str, Any]]) -> None:
    append = steps["Add a valid run to the history"]
    assert append["if"] == ("steps.perf.outputs.code == '0' || (steps.perf.outputs.code == '3' && "
                            "env.ACCEPT_REGRESSION == 'true')")
    assert "perf-result.json" in append["run"] and "HEAD:perf-history" in append["run"]
    assert "head -n -60" in append["run"]  # the history is pruned to the newest runs


def test_reports_are_uploaded_always_and_the_job_fails_last(workflow: dict[str, Any],
                                                            steps: dict[str, dict[str, Any]]) -> None:
    upload = steps["Upload the reports"]
    assert upload["if"] == "always()"
    paths = upload["with"]["path"].split()
    assert "reports/" in paths and "!reports/**/.private/**" in paths
    names = [s.get("name") for s in workflow["jobs"]["perf"]["steps"]]
    assert names[-1] == "Fail on a regression or an invalid run"
    assert steps[names[-1]]["if"] == "steps.perf.outputs.code != '0'"
    assert names.index("Add a valid run to the history") < names.index("Upload the reports") < len(names) - 1


def test_actionlint_where_available() -> None:
    actionlint = shutil.which("actionlint")
    if actionlint is None:
        pytest.skip("actionlint is not installed here")
    done = subprocess.run([actionlint, str(WORKFLOW)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
