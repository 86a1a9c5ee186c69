"""Checks others add: the example vendor package in examples/ (its own unit, manifest, profile and feature) installed
as a user would install it, found through its entry point, run by `meshconform run` on the local platform and
reported under its own profile and feature, beside meshconform's own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

EXAMPLE = Path(__file__).parents[1] / "examples" / "acme-mesh-checks"


def test_a_vendor_check_package_is_run_and_reported_under_its_own_feature(tmp_path: Path) -> None:
    site = tmp_path / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                              "--disable-pip-version-check", "--target", str(site), str(EXAMPLE)],
                             capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert install.returncode == 0, install.stdout[-2000:] + install.stderr[-2000:]
    env = {**os.environ, "MESHCONFORM_REPORTS": str(tmp_path / "reports"),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}
    run = subprocess.run([sys.executable, "-m", "meshconform.cli", "run", "--", "--mesh-run-test=acme-tenant-routing",
                          "--mesh-run-test=injection-rules"], env=env, capture_output=True, text=True, timeout=300,
                         cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    [path] = (tmp_path / "reports").glob("*/conformance.yaml")
    report = yaml.safe_load(path.read_text())
    tests = {t["id"]: t for t in report["tests"]}
    assert set(tests) == {"acme-tenant-routing", "injection-rules"}
    assert tests["acme-tenant-routing"]["result"] == "passed"
    assert tests["acme-tenant-routing"]["features"] == ["AcmeTenantRouting"]
    assert tests["acme-tenant-routing"]["figures"]["landed"]["gold"] == "30 v2 via gold"
    profiles = {p["name"]: p for p in report["profiles"]}
    assert profiles["ACME-MESH"]["core"]["result"] == "success"
    assert profiles["ACME-MESH"]["core"]["statistics"]["Passed"] == 1
    assert profiles["MESH-HTTP"]["core"]["statistics"]["Passed"] == 1  # ours, beside it
