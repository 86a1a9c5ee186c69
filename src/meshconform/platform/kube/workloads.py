"""Workloads as the suite sees them, judged from the real pods: which Deployment a pod belongs to, whether it runs
Istio's proxy, its SPIFFE identity, its readiness."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from meshconform.platform.api import Workload
from meshconform.platform.kube.names import NamespaceMap
from meshconform.platform.kube.readiness import PROXY, has_proxy, pod_problem

TRUST_DOMAIN = "cluster.local"  # Istio's default trust domain (meshConfig.trustDomain)


def deployment_of(pod: Mapping[str, Any]) -> str | None:
    """The Deployment behind a pod: its ReplicaSet owner's name minus the pod-template-hash suffix."""
    meta = pod.get("metadata") or {}
    template_hash = (meta.get("labels") or {}).get("pod-template-hash")
    for owner in meta.get("ownerReferences") or []:
        if owner.get("kind") == "ReplicaSet" and owner.get("controller", True):
            name = str(owner.get("name", ""))
            if template_hash and name.endswith(f"-{template_hash}"):
                return name[: -len(template_hash) - 1]
            return name.rsplit("-", 1)[0] if "-" in name else name
    return None


def app_container(pod: Mapping[str, Any]) -> str:
    """The application's container (the first that is not Istio's)."""
    for container in (pod.get("spec") or {}).get("containers") or []:
        if container.get("name") != PROXY:
            return str(container["name"])
    raise ValueError(f"pod {(pod.get('metadata') or {}).get('name')} has no application container")


def to_workload(pod: Mapping[str, Any], names: NamespaceMap) -> Workload:
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    namespace = names.logical(str(meta.get("namespace")))
    account = spec.get("serviceAccountName") or "default"
    return Workload(name=str(meta.get("name")), namespace=namespace, deployment=deployment_of(pod) or "",
                    labels={k: str(v) for k, v in (meta.get("labels") or {}).items()}, sidecar=has_proxy(pod),
                    identity=f"spiffe://{TRUST_DOMAIN}/ns/{namespace}/sa/{account}",
                    ready=pod_problem(pod, None) is None,
                    address=str((pod.get("status") or {}).get("podIP") or "") or None)


def proxy_image(pod: Mapping[str, Any]) -> str | None:
    spec = pod.get("spec") or {}
    for container in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]:
        if container.get("name") == PROXY:
            return str(container.get("image"))
    return None
