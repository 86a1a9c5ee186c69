"""The local platform's stand-ins for cluster networking, used by its workloads: a meshed app reaches
services through its sidecar's outbound listener (iptables' job on a cluster); an app without a sidecar
resolves a service name to one of its endpoints from the platform's services table (DNS + kube-proxy)."""

from __future__ import annotations

import functools
import ipaddress
import json
import os
import random
from dataclasses import dataclass
from pathlib import Path

from meshconform.platform.local.naming import ORIGINAL_DST_HEADER, resolve_host
from meshconform.traffic.transport import Target, Transport


@functools.lru_cache(maxsize=4096)  # a batch names a few hosts thousands of times
def is_address(host: str) -> bool:
    """'127.1.2.3:8080' or '127.1.2.3': an address the app would connect to without a name lookup."""
    try:
        ipaddress.ip_address(host.rpartition(":")[0] if ":" in host else host)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class SidecarTransport(Transport):
    """A meshed workload: requests go to its sidecar's outbound listener, used as an HTTP proxy. Where the app
    would have connected (an address, or `connect_to`) travels in a header, standing in for the original
    destination iptables keeps on a cluster (Istio's PassthroughCluster forwards there)."""

    proxy_url: str

    def target(self, host: str, path: str, scheme: str = "http", connect_to: str | None = None) -> Target:
        original = connect_to or (host if is_address(host) else None)
        if not original:
            return Target(f"{scheme}://{host}{path}", None, self.proxy_url)
        headers = ((ORIGINAL_DST_HEADER, original if ":" in original else f"{original}:80"),)
        return Target(f"{scheme}://{host}{path}", None, self.proxy_url, headers)


@dataclass
class ResolverTransport(Transport):
    """A workload without a sidecar: the service name resolves to one of its endpoints, as
    kube-proxy would pick one; the Host header keeps the service name."""

    services_file: Path
    namespace: str
    _cache: tuple[tuple[int, int], dict[str, list[str]]] | None = None

    def _table(self) -> dict[str, list[str]]:
        # The platform replaces the file (a new inode) on every change: two changes within one mtime tick differ.
        stat = self.services_file.stat()
        version = (stat.st_ino, stat.st_mtime_ns)
        if self._cache is None or self._cache[0] != version:
            self._cache = (version, json.loads(self.services_file.read_text()))
        return self._cache[1]

    def target(self, host: str, path: str, scheme: str = "http", connect_to: str | None = None) -> Target:
        if connect_to or is_address(host):  # no name to resolve: connect where the caller says
            return Target(f"{scheme}://{connect_to or host}{path}", host, None)
        name, _, port = host.partition(":")
        # DNS names are case-insensitive: "Echo:8080" resolves as "echo:8080"; the Host header keeps the case.
        key = f"{resolve_host(name.lower(), self.namespace)}:{port or 80}"
        endpoints = self._table().get(key)
        if not endpoints:
            # Like DNS: an unknown name does not resolve; the caller sees a connection failure.
            return Target(None, host, None)
        return Target(f"{scheme}://{random.choice(endpoints)}{path}", host, None)


def local_transport_from_env() -> Transport:
    """A local workload's transport, from what the local platform put in its environment."""
    proxy = os.environ.get("MESHCONFORM_OUTBOUND_PROXY")
    if proxy:
        return SidecarTransport(proxy)
    return ResolverTransport(Path(os.environ["MESHCONFORM_SERVICES_FILE"]),
                             os.environ.get("MESHCONFORM_NAMESPACE", "default"))
