"""Sending resources to the cluster and taking them away: namespace mapping, the run's labels, the ownership
check, a server-side dry run of the whole batch (so a bad object leaves nothing half-applied), then server-side
apply; delete waits until each object is gone and never touches an object the run did not create."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from meshconform.errors import ConfigError, PlatformError
from meshconform.meshapi.loader import Sourced
from meshconform.platform.kube.client import ApplyRejected
from meshconform.platform.kube.names import NamespaceMap
from meshconform.platform.kube.ownership import RUN_LABEL, ObjectRef, check_may_apply, labelled, owner_of

# Objects others depend on go first (a namespace before what lives in it, a ConfigMap before the pods mounting it).
_APPLY_ORDER = {"Namespace": 0, "ServiceAccount": 1, "ConfigMap": 1, "Secret": 1, "Service": 2, "Deployment": 3}


class Cluster(Protocol):
    """The calls this module makes (KubeClient's, or a test's fake)."""

    def get(self, ref: ObjectRef) -> dict[str, Any] | None: ...
    def apply(self, doc: Mapping[str, Any], dry_run: bool = False) -> dict[str, Any]: ...
    def delete(self, ref: ObjectRef) -> bool: ...


@dataclass(frozen=True)
class Prepared:
    """One resource as it goes to the cluster."""

    ref: ObjectRef
    document: dict[str, Any]
    source: str
    logical: str  # the resource as the user wrote it ("VirtualService default/reviews")


def prepare(items: Sequence[Sourced], names: NamespaceMap, run_id: str,
            logical_namespaces: Collection[str]) -> list[Prepared]:
    """Mapped, labelled copies in apply order (pure)."""
    prepared = []
    for item in items:
        doc = labelled(names.document(item.document, logical_namespaces), run_id)
        if doc.get("kind") == "Deployment":
            # Pods carry the run label too, so the run's pods are found by one selector.
            template = doc.setdefault("spec", {}).setdefault("template", {})
            template_meta = template.setdefault("metadata", {})
            template_meta.setdefault("labels", {})[RUN_LABEL] = run_id
        _narrow_shared_selector(doc, names)
        doc.pop("status", None)
        prepared.append(Prepared(ObjectRef.of(doc), doc, item.source, item.resource.ref))
    return sorted(prepared, key=lambda p: _APPLY_ORDER.get(p.ref.kind, 4))


# Policies whose selector, in Istio's root namespace, selects matching workloads in every namespace.
_ROOT_SELECTED_KINDS = frozenset({"AuthorizationPolicy", "RequestAuthentication"})


def _narrow_shared_selector(doc: dict[str, Any], names: NamespaceMap) -> None:
    """A root-namespace AuthorizationPolicy or RequestAuthentication with a selector applies to the matching
    workloads of every namespace (Istio's references): on a cluster that is also the user's and other runs'
    workloads. Its selector also names the run label, which only this run's pods carry (see above), so it selects
    the workloads the suite meant and no other; a policy without a selector (mesh-wide) is left as written."""
    if doc.get("kind") not in _ROOT_SELECTED_KINDS or not str(doc.get("apiVersion", "")).startswith(
            "security.istio.io/"):
        return
    namespace = (doc.get("metadata") or {}).get("namespace")
    match_labels = ((doc.get("spec") or {}).get("selector") or {}).get("matchLabels")
    run_id = ((doc.get("metadata") or {}).get("labels") or {}).get(RUN_LABEL)
    if namespace in names.shared and match_labels and run_id:
        match_labels[RUN_LABEL] = run_id


def apply_all(cluster: Cluster, prepared: Sequence[Prepared], run_id: str) -> list[ObjectRef]:
    """Ownership first (an existing object not created by this run is refused), then a dry run of every object
    (server validation and Istio's admission webhook), then the real apply. Returns the refs applied.
    A Namespace created in this batch makes the dry run of its contents impossible (the namespace does not exist
    yet), so those are checked by the real apply, in order, and rolled back if refused."""
    created_namespaces = set()
    for item in prepared:
        live = cluster.get(item.ref)
        check_may_apply(item.ref, live, run_id, item.source)
        if item.ref.kind == "Namespace" and live is None:
            created_namespaces.add(item.ref.name)
    for item in prepared:
        if item.ref.kind != "Namespace" and item.ref.namespace in created_namespaces:
            continue
        try:
            cluster.apply(item.document, dry_run=True)
        except ApplyRejected as exc:
            raise ConfigError(f"refused by the cluster: {exc.reason}", source=item.source,
                              resource=item.logical) from None
    done: list[ObjectRef] = []
    for item in prepared:
        try:
            cluster.apply(item.document)
        except ApplyRejected as exc:
            _roll_back(cluster, done, run_id)
            raise ConfigError(f"refused by the cluster: {exc.reason} (the objects applied before it in this batch "
                              "were removed again)", source=item.source, resource=item.logical) from None
        done.append(item.ref)
    return done


def _roll_back(cluster: Cluster, refs: Sequence[ObjectRef], run_id: str) -> None:
    for ref in reversed(refs):
        live = cluster.get(ref)
        if live is not None and owner_of(live) == run_id:
            cluster.delete(ref)


def delete_all(cluster: Cluster, prepared: Sequence[Prepared], run_id: str, ignore_missing: bool,
               deadline_for: Callable[[ObjectRef], float], poll: tuple[float, float],
               clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep
               ) -> list[ObjectRef]:
    """Delete the run's objects among `prepared` (reverse apply order) and wait until each is gone.
    A missing object is an error unless `ignore_missing`; an object not created by this run is an error, untouched."""
    targets: list[Prepared] = []
    for item in reversed(prepared):
        live = cluster.get(item.ref)
        if live is None:
            if not ignore_missing:
                raise ConfigError("not found on the cluster", source=item.source, resource=item.logical)
            continue
        if owner_of(live) != run_id:
            raise ConfigError(f"{item.ref} was not created by this run (label missing or different): "
                              "meshconform never deletes it", source=item.source, resource=item.logical)
        targets.append(item)
    for item in targets:
        cluster.delete(item.ref)
    for item in targets:
        wait_gone(cluster, item.ref, deadline_for(item.ref), poll, clock, sleep)
    return [item.ref for item in targets]


def wait_gone(cluster: Cluster, ref: ObjectRef, timeout: float, poll: tuple[float, float],
              clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
    """Poll GET until 404, backing off from poll[0] to poll[1]; PlatformError naming what stays and why
    (its finalizers, deletionTimestamp) at the deadline."""
    deadline = clock() + timeout
    pause = poll[0]
    while True:
        live = cluster.get(ref)
        if live is None:
            return
        if clock() >= deadline:
            meta = live.get("metadata") or {}
            raise PlatformError(f"{ref} still exists {timeout:.0f}s after delete (deletionTimestamp "
                                f"{meta.get('deletionTimestamp')}, finalizers {meta.get('finalizers') or []})")
        sleep(pause)
        pause = min(pause * 2, poll[1])
