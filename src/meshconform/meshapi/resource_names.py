"""The names kubectl knows each kind by (plural, singular, short names, kind.group), so `meshconform get vs`
means what `kubectl get vs` does. Short names are those of Kubernetes' own resources and of Istio's and the
Gateway API's CRDs (`shortNames` in their spec.names)."""

from __future__ import annotations

from dataclasses import dataclass

from meshconform.meshapi.gateway_api import GROUP as GATEWAY_API_GROUP


@dataclass(frozen=True)
class ResourceName:
    kind: str  # as in a manifest: "VirtualService"
    group: str  # "" for the core group, "apps", "networking.istio.io", ...
    plural: str  # "virtualservices"
    short: tuple[str, ...] = ()
    key_kind: str = ""  # the loader's key kind where it differs (a Gateway API Gateway: "Gateway.<group>")
    namespaced: bool = True

    @property
    def key(self) -> str:
        return self.key_kind or self.kind

    @property
    def qualified(self) -> str:
        """How kubectl prints the kind before a name: "virtualservice.networking.istio.io", "service"."""
        return f"{self.kind.lower()}.{self.group}" if self.group else self.kind.lower()

    def names(self) -> set[str]:
        singular = self.kind.lower()
        own = {singular, self.plural, *self.short}
        return own | {f"{name}.{self.group}" for name in (singular, self.plural)} if self.group else own


ISTIO = "networking.istio.io"
SECURITY = "security.istio.io"
RESOURCES = (
    ResourceName("Namespace", "", "namespaces", ("ns",), namespaced=False),
    ResourceName("ServiceAccount", "", "serviceaccounts", ("sa",)),
    ResourceName("Service", "", "services", ("svc",)),
    ResourceName("Secret", "", "secrets"),
    ResourceName("Deployment", "apps", "deployments", ("deploy",)),
    ResourceName("VirtualService", ISTIO, "virtualservices", ("vs",)),
    ResourceName("DestinationRule", ISTIO, "destinationrules", ("dr",)),
    ResourceName("Gateway", ISTIO, "gateways", ("gw",)),
    ResourceName("ServiceEntry", ISTIO, "serviceentries", ("se",)),
    ResourceName("Sidecar", ISTIO, "sidecars"),
    ResourceName("PeerAuthentication", SECURITY, "peerauthentications", ("pa",)),
    ResourceName("AuthorizationPolicy", SECURITY, "authorizationpolicies", ("ap",)),
    ResourceName("RequestAuthentication", SECURITY, "requestauthentications", ("ra",)),
    ResourceName("Gateway", GATEWAY_API_GROUP, "gateways", ("gtw",), key_kind=f"Gateway.{GATEWAY_API_GROUP}"),
    ResourceName("HTTPRoute", GATEWAY_API_GROUP, "httproutes", key_kind=f"HTTPRoute.{GATEWAY_API_GROUP}"),
)


def lookup(name: str) -> ResourceName:
    """The kind `name` means, as kubectl resolves it; `gateway` is Istio's (its CRD's short name is `gw`), the
    Gateway API's is `gateways.gateway.networking.k8s.io` or `gtw`. Raises KeyError with what is known."""
    wanted = name.lower()
    for resource in RESOURCES:  # Istio's Gateway comes first: it wins the bare names both have
        if wanted in resource.names():
            return resource
    raise KeyError(name)


def by_key(key_kind: str) -> ResourceName:
    return next(r for r in RESOURCES if r.key == key_kind)
