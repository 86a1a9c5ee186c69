"""The Gateway API CRDs meshconform vendors (schemas/gateway-api-v1.6.1, standard channel): their pinned SHA-256,
read for offline validation and applied on a cluster that has none (Istio's docs: install the CRDs if they are
not present; a cluster's own install is never changed)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Any, Protocol

import yaml

from meshconform.errors import PlatformError
from meshconform.platform.kube.ownership import ObjectRef

VERSION = "v1.6.1"
CHANNEL = "standard"
FOLDER = f"schemas/gateway-api-{VERSION}"
SOURCE = f"github.com/kubernetes-sigs/gateway-api config/crd/standard @ {VERSION} (vendored)"
# The probe Istio's docs use: this CRD present means the Gateway API is installed.
PROBE_CRD = "gateways.gateway.networking.k8s.io"
PROBE = ObjectRef("apiextensions.k8s.io/v1", "CustomResourceDefinition", "", PROBE_CRD)
BUNDLE_ANNOTATION = "gateway.networking.k8s.io/bundle-version"
PREFIX = "gateway.networking.k8s.io_"
SHA256: dict[str, str] = {
    f"{PREFIX}backendtlspolicies.yaml": "0d48c9e4b53dd9510cf615b9b1192d9d7afb07a1cc0498c9515627cb1c075419",
    f"{PREFIX}gatewayclasses.yaml": "53710048ba26f8620eed59d5e51b157ecf040daf5c6eef31a4b991e0808c4be5",
    f"{PREFIX}gateways.yaml": "25b885f5870b8fff1ae82efa2628b2761cef3745900c2aecf8fb76629a01255a",
    f"{PREFIX}grpcroutes.yaml": "53a8d029da8f07e55d3fa58a5cf6de5950dab19fbb8d6a8082fb5e51ca5ef6fc",
    f"{PREFIX}httproutes.yaml": "a424a0d6c953b162e71d1d97bb7e75012d8f1ac264e7274f2763d1b96ab39852",
    f"{PREFIX}listenersets.yaml": "bf4d4b02564999b2558b96e31465129895db9b3a8adfb90adb9c80eac52a3a70",
    f"{PREFIX}referencegrants.yaml": "8c645e9333cfa67790cc2a53e0c00076f88b2bd4230d2b49688c78bc34f9b2c3",
    f"{PREFIX}tcproutes.yaml": "d5104d0cf30e924f5e3c9e2e76abd46876401c34ca33b9e79321523eee78c7f6",
    f"{PREFIX}tlsroutes.yaml": "bb8b67926e5d9652cbfd2e19063b7c1d9e78806c9dd671608f57baef2f2e3bbb",
    f"{PREFIX}udproutes.yaml": "4b80684c2bf8ef4b0a2a3ab45164ac9f96258fc69912645ff50ced595b0aa6de",
    f"{PREFIX}vap_safeupgrades.yaml": "afb0ea1b3cc2e9344d93b0926fbe741aeb48ab4439f9f7b4b77b9ac94faf6c2e",
}


@cache
def documents() -> tuple[tuple[str, dict[str, Any]], ...]:
    """(file name, document) of every vendored object, in the kustomization's order; a file whose SHA-256 is not
    the pinned one is refused (nothing is applied or trusted from it)."""
    folder = resources.files("meshconform.platform.kube").joinpath(FOLDER)
    found = []
    for name, digest in SHA256.items():
        data = folder.joinpath(name).read_bytes()
        if hashlib.sha256(data).hexdigest() != digest:
            raise PlatformError(f"vendored Gateway API file {name} does not match its pinned SHA-256 {digest}")
        found += [(name, doc) for doc in yaml.safe_load_all(data) if doc]
    return tuple(found)


def crds() -> dict[tuple[str, str], dict[str, Any]]:
    """(group, kind) -> {version name: openAPIV3Schema} for every served version of the vendored CRDs."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for _, doc in documents():
        if doc.get("kind") != "CustomResourceDefinition":
            continue
        spec = doc["spec"]
        found[(spec["group"], spec["names"]["kind"])] = {
            v["name"]: v["schema"]["openAPIV3Schema"] for v in spec["versions"] if v.get("served")}
    return found


class CrdClient(Protocol):
    """What installing needs of the Kubernetes client (KubeClient has it)."""

    def get(self, ref: ObjectRef) -> dict[str, Any] | None: ...

    def apply(self, doc: dict[str, Any], dry_run: bool = False) -> dict[str, Any]: ...


def plan_lines() -> list[str]:
    """The install step as the dry-run plan shows it."""
    return [f"Gateway API CRDs {VERSION} ({CHANNEL} channel), only if GET "
            f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{PROBE_CRD} finds none and meshconform "
            "installed the mesh (never changed or deleted otherwise; on kind they go with the cluster): server-side "
            f"apply (field manager meshconform) of the vendored {SOURCE}, then wait until each CRD is Established:",
            *(f"    {name}  sha256:{digest}" for name, digest in SHA256.items())]


def ensure(client: CrdClient, allowed: bool, timeout: float, pauses: tuple[float, float],
           sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """The Gateway API CRDs on the cluster: left as they are when present (their bundle version reported),
    installed from the vendored files when absent and `allowed` (meshconform installed the mesh), else reported
    absent (the Gateway API tests then fail at their apply with "the cluster does not serve Gateway")."""
    found = client.get(PROBE)
    if found is not None:
        annotations = (found.get("metadata") or {}).get("annotations") or {}
        return {"crds": "present", "bundle_version": annotations.get(BUNDLE_ANNOTATION), "installed": False}
    if not allowed:
        return {"crds": "absent", "installed": False,
                "note": f"the cluster has no Gateway API CRDs and meshconform did not install the mesh: install "
                        f"them (Gateway API {VERSION}) to run the Gateway API tests"}
    for _, doc in documents():
        client.apply(doc)
    names = [doc["metadata"]["name"] for _, doc in documents() if doc["kind"] == "CustomResourceDefinition"]
    deadline, pause = time.monotonic() + timeout, pauses[0]
    while True:
        pending = [n for n in names if not _established(client.get(ObjectRef(PROBE.api_version, PROBE.kind, "", n)))]
        if not pending:
            return {"crds": "installed", "bundle_version": VERSION, "installed": True}
        if time.monotonic() >= deadline:
            raise PlatformError(f"Gateway API CRDs not Established within {timeout:g} s: {', '.join(pending)}")
        sleep(pause)
        pause = min(pause * 2, pauses[1])


def _established(crd: dict[str, Any] | None) -> bool:
    conditions = ((crd or {}).get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)
