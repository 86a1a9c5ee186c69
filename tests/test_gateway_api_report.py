"""The Gateway API ConformanceReport a certification run writes beside its own (report/gateway_api.py): decoded
against that project's v1.6.1 types, as report/schema/gateway-api-conformance-report-v1.schema.json describes them
(the field names and required fields of conformance/apis/v1/*.go; unknown fields refused, as a strict decoder
refuses them), filled in as that project's suite fills it in (conformance/utils/suite/reports.go: which profile and
part a test counts in, results, summaries), and saying plainly it is not that suite's run."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from meshconform.report import gateway_api, schema
from meshconform.report.model import build
from meshconform.suite.features import profiles
from tests.test_report import result

IMPLEMENTATION = {"organization": "acme", "project": "acme-mesh", "url": "https://acme.example", "version": "2.4.1",
                  "contact": ["@acme/mesh"]}


def _report(exempt: frozenset[str] = frozenset()) -> dict[str, Any]:
    results = [
        result("gateway-api-http-paths", "paths", ["Gateway", "HTTPRoute"], "passed", 1.0),
        result("gateway-api-mesh-weights[80-20]", "w", ["Mesh", "HTTPRoute"], "passed", 1.0),
        result("gateway-api-mesh-weights[50-50]", "w", ["Mesh", "HTTPRoute"], "failed", 1.0, "E: off", reason="off"),
        # That suite's MESH-HTTP has no HTTPRouteMethodMatching: counted nowhere there.
        result("gateway-api-mesh-header-matches", "h", ["Mesh", "HTTPRoute", "HTTPRouteMethodMatching",
                                                        "HTTPRouteQueryParamMatching"], "passed", 1.0),
        # Query matching alone on a mesh route is that suite's MeshHTTPRouteQueryParamMatching: extended there.
        result("mesh-query", "q", ["Mesh", "HTTPRoute", "HTTPRouteQueryParamMatching"], "skipped", 0.0,
               "not supported: HTTPRouteQueryParamMatching"),
        result("weighted-split-echo[80-20]", "istio api", ["WeightedRouting"], "passed", 1.0),  # not Gateway API
    ]
    every = set().union(*(p.core | p.extended for p in profiles().values()))
    return build(results, IMPLEMENTATION, {"platform": "cluster", "gateway_api": {"bundle_version": "v1.6.1"}},
                 {}, {}, supported=every - exempt, profiles=list(profiles().values())).to_json()


def test_it_is_filled_in_as_that_suites_reports_are() -> None:
    built = gateway_api.build(_report(frozenset({"HTTPRouteQueryParamMatching"})))
    assert built is not None
    assert (built["apiVersion"], built["kind"], built["mode"]) == ("gateway.networking.k8s.io/v1",
                                                                   "ConformanceReport", "default")
    assert built["implementation"] == IMPLEMENTATION
    assert (built["gatewayAPIVersion"], built["gatewayAPIChannel"]) == ("v1.6.1", "standard")
    by_name = {p["name"]: p for p in built["profiles"]}
    assert list(by_name) == ["GATEWAY-HTTP", "MESH-HTTP"]
    gateway, mesh = by_name["GATEWAY-HTTP"], by_name["MESH-HTTP"]
    assert gateway["core"] == {"result": "success", "statistics": {"Passed": 1, "Skipped": 0, "Failed": 0}}
    assert "extended" not in gateway  # no extended test counted: left out, as reports.go leaves it
    assert mesh["core"] == {"result": "failure", "statistics": {"Passed": 1, "Skipped": 0, "Failed": 1},
                            "failedTests": ["gateway-api-mesh-weights[50-50]"]}
    assert mesh["extended"] == {"result": "partial", "statistics": {"Passed": 0, "Skipped": 1, "Failed": 0},
                                "skippedTests": ["mesh-query"],
                                "supportedFeatures": ["MeshHTTPRouteNamedRouteRule"],
                                "unsupportedFeatures": ["MeshHTTPRouteQueryParamMatching"]}
    assert mesh["summary"].startswith("Core tests failed with 1 test failures. Extended tests partially succeeded "
                                      "with 1 test skips. Not a run of the Gateway API conformance suite")


def test_it_decodes_against_the_v1_6_1_types() -> None:
    text = gateway_api.render(_report())
    assert schema.problems_against(yaml.safe_load(text), schema.GATEWAY_API_SCHEMA) == []


@pytest.mark.parametrize(("change", "where"), [
    (lambda r: r.pop("gatewayAPIChannel"), "'gatewayAPIChannel' is a required property"),
    (lambda r: r.pop("mode"), "'mode' is a required property"),
    (lambda r: r["implementation"].pop("contact"), "implementation: 'contact' is a required property"),
    (lambda r: r["implementation"].update({"version": ""}), "implementation.version"),
    (lambda r: r["profiles"][0]["core"].pop("statistics"), "'statistics' is a required property"),
    (lambda r: r["profiles"][0]["core"]["statistics"].update({"passed": 1}), "('passed' was unexpected)"),
    (lambda r: r.update({"tests": []}), "('tests' was unexpected)"),
    (lambda r: r["profiles"][0]["core"].update({"result": "passed"}), "'passed' is not one of"),
    (lambda r: r.update({"gatewayAPIChannel": "beta"}), "'beta' is not one of ['standard', 'experimental']"),
])
def test_the_type_description_refuses_what_the_types_would(change: Any, where: str) -> None:
    """Required fields (no omitempty in the Go types), the Go field names of Statistics (no JSON tags), no unknown
    field, the Result values, and the submitted reports' rules (channel, non-empty implementation)."""
    built = gateway_api.build(_report())
    assert built is not None
    changed = copy.deepcopy(built)
    change(changed)
    found = schema.problems_against(changed, schema.GATEWAY_API_SCHEMA)
    assert any(where in problem for problem in found), found


def test_it_says_it_is_not_that_suites_run_and_what_ours_overlap() -> None:
    text = gateway_api.render(_report())
    head = [line for line in text.splitlines() if line.startswith("#")]
    assert "NOT by the Gateway API conformance suite" in head[0]
    assert any("gateway-api-mesh-weights: MeshHTTPRouteWeight, MeshTrafficSplit" in line for line in head)
    assert any("gateway-api-mesh-header-matches: needs HTTPRouteMethodMatching, not a feature of MESH-HTTP there"
               in line for line in head)
    assert "weighted-split-echo" not in text  # an Istio-API check is no Gateway API test


def test_no_gateway_api_test_no_file() -> None:
    report = _report()
    report["tests"] = [t for t in report["tests"] if t["unit"] == "weighted-split-echo"]
    assert gateway_api.build(report) is None and gateway_api.render(report) == ""


def test_every_gateway_api_check_of_ours_says_what_it_overlaps() -> None:
    import meshconform.conformance.test_gateway_api  # noqa: F401  (registers its units)
    from meshconform.suite.unit import REGISTRY
    ours = {unit.id for unit in REGISTRY.values() if unit.features & {"Gateway", "Mesh"}}
    assert ours and ours <= set(gateway_api.CORRESPONDS), ours - set(gateway_api.CORRESPONDS)
