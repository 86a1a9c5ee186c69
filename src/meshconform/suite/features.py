"""Features and the profiles that group them (core must pass; extended may be declared unsupported)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    name: str
    core: frozenset[str]
    extended: frozenset[str]


# The Kubernetes Gateway API's feature names (kubernetes-sigs/gateway-api pkg/features, v1.6.1): a vendor reads
# this report beside that suite's. Path and header matching, weights and RequestHeaderModifier are part of its core
# HTTPRoute feature; method and query matching, named rules, mirroring and response header changes are extended
# features of their own.
GAMMA_FEATURES = frozenset({"Mesh", "HTTPRoute", "HTTPRouteRequestMirror", "HTTPRouteRequestPercentageMirror",
                            "HTTPRouteMethodMatching", "HTTPRouteQueryParamMatching", "HTTPRouteNamedRouteRule",
                            "HTTPRouteResponseHeaderModification"})
GATEWAY_HTTP = Profile(
    "GATEWAY-HTTP",  # the Gateway API suite's profile of the same name: core Gateway and HTTPRoute
    core=frozenset({"Gateway", "HTTPRoute"}),
    extended=frozenset({"HTTPRouteResponseHeaderModification"}),
)

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
                        "EgressPassthrough", "EgressRegistryOnly",
                        # The Kubernetes Gateway API's mesh (GAMMA) features, named as its suite names them
                        # (pkg/features, v1.6.1). Its own MESH-HTTP profile has Mesh and HTTPRoute as core; here
                        # they are extended, so a mesh serving only the Istio API is not failed for them.
                        *GAMMA_FEATURES}),
)
PROFILES = {MESH_HTTP.name: MESH_HTTP, GATEWAY_HTTP.name: GATEWAY_HTTP}
ALL_FEATURES = frozenset().union(*(p.core | p.extended for p in PROFILES.values()))


def profiles() -> dict[str, Profile]:
    """Every profile a run may select and report, by name: ours, then those of installed check packages
    (suite/extensions.py), whose features are their own."""
    from meshconform.errors import ConfigError
    from meshconform.suite.extensions import packages
    known = dict(PROFILES)
    for package in packages().values():
        for profile in package.profiles:
            declared = frozenset().union(*(p.core | p.extended for p in known.values()))
            taken = (profile.core | profile.extended) & declared
            if profile.name in known or taken:
                raise ConfigError(f"check package {package.name}: profile {profile.name} or features "
                                  f"{sorted(taken)} are already declared", source="meshconform.checks")
            known[profile.name] = profile
    return known


def all_features() -> frozenset[str]:
    """Every feature a unit may declare."""
    return frozenset().union(*(p.core | p.extended for p in profiles().values()))
