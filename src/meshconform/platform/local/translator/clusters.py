"""Outbound clusters (service x port x subset) and inbound clusters (pod port -> app)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from meshconform.meshapi.durations import envoy_duration
from meshconform.meshapi.istio import (
    DestinationRule,
    LoadBalancerKind,
    Subset,
    TrafficPolicy,
)
from meshconform.meshapi.kube import Service
from meshconform.platform.local.misbehaviour import Misbehaviour, Misbehaviours
from meshconform.platform.local.translator import mtls
from meshconform.platform.local.translator.envoy_types import HTTP_OPTIONS, MAX_UINT32, socket_address
from meshconform.platform.local.translator.model import CertificatePaths, MeshSnapshot, Pod
from meshconform.platform.local.translator.names import cluster_name, inbound_cluster_name, resolve_host

LB_POLICY = {
    LoadBalancerKind.UNSPECIFIED: "LEAST_REQUEST",  # istiod's default
    LoadBalancerKind.LEAST_REQUEST: "LEAST_REQUEST",
    LoadBalancerKind.LEAST_CONN: "LEAST_REQUEST",
    LoadBalancerKind.ROUND_ROBIN: "ROUND_ROBIN",
    LoadBalancerKind.RANDOM: "RANDOM",
}


def destination_rule_for(mesh: MeshSnapshot, service: Service) -> DestinationRule | None:
    """The oldest DR whose host names this service (short names resolve in the DR's namespace)."""
    for rule in mesh.destination_rules:
        if resolve_host(rule.spec.host, rule.metadata.namespace) == service.fqdn:
            return rule
    return None


def selected_pods(mesh: MeshSnapshot, service: Service, subset: Subset | None,
                  misbehave: Misbehaviours = frozenset()) -> list[Pod]:
    labels = dict(subset.labels) if subset else {}
    if Misbehaviour.SUBSET_FIRST_LABEL_ONLY in misbehave:
        labels = dict(list(labels.items())[:1])
    wanted = {**service.spec.selector, **labels}
    if not service.spec.selector:
        return []
    return [p for p in mesh.pods if p.namespace == service.metadata.namespace and not p.is_gateway
            and all(p.labels.get(k) == v for k, v in wanted.items())]


@dataclass(frozen=True)
class OutboundCluster:
    """One outbound cluster as every caller has it, but for the caller's own certificate in its mTLS socket:
    computed once per translation (the endpoints' selection and mTLS modes scan the whole mesh), rendered per
    caller."""

    sni: str
    identities: list[str]
    policy: TrafficPolicy
    head: dict[str, Any]  # the fields before the TLS ones (kept in this order: the files stay byte-identical)
    tail: dict[str, Any]  # and after
    plaintext: bool = False  # the mtls-plaintext misbehaviour: a raw socket for every caller

    def for_caller(self, caller: Pod, certs: CertificatePaths) -> dict[str, Any]:
        if self.plaintext:
            tls_fields: dict[str, Any] = {"transport_socket": mtls.RAW}
        else:
            tls_fields = mtls.client_tls(self.policy, mtls.upstream_mtls(certs, caller, self.sni, self.identities))
        return {**self.head, **tls_fields, **self.tail}


def outbound_clusters(mesh: MeshSnapshot, misbehave: Misbehaviours = frozenset()) -> list[OutboundCluster]:
    """Every (service x port x subset) cluster of the mesh; `OutboundCluster.for_caller` completes one."""
    clusters = []
    for service in mesh.services:
        rule = destination_rule_for(mesh, service)
        base_policy = rule.spec.traffic_policy if rule else None
        subsets: list[Subset | None] = [None, *(rule.spec.subsets if rule else [])]
        for port in service.spec.ports:
            for subset in subsets:
                own = subset.traffic_policy if subset else None
                if Misbehaviour.SUBSET_POLICY_IGNORED in misbehave:
                    own = None
                policy = (base_policy or TrafficPolicy()).overlay(own)
                clusters.append(_outbound_cluster(mesh, service, port.port, port.container_port, subset, policy,
                                                  misbehave))
    return clusters


def _outbound_cluster(mesh: MeshSnapshot, service: Service, port: int, target_port: int, subset: Subset | None,
                      policy: TrafficPolicy, misbehave: Misbehaviours) -> OutboundCluster:
    name = cluster_name(port, subset.name if subset else None, service.fqdn)
    pods = selected_pods(mesh, service, subset, misbehave)
    endpoints = []
    for pod in pods:
        endpoint: dict[str, Any] = {"endpoint": {"address": socket_address(pod.ip, target_port)}}
        if mtls.accepts_mtls(mesh, pod, target_port, misbehave):
            endpoint["metadata"] = {"filter_metadata": {"envoy.transport_socket_match": {"tlsMode": "istio"}}}
        endpoints.append(endpoint)
    sni = f"outbound_.{port}_.{subset.name if subset else ''}_.{service.fqdn}"
    identities = sorted({p.identity for p in pods})
    plaintext = Misbehaviour.MTLS_PLAINTEXT in misbehave
    if plaintext:
        policy = policy.model_copy(update={"tls": None})
    pool = None if Misbehaviour.CIRCUIT_BREAKERS_IGNORED in misbehave else policy.connection_pool
    tcp = pool.tcp if pool else None
    http = pool.http if pool else None
    head: dict[str, Any] = {
        "name": name,
        "type": "STATIC",
        "connect_timeout": envoy_duration(tcp.connect_timeout if tcp and tcp.connect_timeout else 10.0),
        "lb_policy": LB_POLICY[_lb_kind(policy, misbehave)],
        "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": endpoints}]},
        # istiod fills every unset threshold with the maximum, replacing Envoy's small defaults.
        "circuit_breakers": {"thresholds": [{
            "max_connections": tcp.max_connections if tcp and tcp.max_connections else MAX_UINT32,
            "max_pending_requests": http.http1_max_pending_requests
            if http and http.http1_max_pending_requests else MAX_UINT32,
            "max_requests": http.http2_max_requests if http and http.http2_max_requests else MAX_UINT32,
            "max_retries": http.max_retries if http and http.max_retries is not None else MAX_UINT32,
        }]},
    }
    tail: dict[str, Any] = {}
    if http and http.max_requests_per_connection:
        tail["typed_extension_protocol_options"] = {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "@type": HTTP_OPTIONS,
            "common_http_protocol_options": {"max_requests_per_connection": http.max_requests_per_connection},
            "explicit_http_config": {"http_protocol_options": {}},
        }}
    if policy.outlier_detection is not None and Misbehaviour.OUTLIER_DETECTION_IGNORED not in misbehave:
        tail["outlier_detection"] = _outlier_detection(policy, Misbehaviour.OUTLIER_CONSECUTIVE_OFF_BY_ONE in misbehave)
        # As istiod: minHealthPercent (default 0) becomes the panic threshold, so ejected hosts stay out
        # however many are ejected (Envoy's own default of 50 % would route to them again).
        tail["common_lb_config"] = {"healthy_panic_threshold": {
            "value": float(policy.outlier_detection.min_health_percent or 0)}}
    return OutboundCluster(sni, identities, policy, head, tail, plaintext)


def _lb_kind(policy: TrafficPolicy, misbehave: Misbehaviours) -> LoadBalancerKind:
    if policy.load_balancer is None or Misbehaviour.LOAD_BALANCER_IGNORED in misbehave:
        return LoadBalancerKind.UNSPECIFIED
    return policy.load_balancer.simple


def _outlier_detection(policy: TrafficPolicy, one_more: bool = False) -> dict[str, Any]:
    """`one_more`: eject a host one error later than consecutive5xxErrors says (a misbehaviour)."""
    od = policy.outlier_detection
    assert od is not None
    result: dict[str, Any] = {"enforcing_success_rate": 0, "max_ejection_percent": od.max_ejection_percent or 10}
    if od.consecutive_5xx_errors is not None:
        result["consecutive_5xx"] = od.consecutive_5xx_errors + (1 if one_more else 0)
        result["enforcing_consecutive_5xx"] = 100 if od.consecutive_5xx_errors > 0 else 0
    if od.consecutive_gateway_errors:
        result["consecutive_gateway_failure"] = od.consecutive_gateway_errors
        result["enforcing_consecutive_gateway_failure"] = 100
    else:
        result["enforcing_consecutive_gateway_failure"] = 0
    if od.interval is not None:
        result["interval"] = envoy_duration(od.interval)
    if od.base_ejection_time is not None:
        result["base_ejection_time"] = envoy_duration(od.base_ejection_time)
    return result


def inbound_cluster(pod: Pod, port: int) -> dict[str, Any]:
    name = inbound_cluster_name(port)
    return {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "10s",
        "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [
            {"endpoint": {"address": socket_address(pod.ip, pod.app_port(port))}}]}]},
    }
