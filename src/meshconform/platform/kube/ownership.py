"""Which objects a run owns: every object meshconform creates carries the run label, and an object of the same
name without it (a user's, another run's) is an error naming it, never overwritten or deleted."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from meshconform.errors import ConfigError

RUN_LABEL = "meshconform.io/run"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGER = "meshconform"  # also the server-side apply field manager
# A label value: at most 63 characters, alphanumerics with - _ . inside.
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


@dataclass(frozen=True, order=True)
class ObjectRef:
    """One object on the cluster, by its real (mapped) namespace; namespace "" for cluster-scoped kinds."""

    api_version: str
    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name}"

    def to_json(self) -> dict[str, str]:
        return {"apiVersion": self.api_version, "kind": self.kind, "namespace": self.namespace, "name": self.name}

    @classmethod
    def from_json(cls, data: Mapping[str, str]) -> ObjectRef:
        return cls(data["apiVersion"], data["kind"], data["namespace"], data["name"])

    @classmethod
    def of(cls, doc: Mapping[str, Any]) -> ObjectRef:
        meta = doc.get("metadata") or {}
        namespace = "" if doc.get("kind") == "Namespace" else str(meta.get("namespace") or "")
        return cls(str(doc.get("apiVersion")), str(doc.get("kind")), namespace, str(meta.get("name")))


def check_run_id(run_id: str) -> str:
    if len(run_id) > 63 or not _LABEL_VALUE.match(run_id) or not run_id:
        raise ValueError(f"run id {run_id!r} is not a valid label value (63 characters, [A-Za-z0-9-_.])")
    return run_id


def labelled(doc: dict[str, Any], run_id: str) -> dict[str, Any]:
    """`doc` with the run's labels set (the caller's copy is changed and returned)."""
    labels = doc.setdefault("metadata", {}).setdefault("labels", {}) or {}
    labels[RUN_LABEL] = run_id
    labels[MANAGED_BY_LABEL] = MANAGER
    doc["metadata"]["labels"] = labels
    return doc


def run_selector(run_id: str) -> str:
    """The label selector of everything this run created."""
    return f"{RUN_LABEL}={run_id}"


def owner_of(live: Mapping[str, Any] | None) -> str | None:
    if not live:
        return None
    labels = (live.get("metadata") or {}).get("labels") or {}
    value = labels.get(RUN_LABEL)
    return str(value) if value is not None else None


def check_may_apply(ref: ObjectRef, live: Mapping[str, Any] | None, run_id: str, source: str = "") -> None:
    """An object that exists but was not created by this run is never overwritten."""
    if live is None:
        return
    owner = owner_of(live)
    if owner == run_id:
        return
    who = f"by meshconform run {owner}" if owner else f"outside meshconform (no {RUN_LABEL} label)"
    raise ConfigError(f"{ref} already exists on the cluster, created {who}; meshconform never overwrites "
                      "objects it did not create: remove it or use another namespace", source=source,
                      resource=str(ref))


def deletable(refs: Iterable[ObjectRef], live: Mapping[ObjectRef, Mapping[str, Any] | None],
              run_id: str) -> tuple[list[ObjectRef], list[ObjectRef], list[ObjectRef]]:
    """Split `refs` into (ours to delete, already gone, not ours: left alone) from their live state."""
    ours, gone, foreign = [], [], []
    for ref in refs:
        state = live.get(ref)
        if state is None:
            gone.append(ref)
        elif owner_of(state) == run_id:
            ours.append(ref)
        else:
            foreign.append(ref)
    return ours, gone, foreign


# Deleting a namespace deletes what is in it: objects inside a namespace this run also deletes need no
# call of their own; namespaces go last, Istio config first (so proxies drop it before workloads go).
_DELETE_ORDER = {"Namespace": 9, "Deployment": 5, "Service": 6, "ServiceAccount": 7, "ConfigMap": 7, "Secret": 7}


def cleanup_order(refs: Iterable[ObjectRef]) -> list[ObjectRef]:
    """What `down` deletes, in order: objects not inside a namespace being deleted, then the namespaces."""
    refs = sorted(set(refs))
    namespaces = {r.name for r in refs if r.kind == "Namespace"}
    kept = [r for r in refs if r.kind == "Namespace" or r.namespace not in namespaces]
    return sorted(kept, key=lambda r: (_DELETE_ORDER.get(r.kind, 0), r))
