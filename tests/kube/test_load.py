"""`meshconform perf` on the Kubernetes platforms, by contract (no cluster here): the kubelet's resource metrics
parsed, the proxies' CPU and working set read through the API server's node proxy (path, verb, Accept, the run's
label selector, the refusal without RBAC), the NodePort Services published for 'mesh' and 'no-mesh' (documents,
ownership, deletion with the run), perf's no-mesh Bookinfo left without sidecars, and what each platform refuses.

The kubelet text is shaped after pkg/kubelet/metrics/collectors/resource_metrics.go (STABLE descriptors, labels
container/pod/namespace, a millisecond timestamp after each value) and the Prometheus text format 0.0.4."""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any

import pytest
from installer_standin import InstallsNothing

from meshconform.errors import PlatformError
from meshconform.perf.targets import PLAIN_NAMESPACE, plain_bookinfo
from meshconform.platform.api import SupportsLoad
from meshconform.platform.kube import load, resource_metrics
from meshconform.platform.kube.contracts import ClusterAccess, ClusterLifecycle, MeshInstaller
from meshconform.platform.kube.ownership import RUN_LABEL
from meshconform.platform.kube.platform import KubePlatform
from meshconform.platform.local.platform import base_manifests
from meshconform.platform.registry import PlatformContext

RUN = "20261122-061017-run-3fa2c1"
NODE = "meshconform-control-plane"
GATEWAY_POD = "istio-ingressgateway-5d8f9c7b6-q7w2e"


def kubelet_text(prefix: str, cpu: float = 12.5, ts: int = 1_795_000_000_000) -> str:
    """One scrape of the node (data/kubelet-metrics-resource.txt): our proxies, the app containers beside them,
    istiod, and another team's proxy."""
    template = string.Template((Path(__file__).parent / "data" / "kubelet-metrics-resource.txt").read_text())
    return template.substitute(ours=f"{prefix}-default", cpu=cpu, ts=ts, gateway=GATEWAY_POD)


# ---------------------------------------------------------------- the text format

def test_the_two_metrics_are_parsed_with_their_labels_values_and_timestamps() -> None:
    found = {(c.namespace, c.pod, c.container): c for c in resource_metrics.containers(kubelet_text("mc-x"))}
    proxy = found[("mc-x-default", "productpage-v1-7f9c8d6b5-x2k9p", "istio-proxy")]
    assert proxy.cpu_seconds == 12.5 and proxy.working_set_bytes == 46_137_344
    assert proxy.cpu_read_at == 1_795_000_000.0
    assert found[("istio-system", "istiod-6c9d8b7f5-abcde", "discovery")].working_set_bytes is None  # CPU only
    assert len(found) == 5  # container_start_time_seconds and scrape_error are not read


def test_label_values_keep_their_escapes_and_separators() -> None:
    text = ('container_cpu_usage_seconds_total{ container="a\\"b" , namespace="n\\\\s",pod="p,}{x\\ny",} '
            '+Inf\ncontainer_memory_working_set_bytes{container="c",namespace="n",pod="p"}\t7\n')
    first, second = resource_metrics.samples(text)
    assert first.labels == {"container": 'a"b', "namespace": "n\\s", "pod": "p,}{x\ny"}
    assert first.value == float("inf") and first.timestamp_ms is None
    assert (second.labels["container"], second.value) == ("c", 7.0)
    assert resource_metrics.containers(text)[0].container == "c"  # an infinite counter is no figure


@pytest.mark.parametrize("line, says", [
    ('container_cpu_usage_seconds_total{container="a" 1', "expected , or }"),
    ('container_cpu_usage_seconds_total{container="a} 1', "unterminated"),
    ('container_cpu_usage_seconds_total{container="a\\t"} 1', "unknown escape"),
    ('container_cpu_usage_seconds_total{container="a"} one', "not a number"),
    ('container_cpu_usage_seconds_total{container="a"}', "expected a value"),
    ('container_cpu_usage_seconds_total{container="a"}1', "expected a value"),
    ('container_memory_working_set_bytes{9="a"} 1', "label name"),
])
def test_a_malformed_line_of_a_wanted_metric_is_named(line: str, says: str) -> None:
    with pytest.raises(resource_metrics.MetricsFormatError) as caught:
        resource_metrics.samples(f"# TYPE x gauge\nother_metric{{broken 1\n{line}\n")
    assert "line 3" in str(caught.value) and says in str(caught.value)


# ---------------------------------------------------------------- the platform against the fake API server

class ClusterOnly:
    """A user's cluster: nothing published on this host (no `published_node_port`)."""

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
        return ("127.0.0.1", 30080, 30443)


class KindLike(ClusterOnly):
    """kind's published ports, as KindLifecycle reads them back (`docker port`): the optional contract member."""

    published = {30090: ("127.0.0.1", 41237), 30091: ("127.0.0.1", 41238)}

    def published_node_port(self, node_port: int) -> tuple[str, int] | None:
        return self.published.get(node_port)


def make(fake_api: Any, tmp_path: Path, lifecycle_class: type[ClusterOnly], name: str) -> KubePlatform:
    fake, kubeconfig = fake_api
    fake.controller = True
    folder = tmp_path / RUN / "platform-main"
    lifecycle: ClusterLifecycle = lifecycle_class(kubeconfig)
    installer: MeshInstaller = InstallsNothing()
    return KubePlatform(PlatformContext(folder, folder.parent, "main"), lifecycle, installer, name=name,
                        manifests=base_manifests())


def add_gateway(fake: Any) -> None:
    """Istio's ingress gateway as installed (istio-system, not the run's): its Deployment and one pod on the node."""
    fake.put("apps/v1", "deployments", {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {
        "name": "istio-ingressgateway", "namespace": "istio-system"},
        "spec": {"selector": {"matchLabels": {"istio": "ingressgateway"}}}})
    fake.put("v1", "pods", {"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": GATEWAY_POD, "namespace": "istio-system",
        "labels": {"istio": "ingressgateway", "pod-template-hash": "5d8f9c7b6"},
        "ownerReferences": [{"kind": "ReplicaSet", "name": "istio-ingressgateway-5d8f9c7b6", "controller": True}]},
        "spec": {"nodeName": NODE, "containers": [{"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.31.1"}]},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}})


def test_proxy_usage_reads_the_kubelet_through_the_node_proxy(fake_api, tmp_path):
    fake, _ = fake_api
    add_gateway(fake)
    platform = make(fake_api, tmp_path, KindLike, "kind")
    platform.up()
    prefix = platform.names.prefix
    assert isinstance(platform, SupportsLoad)
    fake.node_metrics[NODE] = kubelet_text(prefix)
    fake.calls.clear()
    usage = platform.proxy_usage()
    # Only istio-proxy containers of the run's pods and the gateway's, keyed as the suite names namespaces.
    assert set(usage) == {"default/productpage-v1-7f9c8d6b5-x2k9p", f"istio-system/{GATEWAY_POD}"}
    page = usage["default/productpage-v1-7f9c8d6b5-x2k9p"]
    assert (page.cpu_seconds, page.memory_bytes, page.cpu_read_at) == (12.5, 46_137_344, 1_795_000_000.0)
    assert "working set" in page.memory_metric and "not the resident set size" in page.memory_metric
    assert "/metrics/resource" in page.source and "kubelet" in page.source
    assert usage[f"istio-system/{GATEWAY_POD}"].memory_bytes == 52_428_800
    scrape = [c for c in fake.calls if c.path.startswith("/api/v1/nodes/")]
    assert [(c.method, c.path) for c in scrape] == [("GET", f"/api/v1/nodes/{NODE}/proxy/metrics/resource")]
    assert scrape[0].accept == "text/plain"
    pod_lists = [c for c in fake.calls_of("GET") if c.path.endswith("/pods")]
    run_lists = [c for c in pod_lists if c.path.startswith(f"/api/v1/namespaces/{prefix}-")]
    assert run_lists and all(c.query["labelSelector"] == f"{RUN_LABEL}={RUN}" for c in run_lists)
    assert any(c.path == "/api/v1/namespaces/istio-system/pods" and c.query["labelSelector"] == "istio=ingressgateway"
               for c in pod_lists)

    # The next sample (within the refresh interval) is one GET per node, no pod lists.
    fake.calls.clear()
    fake.node_metrics[NODE] = kubelet_text(prefix, cpu=13.75, ts=1_795_000_010_000)
    later = platform.proxy_usage()
    assert later["default/productpage-v1-7f9c8d6b5-x2k9p"].cpu_seconds == 13.75
    assert [c.path for c in fake.calls_of("GET")] == [f"/api/v1/nodes/{NODE}/proxy/metrics/resource"]
    platform.down()


def test_without_nodes_proxy_rbac_the_error_names_the_permission(fake_api, tmp_path):
    fake, _ = fake_api
    fake.forbidden_node_proxy = True
    platform = make(fake_api, tmp_path, KindLike, "kind")
    platform.up()
    with pytest.raises(PlatformError) as caught:
        platform.proxy_usage()
    message = str(caught.value)
    assert f"/api/v1/nodes/{NODE}/proxy/metrics/resource" in message and "403" in message
    assert "'get' on 'nodes/proxy'" in message and "ClusterRole" in message
    platform.down()


def test_a_malformed_scrape_names_the_node_and_line(fake_api, tmp_path):
    fake, _ = fake_api
    fake.node_metrics[NODE] = 'container_memory_working_set_bytes{pod="p" 1\n'
    platform = make(fake_api, tmp_path, KindLike, "kind")
    platform.up()
    with pytest.raises(PlatformError, match=f"nodes/{NODE}/proxy/metrics/resource: line 1"):
        platform.proxy_usage()
    platform.down()


def test_kind_publishes_mesh_and_no_mesh_through_nodeport_services(fake_api, tmp_path):
    fake, _ = fake_api
    platform = make(fake_api, tmp_path, KindLike, "kind")
    platform.up()
    prefix = platform.names.prefix
    assert set(platform.unavailable_load_targets()) == {"in-mesh"}

    # perf's no-mesh twin: its own namespace of the run, labelled so that nothing is injected there.
    fake.calls.clear()
    platform.apply(plain_bookinfo())
    plain = f"{prefix}-{PLAIN_NAMESPACE}"
    namespace_patch = next(c for c in fake.calls_of("PATCH") if c.path == f"/api/v1/namespaces/{plain}")
    assert namespace_patch.body["metadata"]["labels"]["istio-injection"] == "disabled"
    assert namespace_patch.body["metadata"]["labels"][RUN_LABEL] == RUN
    assert not any("/namespaces/default/" in c.path or c.path.endswith("/namespaces/default")
                   for c in fake.calls_of("PATCH"))
    twin = fake.objects[f"/api/v1/namespaces/{plain}/pods/productpage-v1-7f9c8d6b5-x2k9p"]
    assert "initContainers" not in twin["spec"] and [c["name"] for c in twin["spec"]["containers"]] == ["productpage"]

    fake.calls.clear()
    targets = platform.load_targets("productpage", 9080, PLAIN_NAMESPACE)
    assert {n: (t.base_url, t.host, t.meshed) for n, t in targets.items()} == {
        "ingress": ("http://127.0.0.1:30080", None, True),
        "mesh": ("http://127.0.0.1:41237", None, True),
        "no-mesh": ("http://127.0.0.1:41238", None, False)}
    applied = {c.path: c for c in fake.calls_of("PATCH") if c.query.get("dryRun") != "All"}
    dry = {c.path for c in fake.calls_of("PATCH") if c.query.get("dryRun") == "All"}
    for name, namespace, node_port in (("meshconform-perf-mesh", f"{prefix}-default", 30090),
                                       ("meshconform-perf-nomesh", plain, 30091)):
        path = f"/api/v1/namespaces/{namespace}/services/{name}"
        assert path in applied and path in dry  # server-side apply after a dry run
        body = applied[path].body
        assert body["metadata"]["labels"][RUN_LABEL] == RUN
        assert body["spec"] == {"type": "NodePort", "selector": {"app": "productpage"}, "ports": [
            {"name": "http", "protocol": "TCP", "port": 9080, "targetPort": 9080, "nodePort": node_port}]}
    assert len(applied) == 2

    # Deleted with the run, like everything it applied.
    platform.down()
    assert not any(f"/{prefix}-" in p for p in fake.objects)


def test_the_no_mesh_twin_with_a_sidecar_is_refused(fake_api, tmp_path):
    """If the mesh injected the twin anyway (e.g. a mutating webhook ignoring the label), no-mesh would measure a
    sidecar: refused, naming the namespace."""
    fake, _ = fake_api
    platform = make(fake_api, tmp_path, KindLike, "kind")
    platform.up()
    platform.apply(plain_bookinfo())
    plain = f"{platform.names.prefix}-{PLAIN_NAMESPACE}"
    pod = fake.objects[f"/api/v1/namespaces/{plain}/pods/productpage-v1-7f9c8d6b5-x2k9p"]
    pod["spec"]["initContainers"] = [{"name": "istio-proxy", "restartPolicy": "Always"}]
    with pytest.raises(PlatformError, match=f"'no-mesh'.*{PLAIN_NAMESPACE} \\({plain}\\) have a sidecar"):
        platform.load_targets("productpage", 9080, PLAIN_NAMESPACE)
    platform.down()


def test_a_users_cluster_offers_only_the_ingress_and_creates_nothing(fake_api, tmp_path):
    fake, _ = fake_api
    platform = make(fake_api, tmp_path, ClusterOnly, "cluster")
    missing = platform.unavailable_load_targets()  # answerable before up: by design
    assert set(missing) == {"in-mesh", "mesh", "no-mesh"}
    assert "cluster platform cannot publish" in missing["mesh"] and "outside the cluster" in missing["in-mesh"]
    platform.up()
    fake.calls.clear()
    targets = platform.load_targets("productpage", 9080, PLAIN_NAMESPACE)
    assert list(targets) == ["ingress"] and targets["ingress"].base_url == "http://127.0.0.1:30080"
    assert fake.calls_of("PATCH") == []
    platform.down()


def test_nodeport_service_refuses_what_it_cannot_publish() -> None:
    live = {"metadata": {"name": "productpage", "namespace": "mc-x-default"},
            "spec": {"selector": {"app": "productpage"}, "ports": [{"port": 9080, "targetPort": "http"}]}}
    with pytest.raises(PlatformError, match="targetPort 'http' is a name"):
        load.nodeport_service("mesh", live, 9080, "default")
    with pytest.raises(PlatformError, match="has no port 9081"):
        load.nodeport_service("mesh", live, 9081, "default")
    with pytest.raises(PlatformError, match="has no selector"):
        load.nodeport_service("mesh", {"metadata": {}, "spec": {"ports": [{"port": 9080}]}}, 9080, "default")
    assert json.dumps(load.nodeport_service("no-mesh", {"spec": {"selector": {"a": "b"}, "ports": [{"port": 1}]}}, 1,
                                            "x")["spec"]["ports"]) == \
        '[{"name": "http", "protocol": "TCP", "port": 1, "targetPort": 1, "nodePort": 30091}]'


def test_perfs_documents_are_valid_for_kubernetes_and_istio_as_sent() -> None:
    """The ingress route, the no-mesh Bookinfo and both NodePort Services, mapped and labelled as the platform
    sends them, against Kubernetes 1.36's OpenAPI schemas and Istio's CRD schemas (offline, validation.py)."""
    from meshconform.meshapi.loader import load_text
    from meshconform.perf.targets import INGRESS_ROUTE
    from meshconform.platform.kube import apply as applying
    from meshconform.platform.kube import validation
    from meshconform.platform.kube.names import NamespaceMap
    live = {"metadata": {"name": "productpage", "namespace": "mc-3fa2c1-default"},
            "spec": {"selector": {"app": "productpage"}, "ports": [{"name": "http", "port": 9080}]}}
    services = load_text("\n---\n".join(json.dumps(load.nodeport_service(t, live, 9080, ns)) for t, ns in
                                      (("mesh", "default"), ("no-mesh", PLAIN_NAMESPACE))), "perf services")
    items = [*load_text(INGRESS_ROUTE, "perf route"), *plain_bookinfo(), *services]
    sent = applying.prepare(items, NamespaceMap("mc-3fa2c1"), RUN, ["default"])
    findings = validation.validate([(p.logical, p.document) for p in sent])
    assert not findings, "\n".join(map(str, findings))
    kinds = sorted({p.ref.kind for p in sent})
    assert kinds == ["Deployment", "Gateway", "Namespace", "Service", "ServiceAccount", "VirtualService"]
    assert {p.ref.namespace for p in sent if p.ref.kind == "Service" and p.ref.name.startswith("meshconform-perf")} \
        == {"mc-3fa2c1-default", f"mc-3fa2c1-{PLAIN_NAMESPACE}"}
