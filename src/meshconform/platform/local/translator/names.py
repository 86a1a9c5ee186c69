"""Host names as Istio reads them, and Envoy names as istiod writes them."""

from __future__ import annotations

from meshconform.meshapi.kube import Service


def resolve_host(host: str, namespace: str) -> str:
    """A short host is relative to the namespace of the resource that names it."""
    if host.startswith("*") or host.endswith(".cluster.local"):
        return host
    parts = host.split(".")
    if len(parts) == 1:
        return f"{host}.{namespace}.svc.cluster.local"
    if len(parts) == 2:
        return f"{host}.svc.cluster.local"
    if len(parts) == 3 and parts[2] == "svc":
        return f"{host}.cluster.local"
    return host


def host_matches(pattern: str, host: str) -> bool:
    """Exact, or a left-most wildcard label ('*.example.com'), or '*'."""
    if pattern == "*" or pattern == host:
        return True
    if pattern.startswith("*"):
        return host.endswith(pattern[1:])
    return False


def cluster_name(port: int, subset: str | None, fqdn: str) -> str:
    return f"outbound|{port}|{subset or ''}|{fqdn}"


def inbound_cluster_name(port: int) -> str:
    return f"inbound|{port}||"


def service_domains(service: Service, port: int, caller_namespace: str | None) -> list[str]:
    """What a client may write in Host to reach the service from a sidecar."""
    name, namespace = service.metadata.name, service.metadata.namespace
    bare = [service.fqdn, f"{name}.{namespace}.svc", f"{name}.{namespace}"]
    if caller_namespace == namespace:
        bare.append(name)
    with_port = [f"{host}:{port}" for host in bare]
    # HTTP clients omit the port only when it is 80.
    return with_port + bare if port == 80 else with_port
