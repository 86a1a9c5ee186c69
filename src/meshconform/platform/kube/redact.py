"""Secrets never leave the cluster in meshconform's files: like `kubectl describe secret`, keep names and sizes
(bytes per key) only. Applied to everything written as diagnostics or evidence."""

from __future__ import annotations

import base64
import binascii
import copy
from collections.abc import Mapping
from typing import Any

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def redact(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `obj` fit to write down: a Secret's (and a ConfigMap's) data replaced by sizes, and the copies of it
    that metadata can carry (last-applied annotation, managedFields) dropped. Other kinds are returned unchanged
    except for managedFields (noise)."""
    out = copy.deepcopy(dict(obj))
    meta = out.get("metadata")
    if isinstance(meta, dict):
        meta.pop("managedFields", None)
    if out.get("kind") == "ConfigMap":  # may carry credentials too: keep names and sizes
        out["data"] = {key: f"<redacted: {len(str(value).encode())} bytes>"
                       for key, value in sorted((out.get("data") or {}).items())}
        out.pop("binaryData", None)
        return out
    if out.get("kind") != "Secret":
        return out
    if isinstance(meta, dict):
        annotations = meta.get("annotations") or {}
        if LAST_APPLIED in annotations:
            annotations[LAST_APPLIED] = "<redacted>"
    sizes: dict[str, str] = {}
    for key, value in (out.pop("data", None) or {}).items():
        sizes[key] = f"{_decoded_size(value)} bytes"
    for key, value in (out.pop("stringData", None) or {}).items():
        sizes[key] = f"{len(str(value).encode())} bytes"
    out["data"] = {key: f"<redacted: {size}>" for key, size in sorted(sizes.items())}
    return out


def _decoded_size(value: Any) -> int:
    try:
        return len(base64.b64decode(str(value), validate=True))
    except (binascii.Error, ValueError):
        return len(str(value))


def redact_all(items: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [redact(item) for item in items]
