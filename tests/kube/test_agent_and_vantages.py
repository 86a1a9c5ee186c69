"""The testbed agent (what runs in the cluster's echo and client pods) run here on loopback, and the client-pod
vantage end to end: one pod-proxy POST per batch through the fake API server to a real agent."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from meshconform.errors import PlatformError
from meshconform.platform.kube import agent as agent_module
from meshconform.platform.kube.client import KubeClient
from meshconform.platform.kube.contracts import ClusterAccess
from meshconform.platform.kube.names import NamespaceMap
from meshconform.platform.kube.platform import ingress_from_service
from meshconform.platform.kube.vantages import CONTROL_PORT, PodVantage, parse_batch_reply
from meshconform.traffic.model import Request

AGENT = Path(agent_module.__file__)
NAMES = NamespaceMap("mc-3fa2c1")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(port: int, proc: subprocess.Popen, deadline_s: float = 10.0) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"agent exited: {proc.stderr.read() if proc.stderr else ''}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"agent not listening on {port} within {deadline_s}s")


def start(role: str, env: dict[str, str], port: int, log: Path) -> subprocess.Popen:
    # `python -I`: isolated mode, no site-packages: proves the agent needs the standard library only.
    proc = subprocess.Popen([sys.executable, "-I", str(AGENT), role], env={"PATH": os.environ["PATH"], **env},
                            stdout=log.open("w"), stderr=subprocess.PIPE, text=True)
    wait_listening(port, proc)
    return proc


@pytest.fixture
def testbed(tmp_path: Path) -> Iterator[tuple[int, int, int, Path]]:
    """An echo (v2, in namespace mc-3fa2c1-legacy), a mirror-like echo answering 500, and a client agent."""
    echo, mirror, control = free_port(), free_port(), free_port()
    procs = [
        start("echo", {"HOSTNAME": "echo-v2-abc", "MESHCONFORM_NAMESPACE": "mc-3fa2c1-legacy",
                       "MESHCONFORM_VERSION": "v2", "MESHCONFORM_BIND": f"127.0.0.1:{echo}"}, echo,
              tmp_path / "echo.log"),
        start("echo", {"ECHO_STATUS": "500", "MESHCONFORM_BIND": f"127.0.0.1:{mirror}"}, mirror,
              tmp_path / "mirror.log"),
        start("client", {"MESHCONFORM_CONTROL": f"127.0.0.1:{control}"}, control, tmp_path / "client.log"),
    ]
    try:
        yield echo, mirror, control, tmp_path
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=10)
            if proc.stderr:
                proc.stderr.close()


def test_a_batch_through_the_client_agent(testbed):
    echo, mirror, control, folder = testbed
    batch = [Request(f"/status/{code}", host=f"127.0.0.1:{echo}", headers={"end-user": "jason"})
             for code in (200, 201, 418)] + [
        Request("/delay/300", host=f"127.0.0.1:{echo}", timeout=0.1),
        Request("/", host=f"127.0.0.1:{free_port()}"),  # nobody listens: refused
        Request("/x", host=f"127.0.0.1:{mirror}", method="POST", body="abc")]
    reply = requests.post(f"http://127.0.0.1:{control}/batch", timeout=30, json={
        "requests": [r.to_json() for r in batch], "concurrency": 3, "reuse_connections": True}).json()
    responses = parse_batch_reply(reply, batch, NAMES)
    assert [r.status for r in responses] == [200, 201, 418, None, None, 500]
    assert [r.error for r in responses[3:5]] == ["timeout", "refused"]
    first = responses[0]
    assert first.request_id == batch[0].request_id and first.path == "/status/200"
    assert first.version == "v2" and first.answered_by == "echo-v2-abc"
    assert first.json()["namespace"] == "legacy"  # the run's namespace read back as the suite's
    assert first.json()["headers"]["end-user"] == "jason"
    assert first.headers["content-type"].startswith("application/json")
    assert responses[5].json()["body_bytes"] == 3
    # The echo's request log is its stdout (the container log on a cluster): one record per request.
    records = [json.loads(line) for line in (folder / "echo.log").read_text().splitlines()]
    assert {r["request_id"] for r in records} >= {r.request_id for r in batch[:3]}
    # The abandoned /delay/300 (sent without end-user) is logged as soon as its caller gives up.
    assert {r["end_user"] for r in records if r["path"].startswith("/status/")} == {"jason"}


def test_connect_to_opens_the_connection_there_and_names_the_host(testbed):
    # A ServiceEntry host no DNS knows: the connection goes to the given address (on a cluster the sidecar
    # captures it), the Host header names the host (what the sidecar routes by), as curl --connect-to does.
    echo, _, control, _ = testbed
    batch = [Request("/named", host="outside.egress.meshconform.test", connect_to=f"127.0.0.1:{echo}",
                     request_id="rid-named"),
             Request("/unnamed", host="outside.egress.meshconform.test", request_id="rid-unnamed")]
    reply = requests.post(f"http://127.0.0.1:{control}/batch", timeout=30, json={
        "requests": [r.to_json() for r in batch], "concurrency": 2, "reuse_connections": True}).json()
    named, unnamed = parse_batch_reply(reply, batch, NAMES)
    assert named.status == 200 and named.json()["host"] == "outside.egress.meshconform.test"
    assert unnamed.status is None and unnamed.error.startswith("connect:")  # without it the name must resolve


def test_the_host_is_sent_as_given_case_kept(testbed):
    # AuthorizationPolicy hosts match the Host ignoring case: a check sends "Echo:8080" and the agent must send
    # exactly that (http.client writes the Host it is given), resolving the name as DNS does, ignoring case.
    echo, _, control, _ = testbed
    batch = [Request("/mixed", host="Echo.Default.Svc:8080", connect_to=f"127.0.0.1:{echo}"),
             Request("/resolved", host=f"LocalHost:{echo}")]
    reply = requests.post(f"http://127.0.0.1:{control}/batch", timeout=30, json={
        "requests": [r.to_json() for r in batch], "concurrency": 1, "reuse_connections": True}).json()
    mixed, resolved = parse_batch_reply(reply, batch, NAMES)
    assert mixed.status == 200 and mixed.json()["host"] == "Echo.Default.Svc:8080"
    assert resolved.status == 200 and resolved.json()["host"] == f"LocalHost:{echo}"


def test_bad_batches_are_refused(testbed):
    _, _, control, _ = testbed
    assert requests.post(f"http://127.0.0.1:{control}/batch", data="not json", timeout=10).status_code == 400
    assert requests.get(f"http://127.0.0.1:{control}/health", timeout=10).json() == {"status": "ok"}
    with pytest.raises(PlatformError, match="answered 0 responses for 1 requests"):
        parse_batch_reply({"responses": []}, [Request("/")], NAMES)


def test_pod_vantage_sends_one_pod_proxy_call_per_batch(fake_api, testbed, tmp_path):
    """The kubernetes client's real POST through the (fake) API server, relayed to the real client agent."""
    fake, kubeconfig = fake_api
    echo, _, control, _ = testbed

    def relay(path: str, body: dict) -> dict:
        return requests.post(f"http://127.0.0.1:{control}/batch", json=body, timeout=30).json()
    fake.proxy_handler = relay
    client = KubeClient(ClusterAccess(kubeconfig, "fake"), tmp_path / "discovery.json")
    vantage = PodVantage("default/client", client, "mc-3fa2c1-default", "client-5b6d7c8f9-abcde", NAMES,
                         ["default", "legacy"], 60.0)
    batch = [Request(f"/status/200?i={i}", host=f"127.0.0.1:{echo}") for i in range(40)]
    responses = vantage.send(batch, concurrency=8)
    assert [r.status for r in responses] == [200] * 40
    posts = fake.calls_of("POST")
    assert len(posts) == 1
    assert posts[0].path == \
        f"/api/v1/namespaces/mc-3fa2c1-default/pods/client-5b6d7c8f9-abcde:{CONTROL_PORT}/proxy/batch"
    assert posts[0].content_type == "application/json"
    assert posts[0].body["concurrency"] == 8 and len(posts[0].body["requests"]) == 40
    # Hosts naming the suite's namespaces are mapped before they leave.
    payload = vantage.payload([Request("/", host="echo.legacy:8080"), Request("/", host="echo:8080")], 1, True)
    assert [r["host"] for r in payload["requests"]] == ["echo.mc-3fa2c1-legacy:8080", "echo:8080"]
    # A mixed-case host keeps its case; its namespace part is still the suite's (host names ignore case).
    payload = vantage.payload([Request("/", host="Echo:8080"), Request("/", host="echo.Legacy.svc.Cluster.Local:8080")],
                              1, True)
    assert [r["host"] for r in payload["requests"]] == ["Echo:8080", "echo.mc-3fa2c1-legacy.svc.Cluster.Local:8080"]


def test_ingress_address_from_the_gateway_service():
    service = {"metadata": {"name": "istio-ingressgateway", "namespace": "istio-system"},
               "spec": {"type": "LoadBalancer", "ports": [
                   {"name": "status-port", "port": 15021}, {"name": "http2", "port": 80},
                   {"name": "https", "port": 443}]},
               "status": {"loadBalancer": {"ingress": [{"ip": "172.18.255.200"}]}}}
    assert ingress_from_service(service) == ("172.18.255.200", 80, 443)
    service["status"] = {"loadBalancer": {}}
    with pytest.raises(PlatformError, match="LoadBalancer pending"):
        ingress_from_service(service)
    assert urlsplit("http://172.18.255.200:80").port == 80
