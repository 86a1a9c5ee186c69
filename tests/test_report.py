"""The conformance report: YAML shaped after the Gateway API ConformanceReport, JUnit, and HTML."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import yaml

from meshconform.report.conformance import TestResult, build, write


def _report(tmp_path: Path) -> dict:
    results = [
        TestResult("weighted-split-echo[50-50]", "split", ["WeightedRouting"], "passed", 1.5,
                   figures={"shares": {"planned": 1640}}),
        TestResult("mirror-full", "mirror <b>", ["Mirroring"], "failed", 2.0, "AssertionError: mirror saw 0 of 100",
                   evidence={"traffic": {"default/client": {"requests": 100}}}),
        TestResult("gateway-tls-simple", "tls", ["GatewayTLS"], "skipped", 0.0, "not supported: GatewayTLS"),
    ]
    report = build(results, {"organization": "acme", "project": "mesh", "url": "https://acme.example",
                             "version": "1.2", "contact": ["@acme"]},
                   {"platform": "local", "description": "reference data plane. Not Istio."},
                   {"max_time_to_consistency": 60.0}, {"max_time_to_consistency": 60.0},
                   supported={"WeightedRouting", "Mirroring"})
    write(report, tmp_path)
    return report


def test_yaml_report_has_profiles_results_and_evidence(tmp_path: Path) -> None:
    _report(tmp_path)
    report = yaml.safe_load((tmp_path / "conformance.yaml").read_text())
    assert report["kind"] == "ConformanceReport" and report["implementation"]["organization"] == "acme"
    assert report["timeoutOverrides"] == {"max_time_to_consistency": 60.0}
    [profile] = report["profiles"]
    assert profile["core"]["result"] == "failure" and profile["core"]["failedTests"] == ["mirror-full"]
    assert profile["extended"]["skippedTests"] == ["gateway-tls-simple"]
    assert "GatewayTLS" in profile["extended"]["unsupportedFeatures"]
    failed = next(t for t in report["tests"] if t["id"] == "mirror-full")
    assert failed["evidence"]["traffic"]["default/client"]["requests"] == 100
    passed = next(t for t in report["tests"] if t["id"].startswith("weighted"))
    assert "evidence" not in passed and passed["figures"]["shares"]["planned"] == 1640


def test_junit_and_html_agree_with_the_yaml(tmp_path: Path) -> None:
    _report(tmp_path)
    suite = ET.parse(tmp_path / "junit.xml").getroot().find("testsuite")
    assert suite is not None and suite.get("tests") == "3" and suite.get("failures") == "1"
    assert suite.get("skipped") == "1"
    failure = suite.find("testcase[@name='mirror-full']/failure")
    assert failure is not None and "mirror saw 0 of 100" in (failure.get("message") or "")
    page = (tmp_path / "report.html").read_text()
    assert "mirror &lt;b&gt;" in page and "mirror <b>" not in page  # escaped
    assert "Not Istio." in page and "weighted-split-echo[50-50]" in page
