"""Load from outside the cluster for `meshconform perf` on the Kubernetes platforms: which load targets a platform
can offer (and why not the others), the NodePort Services that publish one pod of a service with and without its
sidecar on fixed nodePorts (kind publishes them on 127.0.0.1), and the proxies' CPU and memory read from each
node's kubelet through the API server.

Design. The load generator runs on this host. 'ingress' is the gateway's published address. 'mesh' and 'no-mesh'
need the same pod reached the same way, once through its sidecar and once without one: a NodePort Service per
namespace (selector and target port copied from the service's own Service), so both paths carry the same extra
hops (the engine's port mapping, kube-proxy) and differ only by the sidecars. The request enters the meshed pod
through its inbound sidecar as plaintext (Istio's default PERMISSIVE mTLS); a mesh-wide STRICT policy refuses it.
Neither a port-forward (it enters the pod on loopback, which Istio does not redirect to the sidecar, through the
API server's stream) nor an arbitrary node address of someone's cluster is an honest path, so only a lifecycle
that publishes the nodePorts on this host (kind) offers them. 'in-mesh' (a meshed client's outbound sidecar) is
inside the cluster: never offered."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from meshconform.errors import PlatformError
from meshconform.platform.api import ProxyUsage
from meshconform.platform.kube import resource_metrics
from meshconform.platform.kube.contracts import LOAD_NODE_PORTS
from meshconform.platform.kube.names import NamespaceMap
from meshconform.platform.kube.readiness import PROXY, has_proxy

Publisher = Callable[[int], "tuple[str, int] | None"]
SERVICE_NAMES = {"mesh": "meshconform-perf-mesh", "no-mesh": "meshconform-perf-nomesh"}
NODE_PORTS = {"mesh": LOAD_NODE_PORTS.mesh, "no-mesh": LOAD_NODE_PORTS.no_mesh}
METRICS_PATH = "metrics/resource"
USAGE_SOURCE = "kubelet resource metrics (/metrics/resource through the API server's node proxy)"
WORKING_SET = "working set (container_memory_working_set_bytes; not the resident set size)"

IN_MESH = ("the load generator runs on this host, outside the cluster, and a meshed client's sidecar is inside it "
           "(reaching it through the API server would measure the tunnel, not the sidecar)")
NOT_PUBLISHED = ("the {platform} platform cannot publish a pod's port on this host: a NodePort is reachable only "
                 "where the nodes' addresses are, and a port-forward enters the pod on loopback, which Istio does "
                 "not send through the sidecar, so neither measures the sidecar honestly")
NOT_MAPPED = ("the cluster publishes no host port for nodePort {port} (a kind cluster created without meshconform's "
              "port mappings, e.g. a reused one: create a new cluster with meshconform)")


def unavailable(platform: str, publish: Publisher | None, is_up: bool) -> dict[str, str]:
    """Targets this platform cannot offer, with why: 'in-mesh' always; 'mesh' and 'no-mesh' without a publishing
    lifecycle, or (once up) when the cluster did not publish their nodePorts."""
    missing = {"in-mesh": IN_MESH}
    for name in ("mesh", "no-mesh"):
        if publish is None:
            missing[name] = NOT_PUBLISHED.format(platform=platform)
        elif is_up and publish(NODE_PORTS[name]) is None:
            missing[name] = NOT_MAPPED.format(port=NODE_PORTS[name])
    return missing


def nodeport_service(target: str, live: Mapping[str, Any], port: int, logical_namespace: str) -> dict[str, Any]:
    """The NodePort Service publishing `target` ('mesh' or 'no-mesh'): the selector and target port of the live
    Service `live` for `port`, on the fixed nodePort, in the suite's (logical) namespace; the platform maps,
    labels and records it like everything it applies."""
    meta, spec = live.get("metadata") or {}, live.get("spec") or {}
    where = f"Service {meta.get('namespace')}/{meta.get('name')}"
    selector = spec.get("selector") or {}
    if not selector:
        raise PlatformError(f"{where} has no selector: there is no pod to publish for load target {target!r}")
    entry = next((p for p in spec.get("ports") or [] if int(p.get("port", 0)) == port), None)
    if entry is None:
        raise PlatformError(f"{where} has no port {port} for load target {target!r}")
    target_port = entry.get("targetPort", port)
    if not isinstance(target_port, int):
        raise PlatformError(f"{where} port {port}: targetPort {target_port!r} is a name; load targets need a number")
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": SERVICE_NAMES[target], "namespace": logical_namespace,
                         "labels": {"app.kubernetes.io/component": "meshconform-perf-load"}},
            "spec": {"type": "NodePort", "selector": dict(selector),
                     "ports": [{"name": "http", "protocol": "TCP", "port": port, "targetPort": target_port,
                                "nodePort": NODE_PORTS[target]}]}}


class Cluster(Protocol):
    """The calls the usage reader makes (KubeClient's, or a test's fake)."""

    def node_proxy_get(self, node: str, path: str, timeout: float) -> str: ...


class UsageReader:
    """Every istio-proxy container's CPU seconds and working set among `pods()` (the run's pods and the gateway's),
    from one kubelet scrape per node they run on. The pods (and so the nodes) are looked up again every
    `refresh_s`, not at every sample: one GET per node per sample while load runs."""

    def __init__(self, client: Cluster, names: NamespaceMap, pods: Callable[[], list[dict[str, Any]]],
                 gateway_namespace: str, timeout: float, refresh_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.names = names
        self.pods = pods
        self.gateway_namespace = gateway_namespace
        self.timeout = timeout
        self.refresh_s = refresh_s
        self.clock = clock
        self._known: dict[tuple[str, str], str] = {}  # (real namespace, pod) -> node
        self._looked_up = -float("inf")

    def _refresh(self) -> None:
        known = {}
        for pod in self.pods():
            meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
            node = spec.get("nodeName")
            if node and has_proxy(pod):
                known[(str(meta.get("namespace")), str(meta.get("name")))] = str(node)
        self._known = known
        self._looked_up = self.clock()

    def read(self) -> dict[str, ProxyUsage]:
        if self.clock() - self._looked_up >= self.refresh_s:
            self._refresh()
        usage: dict[str, ProxyUsage] = {}
        for node in sorted(set(self._known.values())):
            text = self.client.node_proxy_get(node, METRICS_PATH, self.timeout)
            try:
                found = resource_metrics.containers(text)
            except resource_metrics.MetricsFormatError as exc:
                raise PlatformError(f"GET /api/v1/nodes/{node}/proxy/{METRICS_PATH}: {exc}") from None
            for container in found:
                if container.container != PROXY or (container.namespace, container.pod) not in self._known:
                    continue
                if container.cpu_seconds is None or container.working_set_bytes is None:
                    continue  # between a container's start and the kubelet's first stats of it
                usage[f"{self._logical(container.namespace)}/{container.pod}"] = ProxyUsage(
                    container.cpu_seconds, container.working_set_bytes, WORKING_SET, USAGE_SOURCE,
                    container.cpu_read_at)
        return usage

    def _logical(self, namespace: str) -> str:
        """As the suite names namespaces: the run's mapped back, the gateway's as `istio-system`."""
        return "istio-system" if namespace == self.gateway_namespace else self.names.logical(namespace)
