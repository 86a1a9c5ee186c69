"""How the suite reaches a cluster it did not make (the `cluster` platform): the ingress gateway through its
LoadBalancer address when the Service gets one, else through a port-forward of this process's own (the official
client's, through the API server: no kubectl, no LoadBalancer, no reachable node); on kind, the published nodePorts,
confirmed against the gateway Service after the install. And the testbed agent, reached through the API server's
pod proxy, or, where the control plane cannot reach pod IPs, through a port-forward: decided once per run.

The fake API server speaks the port-forward websocket (v4.channel.k8s.io, conftest.py); behind it a loopback
server plays the gateway's and the client app's ports."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from installer_standin import InstallsNothing

from meshconform.errors import PlatformError
from meshconform.platform.kube.contracts import ClusterAccess, ClusterLifecycle, MeshInstaller
from meshconform.platform.kube.platform import KubePlatform
from meshconform.platform.kube.timeouts import KubeTimeouts
from meshconform.platform.local.platform import base_manifests
from meshconform.platform.registry import PlatformContext
from meshconform.traffic.model import Request

GATEWAY_POD = "istio-ingressgateway-5d8f9c7b6-q2w3e"


class UsersCluster:
    """The `cluster` lifecycle's contract: nothing published, the gateway found from its Service."""

    def __init__(self, kubeconfig: Path) -> None:
        self.kubeconfig = kubeconfig

    def ensure(self) -> ClusterAccess:
        return ClusterAccess(self.kubeconfig, "fake")

    def teardown(self) -> None:
        pass

    def describe(self) -> dict[str, Any]:
        return {"lifecycle": "cluster"}

    def diagnostics(self, folder: Path) -> list[Path]:
        return []

    def ingress_address(self) -> tuple[str, int, int] | None:
        return None


class KindNode(UsersCluster):
    ingress_node_ports = (30080, 30443)

    def ingress_address(self) -> tuple[str, int, int] | None:
        return ("127.0.0.1", 41235, 41236)


@pytest.fixture
def pod_port() -> Iterator[tuple[str, int, list[str]]]:
    """A loopback server playing a pod's port: answers GET with who it is, POST /batch as the client app."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _reply(self, body: bytes, kind: str = "text/plain") -> None:
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802
            seen.append(f"GET {self.path}")
            self._reply(b"the gateway pod" if self.path != "/health" else b'{"status": "ok"}')

        def do_POST(self) -> None:  # noqa: N802
            seen.append(f"POST {self.path}")
            batch = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            self._reply(json.dumps({"responses": [
                {"request_id": r["request_id"], "status": 200, "error": None, "latency": 0.001, "headers": {},
                 "body": "via the agent", "path": r["path"]} for r in batch["requests"]]}).encode(), "application/json")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield "127.0.0.1", int(server.server_address[1]), seen
    finally:
        server.shutdown()
        server.server_close()


def _gateway(fake: Any, service_type: str, load_balancer: dict[str, Any] | None = None,
             node_ports: tuple[int, int] | None = None) -> None:
    labels = {"app": "istio-ingressgateway", "istio": "ingressgateway"}
    fake.put("apps/v1", "deployments", {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {
        "name": "istio-ingressgateway", "namespace": "istio-system"},
        "spec": {"selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels}}}})
    fake.put("v1", "pods", {"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": GATEWAY_POD, "namespace": "istio-system", "labels": {**labels, "pod-template-hash": "5d8f9c7b6"},
        "ownerReferences": [{"kind": "ReplicaSet", "name": "istio-ingressgateway-5d8f9c7b6", "controller": True}]},
        "spec": {"containers": [{"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.31.1"}]},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}})
    ports = [{"name": "status-port", "port": 15021, "targetPort": 15021},
             {"name": "http2", "port": 80, "targetPort": 8080}, {"name": "https", "port": 443, "targetPort": 8443}]
    for port, node_port in zip(ports[1:], node_ports or (), strict=False):
        port["nodePort"] = node_port
    fake.put("v1", "services", {"apiVersion": "v1", "kind": "Service", "metadata": {
        "name": "istio-ingressgateway", "namespace": "istio-system"}, "spec": {"type": service_type, "ports": ports},
        "status": {"loadBalancer": load_balancer or {}}})


def make(fake_api: Any, tmp_path: Path, lifecycle: ClusterLifecycle | None = None) -> KubePlatform:
    fake, kubeconfig = fake_api
    fake.controller = True
    folder = tmp_path / "20261122-061017-run-3fa2c1" / "platform-main"
    installer: MeshInstaller = InstallsNothing("istioctl")
    timeouts = replace(KubeTimeouts(), ingress_address=0.5)  # a LoadBalancer that never comes: do not wait 120 s
    return KubePlatform(PlatformContext(folder, folder.parent, "main"), lifecycle or UsersCluster(kubeconfig),
                        installer, name="cluster", manifests=base_manifests(), timeouts=timeouts)


def test_without_a_load_balancer_the_ingress_is_a_port_forward(fake_api, tmp_path, pod_port) -> None:
    fake, _ = fake_api
    host, port, seen = pod_port
    _gateway(fake, "LoadBalancer")  # pending for ever: no cloud controller
    fake.forward_targets[("istio-system", GATEWAY_POD, 8080)] = (host, port)
    platform = make(fake_api, tmp_path)
    platform.up()
    try:
        endpoint = platform.endpoint
        assert endpoint.extra["ingress_via"] == "port-forward" and endpoint.http.startswith("http://127.0.0.1:")
        replies = platform.vantage("ingress").send([Request("/productpage"), Request("/ratings/0")])
        assert [(r.status, r.body) for r in replies] == [(200, "the gateway pod")] * 2
        assert sorted(seen) == ["GET /productpage", "GET /ratings/0"]
        forwards = [c for c in fake.calls if c.path.endswith("/portforward")]
        assert forwards and {(c.path, c.query["ports"]) for c in forwards} == {
            (f"/api/v1/namespaces/istio-system/pods/{GATEWAY_POD}/portforward", "8080")}
    finally:
        platform.down()


def test_a_load_balancer_address_is_used_when_the_service_has_one(fake_api, tmp_path) -> None:
    fake, _ = fake_api
    _gateway(fake, "LoadBalancer", {"ingress": [{"ip": "127.0.0.5"}]})
    platform = make(fake_api, tmp_path)
    platform.up()
    try:
        assert platform.endpoint.http == "http://127.0.0.5:80" and platform.endpoint.extra["ingress_via"] == \
            "load-balancer"
        assert not [c for c in fake.calls if c.path.endswith("/portforward")]
    finally:
        platform.down()


def test_kind_s_published_node_ports_are_confirmed_against_the_service(fake_api, tmp_path) -> None:
    fake, kubeconfig = fake_api
    _gateway(fake, "NodePort", node_ports=(30080, 30443))
    platform = make(fake_api, tmp_path, KindNode(kubeconfig))
    platform.up()
    assert platform.endpoint.http == "http://127.0.0.1:41235"
    platform.down()
    _gateway(fake, "NodePort", node_ports=(31234, 30443))  # a hook that let Kubernetes pick them
    platform = make(fake_api, tmp_path / "again", KindNode(kubeconfig))
    with pytest.raises(PlatformError, match=r"has nodePorts 31234 \(http2\) and 30443 \(https\), but the kind node "
                                            "publishes 30080 and 30443"):
        platform.up()


def test_an_agent_the_pod_proxy_cannot_reach_is_reached_through_a_port_forward(fake_api, tmp_path, pod_port) -> None:
    """As on a GKE private cluster: the API server's pod proxy answers 503; decided once at bring-up, every batch then
    goes through a port-forward to the client app's control port, and the report says so."""
    fake, _ = fake_api
    host, port, seen = pod_port
    _gateway(fake, "LoadBalancer", {"ingress": [{"ip": "127.0.0.5"}]})
    fake.unreachable_pod_proxy = True
    fake.forward_any_pod[15900] = (host, port)  # every client pod's control port
    platform = make(fake_api, tmp_path)
    platform.up()
    try:
        assert platform.describe()["reached_via"] == {"ingress": "load-balancer", "agent": "port-forward"}
        replies = platform.vantage("default/client").send([Request("/", host="echo:8080")])
        assert [(r.status, r.body) for r in replies] == [(200, "via the agent")]
        assert seen == ["POST /batch", "POST /batch"]  # the probe at bring-up, then the batch
        forwards = [c.path for c in fake.calls if c.path.endswith("/portforward")]
        assert len(forwards) == 2 and all(f"/namespaces/{platform.names.real('default')}/pods/client-" in p
                                          for p in forwards)
    finally:
        platform.down()


def test_a_port_forward_nobody_answers_fails_at_its_deadline_naming_pod_and_port(fake_api, tmp_path, pod_port) -> None:
    """The client's websocket connect has no timeout of its own: a kubelet (or API server) that takes the connection
    and never answers the upgrade would hold the run for ever. Opening the stream is bounded by
    KubeTimeouts.port_forward and the error names the pod and the port; a stream to another pod opens while the hung
    one is still waiting (it holds no lock and no shared client)."""
    import time

    from meshconform.platform.kube.client import KubeClient
    from meshconform.platform.kube.contracts import ClusterAccess as Access
    fake, kubeconfig = fake_api
    host, port, _ = pod_port
    fake.stalled_forwards.add(("istio-system", GATEWAY_POD, 8080))
    fake.forward_targets[("istio-system", "other-pod", 8080)] = (host, port)
    client = KubeClient(Access(kubeconfig, "fake"), tmp_path / "discovery.json",
                        replace(KubeTimeouts(), port_forward=1.0))
    started = time.monotonic()
    with pytest.raises(PlatformError, match=rf"port-forward to istio-system/{GATEWAY_POD}:8080: no answer within 1 s"):
        client.port_forward("istio-system", GATEWAY_POD, 8080)
    waited = time.monotonic() - started
    assert waited < 5, f"gave up after {waited:.1f} s, not at the 1 s deadline"
    forward = client.port_forward("istio-system", "other-pod", 8080)  # not held up by the hung one
    forward.close()
    client.close()
    print(f"a hung port-forward failed after {waited:.2f} s (deadline 1 s)")
