"""The Gateway API CRDs meshconform vendors (schemas/gateway-api-v1.6.1, standard channel): their pinned SHA-256,
read for offline validation and applied on a cluster that has none (Istio's docs: install the CRDs if they are
not present; a cluster's own install is never changed)."""

from __future__ import annotations

import hashlib
from functools import cache
from importlib import resources
from typing import Any

import yaml

from meshconform.errors import PlatformError

VERSION = "v1.6.1"
CHANNEL = "standard"
FOLDER = f"schemas/gateway-api-{VERSION}"
SOURCE = f"github.com/kubernetes-sigs/gateway-api config/crd/standard @ {VERSION} (vendored)"
# The probe Istio's docs use: this CRD present means the Gateway API is installed.
PROBE_CRD = "gateways.gateway.networking.k8s.io"
SHA256: dict[str, str] = {
    "gateway.networking.k8s.io_backendtlspolicies.yaml": "0d48c9e4b53dd9510cf615b9b1192d9d7afb07a1cc0498c9515627cb1c075419",
    "gateway.networking.k8s.io_gatewayclasses.yaml": "53710048ba26f8620eed59d5e51b157ecf040daf5c6eef31a4b991e0808c4be5",
    "gateway.networking.k8s.io_gateways.yaml": "25b885f5870b8fff1ae82efa2628b2761cef3745900c2aecf8fb76629a01255a",
    "gateway.networking.k8s.io_grpcroutes.yaml": "53a8d029da8f07e55d3fa58a5cf6de5950dab19fbb8d6a8082fb5e51ca5ef6fc",
    "gateway.networking.k8s.io_httproutes.yaml": "a424a0d6c953b162e71d1d97bb7e75012d8f1ac264e7274f2763d1b96ab39852",
    "gateway.networking.k8s.io_listenersets.yaml": "bf4d4b02564999b2558b96e31465129895db9b3a8adfb90adb9c80eac52a3a70",
    "gateway.networking.k8s.io_referencegrants.yaml": "8c645e9333cfa67790cc2a53e0c00076f88b2bd4230d2b49688c78bc34f9b2c3",
    "gateway.networking.k8s.io_tcproutes.yaml": "d5104d0cf30e924f5e3c9e2e76abd46876401c34ca33b9e79321523eee78c7f6",
    "gateway.networking.k8s.io_tlsroutes.yaml": "bb8b67926e5d9652cbfd2e19063b7c1d9e78806c9dd671608f57baef2f2e3bbb",
    "gateway.networking.k8s.io_udproutes.yaml": "4b80684c2bf8ef4b0a2a3ab45164ac9f96258fc69912645ff50ced595b0aa6de",
    "gateway.networking.k8s.io_vap_safeupgrades.yaml": "afb0ea1b3cc2e9344d93b0926fbe741aeb48ab4439f9f7b4b77b9ac94faf6c2e",
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
