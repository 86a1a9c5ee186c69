"""Shared pieces of the resource models: strict Istio messages, lenient Kubernetes ones."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    model_validator,
)
from pydantic.alias_generators import to_camel

from meshconform.meshapi.durations import parse_duration


def _positive(seconds: float) -> float:
    if seconds < 0.001:
        raise ValueError("must be at least 1ms")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]
"""Seconds, parsed from a duration string as Istio accepts it ('7s', '0.5s', '30ms', '15m', '1h30m')."""
PositiveDuration = Annotated[float, BeforeValidator(parse_duration), AfterValidator(_positive)]


class IstioMessage(BaseModel):
    """An Istio API message: the schema only (what Istio accepts), never what a platform implements.

    Unknown fields are errors. Fields Istio has that meshconform does not model (`unmodelled`) are
    accepted and kept as given in `unmodelled_fields`: a platform that applies resources as they are
    (kind, cluster) passes them on, and one that implements the API itself (local) refuses those it
    cannot honour in its own capability check, naming the field."""

    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True
    )
    unmodelled: ClassVar[frozenset[str]] = frozenset()
    _unmodelled_fields: dict[str, Any] = PrivateAttr(default_factory=dict)

    @model_validator(mode="wrap")
    @classmethod
    def _hold_unmodelled(cls, data: Any, handler: ModelWrapValidatorHandler[IstioMessage]) -> IstioMessage:
        held: dict[str, Any] = {}
        if isinstance(data, dict) and cls.unmodelled:
            held = {key: value for key, value in data.items() if key in cls.unmodelled}
            data = {key: value for key, value in data.items() if key not in cls.unmodelled}
        message = handler(data)
        message._unmodelled_fields = held
        return message

    @property
    def unmodelled_fields(self) -> dict[str, Any]:
        return dict(self._unmodelled_fields)


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
