"""Host names as Istio reads them, and Envoy names as istiod writes them."""

from __future__ import annotations

from meshconform.meshapi.kube import Service
from meshconform.platform.local.naming import resolve_host as resolve_host  # shared with the apps' transports


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
