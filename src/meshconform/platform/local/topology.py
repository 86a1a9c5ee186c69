"""From applied resources to the mesh snapshot: namespaces, services, pods (with injection decided)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from meshconform.errors import ConfigError
from meshconform.meshapi.gateway_api import GROUP as GATEWAY_API_GROUP
from meshconform.meshapi.injection import should_inject
from meshconform.meshapi.kube import Deployment, Namespace, Service
from meshconform.meshapi.loader import Sourced
from meshconform.platform.local.translator.model import ROOT_NAMESPACE, MeshSnapshot, Pod

LOCAL_APP = "meshconform.io/local-app"
KNOWN_APPS = ("productpage", "details", "reviews", "ratings", "echo", "client")
# Istio's own Bookinfo images, each played by our app of the same name, so Istio's samples/bookinfo manifests run as
# they are (kubectl apply habits carry over). The environment is what each image sets for itself (the build arguments
# of Istio's samples/bookinfo/src/docker-bake.hcl: reviews v1 shows no ratings, v2 black stars, v3 red ones); the
# Deployment's own env wins over it, as a container's env wins over its image's. Other Bookinfo images (details-v2,
# ratings-v2 with a database, the faulty ratings) are not played here.
BOOKINFO_IMAGES: dict[str, tuple[str, dict[str, str]]] = {
    "examples-bookinfo-productpage-v1": ("productpage", {}),
    "examples-bookinfo-details-v1": ("details", {}),
    "examples-bookinfo-ratings-v1": ("ratings", {}),
    "examples-bookinfo-reviews-v1": ("reviews", {"ENABLE_RATINGS": "false"}),
    "examples-bookinfo-reviews-v2": ("reviews", {"ENABLE_RATINGS": "true", "STAR_COLOR": "black"}),
    "examples-bookinfo-reviews-v3": ("reviews", {"ENABLE_RATINGS": "true", "STAR_COLOR": "red"}),
}
BUILTIN_NAMESPACES: dict[str, dict[str, str]] = {"default": {}, ROOT_NAMESPACE: {}}
GATEWAY_LABELS = {"app": "istio-ingressgateway", "istio": "ingressgateway"}


@dataclass(frozen=True)
class PodSpec:
    """A pod plus what it takes to run its app locally."""

    pod: Pod
    app: str
    env: dict[str, str]
    template_hash: str


def _hash(data: object, length: int = 10) -> str:
    digest = hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    number = int(digest, 16)
    out = ""
    while len(out) < length:
        number, rest = divmod(number, len(alphabet))
        out += alphabet[rest]
    return out


def build(resources: Sequence[Sourced], allocate_ip: Callable[[str], str], no_injection: bool = False
          ) -> tuple[MeshSnapshot, list[PodSpec]]:
    namespaces = {k: dict(v) for k, v in BUILTIN_NAMESPACES.items()}
    by_kind: dict[str, list[Sourced]] = {}
    for item in resources:  # by the key's kind: a Gateway API Gateway is "Gateway.gateway.networking.k8s.io"
        by_kind.setdefault(item.key[0], []).append(item)
    for item in by_kind.get("Namespace", []):
        assert isinstance(item.resource, Namespace)
        namespaces[item.resource.metadata.name] = dict(item.resource.metadata.labels)
    for kind, items in by_kind.items():
        for item in items:
            ns = item.resource.metadata.namespace
            if kind != "Namespace" and ns not in namespaces:
                raise ConfigError(f"namespace {ns!r} not found (apply a Namespace first)", source=item.source,
                                  resource=item.resource.ref, field="metadata.namespace")
    services = [i.resource for i in by_kind.get("Service", []) if isinstance(i.resource, Service)]
    specs: list[PodSpec] = []
    for item in by_kind.get("Deployment", []):
        specs.extend(_pods(item, namespaces, services, allocate_ip, no_injection))
    gateway = Pod(name="istio-ingressgateway", namespace=ROOT_NAMESPACE, deployment="istio-ingressgateway",
                  labels=dict(GATEWAY_LABELS), service_account="istio-ingressgateway-service-account",
                  ip=allocate_ip(f"{ROOT_NAMESPACE}/istio-ingressgateway"), container_ports=(), injected=False,
                  is_gateway=True)
    snapshot = MeshSnapshot(
        namespaces=namespaces, services=services, pods=[gateway, *(s.pod for s in specs)],
        virtual_services=[i.resource for i in by_kind.get("VirtualService", [])],  # type: ignore[misc]
        destination_rules=[i.resource for i in by_kind.get("DestinationRule", [])],  # type: ignore[misc]
        gateways=[i.resource for i in by_kind.get("Gateway", [])],  # type: ignore[misc]
        peer_authentications=[i.resource for i in by_kind.get("PeerAuthentication", [])],  # type: ignore[misc]
        secrets=[i.resource for i in by_kind.get("Secret", [])],  # type: ignore[misc]
        authorization_policies=[i.resource for i in by_kind.get("AuthorizationPolicy", [])],  # type: ignore[misc]
        request_authentications=[i.resource for i in by_kind.get("RequestAuthentication", [])],  # type: ignore[misc]
        k8s_gateways=[i.resource for i in by_kind.get(f"Gateway.{GATEWAY_API_GROUP}", [])],  # type: ignore[misc]
        http_routes=[i.resource for i in by_kind.get(f"HTTPRoute.{GATEWAY_API_GROUP}", [])],  # type: ignore[misc]
        service_entries=[i.resource for i in by_kind.get("ServiceEntry", [])],  # type: ignore[misc]
        sidecars=[i.resource for i in by_kind.get("Sidecar", [])],  # type: ignore[misc]
    )
    return snapshot, specs


def _pods(item: Sourced, namespaces: dict[str, dict[str, str]], services: list[Service],
          allocate_ip: Callable[[str], str], no_injection: bool) -> list[PodSpec]:
    deployment = item.resource
    assert isinstance(deployment, Deployment)
    template = deployment.spec.template
    app, image_env = _local_app(item, deployment)
    selector = deployment.spec.selector.match_labels
    if any(template.metadata.labels.get(k) != v for k, v in selector.items()):
        raise ConfigError("spec.selector does not match the template labels", source=item.source,
                          resource=deployment.ref, field="spec.selector.matchLabels")
    ns = deployment.metadata.namespace
    declared = tuple(sorted({p.container_port for c in template.spec.containers for p in c.ports}))
    ports = set(declared)
    labels = dict(template.metadata.labels)
    for service in services:
        if service.metadata.namespace == ns and service.spec.selector and all(
                labels.get(k) == v for k, v in service.spec.selector.items()):
            ports.update(p.container_port for p in service.spec.ports)
    injected = not no_injection and should_inject(namespaces.get(ns, {}), labels, template.metadata.annotations)
    if injected:
        labels["security.istio.io/tlsMode"] = "istio"
        labels.setdefault("service.istio.io/canonical-name", labels.get("app", deployment.metadata.name))
        labels.setdefault("service.istio.io/canonical-revision", labels.get("version", "latest"))
    env = image_env | {e.name: e.value for c in template.spec.containers for e in c.env}
    template_hash = _hash(template.model_dump(by_alias=True))
    specs = []
    for index in range(deployment.spec.replicas):
        name = f"{deployment.metadata.name}-{template_hash}-{_hash([template_hash, index], 5)}"
        pod = Pod(name=name, namespace=ns, deployment=deployment.metadata.name, labels=labels,
                  service_account=template.spec.service_account_name, ip=allocate_ip(f"{ns}/{name}"),
                  container_ports=tuple(sorted(ports)), injected=injected, declared_ports=declared)
        specs.append(PodSpec(pod, str(app), env, template_hash))
    return specs


def image_name(image: str) -> str:
    """An image reference without its registry, repository path, tag and digest:
    "registry.istio.io/release/examples-bookinfo-details-v1:1.20.3" -> "examples-bookinfo-details-v1"."""
    path = image.split("@", 1)[0]
    last = path.rsplit("/", 1)[-1]
    return last.split(":", 1)[0]


def _local_app(item: Sourced, deployment: Deployment) -> tuple[str, dict[str, str]]:
    """Which of our apps plays this Deployment, and the environment its image would set: the annotation if there
    is one, else the first container whose image is one of Istio's Bookinfo images."""
    template = deployment.spec.template
    named = template.metadata.annotations.get(LOCAL_APP)
    if named is not None:
        if named not in KNOWN_APPS:
            raise ConfigError(f"annotation {LOCAL_APP} names {named!r}: the local platform's apps are "
                              f"{', '.join(KNOWN_APPS)}", source=item.source, resource=deployment.ref,
                              field=f"spec.template.metadata.annotations.{LOCAL_APP}")
        return named, {}
    for container in template.spec.containers:
        known = BOOKINFO_IMAGES.get(image_name(container.image))
        if known is not None:
            return known[0], dict(known[1])
    images = ", ".join(c.image for c in template.spec.containers)
    raise ConfigError(f"no app of the local platform plays {images}: it plays Istio's Bookinfo images "
                      f"({', '.join(sorted(BOOKINFO_IMAGES))}; any registry and tag) and, named by annotation "
                      f"{LOCAL_APP}, its own apps ({', '.join(KNOWN_APPS)})", source=item.source,
                      resource=deployment.ref, field="spec.template.spec.containers[0].image")
