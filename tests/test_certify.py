"""`meshconform certify` on the local platform, end to end, and `meshconform verify` on what it wrote. One
certification run for the whole module, claiming GATEWAY-HTTP (its checks and the Gateway API mesh checks the
profile selection brings along: six test items, three share samples; the module took 23 s at load 3.3). CI already
runs the whole suite once, as conformance/; certifying it all here would run it a second time in every CI run (65
items: 46 s with -n 2 at load 4-8, by hand). Every test reads that run's submission, or a copy of it changed on
purpose. verify accepts it as written; one
changed byte of the report, one recorded count changed so its verdict no longer follows, a core check missing or
skipped, a suite other than the installed one, a signature by another key: each is named, with its exit code.
Certifying every profile is the same code path with more checks (tests/test_certify_plan.py checks what it asks
pytest for)."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshconform.certify import digest, verify
from meshconform.report import schema, submission
from meshconform.report.certification import SuiteDigest
from tests.test_submission_seal import write_key

CERTIFY_TIMEOUT_S = 900  # one profile's checks and a local platform, serially, on a loaded 2-core machine
CLAIMED = "GATEWAY-HTTP"


@dataclass(frozen=True)
class Certified:
    run: subprocess.CompletedProcess[str]
    folder: Path
    private_key: Path
    public_key: Path
    report: dict[str, Any]


@pytest.fixture(scope="module")
def certified(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Certified]:
    home = tmp_path_factory.mktemp("certify")
    private, public = write_key(home)
    env = {**{k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"},
           "MESHCONFORM_REPORTS": str(home / "reports"), "MESHCONFORM_STATE_DIR": str(home / "state")}
    run = subprocess.run([sys.executable, "-m", "meshconform.cli", "certify", "--profile", CLAIMED,
                          "--sign-key", str(private)], env=env,
                         cwd=home, capture_output=True, text=True, timeout=CERTIFY_TIMEOUT_S, check=False)
    found = list((home / "reports").glob("*/submission"))
    assert len(found) == 1, run.stdout[-4000:] + run.stderr[-3000:]
    yield Certified(run, found[0], private, public, yaml.safe_load((found[0] / "conformance.yaml").read_text()))


def _copy(certified: Certified, tmp_path: Path) -> Path:
    folder = tmp_path / "submission"
    shutil.copytree(certified.folder, folder)
    return folder


def _rewrite(folder: Path, report: dict[str, Any]) -> None:
    (folder / "conformance.yaml").write_text(yaml.safe_dump(report, sort_keys=False, width=120))


def _cli_verify(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "meshconform.cli", "verify", str(folder), *args],
                          capture_output=True, text=True, timeout=600, check=False)


def test_certify_on_local_writes_a_sealed_submission(certified: Certified) -> None:
    files = sorted(p.name for p in certified.folder.iterdir())
    assert files == ["README.md", "SHA256SUMS", "SHA256SUMS.sig", "conformance.yaml", "gateway-api-report.yaml",
                     "junit.xml", "report.html", "suite-digest.txt"]
    report = certified.report
    assert schema.problems(report) == []
    block = report["certification"]
    assert block["profiles"] == [CLAIMED] and block["unsupportedFeatures"] == [] and block["signed"] is True
    assert block["command"] == f"meshconform certify --platform local --profile {CLAIMED} --sign-key " \
                               "VENDOR-PRIVATE-KEY.pem"
    assert block["suite"]["sha256"] == digest.installed().sha256 == submission.file_sha256(
        certified.folder / "suite-digest.txt")
    assert "gateway-api-http-paths" in {t["id"] for t in report["tests"]}  # GATEWAY-HTTP's core check
    assert not [t for t in report["tests"] if t["result"] == "skipped"]
    assert "<run>/platform-main" in json.dumps(report["underTest"])  # no path of this machine's run folder
    assert str(certified.folder.parent) not in (certified.folder / "README.md").read_text()
    readme = (certified.folder / "README.md").read_text()
    for part in ("## Who", "## What", "## When", "## Platform", "## Reproduce", "## Verify",
                 "its reference data plane", "It is not Istio and not any vendor's mesh",
                 f"sha256:{block['suite']['sha256']}", ".venv/bin/meshconform certify --platform local",
                 "envoy", "1.40.0"):
        assert part in readme, part
    # certify ends with verify's verdict on its own submission (NOT CONFORMANT only if a check failed under load).
    assert "verify: ACCEPTED" in certified.run.stdout, certified.run.stdout[-3000:]
    assert certified.run.returncode == (0 if report["summary"]["result"] == "success" else 1)


def test_verify_accepts_it_and_says_so_for_a_bot(certified: Certified) -> None:
    done = _cli_verify(certified.folder, "--key", str(certified.public_key), "--output", "json")
    result = json.loads(done.stdout)
    assert result["findings"] == [] and result["accepted"] is True
    assert result["checks"] == {"checksums": "ok", "signature": "ok", "schema": "ok", "suite": "ok",
                                "completeness": "ok", "verdicts": "ok", "gateway-api": "ok"}
    conformant = certified.report["summary"]["result"] == "success"
    assert done.returncode == (verify.ACCEPTED if conformant else verify.NOT_CONFORMANT)
    assert set(result["conformant"]) == {CLAIMED} and result["otherSuite"] is False


def test_one_changed_byte_of_the_report_fails_naming_the_file(certified: Certified, tmp_path: Path) -> None:
    folder = _copy(certified, tmp_path)
    text = (folder / "conformance.yaml").read_bytes()
    at = text.index(b"description: ") + len(b"description: ") + 2
    (folder / "conformance.yaml").write_bytes(text[:at] + bytes([text[at] ^ 0x01]) + text[at + 1:])
    done = _cli_verify(folder)
    assert done.returncode == verify.REJECTED
    assert "FAIL checksums: conformance.yaml: changed: SHA-256 " in done.stdout
    assert done.stdout.rstrip().endswith("verify: REJECTED (1 findings) (exit 1)")


def _a_passed_split(report: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A passed test whose shares figure judges a split of two outcomes, each expected between 0 and 1."""
    for test in report["tests"]:
        figure = test["figures"].get("shares") or {}
        expected = (figure.get("design") or {}).get("expected") or {}
        if test["result"] == "passed" and len(expected) == 2 and all(0 < p < 1 for p in expected.values()):
            return test, figure
    raise AssertionError("no passed split in the report")


def test_a_recorded_count_changed_so_its_verdict_no_longer_follows_is_named(
        certified: Certified, tmp_path: Path) -> None:
    folder = _copy(certified, tmp_path)
    report = copy.deepcopy(certified.report)
    test, figure = _a_passed_split(report)
    first, second = figure["design"]["expected"]
    last = figure["observations"]["looks"][-1]
    total = sum(last.values())
    last.update({first: total, second: 0})  # every reply on one side of the split
    figure["observations"]["counts"] = dict(last)
    _rewrite(folder, report)
    content = verify.verify(folder, checksums=False)
    named = [f for f in content.findings if f.check == "verdicts" and f.subject == test["id"]]
    assert named and any("the recorded verdict 'passed' does not follow: figures.shares gives failed" in f.message
                         for f in named), verify.render(content)
    assert content.exit_code == verify.REJECTED and {f.check for f in content.findings} == {"verdicts"}
    whole = verify.verify(folder)  # with the checksums, the file is named too
    assert ("checksums", "conformance.yaml") in {(f.check, f.subject) for f in whole.findings}


@pytest.mark.parametrize("how", ["missing", "skipped"])
def test_a_report_missing_a_core_check_of_a_claimed_profile_fails(certified: Certified, tmp_path: Path,
                                                                   how: str) -> None:
    folder = _copy(certified, tmp_path)
    report = copy.deepcopy(certified.report)
    if how == "missing":
        report["tests"] = [t for t in report["tests"] if t["unit"] != "gateway-api-http-paths"]
    else:
        core = next(t for t in report["tests"] if t["unit"] == "gateway-api-http-paths")
        core.update({"result": "skipped", "reason": "not supported: HTTPRoute"})
    _rewrite(folder, report)
    done = _cli_verify(folder, "--no-checksums")
    assert done.returncode == verify.REJECTED, done.stdout
    assert (f"FAIL completeness: gateway-api-http-paths: a core check of claimed profile {CLAIMED} "
            f"{'is missing from the report' if how == 'missing' else 'was skipped'}") in done.stdout
    assert "checksums: skipped (--no-checksums)" in done.stdout


def test_a_submission_made_by_another_suite_is_not_judged_and_says_which_files(
        certified: Certified, monkeypatch: pytest.MonkeyPatch) -> None:
    here = digest.installed()
    changed = dict(here.files)
    changed["meshconform/conformance/test_routing.py"] = "0" * 64
    other = SuiteDigest("0.2.0", changed)
    monkeypatch.setattr(digest, "installed", lambda: other)
    found = verify.verify(certified.folder)
    assert found.exit_code == verify.OTHER_SUITE and found.other_suite
    messages = {(f.subject, f.message) for f in found.findings if f.check == "suite"}
    made_with = f"the submission was made with meshconform {here.version}; 0.2.0 is installed here"
    assert ("meshconform", made_with) in messages
    named = next(m for s, m in messages if s == "suite-digest.txt")
    recorded = certified.report["certification"]["suite"]["sha256"]
    assert f"meshconform {here.version} sha256:{recorded}" in named
    assert f"installed here: meshconform 0.2.0 sha256:{other.sha256}" in named
    assert named.endswith("1 files differ: meshconform/conformance/test_routing.py: changed")
    assert "NOT JUDGED: made by another suite" in verify.render(found)
    # The seal is judged whatever suite is installed: a changed byte is still a rejection.
    monkeypatch.setattr(submission, "file_sha256", lambda path: "1" * 64)
    assert verify.verify(certified.folder).exit_code == verify.REJECTED


def test_a_signature_by_another_key_fails(certified: Certified, tmp_path: Path) -> None:
    _, stranger = write_key(tmp_path, "stranger")
    found = verify.verify(certified.folder, key=stranger)
    assert [(f.check, f.subject) for f in found.findings] == [("signature", "SHA256SUMS.sig")]


def test_the_gateway_api_report_of_the_run_decodes_against_the_v1_6_1_types(certified: Certified) -> None:
    text = (certified.folder / "gateway-api-report.yaml").read_text()
    built = yaml.safe_load(text)
    assert schema.problems_against(built, schema.GATEWAY_API_SCHEMA) == []
    by_name = {p["name"]: p for p in built["profiles"]}
    assert by_name["GATEWAY-HTTP"]["core"]["statistics"]["Passed"] + by_name["GATEWAY-HTTP"]["core"]["statistics"][
        "Failed"] == 1
    assert sum(by_name["MESH-HTTP"]["core"]["statistics"].values()) == 2  # gateway-api-mesh-weights' two splits
    assert text.startswith("# Gateway API ConformanceReport written by meshconform")
