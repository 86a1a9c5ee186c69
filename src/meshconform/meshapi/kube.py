"""The Kubernetes objects that define workloads: what the mesh needs of them, nothing more."""

from __future__ import annotations

import base64
from typing import Any, ClassVar

from pydantic import Field, field_validator, model_validator

from meshconform.meshapi.base import KubeObject, ObjectMeta, Resource


class Namespace(Resource):
    api_versions: ClassVar[tuple[str, ...]] = ("v1",)

    @model_validator(mode="before")
    @classmethod
    def _cluster_scoped(cls, data: dict[str, Any]) -> dict[str, Any]:
        # A Namespace has no namespace of its own; we key it under "" for uniqueness.
        meta = dict(data.get("metadata") or {})
        meta["namespace"] = "cluster"
        return {**data, "metadata": meta}


class ServiceAccount(Resource):
    api_versions: ClassVar[tuple[str, ...]] = ("v1",)


# Istio's protocol selection for a Service port (istio.io "Protocol Selection"; istiod's kube.ConvertProtocol):
# appProtocol if set, else the port name's prefix before '-' ("grpc-web" whole); anything else is detected
# from the traffic (protocol sniffing).
ISTIO_HTTP_PROTOCOLS = frozenset({"http", "http2", "grpc", "grpc-web", "http_proxy"})
ISTIO_OPAQUE_PROTOCOLS = frozenset({"tcp", "udp", "https", "tls", "mongo", "redis", "mysql"})
_APP_PROTOCOL_STANDARD = {"kubernetes.io/h2c": "http2", "kubernetes.io/ws": "http", "kubernetes.io/wss": "https"}


class ServicePort(KubeObject):
    name: str | None = None
    port: int = Field(ge=1, le=65535)
    target_port: int | None = Field(default=None, ge=1, le=65535)
    protocol: str = "TCP"
    app_protocol: str | None = None

    @property
    def container_port(self) -> int:
        return self.target_port or self.port

    @property
    def istio_protocol(self) -> str | None:
        """The protocol Istio gives this port (lower case: http, http2, grpc, tcp, tls, ...), or None when it
        declares none Istio knows, so Istio detects it from the traffic."""
        if self.protocol.upper() == "UDP":
            return "udp"
        declared = self.app_protocol if self.app_protocol is not None else (self.name or "")
        if declared in _APP_PROTOCOL_STANDARD and self.app_protocol is not None:
            return _APP_PROTOCOL_STANDARD[declared]
        declared = declared.lower()
        if declared.startswith("grpc-web"):
            return "grpc-web"
        prefix = declared.split("-", 1)[0]
        return prefix if prefix in ISTIO_HTTP_PROTOCOLS | ISTIO_OPAQUE_PROTOCOLS else None


class ServiceSpec(KubeObject):
    selector: dict[str, str] = Field(default_factory=dict)
    ports: list[ServicePort] = Field(default_factory=list)
    type: str = "ClusterIP"
    cluster_ip: str | None = Field(default=None, alias="clusterIP")

    @model_validator(mode="after")
    def _ports_unless_external(self) -> ServiceSpec:
        # As the API server validates a Service: only an ExternalName or a headless one may list no ports.
        if not self.ports and self.type != "ExternalName" and self.cluster_ip != "None":
            raise ValueError("ports: a Service needs at least one port (unless ExternalName or headless)")
        return self


class Service(Resource):
    api_versions: ClassVar[tuple[str, ...]] = ("v1",)
    spec: ServiceSpec

    @property
    def fqdn(self) -> str:
        return f"{self.metadata.name}.{self.metadata.namespace}.svc.cluster.local"


class EnvVar(KubeObject):
    name: str
    value: str = ""


class ContainerPort(KubeObject):
    container_port: int = Field(ge=1, le=65535)
    name: str | None = None


class Container(KubeObject):
    name: str
    image: str
    env: list[EnvVar] = Field(default_factory=list)
    ports: list[ContainerPort] = Field(default_factory=list)


class PodSpec(KubeObject):
    service_account_name: str = "default"
    containers: list[Container] = Field(min_length=1)


class PodTemplateMeta(KubeObject):
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class PodTemplate(KubeObject):
    metadata: PodTemplateMeta = Field(default_factory=PodTemplateMeta)
    spec: PodSpec


class LabelSelector(KubeObject):
    match_labels: dict[str, str] = Field(default_factory=dict)


class DeploymentSpec(KubeObject):
    replicas: int = Field(default=1, ge=0, le=20)
    selector: LabelSelector = Field(default_factory=LabelSelector)
    template: PodTemplate


class Deployment(Resource):
    api_versions: ClassVar[tuple[str, ...]] = ("apps/v1",)
    spec: DeploymentSpec


class Secret(Resource):
    api_versions: ClassVar[tuple[str, ...]] = ("v1",)
    type: str = "Opaque"
    data: dict[str, str] = Field(default_factory=dict)
    string_data: dict[str, str] = Field(default_factory=dict)

    @field_validator("data", "string_data")
    @classmethod
    def _not_masked(cls, values: dict[str, str]) -> dict[str, str]:
        """A Secret as `meshconform get -o yaml` prints it, applied back, would hold the mask as its data."""
        for key, value in values.items():
            if value.startswith("<redacted: "):
                raise ValueError(f"{key}: {value} is how meshconform prints Secret data (masked), not the data: "
                                 "apply the Secret from its own manifest")
        return values

    @field_validator("data")
    @classmethod
    def _base64(cls, data: dict[str, str]) -> dict[str, str]:
        """`data` values are base64, as the API server requires ("illegal base64 data"); decoded leniently, text that
        is not became bytes no one wrote."""
        for key, value in data.items():
            try:
                base64.b64decode(value, validate=True)
            except ValueError:
                raise ValueError(f"{key}: not base64 (the value of a Secret's data is base64-encoded; stringData "
                                 "takes plain text)") from None
        return data

    def value(self, key: str) -> bytes | None:
        if key in self.string_data:
            return self.string_data[key].encode()
        if key in self.data:
            return base64.b64decode(self.data[key])
        return None

    def __repr__(self) -> str:  # never print key material
        return f"Secret({self.metadata.namespace}/{self.metadata.name}, keys={sorted({*self.data, *self.string_data})})"


KUBE_KINDS: dict[str, type[Resource]] = {
    "Namespace": Namespace,
    "ServiceAccount": ServiceAccount,
    "Service": Service,
    "Deployment": Deployment,
    "Secret": Secret,
}

__all__ = ["KUBE_KINDS", "ObjectMeta"]
