"""Weighted routing (traffic shifting) and header-based routing, through echo and through Bookinfo."""

from __future__ import annotations

import pytest

from meshconform.bookinfo import pages
from meshconform.platform.api import AccessLogNotRecorded
from meshconform.stats.proportions import DEFAULT_ALPHA
from meshconform.suite.checks import bookinfo_login, outcomes, wait_for_marker
from meshconform.suite.failures import records_for
from meshconform.suite.sampling import measure_shares
from meshconform.suite.unit import chosen_by, conformance_test
from meshconform.traffic.model import Request, Response

TOLERANCE = 0.05  # a share is accepted within ±5 points; false-failure probability DEFAULT_ALPHA (1e-4)
BOOKINFO_BASE = ("bookinfo/networking/bookinfo-gateway.yaml", "bookinfo/networking/destination-rule-all.yaml")


def _reached(reply: Response) -> str:
    return f"reached {_version(reply)}"


def _version(reply: Response) -> str:
    return pages.version(reply) or f"error:{reply.status or reply.error}"


# 1-9: weights need not sum to 100 (Istio >= 1.15: each gets weight / sum), and a weight of 1 is a weight.
@pytest.mark.parametrize("weights", [(100, 0), (80, 20), (50, 50), (1, 9)], ids=lambda w: f"{w[0]}-{w[1]}")
@conformance_test("weighted-split-echo", "A VirtualService splits echo traffic between subsets by weight, each "
                  "getting weight / sum (1-9 is a 10/90 split); only the weighted subsets answer (sequential "
                  "binomial test, false-failure 1e-4, tolerance 0.05).",
                  features={"WeightedRouting"}, manifests=("routing/echo-weighted.yaml",),
                  values=lambda weights: {"v1": weights[0], "v2": weights[1]})
def test_weighted_split(weights, mesh_manifests, mesh_meshed_client, mesh_timeouts, mesh_result) -> None:
    wait_for_marker(mesh_meshed_client, Request("/probe", host="echo:8080"), mesh_manifests.marker, mesh_timeouts)
    expected = {v: w / sum(weights) for v, w in zip(("v1", "v2"), weights, strict=True) if w}
    sample = measure_shares(mesh_meshed_client, lambda i: Request(f"/split/{i}", host="echo:8080"), _version,
                            expected, DEFAULT_ALPHA, TOLERANCE)
    mesh_result.figure("shares", sample.to_json())
    assert sample.passed, sample.describe()


BOOKINFO_SHIFTS = {
    "all-v1": ("bookinfo/networking/virtual-service-all-v1.yaml", {"v1": 1.0}),
    "reviews-50-v3": ("bookinfo/networking/virtual-service-reviews-50-v3.yaml", {"v1": 0.5, "v3": 0.5}),
    "reviews-80-20": ("bookinfo/networking/virtual-service-reviews-80-20.yaml", {"v1": 0.8, "v2": 0.2}),
    "reviews-90-10": ("bookinfo/networking/virtual-service-reviews-90-10.yaml", {"v1": 0.9, "v2": 0.1}),
    "reviews-v3": ("bookinfo/networking/virtual-service-reviews-v3.yaml", {"v3": 1.0}),
}


@pytest.mark.parametrize("scenario", list(BOOKINFO_SHIFTS))
@conformance_test("bookinfo-traffic-shifting", "Istio's Bookinfo traffic-shifting configs, judged on the reviews "
                  "version named by the product page fetched through the ingress gateway.",
                  features={"WeightedRouting", "GatewayHTTP"},
                  manifests=(*BOOKINFO_BASE, chosen_by("scenario", {scenario: manifest for scenario, (manifest, _)
                                                                    in BOOKINFO_SHIFTS.items()})))
def test_bookinfo_traffic_shifting(scenario, mesh_manifests, mesh_ingress, mesh_timeouts, mesh_result) -> None:
    _, expected = BOOKINFO_SHIFTS[scenario]
    wait_for_marker(mesh_ingress, Request("/productpage"), mesh_manifests.marker, mesh_timeouts)
    sample = measure_shares(mesh_ingress, lambda i: Request("/productpage"), _version, expected, DEFAULT_ALPHA,
                            TOLERANCE, concurrency=32)
    mesh_result.figure("shares", sample.to_json())
    assert sample.passed, sample.describe()


@conformance_test("header-routing-jason", "end-user: jason goes to reviews v2, everyone else (including 'Jason') "
                  "to v1: directly from a meshed client, and for a user logged in to the product page.",
                  features={"HeaderRouting"},
                  manifests=(*BOOKINFO_BASE, "bookinfo/networking/virtual-service-all-v1.yaml",
                             "bookinfo/networking/virtual-service-reviews-test-v2.yaml"))
def test_header_routing(mesh_manifests, mesh_meshed_client, mesh_ingress, mesh_timeouts, mesh_result) -> None:
    marker = mesh_manifests.marker
    wait_for_marker(mesh_meshed_client, Request("/reviews/0", host="reviews:9080"), marker, mesh_timeouts)
    wait_for_marker(mesh_ingress, Request("/productpage"), marker, mesh_timeouts)
    # Every request must agree: 180 requests see a 5% misrouting with probability 1 - 1e-4.
    n = 180
    jason = mesh_meshed_client.send([Request("/reviews/0", host="reviews:9080", headers={"end-user": "jason"})] * n,
                                    concurrency=20)
    others = mesh_meshed_client.send([Request("/reviews/0", host="reviews:9080", headers={"end-user": "Jason"})] * n,
                                     concurrency=20)
    cookie = bookinfo_login(mesh_ingress, "jason")
    page_jason = mesh_ingress.send([Request("/productpage", headers={"cookie": cookie})] * 20)
    page_anonymous = mesh_ingress.send([Request("/productpage")] * 20)
    for name, replies in {"direct_jason": jason, "direct_other": others, "page_jason": page_jason,
                          "page_anonymous": page_anonymous}.items():
        mesh_result.figure(name, {v: sum(_version(r) == v for r in replies) for v in {_version(r) for r in replies}})
    assert {_version(r) for r in jason} == {"v2"}, \
        f"end-user jason must reach reviews v2 only: {outcomes(jason, _reached)} of {n}"
    assert {_version(r) for r in others} == {"v1"}, \
        f"end-user Jason (not an exact match) must reach reviews v1 only: {outcomes(others, _reached)} of {n}"
    assert {_version(r) for r in page_jason} == {"v2"}, \
        f"jason's product page must show reviews v2 only: {outcomes(page_jason, _reached)} of 20"
    assert {_version(r) for r in page_anonymous} == {"v1"}, \
        f"an anonymous product page must show reviews v1 only: {outcomes(page_anonymous, _reached)} of 20"


# One rule per kind of match (Istio's HTTPMatchRequest); regexes carry an example they match in full.
MATCH_RULES = [
    {"name": "header-exact", "match": {"headers": {"x-nm-exact": {"exact": "alpha"}}}},
    {"name": "header-prefix", "match": {"headers": {"x-nm-prefix": {"prefix": "beta"}}}},
    {"name": "header-regex", "match": {"headers": {"x-nm-regex": {"regex": "ga[0-9]+ma"}}}},
    {"name": "header-present", "match": {"uri": {"prefix": "/nm/present"}, "headers": {"x-nm-present": {}}}},
    {"name": "uri-exact", "match": {"uri": {"exact": "/nm/exact"}}},
    {"name": "uri-prefix", "match": {"uri": {"prefix": "/nm/prefix"}}},
    {"name": "uri-regex", "match": {"uri": {"regex": "/nm/re/[0-9]+"}}},
    {"name": "uri-nocase", "match": {"uri": {"exact": "/nm/NoCase"}, "ignoreUriCase": True}},
    {"name": "query-exact", "match": {"uri": {"prefix": "/nm/q"}, "queryParams": {"nmq": {"exact": "yes"}}}},
    {"name": "query-regex", "match": {"uri": {"prefix": "/nm/q"}, "queryParams": {"nmr": {"regex": "[a-c]+"}}}},
    {"name": "method-put", "match": {"name": "put-only", "uri": {"prefix": "/nm/method"}, "method": {"exact": "PUT"}}},
    {"name": "method-prefix", "match": {"uri": {"prefix": "/nm/mprefix"}, "method": {"prefix": "PO"}}},
    {"name": "method-regex", "match": {"uri": {"prefix": "/nm/mregex"}, "method": {"regex": "DEL[A-Z]+"}}},
    {"name": "scheme-http", "match": {"uri": {"prefix": "/nm/scheme"}, "scheme": {"exact": "http"}}},
    {"name": "without-header", "match": {"uri": {"prefix": "/nm/without"},
                                         "withoutHeaders": {"x-nm-skip": {"exact": "yes"}}}},
    {"name": "without-prefix", "match": {"uri": {"prefix": "/nm/wprefix"},
                                         "withoutHeaders": {"x-nm-skip": {"prefix": "sk"}}}},
    {"name": "without-regex", "match": {"uri": {"prefix": "/nm/wregex"},
                                        "withoutHeaders": {"x-nm-skip": {"regex": "s[0-9]+"}}}},
    {"name": "scheme-prefix", "match": {"uri": {"prefix": "/nm/sprefix"}, "scheme": {"prefix": "ht"}}},
    {"name": "scheme-regex", "match": {"uri": {"prefix": "/nm/sregex"}, "scheme": {"regex": "https?"}}},
]
REGEX_EXAMPLES = {"ga[0-9]+ma": "ga42ma", "/nm/re/[0-9]+": "/nm/re/123", "[a-c]+": "abc", "DEL[A-Z]+": "DELETE",
                  "s[0-9]+": "s42", "https?": "http"}


@conformance_test("match-near-misses", "Every kind of HTTP match (headers exact/prefix/regex/presence, uri "
                  "exact/prefix/regex, "
                  "ignoreUriCase, query parameters, method exact/prefix/regex, scheme, withoutHeaders, the port of a "
                  "host with two) gets its "
                  "matching input and its closest misses: a value that only starts or ends with the exact one, a "
                  "case variant, a path that contains a regex match without being one, a missing header; each must "
                  "take the route Istio's documented semantics pick (first match wins, else the fallback). Where "
                  "the mesh writes an access log, the caller's proxy logs each rule's own name as the route's "
                  "(HTTPRoute.name: 'logged in the access logs for requests matching this route').",
                  features={"HeaderRouting"}, manifests=("routing/echo-match-rules.yaml",),
                  values={"rules": MATCH_RULES})
def test_match_near_misses(mesh_platform, mesh_manifests, mesh_meshed_client, mesh_timeouts, mesh_result) -> None:
    from meshconform.meshapi.istio import VirtualService
    from meshconform.suite.near_miss import Probe, expect, near_misses, wrong_routes

    marker = mesh_manifests.marker
    services = [item.resource for item in mesh_manifests.rendered("routing/echo-match-rules.yaml")
                if isinstance(item.resource, VirtualService) and item.resource.metadata.name == "echo-match-rules"]
    base = Request("/nm/none", host="echo:8080")
    probes = expect([probe for rule in services[0].spec.http for match in rule.match
                     for probe in near_misses(match, base, REGEX_EXAMPLES)], services)
    # The port match: echo-ports (named after this test once applied) has ports 8080 and 9080 to the same pods.
    ports_host = mesh_manifests.name_of("Service", "echo-ports")
    probes += [Probe("port match", Request("/nm/port", host=f"{ports_host}:9080"), "port-9080"),
               Probe("the other port", Request("/nm/port", host=f"{ports_host}:8080"), "fallback")]
    wait_for_marker(mesh_meshed_client, base, marker, mesh_timeouts)
    wait_for_marker(mesh_meshed_client, Request("/probe", host=f"{ports_host}:9080"), marker, mesh_timeouts)
    wrong = wrong_routes(mesh_meshed_client, probes)
    mesh_result.figure("probes", {"sent": len(probes), "near_misses": sum(p.expected == "fallback" for p in probes),
                                  "wrong": len(wrong)})
    assert not wrong, f"{len(wrong)} of {len(probes)} match probes took the wrong route: " + "; ".join(wrong[:8])
    # The route names the caller's proxy logs: each named rule's (no match here has a name of its own to append).
    named = {p.expected: p for p in probes if p.expected != "fallback"}
    sent = {rule: reply for rule, reply in zip(named, mesh_meshed_client.send([p.request for p in named.values()]),
                                               strict=True)}
    try:
        records = records_for(mesh_platform, [("default", "client")], list(sent.values()), mesh_timeouts,
                              direction="outbound")
    except AccessLogNotRecorded as exc:
        mesh_result.figure("route_names", f"not read: {exc}")
        return
    logged = {rule: records[reply.request_id].get("route_name") for rule, reply in sent.items()}
    mesh_result.figure("route_names", logged)
    misnamed = {rule: name for rule, name in logged.items() if name != rule}
    assert not misnamed, f"the caller's proxy logged {len(misnamed)} of {len(logged)} named rules under another " \
                         f"route name (rule: logged): {misnamed}"


@conformance_test("header-operations", "Header operations of a route rule and of its destination: on the request "
                  "(as the app sees it, every header line in order) set overwrites every value the caller sent (two "
                  "lines of it give one), add appends to the caller's value (two values, the caller's first), remove "
                  "drops the caller's header; on the response (as the caller sees it) set and add add headers, add "
                  "appends to a header the app sent (x-echo-version: the app's value, then the added one), set "
                  "overwrites the app's content-type, and remove drops the app's own content-type and x-echo-version "
                  "(HTTPRoute.headers and HTTPRouteDestination.headers).",
                  features={"HeaderRouting"}, manifests=("routing/echo-header-ops.yaml",))
def test_header_operations(mesh_manifests, mesh_meshed_client, mesh_timeouts, mesh_result) -> None:
    wait_for_marker(mesh_meshed_client, Request("/probe", host="echo:8080"), mesh_manifests.marker, mesh_timeouts)
    sent = {"x-ops-set": "from-caller", "x-ops-add": "from-caller", "x-ops-remove": "from-caller",
            "x-ops-destination": "from-caller", "x-ops-destination-add": "from-caller",
            "x-ops-destination-remove": "from-caller", "x-ops-kept": "from-caller"}
    # The headers set overwrites are sent twice (a second line each): set must leave one value, not the last line.
    twice = (("x-ops-set", "from-caller-2"), ("x-ops-destination", "from-caller-2"))
    replies = mesh_meshed_client.send([Request(f"/ops/{i}", host="echo:8080", headers=sent, header_lines=twice)
                                       for i in range(10)])
    # Every value the app received of each header, however the proxy wrote them (one line joined by commas, or a
    # line each: RFC 9110 5.3), in order: `add` appends after what the caller sent.
    expected = {"x-ops-set": ["from-rule"], "x-ops-add": ["from-caller", "added"],
                "x-ops-destination": ["from-destination"], "x-ops-destination-add": ["from-caller", "added"],
                "x-ops-kept": ["from-caller"], "x-ops-remove": [], "x-ops-destination-remove": []}
    seen = [_echoed_elements(r, expected) for r in replies]
    mesh_result.figure("app_saw", seen[0])
    assert all(r.status == 200 for r in replies), [r.summary() for r in replies[:3]]
    wrong = [s for s in seen if s != expected]
    assert not wrong, f"{len(wrong)} of {len(seen)} requests reached the app with other headers: {wrong[0]}, " \
                      f"expected {expected}"
    # Response operations, as the caller sees them: content-type and x-echo-version are the app's own (shown under
    # /plain, a rule without operations); the rule removes content-type, its destination x-echo-version. Under
    # /append, the rule adds a second x-echo-version after the app's and sets content-type over the app's.
    plain = mesh_meshed_client.send([Request(f"/plain/{i}", host="echo:8080") for i in range(5)])
    app_sent = [{k.lower() for k in r.headers} for r in plain]
    assert all({"content-type", "x-echo-version"} <= names for names in app_sent), \
        f"echo's replies must carry content-type and x-echo-version for the removals to mean anything: {app_sent[0]}"
    wanted = {"x-meshconform-resp-add": "added", "x-meshconform-resp-destination": "from-destination",
              "x-meshconform-resp-destination-add": "added", "content-type": None, "x-echo-version": None}
    caller_saw = [{name: {k.lower(): v for k, v in r.headers.items()}.get(name) for name in wanted} for r in replies]
    mesh_result.figure("caller_saw", caller_saw[0])
    wrong_replies = [s for s in caller_saw if s != wanted]
    assert not wrong_replies, f"{len(wrong_replies)} of {len(caller_saw)} replies reached the caller with other " \
                              f"headers: {wrong_replies[0]}, expected {wanted}"
    appended = mesh_meshed_client.send([Request(f"/append/{i}", host="echo:8080") for i in range(10)])
    got = [{"x-echo-version": r.header_elements("x-echo-version"), "content-type": r.header_elements("content-type")}
           for r in appended]
    mesh_result.figure("caller_saw_appended", got[0])
    wrong_appended = [f"{g} from {r.version}" for g, r in zip(got, appended, strict=True)
                      if r.status != 200 or g != {"x-echo-version": [str(r.version), "appended"],
                                                  "content-type": ["text/plain"]}]
    assert not wrong_appended, (
        f"{len(wrong_appended)} of {len(appended)} replies under /append: {wrong_appended[0]}; expected x-echo-version "
        "[the app's own version, 'appended'] (add appends) and content-type ['text/plain'] (set overwrites)")


def _echoed_elements(reply: Response, names: dict[str, list[str]]) -> dict[str, list[str]] | None:
    """Each named request header's values as the echo received them, in order (None: not an echo answer)."""
    seen = reply.echoed
    return None if seen is None else {name: seen.elements(name) for name in names}
