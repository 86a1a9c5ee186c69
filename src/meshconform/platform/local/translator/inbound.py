"""A sidecar's inbound filter chains as istiod builds them, per port: by what the port declares (HTTP; nothing, so
the traffic's protocol is detected; or no Service at all: inbound passthrough) and its mTLS mode.

The options are istiod's (pilot/pkg/networking/core/filterchain_options.go at 1.30): which transport and ALPN a
chain matches, whether it terminates mTLS, and whether it is HTTP (the connection manager) or TCP (proxied as
bytes to the app). Envoy picks a chain by transport protocol, then ALPN, without going back: TLS whose ALPN no
TLS chain names matches nothing. Where no chain needs TLS (DISABLE), the listener runs no TLS inspector, so TLS
bytes are just bytes (istiod's outcome: proxied untouched as TCP on a detected port, a protocol error on HTTP).

Passthrough has no iptables here: a sidecar listens on each port its pod declares (containerPort) that no Service
targets, and proxies to the app through istiod's InboundPassthroughCluster, an original-destination cluster told
the app's address in the connection's filter state."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from meshconform.meshapi.istio import MutualTLSMode
from meshconform.meshapi.kube import ISTIO_HTTP_PROTOCOLS
from meshconform.platform.local.translator.envoy_types import TLS_INSPECTOR
from meshconform.platform.local.translator.model import MeshSnapshot, Pod

HTTP_INSPECTOR = "type.googleapis.com/envoy.extensions.filters.listener.http_inspector.v3.HttpInspector"
TCP_PROXY = "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
SET_FILTER_STATE = "type.googleapis.com/envoy.extensions.filters.network.set_filter_state.v3.Config"
ORIGINAL_DST_STATE = "envoy.network.transport_socket.original_dst_address"  # read by ORIGINAL_DST clusters
INBOUND_PASSTHROUGH_CLUSTER = "InboundPassthroughCluster"

# istiod's ALPN sets (listener.go): what plaintext HTTP is detected as, and what Istio clients offer over mTLS.
PLAINTEXT_HTTP_ALPN = ("http/1.1", "h2c")
MTLS_HTTP_ALPN = ("istio-http/1.0", "istio-http/1.1", "istio-h2")
MTLS_TCP_ALPN = ("istio-peer-exchange", "istio")
ALL_MTLS_ALPN = ("istio", "istio-peer-exchange", *MTLS_HTTP_ALPN)


class PortKind(Enum):
    HTTP = "http"  # a Service port declaring HTTP, HTTP2 or gRPC
    DETECTED = "detected"  # a Service port declaring no protocol: HTTP if the traffic is, else TCP
    PASSTHROUGH = "passthrough"  # a declared container port no Service targets


@dataclass(frozen=True)
class ChainOption:
    transport: str | None  # "tls", "raw_buffer", or None: any (the listener runs no TLS inspector)
    alpn: tuple[str, ...] = ()
    mtls: bool = False  # terminate mutual TLS (a client certificate is required)
    http: bool = True  # the HTTP connection manager, else a TCP proxy

    @property
    def match(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        if self.transport:
            found["transport_protocol"] = self.transport
        if self.alpn:
            found["application_protocols"] = list(self.alpn)
        return found


_HTTP_OPTIONS = {
    MutualTLSMode.STRICT: [ChainOption("tls", mtls=True)],
    MutualTLSMode.PERMISSIVE: [ChainOption("tls", ALL_MTLS_ALPN, mtls=True), ChainOption("raw_buffer")],
    MutualTLSMode.DISABLE: [ChainOption(None)],
}
_DETECTED_OPTIONS = {
    MutualTLSMode.STRICT: [ChainOption("tls", MTLS_HTTP_ALPN, mtls=True), ChainOption("tls", mtls=True, http=False)],
    MutualTLSMode.PERMISSIVE: [ChainOption("tls", MTLS_HTTP_ALPN, mtls=True),
                               ChainOption("raw_buffer", PLAINTEXT_HTTP_ALPN),
                               ChainOption("tls", MTLS_TCP_ALPN, mtls=True, http=False),
                               ChainOption("raw_buffer", http=False),
                               ChainOption("tls", http=False)],
    MutualTLSMode.DISABLE: [ChainOption(None, PLAINTEXT_HTTP_ALPN), ChainOption(None, http=False)],
}


def options(kind: PortKind, mode: MutualTLSMode) -> list[ChainOption]:
    """istiod's chain options for a port of this kind under this (effective, never UNSET) mTLS mode."""
    table = _HTTP_OPTIONS if kind is PortKind.HTTP else _DETECTED_OPTIONS
    return table[MutualTLSMode.PERMISSIVE if mode is MutualTLSMode.UNSET else mode]


def port_kind(mesh: MeshSnapshot, pod: Pod, port: int) -> PortKind:
    """What the Services selecting `pod` declare for the port they target at `port` (HTTP wins over none)."""
    declared = [p.istio_protocol for s in mesh.services if s.metadata.namespace == pod.namespace and s.spec.selector
                and all(pod.labels.get(k) == v for k, v in s.spec.selector.items())
                for p in s.spec.ports if p.container_port == port]
    if not declared:
        return PortKind.PASSTHROUGH
    return PortKind.HTTP if any(p in ISTIO_HTTP_PROTOCOLS for p in declared) else PortKind.DETECTED


def listener_filters(chosen: list[ChainOption]) -> list[dict[str, Any]]:
    found = []
    if any(option.transport for option in chosen):
        found.append({"name": "envoy.filters.listener.tls_inspector", "typed_config": {"@type": TLS_INSPECTOR}})
    if any(set(option.alpn) & set(PLAINTEXT_HTTP_ALPN) for option in chosen):
        found.append({"name": "envoy.filters.listener.http_inspector", "typed_config": {"@type": HTTP_INSPECTOR}})
    return found


def original_destination(pod: Pod, port: int) -> dict[str, Any]:
    """Where passthrough goes: the app's own address for the port (iptables would have kept it as the original
    destination), in the connection's filter state for the InboundPassthroughCluster."""
    return {"name": "envoy.filters.network.set_filter_state", "typed_config": {
        "@type": SET_FILTER_STATE,
        "on_new_connection": [{"object_key": ORIGINAL_DST_STATE, "factory_key": ORIGINAL_DST_STATE,
                               "format_string": {"text_format_source": {
                                   "inline_string": f"{pod.ip}:{pod.app_port(port)}"}}}]}}


def tcp_proxy(stat_prefix: str, cluster: str, log: list[dict[str, Any]]) -> dict[str, Any]:
    return {"name": "envoy.filters.network.tcp_proxy",
            "typed_config": {"@type": TCP_PROXY, "stat_prefix": stat_prefix, "cluster": cluster, "access_log": log}}


def passthrough_cluster() -> dict[str, Any]:
    """istiod's InboundPassthroughCluster: original destination (here, from the filter state)."""
    return {"name": INBOUND_PASSTHROUGH_CLUSTER, "type": "ORIGINAL_DST", "lb_policy": "CLUSTER_PROVIDED",
            "connect_timeout": "10s"}
