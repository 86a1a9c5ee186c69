"""Features and the profiles that group them (core must pass; extended may be declared unsupported)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    name: str
    core: frozenset[str]
    extended: frozenset[str]


# Core: the six features every mesh implementing the Istio API is expected to have. Extended:
# further behaviour an implementation may declare unsupported (reported as such, not failed).
MESH_HTTP = Profile(
    "MESH-HTTP",
    core=frozenset({"SidecarInjection", "WeightedRouting", "HeaderRouting", "FaultAbort", "FaultDelay", "Mirroring",
                    "MTLSStrict", "MTLSPermissive", "GatewayHTTP"}),
    extended=frozenset({"GatewayTLS", "MTLSPrecedence", "MTLSDisable", "RequestTimeout", "Retries",
                        "CircuitBreaking", "Authorization", "BookinfoScenarios",
                        # Extended, not core: trace propagation needs the apps' cooperation (Bookinfo's) and
                        # is observability rather than traffic control; a mesh may be run without it.
                        "TraceContext",
                        # Extended: ejection needs several instances and per-caller health tracking, and its
                        # timing rests on the API reference rather than on a task outcome.
                        "OutlierDetection",
                        # Extended: end-user authentication needs an issuer and policy set up by the user; meshes
                        # without JWT support can still route and secure service-to-service traffic.
                        "JWTAuthentication",
                        # Extended: egress control depends on the mesh's outbound policy and on a server outside
                        # the mesh, and Istio's ALLOW_ANY default is a mesh-wide install option a vendor may change.
                        "EgressPassthrough", "EgressRegistryOnly"}),
)
PROFILES = {MESH_HTTP.name: MESH_HTTP}
ALL_FEATURES = frozenset().union(*(p.core | p.extended for p in PROFILES.values()))
