"""Selecting what runs, and what the report says about it: exempt features are 'not supported', not
failed; overrides and the vendor's implementation block are recorded; a misspelt name is an error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from meshconform import conformance

FOLDER = str(Path(conformance.__file__).parent)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest", FOLDER, "-q", "-p", "no:cacheprovider",
                           "--import-mode=importlib", *args], capture_output=True, text=True, timeout=300)


def test_exempt_features_are_reported_as_not_supported(tmp_path: Path) -> None:
    run = _run("--mesh-run-test=fault-delay", "--mesh-run-test=gateway-tls-simple",
               "--mesh-exempt-features=FaultDelay,GatewayTLS", "--mesh-timeout=max_time_to_consistency=45",
               "--mesh-implementation=organization=acme,project=acme-mesh,version=1.2,contact=@a;@b",
               f"--mesh-report-dir={tmp_path}")
    assert run.returncode == 0, run.stdout[-2000:]
    report = yaml.safe_load((tmp_path / "conformance.yaml").read_text())
    results = {t["id"]: t for t in report["tests"]}
    assert set(results) == {"fault-delay", "gateway-tls-simple"}
    assert all(t["result"] == "skipped" for t in results.values())
    assert "not supported: FaultDelay" in results["fault-delay"]["message"]
    assert results["fault-delay"]["reason"] == "not supported: FaultDelay"  # was "Skipped: not supported: ..."
    [profile] = report["profiles"]
    assert profile["core"]["result"] == "partial" and profile["core"]["skippedTests"] == ["fault-delay"]
    assert "GatewayTLS" in profile["extended"]["unsupportedFeatures"]
    assert report["timeoutOverrides"] == {"max_time_to_consistency": 45.0}
    assert report["implementation"] == {"organization": "acme", "project": "acme-mesh", "version": "1.2",
                                        "contact": ["@a", "@b"]}
    assert (tmp_path / "junit.xml").exists() and (tmp_path / "report.html").exists()
    assert not list(tmp_path.glob("platform-*")), "no test ran, so no platform should have started"


def test_skip_test_and_profile_narrow_the_collection() -> None:
    run = _run("--collect-only", "--mesh-skip-test=weighted-split-echo", "--mesh-profile=MESH-HTTP")
    assert run.returncode == 0, run.stdout[-2000:]
    assert "test_weighted_split" not in run.stdout and "test_header_routing" in run.stdout


@pytest.mark.parametrize(("option", "words"), [
    ("--mesh-profile=MESH-TCP", "--mesh-profile: unknown MESH-TCP"),
    ("--mesh-exempt-features=Faults", "--mesh-exempt-features: unknown Faults"),
    ("--mesh-misbehave=weights-skwed", "--mesh-misbehave: unknown weights-skwed"),
    ("--mesh-timeout=max_time=3", "--mesh-timeout: unknown timeout 'max_time'"),
    ("--mesh-implementation=company=acme", "--mesh-implementation: 'company=acme'"),
    ("--mesh-run-test=fault-abrot", "no collected conformance test has id fault-abrot"),
])
def test_misspelt_names_are_errors(option: str, words: str) -> None:
    run = _run("--collect-only", option)
    assert run.returncode == 4, run.stdout[-1000:] + run.stderr[-1000:]  # pytest's usage error
    assert words in run.stderr + run.stdout


@pytest.mark.parametrize(("pair", "words"), [
    ("max_time_to_consistency=abc", "max_time_to_consistency='abc': not a number of seconds above 0"),
    ("max_time_to_consistency", "max_time_to_consistency='': not a number of seconds above 0"),
    ("max_time_to_consistency=0", "not a number of seconds above 0"),
    ("request_timeout=-5", "not a number of seconds above 0"),
    ("poll_interval=nan", "not a number of seconds above 0"),
    ("turn_wait=inf", "not a number of seconds above 0"),
    ("required_consecutive_successes=2.5", "required_consecutive_successes='2.5': not a whole number of 1 or more"),
    ("required_consecutive_successes=0", "not a whole number of 1 or more"),
])
def test_a_timeout_override_that_is_not_a_duration_is_named(pair: str, words: str) -> None:
    """'--mesh-timeout max_time_to_consistency=abc' said only "could not convert string to float: 'abc'"; 0, a
    negative, inf or nan were taken (a wait over before it began, or one never ending)."""
    from meshconform.suite.timeouts import Timeouts
    with pytest.raises(ValueError) as refused:
        Timeouts().with_overrides([pair])
    assert words in str(refused.value)
    assert Timeouts().with_overrides(["max_time_to_consistency=60", "required_consecutive_successes=5"])[1] == {
        "max_time_to_consistency": 60.0, "required_consecutive_successes": 5}
