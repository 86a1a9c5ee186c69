"""Mesh installers (the `MeshInstaller` contract), chosen by `--install`:

- `istioctl`: `istioctl install` (default profile, access logs to stdout, hub away from the retired
  registries, optional revision; on kind, the gateway Service as NodePort on the fixed nodePorts kind publishes,
  and Istio's demo-profile resource requests so that everything fits a 2-vCPU runner; on a cluster, the gateway
  Service as the profile makes it, LoadBalancer with nodePorts Kubernetes allocates); it waits itself
  (`--readiness-timeout`) for istiod and the ingress gateway. Uninstall: `istioctl uninstall -y --purge`
  (or `-r <revision>`), only if this run installed it.
- `helm`: the base, istiod and gateway charts in that order, from the new chart repository, same settings.
- `none`: the mesh is already there (a vendor's distribution): found with `istioctl version`, never touched.
- a path: a vendor hook, run as `<hook> install|cleanup|version` with KUBECONFIG and the context in its
  environment; its `version` output goes to the report's implementation block.

Every worker of a run shares one installation (`SharedResource`): the first installs, the last uninstalls.
A control plane that was there before is never overwritten nor uninstalled."""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from meshconform.errors import PlatformError
from meshconform.platform.api import PROGRESS_LOG
from meshconform.platform.kind import kindconfig, kubeprobe, tools
from meshconform.platform.kind.settings import MeshSettings
from meshconform.platform.kind.timeouts import TIMEOUTS, install_deadline
from meshconform.platform.kind.toolbox import Toolbox
from meshconform.platform.kube.contracts import ClusterAccess
from meshconform.platform.sharing import SharedResource

ISTIO_NAMESPACE = "istio-system"
GATEWAY_SERVICE = "istio-ingressgateway"  # istioctl's default-profile gateway; the Helm release gets the same name
PROFILE = "default"  # base + istiod + istio-ingressgateway (manifests/profiles/default.yaml)
HELM_REPO = "https://blob.istio.io/istio-release/charts"  # the new location (istio.io blog "retirement of gcp")
HOOK_ENV_CONTEXT = "MESHCONFORM_KUBE_CONTEXT"
REQUESTS_PLAN = ("requests as Istio's demo profile: 10m CPU / 40Mi per proxy and for the gateway, 10m / 100Mi for "
                 "istiod, no autoscaling: fits a 2-vCPU / 7 GB runner")


class MeshAlreadyInstalled(PlatformError):
    """An Istio control plane is there already: installing would overwrite someone else's mesh."""


class MeshNotFound(PlatformError):
    """`--install none`, but no Istio control plane answers."""


def kube_flags(access: ClusterAccess, context_flag: str = "--context") -> list[str]:
    flags = ["--kubeconfig", str(access.kubeconfig)]
    if access.context:
        flags += [context_flag, access.context]
    return flags


def gateway_ports(fixed_node_ports: bool) -> list[dict[str, Any]]:
    """The ingress gateway Service's ports: the istioctl profile's three (manifests/charts/gateways/istio-ingress/
    values.yaml), pod ports 8080/8443 (Bookinfo's Gateway listens on 8080). On kind HTTP and HTTPS on the fixed
    nodePorts kind publishes; elsewhere Kubernetes allocates them (a fixed one collides on a shared cluster)."""
    ports = kindconfig.NODE_PORTS
    fixed = {"http2": ports.http, "https": ports.https} if fixed_node_ports else {}
    return [{"name": name, "port": port, "targetPort": target, "protocol": "TCP",
             **({"nodePort": fixed[name]} if name in fixed else {})}
            for name, port, target in (("status-port", 15021, 15021), ("http2", 80, 8080), ("https", 443, 8443))]


# Requests that fit a 2-vCPU / 7 GB runner, the values of Istio's demo profile ("Lower resource utilization",
# manifests/helm-profiles/demo.yaml at 1.30.3): the default profile's 100m / 128Mi per proxy times 16 pods and
# istiod's 500m / 2Gi leave pods Pending on one small node. The same keys for istioctl (`values.`) and Helm.
SMALL_PROXY = {"requests": {"cpu": "10m", "memory": "40Mi"}}
SMALL_ISTIOD = {"requests": {"cpu": "10m", "memory": "100Mi"}}
SMALL_GATEWAY = {"requests": {"cpu": "10m", "memory": "40Mi"}}


def small_values() -> dict[str, Any]:
    """The Helm/istioctl values setting those requests (and no autoscaling: one replica each)."""
    return {"global": {"proxy": {"resources": SMALL_PROXY}},
            "pilot": {"autoscaleEnabled": False, "resources": SMALL_ISTIOD},
            "gateways": {GATEWAY_SERVICE: {"autoscaleEnabled": False, "resources": SMALL_GATEWAY}}}


def parse_mesh_versions(stdout: str) -> list[dict[str, str]]:
    """Control plane components from `istioctl version -o json` (pkg/version: meshVersion is a list of
    {Component, Revision, Info{version, ...}}; absent when Istio is not present). Text istioctl prints
    before the JSON (e.g. "Istio is not present in the cluster") is skipped."""
    start = stdout.find("{")
    if start < 0:
        return []
    try:
        data, _ = json.JSONDecoder().raw_decode(stdout[start:])
    except ValueError:
        raise tools.ToolOutputError(f"`istioctl version -o json` printed unreadable JSON: {stdout[:200]!r}") from None
    found = []
    for item in data.get("meshVersion") or []:
        info = item.get("Info") or {}
        found.append({"component": str(item.get("Component", "")), "revision": str(item.get("Revision", "")),
                      "version": str(info.get("version", ""))})
    return found


class _Installer:
    """What all installers share: the toolbox, the per-run shared installation record, diagnostics."""

    name = ""

    def plan(self) -> list[str]:
        raise NotImplementedError

    def __init__(self, mesh: MeshSettings, folder: Path, session_dir: Path, worker: str,
                 toolbox: Toolbox | None = None, on_kind: bool = False) -> None:
        self.mesh = mesh
        self.on_kind = on_kind  # kind: fixed gateway nodePorts, small requests; a cluster: the profile's own
        self.folder = folder
        self.session_dir = session_dir
        self.worker = worker
        self.toolbox = toolbox or Toolbox(mesh)
        wait = self.mesh.readiness_timeout + TIMEOUTS.install_margin * 3 + TIMEOUTS.download
        self.shared = SharedResource(session_dir, "mesh-install", wait)
        self.detected: list[dict[str, str]] = []
        # Set by the kind platform: True when the cluster itself is deleted at the end (no uninstall needed).
        self.cluster_goes_away: Callable[[], bool] = lambda: False

    @property
    def istioctl(self) -> Path:
        return self.toolbox.path("istioctl")

    def control_plane(self, access: ClusterAccess) -> list[dict[str, str]]:
        """The Istio control plane components now in the cluster (empty: none)."""
        result = tools.run([self.istioctl, "version", "-o", "json", *kube_flags(access)], check=False,
                           timeout=TIMEOUTS.istioctl_query, what="ask the cluster for its Istio control plane")
        return parse_mesh_versions(result.stdout)

    def install(self, access: ClusterAccess) -> None:
        record = self.shared.acquire(self.worker, lambda: self._install(access))
        self.detected = record.get("control_plane", [])

    def _install(self, access: ClusterAccess) -> dict[str, Any]:
        raise NotImplementedError

    def uninstall(self, access: ClusterAccess) -> None:
        def destroy(record: dict[str, Any]) -> None:
            if record.get("installed") and not self.mesh.keep_mesh and not self.cluster_goes_away():
                self._uninstall(access, record)
        self.shared.release(self.worker, destroy)

    def _uninstall(self, access: ClusterAccess, record: dict[str, Any]) -> None:
        """Default: nothing (none, or kept)."""

    def _existing(self, access: ClusterAccess) -> list[dict[str, str]]:
        """The control plane already there that this install would meet: none (install), exactly the wanted
        version and revision (reused as it is: e.g. a kept kind cluster; never uninstalled), or anything else
        (refused: meshconform never overwrites nor later uninstalls a mesh it did not install)."""
        present = self.control_plane(access)
        wanted = self.mesh.revision or "default"
        deployments = kubeprobe.istiod_deployments(access) or []
        ready_revisions = {c["revision"] or "default" for c in present}
        unready = [d for d in deployments if d["revision"] not in ready_revisions
                   and (not self.mesh.revision or d["revision"] == wanted)]
        if unready:  # istioctl sees only ready istiod pods: one that is not ready yet is still someone's
            raise MeshAlreadyInstalled(
                "an istiod Deployment is already there, not ready (" + ", ".join(
                    f"{d['namespace']}/{d['name']} revision {d['revision']} image {d['image']}" for d in unready)
                + "); meshconform will not install over it. Test it with --install none once it is ready, or "
                "install another revision beside it with --istio-revision <new>")
        same = [c for c in present if (c["revision"] or "default") == wanted]
        if not present or (self.mesh.revision and not same):
            return []  # nothing there, or a new revision beside the others
        if same and all(c["version"] == self.mesh.istio_version for c in same):
            return same
        versions = ", ".join(sorted({f"{c['revision'] or 'default'}={c['version']}" for c in present}))
        taken = ", ".join(sorted({c["revision"] or "default" for c in present}))
        raise MeshAlreadyInstalled(
            f"an Istio control plane is already installed ({versions}); meshconform will not overwrite or later "
            "uninstall a mesh it did not install. Test it as it is with --install none, or install another "
            f"revision beside it with --istio-revision <new> (taken: {taken})")

    def describe(self) -> dict[str, Any]:
        record = self.shared.read() or {}
        return {"method": self.name, "istio_version": self.mesh.istio_version, "revision": self.mesh.revision or None,
                "profile": PROFILE, "hub": self.mesh.hub, "installed_by_meshconform": bool(record.get("installed")),
                "control_plane": record.get("control_plane", self.detected)}

    def proxy_status(self, access: ClusterAccess) -> str | None:
        """`istioctl proxy-status -o json`: istiod's DiscoveryResponse per control plane instance, each proxy's
        xDS types with SYNCED/STALE/NOT_SENT (istioctl/pkg/writer/pilot/status.go printMachineReadable).
        None when istioctl cannot answer: convergence then rests on the suite's probes."""
        argv = [str(self.istioctl), "proxy-status", "-o", "json", *kube_flags(access)]
        if self.mesh.revision:
            argv += ["--revision", self.mesh.revision]
        try:
            return tools.run(argv, timeout=TIMEOUTS.istioctl_query, what="read istioctl proxy-status").stdout
        except (tools.ToolError, PlatformError):
            return None

    def diagnostics(self, access: ClusterAccess, folder: Path) -> list[Path]:
        """`istioctl proxy-status`, `istioctl analyze -A` (exit 79 = findings, still a result) and
        `istioctl version -o json`, each into a file; a step that fails leaves its error in the file."""
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for filename, args, ok in (("istioctl-proxy-status.txt", ["proxy-status"], (0,)),
                                   ("istioctl-analyze.txt", ["analyze", "-A"], (0, 79)),
                                   ("istioctl-version.json", ["version", "-o", "json"], (0,))):
            target = folder / filename
            try:
                result = tools.run([self.istioctl, *args, *kube_flags(access)], timeout=TIMEOUTS.istioctl_query,
                                   what=f"run istioctl {args[0]}", check=False)
                text = result.stdout + (f"\n# stderr:\n{result.stderr}" if result.stderr.strip() else "")
                if result.returncode not in ok:
                    text = f"# exit {result.returncode}\n" + text
            except (tools.ToolError, PlatformError) as exc:
                text = f"# not collected: {exc}\n"
            target.write_text(text)
            written.append(target)
        return written


class IstioctlInstaller(_Installer):
    name = "istioctl"

    def overlay_path(self) -> Path:
        return self.folder / "istio-install-gateway.yaml"

    def overlay_text(self) -> str:
        """IstioOperator overlay (kind only): the gateway Service as NodePort on the fixed nodePorts
        (`values.gateways.istio-ingressgateway.ports[].nodePort` is a typed field, operator/pkg/apis/values_types.proto)
        and the small requests (small_values)."""
        values = small_values()
        values["gateways"][GATEWAY_SERVICE].update({"type": "NodePort", "ports": gateway_ports(True)})
        operator = {"apiVersion": "install.istio.io/v1alpha1", "kind": "IstioOperator", "spec": {"values": values}}
        return yaml.safe_dump(operator, sort_keys=False)

    def install_argv(self, access: ClusterAccess, istioctl: str | Path = "istioctl") -> list[str]:
        overlay = ["-f", str(self.overlay_path())] if self.on_kind else []
        argv = [str(istioctl), "install", "-y", *overlay, "--set", f"profile={PROFILE}",
                "--set", f"hub={self.mesh.hub}", "--set", "meshConfig.accessLogFile=/dev/stdout"]
        if self.mesh.revision:
            argv += ["--revision", self.mesh.revision]
        return argv + ["--readiness-timeout", f"{self.mesh.readiness_timeout:g}s", *kube_flags(access)]

    def uninstall_argv(self, access: ClusterAccess, istioctl: str | Path = "istioctl") -> list[str]:
        which = ["--revision", self.mesh.revision] if self.mesh.revision else ["--purge"]
        return [str(istioctl), "uninstall", "-y", *which, *kube_flags(access)]

    def plan(self) -> list[str]:
        access = ClusterAccess(Path("<kubeconfig>"), "<context>")
        return [f"find the control plane already there (none: install; this very version and revision: use it as it "
                f"is; another: refuse): istioctl version -o json {shlex.join(kube_flags(access))}, and istiod "
                "Deployments ready or not: GET /apis/apps/v1/deployments?labelSelector=app=istiod",
                *([f"write {self.overlay_path()} (the gateway Service: NodePort {kindconfig.NODE_PORTS.http} HTTP, "
                   f"{kindconfig.NODE_PORTS.https} HTTPS; {REQUESTS_PLAN})"] if self.on_kind else
                  ["the gateway Service as the default profile makes it: LoadBalancer, nodePorts allocated by "
                   "Kubernetes"]),
                f"install and wait for istiod and the gateway: {shlex.join(self.install_argv(access))}",
                f"at the end, unless --keep-mesh/--keep-cluster: {shlex.join(self.uninstall_argv(access))}"]

    def _install(self, access: ClusterAccess) -> dict[str, Any]:
        found = self._existing(access)
        if found:  # the very version and revision asked for: used as it is, left as it is
            return {"method": self.name, "installed": False, "reused": True, "control_plane": found}
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.on_kind:
            self.overlay_path().write_text(self.overlay_text())
        try:
            tools.run(self.install_argv(access, self.istioctl), what=f"install Istio {self.mesh.istio_version}",
                      timeout=install_deadline(self.mesh.readiness_timeout),
                      progress=tools.progress_to(self.folder / PROGRESS_LOG, "istioctl"),
                      hint="see istioctl's output; a slow image pull needs a longer --readiness-timeout; "
                           f"`istioctl analyze -A {shlex.join(kube_flags(access))}` explains what is not ready")
        except BaseException:
            # What istioctl applied before failing is ours: remove it, so nothing half-installed stays.
            self._quiet_uninstall(access)
            raise
        return {"method": self.name, "installed": True, "control_plane": self.control_plane(access)}

    def _quiet_uninstall(self, access: ClusterAccess) -> None:
        try:
            tools.run(self.uninstall_argv(access, self.istioctl), timeout=TIMEOUTS.uninstall,
                      what="remove the half-installed Istio")
        except (tools.ToolError, PlatformError):
            pass

    def _uninstall(self, access: ClusterAccess, record: dict[str, Any]) -> None:
        tools.run(self.uninstall_argv(access, self.istioctl), timeout=TIMEOUTS.uninstall, what="uninstall Istio",
                  hint=f"uninstall it by hand: {shlex.join(self.uninstall_argv(access))}")


class HelmInstaller(_Installer):
    """istio.io docs/setup/install/helm: base (CRDs, cluster resources) -> istiod -> gateway. Charts come
    from the repository URL with `--repo` and a pinned `--version`, so the user's `helm repo` list is
    untouched. The gateway release is named istio-ingressgateway in istio-system, so it gets the labels
    `app: istio-ingressgateway`, `istio: ingressgateway` (gateway chart _helpers.tpl) like istioctl's."""

    name = "helm"

    def releases(self) -> list[tuple[str, str, list[str]]]:
        """(release, chart, extra arguments) in install order."""
        hub = ["--set", f"hub={self.mesh.hub}", "--set", f"global.hub={self.mesh.hub}"]
        revision = ["--set", f"revision={self.mesh.revision}"] if self.mesh.revision else []
        istiod = f"istiod-{self.mesh.revision}" if self.mesh.revision else "istiod"
        wait = ["--wait", "--timeout", f"{self.mesh.readiness_timeout:g}s"]
        return [
            ("istio-base", "base", ["--create-namespace",
                                    "--set", f"defaultRevision={self.mesh.revision or 'default'}"]),
            (istiod, "istiod", [*hub, *revision, "--set", "meshConfig.accessLogFile=/dev/stdout", *self._small_istiod(),
                                *wait]),
            (GATEWAY_SERVICE, "gateway", ["-f", str(self.values_path()), *revision, *wait]),
        ]

    def values_path(self) -> Path:
        return self.folder / "istio-gateway-values.yaml"

    def values_text(self) -> str:
        """Gateway chart values: pod ports 8080/8443 as istioctl's gateway (Bookinfo's Gateway listens on 8080); on
        kind NodePort on the fixed nodePorts and the small requests, elsewhere the chart's LoadBalancer."""
        service: dict[str, Any] = {"ports": gateway_ports(self.on_kind)}
        values: dict[str, Any] = {"service": service}
        if self.on_kind:
            service["type"] = "NodePort"
            values.update(resources=SMALL_GATEWAY, autoscaling={"enabled": False})
        return yaml.safe_dump(values, sort_keys=False)

    def _small_istiod(self) -> list[str]:
        """istiod chart values for the small requests (kind only), as --set flags."""
        if not self.on_kind:
            return []
        return ["--set", "global.proxy.resources.requests.cpu=10m", "--set",
                "global.proxy.resources.requests.memory=40Mi", "--set", "pilot.autoscaleEnabled=false",
                "--set", "pilot.resources.requests.cpu=10m", "--set", "pilot.resources.requests.memory=100Mi"]

    def install_argv(self, release: str, chart: str, extra: list[str], access: ClusterAccess,
                     helm: str | Path = "helm") -> list[str]:
        return [str(helm), "install", release, chart, "--repo", HELM_REPO, "--version", self.mesh.istio_version,
                "--namespace", ISTIO_NAMESPACE, *extra, *kube_flags(access, "--kube-context")]

    def uninstall_argv(self, release: str, access: ClusterAccess, helm: str | Path = "helm") -> list[str]:
        return [str(helm), "uninstall", release, "--namespace", ISTIO_NAMESPACE, "--wait",
                *kube_flags(access, "--kube-context")]

    def plan(self) -> list[str]:
        access = ClusterAccess(Path("<kubeconfig>"), "<context>")
        steps = [f"refuse if our releases exist: helm list --namespace {ISTIO_NAMESPACE} --all -o json "
                 f"{shlex.join(kube_flags(access, '--kube-context'))}; or another control plane (istioctl version -o "
                 "json, istiod Deployments)",
                 f"write {self.values_path()} (gateway Service: " + (
                     f"NodePort {kindconfig.NODE_PORTS.http} HTTP, {kindconfig.NODE_PORTS.https} HTTPS; "
                     f"{REQUESTS_PLAN})" if self.on_kind else "LoadBalancer, nodePorts allocated by Kubernetes)")]
        steps += [f"helm install {chart}: {shlex.join(self.install_argv(r, chart, extra, access))}"
                  for r, chart, extra in self.releases()]
        steps += [f"at the end, unless kept: {shlex.join(self.uninstall_argv(r, access))}"
                  for r, _, _ in reversed(self.releases())]
        return steps

    @property
    def helm(self) -> Path:
        return self.toolbox.path("helm")

    def _install(self, access: ClusterAccess) -> dict[str, Any]:
        listed = tools.run([self.helm, "list", "--namespace", ISTIO_NAMESPACE, "--all", "-o", "json",
                            *kube_flags(access, "--kube-context")], timeout=TIMEOUTS.helm_query,
                           what=f"list the Helm releases in {ISTIO_NAMESPACE}")
        try:
            taken = {r["name"] for r in json.loads(listed.stdout or "[]")} & {r for r, _, _ in self.releases()}
        except (ValueError, TypeError, KeyError):
            raise tools.ToolOutputError(f"`helm list -o json` printed unreadable JSON: {listed.stdout[:200]!r}",
                                        argv=listed.argv) from None
        if taken:
            raise MeshAlreadyInstalled(f"Helm releases {', '.join(sorted(taken))} already exist in {ISTIO_NAMESPACE}; "
                                       "meshconform will not overwrite them: test that mesh with --install none")
        found = self._existing(access)  # a control plane installed some other way
        if found:
            return {"method": self.name, "installed": False, "reused": True, "control_plane": found}
        self.folder.mkdir(parents=True, exist_ok=True)
        self.values_path().write_text(self.values_text())
        done: list[str] = []
        try:
            for release, chart, extra in self.releases():
                tools.run(self.install_argv(release, chart, extra, access, self.helm), what=f"helm install {chart}",
                          timeout=install_deadline(self.mesh.readiness_timeout),
                          progress=tools.progress_to(self.folder / PROGRESS_LOG, f"helm install {chart}"),
                          hint="see helm's output; a slow image pull needs a longer --readiness-timeout")
                done.append(release)
        except BaseException:
            for release in reversed(done):  # leave nothing half-installed
                try:
                    tools.run(self.uninstall_argv(release, access, self.helm), timeout=TIMEOUTS.uninstall,
                              what=f"remove the release {release}")
                except (tools.ToolError, PlatformError):
                    pass
            raise
        return {"method": self.name, "installed": True, "releases": done}

    def _uninstall(self, access: ClusterAccess, record: dict[str, Any]) -> None:
        for release in reversed(record.get("releases", [])):
            tools.run(self.uninstall_argv(release, access, self.helm), timeout=TIMEOUTS.uninstall,
                      what=f"helm uninstall {release}")


class PreinstalledMesh(_Installer):
    """`--install none`: a control plane must already answer; it is reported, never changed."""

    name = "none"

    def plan(self) -> list[str]:
        access = ClusterAccess(Path("<kubeconfig>"), "<context>")
        return [f"find the installed control plane (never changed): istioctl version -o json "
                f"{shlex.join(kube_flags(access))}"]

    def _install(self, access: ClusterAccess) -> dict[str, Any]:
        present = self.control_plane(access)
        if self.mesh.revision:
            present = [c for c in present if (c["revision"] or "default") == self.mesh.revision]
        if not present:
            which = f" of revision {self.mesh.revision}" if self.mesh.revision else ""
            raise MeshNotFound(f"--install none: no Istio control plane{which} (ready istiod pods) "
                               f"answers in {ISTIO_NAMESPACE} of context {access.context or '(current)'}; install "
                               "your mesh first, or let meshconform install Istio with --install istioctl|helm")
        return {"method": self.name, "installed": False, "control_plane": present}

    def describe(self) -> dict[str, Any]:
        """The version is the one found in the cluster, not the --istio-version option."""
        described = super().describe()
        found = sorted({c["version"] for c in described["control_plane"] if c.get("version")})
        return {**described, "istio_version": ", ".join(found) or None, "profile": None, "hub": None}


class VendorHook(_Installer):
    """A vendor's executable: `<hook> version` (one line, reported), `<hook> install` (returns when istiod
    and the ingress gateway are ready, the gateway Service on the fixed nodePorts when on kind),
    `<hook> cleanup`. Environment: KUBECONFIG, MESHCONFORM_KUBE_CONTEXT, and the values below."""

    def __init__(self, hook: str, mesh: MeshSettings, folder: Path, session_dir: Path, worker: str,
                 toolbox: Toolbox | None = None, on_kind: bool = False) -> None:
        super().__init__(mesh, folder, session_dir, worker, toolbox, on_kind)
        self.hook = Path(hook).expanduser().resolve()
        self.name = str(hook)

    def env(self, access: ClusterAccess) -> dict[str, str]:
        return {"KUBECONFIG": str(access.kubeconfig), HOOK_ENV_CONTEXT: access.context or "",
                "MESHCONFORM_ISTIO_VERSION": self.mesh.istio_version, "MESHCONFORM_ISTIO_REVISION": self.mesh.revision,
                "MESHCONFORM_ISTIO_HUB": self.mesh.hub,
                "MESHCONFORM_READINESS_TIMEOUT": f"{self.mesh.readiness_timeout:g}",
                **({"MESHCONFORM_INGRESS_HTTP_NODEPORT": str(kindconfig.NODE_PORTS.http),
                    "MESHCONFORM_INGRESS_HTTPS_NODEPORT": str(kindconfig.NODE_PORTS.https)} if self.on_kind else {})}

    def plan(self) -> list[str]:
        names = "KUBECONFIG, " + HOOK_ENV_CONTEXT + ", MESHCONFORM_ISTIO_*, MESHCONFORM_INGRESS_*_NODEPORT"
        return [f"vendor version (reported): {shlex.join([str(self.hook), 'version'])}",
                f"install (environment {names}): {shlex.join([str(self.hook), 'install'])}",
                f"at the end, unless --keep-mesh: {shlex.join([str(self.hook), 'cleanup'])}"]

    def version(self) -> str:
        result = tools.run([self.hook, "version"], timeout=TIMEOUTS.version, what="ask the vendor hook its version",
                           hint=f"{self.hook} must print its version for `version` and exit 0")
        line = result.stdout.strip().splitlines()
        if not line:
            raise tools.ToolOutputError(f"{self.hook} version printed nothing", argv=result.argv)
        return line[0].strip()

    def _install(self, access: ClusterAccess) -> dict[str, Any]:
        if not self.hook.is_file():
            raise tools.ToolMissing(f"--install {self.name}: no such file ({self.hook})",
                                    hint="give the path of your install hook, or istioctl|helm|none")
        version = self.version()
        try:
            tools.run([self.hook, "install"], env=self.env(access), timeout=TIMEOUTS.hook,
                      what="run the vendor install hook",
                      hint=f"{self.hook} install must exit 0 once istiod and the ingress gateway are ready")
        except BaseException:
            try:  # leave nothing half-installed
                tools.run([self.hook, "cleanup"], env=self.env(access), timeout=TIMEOUTS.hook,
                          what="run the vendor cleanup hook after a failed install")
            except (tools.ToolError, PlatformError):
                pass
            raise
        try:  # what the hook installed, if it is Istio-compatible (istioctl finds ready istiod pods)
            present = self.control_plane(access)
        except (tools.ToolError, PlatformError):
            present = []
        return {"method": "hook", "installed": True, "hook_version": version, "control_plane": present}

    def _uninstall(self, access: ClusterAccess, record: dict[str, Any]) -> None:
        tools.run([self.hook, "cleanup"], env=self.env(access), timeout=TIMEOUTS.hook,
                  what="run the vendor cleanup hook")

    def describe(self) -> dict[str, Any]:
        record = self.shared.read() or {}
        found = sorted({c["version"] for c in record.get("control_plane", []) if c.get("version")})
        return {**super().describe(), "method": "hook", "hook": str(self.hook),
                "hook_version": record.get("hook_version"), "istio_version": ", ".join(found) or None,
                "profile": None}


def installer_for(mesh: MeshSettings, folder: Path, session_dir: Path, worker: str,
                  toolbox: Toolbox | None = None, on_kind: bool = False) -> _Installer:
    if mesh.install == "istioctl":
        return IstioctlInstaller(mesh, folder, session_dir, worker, toolbox, on_kind)
    if mesh.install == "helm":
        return HelmInstaller(mesh, folder, session_dir, worker, toolbox, on_kind)
    if mesh.install == "none":
        return PreinstalledMesh(mesh, folder, session_dir, worker, toolbox, on_kind)
    return VendorHook(mesh.install, mesh, folder, session_dir, worker, toolbox, on_kind)
