"""Gateway API (Gateway + HTTPRoute, and HTTPRoute on a Service for GAMMA) -> Envoy config, judged by what
Envoy does with a request: segment-based PathPrefix, the spec's precedence across rules and routes, listener
hostnames, weights, header and query matches, filters, and 500 for a rule without a usable backend
(Gateway API v1 HTTPRoute reference: HTTPPathMatch, HTTPRouteRule, HTTPBackendRef, HTTPRouteFilter)."""

from __future__ import annotations

import pytest

from meshconform.platform.local.translator.model import ProxyConfig
from tests.translator import envoy_view as ev
from tests.translator.meshes import GATEWAY_PORTS, echo_mesh, pod, service

ECHO = "echo.default.svc.cluster.local"
ALL = f"outbound|80||{ECHO}"
V1 = "outbound|80||echo-v1.default.svc.cluster.local"
V2 = "outbound|80||echo-v2.default.svc.cluster.local"
VERSIONED = service("echo-v1", selector={"app": "echo", "version": "v1"}) + \
    service("echo-v2", selector={"app": "echo", "version": "v2"})


def k8s_gateway(listeners: str = "[{name: http, port: 80, protocol: HTTP}]", name: str = "gw",
                class_name: str = "istio") -> str:
    return f"""
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: {name}, namespace: default}}
spec:
  gatewayClassName: {class_name}
  listeners: {listeners}
---
"""


def http_route(rules: str, *, name: str = "r", parents: str = "[{name: gw}]", hostnames: str = "[]") -> str:
    return f"""
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}, namespace: default}}
spec:
  parentRefs: {parents}
  hostnames: {hostnames}
  rules:
{rules}
---
"""


def to(service_name: str = "echo", weight: int | None = None) -> str:
    w = f", weight: {weight}" if weight is not None else ""
    return f"{{name: {service_name}, port: 80{w}}}"


def gateway_answer(*texts: str, host: str = "a.example.com", path: str = "/", misbehave: tuple[str, ...] = (),
                   headers: dict[str, str] | None = None) -> tuple[str, dict[str, float] | None]:
    config = echo_mesh().add(VERSIONED, *texts).translate(misbehave)["istio-system/istio-ingressgateway"]
    result = ev.gateway_handles(config, GATEWAY_PORTS.http, ev.Request(host, path, headers=headers or {}))
    return result.kind, (ev.cluster_shares(result.route) if result.route else None)


def client(*texts: str, misbehave: tuple[str, ...] = ()) -> ProxyConfig:
    return echo_mesh().add(VERSIONED, *texts).translate(misbehave)["default/client-0"]


PREFIX_ROUTE = http_route(f"""\
  - matches: [{{path: {{type: PathPrefix, value: /foo/}}}}]
    backendRefs: [{to("echo-v1")}]
  - matches: [{{path: {{type: Exact, value: /exact}}}}]
    backendRefs: [{to("echo-v2")}]""", hostnames="[a.example.com]")


@pytest.mark.parametrize(("path", "expected"), [
    ("/foo", ("route", {V1: 1.0})), ("/foo/", ("route", {V1: 1.0})), ("/foo/bar?x=1", ("route", {V1: 1.0})),
    ("/foobar", ("not-found", None)), ("/fo", ("not-found", None)), ("/exact", ("route", {V2: 1.0})),
    ("/exact/more", ("not-found", None)), ("/", ("not-found", None))])
def test_path_prefix_is_segment_based_and_exact_is_whole_path(path: str, expected: tuple) -> None:
    assert gateway_answer(k8s_gateway(), PREFIX_ROUTE, path=path) == expected


def test_path_prefix_as_string_prefix_misbehaviour_takes_foobar() -> None:
    assert gateway_answer(k8s_gateway(), PREFIX_ROUTE, path="/foobar",
                          misbehave=("path-prefix-as-string-prefix",)) == ("route", {V1: 1.0})


def test_hostnames_bind_the_route_and_other_hosts_get_404() -> None:
    assert gateway_answer(k8s_gateway(), PREFIX_ROUTE, host="b.example.com", path="/foo")[0] == "not-found"


def test_listener_hostname_intersects_with_route_hostnames() -> None:
    listener = "[{name: http, port: 80, protocol: HTTP, hostname: '*.example.com'}]"
    route = http_route(f"  - backendRefs: [{to('echo-v1')}]", hostnames="[a.example.com, a.other.org]")
    assert gateway_answer(k8s_gateway(listener), route, host="a.example.com") == ("route", {V1: 1.0})
    assert gateway_answer(k8s_gateway(listener), route, host="a.other.org")[0] == "not-found"
    no_hostnames = http_route(f"  - backendRefs: [{to('echo-v1')}]")
    assert gateway_answer(k8s_gateway(listener), no_hostnames, host="z.example.com") == ("route", {V1: 1.0})
    assert gateway_answer(k8s_gateway(listener), no_hostnames, host="z.other.org")[0] == "not-found"


def test_a_gateway_of_another_class_is_not_served() -> None:
    route = http_route(f"  - backendRefs: [{to('echo-v1')}]")
    assert gateway_answer(k8s_gateway(class_name="other"), route)[0] == "refused"


def test_section_name_attaches_to_one_listener_only() -> None:
    listeners = ("[{name: a, port: 80, protocol: HTTP, hostname: a.example.com}, "
                 "{name: b, port: 80, protocol: HTTP, hostname: b.example.com}]")
    route = http_route(f"  - backendRefs: [{to('echo-v1')}]", parents="[{name: gw, sectionName: b}]")
    assert gateway_answer(k8s_gateway(listeners), route, host="b.example.com") == ("route", {V1: 1.0})
    assert gateway_answer(k8s_gateway(listeners), route, host="a.example.com")[0] == "not-found"


PRECEDENCE = http_route(f"""\
  - matches: [{{path: {{type: PathPrefix, value: /}}}}]
    backendRefs: [{to("echo")}]
  - matches: [{{path: {{type: PathPrefix, value: /api}}}}]
    backendRefs: [{to("echo-v1")}]
  - matches: [{{path: {{type: PathPrefix, value: /api/v2}}}}, {{path: {{type: Exact, value: /api}}}}]
    backendRefs: [{to("echo-v2")}]
  - matches: [{{path: {{type: PathPrefix, value: /h}}, headers: [{{name: X-Pick, value: one}}]}}]
    backendRefs: [{to("echo-v2")}]""", hostnames="[a.example.com]")


@pytest.mark.parametrize(("path", "headers", "expected"), [
    ("/other", {}, ALL), ("/api/x", {}, V1), ("/api/v2/x", {}, V2), ("/api", {}, V2),
    ("/h/1", {"x-pick": "one"}, V2), ("/h/1", {"x-pick": "One"}, ALL), ("/h/1", {}, ALL)])
def test_precedence_exact_then_longest_prefix_then_headers(path: str, headers: dict[str, str], expected: str) -> None:
    assert gateway_answer(k8s_gateway(), PRECEDENCE, path=path, headers=headers) == ("route", {expected: 1.0})


def test_precedence_across_routes_prefers_the_longer_prefix_of_a_newer_route() -> None:
    older = http_route(f"  - matches: [{{path: {{value: /a}}}}]\n    backendRefs: [{to('echo-v1')}]", name="older",
                       hostnames="[a.example.com]")
    newer = http_route(f"  - matches: [{{path: {{value: /a/b}}}}]\n    backendRefs: [{to('echo-v2')}]", name="newer",
                       hostnames="[a.example.com]")
    assert gateway_answer(k8s_gateway(), older, newer, path="/a/b/c") == ("route", {V2: 1.0})


def test_precedence_ignored_misbehaviour_lets_the_catch_all_win() -> None:
    assert gateway_answer(k8s_gateway(), PRECEDENCE, path="/api/x",
                          misbehave=("gateway-api-precedence-ignored",)) == ("route", {ALL: 1.0})


# ---------------------------------------------------------------- GAMMA: a route whose parent is a Service

def mesh_route(rules: str, port: str = "") -> str:
    return http_route(rules, name="echo-mesh", parents=f"[{{group: '', kind: Service, name: echo{port}}}]")


def test_mesh_route_weights_split_between_backends() -> None:
    routes = ev.sidecar_routes(client(mesh_route(f"  - backendRefs: [{to('echo-v1', 80)}, {to('echo-v2', 20)}]")))
    assert ev.cluster_shares(ev.route_for(routes, ev.Request("echo", "/x"))) == {V1: 0.8, V2: 0.2}


def test_mesh_route_header_matches_exact_and_regex() -> None:
    routes = ev.sidecar_routes(client(mesh_route(f"""\
  - matches:
    - {{headers: [{{name: X-Exact, value: alpha}}]}}
    - {{headers: [{{type: RegularExpression, name: x-re, value: 'b[0-9]+'}}]}}
    backendRefs: [{to('echo-v2')}]
  - backendRefs: [{to('echo-v1')}]""")))
    def where(headers: dict[str, str]) -> dict[str, float]:
        return ev.cluster_shares(ev.route_for(routes, ev.Request("echo", "/", headers=headers)))
    assert where({"x-exact": "alpha"}) == {V2: 1.0}
    assert where({"x-exact": "alphabet"}) == {V1: 1.0}
    assert where({"x-re": "b42"}) == {V2: 1.0}
    assert where({"x-re": "b42c"}) == {V1: 1.0}


def test_mesh_route_filters_become_header_operations_and_a_mirror() -> None:
    routes = ev.sidecar_routes(client(mesh_route(f"""\
  - filters:
    - type: RequestHeaderModifier
      requestHeaderModifier: {{set: [{{name: X-Set, value: s}}], add: [{{name: X-Add, value: a}}], remove: [X-Gone]}}
    - type: RequestMirror
      requestMirror: {{backendRef: {{name: echo-v2, port: 80}}, percent: 25}}
    backendRefs: [{to('echo-v1')}]""")))
    route = ev.route_for(routes, ev.Request("echo", "/"))
    edits = ev.header_edits(route, "request")
    assert edits.set == {"x-set": "s"} and edits.add == {"x-add": "a"} and edits.remove == ["x-gone"]
    assert [(m.cluster, m.share) for m in ev.mirrors(route)] == [(V2, 0.25)]


def test_a_rule_without_a_usable_backend_answers_500() -> None:
    routes = ev.sidecar_routes(client(mesh_route(f"  - backendRefs: [{to('missing')}]")))
    fault = ev.fault(ev.route_for(routes, ev.Request("echo", "/")))
    assert fault is not None and fault.abort_status == 500 and fault.abort_share == 1.0
    half = ev.sidecar_routes(client(mesh_route(f"  - backendRefs: [{to('missing', 1)}, {to('echo-v1', 1)}]")))
    route = ev.route_for(half, ev.Request("echo", "/"))
    fault = ev.fault(route)
    assert fault is not None and fault.abort_share == 0.5 and ev.cluster_shares(route) == {V1: 1.0}


def ns_route(namespace: str, backend: str, name: str = "r") -> str:
    """An HTTPRoute in `namespace` on Service default/echo, to one backend (GAMMA; Istio's TestSidecarRoutes)."""
    return f"""
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  parentRefs: [{{group: '', kind: Service, name: echo, namespace: default}}]
  rules: [{{backendRefs: [{backend}]}}]
---
"""


def test_a_hostname_backend_is_routed_as_written_even_to_no_service() -> None:
    """istiod's Hostname kind (group networking.istio.io): outbound|<port>||<name>, the Service looked up, not
    required; a missing Service backend answers 500 instead (test above)."""
    hostname = "{group: networking.istio.io, kind: Hostname, name: api.example.com, port: 8080}"
    route = ev.route_for(ev.sidecar_routes(client(ns_route("default", hostname))), ev.Request("echo", "/"))
    assert ev.cluster_shares(route) == {"outbound|8080||api.example.com": 1.0} and ev.fault(route) is None


def test_a_consumer_route_governs_only_its_namespace_and_wins_there() -> None:
    """istiod's gateway semantics for mesh routes: a route applies to callers in its own namespace (consumer, tried
    first) or in the Service's (producer); from a third namespace it does not apply."""
    v2 = "{group: networking.istio.io, kind: Hostname, name: echo-v2.default.svc.cluster.local, port: 80}"
    mesh = echo_mesh().add(VERSIONED, ns_route("default", to("echo-v1"), "producer"), ns_route("other", v2, "consumer"))
    mesh.namespaces.update({"other": {}, "third": {}})
    configs = mesh.with_pods(pod("client-1", "other", labels={"app": "client"}),
                             pod("client-2", "third", labels={"app": "client"})).translate()
    def served(caller: str) -> dict[str, float]:
        return ev.cluster_shares(ev.route_for(ev.sidecar_routes(configs[caller]), ev.Request("echo.default", "/")))
    assert served("default/client-0") == {V1: 1.0}
    assert served("third/client-2") == {V1: 1.0}  # the producer's; the consumer route is not for it
    assert served("other/client-1") == {V2: 1.0}


def test_a_mesh_route_for_a_service_that_does_not_exist_routes_nothing() -> None:
    route = ns_route("default", to("echo-v1")).replace("name: echo, namespace: default}", "name: gone}")
    routes = ev.sidecar_routes(client(route))
    assert not [v for v in routes["virtual_hosts"] if "gone.default.svc.cluster.local" in v["domains"]]
