"""A loopback stand-in for the Kubernetes API server, so the `kubernetes` client's real HTTP calls (paths, verbs,
query parameters, content types) are asserted without a cluster.

Response shapes follow the Kubernetes API reference (https://kubernetes.io/docs/reference/using-api/api-concepts/:
APIGroupList / APIResourceList discovery documents, `<Kind>List` with metadata.resourceVersion, Status on errors,
watch events as newline-delimited {"type", "object"}). It stores objects; it does not validate them."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

if str(Path(__file__).parent) not in sys.path:  # the test modules import installer_standin
    sys.path.insert(0, str(Path(__file__).parent))

NODE = "meshconform-control-plane"  # kind names a single node <cluster>-control-plane
VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]
CORE = [("namespaces", "Namespace", False), ("pods", "Pod", True), ("services", "Service", True),
        ("serviceaccounts", "ServiceAccount", True), ("configmaps", "ConfigMap", True), ("secrets", "Secret", True),
        ("events", "Event", True)]
GROUPS = {
    "apps/v1": [("deployments", "Deployment", True)],
    "networking.istio.io/v1": [("virtualservices", "VirtualService", True),
                               ("destinationrules", "DestinationRule", True), ("gateways", "Gateway", True),
                               ("serviceentries", "ServiceEntry", True), ("sidecars", "Sidecar", True)],
    "networking.istio.io/v1alpha3": [("envoyfilters", "EnvoyFilter", True)],
    "security.istio.io/v1": [("peerauthentications", "PeerAuthentication", True),
                             ("authorizationpolicies", "AuthorizationPolicy", True),
                             ("requestauthentications", "RequestAuthentication", True)],
    "telemetry.istio.io/v1": [("telemetries", "Telemetry", True)],
    "gateway.networking.k8s.io/v1": [("gateways", "Gateway", True), ("httproutes", "HTTPRoute", True)],
    "apiextensions.k8s.io/v1": [("customresourcedefinitions", "CustomResourceDefinition", False)],
    "admissionregistration.k8s.io/v1": [("validatingadmissionpolicies", "ValidatingAdmissionPolicy", False),
                                        ("validatingadmissionpolicybindings", "ValidatingAdmissionPolicyBinding",
                                         False)],
}


def ran_digest(image: str) -> str:
    """The imageID a runtime reports for `image` (repository@sha256:...): the digest it is pinned by, as a runtime
    pulling by digest reports; for an image named by tag, a digest derived from the name."""
    import hashlib
    name, _, pinned = image.partition("@")
    if pinned:
        head, _, last = name.rpartition("/")
        return f"{head}/{last.split(':', 1)[0]}@{pinned}" if head else f"{last.split(':', 1)[0]}@{pinned}"
    head, _, last = name.rpartition("/")
    repository = f"{head}/{last.split(':', 1)[0]}" if head else last.split(":", 1)[0]
    return f"{repository}@sha256:{hashlib.sha256(image.encode()).hexdigest()}"


def _resource_list(group_version: str, kinds: list[tuple[str, str, bool]]) -> dict[str, Any]:
    resources = [{"name": plural, "singularName": kind.lower(), "namespaced": namespaced, "kind": kind,
                  "verbs": VERBS} for plural, kind, namespaced in kinds]
    if group_version == "v1":
        resources += [{"name": f"pods/{sub}", "singularName": "", "namespaced": True, "kind": kind, "verbs": verbs}
                      for sub, kind, verbs in (("log", "Pod", ["get"]), ("exec", "PodExecOptions", ["create", "get"]),
                                               ("proxy", "PodProxyOptions", ["create", "get"]))]
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, str]
    content_type: str
    body: Any
    accept: str = ""


@dataclass
class FakeApiServer:
    """Objects by path; `calls` in order; `watch_events[collection path]`: events served to the next watch there;
    `proxy_handler(path, body)` answers pod proxy calls; `logs[(ns, pod, container)]`; `linger[path]`: GETs for
    which a deleted object still shows (terminating) before it is gone."""

    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    watch_events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    proxy_handler: Callable[[str, Any], Any] | None = None
    logs: dict[tuple[str, str, str], str] = field(default_factory=dict)
    linger: dict[str, int] = field(default_factory=dict)
    # GET /api/v1/nodes/{node}/proxy/metrics/resource: the kubelet's text by node; `forbidden_node_proxy`: the
    # caller lacks `get` on nodes/proxy (403 with the API server's RBAC message)
    node_metrics: dict[str, str] = field(default_factory=dict)
    forbidden_node_proxy: bool = False
    # pods/portforward: (namespace, pod, port) -> a loopback (host, port) the stream is carried to (a websocket
    # speaking the v4.channel.k8s.io protocol, as the API server does); a port not listed gets the error channel
    forward_targets: dict[tuple[str, str, int], tuple[str, int]] = field(default_factory=dict)
    forward_any_pod: dict[int, tuple[str, int]] = field(default_factory=dict)  # port -> target, for every pod
    # (namespace, pod, port) whose port-forward upgrade is read and never answered (a kubelet or an API server that
    # accepts the connection and hangs), until `released` is set (at the fixture's end)
    stalled_forwards: set[tuple[str, str, int]] = field(default_factory=set)
    released: threading.Event = field(default_factory=threading.Event)
    ran_instead: dict[str, str] = field(default_factory=dict)  # image -> the imageID its pods report instead
    unreachable_pod_proxy: bool = False  # pods/proxy answers 503, as when the control plane cannot reach pod IPs
    # SelfSubjectAccessReview: (verb, group, resource, subresource) the caller may NOT do (all else allowed)
    denied: set[tuple[str, str, str, str]] = field(default_factory=set)
    controller: bool = False  # play the Deployment controller, scheduler, kubelet and Istio's injector
    version: int = 100
    url: str = ""

    # ---------------------------------------------------------------- paths

    @staticmethod
    def collection_of(api_version: str, kind_plural: str, namespace: str | None) -> str:
        base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        return f"{base}/namespaces/{namespace}/{kind_plural}" if namespace else f"{base}/{kind_plural}"

    def put(self, api_version: str, plural: str, obj: dict[str, Any]) -> None:
        """Store an object as if it existed before the test."""
        meta = obj["metadata"]
        ns = None if plural == "namespaces" else meta.get("namespace")
        self.version += 1
        meta.setdefault("resourceVersion", str(self.version))
        self.objects[f"{self.collection_of(api_version, plural, ns)}/{meta['name']}"] = obj

    def roll_out(self, deployment: dict[str, Any]) -> None:
        """What the cluster does with an applied Deployment, in shapes from the Kubernetes docs: the Deployment
        Available and rolled out, one Running and Ready pod owned by its ReplicaSet, and Istio's proxy injected as a
        native sidecar where the webhook selectors apply."""
        meta, spec = deployment["metadata"], deployment["spec"]
        replicas = spec.get("replicas", 1)
        deployment["metadata"]["generation"] = 1
        deployment["status"] = {"observedGeneration": 1, "replicas": replicas, "updatedReplicas": replicas,
                                "readyReplicas": replicas, "availableReplicas": replicas, "conditions": [
                                    {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                                    {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]}
        template = spec["template"]
        labels = {**template["metadata"].get("labels", {}), "pod-template-hash": "7f9c8d6b5"}
        namespace = self.objects.get(f"/api/v1/namespaces/{meta['namespace']}", {})
        ns_labels = namespace.get("metadata", {}).get("labels") or {}
        inject = (ns_labels.get("istio-injection") == "enabled" and labels.get("sidecar.istio.io/inject") != "false") \
            or (not ns_labels.get("istio-injection") and labels.get("sidecar.istio.io/inject") == "true")
        pod_spec = json.loads(json.dumps(template["spec"]))
        if inject:
            pod_spec["initContainers"] = [{"name": "istio-init", "image": "docker.io/istio/proxyv2:1.31.1"},
                                          {"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.31.1",
                                           "restartPolicy": "Always"}]
        name = f"{meta['name']}-7f9c8d6b5-x2k9p"
        pod_spec["nodeName"] = NODE  # the scheduler's choice: kind's one node
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": name, "namespace": meta["namespace"], "labels": labels,
                            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "controller": True,
                                                 "name": f"{meta['name']}-7f9c8d6b5", "uid": "u1"}]},
               "spec": pod_spec,
               "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
                          # the kubelet's record of what ran: imageID is the digest the runtime resolved
                          "containerStatuses": [{"name": c["name"], "image": c["image"], "ready": True,
                                                 "imageID": self.ran_instead.get(c["image"], ran_digest(c["image"])),
                                                 "state": {"running": {}}}
                                                for c in pod_spec.get("containers") or []]}}
        self.put("v1", "pods", pod)

    def calls_of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method and not self._discovery(c.path)]

    @staticmethod
    def _discovery(path: str) -> bool:
        return path in ("/version", "/apis", "/api", "/api/v1") or (path.startswith("/apis/") and path.count("/") == 3)


def _handler(server: FakeApiServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

        def _send(self, status: int, data: Any, content_type: str = "application/json") -> None:
            payload = data if isinstance(data, bytes) else (data.encode() if isinstance(data, str)
                                                            else json.dumps(data).encode())
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _status(self, code: int, reason: str, message: str) -> None:
            self._send(code, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                              "message": message, "reason": reason, "code": code})

        def _record(self) -> tuple[str, dict[str, str], Any]:
            parts = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode(errors="replace")
            server.calls.append(Call(self.command, parts.path, query, self.headers.get("Content-Type", ""), body,
                                     self.headers.get("Accept", "")))
            return parts.path, query, body

        def do_GET(self) -> None:  # noqa: N802
            path, query, _ = self._record()
            if path.endswith("/portforward") and self.headers.get("Upgrade", "").lower() == "websocket":
                return self._port_forward(path, query)
            if path == "/version":
                return self._send(200, {"major": "1", "minor": "36", "gitVersion": "v1.36.4",
                                        "platform": "linux/amd64"})
            if path == "/apis":
                groups: dict[str, list[str]] = {}  # one entry per group, listing each version it serves
                for gv in GROUPS:
                    groups.setdefault(gv.split("/")[0], []).append(gv)
                return self._send(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                    {"name": name, "versions": [{"groupVersion": gv, "version": gv.split("/")[1]} for gv in gvs],
                     "preferredVersion": {"groupVersion": gvs[0], "version": gvs[0].split("/")[1]}}
                    for name, gvs in groups.items()]})
            if path == "/api":
                return self._send(200, {"kind": "APIVersions", "versions": ["v1"]})
            if path == "/api/v1":
                return self._send(200, _resource_list("v1", CORE))
            for gv, kinds in GROUPS.items():
                if path == f"/apis/{gv}":
                    return self._send(200, _resource_list(gv, kinds))
            if path.startswith("/api/v1/nodes/") and "/proxy/" in path:
                node, _, rest = path.removeprefix("/api/v1/nodes/").partition("/proxy/")
                if server.forbidden_node_proxy:
                    return self._status(403, "Forbidden", f'nodes "{node}" is forbidden: User "fake" cannot get '
                                        'resource "nodes/proxy" in API group "" at the cluster scope')
                if rest != "metrics/resource" or node not in server.node_metrics:
                    return self._status(404, "NotFound", f"{path} not found")
                return self._send(200, server.node_metrics[node], "text/plain; version=0.0.4; charset=utf-8")
            if path.endswith("/log"):
                segments = path.split("/")
                key = (segments[4], segments[6], query.get("container", ""))
                if key not in server.logs:
                    return self._status(404, "NotFound", f"no log for {key}")
                text = server.logs[key]
                if query.get("timestamps") == "true":  # the kubelet's RFC3339Nano stamp: line i at 06:00:00 + i ms
                    text = "".join(f"2026-11-22T06:00:{i // 1000:02d}.{i % 1000:03d}Z {line}\n"
                                   for i, line in enumerate(text.splitlines()))
                return self._send(200, text, "text/plain")
            if path in server.objects:
                obj = server.objects[path]
                if path in server.linger and obj["metadata"].get("deletionTimestamp"):
                    server.linger[path] -= 1
                    if server.linger[path] < 0:
                        del server.objects[path]
                        del server.linger[path]
                        return self._status(404, "NotFound", f"{path} not found")
                return self._send(200, obj)
            prefix = path + "/"
            members = [o for p, o in server.objects.items() if p.startswith(prefix) and "/" not in p[len(prefix):]]
            base, _, plural = path.rpartition("/")
            if "/namespaces/" not in path:  # a namespaced kind listed across all namespaces
                members += [o for p, o in server.objects.items() if p.startswith(f"{base}/namespaces/")
                            and p.split("/")[-2] == plural and p.count("/") == base.count("/") + 4]
            is_collection = any(path.endswith("/" + plural) for plural, _, _ in
                                CORE + [k for ks in GROUPS.values() for k in ks])
            if not is_collection:
                return self._status(404, "NotFound", f"{path} not found")
            if query.get("watch") in ("true", "True", "1"):
                events = server.watch_events.pop(path, [])
                lines = "".join(json.dumps(e) + "\n" for e in events)
                return self._send(200, lines)
            wanted = [t.split("=", 1) for t in query.get("labelSelector", "").split(",") if "=" in t]
            items = [o for o in members if all((o["metadata"].get("labels") or {}).get(k) == v for k, v in wanted)]
            return self._send(200, {"kind": "List", "apiVersion": "v1",
                                    "metadata": {"resourceVersion": str(server.version)}, "items": items})

        def do_PATCH(self) -> None:  # noqa: N802
            path, query, body = self._record()
            if query.get("dryRun") == "All":
                return self._send(200, body)
            server.version += 1
            stored = dict(body)
            stored["metadata"] = {**body.get("metadata", {}), "resourceVersion": str(server.version),
                                  "uid": f"uid-{server.version}"}
            server.objects[path] = stored
            if server.controller and stored.get("kind") == "Deployment":
                server.roll_out(stored)
            return self._send(200, stored)

        def do_DELETE(self) -> None:  # noqa: N802
            path, _, _ = self._record()
            if path not in server.objects:
                return self._status(404, "NotFound", f"{path} not found")
            if path in server.linger:
                server.objects[path]["metadata"]["deletionTimestamp"] = "2026-11-22T06:00:00Z"
            else:
                del server.objects[path]
            if path.startswith("/api/v1/namespaces/") and path.count("/") == 4:  # a namespace takes its contents
                inside = f"/namespaces/{path.rsplit('/', 1)[1]}/"
                for other in [p for p in server.objects if inside in p]:
                    del server.objects[other]
            return self._send(200, {"kind": "Status", "apiVersion": "v1", "status": "Success"})

        def do_POST(self) -> None:  # noqa: N802
            path, _, body = self._record()
            if "/proxy/" in path and server.unreachable_pod_proxy:
                return self._status(503, "ServiceUnavailable", "error trying to reach service: dial tcp 10.244.0.7:"
                                    "15900: i/o timeout")
            if "/proxy/" in path and server.proxy_handler is not None:
                return self._send(200, server.proxy_handler(path, body))
            if "/proxy/batch" in path and not (body or {}).get("requests"):
                return self._send(200, {"responses": []})  # the agent's answer to an empty batch
            if path == "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews":
                asked = (body.get("spec") or {}).get("resourceAttributes") or {}
                key = (asked.get("verb", ""), asked.get("group", ""), asked.get("resource", ""),
                       asked.get("subresource", ""))
                allowed = key not in server.denied
                return self._send(201, {**body, "status": {"allowed": allowed, **({} if allowed else {
                    "reason": "no RBAC policy matched"})}})
            return self._status(404, "NotFound", path)

        def _port_forward(self, path: str, query: dict[str, str]) -> None:
            """The websocket a port-forward is (RFC 6455 handshake; channel frames as the API server sends them: the
            port number first on the data and error channels, then data on channel 0)."""
            import base64
            import hashlib
            import socket
            segments = path.split("/")
            port = int(query.get("ports", "0"))
            if (segments[4], segments[6], port) in server.stalled_forwards:
                server.released.wait(120)
                self.close_connection = True
                return
            key = self.headers.get("Sec-WebSocket-Key", "")
            accept = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode())
                                      .digest()).decode()
            self.send_response(101, "Switching Protocols")
            for name, value in (("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Accept", accept),
                                ("Sec-WebSocket-Protocol", "v4.channel.k8s.io")):
                self.send_header(name, value)
            self.end_headers()
            self.close_connection = True
            lock = threading.Lock()

            def send(payload: bytes, opcode: int = 0x2) -> None:
                size = len(payload)
                head = bytes([0x80 | opcode]) + (bytes([size]) if size < 126 else bytes([126]) + size.to_bytes(2, "big")
                                                 if size < 65536 else bytes([127]) + size.to_bytes(8, "big"))
                with lock:
                    self.connection.sendall(head + payload)

            def receive() -> tuple[int, bytes] | None:
                head = self.rfile.read(2)
                if len(head) < 2:
                    return None
                size = head[1] & 0x7F
                if size == 126:
                    size = int.from_bytes(self.rfile.read(2), "big")
                elif size == 127:
                    size = int.from_bytes(self.rfile.read(8), "big")
                mask = self.rfile.read(4) if head[1] & 0x80 else b"\0\0\0\0"
                data = bytes(b ^ mask[i % 4] for i, b in enumerate(self.rfile.read(size)))
                return head[0] & 0x0F, data

            number = port.to_bytes(2, "little")
            send(b"\x00" + number)
            send(b"\x01" + number)
            target = server.forward_targets.get((segments[4], segments[6], port)) or server.forward_any_pod.get(port)
            if target is None:
                send(b"\x01" + f"error forwarding port {port} to pod {segments[6]}: connection refused".encode())
                send(b"", 0x8)
                return
            upstream = socket.create_connection(target)

            def back() -> None:
                while data := upstream.recv(65536):
                    send(b"\x00" + data)
                send(b"", 0x8)  # the pod closed: close the stream
            threading.Thread(target=back, daemon=True).start()
            try:
                while (frame := receive()) is not None and frame[0] != 0x8:
                    if frame[0] == 0x2 and frame[1][:1] == b"\x00" and len(frame[1]) > 1:
                        upstream.sendall(frame[1][1:])
            finally:
                upstream.close()

    return Handler


@pytest.fixture
def fake_api(tmp_path: Path) -> Iterator[tuple[FakeApiServer, Path]]:
    """A running fake API server on 127.0.0.1 and a kubeconfig (context `fake`) pointing at it."""
    fake = FakeApiServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    httpd.daemon_threads = True
    fake.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "fake",
        "clusters": [{"name": "fake", "cluster": {"server": fake.url}}],
        "users": [{"name": "fake", "user": {"token": "not-a-secret"}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}]}))
    try:
        yield fake, kubeconfig
    finally:
        fake.released.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
