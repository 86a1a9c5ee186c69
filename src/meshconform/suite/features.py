"""Features and the profiles that group them (core must pass; extended may be declared unsupported)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    name: str
    core: frozenset[str]
    extended: frozenset[str]


MESH_HTTP = Profile(
    "MESH-HTTP",
    core=frozenset({"SidecarInjection", "WeightedRouting", "HeaderRouting", "MTLSStrict", "MTLSPermissive",
                    "GatewayHTTP"}),
    extended=frozenset({"FaultAbort", "FaultDelay", "Mirroring", "GatewayTLS", "MTLSPrecedence",
                        "RequestTimeout", "BookinfoScenarios"}),
)
PROFILES = {MESH_HTTP.name: MESH_HTTP}
ALL_FEATURES = frozenset().union(*(p.core | p.extended for p in PROFILES.values()))
