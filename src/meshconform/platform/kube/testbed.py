"""What the testbed needs on a cluster beyond its manifests: the agent code as a ConfigMap in each namespace that
runs testbed pods (the images themselves are checked in images.py)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from importlib import resources
from typing import Any

AGENT_CONFIGMAP = "meshconform-agent"
AGENT_KEY = "agent.py"
AGENT_VOLUME = "meshconform-agent"


def agent_source() -> str:
    return resources.files("meshconform.platform.kube").joinpath("agent.py").read_text()


def agent_configmap(namespace: str) -> dict[str, Any]:
    """The ConfigMap the testbed pods mount at /opt/meshconform (see bookinfo/manifests/testbed.yaml)."""
    source = agent_source()
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": AGENT_CONFIGMAP, "namespace": namespace,
                         "annotations": {"meshconform.io/agent-sha256": hashlib.sha256(source.encode()).hexdigest()}},
            "data": {AGENT_KEY: source}}


def uses_agent(doc: Mapping[str, Any]) -> bool:
    """Whether a Deployment (or a pod) mounts the agent's ConfigMap, i.e. runs meshconform's agent."""
    spec = doc.get("spec") or {}
    spec = spec if doc.get("kind") == "Pod" or "volumes" in spec else ((spec.get("template") or {}).get("spec") or {})
    return any((v.get("configMap") or {}).get("name") == AGENT_CONFIGMAP for v in spec.get("volumes") or [])
