"""The local platform shared by a run's xdist workers (platform/local/shared.py), as a cluster is: checks that meet
on echo, on Bookinfo, on the ingress and on the whole mesh take turns by their claims (suite/claims.py) and pass
with real traffic on one platform, which is gone afterwards."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from meshconform import conformance
from meshconform.platform.local.platform import LocalPlatform
from meshconform.platform.local.shared import SHARED_FOLDER

# Claims: echo (three), Bookinfo's services and the ingress (two), echo and the ingress, the whole mesh (two).
SELECTION = ["fault-abort", "weighted-split-echo", "mirror-full", "header-routing-jason", "bookinfo-ratings-abort",
             "gateway-host-routing", "mtls-strict", "injection-rules"]


@pytest.mark.slow
def test_checks_take_turns_on_one_local_platform_shared_by_two_workers(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "pytest", str(Path(conformance.__file__).parent), "-q", "-n", "2",
                          "-p", "no:cacheprovider", "--import-mode=importlib", "--mesh-platform=local-shared",
                          *[f"--mesh-run-test={test_id}" for test_id in SELECTION], f"--mesh-report-dir={tmp_path}"],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    report = yaml.safe_load((tmp_path / "conformance.yaml").read_text())
    results = {test["id"].partition("[")[0]: test["result"] for test in report["tests"]}
    assert set(results) == set(SELECTION) and set(results.values()) == {"passed"}, results
    assert (report["underTest"]["instances"], report["underTest"]["workers"]) == (1, 2), report["underTest"]
    # One platform for both workers, taken in turns by claim, and taken down by the last worker out.
    assert LocalPlatform(tmp_path / SHARED_FOLDER).state.stopped, "the shared platform was not taken down"
    assert not LocalPlatform(tmp_path / SHARED_FOLDER).is_up()
    assert {"claim-echo.lock", "claim-reviews.lock", "claim-ingress.lock", "mesh.lock"} <= {
        p.name for p in (tmp_path / "turns").iterdir()}
    assert not [p for p in tmp_path.glob("platform-gw*/platform.json")], "a worker brought up a platform of its own"


def test_the_cli_finds_and_takes_down_a_shared_local_platform(tmp_path: Path) -> None:
    """`up`, `status` and `down` work on it as on any platform (the registry's record is in the worker's own folder,
    the processes in the shared one): `down` leaves nothing running."""
    env = {**os.environ, "MESHCONFORM_REPORTS": str(tmp_path)}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "meshconform.cli", *args], env=env, capture_output=True,
                              text=True, timeout=300)
    up = cli("up", "--platform", "local-shared")
    try:
        assert up.returncode == 0, up.stderr
        [shared] = tmp_path.glob(f"*/{SHARED_FOLDER}")
        assert LocalPlatform(shared).is_up()
        status = cli("status")
        assert status.returncode == 0 and "default/productpage-v1" in status.stdout, status.stderr
    finally:
        down = cli("down")
    assert down.returncode == 0, down.stderr
    assert not LocalPlatform(shared).is_up(), "down left the shared platform's processes running"
