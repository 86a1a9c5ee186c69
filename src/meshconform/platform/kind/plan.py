"""The dry-run plan (`meshconform up|run --platform kind|cluster --dry-run`): binaries with versions, URLs and
SHA-256, the node image digest, the kind config, the install steps with their exact command lines, and
the manifests to apply with their images. Pure: no process runs, no file is written, nothing is fetched."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import yaml

from meshconform.platform.kind import kindconfig
from meshconform.platform.kind.engine import MIN_CPUS, MIN_MEMORY_GIB, PROVIDER_ENV
from meshconform.platform.kind.installers import HelmInstaller, IstioctlInstaller, installer_for, kube_flags
from meshconform.platform.kind.lifecycle import ExistingCluster, KindLifecycle
from meshconform.platform.kind.settings import KindSettings, MeshSettings
from meshconform.platform.kind.toolbox import Toolbox
from meshconform.platform.kube import gateway_api_crds
from meshconform.platform.kube.contracts import LOAD_NODE_PORTS, ClusterAccess
from meshconform.platform.kube.images import Pins, pins_for

RUN = Path("<run>")  # the run folder, named when the run starts
FOLDER = RUN / "platform-<worker>"
MANIFEST_ORDER = ("namespaces.yaml", "bookinfo.yaml", "testbed.yaml")
_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


def manifests_dir() -> Path:
    from importlib import resources
    return Path(str(resources.files("meshconform.bookinfo"))) / "manifests"  # mapped from bookinfo/ at install


def manifest_images(folder: Path | None = None, pins: Pins | None = None) -> list[tuple[str, list[str]]]:
    """Per manifest file (in apply order), one line per container: `Kind ns/name container: image` (as `pins`
    pin it), with a warning where the image is not pinned by digest."""
    folder = folder or manifests_dir()
    files = sorted(folder.glob("*.yaml"), key=lambda p: (MANIFEST_ORDER.index(p.name)
                                                          if p.name in MANIFEST_ORDER else 99, p.name))
    listed = []
    for path in files:
        lines = []
        for doc in yaml.safe_load_all(path.read_text()):
            if not isinstance(doc, dict):
                continue
            meta = doc.get("metadata") or {}
            scope = "" if doc.get("kind") == "Namespace" else f"{meta.get('namespace', 'default')}/"
            ref = f"{doc.get('kind')} {scope}{meta.get('name')}"
            pod = ((doc.get("spec") or {}).get("template") or {}).get("spec") or {}
            containers = [*(pod.get("initContainers") or []), *(pod.get("containers") or [])]
            for container in containers:
                named = str(container.get("image", ""))
                image = pins.pinned(named) if pins is not None else named
                flag = "" if _DIGEST.search(image) else "   (by tag: the digest it ran is recorded in the report)"
                if pins is not None and image != named:
                    flag = f"   (pinned by {pins.source})"
                lines.append(f"{ref} {container.get('name')}: {image}{flag}")
            if not containers:
                lines.append(ref)
        listed.append((path.name, lines))
    return listed


def _binary_lines(toolbox: Toolbox, tool: str) -> list[str]:
    info: dict[str, Any] = toolbox.describe(tool)
    lines = [f"{tool} {info['version']}: {info['source']}"]
    for key in ("url", "checksum_file", "sha256", "sha256_source"):
        if key in info:
            lines.append(f"    {key}: {info[key]}")
    return lines


def _indent(text: str, by: str = "    ") -> list[str]:
    return [by + line for line in text.rstrip().splitlines()]


def plan(platform: str, mesh: MeshSettings, kind: KindSettings | None) -> str:
    toolbox = Toolbox(mesh, kind)
    out = [f"meshconform plan: platform {platform} (dry run: nothing was started, written or downloaded)", ""]

    out.append("1. Binaries (cached in the user cache directory; each SHA-256 checked before it first runs)")
    tools_used = (["kind"] if kind else []) + ["istioctl"] + (["helm"] if mesh.install == "helm" else [])
    for tool in tools_used:
        out += ["  " + line for line in _binary_lines(toolbox, tool)]
    out.append("")

    if kind is not None:
        lifecycle = KindLifecycle(FOLDER, RUN, "<worker>", mesh, kind, toolbox)
        access = ClusterAccess(lifecycle.kubeconfig_path(), lifecycle.context)
        engine = kind.container_engine or "docker or podman (the first whose engine answers)"
        preload = lifecycle.preload_images()
        images = ([f"  images: the node pulls docker.io through the mirror {kind.registry_mirror} (hosts.toml in "
                   f"{lifecycle.mirror_dir()}, mounted at {kindconfig.CERTS_D}/{kindconfig.MIRRORED_REGISTRY})"]
                  if kind.registry_mirror else
                  ["  images: pulled on this host first, before the cluster exists (your login and cache: the node "
                   "pulls nothing from Docker Hub anonymously), then loaded into the node with `kind load "
                   "docker-image ... --name " + kind.cluster_name + "` (podman, or docker's containerd image store: "
                   "`<engine> save` + `kind load image-archive`):",
                   *[f"    <engine> pull {name}" for name in preload],
                   "    (images pinned by digest are pulled by the node itself)"])
        out += ["2. Cluster (kind)",
                f"  container engine: {engine}; checked with `docker info --format {{{{.ServerVersion}}}}` / "
                f"`podman info --format {{{{.Version.Version}}}}`; kind gets {PROVIDER_ENV}=<engine>",
                f"  engine size: at least {MIN_CPUS} CPUs and {MIN_MEMORY_GIB:g} GiB of memory, read with "
                "`docker info --format '{{.NCPU}} {{.MemTotal}}'` (podman: `{{.Host.CPUs}} {{.Host.MemTotal}}`); "
                "less is refused before anything starts",
                f"  node image: {lifecycle.image}",
                *images,
                f"  reuse if `kind get clusters` lists {kind.cluster_name}: "
                f"{shlex.join(lifecycle.export_kubeconfig_argv())}",
                f"  else create (its progress shown as kind prints it): {shlex.join(lifecycle.create_argv())}",
                f"  kind config ({lifecycle.config_path()}):", *_indent(lifecycle.config_text(), "      "),
                f"  ingress: 127.0.0.1:<host port kind picks> -> nodePort {kindconfig.NODE_PORTS.http} (HTTP), "
                f"{kindconfig.NODE_PORTS.https} (HTTPS); read back with "
                f"`<engine> port {kindconfig.control_plane_container(kind.cluster_name)} "
                f"{kindconfig.NODE_PORTS.http}/tcp`, and the gateway Service's nodePorts confirmed after the install",
                f"  meshconform perf: 127.0.0.1:<host port kind picks> -> nodePorts "
                f"{LOAD_NODE_PORTS.mesh} (productpage through its sidecar) and {LOAD_NODE_PORTS.no_mesh} (its twin "
                "without injection), NodePort Services the perf run creates, labelled with the run",
                f"  at the end, only if this run created it and --keep-cluster is not set: "
                f"{shlex.join(lifecycle.delete_argv())}",
                f"  if the create fails: kind export logs {FOLDER}/diagnostics/kind-create-failed --name "
                f"{kind.cluster_name} (the node kept by --retain), then delete it",
                f"  on a later failure: kind export logs <diagnostics>/kind-logs --name {kind.cluster_name}", ""]
    else:
        cluster = ExistingCluster(mesh)
        try:
            where = f"{cluster.kubeconfig_path()} (context {mesh.context or 'current-context'})"
        except Exception as exc:  # a plan never fails on what the run would check
            where = f"({exc})"
        access = ClusterAccess(Path("<kubeconfig>"), mesh.context or None)
        out += ["2. Cluster (yours: never created nor deleted)",
                f"  kubeconfig: {where}",
                "  reachability: GET /version through the kubernetes client before anything else",
                "  permissions: one SelfSubjectAccessReview per verb the run needs, cluster-wide "
                "(platform/kube/rbac.py; the README lists them); every one missing is named before anything is "
                "created",
                "  ingress: the gateway Service's LoadBalancer address when it gets one, else a port-forward through "
                "the API server to a gateway pod",
                "  testbed agent: through the API server's pod proxy, or a port-forward where that cannot reach pods "
                "(decided once, recorded in the report)", ""]

    installer = installer_for(mesh, FOLDER, RUN, "<worker>", toolbox, on_kind=kind is not None)
    out.append(f"3. Mesh install ({installer.name})")
    flags = shlex.join(kube_flags(access))
    for step in installer.plan():
        out.append("  - " + step.replace(shlex.join(kube_flags(ClusterAccess(Path("<kubeconfig>"), "<context>"))),
                                         flags))
    if isinstance(installer, IstioctlInstaller) and kind is not None:
        out += [f"  IstioOperator overlay ({installer.overlay_path()}):", *_indent(installer.overlay_text(), "      ")]
    if isinstance(installer, HelmInstaller):
        out += [f"  gateway values ({installer.values_path()}):", *_indent(installer.values_text(), "      ")]
    out += ["  on failure: istioctl proxy-status, istioctl analyze -A, istioctl version -o json "
            f"{flags} into the run's diagnostics"]
    out += ["  - " + line if i == 0 else "  " + line for i, line in enumerate(gateway_api_crds.plan_lines())]
    out.append("")

    out.append(f"4. Manifests applied by the Kubernetes platform (server-side apply, field manager meshconform), "
               f"from {manifests_dir()}")
    from meshconform.platform.kube.platform import base_manifests
    for name, lines in manifest_images(pins=pins_for(mesh.image_digests, base_manifests())):
        out.append(f"  {name}")
        out += ["    " + line for line in lines]
    return "\n".join(out) + "\n"
