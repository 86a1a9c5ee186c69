"""The conformance report's HTML view: a profile summary, failures first (each leading with its reason), charts of
judged shares, evidence behind toggles. Rendered from the report's plain (already redacted) data."""

from __future__ import annotations

from typing import Any

import jinja2
import yaml

from meshconform.report import charts

# Evidence in the order a reader needs it: what was wrong with the config, the config, what was seen.
EVIDENCE_ORDER = ("platform_events", "config_warnings", "applied_config", "traffic", "proxies", "proxies_error")


def ordered_evidence(evidence: dict[str, Any]) -> list[tuple[str, Any]]:
    def rank(name: str) -> tuple[int, str]:
        return (EVIDENCE_ORDER.index(name) if name in EVIDENCE_ORDER else len(EVIDENCE_ORDER), name)
    return sorted(evidence.items(), key=lambda item: rank(item[0]))


def render(report: dict[str, Any]) -> str:
    environment = jinja2.Environment(loader=jinja2.PackageLoader("meshconform.report", "templates"),
                                     autoescape=True, undefined=jinja2.StrictUndefined)
    environment.filters["toyaml"] = lambda value: yaml.safe_dump(value, sort_keys=False, width=120)
    environment.globals["share_charts"] = charts.share_charts
    environment.globals["ordered_evidence"] = ordered_evidence
    return environment.get_template("report.html.j2").render(report=report)
