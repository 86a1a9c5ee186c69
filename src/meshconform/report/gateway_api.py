"""The same run in the Kubernetes Gateway API's own report format: a `ConformanceReport`
(gateway.networking.k8s.io/v1) for the Gateway API features this suite covers, so a vendor can take the run to
that project, filled in as that project's suite fills it in. It says, at its top and in every profile's summary,
that meshconform's checks made it, not that project's conformance suite, and which of that suite's tests each of
ours overlaps.

Written from Gateway API v1.6.1 (kubernetes-sigs/gateway-api, tag v1.6.1):
- the fields, from the types in conformance/apis/v1/ (conformancereport.go, profilereport.go, result.go,
  statistics.go); the schema that describes them is report/schema/gateway-api-conformance-report-v1.schema.json;
- which profile a test counts in, and in which part, as conformance/utils/suite/reports.go and profiles.go decide
  (a test counts in a profile when every feature it needs is one of the profile's; in its extended part when one
  of them is not a core feature; a profile is listed only once a test counted in it; extended results and the
  supported/unsupported feature lists only once an extended test counted), with the profiles' feature sets from
  conformance/utils/suite/profiles.go and pkg/features/*.go;
- the result (failure if a test failed, partial if one was skipped, else success) and summary sentence as
  reports.go builds them; the Gateway API's report names a test by its short name, this one by our test id."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

API_VERSION = "gateway.networking.k8s.io/v1"
# The Gateway API release the suite's Gateway API subset and vendored CRDs follow (meshapi/gateway_api.py,
# platform/kube/schemas/gateway-api-v1.6.1), standard channel; a cluster's own CRD bundle version, when the platform
# reports one (underTest.gateway_api.bundle_version), is used instead.
GATEWAY_API_VERSION = "v1.6.1"
GATEWAY_API_CHANNEL = "standard"
MODE = "default"  # that project's name for an implementation's default operating mode


@dataclass(frozen=True)
class UpstreamProfile:
    name: str
    core: frozenset[str]
    extended: frozenset[str]


_GATEWAY_EXTENDED = frozenset({
    "GatewayPort8080", "GatewayStaticAddresses", "GatewayHTTPListenerIsolation",
    "GatewayHTTPSListenerDetectMisdirectedRequests", "GatewayInfrastructurePropagation", "GatewayAddressEmpty",
    "GatewayBackendClientCertificate", "GatewayFrontendClientCertificateValidation",
    "GatewayFrontendClientCertificateValidationInsecureFallback", "ListenerSet"})
_HTTPROUTE_EXTENDED = frozenset({
    "HTTPRouteDestinationPortMatching", "HTTPRouteBackendRequestHeaderModification", "HTTPRouteQueryParamMatching",
    "HTTPRouteMethodMatching", "HTTPRouteResponseHeaderModification", "HTTPRoutePortRedirect",
    "HTTPRouteSchemeRedirect", "HTTPRoutePathRedirect", "HTTPRouteHostRewrite", "HTTPRoutePathRewrite",
    "HTTPRouteRequestMirror", "HTTPRouteRequestMultipleMirrors", "HTTPRouteRequestPercentageMirror",
    "HTTPRouteRequestTimeout", "HTTPRouteBackendTimeout", "HTTPRouteParentRefPort", "HTTPRouteBackendProtocolH2C",
    "HTTPRouteBackendProtocolWebSocket", "HTTPRouteNamedRouteRule", "HTTPRouteCORS", "HTTPRoute303RedirectStatusCode",
    "HTTPRoute307RedirectStatusCode", "HTTPRoute308RedirectStatusCode", "HTTPRouteRetry",
    "HTTPRouteRetryBackendTimeout", "HTTPRouteRetryConnectionError"})
_MESH_EXTENDED = frozenset({
    "MeshClusterIPMatching", "MeshConsumerRoute", "MeshHTTPRouteRewritePath", "MeshHTTPRouteSchemeRedirect",
    "MeshHTTPRouteRedirectPort", "MeshHTTPRouteRedirectPath", "MeshHTTPRouteBackendRequestHeaderModification",
    "MeshHTTPRouteQueryParamMatching", "MeshHTTPRouteNamedRouteRule"})
# The two profiles of that suite the features we check fall in (profiles.go): GATEWAY-HTTP and MESH-HTTP (GAMMA).
PROFILES = (
    UpstreamProfile("GATEWAY-HTTP", frozenset({"Gateway", "ReferenceGrant", "HTTPRoute"}),
                    _GATEWAY_EXTENDED | _HTTPROUTE_EXTENDED
                    | frozenset({"BackendTLSPolicy", "BackendTLSPolicySANValidation"})),
    UpstreamProfile("MESH-HTTP", frozenset({"Mesh", "HTTPRoute"}), _MESH_EXTENDED),
)
# In a mesh test, that suite names some HTTPRoute features with a Mesh prefix (pkg/features/mesh.go); ours carry
# the Gateway's names, so a mesh test's features are renamed before they are sorted.
MESH_NAMES = {"HTTPRouteQueryParamMatching": "MeshHTTPRouteQueryParamMatching",
              "HTTPRouteNamedRouteRule": "MeshHTTPRouteNamedRouteRule",
              "HTTPRouteBackendRequestHeaderModification": "MeshHTTPRouteBackendRequestHeaderModification"}

# Which of that suite's tests (their short names, conformance/tests/ at v1.6.1) each of our Gateway API checks
# overlaps, and how far. Every unit declaring Gateway or Mesh must be listed (tests/test_gateway_api_report.py).
CORRESPONDS: dict[str, tuple[tuple[str, ...], str]] = {
    "gateway-api-http-paths": (
        ("HTTPRouteSimpleSameNamespace", "HTTPRouteMatching", "HTTPRoutePathMatchOrder", "HTTPRouteCrossNamespace",
         "HTTPRouteHostnameIntersection", "HTTPRouteInvalidNonExistentBackendRef",
         "HTTPRouteInvalidBackendRefUnknownKind", "HTTPRouteInvalidCrossNamespaceBackendRef", "HTTPRouteWeight"),
        "path matching and its precedence, attachment across namespaces, hostname intersection; for the invalid "
        "backendRefs only the 500 the traffic gets, not the route's ResolvedRefs condition; for weights only a "
        "weight of 0"),
    "gateway-api-mesh-weights": (("MeshHTTPRouteWeight", "MeshTrafficSplit"), "a split between two backends"),
    "gateway-api-mesh-header-matches": (
        ("MeshHTTPRouteMatching", "MeshHTTPRouteQueryParamMatching", "MeshHTTPRouteNamedRule"),
        "header and query matches and a named rule; method matching too, which that suite checks only through a "
        "Gateway (HTTPRouteMethodMatching)"),
    "gateway-api-mesh-request-header-modifier": (
        ("MeshHTTPRouteRequestHeaderModifier",),
        "the request headers; the response headers too, which that suite checks only through a Gateway "
        "(HTTPRouteResponseHeaderModifier)"),
    "gateway-api-mesh-request-mirror": (
        (), "none of that suite's mesh tests: it checks mirroring only through a Gateway (HTTPRouteRequestMirror, "
            "HTTPRouteRequestPercentageMirror)"),
}
NOTICE = ("Not a run of the Gateway API conformance suite: meshconform's own checks (listed by their ids) made "
          "this, and they overlap that suite's tests only as this file's header comment says.")


def upstream_features(features: Iterable[str]) -> frozenset[str]:
    """A test's features as that suite names them (a mesh test's HTTPRoute extensions carry a Mesh prefix)."""
    names = frozenset(features)
    return frozenset(MESH_NAMES.get(f, f) for f in names) if "Mesh" in names else names


def _profiles_of(features: frozenset[str]) -> list[UpstreamProfile]:
    return [p for p in PROFILES if features <= p.core | p.extended]


@dataclass
class _Part:
    passed: int = 0
    failed: int = 0
    skipped: int = 0

    def __post_init__(self) -> None:
        self.failed_tests: list[str] = []
        self.skipped_tests: list[str] = []

    @property
    def result(self) -> str:
        return "failure" if self.failed else "partial" if self.skipped else "success"

    def summary(self) -> str:
        return {"success": "succeeded", "partial": f"partially succeeded with {self.skipped} test skips",
                "failure": f"failed with {self.failed} test failures"}[self.result]

    def add(self, test_id: str, result: str) -> None:
        if result == "passed":
            self.passed += 1
        elif result == "failed":
            self.failed += 1
            self.failed_tests.append(test_id)
        elif result == "skipped":
            self.skipped += 1
            self.skipped_tests.append(test_id)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"result": self.result,
                                "statistics": {"Passed": self.passed, "Skipped": self.skipped, "Failed": self.failed}}
        if self.skipped_tests:  # omitempty in the Go type
            data["skippedTests"] = self.skipped_tests
        if self.failed_tests:
            data["failedTests"] = self.failed_tests
        return data


def counted_tests(report: Mapping[str, Any]) -> dict[str, list[tuple[str, bool]]]:
    """Each profile of that suite, by name, with the tests of ours that count in it: (id, counts as extended)."""
    found: dict[str, list[tuple[str, bool]]] = {}
    for test in sorted(report["tests"], key=lambda t: str(t["id"])):
        features = upstream_features(test["features"])
        for profile in _profiles_of(features):
            found.setdefault(profile.name, []).append((str(test["id"]), bool(features - profile.core)))
    return found


def build(report: Mapping[str, Any]) -> dict[str, Any] | None:
    """The Gateway API ConformanceReport of a meshconform report (plain data), or None when none of its tests
    counts in a Gateway API profile."""
    counted = counted_tests(report)
    if not counted:
        return None
    results = {str(t["id"]): str(t["result"]) for t in report["tests"]}
    profiles = []
    for profile in PROFILES:
        if profile.name not in counted:
            continue
        core, extended = _Part(), _Part()
        for test_id, is_extended in counted[profile.name]:
            (extended if is_extended else core).add(test_id, results[test_id])
        has_extended = any(is_extended for _, is_extended in counted[profile.name])
        summary = f"Core tests {core.summary()}" + (f". Extended tests {extended.summary()}" if has_extended else "")
        entry: dict[str, Any] = {"name": profile.name, "summary": f"{summary}. {NOTICE}", "core": core.to_json()}
        if has_extended:
            part = extended.to_json()
            listed_supported = sorted(_declared(report, "supportedFeatures", profile) & profile.extended)
            listed_unsupported = sorted(_declared(report, "unsupportedFeatures", profile) & profile.extended)
            if listed_supported:
                part["supportedFeatures"] = listed_supported
            if listed_unsupported:
                part["unsupportedFeatures"] = listed_unsupported
            entry["extended"] = part
        profiles.append(entry)
    implementation = report.get("implementation") or {}
    gateway_api = (report.get("underTest") or {}).get("gateway_api") or {}
    version = gateway_api.get("bundle_version") if isinstance(gateway_api, Mapping) else None
    return {"apiVersion": API_VERSION, "kind": "ConformanceReport",
            "implementation": {"organization": str(implementation.get("organization", "")),
                               "project": str(implementation.get("project", "")),
                               "url": str(implementation.get("url", "")),
                               "version": str(implementation.get("version", "")),
                               "contact": [str(c) for c in implementation.get("contact") or []]},
            "date": str(report["date"]), "gatewayAPIVersion": str(version or GATEWAY_API_VERSION),
            "gatewayAPIChannel": GATEWAY_API_CHANNEL, "mode": MODE, "profiles": profiles}


def _declared(report: Mapping[str, Any], key: str, profile: UpstreamProfile) -> frozenset[str]:
    """The extended features our report's profiles list under `key` (supportedFeatures, unsupportedFeatures), as
    that suite names them in `profile` (a mesh profile's with their Mesh prefix)."""
    ours = frozenset(str(f) for part in report.get("profiles") or ()
                     for f in (part.get("extended") or {}).get(key) or ())
    return upstream_features(ours | {"Mesh"}) if "Mesh" in profile.core else ours


def header(report: Mapping[str, Any]) -> str:
    """The comment at the top of the file: who made it, that it is not that suite's run, which of that suite's tests
    each counted check overlaps, and which Gateway API checks of ours count in none of its profiles, and why."""
    suite = (report.get("certification") or {}).get("suite") or {}
    counted = {test_id for tests in counted_tests(report).values() for test_id, _ in tests}
    ours = sorted({str(t["unit"]) for t in report["tests"] if str(t["id"]) in counted})
    left_out = sorted({(str(t["unit"]), frozenset(upstream_features(t["features"]))) for t in report["tests"]
                       if str(t["id"]) not in counted and {"Gateway", "Mesh"} & set(t["features"])})
    lines = [
        f"Gateway API ConformanceReport written by meshconform {suite.get('version', '')} from its own run "
        f"({report.get('date', '')}), NOT by the Gateway API conformance suite (sigs.k8s.io/gateway-api/conformance).",
        "The fields follow that project's v1.6.1 types (conformance/apis/v1); statistics and failed/skipped tests "
        "count meshconform's checks, named by meshconform's test ids, sorted into that suite's profiles by its own "
        "rule (a check counts where every feature it needs belongs to the profile).",
        f"The full report is conformance.yaml beside this file (platform: "
        f"{(report.get('underTest') or {}).get('platform', '')}).",
        "Which of that suite's tests each counted check overlaps:"]
    for unit in ours:
        tests, how = CORRESPONDS.get(unit, ((), "not mapped"))
        lines.append(f"  {unit}: {', '.join(tests) or 'none'} ({how})")
    if left_out:
        lines.append("Gateway API checks of meshconform's that count in none of that suite's profiles (a feature "
                     "they need is not one of the profile's there), so not in this file:")
        for unit, features in left_out:
            home = PROFILES[1] if "Mesh" in features else PROFILES[0]  # MESH-HTTP for a mesh check
            outside = sorted(features - home.core - home.extended)
            tests, how = CORRESPONDS.get(unit, ((), "not mapped"))
            lines.append(f"  {unit}: needs {', '.join(outside)}, not a feature of {home.name} there; it overlaps "
                         f"{', '.join(tests) or 'none'} ({how})")
    return "".join(f"# {line}\n" for line in lines)


def render(report: Mapping[str, Any]) -> str:
    """The file's text: the header comment, then the ConformanceReport as YAML ("" when none applies)."""
    built = build(report)
    if built is None:
        return ""
    return header(report) + yaml.safe_dump(built, sort_keys=False, width=120)
