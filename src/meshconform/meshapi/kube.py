"""The Kubernetes objects that define workloads: what the mesh needs of them, nothing more."""

from __future__ import annotations

import base64
from typing import Any, ClassVar

from pydantic import Field, model_validator

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


class ServicePort(KubeObject):
    name: str | None = None
    port: int = Field(ge=1, le=65535)
    target_port: int | None = Field(default=None, ge=1, le=65535)
    protocol: str = "TCP"

    @property
    def container_port(self) -> int:
        return self.target_port or self.port


class ServiceSpec(KubeObject):
    selector: dict[str, str] = Field(default_factory=dict)
    ports: list[ServicePort] = Field(min_length=1)


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
