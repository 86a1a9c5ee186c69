"""Contract tests of the mesh installers against stand-in istioctl, helm and vendor-hook executables: the
exact command lines, what is installed once for all workers and removed only if this run installed it,
an existing mesh never overwritten, and failures cleaned up and named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import recorded_output as rec
import yaml

from meshconform.platform.kind import installers, tools
from meshconform.platform.kind.installers import (
    HelmInstaller,
    IstioctlInstaller,
    MeshAlreadyInstalled,
    MeshNotFound,
    PreinstalledMesh,
    VendorHook,
)
from meshconform.platform.kube.contracts import ClusterAccess

KUBE = ["--kubeconfig", "/k/config", "--context", "kind-meshconform"]
ACCESS = ClusterAccess(Path("/k/config"), "kind-meshconform")


def istioctl_rules(before: str = rec.ISTIOCTL_VERSION_NO_MESH, install: dict | None = None) -> list[dict]:
    return [{"args": ["version", "--remote=false"], "stdout": rec.ISTIOCTL_CLIENT_VERSION},
            {"args": ["version", "-o", "json"], "stdout": before, "once": True},
            {"args": ["version", "-o", "json"], "stdout": rec.istioctl_mesh_version()},
            install or {"args": ["install"], "stdout": rec.ISTIOCTL_INSTALL_STDOUT},
            {"args": ["uninstall"], "stdout": rec.ISTIOCTL_UNINSTALL_STDOUT},
            {"args": ["proxy-status", "-o", "json"], "stdout": rec.ISTIOCTL_PROXY_STATUS_JSON},
            {"args": ["proxy-status"], "stdout": rec.ISTIOCTL_PROXY_STATUS},
            {"args": ["analyze"], "stderr": rec.ISTIOCTL_ANALYZE_FINDINGS, "exit": 79}]


def build(cls, tmp_path: Path, make_settings, worker: str = "main", on_kind: bool = True, **values):
    mesh, _ = make_settings(istioctl_binary="istioctl", helm_binary="helm", **values)
    return cls(mesh, tmp_path / "run" / f"platform-{worker}", tmp_path / "run", worker, on_kind=on_kind)


def test_istioctl_install_and_uninstall_exact_commands(standins, tmp_path: Path, make_settings) -> None:
    standins.tool("istioctl", istioctl_rules())
    installer = build(IstioctlInstaller, tmp_path, make_settings, readiness_timeout="420")
    installer.install(ACCESS)
    overlay = tmp_path / "run" / "platform-main" / "istio-install-gateway.yaml"
    assert standins.argvs() == [
        ["istioctl", "version", "--remote=false", "-o", "json"],
        ["istioctl", "version", "-o", "json", *KUBE],
        ["istioctl", "install", "-y", "-f", str(overlay), "--set", "profile=default", "--set", "hub=docker.io/istio",
         "--set", "meshConfig.accessLogFile=/dev/stdout", "--readiness-timeout", "420s", *KUBE],
        ["istioctl", "version", "-o", "json", *KUBE]]
    values = yaml.safe_load(overlay.read_text())["spec"]["values"]
    service = values["gateways"]["istio-ingressgateway"]
    assert service["type"] == "NodePort"
    assert {p["name"]: (p["port"], p["targetPort"], p.get("nodePort")) for p in service["ports"]} == \
        {"status-port": (15021, 15021, None), "http2": (80, 8080, 30080), "https": (443, 8443, 30443)}
    # on kind, requests that fit a 2-vCPU runner: Istio's demo-profile values, no autoscaling
    assert values["global"]["proxy"]["resources"] == {"requests": {"cpu": "10m", "memory": "40Mi"}}
    assert values["pilot"] == {"autoscaleEnabled": False, "resources": {"requests": {"cpu": "10m",
                                                                                     "memory": "100Mi"}}}
    assert service["resources"] == {"requests": {"cpu": "10m", "memory": "40Mi"}} and not service["autoscaleEnabled"]
    described = installer.describe()
    assert described["installed_by_meshconform"] and described["hub"] == "docker.io/istio"
    assert described["control_plane"] == [{"component": "pilot", "revision": "default", "version": "1.31.1"}]
    installer.uninstall(ACCESS)
    assert standins.argvs()[-1] == ["istioctl", "uninstall", "-y", "--purge", *KUBE]


def test_on_a_cluster_the_gateway_is_the_profiles_own(standins, tmp_path: Path, make_settings) -> None:
    """Not kind: no overlay (the default profile's LoadBalancer Service, nodePorts allocated by Kubernetes: a fixed
    one collides on a shared cluster), no change to the requests; Helm's gateway keeps pod ports 8080/8443 only."""
    standins.tool("istioctl", istioctl_rules())
    installer = build(IstioctlInstaller, tmp_path, make_settings, on_kind=False)
    installer.install(ACCESS)
    install = next(a for a in standins.argvs() if a[1] == "install")
    assert "-f" not in install and not any("resources" in a for a in install)
    assert not installer.overlay_path().exists()
    helm = build(HelmInstaller, tmp_path / "h", make_settings, on_kind=False, install="helm")
    values = yaml.safe_load(helm.values_text())
    assert values == {"service": {"ports": [
        {"name": "status-port", "port": 15021, "targetPort": 15021, "protocol": "TCP"},
        {"name": "http2", "port": 80, "targetPort": 8080, "protocol": "TCP"},
        {"name": "https", "port": 443, "targetPort": 8443, "protocol": "TCP"}]}}
    assert not any("resources" in a for _, _, extra in helm.releases() for a in extra)
    hook = VendorHook("/bin/true", installer.mesh, tmp_path / "v", tmp_path / "v", "main", on_kind=False)
    assert not [k for k in hook.env(ACCESS) if "NODEPORT" in k]


def test_a_revision_is_installed_and_uninstalled_alone(standins, tmp_path: Path, make_settings) -> None:
    standins.tool("istioctl", istioctl_rules(before=rec.istioctl_mesh_version("1.30.3", "default")))
    installer = build(IstioctlInstaller, tmp_path, make_settings, istio_revision="canary")
    installer.install(ACCESS)  # another revision is there: installing beside it is allowed
    install = [a for a in standins.argvs() if a[1] == "install"][0]
    assert install[install.index("--revision") + 1] == "canary"
    installer.uninstall(ACCESS)
    assert standins.argvs()[-1] == ["istioctl", "uninstall", "-y", "--revision", "canary", *KUBE]


def test_an_existing_mesh_is_never_overwritten(standins, tmp_path: Path, make_settings) -> None:
    standins.tool("istioctl", istioctl_rules(before=rec.istioctl_mesh_version("1.30.3")))
    installer = build(IstioctlInstaller, tmp_path, make_settings)
    with pytest.raises(MeshAlreadyInstalled, match="default=1.30.3.*--install none"):
        installer.install(ACCESS)
    assert not [a for a in standins.argvs() if a[1] in ("install", "uninstall")]


def test_the_same_version_already_there_is_reused_and_left(standins, tmp_path: Path, make_settings) -> None:
    standins.tool("istioctl", istioctl_rules(before=rec.istioctl_mesh_version("1.31.1")))  # e.g. a kept cluster
    installer = build(IstioctlInstaller, tmp_path, make_settings)
    installer.install(ACCESS)
    installer.uninstall(ACCESS)
    assert not [a for a in standins.argvs() if a[1] in ("install", "uninstall")]
    assert installer.describe()["installed_by_meshconform"] is False


def test_a_failed_install_is_removed_and_named(standins, tmp_path: Path, make_settings) -> None:
    standins.tool("istioctl", istioctl_rules(install={"args": ["install"], "stderr": rec.ISTIOCTL_INSTALL_FAILED_STDERR,
                                                      "exit": 1}))
    installer = build(IstioctlInstaller, tmp_path, make_settings)
    with pytest.raises(tools.ToolFailed) as caught:
        installer.install(ACCESS)
    assert "ImagePullBackOff" in str(caught.value) and "--readiness-timeout" in str(caught.value)
    assert standins.argvs()[-1][:4] == ["istioctl", "uninstall", "-y", "--purge"]


def test_workers_install_once_and_the_last_uninstalls(standins, tmp_path: Path, make_settings) -> None:
    standins.tool("istioctl", istioctl_rules())
    first, second = (build(IstioctlInstaller, tmp_path, make_settings, worker=w) for w in ("gw0", "gw1"))
    first.install(ACCESS)
    second.install(ACCESS)
    assert len([a for a in standins.argvs() if a[1] == "install"]) == 1
    first.uninstall(ACCESS)
    assert not [a for a in standins.argvs() if a[1] == "uninstall"]
    second.uninstall(ACCESS)
    assert len([a for a in standins.argvs() if a[1] == "uninstall"]) == 1


def test_no_uninstall_when_kept_or_when_the_cluster_goes(standins, tmp_path: Path, make_settings) -> None:
    standins.tool("istioctl", istioctl_rules())
    kept = build(IstioctlInstaller, tmp_path / "a", make_settings, keep_mesh=True)
    kept.install(ACCESS)
    kept.uninstall(ACCESS)
    standins.tool("istioctl", istioctl_rules())
    going = build(IstioctlInstaller, tmp_path / "b", make_settings)
    going.cluster_goes_away = lambda: True
    going.install(ACCESS)
    going.uninstall(ACCESS)
    assert not [a for a in standins.argvs() if a[1] == "uninstall"]


def test_diagnostics_keep_analyze_findings(standins, tmp_path: Path, make_settings) -> None:
    standins.tool("istioctl", istioctl_rules())
    installer = build(IstioctlInstaller, tmp_path, make_settings)
    files = installer.diagnostics(ACCESS, tmp_path / "diag")
    assert [f.name for f in files] == ["istioctl-proxy-status.txt", "istioctl-analyze.txt", "istioctl-version.json"]
    assert "productpage-v1" in files[0].read_text()
    analyze = files[1].read_text()
    assert "IST0101" in analyze and not analyze.startswith("# exit")  # 79 = findings, a result not a failure
    assert ["istioctl", "analyze", "-A", *KUBE] in standins.argvs()
    status = installer.proxy_status(ACCESS)
    assert status == rec.ISTIOCTL_PROXY_STATUS_JSON and json.loads(status)["resources"][0]["genericXdsConfigs"]
    assert standins.argvs()[-1] == ["istioctl", "proxy-status", "-o", "json", *KUBE]
    standins.tool("istioctl", [{"args": ["version"], "stdout": rec.ISTIOCTL_CLIENT_VERSION},
                               {"args": ["proxy-status"], "exit": 1,
                                "stderr": "Error: no running Istio pods in \"istio-system\"\n"}])
    assert build(IstioctlInstaller, tmp_path / "b", make_settings).proxy_status(ACCESS) is None


def test_helm_installs_base_istiod_gateway_in_order(standins, tmp_path: Path, make_settings) -> None:
    standins.tool("istioctl", istioctl_rules())
    standins.tool("helm", [{"args": ["version", "--short"], "stdout": rec.HELM_VERSION},
                           {"args": ["list"], "stdout": "[]\n"},
                           *[{"args": ["install", r], "stdout": rec.helm_install_stdout(r)}
                             for r in ("istio-base", "istiod", "istio-ingressgateway")],
                           {"args": ["uninstall"], "stdout": "release \"x\" uninstalled\n"}])
    installer = build(HelmInstaller, tmp_path, make_settings, install="helm", readiness_timeout="300")
    installer.install(ACCESS)
    helm_kube = ["--kubeconfig", "/k/config", "--kube-context", "kind-meshconform"]
    repo = ["--repo", "https://blob.istio.io/istio-release/charts", "--version", "1.31.1",
            "--namespace", "istio-system"]
    values = tmp_path / "run" / "platform-main" / "istio-gateway-values.yaml"
    wait = ["--wait", "--timeout", "300s"]
    assert standins.argvs() == [
        ["helm", "version", "--short"],
        ["helm", "list", "--namespace", "istio-system", "--all", "-o", "json", *helm_kube],
        ["istioctl", "version", "--remote=false", "-o", "json"],
        ["istioctl", "version", "-o", "json", *KUBE],
        ["helm", "install", "istio-base", "base", *repo, "--create-namespace", "--set", "defaultRevision=default",
         *helm_kube],
        ["helm", "install", "istiod", "istiod", *repo, "--set", "hub=docker.io/istio", "--set",
         "global.hub=docker.io/istio", "--set", "meshConfig.accessLogFile=/dev/stdout",
         "--set", "global.proxy.resources.requests.cpu=10m", "--set", "global.proxy.resources.requests.memory=40Mi",
         "--set", "pilot.autoscaleEnabled=false", "--set", "pilot.resources.requests.cpu=10m",
         "--set", "pilot.resources.requests.memory=100Mi", *wait, *helm_kube],
        ["helm", "install", "istio-ingressgateway", "gateway", *repo, "-f", str(values), *wait, *helm_kube]]
    chart_values = yaml.safe_load(values.read_text())
    service = chart_values["service"]
    assert service["type"] == "NodePort" and [p.get("nodePort") for p in service["ports"]] == [None, 30080, 30443]
    assert chart_values["resources"] == {"requests": {"cpu": "10m", "memory": "40Mi"}}
    installer.uninstall(ACCESS)
    assert [a[2] for a in standins.argvs()[-3:]] == ["istio-ingressgateway", "istiod", "istio-base"]
    assert standins.argvs()[-1] == ["helm", "uninstall", "istio-base", "--namespace", "istio-system", "--wait",
                                    *helm_kube]


def test_helm_refuses_existing_releases_and_cleans_up_a_failure(standins, tmp_path: Path, make_settings) -> None:
    standins.tool("istioctl", istioctl_rules())
    standins.tool("helm", [{"args": ["version", "--short"], "stdout": rec.HELM_VERSION},
                           {"args": ["list"], "stdout": rec.helm_list("istiod")}])
    with pytest.raises(MeshAlreadyInstalled, match="istiod already exist"):
        build(HelmInstaller, tmp_path / "a", make_settings, install="helm").install(ACCESS)
    standins.tool("helm", [{"args": ["version", "--short"], "stdout": rec.HELM_VERSION},
                           {"args": ["list"], "stdout": "[]"},
                           {"args": ["install", "istio-base"], "stdout": rec.helm_install_stdout("istio-base")},
                           {"args": ["install", "istiod"], "stderr": rec.HELM_CONFLICT_STDERR, "exit": 1},
                           {"args": ["uninstall"], "stdout": ""}])
    with pytest.raises(tools.ToolFailed, match="invalid ownership metadata"):
        build(HelmInstaller, tmp_path / "b", make_settings, install="helm").install(ACCESS)
    assert standins.argvs()[-1][:3] == ["helm", "uninstall", "istio-base"]
    standins.tool("helm", [{"args": ["version", "--short"], "stdout": rec.HELM_VERSION},
                           {"args": ["list"], "stdout": "[]"}])
    standins.tool("istioctl", istioctl_rules(before=rec.istioctl_mesh_version("1.30.3")))  # istioctl-installed
    with pytest.raises(MeshAlreadyInstalled, match="default=1.30.3"):
        build(HelmInstaller, tmp_path / "c", make_settings, install="helm").install(ACCESS)


def test_helm_list_output_cut_short_is_named(standins, tmp_path: Path, make_settings) -> None:
    standins.tool("helm", [{"args": ["version", "--short"], "stdout": rec.HELM_VERSION},
                           {"args": ["list"], "stdout": '[{"name": "ist'}])
    with pytest.raises(tools.ToolOutputError, match="unreadable JSON"):
        build(HelmInstaller, tmp_path, make_settings, install="helm").install(ACCESS)


def test_none_finds_the_installed_mesh_and_never_touches_it(standins, tmp_path: Path, make_settings) -> None:
    standins.tool("istioctl", istioctl_rules(before=rec.istioctl_mesh_version("1.30.3")))
    installer = build(PreinstalledMesh, tmp_path, make_settings, install="none")
    installer.install(ACCESS)
    installer.uninstall(ACCESS)
    assert {a[1] for a in standins.argvs()} == {"version"}
    assert installer.describe()["control_plane"][0]["version"] == "1.30.3"
    assert installer.describe()["istio_version"] == "1.30.3"  # found, not the --istio-version default
    standins.tool("istioctl", istioctl_rules())
    with pytest.raises(MeshNotFound, match="--install none: no Istio control plane"):
        build(PreinstalledMesh, tmp_path / "b", make_settings, install="none").install(ACCESS)


def test_vendor_hook_contract(standins, tmp_path: Path, make_settings) -> None:
    hook = standins.tool("vendor-hook", [{"args": ["version"], "stdout": "acme-mesh 2.4.1 (istio 1.31.1)\n"},
                                         {"args": ["install"], "stdout": "installed\n"},
                                         {"args": ["cleanup"], "stdout": "removed\n"}])
    standins.tool("istioctl", istioctl_rules(before=rec.istioctl_mesh_version("1.31.1-acme.2")))
    mesh, _ = make_settings(install=str(hook), istioctl_binary="istioctl", istio_revision="acme")
    installer = VendorHook(str(hook), mesh, tmp_path / "run" / "p", tmp_path / "run", "main", on_kind=True)
    installer.install(ACCESS)
    installer.uninstall(ACCESS)
    assert [a[1:] for a in standins.argvs("vendor-hook")] == [["version"], ["install"], ["cleanup"]]
    env = standins.calls("vendor-hook")[1]["env"]
    assert env["KUBECONFIG"] == "/k/config" and env["MESHCONFORM_KUBE_CONTEXT"] == "kind-meshconform"
    assert env["MESHCONFORM_ISTIO_REVISION"] == "acme" and env["MESHCONFORM_INGRESS_HTTP_NODEPORT"] == "30080"
    described = installer.describe()
    assert described["method"] == "hook" and described["hook_version"] == "acme-mesh 2.4.1 (istio 1.31.1)"
    assert described["istio_version"] == "1.31.1-acme.2"


def test_a_failing_hook_is_cleaned_up_and_named(standins, tmp_path: Path, make_settings) -> None:
    hook = standins.tool("vendor-hook", [{"args": ["version"], "stdout": "acme 1\n"},
                                         {"args": ["install"], "stderr": "timed out waiting for istiod\n", "exit": 3},
                                         {"args": ["cleanup"], "stdout": ""}])
    mesh, _ = make_settings(install=str(hook))
    with pytest.raises(tools.ToolFailed, match="(?s)exit 3.*timed out waiting for istiod"):
        VendorHook(str(hook), mesh, tmp_path / "p", tmp_path, "main").install(ACCESS)
    assert standins.argvs()[-1][1:] == ["cleanup"]
    mesh, _ = make_settings(install="/no/such/hook")
    with pytest.raises(tools.ToolMissing, match="no such file"):
        VendorHook("/no/such/hook", mesh, tmp_path / "q", tmp_path / "q", "main").install(ACCESS)
    standins.tool("vendor-hook", [{"args": ["version"], "stdout": ""}])
    with pytest.raises(tools.ToolOutputError, match="printed nothing"):
        VendorHook(str(hook), mesh, tmp_path / "r", tmp_path / "r", "main").install(ACCESS)


def test_unreadable_istioctl_json_is_named() -> None:
    with pytest.raises(tools.ToolOutputError):
        installers.parse_mesh_versions('{"clientVersion": {"version": "1.31')
    assert installers.parse_mesh_versions(rec.ISTIOCTL_VERSION_NO_MESH) == []
    assert json.loads(rec.istioctl_mesh_version())["meshVersion"][0]["Component"] == "pilot"


def test_plans_name_every_command(tmp_path: Path, make_settings) -> None:
    mesh, _ = make_settings(install="helm", istio_revision="r1")
    steps = HelmInstaller(mesh, tmp_path, tmp_path, "main").plan()
    assert [s.split(":")[0] for s in steps[2:5]] == ["helm install base", "helm install istiod", "helm install gateway"]
    assert "istiod-r1" in steps[3] and "--set revision=r1" in steps[3]


def _istiod_list(ready: int, revision: str = "default", tag: str = "1.30.3") -> dict:
    """GET /apis/apps/v1/deployments (a DeploymentList, apps/v1 API reference) with one istiod."""
    return {"kind": "DeploymentList", "apiVersion": "apps/v1", "metadata": {"resourceVersion": "7"}, "items": [{
        "metadata": {"name": "istiod" if revision == "default" else f"istiod-{revision}", "namespace": "istio-system",
                     "labels": {"app": "istiod", "istio.io/rev": revision}},
        "spec": {"selector": {"matchLabels": {"app": "istiod"}},
                 "template": {"metadata": {"labels": {"app": "istiod"}},
                              "spec": {"containers": [{"name": "discovery",
                                                       "image": f"docker.io/istio/pilot:{tag}"}]}}},
        "status": {"replicas": 1, "readyReplicas": ready}}]}


def test_an_istiod_that_is_not_ready_yet_is_never_installed_over(standins, tmp_path: Path, make_settings,
                                                                 apiserver) -> None:
    apiserver.routes["/apis/apps/v1/deployments"] = _istiod_list(ready=0)
    standins.tool("istioctl", istioctl_rules())  # istioctl sees no ready istiod pod: "Istio is not present"
    access = ClusterAccess(apiserver.kubeconfig, "ctx")
    with pytest.raises(MeshAlreadyInstalled, match="istio-system/istiod revision default image "
                                                   "docker.io/istio/pilot:1.30.3.*not install over it"):
        build(IstioctlInstaller, tmp_path, make_settings).install(access)
    assert "/apis/apps/v1/deployments?labelSelector=app%3Distiod" in apiserver.seen
    assert not [a for a in standins.argvs() if a[1] in ("install", "uninstall")]


def test_a_new_revision_beside_an_unready_other_one_is_allowed(standins, tmp_path: Path, make_settings,
                                                               apiserver) -> None:
    apiserver.routes["/apis/apps/v1/deployments"] = _istiod_list(ready=0, revision="old")
    standins.tool("istioctl", istioctl_rules())
    build(IstioctlInstaller, tmp_path, make_settings, istio_revision="new").install(
        ClusterAccess(apiserver.kubeconfig, "ctx"))
    assert len([a for a in standins.argvs() if a[1] == "install"]) == 1
