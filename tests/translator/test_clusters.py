"""Outbound clusters from Services and DestinationRules, judged by what Envoy would do: which endpoints a
subset reaches, whether a connection to an endpoint is mutual TLS (DR tls DISABLE / ISTIO_MUTUAL, auto mTLS
by endpoint metadata), circuit breakers, outlier detection and load balancing (istio.io DestinationRule
reference; istiod pilot/pkg/networking/core/cluster_traffic_policy.go and cluster_tls.go)."""

from __future__ import annotations

import pytest

from meshconform.platform.local.translator.model import ProxyConfig
from tests.translator import envoy_view as ev
from tests.translator.meshes import CA, ECHO_SUBSETS, Mesh, echo_mesh, peer_auth, pod, service

ECHO = "echo.default.svc.cluster.local"
V1, V2, ALL = f"outbound|80|v1|{ECHO}", f"outbound|80|v2|{ECHO}", f"outbound|80||{ECHO}"
MAX = 4294967295


def client(mesh: Mesh) -> ProxyConfig:
    return mesh.translate()["default/client-0"]


def pods_by_ip(mesh: Mesh) -> dict[str, str]:
    return {p.ip: p.name for p in mesh.pods}


def dr(traffic_policy: str = "", subsets: str = "", host: str = "echo", name: str = "echo",
       namespace: str = "default") -> str:
    body = f"\n  trafficPolicy: {traffic_policy}" if traffic_policy else ""
    body += f"\n  subsets: {subsets}" if subsets else ""
    return f"""
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  host: {host}{body}
---
"""


# ---------------------------------------------------------------- subsets and endpoints

def test_subsets_select_endpoints_by_labels() -> None:
    mesh = echo_mesh().add(ECHO_SUBSETS)
    config, ips = client(mesh), pods_by_ip(mesh)

    def reached(name: str) -> set[tuple[str, int]]:
        return {(ips[e.address], e.port) for e in ev.endpoints(ev.cluster(config, name))}

    assert reached(V1) == {("echo-v1-0", 8080)}
    assert reached(V2) == {("echo-v2-0", 8080)}
    assert reached(ALL) == {("echo-v1-0", 8080), ("echo-v2-0", 8080)}, "the service's own cluster: every pod"


def test_a_subset_selecting_no_pod_has_no_endpoints() -> None:
    mesh = echo_mesh().add(dr(subsets="[{name: v9, labels: {version: v9}}]"))
    assert ev.endpoints(ev.cluster(client(mesh), f"outbound|80|v9|{ECHO}")) == []


def test_endpoints_use_the_target_port_and_only_pods_of_the_service_namespace() -> None:
    mesh = Mesh().add(service("echo", port=9080, target_port=9999), service("echo", namespace="other")).with_pods(
        pod("echo-0", labels={"app": "echo"}, ports=(9999,)),
        pod("echo-0", namespace="other", labels={"app": "echo"}), pod("client-0", labels={"app": "client"}))
    mesh.namespaces["other"] = {"istio-injection": "enabled"}
    config, ips = client(mesh), {p.ip: f"{p.namespace}/{p.name}" for p in mesh.pods}
    assert {(ips[e.address], e.port) for e in ev.endpoints(ev.cluster(config, f"outbound|9080||{ECHO}"))} == {
        ("default/echo-0", 9999)}
    other = ev.cluster(config, "outbound|80||echo.other.svc.cluster.local")
    assert {ips[e.address] for e in ev.endpoints(other)} == {"other/echo-0"}


def test_a_subset_traffic_policy_overrides_the_rule_level_one() -> None:
    mesh = echo_mesh().add(dr("{loadBalancer: {simple: ROUND_ROBIN}}",
                              "[{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}, "
                              "trafficPolicy: {loadBalancer: {simple: RANDOM}}}]"))
    config = client(mesh)
    assert ev.lb_policy(ev.cluster(config, ALL)) == "ROUND_ROBIN"
    assert ev.lb_policy(ev.cluster(config, V1)) == "ROUND_ROBIN"
    assert ev.lb_policy(ev.cluster(config, V2)) == "RANDOM"


def test_a_destination_rule_in_another_namespace_applies_by_fully_qualified_host() -> None:
    mesh = echo_mesh().add(dr("{loadBalancer: {simple: RANDOM}}", host=ECHO, namespace="istio-system"))
    assert ev.lb_policy(ev.cluster(client(mesh), ALL)) == "RANDOM"
    short = echo_mesh().add(dr("{loadBalancer: {simple: RANDOM}}", host="echo", namespace="istio-system"))
    assert ev.lb_policy(ev.cluster(client(short), ALL)) == "LEAST_REQUEST", \
        "a short host is read in the rule's own namespace (echo.istio-system), so it does not apply"


# ---------------------------------------------------------------- load balancing

@pytest.mark.parametrize(("simple", "envoy"), [
    (None, "LEAST_REQUEST"), ("LEAST_REQUEST", "LEAST_REQUEST"), ("LEAST_CONN", "LEAST_REQUEST"),
    ("ROUND_ROBIN", "ROUND_ROBIN"), ("RANDOM", "RANDOM"),
])
def test_load_balancer_policy(simple: str | None, envoy: str) -> None:
    mesh = echo_mesh().add(dr(f"{{loadBalancer: {{simple: {simple}}}}}")) if simple else echo_mesh()
    assert ev.lb_policy(ev.cluster(client(mesh), ALL)) == envoy


# ---------------------------------------------------------------- client TLS

def mixed_mesh(*extra: str) -> Mesh:
    """Service `mixed`: one pod with a sidecar, one without (a half-migrated workload)."""
    return Mesh().add(service("mixed"), *extra).with_pods(
        pod("mixed-meshed", labels={"app": "mixed", "v": "a"}, service_account="mixed"),
        pod("mixed-plain", labels={"app": "mixed", "v": "b"}, sidecar=False),
        pod("client-0", labels={"app": "client"}))


MIXED = "outbound|80||mixed.default.svc.cluster.local"


def connections(mesh: Mesh, cluster_name: str = MIXED) -> dict[str, ev.Upstream]:
    config, ips = client(mesh), pods_by_ip(mesh)
    found = ev.cluster(config, cluster_name)
    return {ips[e.address]: ev.upstream(found, e) for e in ev.endpoints(found)}


def test_auto_mtls_sends_mutual_tls_to_sidecars_and_plaintext_to_the_rest() -> None:
    seen = connections(mixed_mesh())
    meshed, plain = seen["mixed-meshed"], seen["mixed-plain"]
    assert meshed.tls and meshed.client_certificate and meshed.trusted_ca == str(CA)
    assert meshed.alpn == ("istio",)
    assert meshed.peer_identities == ("spiffe://cluster.local/ns/default/sa/mixed",)
    assert meshed.sni == "outbound_.80_._.mixed.default.svc.cluster.local"
    assert not plain.tls


@pytest.mark.parametrize("policy", [
    peer_auth("default", "default", "DISABLE"),
    peer_auth("mixed", "default", "DISABLE", selector={"app": "mixed"}),
    peer_auth("default", "istio-system", "DISABLE"),
], ids=["namespace", "workload", "mesh"])
def test_auto_mtls_sends_plaintext_to_a_sidecar_whose_policy_is_disable(policy: str) -> None:
    seen = connections(mixed_mesh(policy))
    assert not seen["mixed-meshed"].tls and not seen["mixed-plain"].tls


def test_auto_mtls_follows_port_level_disable_on_the_target_port() -> None:
    seen = connections(mixed_mesh(peer_auth("mixed", "default", "STRICT", selector={"app": "mixed"},
                                            ports={8080: "DISABLE"})))
    assert not seen["mixed-meshed"].tls


def test_destination_rule_disable_sends_plaintext_even_to_sidecars() -> None:
    seen = connections(mixed_mesh(dr("{tls: {mode: DISABLE}}", host="mixed", name="mixed")))
    assert not seen["mixed-meshed"].tls and not seen["mixed-plain"].tls


def test_destination_rule_istio_mutual_sends_mutual_tls_to_every_endpoint() -> None:
    seen = connections(mixed_mesh(dr("{tls: {mode: ISTIO_MUTUAL}}", host="mixed", name="mixed")))
    assert all(u.tls and u.client_certificate and u.trusted_ca == str(CA) for u in seen.values())


def test_subset_tls_mode_applies_to_that_subset_only() -> None:
    mesh = mixed_mesh(dr(subsets="[{name: a, labels: {v: a}, trafficPolicy: {tls: {mode: DISABLE}}}, "
                                 "{name: b, labels: {v: b}}]", host="mixed", name="mixed"))
    assert not connections(mesh, "outbound|80|a|mixed.default.svc.cluster.local")["mixed-meshed"].tls
    assert connections(mesh)["mixed-meshed"].tls, "the service-wide cluster keeps auto mTLS"


def test_client_presents_its_own_workload_certificate() -> None:
    mesh = mixed_mesh()
    config = client(mesh)
    found = ev.cluster(config, MIXED)
    meshed = next(e for e in ev.endpoints(found) if pods_by_ip(mesh)[e.address] == "mixed-meshed")
    socket = ev.upstream_socket(found, meshed)
    assert socket is not None
    certificate = socket["typed_config"]["common_tls_context"]["tls_certificates"][0]
    assert certificate["certificate_chain"]["filename"] == "/certs/default/client-0.pem"
    assert certificate["private_key"]["filename"] == "/certs/default/client-0.key"


# ---------------------------------------------------------------- connection pool and outlier detection

def test_without_a_connection_pool_istio_lifts_envoys_small_circuit_breaker_defaults() -> None:
    config = client(echo_mesh())
    found = ev.cluster(config, ALL)
    assert ev.thresholds(found) == {"max_connections": MAX, "max_pending_requests": MAX, "max_requests": MAX,
                                    "max_retries": MAX}
    assert ev.seconds(found["connect_timeout"]) == 10.0, "meshConfig.connectTimeout defaults to 10s"
    assert ev.max_requests_per_connection(found) is None


def test_connection_pool_becomes_circuit_breakers() -> None:
    mesh = echo_mesh().add(dr("""
    connectionPool:
      tcp: {maxConnections: 1, connectTimeout: 30ms}
      http: {http1MaxPendingRequests: 2, http2MaxRequests: 3, maxRequestsPerConnection: 1, maxRetries: 4}"""))
    found = ev.cluster(client(mesh), ALL)
    assert ev.thresholds(found) == {"max_connections": 1, "max_pending_requests": 2, "max_requests": 3,
                                    "max_retries": 4}
    assert ev.seconds(found["connect_timeout"]) == pytest.approx(0.03)
    assert ev.max_requests_per_connection(found) == 1


def test_partial_connection_pool_keeps_the_other_thresholds_at_istios_defaults() -> None:
    mesh = echo_mesh().add(dr("{connectionPool: {http: {http1MaxPendingRequests: 1}}}"))
    assert ev.thresholds(ev.cluster(client(mesh), ALL)) == {
        "max_connections": MAX, "max_pending_requests": 1, "max_requests": MAX, "max_retries": MAX}


def test_connection_pool_applies_to_every_subset_cluster() -> None:
    mesh = echo_mesh().add(dr("{connectionPool: {tcp: {maxConnections: 7}}}",
                              "[{name: v1, labels: {version: v1}}]"))
    config = client(mesh)
    assert ev.thresholds(ev.cluster(config, V1))["max_connections"] == 7
    assert ev.thresholds(ev.cluster(config, ALL))["max_connections"] == 7


@pytest.mark.xfail(strict=True, reason=(
    "HTTPSettings.maxRetries is a plain int32 in istio/api, so 0 is its unset value: Istio keeps the documented "
    "default 2^32-1 ('Defaults to 2^32-1', istio.io DestinationRule reference, ConnectionPoolSettings.HTTPSettings; "
    "istiod sets MaxRetries only when > 0, cluster_traffic_policy.go applyConnectionPool). Our translator writes "
    "max_retries 0, so Envoy allows no retry at all towards the cluster."))
def test_max_retries_zero_is_unset_and_keeps_istios_default() -> None:
    mesh = echo_mesh().add(dr("{connectionPool: {http: {maxRetries: 0}}}"))
    assert ev.thresholds(ev.cluster(client(mesh), ALL))["max_retries"] == MAX


CIRCUIT_BREAKING_TASK = """{outlierDetection: {consecutive5xxErrors: 1, interval: 1s, baseEjectionTime: 3m,
    maxEjectionPercent: 100}}"""


def test_outlier_detection() -> None:
    found = ev.cluster(client(echo_mesh().add(dr(CIRCUIT_BREAKING_TASK))), ALL)
    od = found["outlier_detection"]
    assert od["consecutive_5xx"] == 1 and od["enforcing_consecutive_5xx"] == 100
    assert ev.seconds(od["interval"]) == 1.0 and ev.seconds(od["base_ejection_time"]) == 180.0
    assert od["max_ejection_percent"] == 100
    assert od.get("enforcing_success_rate") == 0, "Istio disables success-rate ejection"


def test_no_outlier_detection_unless_configured() -> None:
    assert "outlier_detection" not in ev.cluster(client(echo_mesh()), ALL)


# outlierDetection.minHealthPercent defaults to 0 % in Istio ('The default is 0% as it's not typically applicable
# in k8s environments with few pods per service', istio.io DestinationRule reference); istiod makes it the cluster's
# healthy_panic_threshold (cluster_traffic_policy.go applyOutlierDetection), so ejected hosts stay out.
def test_outlier_detection_disables_the_panic_threshold_by_default() -> None:
    found = ev.cluster(client(echo_mesh().add(dr(CIRCUIT_BREAKING_TASK))), ALL)
    assert ev.panic_threshold(found) == 0.0


def test_outlier_detection_min_health_percent_is_the_panic_threshold() -> None:
    rule = dr("{outlierDetection: {consecutive5xxErrors: 2, minHealthPercent: 40}}")
    found = ev.cluster(client(echo_mesh().add(rule)), ALL)
    assert ev.panic_threshold(found) == 40.0


# ---------------------------------------------------------------- inbound clusters

def test_inbound_cluster_reaches_the_app_behind_the_sidecar() -> None:
    mesh = echo_mesh()
    echo_pod = next(p for p in mesh.pods if p.name == "echo-v1-0")
    config = mesh.translate()["default/echo-v1-0"]
    [endpoint] = ev.endpoints(ev.cluster(config, "inbound|8080||"))
    assert (endpoint.address, endpoint.port) == (echo_pod.ip, echo_pod.app_port(8080))
    assert endpoint.port != 8080, "the sidecar owns the pod port; the app listens elsewhere"


# ---------------------------------------------------------------- which DestinationRule a client uses

LOOKUP_PATH = ("istio.io Traffic Management Best Practices, 'Cross-namespace configuration': a destination rule is "
               "looked up in the client namespace, then the service namespace, then the root namespace "
               "(istio-system)")


def clients_in(*namespaces: str) -> Mesh:
    mesh = Mesh().add(service("echo")).with_pods(pod("echo-0", labels={"app": "echo"}))
    for ns in namespaces:
        mesh.namespaces[ns] = {"istio-injection": "enabled"}
        mesh.with_pods(pod("client-0", namespace=ns, labels={"app": "client"}))
    return mesh


def lb_seen_from(mesh: Mesh, namespace: str) -> str:
    return ev.lb_policy(ev.cluster(mesh.translate()[f"{namespace}/client-0"], ALL))


def test_a_destination_rule_in_the_service_namespace_applies_to_clients_everywhere() -> None:
    mesh = clients_in("default", "ns1").add(dr("{loadBalancer: {simple: RANDOM}}"))
    assert lb_seen_from(mesh, "default") == "RANDOM" and lb_seen_from(mesh, "ns1") == "RANDOM"


@pytest.mark.xfail(strict=True, reason=f"{LOOKUP_PATH}, so a rule in ns1 for a service in default applies to "
                   "clients in ns1 only. Our translator applies the oldest matching rule of any namespace to "
                   "every client.")
def test_a_destination_rule_in_a_client_namespace_applies_to_that_namespace_only() -> None:
    mesh = clients_in("ns1", "ns2").add(dr("{loadBalancer: {simple: RANDOM}}", host=ECHO, namespace="ns1"))
    assert lb_seen_from(mesh, "ns1") == "RANDOM"
    assert lb_seen_from(mesh, "ns2") == "LEAST_REQUEST"


@pytest.mark.xfail(strict=True, reason=f"{LOOKUP_PATH}, so the client namespace's rule wins over an older one in "
                   "the service namespace. Our translator picks the oldest rule whatever its namespace.")
def test_the_client_namespace_rule_wins_over_the_service_namespace_rule() -> None:
    mesh = clients_in("ns1").add(dr("{loadBalancer: {simple: ROUND_ROBIN}}"),
                                 dr("{loadBalancer: {simple: RANDOM}}", host=ECHO, namespace="ns1"))
    assert lb_seen_from(mesh, "ns1") == "RANDOM"
