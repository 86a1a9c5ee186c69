"""Reading a proxy's route configuration as Envoy would: which virtual host and route serve a call.

Used where traffic alone cannot show istiod's assertion: a route to a cluster the proxy does not have
(Envoy answers 503 without naming it), a 404 that may be "no virtual host" or "no route", or a virtual
host Istio asserts absent."""

from __future__ import annotations

import re
from typing import Any


def _domain_rank(domain: str, host: str) -> tuple[int, int] | None:
    """Envoy's order: exact, then suffix wildcards (longest first), then prefix wildcards, then '*'."""
    if domain == host:
        return (0, 0)
    if domain == "*":
        return (3, 0)
    if domain.startswith("*") and host.endswith(domain[1:]) and len(host) > len(domain) - 1:
        return (1, -len(domain))
    if domain.endswith("*") and host.startswith(domain[:-1]) and len(host) > len(domain) - 1:
        return (2, -len(domain))
    return None


def virtual_host_for(route_config: dict[str, Any], authority: str) -> dict[str, Any] | None:
    host = authority.lower()
    best: tuple[tuple[int, int], dict[str, Any]] | None = None
    for vhost in route_config.get("virtual_hosts", []):
        for domain in vhost.get("domains", []):
            rank = _domain_rank(domain.lower(), host)
            if rank is not None and (best is None or rank < best[0]):
                best = (rank, vhost)
    return best[1] if best else None


def _path_matches(match: dict[str, Any], path: str) -> bool:
    bare = path.split("?", 1)[0]
    sensitive = match.get("case_sensitive", True)
    if not sensitive:
        bare = bare.lower()
    if "path" in match:
        return bool(bare == (match["path"] if sensitive else match["path"].lower()))
    if "prefix" in match:
        return bare.startswith(match["prefix"] if sensitive else match["prefix"].lower())
    if "safe_regex" in match:
        return re.fullmatch(match["safe_regex"]["regex"], bare) is not None
    return False


def route_for(vhost: dict[str, Any], path: str) -> dict[str, Any] | None:
    """The first route whose path matches; routes with header or query matches are not evaluated (a
    call in the fidelity cases carries none), so such a route is skipped."""
    found: list[dict[str, Any]] = vhost.get("routes", [])
    for route in found:
        match = route.get("match", {})
        if match.get("headers") or match.get("query_parameters"):
            continue
        if _path_matches(match, path):
            return route
    return None


def routed_cluster(route: dict[str, Any]) -> str | None:
    action = route.get("route") or {}
    if "cluster" in action:
        return str(action["cluster"])
    weighted = action.get("weighted_clusters", {}).get("clusters", [])
    return str(weighted[0]["name"]) if len(weighted) == 1 else None


def has_domain(route_config: dict[str, Any], domain: str) -> str | None:
    """The name of a virtual host that lists `domain` exactly, if any."""
    for vhost in route_config.get("virtual_hosts", []):
        if domain in vhost.get("domains", []):
            return str(vhost.get("name"))
    return None
