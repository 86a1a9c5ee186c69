"""VirtualService HTTP rules -> a sidecar's outbound routes, judged by what Envoy does with a request:
first match wins, istiod stops after a catch-all, every match kind, weights, faults, mirrors, timeouts,
retries (Istio 1.28+ defaults) and header operations (istio.io VirtualService reference; facts file
/work/shared/facts/bookinfo-istio.md §0, §4.7)."""

from __future__ import annotations

import pytest

from meshconform.platform.local.translator.model import ProxyConfig
from tests.translator import envoy_view as ev
from tests.translator.meshes import ECHO_SUBSETS, Mesh, echo_mesh, pod, vs

ECHO = "echo.default.svc.cluster.local"
V1, V2, ALL = f"outbound|80|v1|{ECHO}", f"outbound|80|v2|{ECHO}", f"outbound|80||{ECHO}"
DEFAULT_RETRY_ON = {"connect-failure", "refused-stream", "unavailable", "cancelled", "retriable-status-codes"}


def client(mesh: Mesh) -> ProxyConfig:
    return mesh.translate()["default/client-0"]


def routes_with(http: str) -> dict:
    return ev.sidecar_routes(client(echo_mesh().add(ECHO_SUBSETS, vs(http))))


def goes_to(routes: dict, request: ev.Request) -> dict[str, float] | None:
    route = ev.route_for(routes, request)
    return None if route is None else ev.cluster_shares(route)


def echo(path: str = "/", method: str = "GET", headers: dict[str, str] | None = None) -> ev.Request:
    return ev.Request("echo", path, method, headers or {})


# ---------------------------------------------------------------- no VirtualService: istiod's defaults

def test_without_a_virtual_service_every_request_goes_to_the_whole_service() -> None:
    routes = ev.sidecar_routes(client(echo_mesh()))
    for request in (echo(), echo("/any/path?q=1", method="POST"), ev.Request("echo.default.svc.cluster.local:80")):
        assert goes_to(routes, request) == {ALL: 1.0}


def test_short_and_long_service_names_reach_the_same_virtual_host() -> None:
    routes = ev.sidecar_routes(client(echo_mesh()))
    hosts = ["echo", "echo:80", "echo.default", "echo.default.svc", f"{ECHO}", f"{ECHO}:80"]
    assert {(ev.virtual_host(routes, h) or {}).get("name") for h in hosts} == {f"{ECHO}:80"}
    # An unknown name falls to the outbound policy's catch-all, where (no original destination: the name would
    # not resolve on a cluster) no route matches.
    assert (ev.virtual_host(routes, "unknown.example.com") or {}).get("name") == "allow_any"
    assert ev.route_for(routes, ev.Request("unknown.example.com")) is None


def test_default_route_has_no_timeout_and_the_1_28_default_retry_policy() -> None:
    routes = ev.sidecar_routes(client(echo_mesh()))
    vhost = ev.virtual_host(routes, "echo")
    route = ev.route_for(routes, echo())
    assert route is not None and vhost is not None
    assert ev.route_timeout(route) is None, "Istio's route timeout is disabled by default (Envoy's own is 15 s)"
    policy = ev.retry_policy(route, vhost)
    assert ev.retry_count(policy) == 2
    assert ev.retry_conditions(policy) == DEFAULT_RETRY_ON
    assert 503 not in ev.retried_statuses(policy), "Istio >= 1.28 never retries 503 by default"
    assert policy is not None
    assert [p["name"] for p in policy["retry_host_predicate"]] == ["envoy.retry_host_predicates.previous_hosts"]
    assert policy["host_selection_retry_max_attempts"] == 5


# ---------------------------------------------------------------- order: first match wins, catch-all stops

JASON_THEN_ALL = """\
  - match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: echo, subset: v2}}]
  - route: [{destination: {host: echo, subset: v1}}]"""


def test_first_matching_rule_wins() -> None:
    routes = routes_with(JASON_THEN_ALL)
    assert goes_to(routes, echo(headers={"end-user": "jason"})) == {V2: 1.0}
    assert goes_to(routes, echo(headers={"end-user": "mike"})) == {V1: 1.0}
    assert goes_to(routes, echo()) == {V1: 1.0}


def test_each_match_block_of_a_rule_is_an_alternative() -> None:
    routes = routes_with("""\
  - match: [{uri: {exact: /login}}, {uri: {prefix: /api}}]
    route: [{destination: {host: echo, subset: v2}}]
  - route: [{destination: {host: echo, subset: v1}}]""")
    assert goes_to(routes, echo("/login")) == {V2: 1.0}
    assert goes_to(routes, echo("/api/v1/x")) == {V2: 1.0}
    assert goes_to(routes, echo("/other")) == {V1: 1.0}


@pytest.mark.parametrize("catch_all", [
    "  - route: [{destination: {host: echo, subset: v1}}]",
    "  - match: [{uri: {prefix: /}}]\n    route: [{destination: {host: echo, subset: v1}}]",
    "  - match: [{uri: {regex: '.*'}}]\n    route: [{destination: {host: echo, subset: v1}}]",
    "  - match: [{headers: {x: {exact: y}}}, {uri: {prefix: /}}]\n    route: [{destination: {host: echo, subset: v1}}]",
], ids=["no-match", "prefix-slash", "regex-dot-star", "catch-all-as-second-match"])
def test_no_route_is_emitted_after_a_catch_all(catch_all: str) -> None:
    routes = routes_with(catch_all + """
  - match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: echo, subset: v2}}]""")
    vhost = ev.virtual_host(routes, "echo")
    assert vhost is not None
    last = vhost["routes"][-1]
    assert last["match"].get("prefix") == "/" or last["match"].get("safe_regex", {}).get("regex") == ".*"
    assert not last["match"].get("headers") and not last["match"].get("query_parameters")
    assert all(ev.cluster_shares(r) == {V1: 1.0} for r in vhost["routes"]), "nothing after the catch-all"
    assert goes_to(routes, echo(headers={"end-user": "jason"})) == {V1: 1.0}


@pytest.mark.parametrize("narrower", [
    "{uri: {prefix: /api}}", "{method: {exact: GET}}", "{authority: {exact: echo}}",
    "{queryParams: {a: {exact: b}}}", "{withoutHeaders: {x: {exact: y}}}", "{uri: {prefix: /}, headers: {x: {}}}",
])
def test_a_narrower_match_is_not_a_catch_all(narrower: str) -> None:
    routes = routes_with(f"""\
  - match: [{narrower}]
    route: [{{destination: {{host: echo, subset: v2}}}}]
  - route: [{{destination: {{host: echo, subset: v1}}}}]""")
    vhost = ev.virtual_host(routes, "echo")
    assert vhost is not None and len(vhost["routes"]) == 2, "the rule after a narrower match is still emitted"


# ---------------------------------------------------------------- match kinds

def _only_v2_for(match: str) -> dict:
    return routes_with(f"""\
  - match: [{match}]
    route: [{{destination: {{host: echo, subset: v2}}}}]
  - route: [{{destination: {{host: echo, subset: v1}}}}]""")


@pytest.mark.parametrize(("match", "hits", "misses"), [
    ("{uri: {exact: /a}}", ["/a", "/a?x=1"], ["/a/b", "/ab", "/A"]),
    ("{uri: {prefix: /api}}", ["/api", "/api/v1", "/apix"], ["/", "/API", "/v1/api"]),
    ("{uri: {regex: '/item/[0-9]+'}}", ["/item/12", "/item/7?x=y"], ["/item/", "/item/12/x", "/x/item/12"]),
    ("{uri: {exact: /a}, ignoreUriCase: true}", ["/a", "/A"], ["/a/b"]),
    ("{uri: {prefix: /api}, ignoreUriCase: true}", ["/API/v1", "/Api"], ["/v1"]),
])
def test_uri_match(match: str, hits: list[str], misses: list[str]) -> None:
    routes = _only_v2_for(match)
    for path in hits:
        assert goes_to(routes, echo(path)) == {V2: 1.0}, path
    for path in misses:
        assert goes_to(routes, echo(path)) == {V1: 1.0}, path


@pytest.mark.parametrize(("match", "hits", "misses"), [
    ("{headers: {end-user: {exact: jason}}}", [{"end-user": "jason"}], [{"end-user": "Jason"}, {}]),
    ("{headers: {end-user: {prefix: ja}}}", [{"end-user": "jason"}, {"end-user": "ja"}], [{"end-user": "mja"}, {}]),
    ("{headers: {end-user: {regex: 'j.*n'}}}", [{"end-user": "jason"}], [{"end-user": "jasonx"}, {}]),
    ("{headers: {end-user: {}}}", [{"end-user": "anyone"}, {"end-user": ""}], [{}]),
    ("{headers: {end-user: {exact: jason}, x-b: {exact: '1'}}}", [{"end-user": "jason", "x-b": "1"}],
     [{"end-user": "jason"}, {"x-b": "1"}]),
], ids=["exact", "prefix", "regex-whole-value", "presence", "all-headers-must-match"])
def test_header_match(match: str, hits: list[dict[str, str]], misses: list[dict[str, str]]) -> None:
    routes = _only_v2_for(match)
    for headers in hits:
        assert goes_to(routes, echo(headers=headers)) == {V2: 1.0}, headers
    for headers in misses:
        assert goes_to(routes, echo(headers=headers)) == {V1: 1.0}, headers


def test_without_headers_excludes_requests_whose_header_matches() -> None:
    routes = _only_v2_for("{withoutHeaders: {end-user: {exact: jason}}}")
    assert goes_to(routes, echo(headers={"end-user": "jason"})) == {V1: 1.0}
    assert goes_to(routes, echo(headers={"end-user": "mike"})) == {V2: 1.0}


def test_without_headers_presence_matches_only_requests_lacking_the_header() -> None:
    routes = _only_v2_for("{withoutHeaders: {end-user: {}}}")
    assert goes_to(routes, echo(headers={"end-user": "jason"})) == {V1: 1.0}
    assert goes_to(routes, echo()) == {V2: 1.0}


# withoutHeaders: a request without the header matches (istio.io HTTPMatchRequest.withoutHeaders; istiod sets
# treat_missing_header_as_empty on the inverted matcher). Was a known difference until the near-miss check found it.
def test_without_headers_matches_requests_lacking_the_header() -> None:
    routes = _only_v2_for("{withoutHeaders: {end-user: {exact: jason}}}")
    assert goes_to(routes, echo()) == {V2: 1.0}


@pytest.mark.parametrize(("match", "hits", "misses"), [
    ("{queryParams: {debug: {exact: 'true'}}}", ["/?debug=true", "/x?a=1&debug=true"], ["/?debug=false", "/"]),
    ("{queryParams: {id: {regex: '[0-9]+'}}}", ["/?id=123"], ["/?id=a123", "/?id=123a", "/"]),
    ("{queryParams: {flag: {exact: ''}}}", ["/?flag", "/?flag="], ["/?flag=1", "/"]),
    ("{method: {exact: POST}}", ["POST"], ["GET", "PUT"]),
    ("{method: {regex: 'P(UT|OST)'}}", ["POST", "PUT"], ["GET", "PATCH"]),
])
def test_query_and_method_match(match: str, hits: list[str], misses: list[str]) -> None:
    routes = _only_v2_for(match)

    def request(item: str) -> ev.Request:
        return echo(item) if item.startswith("/") else echo(method=item)

    for item in hits:
        assert goes_to(routes, request(item)) == {V2: 1.0}, item
    for item in misses:
        assert goes_to(routes, request(item)) == {V1: 1.0}, item


def test_authority_match() -> None:
    routes = _only_v2_for("{authority: {prefix: echo.default}}")
    assert goes_to(routes, ev.Request("echo.default.svc.cluster.local")) == {V2: 1.0}
    assert goes_to(routes, ev.Request("echo")) == {V1: 1.0}


def test_port_match_limits_a_rule_to_that_service_port() -> None:
    two_ports = """
apiVersion: v1
kind: Service
metadata: {name: multi, namespace: default}
spec:
  selector: {app: multi}
  ports: [{name: http, port: 80, targetPort: 8080}, {name: http-admin, port: 9090, targetPort: 9090}]
"""
    mesh = Mesh().add(two_ports, vs("""\
  - match: [{port: 9090}]
    route: [{destination: {host: multi, port: {number: 9090}}}]
  - route: [{destination: {host: multi, port: {number: 80}}}]""", name="multi", hosts="[multi]")).with_pods(
        pod("multi-0", labels={"app": "multi"}, ports=(8080, 9090)), pod("client-0", labels={"app": "client"}))
    routes = ev.sidecar_routes(client(mesh))
    fqdn = "multi.default.svc.cluster.local"
    assert goes_to(routes, ev.Request("multi:9090")) == {f"outbound|9090||{fqdn}": 1.0}
    assert goes_to(routes, ev.Request("multi:80")) == {f"outbound|80||{fqdn}": 1.0}


# ---------------------------------------------------------------- weights

@pytest.mark.parametrize(("w1", "w2", "expected"), [
    (80, 20, {V1: 0.8, V2: 0.2}), (50, 50, {V1: 0.5, V2: 0.5}), (1, 3, {V1: 0.25, V2: 0.75}),
    (0, 100, {V2: 1.0}), (30, 0, {V1: 1.0}),
], ids=["80-20", "50-50", "sum-not-100", "zero-dropped", "zero-dropped-sum-30"])
def test_weighted_destinations_share_by_weight_over_total(w1: int, w2: int, expected: dict[str, float]) -> None:
    routes = routes_with(f"""\
  - route:
    - {{destination: {{host: echo, subset: v1}}, weight: {w1}}}
    - {{destination: {{host: echo, subset: v2}}, weight: {w2}}}""")
    route = ev.route_for(routes, echo())
    assert route is not None
    assert ev.cluster_shares(route) == pytest.approx(expected)


def test_three_way_split_and_single_destination_without_weight() -> None:
    routes = routes_with("""\
  - match: [{uri: {prefix: /three}}]
    route:
    - {destination: {host: echo, subset: v1}, weight: 10}
    - {destination: {host: echo, subset: v2}, weight: 30}
    - {destination: {host: echo}, weight: 60}
  - route: [{destination: {host: echo, subset: v2}}]""")
    assert goes_to(routes, echo("/three")) == pytest.approx({V1: 0.1, V2: 0.3, ALL: 0.6})
    assert goes_to(routes, echo("/")) == {V2: 1.0}


# ---------------------------------------------------------------- faults

def _fault_of(fault: str) -> ev.Fault | None:
    mesh = echo_mesh().add(ECHO_SUBSETS, vs(f"""\
  - match: [{{headers: {{end-user: {{exact: jason}}}}}}]
    fault: {fault}
    route: [{{destination: {{host: echo, subset: v1}}}}]
  - route: [{{destination: {{host: echo, subset: v1}}}}]"""))
    config = client(mesh)
    routes = ev.sidecar_routes(config)
    outbound_chain = ev.listener(config, "outbound")["filter_chains"][0]
    filters = ev.hcm(outbound_chain)["http_filters"]
    other = ev.route_for(routes, echo())
    assert other is not None and ev.fault(other, filters) is None, "only the matching rule carries the fault"
    route = ev.route_for(routes, echo(headers={"end-user": "jason"}))
    assert route is not None
    return ev.fault(route, filters)


def test_fault_delay_with_percentage() -> None:
    fault = _fault_of("{delay: {fixedDelay: 7s, percentage: {value: 100.0}}}")
    assert fault == ev.Fault(delay_seconds=7.0, delay_share=1.0, abort_status=None, abort_share=0.0)


def test_fault_abort_with_fractional_percentage() -> None:
    fault = _fault_of("{abort: {httpStatus: 500, percentage: {value: 30.5}}}")
    assert fault is not None and fault.abort_status == 500 and fault.delay_seconds is None
    assert fault.abort_share == pytest.approx(0.305)


def test_fault_delay_and_abort_together() -> None:
    fault = _fault_of("{delay: {fixedDelay: 0.5s, percentage: {value: 50}}, abort: {httpStatus: 503, "
                      "percentage: {value: 10}}}")
    assert fault is not None
    assert (fault.delay_seconds, fault.delay_share, fault.abort_status) == (0.5, 0.5, 503)
    assert fault.abort_share == pytest.approx(0.1)


def test_fault_without_percentage_never_triggers() -> None:
    delay = _fault_of("{delay: {fixedDelay: 2s}}")
    abort = _fault_of("{abort: {httpStatus: 500}}")
    assert delay is not None and delay.delay_share == 0.0
    assert abort is not None and abort.abort_share == 0.0


# ---------------------------------------------------------------- mirroring

def _mirrors(extra: str) -> tuple[dict[str, float], list[ev.Mirror]]:
    routes = routes_with(f"""\
  - route: [{{destination: {{host: echo, subset: v1}}, weight: 100}}]
    mirror: {{host: echo, subset: v2}}{extra}""")
    route = ev.route_for(routes, echo())
    assert route is not None
    return ev.cluster_shares(route), ev.mirrors(route)


def test_mirror_without_percentage_mirrors_everything_without_shadow_suffix() -> None:
    shares, mirrors = _mirrors("")
    assert shares == {V1: 1.0}, "the caller is answered by the primary destination only"
    assert mirrors == [ev.Mirror(cluster=V2, share=1.0, host_suffix_appended=False)]


def test_mirror_percentage() -> None:
    _, mirrors = _mirrors("\n    mirrorPercentage: {value: 50.0}")
    assert [(m.cluster, m.share, m.host_suffix_appended) for m in mirrors] == [(V2, 0.5, False)]


def test_mirror_percentage_zero_mirrors_nothing() -> None:
    _, mirrors = _mirrors("\n    mirrorPercentage: {value: 0}")
    assert sum(m.share for m in mirrors) == 0.0


def test_no_mirror_by_default() -> None:
    routes = routes_with("  - route: [{destination: {host: echo, subset: v1}}]")
    route = ev.route_for(routes, echo())
    assert route is not None and ev.mirrors(route) == []


# ---------------------------------------------------------------- timeouts and retries

def test_route_timeout() -> None:
    routes = routes_with("""\
  - match: [{uri: {prefix: /slow}}]
    timeout: 0.5s
    route: [{destination: {host: echo, subset: v1}}]
  - route: [{destination: {host: echo, subset: v1}}]""")
    slow, other = ev.route_for(routes, echo("/slow")), ev.route_for(routes, echo("/"))
    assert slow is not None and other is not None
    assert ev.route_timeout(slow) == 0.5
    assert ev.route_timeout(other) is None, "a rule without timeout keeps Istio's default: disabled"


def test_explicit_retries() -> None:
    routes = routes_with("""\
  - route: [{destination: {host: echo, subset: v1}}]
    retries: {attempts: 3, perTryTimeout: 2s, retryOn: '5xx,connect-failure'}""")
    route = ev.route_for(routes, echo())
    assert route is not None
    policy = ev.retry_policy(route)
    assert ev.retry_count(policy) == 3
    assert ev.retry_conditions(policy) >= {"5xx", "connect-failure"}
    assert {500, 503, 599} <= ev.retried_statuses(policy)
    assert policy is not None and ev.seconds(policy["per_try_timeout"]) == 2.0


def test_retry_on_status_codes_become_retriable_status_codes() -> None:
    routes = routes_with("""\
  - route: [{destination: {host: echo, subset: v1}}]
    retries: {attempts: 2, retryOn: '503,connect-failure'}""")
    route = ev.route_for(routes, echo())
    assert route is not None
    policy = ev.retry_policy(route)
    assert ev.retried_statuses(policy) == {503}
    assert "connect-failure" in ev.retry_conditions(policy)


def test_retries_without_retry_on_use_the_default_conditions() -> None:
    routes = routes_with("""\
  - route: [{destination: {host: echo, subset: v1}}]
    retries: {attempts: 4}""")
    route = ev.route_for(routes, echo())
    assert route is not None
    policy = ev.retry_policy(route)
    assert ev.retry_count(policy) == 4 and ev.retry_conditions(policy) == DEFAULT_RETRY_ON


def test_zero_attempts_disables_retries() -> None:
    routes = routes_with("""\
  - route: [{destination: {host: echo, subset: v1}}]
    retries: {attempts: 0}""")
    route = ev.route_for(routes, echo())
    vhost = ev.virtual_host(routes, "echo")
    assert route is not None
    assert ev.retry_count(ev.retry_policy(route, vhost)) == 0


# ---------------------------------------------------------------- header operations

def test_rule_header_operations() -> None:
    routes = routes_with("""\
  - route: [{destination: {host: echo, subset: v1}}]
    headers:
      request: {set: {x-set: a}, add: {x-add: b}, remove: [x-drop]}
      response: {set: {x-resp: c}, add: {x-resp-add: d}, remove: [server]}""")
    route = ev.route_for(routes, echo())
    assert route is not None
    assert ev.header_edits(route, "request") == ev.HeaderEdits({"x-set": "a"}, {"x-add": "b"}, ["x-drop"])
    assert ev.header_edits(route, "response") == ev.HeaderEdits({"x-resp": "c"}, {"x-resp-add": "d"}, ["server"])


def test_destination_header_operations_apply_to_that_destination_only() -> None:
    routes = routes_with("""\
  - route:
    - destination: {host: echo, subset: v1}
      weight: 50
      headers: {request: {set: {x-version: v1}}, response: {add: {x-served: v1}}}
    - destination: {host: echo, subset: v2}
      weight: 50""")
    route = ev.route_for(routes, echo())
    assert route is not None
    entries = {c["name"]: c for c in route["route"]["weighted_clusters"]["clusters"]}
    assert ev.header_edits(entries[V1], "request").set == {"x-version": "v1"}
    assert ev.header_edits(entries[V1], "response").add == {"x-served": "v1"}
    assert ev.header_edits(entries[V2], "request") == ev.HeaderEdits({}, {}, [])
    assert ev.header_edits(route, "request") == ev.HeaderEdits({}, {}, [])


def test_single_destination_header_operations_apply_to_the_route() -> None:
    routes = routes_with("""\
  - route:
    - destination: {host: echo, subset: v1}
      headers: {request: {set: {x-version: v1}}}""")
    route = ev.route_for(routes, echo())
    assert route is not None and ev.header_edits(route, "request").set == {"x-version": "v1"}
