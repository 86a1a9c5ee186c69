"""The exact API calls KubeClient makes, against the loopback fake API server (conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshconform.errors import ConfigError, PlatformError
from meshconform.meshapi.loader import load_text
from meshconform.platform.kube import apply as applying
from meshconform.platform.kube.client import KubeClient
from meshconform.platform.kube.contracts import ClusterAccess
from meshconform.platform.kube.names import NamespaceMap
from meshconform.platform.kube.ownership import RUN_LABEL, ObjectRef

RUN = "20261122-061017-run-3fa2c1"
NAMES = NamespaceMap("mc-3fa2c1")
VS = """apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
  namespace: default
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews.default.svc.cluster.local, subset: v1}
"""


def client_for(kubeconfig: Path, tmp_path: Path) -> KubeClient:
    return KubeClient(ClusterAccess(kubeconfig, "fake"), tmp_path / "discovery.json")


def test_server_version_from_discovery(fake_api, tmp_path):
    fake, kubeconfig = fake_api
    assert client_for(kubeconfig, tmp_path).server_version()["gitVersion"] == "v1.36.4"


def test_apply_is_server_side_apply_with_our_field_manager_after_a_dry_run(fake_api, tmp_path):
    fake, kubeconfig = fake_api
    client = client_for(kubeconfig, tmp_path)
    prepared = applying.prepare(load_text(VS, "vs.yaml"), NAMES, RUN, ["default"])
    applying.apply_all(client, prepared, RUN)
    path = "/apis/networking.istio.io/v1/namespaces/mc-3fa2c1-default/virtualservices/reviews"
    assert [(c.method, c.path) for c in fake.calls_of("GET")] == [("GET", path)]  # the ownership check
    dry, real = fake.calls_of("PATCH")
    for call in (dry, real):
        assert call.path == path
        assert call.content_type == "application/apply-patch+yaml"
        assert call.query["fieldManager"] == "meshconform"
        assert call.query["force"] in ("true", "True")
        assert call.body["metadata"]["labels"][RUN_LABEL] == RUN
        assert call.body["spec"]["http"][0]["route"][0]["destination"]["host"] == \
            "reviews.mc-3fa2c1-default.svc.cluster.local"
    assert dry.query["dryRun"] == "All" and "dryRun" not in real.query
    assert fake.objects[path]["metadata"]["labels"][RUN_LABEL] == RUN


def test_an_object_not_created_by_the_run_is_refused_and_nothing_is_sent(fake_api, tmp_path):
    fake, kubeconfig = fake_api
    fake.put("networking.istio.io/v1", "virtualservices",
             {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
              "metadata": {"name": "reviews", "namespace": "mc-3fa2c1-default", "labels": {"team": "someone"}},
              "spec": {"hosts": ["reviews"]}})
    client = client_for(kubeconfig, tmp_path)
    with pytest.raises(ConfigError) as caught:
        applying.apply_all(client, applying.prepare(load_text(VS, "vs.yaml"), NAMES, RUN, ["default"]), RUN)
    assert "VirtualService mc-3fa2c1-default/reviews already exists" in str(caught.value)
    assert "vs.yaml" in str(caught.value) and "outside meshconform" in str(caught.value)
    assert fake.calls_of("PATCH") == []


def test_delete_waits_until_gone_and_never_deletes_foreign_objects(fake_api, tmp_path):
    fake, kubeconfig = fake_api
    client = client_for(kubeconfig, tmp_path)
    prepared = applying.prepare(load_text(VS, "vs.yaml"), NAMES, RUN, ["default"])
    applying.apply_all(client, prepared, RUN)
    path = "/apis/networking.istio.io/v1/namespaces/mc-3fa2c1-default/virtualservices/reviews"
    fake.linger[path] = 2  # still there (terminating) for two more GETs
    fake.calls.clear()
    naps: list[float] = []
    deleted = applying.delete_all(client, prepared, RUN, False, lambda ref: 30.0, (0.01, 0.02), sleep=naps.append)
    assert deleted == [ObjectRef("networking.istio.io/v1", "VirtualService", "mc-3fa2c1-default", "reviews")]
    assert [c.method for c in fake.calls if c.path == path] == ["GET", "DELETE", "GET", "GET", "GET"]
    delete_call = next(c for c in fake.calls if c.method == "DELETE")
    assert delete_call.query.get("propagationPolicy") == "Background"
    assert len(naps) == 2 and path not in fake.objects
    # Missing: an error unless ignore_missing.
    with pytest.raises(ConfigError, match="not found on the cluster"):
        applying.delete_all(client, prepared, RUN, False, lambda ref: 1.0, (0.01, 0.02))
    assert applying.delete_all(client, prepared, RUN, True, lambda ref: 1.0, (0.01, 0.02)) == []
    # Someone else's object of that name: refused, untouched.
    fake.put("networking.istio.io/v1", "virtualservices",
             {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
              "metadata": {"name": "reviews", "namespace": "mc-3fa2c1-default", "labels": {RUN_LABEL: "other-run"}}})
    with pytest.raises(ConfigError, match="was not created by this run"):
        applying.delete_all(client, prepared, RUN, False, lambda ref: 1.0, (0.01, 0.02))
    assert path in fake.objects


def test_list_uses_the_label_selector_and_returns_the_resource_version(fake_api, tmp_path):
    fake, kubeconfig = fake_api
    for name, run in (("a", RUN), ("b", "other")):
        fake.put("v1", "pods", {"apiVersion": "v1", "kind": "Pod",
                                "metadata": {"name": name, "namespace": "ns1", "labels": {RUN_LABEL: run}}})
    listing = client_for(kubeconfig, tmp_path).list("v1", "Pod", "ns1", f"{RUN_LABEL}={RUN}")
    assert [p["metadata"]["name"] for p in listing.items] == ["a"]
    assert listing.resource_version == str(fake.version)
    call = fake.calls_of("GET")[-1]
    assert call.path == "/api/v1/namespaces/ns1/pods" and call.query["labelSelector"] == f"{RUN_LABEL}={RUN}"


def test_pod_log_reads_the_named_container(fake_api, tmp_path):
    fake, kubeconfig = fake_api
    fake.logs[("ns1", "echo-v1-abc", "echo")] = '{"request_id": "r1"}\n'
    text = client_for(kubeconfig, tmp_path).pod_log("ns1", "echo-v1-abc", "echo", tail_lines=50)
    assert text == '{"request_id": "r1"}\n'
    call = fake.calls_of("GET")[-1]
    assert call.path == "/api/v1/namespaces/ns1/pods/echo-v1-abc/log"
    assert call.query == {"container": "echo", "tailLines": "50"}


def test_api_errors_name_the_object_and_the_servers_reason(fake_api, tmp_path):
    fake, kubeconfig = fake_api
    with pytest.raises(PlatformError, match="WasmPlugin"):  # a kind the fake cluster does not serve
        client_for(kubeconfig, tmp_path).list("extensions.istio.io/v1alpha1", "WasmPlugin", "ns1")


def test_a_missing_kubeconfig_is_a_clear_error(tmp_path):
    with pytest.raises(PlatformError, match="does not exist"):
        KubeClient(ClusterAccess(tmp_path / "nope", None), tmp_path / "d.json")


def test_readiness_follows_a_real_watch_request(fake_api, tmp_path):
    """list, then GET ...?watch=true from the listed resourceVersion with the run's selector and a server timeout."""
    import copy

    import yaml

    from meshconform.platform.kube import readiness
    objects = yaml.safe_load((Path(__file__).parent / "data" / "objects.yaml").read_text())
    fake, kubeconfig = fake_api
    rolling = copy.deepcopy(objects["deployment_rolling"])
    rolling["metadata"]["labels"] = {RUN_LABEL: RUN}
    fake.put("apps/v1", "deployments", rolling)
    ready = copy.deepcopy(objects["deployment_ready"])
    ready["metadata"]["resourceVersion"] = "200"
    fake.watch_events["/apis/apps/v1/namespaces/mc-3fa2c1-default/deployments"] = [
        {"type": "MODIFIED", "object": ready}]
    client = client_for(kubeconfig, tmp_path)
    wanted = readiness.Wanted("apps/v1", "Deployment", "mc-3fa2c1-default", f"{RUN_LABEL}={RUN}",
                              readiness.deployment_problem)
    import time
    readiness.wait_ready(client, wanted, time.monotonic() + 30, "Deployments")
    listed, watched = [c for c in fake.calls_of("GET") if c.path.endswith("/deployments")]
    assert listed.query == {"labelSelector": f"{RUN_LABEL}={RUN}"}
    assert watched.query["watch"] in ("True", "true") and watched.query["labelSelector"] == f"{RUN_LABEL}={RUN}"
    assert watched.query["resourceVersion"] == str(fake.version) and 1 <= int(watched.query["timeoutSeconds"]) <= 60


def test_exec_uses_a_dedicated_client_and_the_documented_arguments(fake_api, tmp_path, monkeypatch):
    """The websocket itself is not faked; the call into kubernetes.stream.stream is (kubernetes-client/python#928:
    exec must not share the REST client)."""
    import kubernetes.stream
    fake, kubeconfig = fake_api
    client = client_for(kubeconfig, tmp_path)
    seen: dict = {}

    def fake_stream(method, *args, **kwargs):
        seen.update(method=method, args=args, kwargs=kwargs)
        return '{"configs": []}'
    monkeypatch.setattr(kubernetes.stream, "stream", fake_stream)
    out = client.exec("ns1", "echo-v1-abc", "istio-proxy", ["pilot-agent", "request", "GET", "config_dump"])
    assert out == '{"configs": []}'
    assert seen["method"].__name__ == "connect_get_namespaced_pod_exec"
    assert seen["method"].__self__.api_client is client.stream_api and client.stream_api is not client.api
    assert seen["args"] == ("echo-v1-abc", "ns1")
    assert seen["kwargs"] == {"container": "istio-proxy", "command": ["pilot-agent", "request", "GET", "config_dump"],
                              "stderr": True, "stdin": False, "stdout": True, "tty": False, "_request_timeout": 60.0}


def test_the_chosen_context_picks_the_cluster(fake_api, tmp_path):
    """A kubeconfig with two contexts: the named one is used; an unknown one is a clear error; None is the
    kubeconfig's current-context."""
    import yaml
    fake, kubeconfig = fake_api
    config = yaml.safe_load(kubeconfig.read_text())
    config["clusters"].append({"name": "elsewhere", "cluster": {"server": "http://127.0.0.1:9"}})
    config["contexts"].append({"name": "other", "context": {"cluster": "elsewhere", "user": "fake"}})
    config["current-context"] = "other"
    kubeconfig.write_text(yaml.safe_dump(config))
    chosen = KubeClient(ClusterAccess(kubeconfig, "fake"), tmp_path / "a.json")
    assert chosen.server_version()["gitVersion"] == "v1.36.4"
    with pytest.raises(PlatformError, match="cannot reach the API server of context"):
        KubeClient(ClusterAccess(kubeconfig, None), tmp_path / "b.json")  # current-context: nobody listens on :9
    with pytest.raises(PlatformError, match="context missing"):
        KubeClient(ClusterAccess(kubeconfig, "missing"), tmp_path / "c.json")


def test_every_rest_call_has_a_deadline(fake_api, tmp_path, monkeypatch):
    """get, list, apply (and its dry run), delete and log reads reach the HTTP layer with KubeTimeouts' deadline:
    a stuck API server is an error within seconds, never a hung run."""
    from meshconform.platform.kube.ownership import ObjectRef
    fake, kubeconfig = fake_api
    client = client_for(kubeconfig, tmp_path)
    deadlines: list[tuple[str, str, object]] = []
    original = type(client.api).call_api

    def recording(self, method, url, header_params=None, body=None, post_params=None, _request_timeout=None):
        deadlines.append((method, url.split("?")[0].replace(fake.url, ""), _request_timeout))
        return original(self, method, url, header_params, body, post_params, _request_timeout)
    monkeypatch.setattr(type(client.api), "call_api", recording)
    fake.logs[("ns1", "echo-v1-abc", "echo")] = "line\n"
    doc = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "ns1"}, "data": {}}
    client.apply(doc, dry_run=True)
    client.apply(doc)
    client.get(ObjectRef("v1", "ConfigMap", "ns1", "c"))
    client.list("v1", "ConfigMap", "ns1")
    client.delete(ObjectRef("v1", "ConfigMap", "ns1", "c"))
    client.pod_log("ns1", "echo-v1-abc", "echo")
    calls = [d for d in deadlines if "/namespaces/ns1/" in d[1]]
    assert [m for m, _, _ in calls] == ["PATCH", "PATCH", "GET", "GET", "DELETE", "GET"], calls
    assert {t for _, path, t in calls if not path.endswith("/log")} == {client.timeouts.api_call}
    assert [t for _, path, t in calls if path.endswith("/log")] == [client.timeouts.exec_call]
