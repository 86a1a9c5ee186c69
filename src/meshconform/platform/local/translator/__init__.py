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
from meshconform.platform.local.translator import clusters, gateway_api, listeners
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
    outbound_by_namespace: dict[str, dict[str, Any]] = {}
    configs: dict[str, ProxyConfig] = {}
    for pod in mesh.pods:
        if not (pod.injected or pod.is_gateway):
            continue
        config_dir, log_path = proxy_paths(pod)
        config = ProxyConfig(clusters=clusters.outbound_clusters(mesh, pod, certs, misbehave))
        if pod.is_gateway:
            config.listeners, config.routes = listeners.gateway_config(
                mesh, pod, gateway_ports, certs, config_dir, log_path, misbehave)
        else:
            if pod.namespace not in outbound_by_namespace:
                outbound_by_namespace[pod.namespace] = listeners.outbound_routes(mesh, pod.namespace, misbehave)
            config.routes = {"outbound": outbound_by_namespace[pod.namespace]}
            config.listeners = [*listeners.inbound_listeners(mesh, pod, certs, log_path, misbehave),
                                listeners.outbound_listener(pod, config_dir, log_path)]
            config.clusters += [clusters.inbound_cluster(pod, port) for port in pod.container_ports]
        configs[f"{pod.namespace}/{pod.name}"] = config
    return configs


__all__ = ["MISBEHAVIOURS", "CertificatePaths", "GatewayPorts", "MeshSnapshot", "Pod", "ProxyConfig", "translate"]
