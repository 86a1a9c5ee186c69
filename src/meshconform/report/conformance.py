"""The conformance report (shaped after the Gateway API ConformanceReport) and its HTML view."""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import yaml

from meshconform.report import junit
from meshconform.suite.features import PROFILES


@dataclass
class TestResult:
    __test__ = False  # not a pytest test class
    id: str
    description: str
    features: list[str]
    outcome: str  # passed | failed | skipped
    duration_s: float
    message: str = ""
    figures: dict[str, Any] = field(default_factory=dict)
    evidence: dict[str, Any] = field(default_factory=dict)


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
        extended = [r for r in results if r not in core and set(r.features) & (profile.core | profile.extended)]
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
                   "durationSeconds": round(r.duration_s, 3), "message": r.message[:2000],
                   "figures": r.figures, **({"evidence": r.evidence} if r.outcome == "failed" else {})}
                  for r in sorted(results, key=lambda r: r.id)],
    }


def write(report: dict[str, Any], folder: Path) -> tuple[Path, Path]:
    """conformance.yaml, junit.xml and report.html into the run's folder."""
    folder.mkdir(parents=True, exist_ok=True)
    plain = json.loads(json.dumps(report, default=str))
    yaml_path = folder / "conformance.yaml"
    yaml_path.write_text(yaml.safe_dump(plain, sort_keys=False, width=120))
    junit.write(plain, folder / "junit.xml")
    html_path = folder / "report.html"
    html_path.write_text(render_html(plain))
    return yaml_path, html_path


def render_html(report: dict[str, Any]) -> str:
    environment = jinja2.Environment(loader=jinja2.PackageLoader("meshconform.report", "templates"),
                                     autoescape=True, undefined=jinja2.StrictUndefined)
    environment.filters["toyaml"] = lambda value: yaml.safe_dump(value, sort_keys=False, width=120)
    return environment.get_template("report.html.j2").render(report=report)
