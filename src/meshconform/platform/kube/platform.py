"""KubePlatform: the Platform API on a real Kubernetes cluster with a real mesh, shared by the `kind` and `cluster`
platforms, which bring the cluster (a ClusterLifecycle) and the mesh (a MeshInstaller); see contracts.py.

The suite's namespaces are mapped to the run's own (names.py); everything created is labelled with the run and
removed by `down`; the run's xdist workers share one platform (shared.py)."""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Collection, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from meshconform.errors import ConfigError, PlatformError
from meshconform.meshapi.loader import Sourced, load_files, load_text
from meshconform.platform.api import (
    INGRESS,
    MESHED_CLIENT,
    AccessLogNotRecorded,
    Endpoint,
    FoundObject,
    LoadTarget,
    ProxyUsage,
    RequestsNotRecorded,
    Workload,
)
from meshconform.platform.kube import (
    access_logging,
    compat,
    diagnostics,
    evidence,
    found,
    gateway_api_crds,
    images,
    load,
    logs,
    portforward,
    readiness,
    testbed,
)
from meshconform.platform.kube import apply as applying
from meshconform.platform.kube.client import KubeClient
from meshconform.platform.kube.contracts import ClusterAccess, ClusterLifecycle, MeshInstaller
from meshconform.platform.kube.names import NamespaceMap, run_prefix
from meshconform.platform.kube.ownership import ObjectRef, check_run_id, cleanup_order, owner_of, run_selector
from meshconform.platform.kube.shared import SharedRun
from meshconform.platform.kube.timeouts import KubeTimeouts
from meshconform.platform.kube.vantages import CONTROL_PORT, ForwardedPodProxy, IngressVantage, PodProxy, PodVantage
from meshconform.platform.kube.workloads import app_container, deployment_of, proxy_image, to_workload
from meshconform.platform.registry import PlatformContext


def base_manifests() -> list[Path]:
    """Bookinfo and the testbed: the same manifests the local platform runs."""
    from importlib import resources
    folder = Path(str(resources.files("meshconform.bookinfo"))) / "manifests"
    return [folder / "namespaces.yaml", folder / "bookinfo.yaml", folder / "testbed.yaml"]


class KubePlatform:
    """See the module docstring. The run's state (run id, access, what was applied, which workers use it) lives in
    the run folder (SharedRun), so the run's other workers and later processes (`meshconform apply`, `down`)
    work on the same platform."""

    def __init__(self, context: PlatformContext, lifecycle: ClusterLifecycle, installer: MeshInstaller, *,
                 name: str = "cluster", manifests: Sequence[Path] | None = None,
                 gateway_namespace: str = "istio-system", gateway_deployment: str = "istio-ingressgateway",
                 gateway_service: str = "istio-ingressgateway", require_pinned_images: bool = False,
                 image_pins: images.Pins | None = None, timeouts: KubeTimeouts | None = None) -> None:
        self.name = name
        self.context = context
        self.lifecycle = lifecycle
        self.installer = installer
        self.manifests = list(manifests) if manifests is not None else base_manifests()
        self.gateway_namespace = gateway_namespace
        self.gateway_deployment = gateway_deployment
        self.gateway_service = gateway_service
        self.require_pinned_images = require_pinned_images
        self.image_pins = image_pins  # --image-digests: applied to every Deployment before it is checked and applied
        self.timeouts = timeouts or KubeTimeouts()
        self._client: KubeClient | None = None
        self._usage: load.UsageReader | None = None
        self._forwarders: dict[str, portforward.Forwarder] = {}  # this process's port-forwards to the gateway
        self._diagnosed = 0  # diagnostics bundles this process wrote (their folders never collide)
        self._logs: logs.LogCache | None = None  # containers' logs, read incrementally
        self.shared = SharedRun(context.session_dir)
        self._state: dict[str, Any] = self.shared.read()

    # ------------------------------------------------------------------ state

    @property
    def folder(self) -> Path:
        return self.context.folder

    def _update(self, change: Any) -> None:
        """Change the run's shared record under its lock (other workers may be recording too)."""
        self._state = self.shared.update(change)

    @property
    def run_id(self) -> str:
        return str(self._state["run_id"])

    @property
    def names(self) -> NamespaceMap:
        return NamespaceMap(self._state["prefix"], frozenset({"istio-system", self.gateway_namespace}))

    @property
    def logical_namespaces(self) -> list[str]:
        return list(self._state.get("logical_namespaces", []))

    def _access(self) -> ClusterAccess:
        access = self._state["access"]
        return ClusterAccess(Path(access["kubeconfig"]), access.get("context"))

    @property
    def client(self) -> KubeClient:
        if self._client is None:
            if not self._state:
                raise PlatformError(f"no {self.name} platform in {self.folder}: run 'meshconform up' first")
            self._client = KubeClient(self._access(), self.folder / "discovery-cache.json", self.timeouts)
        return self._client

    def _record(self, refs: Collection[ObjectRef]) -> None:
        def add(state: dict[str, Any]) -> None:
            known = {ObjectRef.from_json(r) for r in state.get("applied", [])} | set(refs)
            state["applied"] = [r.to_json() for r in sorted(known)]
        self._update(add)

    def _forget(self, refs: Collection[ObjectRef]) -> None:
        gone = set(refs)

        def drop(state: dict[str, Any]) -> None:
            state["applied"] = [r for r in state.get("applied", []) if ObjectRef.from_json(r) not in gone]
        self._update(drop)

    # ------------------------------------------------------------------ lifecycle

    @property
    def endpoint(self) -> Endpoint:
        host, http, https = self._ingress_here()
        return Endpoint(f"http://{host}:{http}", f"https://{host}:{https}" if https else None,
                        {"namespaces": {n: self.names.real(n) for n in self.logical_namespaces},
                         "ingress_via": self._state.get("ingress_via", "address")})

    def _ingress_here(self) -> tuple[str, int, int | None]:
        """Where this process reaches the gateway: its address (kind's published ports, a LoadBalancer's), or a
        port-forward of this process's own to a ready gateway pod (started on first use, gone with the process)."""
        address = self._state.get("ingress")
        if address:
            host, http, https = address
            return str(host), int(http), https
        forward = self._state.get("ingress_forward")
        if not forward:
            raise PlatformError(f"the {self.name} platform in {self.folder} is not up")
        for name in ("http", "https"):
            if forward.get(name) and name not in self._forwarders:
                self._forwarders[name] = portforward.Forwarder(
                    self.client.port_forward, self.gateway_namespace, self._gateway_pod, int(forward[name]),
                    f"ingress {name}")
        https_forward = self._forwarders.get("https")
        return "127.0.0.1", self._forwarders["http"].local_port, https_forward.local_port if https_forward else None

    def _gateway_pod(self) -> str:
        ready = [p for p in self._pods_of("istio-system", "istio-ingressgateway")
                 if readiness.pod_problem(p, None) is None]
        if not ready:
            raise PlatformError(f"no ready pod of the ingress gateway {self.gateway_namespace}/"
                                f"{self.gateway_deployment} to port-forward to")
        return str(ready[0]["metadata"]["name"])

    def is_up(self) -> bool:
        self._state = self.shared.read()
        if not self._state.get("up"):
            return False
        try:
            return self.client.get(ObjectRef("v1", "Namespace", "", self.names.real("default"))) is not None
        except PlatformError:
            return False

    def up(self) -> Endpoint:
        """Every worker takes its share of the cluster and the mesh (the lifecycle and installer share them among
        the run's workers themselves); the first worker then applies the workloads under the run's lock while the
        others wait, and the others join. A failed `up` is recorded: the workers after it fail at once with its
        reason."""
        worker = self.context.worker
        failed = self.shared.read().get("failed")
        if failed:
            raise PlatformError(f"the {self.name} platform of this run failed to come up: {failed}")
        try:
            access = self.lifecycle.ensure()
            with self.shared.locked():
                self._state = self.shared.read()
                if self._state.get("failed"):
                    raise PlatformError(f"the {self.name} platform of this run failed to come up: "
                                        f"{self._state['failed']}")
                if not self._state.get("up"):
                    self._start_run(access)
                self.installer.install(access)  # once per run: the installer's own sharing
                with self.shared.locked():
                    if not self.shared.read().get("up"):
                        self._bring_up(worker)
                    else:
                        self._update(lambda state: state.setdefault("users", []).append(worker))
        except BaseException as exc:
            reason = f"{type(exc).__name__}: {exc}"
            if not self.shared.read().get("up"):
                self.diagnostics(f"up failed: {reason}")
                self._update(lambda s: s.update(failed=s.get("failed") or reason))
            try:
                self.down()
            except PlatformError:
                pass  # the first error is the one to report; down's own is in the diagnostics
            raise
        return self.endpoint

    def _start_run(self, access: ClusterAccess) -> None:
        """The run's record, by the first worker: run id, namespace prefix, where the cluster is, its version."""
        run_id = _run_id(self.context.session_dir.name)
        self._update(lambda state: (state.clear(), state.update(
            {"run_id": run_id, "prefix": run_prefix(run_id), "applied": [], "up": False, "users": [],
             "started": time.time(), "access": {"kubeconfig": str(access.kubeconfig), "context": access.context}})))
        version = self.client.server_version()
        note = compat.check_supported(version.get("gitVersion", ""), self.installer.describe().get("istio_version"))
        self._update(lambda s: s.update(kubernetes=version, support_note=note))

    def _bring_up(self, worker: str) -> None:
        """Bookinfo and the testbed in the run's namespaces, ready; the gateway's address. A mesh whose version
        was only known once installed (`none`, a vendor hook) has its Kubernetes support checked now."""
        if self._state.get("support_note") and "mesh version unknown" in str(self._state["support_note"]):
            note = compat.check_supported(self._state["kubernetes"].get("gitVersion", ""),
                                          self.installer.describe().get("istio_version"))
            self._update(lambda s: s.update(support_note=note))
        items = load_files(self.manifests)
        logical = sorted({i.resource.metadata.name for i in items if i.resource.kind == "Namespace"}
                         | {i.resource.metadata.namespace for i in items if i.resource.kind != "Namespace"}
                         - self.names.shared)
        self._update(lambda s: s.update(logical_namespaces=logical, users=[worker]))
        crds = gateway_api_crds.ensure(
            self.client, bool(self.installer.describe().get("installed_by_meshconform")),
            self.timeouts.crds_established, (self.timeouts.poll_first, self.timeouts.poll_max))
        self._update(lambda s: s.update(gateway_api=crds))
        self._apply(items, wait=True, up=True)
        via, reached = self._ingress_address()
        agent_via = self._agent_reach()
        # decided once, before any check: whether the checks that read the proxies' access log apply on this mesh
        access_log = access_logging.decide(self.client, self.installer.describe().get("revision")).to_json()
        self._update(lambda s: s.update({"ingress_via": via, "agent_via": agent_via, "access_log": access_log,
                                         "up": True,
                                         ("ingress" if via != "port-forward" else "ingress_forward"): reached}))

    def down(self) -> None:
        """This worker leaves; the last one out deletes what the run created (namespaces last, each re-checked as
        ours first). Every worker then returns its share of the mesh and the cluster (the installer and lifecycle
        uninstall and delete when the last share goes, unless kept). Every step runs even if one fails."""
        worker = self.context.worker
        last = False

        def leave(state: dict[str, Any]) -> None:
            nonlocal last
            state["users"] = [u for u in state.get("users", []) if u != worker]
            last = not state["users"]
            if last:
                state["up"] = False
        failures: list[str] = []
        if self.shared.path.exists():
            self._update(leave)
            if last and self._state.get("access"):
                try:
                    self._delete_recorded()
                except Exception as exc:  # noqa: BLE001 (keep going: the mesh and cluster still go)
                    failures.append(f"deleting the run's objects: {exc}")
        if self._state.get("access"):
            try:
                self.installer.uninstall(self._access())
            except Exception as exc:  # noqa: BLE001
                failures.append(f"uninstalling the mesh: {exc}")
        try:
            self.lifecycle.teardown()
        except Exception as exc:  # noqa: BLE001
            failures.append(f"tearing the cluster down: {exc}")
        if last:
            self._update(lambda s: s.update(stopped=time.time()))
        self.detach()
        if failures:
            raise PlatformError(f"{self.name} platform down: " + "; ".join(failures))

    def _delete_recorded(self) -> None:
        refs = cleanup_order(ObjectRef.from_json(r) for r in self._state.get("applied", []))
        left_alone = []
        for ref in refs:
            live = self.client.get(ref)
            if live is None:
                continue
            if owner_of(live) != self.run_id:
                left_alone.append(str(ref))  # never ours to delete (relabelled or replaced by someone)
                continue
            self.client.delete(ref)
        for ref in refs:
            timeout = self.timeouts.namespace_gone if ref.kind == "Namespace" else self.timeouts.object_gone
            applying.wait_gone(self.client, ref, timeout, (self.timeouts.poll_first, self.timeouts.poll_max))
        self._forget(refs)
        if left_alone:
            raise PlatformError(f"left alone, not created by this run: {', '.join(left_alone)}")

    def detach(self) -> None:
        self._logs = None
        for forwarder in self._forwarders.values():
            forwarder.close()
        self._forwarders.clear()
        if self._client is not None:
            self._client.close()
            self._client = None
        self._usage = None

    # ------------------------------------------------------------------ config

    def apply(self, resources: Sequence[Sourced]) -> None:
        self._require_up()
        self._apply(resources, wait=any(i.resource.kind == "Deployment" for i in resources), up=False)

    def _apply(self, items: Sequence[Sourced], wait: bool, up: bool) -> None:
        pins = self.image_pins
        if pins is not None:
            items = [replace(item, document=pins.apply(item.document)) for item in items]
        uses = images.uses_in((item.source, item.document) for item in items)
        images.check(uses, self.require_pinned_images)  # before anything is applied
        by_tag = {use.image for use in uses if not use.pinned}
        if by_tag:
            self._update(lambda s: s.update(images_by_tag=sorted(set(s.get("images_by_tag", [])) | by_tag)))
        prepared = applying.prepare(items, self.names, self.run_id, self.logical_namespaces)
        prepared = self._with_agent(prepared)
        self._record([p.ref for p in prepared])  # recorded before applying: an interrupted apply is still cleaned up
        applying.apply_all(self.client, prepared, self.run_id)
        if wait:
            deadline = time.monotonic() + (self.timeouts.workloads_ready if up else self.timeouts.rollout_after_apply)
            self._wait_workloads({p.ref.namespace for p in prepared if p.ref.kind == "Deployment"}, deadline)
        self._wait_synced({p.ref.namespace or p.ref.name for p in prepared})

    def _with_agent(self, prepared: list[applying.Prepared]) -> list[applying.Prepared]:
        """The agent ConfigMap in every namespace where a Deployment mounts it (applied before the Deployments)."""
        needed = sorted({p.ref.namespace for p in prepared if p.ref.kind == "Deployment" and
                         testbed.uses_agent(p.document)})
        from meshconform.platform.kube.ownership import labelled
        extra = [applying.Prepared(ObjectRef("v1", "ConfigMap", ns, testbed.AGENT_CONFIGMAP),
                                   labelled(testbed.agent_configmap(ns), self.run_id), "meshconform agent",
                                   f"ConfigMap {self.names.logical(ns)}/{testbed.AGENT_CONFIGMAP}") for ns in needed]
        namespaces = [p for p in prepared if p.ref.kind == "Namespace"]
        return namespaces + extra + [p for p in prepared if p.ref.kind != "Namespace"]

    def delete(self, resources: Sequence[Sourced], ignore_missing: bool = False) -> list[Sourced]:
        self._require_up()
        prepared = applying.prepare(resources, self.names, self.run_id, self.logical_namespaces)
        deleted = applying.delete_all(
            self.client, prepared, self.run_id, ignore_missing,
            lambda ref: self.timeouts.namespace_gone if ref.kind == "Namespace" else self.timeouts.object_gone,
            (self.timeouts.poll_first, self.timeouts.poll_max))
        self._forget(deleted)
        self._wait_synced({p.ref.namespace for p in prepared})
        gone = {p.logical for p in prepared if p.ref in deleted}
        return [item for item in resources if item.resource.ref not in gone]

    def _require_up(self) -> None:
        if not self._state.get("up") and not self._state.get("access"):
            raise PlatformError(f"no {self.name} platform up in {self.folder}: run 'meshconform up' first")

    def _wait_workloads(self, namespaces: Collection[str], deadline: float) -> None:
        selector = run_selector(self.run_id)
        for namespace in sorted(namespaces):
            readiness.wait_ready(self.client, readiness.Wanted(
                "apps/v1", "Deployment", namespace, selector, readiness.deployment_problem), deadline,
                f"Deployments of {self.names.logical(namespace)}")
            ns_labels = ((self.client.get(ObjectRef("v1", "Namespace", "", namespace)) or {}).get("metadata")
                         or {}).get("labels") or {}

            def pod_problem(pod: Any, ns_labels: dict[str, str] = ns_labels) -> str | None:
                labels = (pod.get("metadata") or {}).get("labels") or {}
                return readiness.pod_problem(pod, readiness.injection_expected(ns_labels, labels))
            readiness.wait_ready(self.client, readiness.Wanted("v1", "Pod", namespace, selector, pod_problem,
                                                               fatal=readiness.pod_fatal),
                                 deadline, f"pods of {self.names.logical(namespace)}")

    def _wait_synced(self, namespaces: Collection[str]) -> None:
        """`istioctl proxy-status -o json` (when the installer has istioctl): no proxy of these namespaces left
        STALE or ERROR. The suite's marker probes then confirm the new behaviour itself."""
        deadline = time.monotonic() + self.timeouts.proxies_synced
        pause = self.timeouts.poll_first
        while True:
            output = self.installer.proxy_status(self._access())
            if output is None:
                return
            try:
                left = evidence.unsynced(evidence.proxy_sync(output), namespaces)
            except ValueError:
                return  # not the JSON form: nothing to judge by; the marker probes decide
            errors = {node: s for node, s in left.items() if "ERROR" in s.values()}
            if errors:
                raise PlatformError(f"proxies rejected the configuration (xDS NACK): {errors}")
            if not left:
                return
            if time.monotonic() >= deadline:
                raise PlatformError(f"proxies not synced {self.timeouts.proxies_synced:.0f}s after apply: {left}")
            time.sleep(pause)
            pause = min(pause * 2, self.timeouts.poll_max)

    def _agent_reach(self) -> str:
        """How every client batch reaches the testbed agent, decided once per run: the API server's pod proxy (one
        POST per batch), or, where the control plane cannot reach pod IPs (GKE private clusters, strict EKS security
        groups: pods/proxy answers 503 or times out), a port-forward through the kubelet. An empty batch asks."""
        namespace, _, deployment = MESHED_CLIENT.rpartition("/")
        ready = [p for p in self._pods_of(namespace, deployment) if readiness.pod_problem(p, None) is None]
        if not ready:
            raise PlatformError(f"no ready pod of {MESHED_CLIENT} to reach the testbed agent through")
        pod, real = str(ready[0]["metadata"]["name"]), self.names.real(namespace)
        empty = {"requests": [], "concurrency": 1, "reuse_connections": False}
        try:
            self.client.pod_proxy_post(real, pod, CONTROL_PORT, "batch", empty, self.timeouts.agent_probe)
            return "pods/proxy"
        except PlatformError as through_proxy:
            try:
                portforward.forwarded_post(self.client.port_forward, real, pod, CONTROL_PORT, "batch", empty,
                                           self.timeouts.agent_probe)
            except PlatformError as through_forward:
                raise PlatformError(f"the testbed agent in {real}/{pod} answers neither through the API server's pod "
                                    f"proxy ({through_proxy}) nor through a port-forward ({through_forward}): the "
                                    "kubeconfig's user needs 'create' on pods/proxy or pods/portforward") from None
            return "port-forward"

    def _ingress_address(self) -> tuple[str, Any]:
        """How the suite reaches the gateway, decided once per run: ("published", [host, http, https]) where the
        lifecycle publishes its nodePorts (kind: confirmed against the gateway Service), ("load-balancer", [...]) when
        the Service gets an external address, else ("port-forward", {"http": targetPort, "https": targetPort}):
        through the API server to a gateway pod, which needs no LoadBalancer and no reachable node."""
        given = self.lifecycle.ingress_address()
        expected = getattr(self.lifecycle, "ingress_node_ports", None)
        if given is not None and expected is None:
            return "published", list(given)
        service = self.client.get(ObjectRef("v1", "Service", self.gateway_namespace, self.gateway_service))
        if service is None:
            raise PlatformError(f"no Service {self.gateway_namespace}/{self.gateway_service}: is the ingress "
                                "gateway installed?")
        if given is not None and expected is not None:
            confirm_node_ports(service, expected)
            return "published", list(given)
        deadline = time.monotonic() + self.timeouts.ingress_address
        pause = self.timeouts.poll_first
        while (service.get("spec") or {}).get("type") == "LoadBalancer":
            if (service.get("status") or {}).get("loadBalancer", {}).get("ingress"):
                return "load-balancer", list(ingress_from_service(service))
            if time.monotonic() >= deadline:
                break
            time.sleep(pause)
            pause = min(pause * 2, self.timeouts.poll_max)
            service = self.client.get(ObjectRef("v1", "Service", self.gateway_namespace, self.gateway_service)) \
                or service
        return "port-forward", target_ports(service)

    # ------------------------------------------------------------------ observation

    def _pods_of(self, namespace: str, deployment: str) -> list[dict[str, Any]]:
        real = self.names.real(namespace)
        if (namespace, deployment) == ("istio-system", "istio-ingressgateway"):
            real, deployment = self.gateway_namespace, self.gateway_deployment  # the suite's name for the gateway
        found = self.client.get(ObjectRef("apps/v1", "Deployment", real, deployment))
        if found is None:
            return []
        match = ((found.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        selector = ",".join(f"{k}={v}" for k, v in sorted(match.items()))
        pods = self.client.list("v1", "Pod", real, selector).items
        return [p for p in pods if deployment_of(p) == deployment]

    def workloads(self) -> list[Workload]:
        pods = []
        for namespace in self.logical_namespaces:
            pods.extend(self.client.list("v1", "Pod", self.names.real(namespace), run_selector(self.run_id)).items)
        return [to_workload(p, self.names) for p in pods]

    def vantage(self, name: str) -> IngressVantage | PodVantage:
        self._require_up()
        if name == INGRESS:
            host, http, https = self._ingress_here()
            return IngressVantage(name, host, http, https, self.names)
        namespace, _, deployment = name.rpartition("/")
        ready = [p for p in self._pods_of(namespace or "default", deployment)
                 if readiness.pod_problem(p, None) is None]
        if not ready:
            raise PlatformError(f"no vantage {name!r}: no ready pod of Deployment {deployment} in "
                                f"{self.names.real(namespace or 'default')}")
        pod = ready[0]["metadata"]
        api: PodProxy = self.client if self._state.get("agent_via", "pods/proxy") == "pods/proxy" \
            else ForwardedPodProxy(self.client.port_forward)
        return PodVantage(name, api, pod["namespace"], pod["name"], self.names, self.logical_namespaces,
                          self.timeouts.batch_base)

    def request_log(self, namespace: str, deployment: str) -> list[dict[str, Any]]:
        records = []
        pods = self._pods_of(namespace, deployment)
        if pods and not any(testbed.uses_agent(p) for p in pods):
            image = next((c.get("image") for c in (pods[0].get("spec") or {}).get("containers") or []
                          if c.get("name") != readiness.PROXY), "?")
            raise RequestsNotRecorded(
                f"the app of {namespace}/{deployment} ({image}) keeps no request records meshconform can read: only "
                "the testbed's agent writes one per request; Istio's Bookinfo images log plain text")
        for pod in pods:
            meta = pod["metadata"]
            text = self._log_cache().text(meta["namespace"], meta["name"], app_container(pod))
            records.extend(evidence.request_records(self.names.unmap_text(text)))
        return records

    def _log_cache(self) -> logs.LogCache:
        if self._logs is None:
            self._logs = logs.LogCache(self.client)
        return self._logs

    def access_log(self, namespace: str, deployment: str) -> list[dict[str, Any]]:
        fact = self._state.get("access_log")
        if fact and not fact.get("readable"):  # decided once in _bring_up: never a wait for lines that cannot come
            raise AccessLogNotRecorded(f"{namespace}/{deployment}: {fact.get('reason')}")
        gateway = (namespace, deployment) == ("istio-system", "istio-ingressgateway")
        records = []
        for pod in self._pods_of(namespace, deployment):
            if not (gateway or readiness.has_proxy(pod)):
                continue
            meta = pod["metadata"]
            log = self._log_cache().text(meta["namespace"], meta["name"], readiness.PROXY)
            records.extend(evidence.access_records(self.names.unmap_text(log), gateway))
        return records

    def evidence(self, namespace: str, deployment: str, hosts: Collection[str] = ()) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for pod in self._pods_of(namespace, deployment):
            if not readiness.has_proxy(pod):
                continue
            meta = pod["metadata"]
            dump = self.client.exec(meta["namespace"], meta["name"], readiness.PROXY, evidence.CONFIG_DUMP_COMMAND)
            try:
                routes = evidence.route_excerpt(json.loads(dump), hosts)
            except ValueError:
                routes = [{"error": f"config_dump is not JSON: {dump[:200]}"}]
            log = self.client.pod_log(meta["namespace"], meta["name"], readiness.PROXY, tail_lines=300)
            result[meta["name"]] = {"routes": json.loads(self.names.unmap_text(json.dumps(routes))),
                                    "access_log_tail": "\n".join(evidence.access_lines(self.names.unmap_text(log)))}
        return result

    def found_config(self) -> list[FoundObject]:
        """The mesh as found (api.SupportsFoundConfig; what is listed and why: found.py)."""
        self._require_up()
        gateway = self.client.get(ObjectRef("apps/v1", "Deployment", self.gateway_namespace, self.gateway_deployment))
        labels = ((((gateway or {}).get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels") \
            or ((((gateway or {}).get("spec") or {}).get("selector") or {}).get("matchLabels") or {})
        return found.found_config(self.client, self.names, self.run_id, labels, self._run_namespaces())

    # ------------------------------------------------------------------ load (meshconform perf; see load.py)

    def _publisher(self) -> load.Publisher | None:
        publish: load.Publisher | None = getattr(self.lifecycle, "published_node_port", None)
        return publish

    def unavailable_load_targets(self) -> dict[str, str]:
        return load.unavailable(self.name, self._publisher(), bool(self._state.get("up")))

    def load_targets(self, service: str = "productpage", port: int = 9080,
                     plain_namespace: str | None = None) -> dict[str, LoadTarget]:
        """'ingress' always; on a lifecycle that publishes nodePorts on this host (kind), 'mesh' (a pod of `service`
        in `default`, through its sidecar) and, with `plain_namespace`, 'no-mesh' (its twin there, without one),
        each through a NodePort Service applied here (labelled with the run, deleted with it)."""
        self._require_up()
        found = {INGRESS: LoadTarget(INGRESS, self.endpoint.http, None, True)}
        missing = self.unavailable_load_targets()
        publish = self._publisher()
        wanted = [("mesh", "default")] + ([("no-mesh", plain_namespace)] if plain_namespace else [])
        wanted = [(name, namespace) for name, namespace in wanted if name not in missing]
        if publish is None or not wanted:
            return found
        documents = []
        for name, namespace in wanted:
            real = self.names.real(namespace)
            live = self.client.get(ObjectRef("v1", "Service", real, service))
            if live is None:
                raise PlatformError(f"load target {name!r}: no Service {service} in namespace {namespace} ({real})")
            documents.append(load.nodeport_service(name, live, port, namespace))
            pods = self.client.list("v1", "Pod", real, ",".join(
                f"{k}={v}" for k, v in sorted(documents[-1]["spec"]["selector"].items()))).items
            ready = [p for p in pods if readiness.pod_problem(p, None) is None]
            if not ready:
                raise PlatformError(f"load target {name!r}: no ready pod of Service {service} in {namespace} ({real})")
            meshed = readiness.has_proxy(ready[0])
            if meshed != (name == "mesh"):
                raise PlatformError(f"load target {name!r}: the pods of Service {service} in {namespace} ({real}) "
                                    + ("have no sidecar" if name == "mesh" else "have a sidecar (is injection "
                                       "enabled in that namespace, or mesh-wide?)"))
        self.apply(load_text(yaml.safe_dump_all(documents), "meshconform perf (load NodePort Services)"))
        for name, _ in wanted:
            address = publish(load.NODE_PORTS[name])
            if address is None:  # unavailable_load_targets said otherwise a moment ago
                raise PlatformError(f"load target {name!r}: nodePort {load.NODE_PORTS[name]} is not published")
            found[name] = LoadTarget(name, f"http://{address[0]}:{address[1]}", None, name == "mesh")
        return found

    def proxy_usage(self) -> dict[str, ProxyUsage]:
        """The istio-proxy containers of the run's pods and the gateway's: CPU seconds and working set, from the
        kubelet of each node they run on (needs 'get' on nodes/proxy), by '<logical namespace>/<pod>'."""
        self._require_up()
        if self._usage is None:
            self._usage = load.UsageReader(self.client, self.names, self._load_pods, self.gateway_namespace,
                                           self.timeouts.node_metrics, self.timeouts.usage_pods_refresh)
        return self._usage.read()

    def _load_pods(self) -> list[dict[str, Any]]:
        pods = []
        for namespace in self._run_namespaces():
            pods.extend(self.client.list("v1", "Pod", namespace, run_selector(self.run_id)).items)
        return pods + self._pods_of("istio-system", "istio-ingressgateway")

    def _run_namespaces(self) -> list[str]:
        """The run's namespaces: the suite's, and those applied later (perf's no-mesh namespace)."""
        real = {self.names.real(n) for n in self.logical_namespaces}
        real |= {r["name"] for r in self._state.get("applied", []) if r["kind"] == "Namespace"
                 and self.names.is_ours(r["name"])}
        return sorted(real)

    def describe(self) -> dict[str, Any]:
        data_plane: set[str] = set()
        control_plane: list[str] = []
        pods: list[dict[str, Any]] = []
        try:
            for namespace in self.logical_namespaces:
                pods += self.client.list("v1", "Pod", self.names.real(namespace), run_selector(self.run_id)).items
            for pod in pods:
                image = proxy_image(pod)
                if image:
                    data_plane.add(image)
            istiod = self.client.list("v1", "Pod", "istio-system", "app=istiod").items
            for dep in self.client.list("apps/v1", "Deployment", "istio-system", "app=istiod").items:
                control_plane.extend(c.get("image", "") for c in dep["spec"]["template"]["spec"]["containers"])
            ran = images.ran([*pods, *istiod, *self._pods_of("istio-system", "istio-ingressgateway")])
        except PlatformError as exc:
            control_plane.append(f"unknown ({exc})")
            ran = {}
        return {"platform": self.name,
                "description": f"real Istio on a Kubernetes cluster ({self.name} platform)",
                "kubernetes": self._state.get("kubernetes", {}),
                "support_note": self._state.get("support_note"),
                "gateway_api": self._state.get("gateway_api"),
                "mesh": {**self.installer.describe(), "control_plane_images": sorted(control_plane),
                         "data_plane_images": sorted(data_plane)},
                "cluster": self.lifecycle.describe(),
                # decided once per run: the ingress (published nodePorts, a LoadBalancer's address, a port-forward)
                # and the testbed agent (the API server's pod proxy, or a port-forward)
                "reached_via": {"ingress": self._state.get("ingress_via"), "agent": self._state.get("agent_via")},
                # decided once per run (access_logging.py): whether the proxies' access log can be read, and why not
                "access_log": self._state.get("access_log"),
                "run": {"id": self._state.get("run_id"), "namespaces": {n: self.names.real(n) for n in
                                                                         self.logical_namespaces}},
                # Each image as the manifests name it -> the digest the pods ran (status.containerStatuses[].imageID);
                # the ones named by tag are listed too: what a tag pointed to is the digest beside it.
                "images": {"ran": ran, "named_by_tag": self._state.get("images_by_tag", []),
                           "require_pinned_images": self.require_pinned_images,
                           # --image-digests: the pins applied, and each the pods did not run as pinned
                           **({"pinned_by": self.image_pins.source, "pins": self.image_pins.digests,
                               "pin_mismatches": self.image_pins.mismatches(ran) if ran else
                               ["not compared: the pods' images could not be read"]}
                              if self.image_pins is not None else {})},
                "folder": str(self.folder)}

    def diagnostics(self, reason: str = "") -> list[Path]:
        """What is worth reading after a failure, under <folder>/diagnostics/<time>-<worker>-<what>/; never raises.
        The run's first failure gets the full bundle (every object, log and proxy config of the run's namespaces,
        the mesh's and the cluster's own diagnostics: minutes and megabytes); each later one a light bundle (the
        pods and events of the run's namespaces and the proxies' sync state, seconds), pointing at the full one.
        A failed test's own evidence already holds the config and access log of the proxies it involved."""
        self._diagnosed += 1
        slug = re.sub(r"[^A-Za-z0-9.-]+", "-", reason.removeprefix("conformance test ").removesuffix(" failed"))
        folder = self.folder / "diagnostics" / (f"{time.strftime('%Y%m%d-%H%M%S')}-{self.context.worker}-"
                                                f"{self._diagnosed}-{slug.strip('-')[:60] or 'failure'}")
        folder.mkdir(parents=True, exist_ok=True)
        written = [folder / "reason.txt"]
        written[0].write_text(reason + "\n")
        full = None

        def claim(state: dict[str, Any]) -> None:
            nonlocal full
            full = state.get("full_diagnostics")
            if full is None:
                state["full_diagnostics"] = str(folder)
        try:
            self._update(claim)
        except Exception:  # noqa: BLE001 (no shared record yet: a failed bring-up gets the full bundle)
            full = None
        if full is not None:
            return written + self._light_diagnostics(folder, Path(full))
        if self._state.get("access"):
            try:
                namespaces = [self.names.real(n) for n in self.logical_namespaces] + [self.gateway_namespace]
                written += diagnostics.collect(self.client, namespaces, folder / "cluster")
            except Exception as exc:  # noqa: BLE001
                (folder / "cluster-error.txt").write_text(f"{type(exc).__name__}: {exc}\n")
            try:
                written += self.installer.diagnostics(self._access(), folder / "mesh")
            except Exception as exc:  # noqa: BLE001
                (folder / "mesh-error.txt").write_text(f"{type(exc).__name__}: {exc}\n")
        try:
            written += self.lifecycle.diagnostics(folder / "lifecycle")
        except Exception as exc:  # noqa: BLE001
            (folder / "lifecycle-error.txt").write_text(f"{type(exc).__name__}: {exc}\n")
        return written

    def _light_diagnostics(self, folder: Path, full: Path) -> list[Path]:
        written = [folder / "full-bundle.txt"]
        written[0].write_text(f"the run's full diagnostics (its first failure): {full}\n")
        try:
            namespaces = [self.names.real(n) for n in self.logical_namespaces]
            written += diagnostics.collect(self.client, namespaces, folder / "cluster", proxies=False,
                                           kinds=diagnostics.LIGHT_KINDS, logs=False)
            status = self.installer.proxy_status(self._access())
            if status is not None:
                written.append(folder / "istioctl-proxy-status.json")
                written[-1].write_text(status)
        except Exception as exc:  # noqa: BLE001
            (folder / "cluster-error.txt").write_text(f"{type(exc).__name__}: {exc}\n")
        return written


def _run_id(session_name: str) -> str:
    """The run label value: the run folder's name (e.g. 20261122-061017-run-3fa2c1) when it is a valid label value."""
    candidate = re.sub(r"[^A-Za-z0-9_.-]", "-", session_name)[-63:].strip("-_.")
    try:
        return check_run_id(candidate)
    except ValueError:
        return f"run-{secrets.token_hex(4)}"


def _named_ports(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {str(p.get("name")): p for p in (service.get("spec") or {}).get("ports") or []}


def confirm_node_ports(service: dict[str, Any], expected: tuple[int, int]) -> None:
    """The gateway Service's HTTP and HTTPS nodePorts are the ones the node publishes (kind's port mappings), read
    back after the install: otherwise the published ports lead nowhere."""
    ports = _named_ports(service)
    found = tuple((ports.get(name) or {}).get("nodePort") for name in ("http2", "https"))
    if found != tuple(expected):
        meta, kind = service.get("metadata") or {}, (service.get("spec") or {}).get("type")
        raise PlatformError(f"Service {meta.get('namespace')}/{meta.get('name')} ({kind})"
                            f" has nodePorts {found[0]} (http2) and {found[1]} (https), but the kind node publishes "
                            f"{expected[0]} and {expected[1]}: the mesh installer did not set them (a vendor hook gets "
                            "them as MESHCONFORM_INGRESS_HTTP_NODEPORT / _HTTPS_NODEPORT)")


def target_ports(service: dict[str, Any]) -> dict[str, int | None]:
    """The gateway pod's own ports behind the Service's http2/http and https ports (what a port-forward reaches)."""
    ports = _named_ports(service)
    http = ports.get("http2") or ports.get("http")
    if http is None:
        meta = service.get("metadata") or {}
        raise PlatformError(f"Service {meta.get('namespace')}/{meta.get('name')} has no port named http2 or http")

    def target(port: dict[str, Any] | None) -> int | None:
        if port is None:
            return None
        value = port.get("targetPort", port.get("port"))
        if not isinstance(value, int):
            raise PlatformError(f"the gateway Service's port {port.get('name')} targets the named port {value!r}: "
                                "meshconform port-forwards to numbered ports only")
        return value
    return {"http": target(http), "https": target(ports.get("https"))}


def ingress_from_service(service: dict[str, Any]) -> tuple[str, int, int | None]:
    """The gateway's reachable address from its Service: the LoadBalancer ingress IP/hostname with the ports named
    http2/https (Istio's gateway chart names them so), or a clear error while it is pending."""
    meta = service.get("metadata") or {}
    spec, status = service.get("spec") or {}, service.get("status") or {}
    ports = {p.get("name"): int(p["port"]) for p in spec.get("ports") or []}
    http = ports.get("http2") or ports.get("http")
    https = ports.get("https")
    if http is None:
        raise PlatformError(f"Service {meta.get('namespace')}/{meta.get('name')} has no port named http2 or http")
    ingress = (status.get("loadBalancer") or {}).get("ingress") or []
    if not ingress:
        raise PlatformError(f"Service {meta.get('namespace')}/{meta.get('name')} ({spec.get('type')}) has no "
                            "external address yet (LoadBalancer pending: on kind, map the NodePorts with "
                            "extraPortMappings or run cloud-provider-kind)")
    host = ingress[0].get("ip") or ingress[0].get("hostname")
    return str(host), http, https


__all__ = ["ConfigError", "KubePlatform", "ingress_from_service"]
