"""What the testbed needs on a cluster beyond its manifests: the agent code as a ConfigMap in each namespace that
runs testbed pods, and the image check (every image pinned by digest; a placeholder digest is refused, or, if
the user allows tag-only images, replaced by the tag and recorded)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from importlib import resources
from typing import Any

from meshconform.errors import ConfigError

AGENT_CONFIGMAP = "meshconform-agent"
AGENT_KEY = "agent.py"
AGENT_VOLUME = "meshconform-agent"
# A digest not found offline is written as this, so validation and `up` both see it (never an invented digest).
PLACEHOLDER = "@sha256:PLACEHOLDER"
_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


def agent_source() -> str:
    return resources.files("meshconform.platform.kube").joinpath("agent.py").read_text()


def agent_configmap(namespace: str) -> dict[str, Any]:
    """The ConfigMap the testbed pods mount at /opt/meshconform (see bookinfo/manifests/testbed.yaml)."""
    source = agent_source()
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": AGENT_CONFIGMAP, "namespace": namespace,
                         "annotations": {"meshconform.io/agent-sha256": hashlib.sha256(source.encode()).hexdigest()}},
            "data": {AGENT_KEY: source}}


def containers(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    spec = ((doc.get("spec") or {}).get("template") or {}).get("spec") or {}
    return [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]


def uses_agent(doc: Mapping[str, Any]) -> bool:
    spec = ((doc.get("spec") or {}).get("template") or {}).get("spec") or {}
    return any((v.get("configMap") or {}).get("name") == AGENT_CONFIGMAP for v in spec.get("volumes") or [])


def image_problem(image: str) -> str | None:
    if PLACEHOLDER in image:
        return "its digest is a placeholder (not found offline): pin it (`crane digest <image:tag>`)"
    if not _DIGEST.search(image):
        return "not pinned by digest (@sha256:<64 hex>)"
    return None


def check_images(docs: Iterable[tuple[str, Mapping[str, Any]]], allow_tags: bool) -> list[str]:
    """Every container image pinned by digest. With `allow_tags`, a placeholder digest is dropped (the tag is
    used: recorded by the caller); otherwise a ConfigError names the file, the Deployment and the field."""
    unpinned = []
    for source, doc in docs:
        for index, container in enumerate(containers(doc)):
            image = str(container.get("image", ""))
            problem = image_problem(image)
            if problem is None:
                continue
            if allow_tags and PLACEHOLDER in image:
                container["image"] = image.split("@", 1)[0]
                unpinned.append(container["image"])
                continue
            meta = doc.get("metadata") or {}
            raise ConfigError(f"image {image!r}: {problem}", source=source,
                              resource=f"{doc.get('kind')} {meta.get('namespace')}/{meta.get('name')}",
                              field=f"spec.template.spec.containers[{index}].image")
    return unpinned
