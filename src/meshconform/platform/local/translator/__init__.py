"""The reference translator: (Istio resources, workloads, certificate paths) -> Envoy config per proxy.

A pure function: it reads a snapshot and returns dictionaries; it starts nothing and writes nothing,
so every rule is unit-testable. Deliberate misbehaviours (`misbehave`) exist only so that the
conformance suite can prove it catches a broken mesh."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from meshconform.errors import ConfigError
from meshconform.platform.local.misbehaviour import Misbehaviour, Misbehaviours
from meshconform.platform.local.translator import clusters, egress, gateway_api, inbound, listeners
from meshconform.platform.local.translator.model import (
    CertificatePaths,
    GatewayPorts,
    MeshSnapshot,
    Pod,
    ProxyConfig,
)

MISBEHAVIOURS = {m.value: m.description for m in Misbehaviour}


def translate(mesh: MeshSnapshot, certs: CertificatePaths, gateway_ports: GatewayPorts,
              proxy_paths: Callable[[Pod], tuple[Path, Path]],
              misbehave: Misbehaviours = frozenset()) -> dict[str, ProxyConfig]:
    """Config for every proxy (injected pods and the gateway), keyed by "namespace/pod".

    `proxy_paths(pod)` gives (xDS folder, access log path) for the proxy of that pod."""
    unknown = misbehave - MISBEHAVIOURS.keys()
    if unknown:
        raise ConfigError(f"unknown misbehaviour(s) {sorted(unknown)}; known: {sorted(MISBEHAVIOURS)}")
    mesh = gateway_api.lower(mesh, misbehave)
    _refuse_rules_for_entries(mesh)
    outbound_by_namespace: dict[tuple[str, str], dict[str, Any]] = {}
    external = [*egress.entry_clusters(mesh, misbehave), egress.passthrough_cluster()]
    outbound = clusters.outbound_clusters(mesh, misbehave)  # once: only a caller's certificate differs
    configs: dict[str, ProxyConfig] = {}
    for pod in mesh.pods:
        if not (pod.injected or pod.is_gateway):
            continue
        config_dir, log_path = proxy_paths(pod)
        config = ProxyConfig(clusters=[*(c.for_caller(pod, certs) for c in outbound), *external])
        if pod.is_gateway:
            config.listeners, config.routes = listeners.gateway_config(
                mesh, pod, gateway_ports, certs, config_dir, log_path, misbehave)
        else:
            mode = egress.outbound_mode(mesh, pod, misbehave)
            if (pod.namespace, mode) not in outbound_by_namespace:
                outbound_by_namespace[(pod.namespace, mode)] = listeners.outbound_routes(
                    mesh, pod.namespace, misbehave, mode)
            config.routes = {"outbound": outbound_by_namespace[(pod.namespace, mode)]}
            config.listeners = [*listeners.inbound_listeners(mesh, pod, certs, log_path, misbehave),
                                listeners.outbound_listener(pod, config_dir, log_path)]
            kinds = {port: inbound.port_kind(mesh, pod, port) for port in pod.container_ports}
            config.clusters += [clusters.inbound_cluster(pod, port) for port, kind in kinds.items()
                                if kind is not inbound.PortKind.PASSTHROUGH]
            if inbound.PortKind.PASSTHROUGH in kinds.values():
                config.clusters.append(inbound.passthrough_cluster())
        configs[f"{pod.namespace}/{pod.name}"] = config
    return configs


def _refuse_rules_for_entries(mesh: MeshSnapshot) -> None:
    """A DestinationRule for a ServiceEntry host is valid Istio the local platform does not apply: refuse it
    rather than ignore it."""
    hosts = {host for entry in mesh.service_entries for host in entry.spec.hosts}
    for rule in mesh.destination_rules:
        if rule.spec.host in hosts:
            raise ConfigError("valid Istio, not implemented by the local platform: a DestinationRule for a "
                              "ServiceEntry host", resource=rule.ref, field="spec.host")


__all__ = ["MISBEHAVIOURS", "CertificatePaths", "GatewayPorts", "MeshSnapshot", "Pod", "ProxyConfig", "translate"]
