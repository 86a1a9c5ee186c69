"""How a request leaves a vantage point: through a sidecar, via service resolution, or straight to an address.

Shared by the test process (ingress vantage) and by workloads (the client app, Bookinfo's calls)."""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass
from pathlib import Path

from meshconform.platform.local.translator.names import resolve_host


@dataclass(frozen=True)
class Target:
    url: str | None  # None: the name did not resolve (nothing is sent anywhere)
    host_header: str | None
    proxy: str | None


class Transport:
    def target(self, host: str, path: str, scheme: str = "http") -> Target:
        raise NotImplementedError


@dataclass(frozen=True)
class SidecarTransport(Transport):
    """A meshed workload: requests go to its sidecar's outbound listener (our stand-in for iptables)."""

    proxy_url: str

    def target(self, host: str, path: str, scheme: str = "http") -> Target:
        return Target(f"{scheme}://{host}{path}", None, self.proxy_url)


@dataclass
class ResolverTransport(Transport):
    """A workload without a sidecar: the service name resolves to one of its endpoints, as
    kube-proxy would pick one; the Host header keeps the service name."""

    services_file: Path
    namespace: str
    _cache: tuple[float, dict[str, list[str]]] | None = None

    def _table(self) -> dict[str, list[str]]:
        mtime = self.services_file.stat().st_mtime
        if self._cache is None or self._cache[0] != mtime:
            self._cache = (mtime, json.loads(self.services_file.read_text()))
        return self._cache[1]

    def target(self, host: str, path: str, scheme: str = "http") -> Target:
        name, _, port = host.partition(":")
        key = f"{resolve_host(name, self.namespace)}:{port or 80}"
        endpoints = self._table().get(key)
        if not endpoints:
            # Like DNS: an unknown name does not resolve; the caller sees a connection failure.
            return Target(None, host, None)
        return Target(f"{scheme}://{random.choice(endpoints)}{path}", host, None)


@dataclass(frozen=True)
class DirectTransport(Transport):
    """From outside the mesh to a fixed address (the ingress gateway)."""

    address: str
    tls_address: str | None = None

    def target(self, host: str, path: str, scheme: str = "http") -> Target:
        address = self.tls_address if scheme == "https" and self.tls_address else self.address
        return Target(f"{scheme}://{address}{path}", host, None)


def transport_from_env() -> Transport:
    """A workload's transport, from what the platform put in its environment."""
    proxy = os.environ.get("MESHCONFORM_OUTBOUND_PROXY")
    if proxy:
        return SidecarTransport(proxy)
    return ResolverTransport(Path(os.environ["MESHCONFORM_SERVICES_FILE"]),
                             os.environ.get("MESHCONFORM_NAMESPACE", "default"))
