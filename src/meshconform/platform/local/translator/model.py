"""What the translator reads (a snapshot of the mesh) and what it writes (config per proxy)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from meshconform.meshapi import gateway_api
from meshconform.meshapi.istio import (
    AuthorizationPolicy,
    DestinationRule,
    Gateway,
    PeerAuthentication,
    RequestAuthentication,
    ServiceEntry,
    Sidecar,
    VirtualService,
)
from meshconform.meshapi.kube import Secret, Service

TRUST_DOMAIN = "cluster.local"
ROOT_NAMESPACE = "istio-system"


@dataclass(frozen=True)
class Pod:
    """A workload instance on the local platform: an app process, maybe behind a sidecar."""

    name: str
    namespace: str
    deployment: str
    labels: dict[str, str]
    service_account: str
    ip: str
    container_ports: tuple[int, ...]
    injected: bool
    is_gateway: bool = False
    declared_ports: tuple[int, ...] = ()  # the Deployment's containerPorts (where its app listens)

    @property
    def identity(self) -> str:
        return f"spiffe://{TRUST_DOMAIN}/ns/{self.namespace}/sa/{self.service_account}"

    @property
    def listening(self) -> tuple[int, ...]:
        """The pod ports its app serves: those its Deployment declares, else (none declared) the first port a
        Service targets."""
        return self.declared_ports or self.container_ports[:1]

    def app_port(self, port: int) -> int:
        """Where the app listens: behind a sidecar it moves aside so the sidecar owns the pod port."""
        return port + 10000 if self.injected else port


@dataclass(frozen=True)
class MeshSnapshot:
    """Everything the translator needs; lists keep creation order (oldest first)."""

    namespaces: dict[str, dict[str, str]]
    services: list[Service]
    pods: list[Pod]
    virtual_services: list[VirtualService] = field(default_factory=list)
    destination_rules: list[DestinationRule] = field(default_factory=list)
    gateways: list[Gateway] = field(default_factory=list)
    peer_authentications: list[PeerAuthentication] = field(default_factory=list)
    secrets: list[Secret] = field(default_factory=list)
    authorization_policies: list[AuthorizationPolicy] = field(default_factory=list)
    request_authentications: list[RequestAuthentication] = field(default_factory=list)
    # Gateway API objects; translator.gateway_api lowers them into gateways and virtual_services above.
    k8s_gateways: list[gateway_api.Gateway] = field(default_factory=list)
    http_routes: list[gateway_api.HTTPRoute] = field(default_factory=list)
    service_entries: list[ServiceEntry] = field(default_factory=list)
    sidecars: list[Sidecar] = field(default_factory=list)


class CertificatePaths(Protocol):
    """Where certificate files live; the translator only references them."""

    @property
    def ca(self) -> Path: ...

    def workload(self, pod: Pod) -> tuple[Path, Path]: ...

    def gateway_credential(self, namespace: str, name: str) -> tuple[Path, Path]: ...


@dataclass(frozen=True)
class GatewayPorts:
    """Host ports on 127.0.0.1 that stand for the ingress gateway Service (80→8080, 443→8443)."""

    http: int
    https: int


@dataclass
class ProxyConfig:
    """Envoy resources for one proxy, ready to be written as file-based xDS."""

    listeners: list[dict[str, Any]] = field(default_factory=list)
    clusters: list[dict[str, Any]] = field(default_factory=list)
    routes: dict[str, dict[str, Any]] = field(default_factory=dict)
