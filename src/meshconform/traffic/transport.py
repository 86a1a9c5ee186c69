"""Where a request goes when it leaves a vantage point: the platform-neutral part.

A Transport turns (host, path) into a Target: the URL to connect to, the Host header, and a proxy.
Platforms that must stand in for cluster networking (the local platform's kube-proxy and iptables
stand-ins) bring their own Transports; see meshconform.platform.local.transport."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    url: str | None  # None: the name did not resolve (nothing is sent anywhere)
    host_header: str | None
    proxy: str | None
    headers: tuple[tuple[str, str], ...] = ()  # added by the transport (a platform's stand-in for the network)


class Transport:
    def target(self, host: str, path: str, scheme: str = "http", connect_to: str | None = None) -> Target:
        """`connect_to` ("address:port"): open the connection there instead of resolving `host`."""
        raise NotImplementedError


@dataclass(frozen=True)
class PlainTransport(Transport):
    """The name as given, resolved by the system (a pod on a real cluster: DNS, kube-proxy, iptables)."""

    def target(self, host: str, path: str, scheme: str = "http", connect_to: str | None = None) -> Target:
        if connect_to:
            return Target(f"{scheme}://{connect_to}{path}", host, None)
        return Target(f"{scheme}://{host}{path}", None, None)


@dataclass(frozen=True)
class DirectTransport(Transport):
    """From outside the mesh to a fixed address (the ingress gateway); the Host header keeps the name."""

    address: str
    tls_address: str | None = None

    def target(self, host: str, path: str, scheme: str = "http", connect_to: str | None = None) -> Target:
        address = self.tls_address if scheme == "https" and self.tls_address else self.address
        return Target(f"{scheme}://{address}{path}", host, None)

