"""PeerAuthentication precedence (server side) and auto mTLS (client side)."""

from __future__ import annotations

from typing import Any

from meshconform.meshapi.istio import ClientTLSMode, MutualTLSMode, PeerAuthentication, TrafficPolicy
from meshconform.platform.local.misbehaviour import Misbehaviour, Misbehaviours
from meshconform.platform.local.translator.envoy_types import (
    DOWNSTREAM_TLS,
    RAW_BUFFER,
    UPSTREAM_TLS,
    tls_certificate,
)
from meshconform.platform.local.translator.model import (
    ROOT_NAMESPACE,
    CertificatePaths,
    MeshSnapshot,
    Pod,
)

ALPN_MESH = ["istio"]
# What a PERMISSIVE inbound mTLS chain accepts from clients (istiod's allIstioMtlsALPNs): Istio clients
# offer istio-http/1.1 or istio-h2 for HTTP and istio-peer-exchange/istio for TCP.
ALPN_MESH_MATCH = ["istio", "istio-peer-exchange", "istio-http/1.0", "istio-http/1.1", "istio-h2"]


def _selects(policy: PeerAuthentication, pod: Pod) -> bool:
    labels = policy.spec.selector.match_labels if policy.spec.selector else {}
    return bool(labels) and all(pod.labels.get(k) == v for k, v in labels.items())


def effective_mode(mesh: MeshSnapshot, pod: Pod, port: int, misbehave: Misbehaviours = frozenset()) -> MutualTLSMode:
    """Narrowest scope wins (workload > namespace > mesh); the oldest policy wins within a scope;
    UNSET inherits from the next wider scope; nothing set means PERMISSIVE."""
    policies = mesh.peer_authentications  # oldest first
    workload = next((p for p in policies if p.metadata.namespace == pod.namespace
                     and pod.namespace != ROOT_NAMESPACE and _selects(p, pod)), None)
    anywhere = Misbehaviour.NAMESPACE_POLICY_EVERYWHERE in misbehave
    namespace = next((p for p in policies if (p.metadata.namespace == pod.namespace
                                              or (anywhere and p.metadata.namespace != ROOT_NAMESPACE))
                      and not (p.spec.selector and p.spec.selector.match_labels)), None)
    mesh_wide = next((p for p in policies if p.metadata.namespace == ROOT_NAMESPACE
                      and not (p.spec.selector and p.spec.selector.match_labels)), None)
    if workload is not None and Misbehaviour.PORT_LEVEL_MTLS_IGNORED not in misbehave:
        port_level = workload.spec.port_level_mtls.get(port)
        if port_level is not None and port_level.mode is not MutualTLSMode.UNSET:
            return port_level.mode
    scopes = (workload, namespace, mesh_wide)
    if Misbehaviour.PRECEDENCE_REVERSED in misbehave:
        scopes = scopes[::-1]
    for policy in scopes:
        if (Misbehaviour.UNSET_NOT_INHERITED in misbehave and policy is not None and policy.spec.mtls is not None
                and policy.spec.mtls.mode is MutualTLSMode.UNSET):
            return MutualTLSMode.PERMISSIVE
        if policy is not None and policy.spec.mtls is not None and policy.spec.mtls.mode is not MutualTLSMode.UNSET:
            return policy.spec.mtls.mode
    return MutualTLSMode.PERMISSIVE


def accepts_mtls(mesh: MeshSnapshot, pod: Pod, port: int, misbehave: Misbehaviours = frozenset()) -> bool:
    """Auto mTLS sends mTLS only to endpoints that have a sidecar whose policy is not DISABLE."""
    if Misbehaviour.AUTO_MTLS_IGNORES_DISABLE in misbehave:
        return pod.injected
    return pod.injected and effective_mode(mesh, pod, port, misbehave) is not MutualTLSMode.DISABLE


def downstream_mtls(certs: CertificatePaths, pod: Pod, misbehave: Misbehaviours = frozenset()) -> dict[str, Any]:
    cert, key = certs.workload(pod)
    return {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": DOWNSTREAM_TLS,
            # Mutual TLS: a caller without a certificate (so without an identity) fails the handshake.
            "require_client_certificate": Misbehaviour.STRICT_CLIENT_CERTIFICATE_OPTIONAL not in misbehave,
            "common_tls_context": {
                "tls_certificates": [tls_certificate(cert, key)],
                "validation_context": {"trusted_ca": {"filename": str(certs.ca)}},
                "alpn_protocols": ALPN_MESH,
            },
        },
    }


def upstream_mtls(certs: CertificatePaths, caller: Pod, sni: str, peer_identities: list[str]) -> dict[str, Any]:
    cert, key = certs.workload(caller)
    validation: dict[str, Any] = {"trusted_ca": {"filename": str(certs.ca)}}
    if peer_identities:
        validation["match_typed_subject_alt_names"] = [
            {"san_type": "URI", "matcher": {"exact": identity}} for identity in peer_identities]
    return {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": UPSTREAM_TLS,
            "sni": sni,
            "common_tls_context": {
                "tls_certificates": [tls_certificate(cert, key)],
                "validation_context": validation,
                "alpn_protocols": ALPN_MESH,
            },
        },
    }


RAW = {"name": "envoy.transport_sockets.raw_buffer", "typed_config": {"@type": RAW_BUFFER}}


def client_tls(policy: TrafficPolicy | None, mtls_socket: dict[str, Any]) -> dict[str, Any]:
    """Cluster fields for the client side: explicit DR mode, or auto mTLS by endpoint metadata."""
    mode = policy.tls.mode if policy is not None and policy.tls is not None else None
    if mode is ClientTLSMode.ISTIO_MUTUAL:
        return {"transport_socket": mtls_socket}
    if mode is ClientTLSMode.DISABLE:
        return {"transport_socket": RAW}
    return {"transport_socket_matches": [
        {"name": "tlsMode-istio", "match": {"tlsMode": "istio"}, "transport_socket": mtls_socket},
        {"name": "tlsMode-disabled", "match": {}, "transport_socket": RAW},
    ]}
