"""Results are gathered by an object registered with each pytest session, not in module globals: two `pytest.main`
runs in one process write two correct reports (the second listed its one test twice before). Serialised once per
test: the report rebuilds each result from its teardown report."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).parent / "platforms"
UNIT = '''
from meshconform.suite.unit import conformance_test
from meshconform.traffic.model import Request


@conformance_test("hello-{n}", "The minimal platform answers ({n}).", features={{"SidecarInjection"}})
def test_hello(mesh_platform, mesh_meshed_client, mesh_result):
    [reply] = mesh_meshed_client.send([Request("/")])
    mesh_result.figure("greeting", reply.json()["greeting"])
'''
TWICE = '''
import sys
import pytest

codes = []
for n in ("1", "2"):
    codes.append(pytest.main([sys.argv[1] + f"/run{n}/test_unit.py", "-q", "-p", "no:cacheprovider",
                              "--import-mode=importlib", "--mesh-platform=minimal", "--mesh-greeting=hi" + n,
                              f"--mesh-report-dir={sys.argv[1]}/report{n}"]))
sys.exit(max(int(code) for code in codes))
'''


def test_two_runs_in_one_process_give_two_correct_reports(tmp_path: Path) -> None:
    for n in ("1", "2"):
        (tmp_path / f"run{n}").mkdir()
        (tmp_path / f"run{n}" / "test_unit.py").write_text(UNIT.format(n=n))
    (tmp_path / "twice.py").write_text(TWICE)
    env = {**os.environ, "MESHCONFORM_PLATFORMS": "minimal_platform:PLATFORM",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))}
    run = subprocess.run([sys.executable, str(tmp_path / "twice.py"), str(tmp_path)], env=env, capture_output=True,
                         text=True, timeout=120, cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    reports = {n: yaml.safe_load((tmp_path / f"report{n}" / "conformance.yaml").read_text()) for n in ("1", "2")}
    for n, report in reports.items():
        assert [(t["id"], t["result"], t["figures"]) for t in report["tests"]] == [
            (f"hello-{n}", "passed", {"greeting": f"hi{n}"})], report["tests"]
    for report in reports.values():
        assert report["summary"]["passed"] == 1 and report["underTest"]["platform"] == "minimal"


INTERRUPTED = '''
import pytest
from meshconform.suite.unit import conformance_test


@conformance_test("first", "Passes.", features={"SidecarInjection"})
def test_first(mesh_platform):
    pass


@pytest.mark.parametrize("n", [1, 2])
@conformance_test("second", "Ctrl-C while it runs.", features={"SidecarInjection"})
def test_second(mesh_platform, n):
    raise KeyboardInterrupt


@conformance_test("third", "Never reached.", features={"SidecarInjection"})
def test_third(mesh_platform):
    pass
'''


def test_an_interrupted_run_reports_the_checks_it_did_not_finish_as_not_run(tmp_path: Path) -> None:
    """Ctrl-C after the first check: the report said result 'success', "Core tests succeeded (1 passed)", and
    nothing of the checks the run never finished."""
    (tmp_path / "test_units.py").write_text(INTERRUPTED)
    env = {**os.environ, "MESHCONFORM_PLATFORMS": "minimal_platform:PLATFORM",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))}
    run = subprocess.run([sys.executable, "-m", "pytest", str(tmp_path / "test_units.py"), "-q", "-p",
                          "no:cacheprovider", "--import-mode=importlib", "--mesh-platform=minimal",
                          f"--mesh-report-dir={tmp_path / 'report'}"], env=env, capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    assert run.returncode == 2, run.stdout[-3000:] + run.stderr[-2000:]  # pytest's "interrupted"
    report = yaml.safe_load((tmp_path / "report" / "conformance.yaml").read_text())
    assert [(t["id"], t["result"], t.get("reason", "")) for t in report["tests"]] == [
        ("first", "passed", ""),
        ("second[1]", "skipped", "not run to its end: the run was interrupted"),
        ("second[2]", "skipped", "not run to its end: the run was interrupted"),
        ("third", "skipped", "not run to its end: the run was interrupted")]
    assert report["summary"]["result"] == "partial" and report["profiles"][0]["core"]["result"] == "partial"


CRASHING = '''
import os
from meshconform.suite.unit import conformance_test


@conformance_test("steady", "Passes.", features={"SidecarInjection"})
def test_steady(mesh_platform):
    pass


@conformance_test("crashing", "Its worker dies under it.", features={"SidecarInjection"})
def test_crashing(mesh_platform):
    os._exit(3)
'''


def test_a_check_whose_xdist_worker_died_is_reported_as_not_run(tmp_path: Path) -> None:
    """xdist's report of a crashed worker carries no meshconform result: the check was missing from
    conformance.yaml, which said "success" while pytest exited 1."""
    (tmp_path / "test_units.py").write_text(CRASHING)
    env = {**os.environ, "MESHCONFORM_PLATFORMS": "minimal_platform:PLATFORM",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))}
    run = subprocess.run([sys.executable, "-m", "pytest", str(tmp_path / "test_units.py"), "-q", "-n", "2", "-p",
                          "no:cacheprovider", "--import-mode=importlib", "--mesh-platform=minimal",
                          f"--mesh-report-dir={tmp_path / 'report'}"], env=env, capture_output=True, text=True,
                         timeout=180, cwd=tmp_path)
    assert run.returncode == 1 and "crashed" in run.stdout, run.stdout[-3000:] + run.stderr[-2000:]
    report = yaml.safe_load((tmp_path / "report" / "conformance.yaml").read_text())
    assert sorted((t["id"], t["result"], t.get("reason", "")) for t in report["tests"]) == [
        ("crashing", "skipped", "not run to its end: no result came back (its xdist worker ended early?)"),
        ("steady", "passed", "")]
    assert report["summary"]["result"] == "partial"
