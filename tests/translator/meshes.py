"""Inputs for the translator's unit tests: mesh snapshots built in memory (Istio YAML parsed by the real
loader, pods built the way topology.py builds them), certificate paths that name files never written,
and one call that translates a snapshot."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from meshconform.meshapi.base import Resource
from meshconform.meshapi.istio import (
    AuthorizationPolicy,
    DestinationRule,
    Gateway,
    PeerAuthentication,
    RequestAuthentication,
    ServiceEntry,
    Sidecar,
    VirtualService,
)
from meshconform.meshapi.kube import Namespace, Secret, Service
from meshconform.meshapi.loader import load_text
from meshconform.platform.local import topology
from meshconform.platform.local.translator import translate
from meshconform.platform.local.translator.model import (
    ROOT_NAMESPACE,
    GatewayPorts,
    MeshSnapshot,
    Pod,
    ProxyConfig,
)

GATEWAY_PORTS = GatewayPorts(http=18080, https=18443)
CA = Path("/certs/ca.pem")


class FakeCerts:
    """Certificate paths only: the translator references files, it never reads them."""

    @property
    def ca(self) -> Path:
        return CA

    def workload(self, pod: Pod) -> tuple[Path, Path]:
        return Path(f"/certs/{pod.namespace}/{pod.name}.pem"), Path(f"/certs/{pod.namespace}/{pod.name}.key")

    def gateway_credential(self, namespace: str, name: str) -> tuple[Path, Path]:
        return Path(f"/certs/credential/{namespace}/{name}.pem"), Path(f"/certs/credential/{namespace}/{name}.key")


def proxy_paths(pod: Pod) -> tuple[Path, Path]:
    return Path(f"/xds/{pod.namespace}/{pod.name}"), Path(f"/logs/{pod.namespace}/{pod.name}.log")


_ips: dict[str, str] = {}


def _ip_for(key: str) -> str:
    return _ips.setdefault(key, f"127.0.{len(_ips) // 250 + 10}.{len(_ips) % 250 + 2}")


def pod(name: str, namespace: str = "default", *, labels: dict[str, str] | None = None, ports: Sequence[int] = (8080,),
        sidecar: bool = True, service_account: str | None = None) -> Pod:
    """A pod as topology.py makes it: an injected pod carries the labels the injector adds."""
    pod_labels = dict(labels or {"app": name})
    if sidecar:
        pod_labels["security.istio.io/tlsMode"] = "istio"
        pod_labels.setdefault("service.istio.io/canonical-name", pod_labels.get("app", name))
        pod_labels.setdefault("service.istio.io/canonical-revision", pod_labels.get("version", "latest"))
    return Pod(name=name, namespace=namespace, deployment=name.rsplit("-", 1)[0], labels=pod_labels,
               service_account=service_account or pod_labels.get("app", name), ip=_ip_for(f"{namespace}/{name}"),
               container_ports=tuple(sorted(ports)), injected=sidecar)


def gateway_pod() -> Pod:
    return Pod(name="istio-ingressgateway", namespace=ROOT_NAMESPACE, deployment="istio-ingressgateway",
               labels={"app": "istio-ingressgateway", "istio": "ingressgateway"},
               service_account="istio-ingressgateway-service-account", ip=_ip_for("istio-system/gateway"),
               container_ports=(), injected=False, is_gateway=True)


def service(name: str, namespace: str = "default", *, port: int = 80, target_port: int = 8080,
            selector: dict[str, str] | None = None) -> str:
    """A Service manifest (YAML text) selecting `app: name` unless told otherwise."""
    chosen = selector or {"app": name}
    labels = ", ".join(f"{k}: {v}" for k, v in chosen.items())
    return f"""
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  selector: {{{labels}}}
  ports: [{{name: http, port: {port}, targetPort: {target_port}}}]
---
"""


@cache
def parse(text: str) -> tuple[Resource, ...]:
    """Resources are frozen models, so one parse per distinct text serves every test (PyYAML is slow)."""
    return tuple(item.resource for item in load_text(text, "<test>"))


@dataclass
class Mesh:
    """A snapshot under construction: YAML documents in creation order (oldest first) plus pods."""

    yaml: list[str] = field(default_factory=list)
    pods: list[Pod] = field(default_factory=list)
    namespaces: dict[str, dict[str, str]] = field(
        default_factory=lambda: {"default": {"istio-injection": "enabled"}, ROOT_NAMESPACE: {}})

    def add(self, *texts: str) -> Mesh:
        self.yaml.extend(texts)
        return self

    def with_pods(self, *pods: Pod) -> Mesh:
        self.pods.extend(pods)
        return self

    def snapshot(self) -> MeshSnapshot:
        resources = [r for text in self.yaml for r in parse(text)]
        namespaces = dict(self.namespaces)
        for r in resources:
            if isinstance(r, Namespace):
                namespaces[r.metadata.name] = dict(r.metadata.labels)

        def of(kind: type) -> list:
            return [r for r in resources if isinstance(r, kind)]

        return MeshSnapshot(
            namespaces=namespaces, services=of(Service), pods=[gateway_pod(), *self.pods],
            virtual_services=of(VirtualService), destination_rules=of(DestinationRule), gateways=of(Gateway),
            peer_authentications=of(PeerAuthentication), secrets=of(Secret),
            authorization_policies=of(AuthorizationPolicy), request_authentications=of(RequestAuthentication),
            service_entries=of(ServiceEntry), sidecars=of(Sidecar))

    def translate(self, misbehave: Iterable[str] = ()) -> dict[str, ProxyConfig]:
        return translate(self.snapshot(), FakeCerts(), GATEWAY_PORTS, proxy_paths, frozenset(misbehave))


def echo_mesh() -> Mesh:
    """The shape of the conformance testbed: echo v1/v2 behind Service `echo` (80 -> 8080), a meshed client,
    and a legacy client without a sidecar."""
    return Mesh().add(service("echo"), service("client")).with_pods(
        pod("echo-v1-0", labels={"app": "echo", "version": "v1"}),
        pod("echo-v2-0", labels={"app": "echo", "version": "v2"}),
        pod("client-0", labels={"app": "client"}),
        pod("legacy-0", labels={"app": "legacy"}, sidecar=False),
    )


ECHO_SUBSETS = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: echo, namespace: default}
spec:
  host: echo
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
"""


def vs(http: str, *, name: str = "echo", hosts: str = "[echo]", gateways: str | None = None,
       namespace: str = "default") -> str:
    """A VirtualService with the given `http:` block (YAML, indented by two spaces)."""
    gw = f"\n  gateways: {gateways}" if gateways else ""
    return f"""
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  hosts: {hosts}{gw}
  http:
{http}
---
"""


def peer_auth(name: str, namespace: str, mode: str, *, selector: dict[str, str] | None = None,
              ports: dict[int, str] | None = None) -> str:
    sel = ""
    if selector:
        sel = "\n  selector: {matchLabels: {" + ", ".join(f"{k}: {v}" for k, v in selector.items()) + "}}"
    port_level = ""
    if ports:
        port_level = "\n  portLevelMtls: {" + ", ".join(f"{p}: {{mode: {m}}}" for p, m in ports.items()) + "}"
    mtls = f"\n  mtls: {{mode: {mode}}}" if mode else ""
    spec = f"{sel}{mtls}{port_level}" or " {}"
    return f"""
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {{name: {name}, namespace: {namespace}}}
spec:{spec}
---
"""


# ---------------------------------------------------------------- pods from Deployments, as the platform makes them

def deployment(name: str, namespace: str, app: str, labels: str = "") -> str:
    extra = f", {labels}" if labels else ""
    return f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata:
      labels: {{app: {name}{extra}}}
      annotations: {{meshconform.io/local-app: {app}}}
    spec:
      containers: [{{name: app, image: local, ports: [{{containerPort: 8080}}]}}]
---
"""


NAMESPACES = """
apiVersion: v1
kind: Namespace
metadata: {name: injected, labels: {istio-injection: enabled}}
---
apiVersion: v1
kind: Namespace
metadata: {name: revision, labels: {istio.io/rev: default}}
---
apiVersion: v1
kind: Namespace
metadata: {name: plain}
---
apiVersion: v1
kind: Namespace
metadata: {name: disabled, labels: {istio-injection: disabled}}
---
"""

WORKLOADS = NAMESPACES + "".join([
    deployment("a", "injected", "echo"),
    deployment("b", "injected", "echo", "sidecar.istio.io/inject: 'false'"),
    deployment("c", "revision", "echo"),
    deployment("d", "plain", "echo"),
    deployment("e", "plain", "echo", "sidecar.istio.io/inject: 'true'"),
    deployment("f", "disabled", "echo", "sidecar.istio.io/inject: 'true'"),
    deployment("client", "injected", "client"),
]) + service("d", "plain", selector={"app": "d"}) + service("a", "injected", selector={"app": "a"})


def build(no_injection: bool = False) -> MeshSnapshot:
    addresses: dict[str, str] = {}
    snapshot, _ = topology.build(load_text(WORKLOADS, "<test>"),
                                 lambda key: addresses.setdefault(key, f"127.0.20.{len(addresses) + 2}"),
                                 no_injection=no_injection)
    return snapshot
