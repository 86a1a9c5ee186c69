"""Shared pieces of the resource models: strict Istio messages, lenient Kubernetes ones."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.alias_generators import to_camel

from meshconform.meshapi.durations import parse_duration


def _positive(seconds: float) -> float:
    if seconds < 0.001:
        raise ValueError("must be at least 1ms")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]
"""Seconds, parsed from a protobuf duration string such as '7s'."""
PositiveDuration = Annotated[float, BeforeValidator(parse_duration), AfterValidator(_positive)]


class IstioMessage(BaseModel):
    """An Istio API message. Unknown fields are errors; fields Istio has but we do not
    implement are listed in `unsupported` so the error can say which case it is."""

    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True
    )
    unsupported: ClassVar[frozenset[str]] = frozenset()


class KubeObject(BaseModel):
    """A Kubernetes object: we read the fields the mesh needs and ignore the rest
    (resources, probes, volumes...), as they do not change mesh behaviour."""

    model_config = ConfigDict(
        extra="ignore", alias_generator=to_camel, populate_by_name=True, frozen=True
    )


class ObjectMeta(KubeObject):
    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", max_length=253)
    namespace: str = Field(default="default", pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class Resource(BaseModel):
    """A top-level object as applied: apiVersion, kind, metadata, spec."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True)
    api_versions: ClassVar[tuple[str, ...]] = ()
    api_version: str
    kind: str
    metadata: ObjectMeta
    status: Any = None  # present in `kubectl get -o yaml` output; never read

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.metadata.namespace, self.metadata.name)

    @property
    def ref(self) -> str:
        return f"{self.kind} {self.metadata.namespace}/{self.metadata.name}"
