"""Every deliberate misbehaviour breaks exactly the rule it names and nothing else: one mesh exercises every
rule; each misbehaviour's translation is compared with the correct one, every difference must lie in the
fields of that rule, and the broken behaviour must show through envoy_view."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from meshconform.platform.local.misbehaviour import Misbehaviour
from meshconform.platform.local.translator import translate
from meshconform.platform.local.translator.envoy_types import ORIGINAL_DST_HEADER
from meshconform.platform.local.translator.model import ProxyConfig
from tests.translator import envoy_view as ev
from tests.translator.meshes import GATEWAY_PORTS, FakeCerts, Mesh, build, peer_auth, pod, proxy_paths, service, vs

ECHO = "echo.default.svc.cluster.local"
V1, V2 = f"outbound|80|v1|{ECHO}", f"outbound|80|v2|{ECHO}"
QUIET = "outbound|80||quiet.default.svc.cluster.local"
SHADOW = "shadow.default.svc.cluster.local"  # two ports: 80 and 81
GATEWAY = "istio-system/istio-ingressgateway"
MUTUAL_TLS = ev.Connection(tls=True, client_certificate=True, alpn=("istio",))
PLAINTEXT = ev.Connection()
Configs = dict[str, ProxyConfig]
PREVIOUS_HOSTS = "envoy.retry_host_predicates.previous_hosts"


# A Gateway API Gateway and HTTPRoute: PathPrefix /g to echo, the longer PathPrefix /g/deeper (a later rule) to quiet.
GATEWAY_API = """
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  gatewayClassName: istio
  listeners:
  - {name: http, port: 80, protocol: HTTP, hostname: g.example.com}
  - {name: all, port: 80, protocol: HTTP, hostname: s.example.com, allowedRoutes: {namespaces: {from: All}}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: g, namespace: default}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /g}}]
    backendRefs: [{name: echo, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /g/deeper}}]
    backendRefs: [{name: quiet, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /g/kind}}]
    backendRefs: [{group: example.com, kind: Widget, name: echo, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /g/namespace}}]
    backendRefs: [{name: vault, namespace: secure, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /g/zero}}]
    backendRefs: [{name: quiet, port: 80, weight: 0}]
  - matches: [{path: {type: PathPrefix, value: /g/half}}]
    backendRefs: [{name: echo, port: 80}, {name: no-such-service, port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: by-port, namespace: default}
spec:
  parentRefs: [{name: gw, port: 8080}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /port-miss}}]
    backendRefs: [{name: quiet, port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: s, namespace: secure}
spec:
  parentRefs: [{name: gw, namespace: default, sectionName: all}]
  hostnames: [s.example.com]
  rules: [{backendRefs: [{name: vault, port: 80}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: t, namespace: secure}
spec:
  parentRefs: [{name: gw, namespace: default, sectionName: http}]  # admits routes of its own namespace only
  hostnames: [g.example.com]
  rules: [{matches: [{path: {type: PathPrefix, value: /same-namespace}}], backendRefs: [{name: vault, port: 80}]}]
---"""


def gateway_api_route(c: Configs, path: str) -> str:
    answer = ev.gateway_handles(c[GATEWAY], GATEWAY_PORTS.http, ev.Request("g.example.com", path))
    return ",".join(ev.cluster_shares(answer.route)) if answer.route else answer.kind


def everything() -> Mesh:
    """One mesh where every misbehaviour has a rule to break: echo (PERMISSIVE by namespace over a STRICT
    mesh), quiet (workload DISABLE), secure/vault (STRICT from the mesh), routing with header match, weights,
    fault, timeout, retries and a fractional mirror, a DR with pool limits, HTTP and HTTPS gateway servers,
    and an ALLOW policy on echo."""
    mesh = Mesh().add(
        service("echo"), service("client"), service("quiet"), service("vault", namespace="secure"),
        service("portal", namespace="secure"),
        """
apiVersion: v1
kind: Service
metadata: {name: shadow, namespace: default}
spec:
  selector: {app: shadow}
  ports: [{name: http, port: 80, targetPort: 8080}, {name: http-alt, port: 81, targetPort: 8081}]
---""",
        peer_auth("default", "istio-system", "STRICT"),
        peer_auth("default", "default", "PERMISSIVE"),
        peer_auth("quiet", "default", "DISABLE", selector={"app": "quiet"}),
        peer_auth("portal", "secure", "STRICT", selector={"app": "portal"}, ports={8080: "PERMISSIVE"}),
        peer_auth("default", "secure", "UNSET"),  # inherits the mesh-wide STRICT
        """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: echo, namespace: default}
spec:
  host: echo
  trafficPolicy:
    connectionPool: {tcp: {maxConnections: 1, connectTimeout: 1s}, http: {http1MaxPendingRequests: 1,
                     maxRequestsPerConnection: 1}}
    outlierDetection: {consecutive5xxErrors: 1, interval: 1s, baseEjectionTime: 3m, maxEjectionPercent: 100}
    loadBalancer: {simple: ROUND_ROBIN}
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
  - {name: blue-v1, labels: {lane: blue, version: v1}}
  - {name: pooled, labels: {version: v1}, trafficPolicy: {connectionPool: {http: {http2MaxRequests: 7}}}}
---""",
        vs("""\
  - match: [{headers: {end-user: {exact: jason}}}]
    fault: {delay: {fixedDelay: 2s, percentage: {value: 50}}, abort: {httpStatus: 500, percentage: {value: 10}}}
    timeout: 1s
    retries: {attempts: 3, retryOn: 5xx}
    route: [{destination: {host: echo, subset: v2}}]
  - match: [{uri: {regex: "/re/[0-9]+"}}]
    route: [{destination: {host: echo, subset: v2}}]
  - name: once
    match: [{uri: {prefix: /retry-once}}]
    retries: {attempts: 1, retryOn: 5xx}
    route: [{destination: {host: echo, subset: blue-v1}}]
  - match: [{uri: {prefix: /retry-on}}]
    timeout: 2s
    retries: {attempts: 2, perTryTimeout: 0.5s, retryOn: connect-failure}
    route: [{destination: {host: echo, subset: blue-v1}}]
  - match: [{uri: {prefix: /method}, method: {prefix: PAT}}]
    route: [{destination: {host: echo, subset: v2}}]
  - match: [{uri: {prefix: /query}, queryParams: {lane: {}}}]
    route: [{destination: {host: echo, subset: v2}}]
  - match: [{uri: {prefix: /deprecated}}]
    fault: {delay: {fixedDelay: 1s, percent: 100}}
    headers: {response: {set: {x-rule: a}, add: {x-added: b}, remove: [x-app]}}
    route: [{destination: {host: echo, subset: v2}, headers: {response: {set: {x-destination: c}}}}]
  - match: [{port: 81}]
    route: [{destination: {host: echo, subset: v1}}]
  - match: [{uri: {prefix: /mirror-port}}]
    route: [{destination: {host: echo, subset: v1}}]
    mirror: {host: shadow, port: {number: 81}}
  - route:
    - {destination: {host: echo, subset: v1}, weight: 50}
    - {destination: {host: echo, subset: v2}, weight: 50}
    mirror: {host: echo, subset: v2}
    mirrorPercentage: {value: 25}
    headers: {request: {set: {x-set: a}, remove: [x-drop]}}"""),
        """
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - {port: {number: 80, name: http, protocol: HTTP}, hosts: [a.example.com]}
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [a.example.com]
    tls: {mode: SIMPLE, credentialName: a-cred}
---
apiVersion: v1
kind: Secret
metadata: {name: a-cred, namespace: istio-system}
type: kubernetes.io/tls
data: {tls.crt: Y2VydA==, tls.key: a2V5}
---""",
        vs("  - route: [{destination: {host: echo, subset: v1}}]", name="site", hosts="[a.example.com]",
           gateways="[gw]"),
        """
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: wild, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - {port: {number: 80, name: http, protocol: HTTP}, hosts: ["*.wild.example.com"]}
  - {port: {number: 80, name: http2, protocol: HTTP}, hosts: [secure.example.com], tls: {httpsRedirect: true}}
---""",
        vs("  - route: [{destination: {host: echo, subset: v1}}]", name="wild", hosts='["*.wild.example.com"]',
           gateways="[wild]"),
        """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: echo-allow-client, namespace: default}
spec:
  selector: {matchLabels: {app: echo}}
  rules: [{from: [{source: {principals: [cluster.local/ns/default/sa/client]}}],
           to: [{operation: {notPaths: ["/private*"]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: echo-deny-scoped, namespace: default}
spec:
  selector: {matchLabels: {app: echo}}
  action: DENY
  rules: [{from: [{source: {notNamespaces: [default]}}], to: [{operation: {paths: ["/outsiders/*"]}}]},
          {to: [{operation: {paths: ["/hosts/*"], hosts: ["blocked.echo*"]}}]},
          {to: [{operation: {paths: ["*.secret"]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: quiet-root-deny, namespace: istio-system}
spec:
  selector: {matchLabels: {app: quiet}}
  action: DENY
  rules: [{to: [{operation: {paths: ["/root/*"]}}]},
          {from: [{source: {requestPrincipals: ["*"]}}], to: [{operation: {paths: ["/token/*"]}}]}]
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: echo-jwt, namespace: default}
spec:
  selector: {matchLabels: {app: echo}}
  jwtRules: [{issuer: https://issuer.test, jwks: '{"keys": []}'},
             {issuer: https://header-issuer.test, jwks: '{"keys": []}', audiences: [echo],
              fromHeaders: [{name: x-jwt-assertion, prefix: "Token "}], forwardOriginalToken: true}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: outside, namespace: default}
spec:
  hosts: [api.outside.test]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 127.9.0.1}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: outside-dns, namespace: default}
spec:
  hosts: [dns.outside.test]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: DNS
  endpoints: [{address: 127.9.0.2}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: outside-wild, namespace: default}
spec:
  hosts: [api.wildcard.test]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 127.9.0.3}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: outside-wild, namespace: default}
spec:
  hosts: ["*.wildcard.test"]
  http: [{name: wild, route: [{destination: {host: api.wildcard.test}}]}]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: client-registry-only, namespace: default}
spec:
  workloadSelector: {labels: {app: client}}
  outboundTrafficPolicy: {mode: REGISTRY_ONLY}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: istio-system}
spec:
  outboundTrafficPolicy: {mode: ALLOW_ANY}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: secure}
spec:
  outboundTrafficPolicy: {mode: REGISTRY_ONLY}
---""",
        GATEWAY_API,
    ).with_pods(
        pod("echo-v1-0", labels={"app": "echo", "version": "v1", "lane": "blue"}),
        pod("echo-v2-0", labels={"app": "echo", "version": "v2", "lane": "blue"}),
        pod("client-0", labels={"app": "client"}),
        pod("quiet-0", labels={"app": "quiet"}),
        pod("vault-0", namespace="secure", labels={"app": "vault"}),
        pod("portal-0", namespace="secure", labels={"app": "portal"}),
    )
    mesh.namespaces["secure"] = {"istio-injection": "enabled"}
    return mesh


# ---------------------------------------------------------------- what each misbehaviour may touch and break

def jason_route(c: Configs) -> dict:
    route = ev.route_for(ev.sidecar_routes(c["default/client-0"]), ev.Request("echo", headers={"end-user": "jason"}))
    assert route is not None
    return route


def split_route(c: Configs) -> dict:
    route = ev.route_for(ev.sidecar_routes(c["default/client-0"]), ev.Request("echo"))
    assert route is not None
    return route


def route_to(c: Configs, request: ev.Request) -> dict:
    route = ev.route_for(ev.sidecar_routes(c["default/client-0"]), request)
    assert route is not None
    return route


def deprecated_route(c: Configs) -> dict:
    return route_to(c, ev.Request("echo", path="/deprecated/1"))


def response_headers(route: dict) -> tuple[list[str], list[str]]:
    """(names added or set, names removed) on the route and its one destination."""
    added = [h["header"]["key"] for h in route.get("response_headers_to_add", [])]
    return sorted(added), sorted(route.get("response_headers_to_remove", []))


def gateway_api_answer(c: Configs, path: str) -> str:
    """What the gateway does with an HTTPRoute path: the backend's cluster, or the status of an injected abort."""
    answer = ev.gateway_handles(c[GATEWAY], GATEWAY_PORTS.http, ev.Request("g.example.com", path))
    if answer.route is None:
        return answer.kind
    fault = ev.fault(answer.route)
    if fault is not None and fault.abort_share == 1.0:
        return f"abort {fault.abort_status}"
    partly = f"abort {fault.abort_status} of {fault.abort_share:g}, else " if fault and fault.abort_share else ""
    return partly + ",".join(ev.cluster_shares(answer.route))


def retry_on_route(c: Configs) -> dict:
    return route_to(c, ev.Request("echo", path="/retry-on/1"))


def retry_once_route(c: Configs) -> dict:
    return route_to(c, ev.Request("echo", path="/retry-once/1"))


def retry_hosts(route: dict) -> tuple[int, list[str]]:
    """(the retries a route makes, the host predicates that steer each retry)."""
    policy = ev.retry_policy(route)
    return ev.retry_count(policy), [p["name"] for p in (policy or {}).get("retry_host_predicate", [])]


def per_try_timeout(route: dict) -> float | None:
    policy = ev.retry_policy(route)
    return ev.seconds(policy["per_try_timeout"]) if policy and "per_try_timeout" in policy else None


def faults_where(c: Configs) -> tuple[bool, bool]:
    """(the caller's route injects the fault, echo's own inbound routes inject one)."""
    chain = ev.filter_chain(ev.inbound_listener(c["default/echo-v2-0"], 8080), PLAINTEXT)
    assert chain is not None
    inbound = chain["filters"][0]["typed_config"]["route_config"]["virtual_hosts"][0]["routes"]
    return ev.fault(jason_route(c)) is not None, any("typed_per_filter_config" in r for r in inbound)


def mutual_xfcc_details(c: Configs) -> object:
    chain = ev.filter_chain(ev.inbound_listener(c["default/echo-v1-0"], 8080), MUTUAL_TLS)
    assert chain is not None
    return chain["filters"][0]["typed_config"]["set_current_client_cert_details"]


def plaintext_xfcc(c: Configs) -> str:
    chain = ev.filter_chain(ev.inbound_listener(c["default/echo-v1-0"], 8080), PLAINTEXT)
    assert chain is not None
    return str(chain["filters"][0]["typed_config"]["forward_client_cert_details"])


def inbound_mode(config: ProxyConfig) -> str:
    inbound = ev.inbound_listener(config, 8080)
    mutual, plain = ev.accepts(inbound, MUTUAL_TLS), ev.accepts(inbound, PLAINTEXT)
    return {(True, False): "STRICT", (True, True): "PERMISSIVE", (False, True): "DISABLE"}[(mutual, plain)]


def client_tls_to(c: Configs, cluster_name: str) -> set[bool]:
    found = ev.cluster(c["default/client-0"], cluster_name)
    return {ev.upstream(found, e).tls for e in ev.endpoints(found)}


def gateway_answer(c: Configs, host: str) -> str:
    return ev.gateway_handles(c[GATEWAY], GATEWAY_PORTS.http, ev.Request(host)).kind


def gateway_certificate(c: Configs) -> str:
    listener = ev.listener_on(c[GATEWAY], GATEWAY_PORTS.https)
    assert listener is not None
    chain = ev.filter_chain(listener, ev.Connection(tls=True, sni="a.example.com"))
    assert chain is not None
    tls = ev.downstream_tls(chain)
    assert tls is not None
    return str(tls["common_tls_context"]["tls_certificates"][0]["certificate_chain"]["filename"])


def echo_allows_plaintext_caller(c: Configs) -> bool:
    chain = ev.filter_chain(ev.inbound_listener(c["default/echo-v1-0"], 8080), PLAINTEXT)
    assert chain is not None
    return ev.rbac_allows(chain, ev.Request("echo"), ev.Caller(None))


def echo_allows_client_to_private_path(c: Configs) -> bool:
    chain = ev.filter_chain(ev.inbound_listener(c["default/echo-v1-0"], 8080), MUTUAL_TLS)
    assert chain is not None
    return ev.rbac_allows(chain, ev.Request("echo", path="/private/x"),
                          ev.Caller("spiffe://cluster.local/ns/default/sa/client"))


def echo_allows_mixed_case_blocked_host(c: Configs) -> bool:
    """The client (whom the ALLOW admits) to /hosts/x with Host 'Blocked.Echo:8080': the DENY's hosts match it."""
    chain = ev.filter_chain(ev.inbound_listener(c["default/echo-v1-0"], 8080), MUTUAL_TLS)
    assert chain is not None
    return ev.rbac_allows(chain, ev.Request("Blocked.Echo:8080", path="/hosts/x"),
                          ev.Caller("spiffe://cluster.local/ns/default/sa/client"))


def echo_denies_outsider(c: Configs) -> bool:
    """Whether echo's DENY policy stops a caller from namespace secure on /outsiders/x (notNamespaces: [default])."""
    chain = ev.filter_chain(ev.inbound_listener(c["default/echo-v1-0"], 8080), MUTUAL_TLS)
    assert chain is not None
    return ev.rbac_denies(chain, ev.Request("echo", path="/outsiders/x"),
                          ev.Caller("spiffe://cluster.local/ns/secure/sa/vault"))


def jwt_rule_options(config: ProxyConfig) -> list[tuple[object, ...]]:
    """(issuer, audiences, header locations, forward) of each jwt_authn provider on echo's inbound 8080."""
    chain = ev.filter_chain(ev.inbound_listener(config, 8080), PLAINTEXT)
    assert chain is not None
    jwt = next(f for f in chain["filters"][0]["typed_config"]["http_filters"]
               if f["name"] == "envoy.filters.http.jwt_authn")
    return sorted((p["issuer"], tuple(p.get("audiences", ())),
                   tuple((h["name"], h["value_prefix"]) for h in p.get("from_headers", ())), p["forward"])
                  for p in jwt["typed_config"]["providers"].values())


def header_action(route: dict, direction: str, key: str) -> str:
    """The append_action of a route's header operation on `key` (`direction` "request" or "response")."""
    return str(next(h["append_action"] for h in route.get(f"{direction}_headers_to_add", [])
                    if h["header"]["key"] == key))


def echo_denies_secret_with_query(c: Configs) -> bool:
    """Whether echo's DENY of paths '*.secret' stops the client on /files/k.secret?download=1 (paths are matched
    without the query)."""
    chain = ev.filter_chain(ev.inbound_listener(c["default/echo-v1-0"], 8080), MUTUAL_TLS)
    assert chain is not None
    return ev.rbac_denies(chain, ev.Request("echo", path="/files/k.secret?download=1"),
                          ev.Caller("spiffe://cluster.local/ns/default/sa/client"))


def quiet_denies(c: Configs, path: str) -> bool:
    """Whether quiet (no RequestAuthentication selects it) denies the meshed client's request to `path`."""
    chain = ev.filter_chain(ev.inbound_listener(c["default/quiet-0"], 8080), MUTUAL_TLS)
    assert chain is not None
    return ev.rbac_denies(chain, ev.Request("quiet", path=path), ev.Caller("spiffe://cluster.local/ns/default/sa/client"))


def jwt_clock_skews(config: ProxyConfig) -> list[object]:
    chain = ev.filter_chain(ev.inbound_listener(config, 8080), PLAINTEXT)
    assert chain is not None
    jwt = next(f for f in chain["filters"][0]["typed_config"]["http_filters"]
               if f["name"] == "envoy.filters.http.jwt_authn")
    return sorted(str(p.get("clock_skew_seconds")) for p in jwt["typed_config"]["providers"].values())


def inbound_http_filters(config: ProxyConfig) -> list[str]:
    chain = ev.filter_chain(ev.inbound_listener(config, 8080), PLAINTEXT)
    assert chain is not None
    return [f["name"] for f in chain["filters"][0]["typed_config"]["http_filters"]]


def inbound_headers_removed(config: ProxyConfig) -> list[str]:
    chain = ev.filter_chain(ev.inbound_listener(config, 8080), PLAINTEXT)
    assert chain is not None
    return list(chain["filters"][0]["typed_config"]["route_config"].get("request_headers_to_remove", []))


ROUTES = r"^[^:]+:routes\."
# Which chains a listener has (STRICT: mTLS only, PERMISSIVE: both, DISABLE: plaintext only), and what makes a
# chain the mTLS or the plaintext one; never the routes or filters behind them.
# A mode's chains, and the listener filters they need (no TLS inspector where no chain takes TLS: DISABLE).
LISTENER_CHAINS = (r"^[^:]+:listeners\[\d+\]\.(listener_filters(\[len\]|\[\d+\]\..*)|filter_chains(\[len\]|\[\d+\]\."
                   r"(name|filter_chain_match|transport_socket"
                   r"|filters\[0\]\.typed_config\.(forward_client_cert_details|set_current_client_cert_details))))$")
ENDPOINT_METADATA = r":clusters\[\d+\]\.load_assignment\.endpoints\[0\]\.lb_endpoints\[\d+\]\.metadata$"


@dataclass(frozen=True)
class Case:
    """`touches`: regexes every differing path must match; `proxies`: which proxies may differ (None: any);
    `correct`/`broken`: one observable before and after, through envoy_view."""

    touches: tuple[str, ...]
    observe: Callable[[Configs], object]
    correct: object
    broken: object
    proxies: tuple[str, ...] | None = None


CASES: dict[Misbehaviour, Case] = {
    Misbehaviour.WEIGHTS_SKEWED: Case(
        (ROUTES + r".*\.weighted_clusters\.clusters\[\d+\]\.weight$",),
        lambda c: ev.cluster_shares(split_route(c)), {V1: 0.5, V2: 0.5}, {V1: 0.65, V2: 0.35}),
    Misbehaviour.FAULTS_IGNORED: Case(
        (ROUTES + r".*\.routes\[\d+\]\.typed_per_filter_config$",),
        lambda c: ev.fault(jason_route(c)) is not None, True, False),
    Misbehaviour.MIRROR_DROPPED: Case(
        (ROUTES + r".*\.route\.request_mirror_policies$",),
        lambda c: [m.share for m in ev.mirrors(split_route(c))], [0.25], []),
    Misbehaviour.MIRROR_PERCENTAGE_IGNORED: Case(
        (ROUTES + r".*\.request_mirror_policies\[0\]\.runtime_fraction\.default_value\.numerator$",),
        lambda c: [m.share for m in ev.mirrors(split_route(c))], [0.25], [1.0]),
    Misbehaviour.STRICT_AS_PERMISSIVE: Case(
        (LISTENER_CHAINS,), lambda c: inbound_mode(c["secure/vault-0"]), "STRICT", "PERMISSIVE",
        proxies=("secure/vault-0",)),
    Misbehaviour.PERMISSIVE_AS_STRICT: Case(
        (LISTENER_CHAINS,), lambda c: inbound_mode(c["default/echo-v1-0"]), "PERMISSIVE", "STRICT",
        proxies=("default/echo-v1-0", "default/echo-v2-0", "default/client-0", "secure/portal-0")),
    Misbehaviour.MTLS_PLAINTEXT: Case(
        (r":clusters\[\d+\]\.transport_socket(_matches)?$",),
        lambda c: client_tls_to(c, V1), {True}, {False}),
    Misbehaviour.AUTO_MTLS_IGNORES_DISABLE: Case(
        (ENDPOINT_METADATA,), lambda c: client_tls_to(c, QUIET), {False}, {True}),
    Misbehaviour.UNSET_NOT_INHERITED: Case(
        (LISTENER_CHAINS, ENDPOINT_METADATA), lambda c: inbound_mode(c["secure/vault-0"]), "STRICT", "PERMISSIVE"),
    Misbehaviour.PRECEDENCE_REVERSED: Case(
        (LISTENER_CHAINS, ENDPOINT_METADATA),
        lambda c: (inbound_mode(c["default/echo-v1-0"]), inbound_mode(c["default/quiet-0"]),
                   inbound_mode(c["secure/vault-0"])),
        ("PERMISSIVE", "DISABLE", "STRICT"), ("STRICT", "STRICT", "STRICT")),
    Misbehaviour.GATEWAY_HOST_IGNORED: Case(
        (r"^istio-system/istio-ingressgateway:(routes\..*|listeners\[\d+\]\.filter_chains\[\d+\]"
         r"\.filter_chain_match)$",),
        lambda c: gateway_answer(c, "b.example.com"), "not-found", "route", proxies=(GATEWAY,)),
    Misbehaviour.GATEWAY_HOST_PORT_KEPT: Case(
        (r"^istio-system/istio-ingressgateway:listeners\[\d+\]\.filter_chains\[\d+\]\.filters\[0\]\.typed_config"
         r"\.strip_any_host_port$",),
        lambda c: (gateway_answer(c, "a.example.com"), gateway_answer(c, "a.example.com:80")), ("route", "route"),
        ("route", "not-found"), proxies=(GATEWAY,)),
    Misbehaviour.GATEWAY_XFF_NOT_APPENDED: Case(
        (r"^istio-system/istio-ingressgateway:listeners\[\d+\]\.filter_chains\[\d+\]\.filters\[0\]\.typed_config"
         r"\.use_remote_address$",),
        lambda c: sorted({str(f["filters"][0]["typed_config"].get("use_remote_address"))
                          for listener in c[GATEWAY].listeners for f in listener.get("filter_chains", [])}),
        ["True"], ["False"], proxies=(GATEWAY,)),
    Misbehaviour.GATEWAY_CREDENTIAL_IGNORED: Case(
        (r"\.common_tls_context\.tls_certificates\[0\]\.(certificate_chain|private_key)\.filename$",),
        gateway_certificate, "/certs/credential/istio-system/a-cred.pem",
        "/certs/istio-system/istio-ingressgateway.pem", proxies=(GATEWAY,)),
    Misbehaviour.HEADER_MATCH_IGNORED: Case(
        (ROUTES + r".*\.routes(\[len\]|\[\d+\]\.match(\..*)?)$",),
        lambda c: ev.cluster_shares(split_route(c)), {V1: 0.5, V2: 0.5}, {V2: 1.0}),
    Misbehaviour.TIMEOUTS_IGNORED: Case(
        (ROUTES + r".*\.route\.timeout$",), lambda c: ev.route_timeout(jason_route(c)), 1.0, None),
    Misbehaviour.RETRIES_IGNORED: Case(
        (ROUTES + r".*\.route\.retry_policy(\..*)?$",),
        lambda c: (ev.retry_count(ev.retry_policy(jason_route(c))), 500 in ev.retried_statuses(
            ev.retry_policy(jason_route(c)))), (3, True), (2, False)),
    Misbehaviour.ROUTE_TIMEOUT_PER_TRY: Case(
        (ROUTES + r".*\.route\.(timeout|retry_policy\.per_try_timeout)$",),
        lambda c: [(ev.route_timeout(r), per_try_timeout(r)) for r in (jason_route(c), retry_on_route(c))],
        [(1.0, None), (2.0, 0.5)], [(None, 1.0), (None, 2.0)]),
    Misbehaviour.PER_TRY_TIMEOUT_IGNORED: Case(
        (ROUTES + r".*\.route\.retry_policy\.per_try_timeout$",),
        lambda c: per_try_timeout(retry_on_route(c)), 0.5, None),
    Misbehaviour.RETRY_SAME_HOST: Case(
        (ROUTES + r".*\.route\.retry_policy\.(retry_host_predicate|host_selection_retry_max_attempts)(\[.*|\..*)?$",),
        lambda c: [retry_hosts(r) for r in (retry_once_route(c), retry_on_route(c))],
        [(1, [PREVIOUS_HOSTS]), (2, [PREVIOUS_HOSTS])], [(1, []), (2, [])]),
    Misbehaviour.RETRY_ONCE_AS_NONE: Case(
        (ROUTES + r".*\.route\.retry_policy(\..*)?$",),
        lambda c: [retry_hosts(r)[0] for r in (retry_once_route(c), retry_on_route(c))], [1, 2], [0, 2]),
    Misbehaviour.RETRY_ON_IGNORED: Case(
        (ROUTES + r".*\.route\.retry_policy\.retry_on$",),
        lambda c: ev.retry_conditions(ev.retry_policy(retry_on_route(c))), {"connect-failure"}, {"5xx"}),
    Misbehaviour.DEFAULT_RETRIES_503: Case(
        (ROUTES + r".*\.route\.retry_policy\.retriable_status_codes$",),
        lambda c: 503 in ev.retried_statuses(ev.retry_policy(route_to(c, ev.Request("quiet")))), False, True),
    Misbehaviour.FAULTS_AT_DESTINATION: Case(
        (ROUTES + r".*\.routes\[\d+\]\.typed_per_filter_config$",
         r":listeners\[\d+\]\.filter_chains\[\d+\]\.filters\[0\]\.typed_config\.route_config\.virtual_hosts\[0\]"
         r"\.routes\[len\]$"),
        faults_where, (True, False), (False, True)),
    Misbehaviour.SUBSET_FIRST_LABEL_ONLY: Case(
        (r":clusters\[\d+\]\.load_assignment\.endpoints\[0\]\.lb_endpoints\[len\]$",),
        lambda c: len(ev.endpoints(ev.cluster(c["default/client-0"], f"outbound|80|blue-v1|{ECHO}"))), 1, 2),
    Misbehaviour.CIRCUIT_BREAKERS_IGNORED: Case(
        (r":clusters\[\d+\]\.(circuit_breakers\..*|typed_extension_protocol_options|connect_timeout)$",),
        lambda c: ev.thresholds(ev.cluster(c["default/client-0"], V1))["max_connections"], 1, 4294967295),
    Misbehaviour.LOAD_BALANCER_IGNORED: Case(
        (r":clusters\[\d+\]\.lb_policy$",),
        lambda c: ev.cluster(c["default/client-0"], V1)["lb_policy"], "ROUND_ROBIN", "LEAST_REQUEST"),
    Misbehaviour.SUBSET_POLICY_IGNORED: Case(
        (r":clusters\[\d+\]\.(circuit_breakers\..*|typed_extension_protocol_options|connect_timeout)$",),
        lambda c: ev.thresholds(ev.cluster(c["default/client-0"], f"outbound|80|pooled|{ECHO}"))["max_connections"],
        4294967295, 1),
    Misbehaviour.AUTHZ_IGNORED: Case(
        (r":listeners\[\d+\]\.filter_chains\[\d+\]\.filters\[0\]\.typed_config\.http_filters\[len\]$",),
        echo_allows_plaintext_caller, False, True,
        proxies=("default/echo-v1-0", "default/echo-v2-0", "default/quiet-0")),
    Misbehaviour.AUTHZ_NEGATIONS_IGNORED: Case(
        (r":listeners\[\d+\]\.filter_chains\[\d+\]\.filters\[0\]\.typed_config\.http_filters\[\d+\]\.typed_config\.rules\."
         r"policies\..*$",),
        echo_allows_client_to_private_path, False, True, proxies=("default/echo-v1-0", "default/echo-v2-0")),
    Misbehaviour.AUTHZ_HOSTS_CASE_SENSITIVE: Case(
        (r":listeners\[\d+\]\.filter_chains\[\d+\]\.filters\[0\]\.typed_config\.http_filters\[\d+\]\.typed_config\.rules\."
         r"policies\..*\.string_match\.ignore_case$",),
        echo_allows_mixed_case_blocked_host, False, True, proxies=("default/echo-v1-0", "default/echo-v2-0")),
    Misbehaviour.AUTHZ_NOT_NAMESPACES_OF_WORKLOAD: Case(
        (r":listeners\[\d+\]\.filter_chains\[\d+\]\.filters\[0\]\.typed_config\.http_filters\[\d+\]\.typed_config\.rules\."
         r"policies\..*\.principals\[.*$",),
        echo_denies_outsider, True, False, proxies=("default/echo-v1-0", "default/echo-v2-0")),
    Misbehaviour.EXACT_AS_PREFIX: Case(
        (ROUTES + r".*\.routes\[\d+\]\.match\.(headers\[\d+\]\.string_match\.(exact|prefix)|path|prefix)$",),
        lambda c: ev.cluster_shares(route_to(c, ev.Request("echo", headers={"end-user": "jasonx"}))),
        {V1: 0.5, V2: 0.5}, {V2: 1.0}),
    Misbehaviour.REGEX_AS_PARTIAL_MATCH: Case(
        (ROUTES + r".*\.routes\[\d+\]\.match\.safe_regex\.regex$",),
        lambda c: ev.cluster_shares(route_to(c, ev.Request("echo", path="/x/re/1"))), {V1: 0.5, V2: 0.5}, {V2: 1.0}),
    Misbehaviour.WILDCARD_WITHOUT_DOT_BOUNDARY: Case(
        (r"^[^:]+:routes\..*\.domains\[\d+\]$",),  # every wildcard domain: the gateway's, a sidecar's *.wildcard.test
        lambda c: gateway_answer(c, "badwild.example.com"), "not-found", "route"),
    Misbehaviour.PORT_LEVEL_MTLS_IGNORED: Case(
        (LISTENER_CHAINS,), lambda c: inbound_mode(c["secure/portal-0"]), "PERMISSIVE", "STRICT",
        proxies=("secure/portal-0",)),
    Misbehaviour.STRICT_CLIENT_CERTIFICATE_OPTIONAL: Case(
        (r":listeners\[\d+\]\.filter_chains\[\d+\]\.transport_socket\.typed_config\.require_client_certificate$",),
        lambda c: ev.accepts(ev.inbound_listener(c["secure/vault-0"], 8080), ev.Connection(tls=True)), False, True),
    Misbehaviour.NAMESPACE_POLICY_EVERYWHERE: Case(
        (LISTENER_CHAINS, ENDPOINT_METADATA), lambda c: inbound_mode(c["secure/vault-0"]), "STRICT", "PERMISSIVE"),
    Misbehaviour.HTTPS_REDIRECT_IGNORED: Case(
        (r"^istio-system/istio-ingressgateway:routes\..*\.(require_tls|virtual_hosts\[len\])$",),
        lambda c: gateway_answer(c, "secure.example.com"), "redirect", "not-found", proxies=(GATEWAY,)),
    Misbehaviour.REQUEST_HEADER_OPERATIONS_IGNORED: Case(
        (ROUTES + r".*\.routes\[\d+\]\.request_headers_to_(add|remove)$",),
        lambda c: sorted(split_route(c).get("request_headers_to_remove", [])), ["x-drop"], []),
    Misbehaviour.RESPONSE_HEADER_OPERATIONS_IGNORED: Case(
        (ROUTES + r".*\.routes\[\d+\]\.response_headers_to_(add(\[len\]|\[\d+\]\..*)?|remove)$",),
        lambda c: response_headers(deprecated_route(c)), (["x-added", "x-destination", "x-rule"], ["x-app"]),
        (["x-rule"], [])),
    Misbehaviour.DELAY_PERCENT_IGNORED: Case(
        (ROUTES + r".*\.typed_per_filter_config\.envoy\.filters\.http\.fault\.delay\.percentage\.numerator$",),
        lambda c: ev.fault(deprecated_route(c)).delay_share, 1.0, 0.0),  # type: ignore[union-attr]
    Misbehaviour.METHOD_MATCH_IGNORED: Case(
        (ROUTES + r".*\.routes\[\d+\]\.match(\.headers)?$",),
        lambda c: ev.cluster_shares(route_to(c, ev.Request("echo", path="/method/1", method="POST"))),
        {V1: 0.5, V2: 0.5}, {V2: 1.0}),
    Misbehaviour.QUERY_MATCH_IGNORED: Case(
        (ROUTES + r".*\.routes\[\d+\]\.match(\.query_parameters)?$",),
        lambda c: ev.cluster_shares(route_to(c, ev.Request("echo", path="/query/1"))), {V1: 0.5, V2: 0.5},
        {V2: 1.0}),
    Misbehaviour.ROUTE_NAMES_GENERATED: Case(
        (ROUTES + r".*\.routes\[\d+\]\.name$",), lambda c: retry_once_route(c)["name"], "once", "echo.2"),
    Misbehaviour.MATCH_PORT_IGNORED: Case(
        (ROUTES + r".*\.routes(\[len\]|\[\d+\](\..*)?)$",),
        lambda c: ev.cluster_shares(split_route(c)), {V1: 0.5, V2: 0.5}, {V1: 1.0}),
    Misbehaviour.MIRROR_SUBSET_IGNORED: Case(
        (ROUTES + r".*\.route\.request_mirror_policies\[0\]\.cluster$",),
        lambda c: [m.cluster for m in ev.mirrors(split_route(c))], [V2], [f"outbound|80||{ECHO}"]),
    Misbehaviour.MIRROR_PORT_IGNORED: Case(
        (ROUTES + r".*\.route\.request_mirror_policies\[0\]\.cluster$",),
        lambda c: [m.cluster for m in ev.mirrors(route_to(c, ev.Request("echo", path="/mirror-port/1")))],
        [f"outbound|81||{SHADOW}"], [f"outbound|80||{SHADOW}"]),
    Misbehaviour.PARENT_NAMESPACE_IGNORED: Case(
        (r"^istio-system/istio-ingressgateway:routes\..*$",),
        lambda c: ev.gateway_handles(c[GATEWAY], GATEWAY_PORTS.http, ev.Request("s.example.com")).kind, "route",
        "not-found", proxies=(GATEWAY,)),
    Misbehaviour.ALLOWED_ROUTES_SAME_IGNORED: Case(
        (r"^istio-system/istio-ingressgateway:routes\..*\.routes(\[len\]|\[\d+\](\..*)?)$",),
        lambda c: gateway_api_route(c, "/same-namespace/x"), "not-found",
        "outbound|80||vault.secure.svc.cluster.local", proxies=(GATEWAY,)),
    Misbehaviour.BACKEND_KIND_IGNORED: Case(
        (r"^istio-system/istio-ingressgateway:routes\..*\.routes\[\d+\]\.(route\..*|typed_per_filter_config)$",),
        lambda c: gateway_api_answer(c, "/g/kind/x"), "abort 500", f"outbound|80||{ECHO}", proxies=(GATEWAY,)),
    Misbehaviour.PARENT_PORT_IGNORED: Case(
        (r"^istio-system/istio-ingressgateway:routes\..*$",),
        lambda c: gateway_api_answer(c, "/port-miss/x"), "not-found", "outbound|80||quiet.default.svc.cluster.local",
        proxies=(GATEWAY,)),
    Misbehaviour.INVALID_BACKEND_SHARE_DROPPED: Case(
        (r"^istio-system/istio-ingressgateway:routes\..*\.routes\[\d+\]\.typed_per_filter_config$",),
        lambda c: gateway_api_answer(c, "/g/half/x"), f"abort 500 of 0.5, else outbound|80||{ECHO}",
        f"outbound|80||{ECHO}", proxies=(GATEWAY,)),
    Misbehaviour.REFERENCE_GRANT_IGNORED: Case(
        (r"^istio-system/istio-ingressgateway:routes\..*\.routes\[\d+\]\.(route\..*|typed_per_filter_config)$",),
        lambda c: gateway_api_answer(c, "/g/namespace/x"), "abort 500", "outbound|80||vault.secure.svc.cluster.local",
        proxies=(GATEWAY,)),
    Misbehaviour.XFCC_SUBJECT_DROPPED: Case(
        (r":listeners\[\d+\]\.filter_chains\[\d+\]\.filters\[0\]\.typed_config\.set_current_client_cert_details\.subject$",),
        mutual_xfcc_details, {"subject": True, "uri": True}, {"subject": False, "uri": True}),
    Misbehaviour.XFCC_FORWARDED_FROM_UNTRUSTED: Case(
        (LISTENER_CHAINS,), plaintext_xfcc, "SANITIZE", "ALWAYS_FORWARD_ONLY"),
    Misbehaviour.OUTLIER_DETECTION_IGNORED: Case(
        (r":clusters\[\d+\]\.(outlier_detection|common_lb_config)(\..*)?$",),
        lambda c: "outlier_detection" in ev.cluster(c["default/client-0"], V1), True, False),
    Misbehaviour.OUTLIER_CONSECUTIVE_OFF_BY_ONE: Case(
        (r":clusters\[\d+\]\.outlier_detection\.consecutive_5xx$",),
        lambda c: ev.cluster(c["default/client-0"], V1)["outlier_detection"]["consecutive_5xx"], 1, 2),
    Misbehaviour.JWT_IGNORED: Case(
        (r":listeners\[\d+\]\.filter_chains\[\d+\]\.filters\[0\]\.typed_config\.http_filters\[len\]$",),
        lambda c: "envoy.filters.http.jwt_authn" in inbound_http_filters(c["default/echo-v1-0"]), True, False,
        proxies=("default/echo-v1-0", "default/echo-v2-0")),
    Misbehaviour.JWT_RULE_OPTIONS_IGNORED: Case(
        (r":listeners\[\d+\]\.filter_chains\[\d+\]\.filters\[0\]\.typed_config\.http_filters\[\d+\]\.typed_config\."
         r"providers\..*\.(audiences|from_headers|forward)(\..*|\[.*)?$",),
        lambda c: jwt_rule_options(c["default/echo-v1-0"]),
        [("https://header-issuer.test", ("echo",), (("x-jwt-assertion", "Token "),), True),
         ("https://issuer.test", (), (), False)],
        [("https://header-issuer.test", (), (), False), ("https://issuer.test", (), (), False)],
        proxies=("default/echo-v1-0", "default/echo-v2-0")),
    Misbehaviour.PATH_PREFIX_AS_STRING_PREFIX: Case(
        (r"^istio-system/istio-ingressgateway:routes\..*\.routes(\[len\]|\[\d+\]\.(match\..*|name|route\..*|typed_per_filter_config))$",),
        lambda c: gateway_api_route(c, "/gx"), "not-found", f"outbound|80||{ECHO}", proxies=(GATEWAY,)),
    Misbehaviour.GATEWAY_API_PRECEDENCE_IGNORED: Case(
        (r"^istio-system/istio-ingressgateway:routes\..*\.routes\[\d+\]\.(match\..*|name|route\..*|"
         r"typed_per_filter_config(\..*)?)$",),
        lambda c: gateway_api_route(c, "/g/deeper/x"), "outbound|80||quiet.default.svc.cluster.local",
        f"outbound|80||{ECHO}", proxies=(GATEWAY,)),
    Misbehaviour.REGISTRY_ONLY_IGNORED: Case(
        (ROUTES + r".*\.virtual_hosts\[\d+\]\.(name|routes(\[\d+\]\..*)?)$",),
        lambda c: ev.route_named_in(ev.sidecar_routes(c["default/client-0"]), ev.Request(
            "203.0.113.9:8080", headers={ORIGINAL_DST_HEADER: "203.0.113.9:8080"})), "block_all", "allow_any",
        proxies=("default/client-0", "secure/vault-0", "secure/portal-0")),
    Misbehaviour.ROOT_SIDECAR_OVER_NAMESPACE: Case(
        (ROUTES + r".*\.virtual_hosts\[\d+\]\.(name|routes(\[\d+\]\..*)?)$",),
        lambda c: ev.route_named_in(ev.sidecar_routes(c["secure/vault-0"]), ev.Request(
            "203.0.113.9:8080", headers={ORIGINAL_DST_HEADER: "203.0.113.9:8080"})), "block_all", "allow_any",
        proxies=("secure/vault-0", "secure/portal-0")),
    Misbehaviour.SERVICE_ENTRIES_IGNORED: Case(
        (ROUTES + r".*\.virtual_hosts(\[len\]|\[\d+\](\..*)?)$", r":clusters(\[len\]|\[\d+\](\..*)?)$"),
        lambda c: ev.route_named_in(ev.sidecar_routes(c["default/client-0"]), ev.Request("api.outside.test")),
        "default", "block_all"),
    Misbehaviour.EGRESS_WILDCARD_VS_IGNORED: Case(
        (ROUTES + r".*\.virtual_hosts\[\d+\]\.routes(\[len\]|\[\d+\](\..*)?)$",),
        lambda c: ev.route_named_in(ev.sidecar_routes(c["default/client-0"]), ev.Request("api.wildcard.test")),
        "wild", "default"),
    Misbehaviour.PASSTHROUGH_BLOCKED: Case(
        (ROUTES + r".*\.virtual_hosts\[\d+\]\.(name|routes(\[\d+\]\..*)?)$",),
        lambda c: ev.route_named_in(ev.sidecar_routes(c["default/echo-v1-0"]), ev.Request(
            "203.0.113.9:8080", headers={ORIGINAL_DST_HEADER: "203.0.113.9:8080"})), "allow_any", "block_all"),
    Misbehaviour.HEADER_ADD_REPLACES: Case(
        (ROUTES + r".*\.routes\[\d+\]\.(request|response)_headers_to_add\[\d+\]\.append_action$",),
        lambda c: header_action(deprecated_route(c), "response", "x-added"), "APPEND_IF_EXISTS_OR_ADD",
        "OVERWRITE_IF_EXISTS_OR_ADD"),
    Misbehaviour.HEADER_SET_APPENDS: Case(
        (r"^[^:]+:routes\..*(request|response)_headers_to_add\[\d+\]\.append_action$",),
        lambda c: header_action(split_route(c), "request", "x-set"), "OVERWRITE_IF_EXISTS_OR_ADD",
        "APPEND_IF_EXISTS_OR_ADD"),
    Misbehaviour.AUTHZ_PATH_WITH_QUERY: Case(
        (r":listeners\[\d+\]\.filter_chains\[\d+\]\.filters\[0\]\.typed_config\.http_filters\[\d+\]\.typed_config\.rules\."
         r"policies\..*$",),
        echo_denies_secret_with_query, True, False,
        proxies=("default/echo-v1-0", "default/echo-v2-0", "default/quiet-0")),
    Misbehaviour.UNVERIFIED_REQUEST_PRINCIPAL: Case(
        (r":listeners\[\d+\]\.filter_chains\[\d+\]\.filters\[0\]\.typed_config\.http_filters\[\d+\]\.typed_config\.rules\."
         r"policies\..*$",),
        lambda c: quiet_denies(c, "/token/x"), False, True, proxies=("default/quiet-0",)),
    Misbehaviour.ROOT_NAMESPACE_POLICIES_IGNORED: Case(
        (r":listeners\[\d+\]\.filter_chains\[\d+\]\.filters\[0\]\.typed_config\.http_filters\[len\]$",),
        lambda c: "envoy.filters.http.rbac.deny" in inbound_http_filters(c["default/quiet-0"]), True, False,
        proxies=("default/quiet-0",)),
    Misbehaviour.MIRROR_SHADOW_HOST: Case(
        (ROUTES + r".*\.route\.request_mirror_policies\[\d+\]\.disable_shadow_host_suffix_append$",),
        lambda c: [m.host_suffix_appended for m in ev.mirrors(split_route(c))], [False], [True]),
    Misbehaviour.DNS_AS_PASSTHROUGH: Case(
        (r":clusters\[\d+\]\.(type|lb_policy|load_assignment|original_dst_lb_config)$",),
        lambda c: ev.cluster(c["default/client-0"], "outbound|80||dns.outside.test")["type"], "STRICT_DNS",
        "ORIGINAL_DST"),
    Misbehaviour.ZERO_WEIGHT_BACKENDS_USED: Case(
        (r"^istio-system/istio-ingressgateway:routes\..*\.routes\[\d+\]\.(route\..*|typed_per_filter_config)$",),
        lambda c: gateway_api_answer(c, "/g/zero/x"), "abort 500", "outbound|80||quiet.default.svc.cluster.local",
        proxies=(GATEWAY,)),
    Misbehaviour.GATEWAY_FIRST_SERVER_HOSTS: Case(
        (r"^istio-system/istio-ingressgateway:routes\..*$",),
        lambda c: gateway_answer(c, "secure.example.com"), "redirect", "not-found", proxies=(GATEWAY,)),
    Misbehaviour.JWT_EXPIRY_UNCHECKED: Case(
        (r":listeners\[\d+\]\.filter_chains\[\d+\]\.filters\[0\]\.typed_config\.http_filters\[\d+\]\.typed_config\."
         r"providers\..*\.clock_skew_seconds$",),
        lambda c: jwt_clock_skews(c["default/echo-v1-0"]), ["None", "None"], ["315360000", "315360000"],
        proxies=("default/echo-v1-0", "default/echo-v2-0")),
    Misbehaviour.TRACE_HEADERS_DROPPED: Case(
        (r":listeners\[\d+\]\.filter_chains\[\d+\]\.filters\[0\]\.typed_config\.route_config"
         r"\.request_headers_to_remove$",),
        lambda c: "traceparent" in inbound_headers_removed(c["default/echo-v1-0"]), False, True),
}


def test_every_translator_misbehaviour_has_a_case() -> None:
    # no-injection and identity-from-deployment-name act on the snapshot (pods, identities), not the translator.
    assert set(CASES) == set(Misbehaviour) - {Misbehaviour.NO_INJECTION, Misbehaviour.IDENTITY_FROM_DEPLOYMENT_NAME}


@pytest.fixture(scope="module")
def correct() -> Configs:
    return everything().translate()


@pytest.mark.parametrize("misbehaviour", sorted(CASES), ids=str)
def test_a_misbehaviour_breaks_its_rule_and_nothing_else(misbehaviour: Misbehaviour, correct: Configs) -> None:
    case = CASES[misbehaviour]
    broken = everything().translate([misbehaviour])
    assert case.observe(correct) == case.correct, "the correct translation shows the rule"
    assert case.observe(broken) == pytest.approx(case.broken) if isinstance(case.broken, dict) \
        else case.observe(broken) == case.broken, f"{misbehaviour} must break its rule"
    changes = ev.config_diff(correct, broken)
    assert changes, f"{misbehaviour} changed nothing"
    stray = [p for p in changes if not any(re.search(t, p) for t in case.touches)]
    assert not stray, f"{misbehaviour} changed fields outside its rule: {stray[:10]}"
    if case.proxies is not None:
        assert {p.split(":")[0] for p in changes} <= set(case.proxies), changes[:10]


def test_no_injection_drops_every_sidecar_and_nothing_else() -> None:
    normal, broken = build(), build(no_injection=True)
    assert any(p.injected for p in normal.pods) and not any(p.injected for p in broken.pods)
    correct_configs = translate(normal, FakeCerts(), GATEWAY_PORTS, proxy_paths)
    broken_configs = translate(broken, FakeCerts(), GATEWAY_PORTS, proxy_paths)
    assert set(broken_configs) == {GATEWAY}
    changes = ev.config_diff({GATEWAY: correct_configs[GATEWAY]}, broken_configs)
    assert all(re.search(ENDPOINT_METADATA, p) for p in changes), changes
    assert [(p.name, p.ip, p.container_ports) for p in normal.pods] == [
        (p.name, p.ip, p.container_ports) for p in broken.pods], "the same pods, only without sidecars"


def test_misbehaviours_combine_without_touching_each_other() -> None:
    both = everything().translate([Misbehaviour.WEIGHTS_SKEWED, Misbehaviour.FAULTS_IGNORED])
    assert ev.cluster_shares(split_route(both)) == pytest.approx({V1: 0.65, V2: 0.35})
    assert ev.fault(jason_route(both)) is None
    assert ev.route_timeout(jason_route(both)) == 1.0
