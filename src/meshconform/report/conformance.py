"""The conformance report (shaped after the Gateway API ConformanceReport) and its HTML view.

Every file is written from a redacted copy (meshconform.report.redact): whatever a test attached,
no Secret value, private key or bearer token reaches conformance.yaml, junit.xml or report.html."""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import yaml

from meshconform.report import charts, junit
from meshconform.report.redact import redact
from meshconform.suite.features import PROFILES


@dataclass
class TestResult:
    __test__ = False  # not a pytest test class
    id: str
    description: str
    features: list[str]
    outcome: str  # passed | failed | skipped
    duration_s: float
    message: str = ""  # pytest's failure text (traceback), or the skip reason
    figures: dict[str, Any] = field(default_factory=dict)
    evidence: dict[str, Any] = field(default_factory=dict)
    reason: str = ""  # one sentence: what was expected, what was observed, with counts

    def headline(self) -> str:
        """The reason, or for a failure that gave none, the last line of its failure text."""
        if self.reason or self.outcome == "passed":
            return self.reason
        lines = [line.strip().removeprefix("E").strip() for line in self.message.strip().splitlines()]
        return next((line for line in reversed(lines) if line and not line.startswith(("_", "-"))), "")


def _summary(results: list[TestResult]) -> dict[str, Any]:
    stats = {"Passed": 0, "Skipped": 0, "Failed": 0}
    for result in results:
        stats[result.outcome.capitalize()] = stats.get(result.outcome.capitalize(), 0) + 1
    verdict = "failure" if stats["Failed"] else "partial" if stats["Skipped"] else "success"
    if not results:
        verdict = "partial"
    return {"result": verdict, "statistics": stats,
            "failedTests": sorted(r.id for r in results if r.outcome == "failed"),
            "skippedTests": sorted(r.id for r in results if r.outcome == "skipped")}


def build(results: list[TestResult], implementation: dict[str, Any], under_test: dict[str, Any],
          timeouts: dict[str, Any], overrides: dict[str, Any], supported: set[str]) -> dict[str, Any]:
    profiles = []
    for profile in PROFILES.values():
        core = [r for r in results if set(r.features) & profile.core and not set(r.features) - profile.core]
        # A test counts in a profile only if all its features are the profile's (HTTPRoute is in two profiles).
        extended = [r for r in results if r not in core and set(r.features) <= profile.core | profile.extended]
        if not core and not extended and len(PROFILES) > 1:
            continue  # as the Gateway API report: the profiles this run tested, not every one known
        ext = _summary(extended)
        ext["supportedFeatures"] = sorted(profile.extended & supported)
        ext["unsupportedFeatures"] = sorted(profile.extended - supported)
        profiles.append({"name": profile.name, "core": _summary(core), "extended": ext})
    return {
        "apiVersion": "meshconform.io/v1alpha1",
        "kind": "ConformanceReport",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "mode": under_test.get("platform", "unknown"),
        "implementation": implementation,
        "underTest": under_test,
        "timeouts": timeouts,
        "timeoutOverrides": overrides,
        "profiles": profiles,
        "tests": [{"id": r.id, "description": r.description, "features": r.features, "result": r.outcome,
                   **({"reason": r.headline()} if r.outcome != "passed" else {}),
                   "durationSeconds": round(r.duration_s, 3), "message": r.message[-4000:],
                   "figures": r.figures, **({"evidence": r.evidence} if r.outcome == "failed" else {})}
                  for r in sorted(results, key=lambda r: r.id)],
    }


def write(report: dict[str, Any], folder: Path) -> tuple[Path, Path]:
    """conformance.yaml, junit.xml and report.html into the run's folder."""
    folder.mkdir(parents=True, exist_ok=True)
    plain = redact(json.loads(json.dumps(report, default=str)))
    yaml_path = folder / "conformance.yaml"
    yaml_path.write_text(yaml.safe_dump(plain, sort_keys=False, width=120))
    junit.write(plain, folder / "junit.xml")
    html_path = folder / "report.html"
    html_path.write_text(render_html(plain))
    return yaml_path, html_path


# Evidence in the order a reader needs it: what was wrong with the config, the config, what was seen.
EVIDENCE_ORDER = ("config_warnings", "applied_config", "traffic", "proxies", "proxies_error")


def ordered_evidence(evidence: dict[str, Any]) -> list[tuple[str, Any]]:
    def rank(name: str) -> tuple[int, str]:
        return (EVIDENCE_ORDER.index(name) if name in EVIDENCE_ORDER else len(EVIDENCE_ORDER), name)
    return sorted(evidence.items(), key=lambda item: rank(item[0]))


def render_html(report: dict[str, Any]) -> str:
    environment = jinja2.Environment(loader=jinja2.PackageLoader("meshconform.report", "templates"),
                                     autoescape=True, undefined=jinja2.StrictUndefined)
    environment.filters["toyaml"] = lambda value: yaml.safe_dump(value, sort_keys=False, width=120)
    environment.globals["share_charts"] = charts.share_charts
    environment.globals["ordered_evidence"] = ordered_evidence
    return environment.get_template("report.html.j2").render(report=redact(report))
