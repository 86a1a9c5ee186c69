"""Names the translator shares with the workloads' stand-ins for cluster networking (transport.py): how a short host
resolves, and the header that carries an original destination. Apart from the translator package, so an app uses
them without importing it (~0.19 s of CPU at an app's first call, on the clock of the check that made it)."""

from __future__ import annotations

# The local platform's stand-in for SO_ORIGINAL_DST: its transports put where the app would have connected in
# this header, and the PassthroughCluster (ORIGINAL_DST) forwards there.
ORIGINAL_DST_HEADER = "x-meshconform-original-dst"


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
