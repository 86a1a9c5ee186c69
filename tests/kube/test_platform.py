"""KubePlatform end to end against the loopback fake API server playing the cluster (conftest.py, with its
Deployment controller/injector stand-in), with stand-in lifecycle and installer implementing the contracts.
Asserts the calls it makes, what it creates (and where), and that `down` removes exactly that."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from meshconform.errors import ConfigError, PlatformError
from meshconform.meshapi.loader import load_text
from meshconform.platform.kube.contracts import ClusterAccess, ClusterLifecycle, MeshInstaller
from meshconform.platform.kube.ownership import RUN_LABEL
from meshconform.platform.kube.platform import KubePlatform
from meshconform.platform.kube.testbed import AGENT_CONFIGMAP
from meshconform.platform.local.platform import base_manifests
from meshconform.platform.registry import PlatformContext
from meshconform.suite.manifests import load_manifest
from meshconform.traffic.model import Request

ROUTES = {"configs": [{"@type": "type.googleapis.com/envoy.admin.v3.RoutesConfigDump", "dynamic_route_configs": [
    {"version_info": "1", "route_config": {"name": "8080", "virtual_hosts": [
        {"name": "echo.mc-x-default.svc.cluster.local:8080", "domains": ["echo.mc-x-default.svc.cluster.local"]}]}}]}]}


class Lifecycle:
    """Shared by the run's workers as the kind platform's is: every worker calls ensure and teardown; the cluster is
    made by the first ensure and goes with the last teardown (logged only then)."""

    def __init__(self, kubeconfig: Path) -> None:
        self.kubeconfig = kubeconfig
        self.log: list[str] = []
        self.users = 0

    def ensure(self) -> ClusterAccess:
        if self.users == 0:
            self.log.append("ensure")
        self.users += 1
        return ClusterAccess(self.kubeconfig, "fake")

    def teardown(self) -> None:
        self.users -= 1
        if self.users == 0:
            self.log.append("teardown")

    def describe(self) -> dict[str, Any]:
        return {"cluster": "fake", "node_image": "kindest/node:v1.36.4@sha256:099e04"}

    def diagnostics(self, folder: Path) -> list[Path]:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "kind-logs.txt").write_text("exported\n")
        return [folder / "kind-logs.txt"]

    def ingress_address(self) -> tuple[str, int, int] | None:
        return ("127.0.0.1", 30080, 30443)


class Installer:
    name = "istioctl"

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.log: list[str] = []
        self.status = "SYNCED"
        self.node_namespace = "elsewhere"

    def plan(self) -> list[str]:
        return ["istioctl install -y --set profile=default"]

    def install(self, access: ClusterAccess) -> None:  # shared like the lifecycle: installs once, last one out
        self.users = getattr(self, "users", 0) + 1
        if self.users == 1:
            self.log.append(f"install {access.context}")
            if self.fail:
                raise PlatformError("istiod not ready")

    def uninstall(self, access: ClusterAccess) -> None:
        self.users -= 1
        if self.users == 0:
            self.log.append("uninstall")

    def describe(self) -> dict[str, Any]:
        return {"method": "istioctl", "istio_version": "1.31.1", "profile": "default", "revision": None}

    def proxy_status(self, access: ClusterAccess) -> str | None:
        self.log.append("proxy-status")
        ns = self.node_namespace
        node = {"id": f"sidecar~10.0.0.1~client-1.{ns}~{ns}.svc.cluster.local"}
        configs = [{"typeUrl": "x.Cluster", "configStatus": self.status}]
        return json.dumps({"resources": [{"node": node, "genericXdsConfigs": configs}]})

    def diagnostics(self, access: ClusterAccess, folder: Path) -> list[Path]:
        return []


def make(fake_api, tmp_path: Path, installer: Installer | None = None) -> tuple[KubePlatform, Lifecycle, Installer]:
    fake, kubeconfig = fake_api
    fake.controller = True
    lifecycle, installer = Lifecycle(kubeconfig), installer or Installer()
    folder = tmp_path / "20261122-061017-run-3fa2c1" / "platform-main"
    lc: ClusterLifecycle = lifecycle  # the stand-ins satisfy the contracts (mypy checks these assignments)
    mi: MeshInstaller = installer
    platform = KubePlatform(PlatformContext(folder, folder.parent, "main"), lc, mi, name="cluster",
                            manifests=base_manifests())
    return platform, lifecycle, installer


def test_up_apply_observe_and_down(fake_api, tmp_path, monkeypatch):
    fake, _ = fake_api
    # The user's own objects: never touched.
    fake.put("v1", "namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}})
    fake.put("networking.istio.io/v1", "virtualservices", {"apiVersion": "networking.istio.io/v1",
             "kind": "VirtualService", "metadata": {"name": "users-own", "namespace": "istio-system"}})
    platform, lifecycle, installer = make(fake_api, tmp_path)
    endpoint = platform.up()
    prefix = platform.names.prefix
    assert endpoint.http == "http://127.0.0.1:30080" and endpoint.https == "https://127.0.0.1:30443"
    assert installer.log[0] == "install fake" and lifecycle.log == ["ensure"]

    patched = [c.path for c in fake.calls_of("PATCH") if c.query.get("dryRun") != "All"]
    assert all(f"/namespaces/{prefix}-" in p or p.startswith(f"/api/v1/namespaces/{prefix}-") for p in patched)
    assert not any("/namespaces/default" in p for p in patched)
    # Namespaces first, then the agent ConfigMaps, then the rest.
    assert patched[0].startswith("/api/v1/namespaces/") and patched[0].count("/") == 4
    assert f"/api/v1/namespaces/{prefix}-legacy/configmaps/{AGENT_CONFIGMAP}" in patched
    first_deployment = next(i for i, p in enumerate(patched) if "/deployments/" in p)
    assert all(i < first_deployment for i, p in enumerate(patched) if "/configmaps/" in p)
    # Readiness was watched with the run's selector.
    lists = [c for c in fake.calls_of("GET") if c.path.endswith("/pods") and "labelSelector" in c.query]
    assert any(c.query["labelSelector"] == f"{RUN_LABEL}=20261122-061017-run-3fa2c1" for c in lists)

    workloads = {(w.namespace, w.deployment): w for w in platform.workloads()}
    assert workloads[("default", "echo-v1")].sidecar and not workloads[("legacy", "client")].sidecar
    assert not workloads[("default", "echo-optout")].sidecar and workloads[("optin", "echo-v1")].sidecar
    assert workloads[("default", "reviews-v3")].identity == "spiffe://cluster.local/ns/default/sa/bookinfo-reviews"
    described = platform.describe()
    assert described["mesh"]["data_plane_images"] == ["docker.io/istio/proxyv2:1.31.1"]
    assert described["kubernetes"]["gitVersion"] == "v1.36.4" and described["support_note"] is None
    details = "docker.io/istio/examples-bookinfo-details-v1:1.20.3"
    assert details in described["images"]["named_by_tag"]  # named by tag, and what that tag was, as run:
    assert described["images"]["ran"][details].startswith("docker.io/istio/examples-bookinfo-details-v1@sha256:")

    # A test's config: mapped, applied, convergence judged by proxy-status, then deleted.
    fake.calls.clear()
    marker_items = load_manifest("routing/echo-weighted.yaml", "m1", v1=80, v2=20)
    platform.apply(marker_items)
    assert installer.log[-1] == "proxy-status"
    vs_path = f"/apis/networking.istio.io/v1/namespaces/{prefix}-default/virtualservices"
    assert any(c.path.startswith(vs_path) for c in fake.calls_of("PATCH"))
    platform.delete(marker_items)
    assert [c.path for c in fake.calls_of("DELETE")] and not any(p.startswith(vs_path) for p in fake.objects)

    # Vantage: one pod-proxy POST to the client pod of the mapped namespace.
    fake.proxy_handler = lambda path, body: {"responses": [
        {"request_id": r["request_id"], "status": 200, "error": None, "latency": 0.01, "headers": {},
         "body": json.dumps({"namespace": f"{prefix}-default", "version": "v1"}), "path": r["path"]}
        for r in body["requests"]]}
    replies = platform.vantage("legacy/client").send([Request("/", host="echo.default:8080")] * 3)
    assert [r.json()["namespace"] for r in replies] == ["default"] * 3
    post = fake.calls_of("POST")[-1]
    assert post.path == f"/api/v1/namespaces/{prefix}-legacy/pods/client-7f9c8d6b5-x2k9p:15900/proxy/batch"
    assert post.body["requests"][0]["host"] == f"echo.{prefix}-default:8080"

    # request_log from the echo's container log; evidence from the proxy (exec) and its log.
    fake.logs[(f"{prefix}-default", "echo-mirror-7f9c8d6b5-x2k9p", "echo-mirror")] = \
        '{"request_id": "r1", "path": "/m", "pod": "echo-mirror-7f9c8d6b5-x2k9p"}\n'
    assert [r["request_id"] for r in platform.request_log("default", "echo-mirror")] == ["r1"]
    execs: list[tuple[str, ...]] = []

    def fake_exec(namespace: str, pod: str, container: str, command: list[str]) -> str:
        execs.append((namespace, pod, container, *command))
        return json.dumps(ROUTES).replace("mc-x", prefix)
    monkeypatch.setattr(platform.client, "exec", fake_exec)
    fake.logs[(f"{prefix}-default", "echo-v1-7f9c8d6b5-x2k9p", "istio-proxy")] = \
        '[2026-11-22T06:00:05.123Z] "GET /x HTTP/1.1" 200 - via_upstream - "-" 0 1 1 1 "-" "-" "id" "echo:8080" "-"\n'
    found = platform.evidence("default", "echo-v1", ["echo"])["echo-v1-7f9c8d6b5-x2k9p"]
    assert execs == [(f"{prefix}-default", "echo-v1-7f9c8d6b5-x2k9p", "istio-proxy", "pilot-agent", "request", "GET",
                      "config_dump")]
    assert found["routes"][0]["virtual_hosts"][0]["domains"] == ["echo.default.svc.cluster.local"]
    assert found["access_log_tail"].startswith('[2026-11-22T06:00:05.123Z] "GET /x')

    # Diagnostics: written under the platform's folder, Secrets by name and size only.
    from meshconform.suite.tls import issue_server_credential
    credential = issue_server_credential("secure.example.com").secret_data()
    platform.apply(load_manifest("gateway/echo-tls.yaml", "m2", host="secure.example.com", **credential))
    written = platform.diagnostics("a test failed")
    secrets_file = next(p for p in written if p.name == "secrets.json" and p.parent.name == "istio-system")
    assert "echo-tls-credential" in secrets_file.read_text()
    for path in written:
        text = path.read_text(errors="replace")
        assert credential["key"][:40] not in text and credential["crt"][:40] not in text, path
    assert all(str(p).startswith(str(platform.folder)) for p in written)
    assert any(p.name == "kind-logs.txt" for p in written)
    # The run's first failure got the full bundle; the next ones a light one (pods, events, proxies' sync state),
    # each in a folder of its own even within one second, pointing at the full one.
    full = written[0].parent
    assert any(p.parent.name == "logs" for p in written) and any(p.parent.name == "proxies" for p in written)
    fake.calls.clear()
    light = [platform.diagnostics(f"conformance test check-{n} failed") for n in (1, 2)]
    folders = [bundle[0].parent for bundle in light]
    assert len({full, *folders}) == 3 and folders[0].name.endswith("-main-2-check-1")
    assert {p.name for p in light[0]} == {"reason.txt", "full-bundle.txt", "pods.json", "events.json",
                                          "istioctl-proxy-status.json"}
    assert str(full) in (folders[0] / "full-bundle.txt").read_text()
    assert not [c for c in fake.calls if c.path.endswith(("/log", "/exec"))]  # no logs, no config dumps

    platform.down()
    assert lifecycle.log == ["ensure", "teardown"] and "uninstall" in installer.log
    assert not any(f"/{prefix}-" in p for p in fake.objects)  # everything of the run is gone
    assert "/api/v1/namespaces/default" in fake.objects  # the user's objects are not
    assert "/apis/networking.istio.io/v1/namespaces/istio-system/virtualservices/users-own" in fake.objects
    assert not platform.is_up()


def test_a_failed_up_collects_diagnostics_and_removes_what_it_created(fake_api, tmp_path):
    fake, _ = fake_api
    platform, lifecycle, installer = make(fake_api, tmp_path, Installer(fail=True))
    with pytest.raises(PlatformError, match="istiod not ready"):
        platform.up()
    reasons = list((platform.folder / "diagnostics").glob("*/reason.txt"))
    assert reasons and "istiod not ready" in reasons[0].read_text()
    assert lifecycle.log == ["ensure", "teardown"] and fake.calls_of("PATCH") == []


def test_a_rejected_resource_names_its_file_and_leaves_nothing_applied(fake_api, tmp_path, monkeypatch):
    fake, _ = fake_api
    platform, _, _ = make(fake_api, tmp_path)
    platform.up()
    before = set(fake.objects)
    from meshconform.platform.kube.client import ApplyRejected, KubeClient
    real_apply = KubeClient.apply

    def webhook(self, doc, dry_run=False):  # Istio's validating webhook refusing the DestinationRule
        if doc["kind"] == "DestinationRule":
            from meshconform.platform.kube.ownership import ObjectRef
            raise ApplyRejected(ObjectRef.of(doc), '400 admission webhook "validation.istio.io" denied the request')
        return real_apply(self, doc, dry_run)
    monkeypatch.setattr(KubeClient, "apply", webhook)
    items = load_text("""apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: echo, namespace: default}
spec: {hosts: [echo], http: [{route: [{destination: {host: echo}}]}]}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: echo, namespace: default}
spec: {host: echo}
""", "my-config.yaml")
    with pytest.raises(ConfigError) as caught:
        platform.apply(items)
    assert "my-config.yaml: DestinationRule default/echo" in str(caught.value)
    assert "validation.istio.io" in str(caught.value)
    assert set(fake.objects) == before  # the VirtualService was only dry-run
    monkeypatch.undo()
    platform.down()


def test_proxies_that_never_sync_are_named(fake_api, tmp_path):
    platform, _, installer = make(fake_api, tmp_path)
    platform.up()
    installer.status, installer.node_namespace = "ERROR", f"{platform.names.prefix}-default"
    with pytest.raises(PlatformError, match="rejected the configuration"):
        platform.apply(load_manifest("resilience/echo-circuit-breaker.yaml", "m", connections=1, pending=1,
                                     rule_connections=1, rule_pending=1, subset=None))
    installer.status = "SYNCED"
    platform.down()


def test_the_runs_workers_share_one_platform(fake_api, tmp_path):
    """gw0 brings it up, gw1 joins (no second install, same namespaces); the last one out removes everything."""
    fake, kubeconfig = fake_api
    fake.controller = True
    session = tmp_path / "20261122-061017-run-3fa2c1"
    lifecycle, installer = Lifecycle(kubeconfig), Installer()
    workers = [KubePlatform(PlatformContext(session / f"platform-{w}", session, w), lifecycle, installer,
                            manifests=base_manifests()) for w in ("gw0", "gw1")]
    assert [p.up().http for p in workers] == ["http://127.0.0.1:30080"] * 2
    assert installer.log.count("install fake") == 1 and lifecycle.log == ["ensure"]
    assert workers[0].names == workers[1].names
    workers[1].apply(load_manifest("routing/echo-weighted.yaml", "m1", v1=80, v2=20))
    assert {w.deployment for w in workers[0].workloads()} >= {"echo-v1", "client"}
    workers[0].down()  # gw0 finishes first: gw1 still uses the platform
    assert lifecycle.log == ["ensure"] and workers[1].is_up()
    workers[1].down()
    assert lifecycle.log == ["ensure", "teardown"] and installer.log.count("uninstall") == 1
    assert not any(f"/{workers[0].names.prefix}-" in p for p in fake.objects)


def test_a_failed_up_is_not_retried_by_the_other_workers(fake_api, tmp_path):
    fake, kubeconfig = fake_api
    session = tmp_path / "20261122-061017-run-3fa2c1"
    installer = Installer(fail=True)
    first, second = (KubePlatform(PlatformContext(session / f"platform-{w}", session, w), Lifecycle(kubeconfig),
                                  installer, manifests=base_manifests()) for w in ("gw0", "gw1"))
    with pytest.raises(PlatformError, match="istiod not ready"):
        first.up()
    with pytest.raises(PlatformError, match="failed to come up: PlatformError: istiod not ready"):
        second.up()
    assert installer.log.count("install fake") == 1
    assert lifecycle_log(first) == ["ensure", "teardown"]


def lifecycle_log(platform: KubePlatform) -> list[str]:
    assert isinstance(platform.lifecycle, Lifecycle)
    return platform.lifecycle.log


def test_a_mesh_found_only_after_install_is_checked_against_the_clusters_kubernetes(fake_api, tmp_path):
    """`--install none` / a vendor hook: the Istio version is only known once installed; support is judged then
    (before install the note says "unknown"; after it, 1.31.1 on v1.36.4 is supported: no note)."""
    class FoundAfterInstall(Installer):
        def describe(self) -> dict[str, Any]:
            return {**super().describe(), "istio_version": "1.31.1" if self.log else None}
    platform, _, installer = make(fake_api, tmp_path, FoundAfterInstall())
    platform.up()
    assert platform.describe()["support_note"] is None
    platform.down()


def _istio(fake: Any, group: str, plural: str, kind: str, namespace: str, name: str, spec: dict[str, Any],
           labels: dict[str, str] | None = None) -> None:
    fake.put(group, plural, {"apiVersion": group, "kind": kind, "metadata": {
        "name": name, "namespace": namespace, **({"labels": labels} if labels else {})}, "spec": spec})


def test_the_mesh_as_found_on_a_cluster(fake_api, tmp_path):
    """Listed: root-namespace policies, routing exported to every namespace for hosts that can name the suite's
    services, Gateways served by the suite's ingress gateway, strangers in the run's namespaces. Not listed: what
    applies only in another namespace, what is exported elsewhere, the run's own objects. Nothing is changed."""
    fake, _ = fake_api
    fake.put("apps/v1", "deployments", {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {
        "name": "istio-ingressgateway", "namespace": "istio-system"}, "spec": {
        "selector": {"matchLabels": {"istio": "ingressgateway"}},
        "template": {"metadata": {"labels": {"app": "istio-ingressgateway", "istio": "ingressgateway"}}}}})
    net, sec = "networking.istio.io/v1", "security.istio.io/v1"
    _istio(fake, sec, "peerauthentications", "PeerAuthentication", "istio-system", "default",
           {"mtls": {"mode": "STRICT"}})
    _istio(fake, sec, "authorizationpolicies", "AuthorizationPolicy", "shop", "shop-only", {"action": "DENY"})
    _istio(fake, net, "virtualservices", "VirtualService", "shop", "everything", {"hosts": ["*.svc.cluster.local"]})
    _istio(fake, net, "virtualservices", "VirtualService", "shop", "own-reviews", {"hosts": ["reviews"]})
    _istio(fake, net, "virtualservices", "VirtualService", "shop", "kept-home", {"hosts": ["*"], "exportTo": ["."]})
    _istio(fake, net, "gateways", "Gateway", "shop", "shop-gw", {"selector": {"istio": "ingressgateway"}})
    _istio(fake, net, "gateways", "Gateway", "shop", "other-gw", {"selector": {"istio": "eastwestgateway"}})
    _istio(fake, "networking.istio.io/v1alpha3", "envoyfilters", "EnvoyFilter", "istio-system", "lua", {})
    platform, _, _ = make(fake_api, tmp_path)
    platform.up()
    try:
        prefix = platform.names.prefix
        _istio(fake, net, "destinationrules", "DestinationRule", f"{prefix}-default", "stranger", {"host": "echo"})
        _istio(fake, net, "virtualservices", "VirtualService", f"{prefix}-default", "a-tests-own", {"hosts": ["echo"]},
               {RUN_LABEL: platform.run_id})
        before = json.dumps(fake.objects, sort_keys=True)
        fake.calls.clear()
        listed = {f.ref: f.scope for f in platform.found_config()}
        assert listed == {
            "PeerAuthentication istio-system/default": "mesh-wide: root namespace istio-system",
            "EnvoyFilter istio-system/lua": "mesh-wide: root namespace istio-system",
            "VirtualService shop/everything": "namespace shop, exported to every namespace, for hosts "
                                              "*.svc.cluster.local",
            "Gateway shop/shop-gw": "namespace shop, served by the ingress gateway the suite uses",
            "DestinationRule default/stranger": "namespace default (one of the run's), not the run's own"}
        assert {c.method for c in fake.calls} == {"GET"} and json.dumps(fake.objects, sort_keys=True) == before
    finally:
        platform.down()


def test_request_records_come_only_from_the_testbed_agent(fake_api, tmp_path):
    """Istio's Bookinfo images log plain text: asking for their request records is a RequestsNotRecorded naming the
    image (checks built on them report themselves not applicable), while the agent's echo answers."""
    from meshconform.platform.api import RequestsNotRecorded
    fake, _ = fake_api
    platform, _, _ = make(fake_api, tmp_path)
    platform.up()
    try:
        with pytest.raises(RequestsNotRecorded, match=r"default/productpage-v1 \(docker.io/istio/examples-bookinfo-"
                                                      r"productpage-v1:1.20.3\) keeps no request records"):
            platform.request_log("default", "productpage-v1")
        echo = (platform.names.real("default"), "echo-v1-7f9c8d6b5-x2k9p", "echo")
        fake.logs[echo] = '{"time": 1, "pod": "echo-v1-7f9c8d6b5-x2k9p", "request_id": "r1", "status": 200}\n'
        assert [r["request_id"] for r in platform.request_log("default", "echo-v1")] == ["r1"]  # the agent's
        # Read again: only the seconds since the last read, with the kubelet's timestamps; r1 not counted twice.
        fake.logs[echo] += '{"time": 2, "pod": "echo-v1-7f9c8d6b5-x2k9p", "request_id": "r2", "status": 200}\n'
        assert [r["request_id"] for r in platform.request_log("default", "echo-v1")] == ["r1", "r2"]
        reads = [c.query for c in fake.calls if c.path.endswith(f"/pods/{echo[1]}/log")]
        assert reads[0].get("timestamps") == "true" and "sinceSeconds" not in reads[0]
        assert reads[-1]["timestamps"] == "true" and int(reads[-1]["sinceSeconds"]) >= 5
    finally:
        platform.down()
