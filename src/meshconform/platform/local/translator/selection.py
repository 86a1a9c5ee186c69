"""Which security policies apply to a workload: Istio's selector rule for AuthorizationPolicy and
RequestAuthentication (policies of the workload's namespace and of the root namespace whose
`selector.matchLabels` the pod's labels all carry; no selector selects every workload in scope)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, TypeVar

from meshconform.meshapi.istio import WorkloadSelector
from meshconform.platform.local.misbehaviour import Misbehaviour, Misbehaviours
from meshconform.platform.local.translator.model import ROOT_NAMESPACE, Pod


class _Spec(Protocol):
    @property
    def selector(self) -> WorkloadSelector | None: ...


class _Meta(Protocol):
    @property
    def namespace(self) -> str: ...


class _Selectable(Protocol):
    @property
    def metadata(self) -> _Meta: ...

    @property
    def spec(self) -> _Spec: ...


S = TypeVar("S", bound=_Selectable)


def selecting(resources: Iterable[S], pod: Pod, misbehave: Misbehaviours = frozenset()) -> list[S]:
    """The resources (in their given order) that select `pod`."""
    scopes = {pod.namespace} if Misbehaviour.ROOT_NAMESPACE_POLICIES_IGNORED in misbehave else {
        pod.namespace, ROOT_NAMESPACE}
    selected = []
    for resource in resources:
        if resource.metadata.namespace not in scopes:
            continue
        labels = resource.spec.selector.match_labels if resource.spec.selector else {}
        if all(pod.labels.get(k) == v for k, v in labels.items()):
            selected.append(resource)
    return selected
