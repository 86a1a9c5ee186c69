"""The Kubernetes Gateway API (gateway.networking.k8s.io/v1): a Gateway and HTTPRoute for ingress, and HTTPRoutes whose
parent is a Service for routing inside the mesh (GAMMA). Features are named as the Gateway API conformance suite names
them (pkg/features), so this report reads beside that suite's; the semantics are the Gateway API spec's (HTTPRoute
reference: segment-based PathPrefix, rule precedence, weights, header matches, filters) as Istio implements them."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import pytest

from meshconform.stats.proportions import DEFAULT_ALPHA, acceptance_region, binomial_cdf
from meshconform.suite.checks import copies_keep_host, new_marker, outcomes, wait_for_marker
from meshconform.suite.convergence import await_settled, under_way
from meshconform.suite.failures import GATEWAY, failed_as, log_outcomes, records_for
from meshconform.suite.sampling import measure_counted, measure_shares
from meshconform.suite.unit import conformance_test
from meshconform.traffic.model import Request, Response

TOLERANCE = 0.05  # as the Istio-API weight tests: a share within ±5 points, false-failure DEFAULT_ALPHA (1e-4)
# Deterministic routing is judged by agreement: each probe is sent REPEATS times and every reply must agree.
# Over a test's 8+ probes that is 40+ requests per expected route; one misrouted request fails the test.
REPEATS = 5


def _where(reply: Response) -> str:
    """Which backend answered (echo's version), or how the request ended."""
    if reply.status == 200 and reply.version:
        return str(reply.version)
    return f"status {reply.status}" if reply.status is not None else f"error {reply.error}"


# ---------------------------------------------------------------- ingress: Gateway + HTTPRoute

ZONE = "gwapi.example.com"  # gateway-api-http-paths' own domain
# (path, where the Gateway API spec sends it): PathPrefix /prefix -> v1; Exact /exact and PathPrefix /prefix/v2/ -> v2.
INGRESS_PROBES = [
    ("/prefix", "v1"), ("/prefix/", "v1"), ("/prefix/a/b?q=1", "v1"),
    ("/prefixed", "status 404"),           # PathPrefix matches whole segments: /prefix never takes /prefixed
    ("/prefix/v2", "v2"), ("/prefix/v2/x", "v2"),  # the longer prefix wins though its rule comes later
    ("/prefix/v2x", "v1"),                 # ... but /prefix/v2 is not a segment of /prefix/v2x
    ("/exact", "v2"),  # Exact wins over an earlier rule's RegularExpression that takes the same path (precedence)
    ("/exact/", "status 404"), ("/exactly", "status 404"),
    ("/", "status 404"),
    ("/missing-backend", "status 500"),    # a backendRef to a Service that does not exist: 500, not 404 or 503
    ("/other-kind", "status 500"),         # a backendRef of another group and kind (InvalidKind): 500
    ("/other-namespace", "status 500"),    # a Service in another namespace without a ReferenceGrant: 500
    ("/zero-weight-only", "status 500"),   # its only backend has weight 0: no backend to send to, 500
]
# A rule of echo v1 at weight 1 and echo v2 at weight 0: v2 gets nothing. A mesh taking weight 0 for the default 1
# sends half to v2, and passes ZERO_WEIGHT_REPEATS requests with probability 2^-20 (< 1e-6).
ZERO_WEIGHT_REPEATS = 20
# A rule of echo v1 and a missing Service at equal weights: "if two backends are specified with equal weights, and one
# is invalid, 50 percent of traffic MUST receive a 500" (HTTPRouteRule backendRefs). Of HALF_INVALID_REPEATS requests
# the count of 500s must fall in the binomial(n, 1/2) acceptance region at DEFAULT_ALPHA: a conforming mesh fails with
# probability < 1e-4; a mesh that drops the invalid backend (no 500) or fails the whole rule (all 500) never passes,
# one answering 500 to 10 % (or 90 %) of the requests passes with probability < 1e-3 (figures recorded with the result).
HALF_INVALID_REPEATS = 60


@conformance_test("gateway-api-http-paths", "A Gateway (class istio, one HTTP listener for *.zone) and an HTTPRoute "
                  "for one hostname in it: PathPrefix matches whole path segments (/prefix takes /prefix and "
                  "/prefix/a, never /prefixed; a trailing slash in the prefix is ignored), Exact the whole path and "
                  "wins over an earlier rule's RegularExpression for it, "
                  "the longest prefix wins over an earlier shorter one; other paths and other hostnames get the "
                  "gateway's own 404 (NR); a rule whose backend Service does not exist, whose backend is of another "
                  "kind, or is a Service in another namespace that grants no reference (no ReferenceGrant) answers "
                  "500, as does a rule whose only backend has weight 0; a backend of weight 0 beside one of weight 1 "
                  f"gets none of {ZERO_WEIGHT_REPEATS} requests; a missing backend beside a valid one at equal weights "
                  f"answers 500 to half the requests (of {HALF_INVALID_REPEATS}, a count of 500s within the binomial "
                  "acceptance region, false-failure 1e-4), the rest reach the valid one; a route in another "
                  "namespace attaches, by its parentRef's namespace, to a listener admitting all namespaces, and not "
                  "to one admitting its own (the default, Same); a parentRef naming port 80 attaches, one naming a "
                  "port no listener has does not; on a listener for one host, a "
                  "route for a wider wildcard serves that host only, and a route whose hostnames do not match the "
                  "listener's is not accepted; on a listener naming no host, a route serves its own hostnames and no "
                  "other.",
                  features={"Gateway", "HTTPRoute"}, manifests=("gateway-api/echo-paths.yaml",),
                  values={"host": f"paths.{ZONE}", "zone": ZONE})
def test_gateway_api_http_paths(mesh_platform, mesh_manifests, mesh_ingress, mesh_timeouts, mesh_result) -> None:
    zone = ZONE
    host = f"paths.{zone}"
    wait_for_marker(mesh_ingress, Request("/prefix/probe", host=host), mesh_manifests.marker, mesh_timeouts)
    hosts = {"": host, "other-host": f"unbound.{zone}", "one-host": f"one.{zone}", "free-host": f"free.{zone}-other",
             "same-host": f"same.{zone}", "port-80": f"port80.{zone}", "port-8080": f"port8080.{zone}"}
    probes = [(path, expected) for path, expected in INGRESS_PROBES] + [
        ("/prefix other-host", "status 404"),  # in the listener's *.<zone>, not among the route's hostnames
        ("/wider one-host", "v2"),             # a route for *.<zone> on the listener for one.<zone> serves it...
        ("/wider other-host", "status 404"),   # ... and only it: the intersection, not the route's *.<zone>
        ("/stray one-host", "status 404"),     # a route whose hostnames the listener's does not match: not accepted
        ("/free free-host", "v1"),             # on a listener naming no host, a route serves its own hostnames...
        ("/free other-host", "status 404"),    # ... and no other
        ("/from-optin same-host", "status 404"),  # a route of optin on a listener admitting its own namespace only
        ("/by-port port-80", "v1"),            # a parentRef naming port 80 attaches to the listeners on it...
        ("/by-port port-8080", "status 404"),  # ... one naming a port no listener has attaches nowhere
    ]
    requests = [Request(path.partition(" ")[0], host=hosts[path.partition(" ")[2]])
                for path, _ in probes for _ in range(REPEATS)]
    replies = mesh_ingress.send(requests)
    zero_weight = mesh_ingress.send([Request(f"/zero-weight?i={i}", host=host) for i in range(ZERO_WEIGHT_REPEATS)])
    seen: dict[str, Counter[str]] = {}
    for (path, _), index in zip(probes, range(0, len(replies), REPEATS), strict=True):
        seen[path] = Counter(_where(r) for r in replies[index:index + REPEATS])
    mesh_result.figure("routes", {path: dict(counts) for path, counts in seen.items()})
    wrong = [f"{path}: expected {expected}, saw {dict(seen[path])}" for path, expected in probes
             if set(seen[path]) != {expected}]
    assert not wrong, f"{len(wrong)} of {len(probes)} paths took the wrong route ({REPEATS} requests each): " + \
        "; ".join(wrong)
    mesh_result.figure("zero_weight", outcomes(zero_weight, _where))
    assert all(_where(r) == "v1" for r in zero_weight), (
        f"/zero-weight (echo v1 weight 1, echo v2 weight 0): {outcomes(zero_weight, _where)}; a backend of weight 0 "
        "gets no traffic")
    _half_invalid(mesh_ingress, host, mesh_result)
    # A route in namespace optin attached by its parentRef's namespace to the listener admitting all namespaces.
    optin = mesh_ingress.send([Request(f"/from-optin/{i}", host=f"optin.all.{zone}") for i in range(REPEATS)])
    mesh_result.figure("optin_route", outcomes(optin, lambda r: f"answered {r.status} from "
                                                                f"{(r.json() or {}).get('namespace')}"))
    assert all(r.status == 200 and (r.json() or {}).get("namespace") == "optin" for r in optin), \
        "a route in namespace optin whose parentRef names the Gateway's namespace must reach optin's echo: " + \
        outcomes(optin, lambda r: f"answered {r.status} from {(r.json() or {}).get('namespace')}")
    # The 404s must be the gateway's own "no route" (NR), not a backend's 404 passed through.
    not_found = [r for r in replies if r.status == 404]
    records = records_for(mesh_platform, [GATEWAY], not_found, mesh_timeouts, direction="gateway")
    mesh_result.figure("gateway_log", dict(log_outcomes(records)))
    assert not failed_as(records, 404, "NR"), f"the 404s were not the gateway's no-route: {dict(log_outcomes(records))}"


def _half_invalid(ingress, host: str, result) -> None:
    """/half-invalid: echo v1 and a missing Service at equal weights; about half the requests answer 500."""
    replies = ingress.send([Request(f"/half-invalid?i={i}", host=host) for i in range(HALF_INVALID_REPEATS)])
    seen = Counter(_where(r) for r in replies)
    low, high = acceptance_region(HALF_INVALID_REPEATS, 0.5, DEFAULT_ALPHA)
    errors = seen["status 500"]
    result.figure("half_invalid", {"answers": dict(seen), "accepted_500s": [low, high],
                                   "conforming_fails": DEFAULT_ALPHA,
                                   "passes_at_10_percent": binomial_cdf(high, HALF_INVALID_REPEATS, 0.1)
                                                           - binomial_cdf(low - 1, HALF_INVALID_REPEATS, 0.1)})
    assert set(seen) <= {"v1", "status 500"}, (
        f"/half-invalid (echo v1 and a missing Service, equal weights) answered other than v1 or 500: {dict(seen)}")
    assert low <= errors <= high, (
        f"/half-invalid (echo v1 and a missing Service, equal weights): {errors} of {HALF_INVALID_REPEATS} requests "
        f"answered 500, outside [{low}, {high}]; the spec sends the invalid backend's half to 500 "
        f"({'none did: the invalid backend was dropped' if errors == 0 else dict(seen)})")


# ---------------------------------------------------------------- mesh (GAMMA): HTTPRoute on a Service

@pytest.mark.parametrize("weights", [(80, 20), (50, 50)], ids=lambda w: f"{w[0]}-{w[1]}")
@conformance_test("gateway-api-mesh-weights", "An HTTPRoute whose parent is the echo Service splits the mesh's "
                  "traffic to it between two backend Services (echo v1 and v2) by backendRef weight; only they "
                  "answer (sequential binomial test, false-failure 1e-4, tolerance 0.05).",
                  features={"Mesh", "HTTPRoute"}, manifests=("gateway-api/echo-mesh-weights.yaml",),
                  values=lambda weights: {"v1": weights[0], "v2": weights[1]})
def test_gateway_api_mesh_weights(weights, mesh_manifests, mesh_meshed_client, mesh_timeouts, mesh_result) -> None:
    wait_for_marker(mesh_meshed_client, Request("/probe", host="echo:8080"), mesh_manifests.marker, mesh_timeouts)
    expected = {v: w / sum(weights) for v, w in zip(("v1", "v2"), weights, strict=True) if w}
    sample = measure_shares(mesh_meshed_client, lambda i: Request(f"/split/{i}", host="echo:8080"), _where,
                            expected, DEFAULT_ALPHA, TOLERANCE)
    mesh_result.figure("shares", sample.to_json())
    assert sample.passed, sample.describe()


# (headers sent, where the route sends them): Exact and RegularExpression header matches to v2, else v1.
HEADER_PROBES: list[tuple[dict[str, str], str]] = [
    ({"x-route": "canary"}, "v2"), ({"X-Route": "canary"}, "v2"),  # header names are case-insensitive
    ({"x-route": "Canary"}, "v1"), ({"x-route": "canary-1"}, "v1"), ({"x-route": "my-canary"}, "v1"),
    ({"x-tier": "gold-42"}, "v2"), ({"x-tier": "gold-42x"}, "v1"),  # a regex must match the whole value
    ({"x-tier": "old-gold-42"}, "v1"), ({}, "v1"),
]
# (method, query string, where the route sends it): method PATCH, query lane=fast (Exact, case-sensitive value) and
# tier~gold-[0-9]+ (RegularExpression, whole value) to v2; their closest misses to v1.
METHOD_QUERY_PROBES: list[tuple[str, str, str]] = [
    ("PATCH", "", "v2"), ("POST", "", "v1"), ("PUT", "", "v1"),
    ("GET", "?lane=fast", "v2"), ("GET", "?x=1&lane=fast", "v2"), ("GET", "?lane=fastx", "v1"),
    ("GET", "?lane=Fast", "v1"), ("GET", "?lane=", "v1"), ("GET", "?plane=fast", "v1"),
    ("GET", "?tier=gold-7", "v2"), ("GET", "?tier=gold-7x", "v1"), ("GET", "?tier=old-gold-7", "v1"),
]
HEADER_REPEATS = 20  # 9 probes x 20: a 5 % misrouting of any one probe escapes with probability 0.95^20 = 0.36,
# of the whole set of misrouting inputs far less; a misbehaving match misroutes all requests of its probe.


@conformance_test("gateway-api-mesh-header-matches", "An HTTPRoute on the echo Service sends requests with header "
                  "x-route: canary (Exact; the name case-insensitive) or x-tier matching gold-[0-9]+ "
                  "(RegularExpression, whole value), with method PATCH, or with query parameter lane=fast (Exact) "
                  "or tier matching gold-[0-9]+ (RegularExpression) to echo v2 (the latter in a named rule) and "
                  "everything else to echo v1; the closest misses (a case variant, a longer value, a partial regex "
                  "match, no header, another method, another parameter name) go to v1.",
                  features={"Mesh", "HTTPRoute", "HTTPRouteMethodMatching", "HTTPRouteQueryParamMatching",
                            "HTTPRouteNamedRouteRule"}, manifests=("gateway-api/echo-mesh-headers.yaml",))
def test_gateway_api_mesh_header_matches(mesh_manifests, mesh_meshed_client, mesh_timeouts, mesh_result) -> None:
    wait_for_marker(mesh_meshed_client, Request("/probe", host="echo:8080"), mesh_manifests.marker, mesh_timeouts)
    probes = [(str(headers or "no header"), Request("/h/{i}", host="echo:8080", headers=headers), expected)
              for headers, expected in HEADER_PROBES]
    probes += [(f"{method} /h{query}", Request("/h/{i}" + query, host="echo:8080", method=method), expected)
               for method, query, expected in METHOD_QUERY_PROBES]
    requests = [replace(request, path=request.path.replace("{i}", str(i)))
                for _, request, _ in probes for i in range(HEADER_REPEATS)]
    replies = mesh_meshed_client.send(requests, concurrency=20)
    wrong, seen = [], {}
    for n, (name, _, expected) in enumerate(probes):
        counts = Counter(_where(r) for r in replies[n * HEADER_REPEATS:(n + 1) * HEADER_REPEATS])
        seen[name] = dict(counts)
        if set(counts) != {expected}:
            wrong.append(f"{name}: expected {expected}, saw {dict(counts)}")
    mesh_result.figure("routes", seen)
    assert not wrong, f"{len(wrong)} of {len(probes)} probes took the wrong route " \
                      f"({HEADER_REPEATS} requests each): " + "; ".join(wrong)


@conformance_test("gateway-api-mesh-request-header-modifier", "An HTTPRoute on the echo Service with a "
                  "RequestHeaderModifier filter: set overwrites every value the caller sent (two lines give one), add "
                  "appends to the caller's value and adds a header the caller did not send, remove drops the "
                  "caller's header; headers it does not name pass unchanged (as the app sees them, every line). Its "
                  "ResponseHeaderModifier sets and adds headers and removes the app's own x-echo-version (as the "
                  "caller sees the reply).",
                  features={"Mesh", "HTTPRoute", "HTTPRouteResponseHeaderModification"},
                  manifests=("gateway-api/echo-mesh-header-modifier.yaml",))
def test_gateway_api_mesh_request_header_modifier(mesh_manifests, mesh_meshed_client, mesh_timeouts,
                                                  mesh_result) -> None:
    wait_for_marker(mesh_meshed_client, Request("/probe", host="echo:8080"), mesh_manifests.marker, mesh_timeouts)
    sent = {"x-gw-set": "from-caller", "x-gw-append": "from-caller", "x-gw-remove": "from-caller",
            "x-gw-kept": "from-caller"}
    twice = (("x-gw-set", "from-caller-2"),)  # a second line: set leaves one value, not the last line
    replies = mesh_meshed_client.send([Request(f"/mod/{i}", host="echo:8080", headers=sent, header_lines=twice)
                                       for i in range(20)])
    # HTTPHeaderFilter: "Add ... appends to any existing values" (my-header: foo -> foo,bar), "Set overwrites".
    expected = {"x-gw-set": ["from-route"], "x-gw-add": ["added"], "x-gw-append": ["from-caller", "added"],
                "x-gw-remove": [], "x-gw-kept": ["from-caller"]}
    seen = [None if r.echoed is None else {name: r.echoed.elements(name) for name in expected} for r in replies]
    mesh_result.figure("app_saw", seen[0])
    assert all(r.status == 200 for r in replies), f"requests failed: {outcomes(replies, _where)} of {len(replies)}"
    wrong = [s for s in seen if s != expected]
    assert not wrong, f"{len(wrong)} of {len(seen)} requests reached the app with other headers: {wrong[0]}, " \
                      f"expected {expected}"
    plain = mesh_meshed_client.send([Request(f"/plain/{i}", host="echo:8080") for i in range(5)])
    assert all("x-echo-version" in {k.lower() for k in r.headers} for r in plain), \
        f"echo's replies must carry x-echo-version for its removal to mean anything: {plain[0].headers}"
    wanted = {"x-meshconform-gw-set": "from-route", "x-meshconform-gw-add": "added", "x-echo-version": None}
    caller_saw = [{name: {k.lower(): v for k, v in r.headers.items()}.get(name) for name in wanted} for r in replies]
    mesh_result.figure("caller_saw", caller_saw[0])
    wrong = [s for s in caller_saw if s != wanted]
    assert not wrong, f"{len(wrong)} of {len(caller_saw)} replies reached the caller with other headers: " \
                      f"{wrong[0]}, expected {wanted}"


MIRROR_TOLERANCE = 0.1  # as the Istio-API mirror-fraction check: ±0.1, false-failure DEFAULT_ALPHA (1e-4)


@conformance_test("gateway-api-mesh-request-mirror", "An HTTPRoute on the echo Service with a RequestMirror filter "
                  "(fraction 1/2) to echo-mirror: the share of request ids reaching the mirror is 0.5 (tolerance "
                  "0.1, false-failure 1e-4), each copy with the request's own Host (echo:8080); under /unmirrored "
                  "(percent 0) none reaches it; callers see only echo's own answers although the mirror answers 500.",
                  features={"Mesh", "HTTPRoute", "HTTPRouteRequestMirror", "HTTPRouteRequestPercentageMirror",
                            "HTTPRouteNamedRouteRule"},
                  manifests=("gateway-api/echo-mesh-mirror.yaml",))
def test_gateway_api_mesh_request_mirror(mesh_platform, mesh_manifests, mesh_meshed_client, mesh_timeouts,
                                         mesh_result) -> None:
    wait_for_marker(mesh_meshed_client, Request("/probe", host="echo:8080"), mesh_manifests.marker, mesh_timeouts)
    path = f"/{new_marker('gwapi-mirror')}"  # a path of its own: no other traffic can be counted
    replies: list[Response] = []

    def mirrored_ids(prefix: str = path) -> set[str]:
        return {rec["request_id"] for rec in mesh_platform.request_log("default", "echo-mirror")
                if rec["path"].startswith(prefix)}
    mirror_side = [("default", "client"), ("default", "echo-mirror")]  # where copies are under way

    def send_batch(first: int, size: int) -> dict[str, int]:
        batch = mesh_meshed_client.send([Request(f"{path}/{i}", host="echo:8080") for i in range(first, first + size)],
                                        concurrency=20)
        replies.extend(batch)
        wanted = {r.request_id for r in batch}
        # Copies leave with their primaries, which have all completed: the count is final once none is under way.
        mirrored = await_settled(lambda: len(wanted & mirrored_ids()), mesh_timeouts,
                                 "the mirror's request count to settle", watch=under_way(mesh_platform, mirror_side,
                                                                                        wanted))
        return {"mirrored": mirrored, "not_mirrored": size - mirrored}

    sample = measure_counted(send_batch, {"mirrored": 0.5, "not_mirrored": 0.5}, DEFAULT_ALPHA, MIRROR_TOLERANCE,
                             batch=100)
    mesh_result.figure("mirrored", sample.to_json())
    mesh_result.figure("copy_hosts", copies_keep_host(mesh_platform, {r.request_id for r in replies}, "echo:8080"))
    # percent 0: 20 requests, none copied (their copies would leave with them: the count settles where it is).
    unmirrored = f"/unmirrored/{new_marker('gwapi-mirror')}"
    zero = mesh_meshed_client.send([Request(f"{unmirrored}/{i}", host="echo:8080") for i in range(20)])
    replies.extend(zero)
    zero_ids = {r.request_id for r in zero}
    copies = await_settled(lambda: len(zero_ids & mirrored_ids(unmirrored)), mesh_timeouts,
                           "the mirror's request count to settle",
                           watch=under_way(mesh_platform, mirror_side, zero_ids))
    mesh_result.figure("mirrored_at_percent_0", copies)
    assert copies == 0, f"percent 0 must mirror nothing: {copies} of {len(zero)} request ids reached the mirror"
    assert all(r.status == 200 and r.version for r in replies), \
        f"callers must get echo's own 200, never the mirror's answer: {outcomes(replies, _where)} of {len(replies)}"
    assert sample.passed, sample.describe()
