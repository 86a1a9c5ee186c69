"""Traffic leaving the mesh: ServiceEntry hosts (clusters and virtual hosts) and the outbound traffic policy's
catch-all (Istio's `allow_any` to the PassthroughCluster, or `block_all`, a direct 502).

As istiod does (istio.io blog "Monitoring blocked and passthrough external service traffic"): every HTTP
route configuration ends in a virtual host for `*` named `allow_any` (route to the ORIGINAL_DST
PassthroughCluster) under ALLOW_ANY, or `block_all` (direct response 502) under REGISTRY_ONLY. The mode comes
from the Sidecar that selects the workload (one with a workloadSelector over the namespace's selector-less one,
then the root namespace's selector-less one), else MeshConfig's default ALLOW_ANY. Locally the original
destination travels in ORIGINAL_DST_HEADER (see local/transport.py): a request without it (a name no
registry knows, which on a cluster would not resolve) matches no route, as before."""

from __future__ import annotations

from typing import Any

from meshconform.meshapi.istio import (
    OutboundTrafficPolicyMode,
    ServiceEntry,
    ServiceEntryResolution,
    ServicePort,
    Sidecar,
    VirtualService,
)
from meshconform.platform.local.misbehaviour import Misbehaviour, Misbehaviours
from meshconform.platform.local.translator.envoy_types import MAX_UINT32, ORIGINAL_DST_HEADER, socket_address
from meshconform.platform.local.translator.model import ROOT_NAMESPACE, MeshSnapshot, Pod
from meshconform.platform.local.translator.names import cluster_name, host_matches, resolve_host

PASSTHROUGH_CLUSTER = "PassthroughCluster"
ALLOW_ANY_ROUTE = "allow_any"
BLOCK_ALL_ROUTE = "block_all"


def sidecar_for(mesh: MeshSnapshot, pod: Pod, misbehave: Misbehaviours = frozenset()) -> Sidecar | None:
    """The Sidecar resource governing `pod` (Sidecar reference: a selecting one wins over the namespace's
    selector-less one, which wins over the root namespace's; the oldest wins among equals)."""
    selecting = [s for s in mesh.sidecars if s.metadata.namespace == pod.namespace and s.spec.workload_selector
                 and s.spec.workload_selector.labels
                 and all(pod.labels.get(k) == v for k, v in s.spec.workload_selector.labels.items())]
    own = [s for s in mesh.sidecars if s.metadata.namespace == pod.namespace and not _has_selector(s)]
    root = [s for s in mesh.sidecars if s.metadata.namespace == ROOT_NAMESPACE and not _has_selector(s)]
    if Misbehaviour.ROOT_SIDECAR_OVER_NAMESPACE in misbehave:
        own, root = root, own
    for candidates in (selecting, own, root):
        if candidates:
            return candidates[0]
    return None


def _has_selector(sidecar: Sidecar) -> bool:
    return bool(sidecar.spec.workload_selector and sidecar.spec.workload_selector.labels)


def outbound_mode(mesh: MeshSnapshot, pod: Pod, misbehave: Misbehaviours) -> OutboundTrafficPolicyMode:
    """The pod's outbound traffic policy; a Sidecar without one inherits MeshConfig's default, ALLOW_ANY."""
    if Misbehaviour.REGISTRY_ONLY_IGNORED in misbehave:
        return OutboundTrafficPolicyMode.ALLOW_ANY
    sidecar = sidecar_for(mesh, pod, misbehave)
    if sidecar is None or sidecar.spec.outbound_traffic_policy is None:
        mode = OutboundTrafficPolicyMode.ALLOW_ANY
    else:
        mode = sidecar.spec.outbound_traffic_policy.mode
    if Misbehaviour.PASSTHROUGH_BLOCKED in misbehave and mode is OutboundTrafficPolicyMode.ALLOW_ANY:
        return OutboundTrafficPolicyMode.REGISTRY_ONLY
    return mode


def visible_entries(mesh: MeshSnapshot, namespace: str, misbehave: Misbehaviours = frozenset()) -> list[ServiceEntry]:
    """ServiceEntries exported to `namespace` (exportTo: '*' or empty = everywhere, '.' = their own)."""
    if Misbehaviour.SERVICE_ENTRIES_IGNORED in misbehave:
        return []
    found = []
    for entry in mesh.service_entries:
        export = entry.spec.export_to or ["*"]
        own = entry.metadata.namespace
        if "*" in export or namespace in export or ("." in export and namespace == own):
            found.append(entry)
    return found


def _endpoint_port(entry: ServiceEntry, port: ServicePort, mapped: dict[str, int]) -> int:
    return mapped.get(port.name) or port.target_port or port.number


def entry_clusters(mesh: MeshSnapshot, misbehave: Misbehaviours = frozenset()) -> list[dict[str, Any]]:
    """`outbound|<port>||<host>` for every host and port of every ServiceEntry (plaintext: MESH_EXTERNAL)."""
    if Misbehaviour.SERVICE_ENTRIES_IGNORED in misbehave:
        return []
    clusters = []
    for entry in mesh.service_entries:
        for host in entry.spec.hosts:
            for port in entry.spec.ports:
                name = cluster_name(port.number, None, host)
                cluster: dict[str, Any] = {"name": name, "connect_timeout": "10s",
                                           "circuit_breakers": {"thresholds": [{
                                               "max_connections": MAX_UINT32, "max_pending_requests": MAX_UINT32,
                                               "max_requests": MAX_UINT32, "max_retries": MAX_UINT32}]}}
                resolution = entry.spec.resolution
                if resolution is ServiceEntryResolution.DNS and Misbehaviour.DNS_AS_PASSTHROUGH in misbehave:
                    resolution = ServiceEntryResolution.NONE
                if resolution is ServiceEntryResolution.NONE:
                    # NONE: forward to where the caller connected, as istiod's ORIGINAL_DST cluster does.
                    cluster.update(_original_dst())
                else:
                    endpoints = [{"endpoint": {"address": socket_address(
                        str(e.address), _endpoint_port(entry, port, e.ports))}} for e in entry.spec.endpoints]
                    kind = "STATIC" if resolution is ServiceEntryResolution.STATIC else "STRICT_DNS"
                    cluster.update({"type": kind, "lb_policy": "LEAST_REQUEST", "load_assignment": {
                        "cluster_name": name, "endpoints": [{"lb_endpoints": endpoints}]}})
                clusters.append(cluster)
    return clusters


def _original_dst() -> dict[str, Any]:
    return {"type": "ORIGINAL_DST", "lb_policy": "CLUSTER_PROVIDED",
            "original_dst_lb_config": {"use_http_header": True, "http_header_name": ORIGINAL_DST_HEADER}}


def passthrough_cluster() -> dict[str, Any]:
    """istiod's PassthroughCluster: ORIGINAL_DST, no limits that matter."""
    return {"name": PASSTHROUGH_CLUSTER, "connect_timeout": "10s", **_original_dst(),
            "circuit_breakers": {"thresholds": [{"max_connections": MAX_UINT32, "max_retries": MAX_UINT32}]}}


def entry_hosts(mesh: MeshSnapshot, namespace: str, misbehave: Misbehaviours = frozenset()
                ) -> list[tuple[ServiceEntry, str, ServicePort]]:
    """(entry, host, port) of every ServiceEntry host and port visible in `namespace`; the oldest entry wins
    a host and port that several name."""
    seen: set[tuple[str, int]] = set()
    found = []
    for entry in visible_entries(mesh, namespace, misbehave):
        for host in entry.spec.hosts:
            for port in entry.spec.ports:
                if (host, port.number) not in seen:
                    seen.add((host, port.number))
                    found.append((entry, host, port))
    return found


def virtual_service_for(mesh: MeshSnapshot, host: str, misbehave: Misbehaviours = frozenset()
                        ) -> VirtualService | None:
    """The mesh VirtualService for an external host: one naming it exactly, else a wildcard; the oldest wins."""
    for exact in (True,) if Misbehaviour.EGRESS_WILDCARD_VS_IGNORED in misbehave else (True, False):
        for vs in mesh.virtual_services:
            if not vs.bound_to_mesh:
                continue
            for vs_host in vs.spec.hosts:
                pattern = resolve_host(vs_host, vs.metadata.namespace)
                if pattern.startswith("*") != exact and host_matches(pattern, host):
                    return vs
    return None


def entry_domains(host: str, port: int) -> list[str]:
    return [f"{host}:{port}", host] if port == 80 else [f"{host}:{port}"]


def catch_all(mode: OutboundTrafficPolicyMode) -> dict[str, Any]:
    """The `*` virtual host that ends every sidecar route configuration."""
    if mode is OutboundTrafficPolicyMode.REGISTRY_ONLY:
        return {"name": BLOCK_ALL_ROUTE, "domains": ["*"], "routes": [
            {"name": BLOCK_ALL_ROUTE, "match": {"prefix": "/"}, "direct_response": {"status": 502}}]}
    return {"name": ALLOW_ANY_ROUTE, "domains": ["*"], "routes": [
        {"name": ALLOW_ANY_ROUTE,
         "match": {"prefix": "/", "headers": [{"name": ORIGINAL_DST_HEADER, "present_match": True}]},
         "route": {"cluster": PASSTHROUGH_CLUSTER, "timeout": "0s"}}]}
