"""Registers the `kind` and `cluster` platforms (entry points `meshconform.platforms: kind, cluster`): their
options, preflight checks, dry-run plans, and how a platform is built from a lifecycle and an installer.

Kept free of heavy imports: the registry loads this module whenever platforms are listed."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from meshconform.errors import ConfigError, PlatformError
from meshconform.platform.api import Platform
from meshconform.platform.kind.settings import (
    KIND_OPTIONS,
    SHARED_OPTIONS,
    KindSettings,
    MeshSettings,
    kind_settings,
    mesh_settings,
)
from meshconform.platform.kube.contracts import ClusterLifecycle, MeshInstaller
from meshconform.platform.registry import PlatformContext, PlatformKind

# In the platform's folder: what `attach` (e.g. a later `meshconform down`) rebuilds the lifecycle and the
# installer from (KubePlatform keeps its own state in the run folder, kube-run.json).
RECORD = "kind-entry.json"
DEPRECATED_ALLOW_UNPINNED = (
    "meshconform: warning: --allow-unpinned-images is deprecated and ignored: nothing needs allowing any more "
    "(Bookinfo goes by the tags Istio publishes; the digest each pod ran is in the report, images.ran); drop it. "
    "For the opposite, --require-pinned-images (with --image-digests FILE to pin what is named by tag).")


def _parse(values: Mapping[str, Any], with_kind: bool) -> tuple[MeshSettings, KindSettings | None]:
    mesh = mesh_settings(values)
    kind = kind_settings(values) if with_kind else None
    if kind is not None and kind.keep_cluster:
        mesh = replace(mesh, keep_mesh=True)  # a kept cluster keeps its mesh
    return mesh, kind


def _kube_platform(context: PlatformContext, lifecycle: ClusterLifecycle, installer: MeshInstaller,
                   name: str) -> Platform:
    """The one place the Kubernetes platform core is built (imported lazily: heavy, and a separate package)."""
    try:
        from meshconform.platform.kube import images
        from meshconform.platform.kube.platform import KubePlatform, base_manifests
    except ImportError as exc:
        raise PlatformError(f"the Kubernetes platform core (meshconform.platform.kube) is not available in this "
                            f"build: {exc}") from None
    pins = images.pins_for(mesh_settings(context.settings).image_digests, base_manifests())
    platform: Platform = KubePlatform(context, lifecycle, installer, name=name,
                                      require_pinned_images=bool(context.settings.get("require_pinned_images")),
                                      image_pins=pins)
    return platform


def _build(context: PlatformContext, with_kind: bool) -> Platform:
    from meshconform.platform.kind.installers import installer_for
    from meshconform.platform.kind.lifecycle import ExistingCluster, KindLifecycle
    from meshconform.platform.kind.toolbox import Toolbox
    mesh, kind = _parse(context.settings, with_kind)
    toolbox = Toolbox(mesh, kind)
    installer = installer_for(mesh, context.folder, context.session_dir, context.worker, toolbox,
                              on_kind=kind is not None)
    lifecycle: ClusterLifecycle
    if kind is not None:
        lifecycle = KindLifecycle(context.folder, context.session_dir, context.worker, mesh, kind, toolbox)
        installer.cluster_goes_away = lifecycle.will_delete
    else:
        lifecycle = ExistingCluster(mesh)
    return _kube_platform(context, lifecycle, installer, "kind" if with_kind else "cluster")


def _create(context: PlatformContext, with_kind: bool) -> Platform:
    context.folder.mkdir(parents=True, exist_ok=True)
    record = {"session_dir": str(context.session_dir), "worker": context.worker,
              "settings": {k: v for k, v in context.settings.items() if isinstance(v, str | bool | int | float)}}
    (context.folder / RECORD).write_text(json.dumps(record, indent=1))
    return _build(context, with_kind)


def _attach(folder: Path, settings: Mapping[str, Any], with_kind: bool) -> Platform:
    """The platform `up` made in `folder`, rebuilt with the settings it was made with (a later `down` is
    given none), so that it removes exactly what was made."""
    path = folder / RECORD
    if not path.exists():
        raise PlatformError(f"{folder} holds no kind/cluster platform record ({RECORD})")
    record = json.loads(path.read_text())
    defaults = {o.dest: (False if o.flag else o.default) for o in (*KIND_OPTIONS, *SHARED_OPTIONS)}
    given = {k: v for k, v in settings.items() if v not in (None, "", False) and v != defaults.get(k)}
    context = PlatformContext(folder, Path(record["session_dir"]), record["worker"], {**record["settings"], **given})
    return _build(context, with_kind)


def static_checks(settings: Mapping[str, Any], with_kind: bool) -> tuple[MeshSettings, KindSettings | None]:
    """What the real run checks before it touches anything that needs no engine, cluster or network: option
    values, a release of each binary for this host, the hook file, the node image, and the workload images (well
    formed; with --require-pinned-images, pinned by digest). The dry run makes the same checks, so it fails
    whenever the real run would stop here."""
    from meshconform.platform.kind import kindconfig
    from meshconform.platform.kind.toolbox import Toolbox
    from meshconform.platform.kube import images
    from meshconform.platform.kube.platform import base_manifests
    mesh, kind = _parse(settings, with_kind)
    if settings.get("allow_unpinned_images"):
        print(DEPRECATED_ALLOW_UNPINNED, file=sys.stderr)
    toolbox = Toolbox(mesh, kind)
    for tool in (["kind"] if kind else []) + ["istioctl"] + (["helm"] if mesh.install == "helm" else []):
        if not toolbox.choice(tool)[2]:  # downloaded: the release must publish one for this host
            toolbox.artifact(tool)
    if mesh.install not in ("istioctl", "helm", "none") and not Path(mesh.install).expanduser().is_file():
        raise PlatformError(f"--install {mesh.install}: no such hook file")
    if kind is not None:
        kindconfig.node_image(kind.kind_version, kind.node_image)
    try:
        pins = images.pins_for(mesh.image_digests, base_manifests())
        uses = images.uses_in_files(base_manifests())
        images.check([replace(use, image=pins.pinned(use.image)) if pins else use for use in uses],
                     bool(settings.get("require_pinned_images")))
    except ConfigError as exc:
        raise PlatformError(str(exc)) from None
    return mesh, kind


def _preflight(settings: Mapping[str, Any], with_kind: bool) -> None:
    """One clear error now instead of a failure minutes in: the static checks, then the container engine and its
    size (kind), or the cluster: reachable, and every permission the run needs granted (cluster)."""
    mesh, kind = static_checks(settings, with_kind)
    if kind is not None:
        from meshconform.platform.kind.engine import check_capacity, detect
        check_capacity(detect(kind.container_engine))
    else:
        from meshconform.platform.kind.lifecycle import ExistingCluster
        cluster = ExistingCluster(mesh)
        cluster.check_reachable()
        cluster.check_permissions()


def _plan(settings: Mapping[str, Any], platform: str) -> str:
    from meshconform.platform.kind.plan import plan
    mesh, kind = static_checks(settings, platform == "kind")
    return plan(platform, mesh, kind)


KIND = PlatformKind(
    name="kind",
    summary="real Istio on a kind cluster created for the run (docker or podman needed)",
    create=lambda context: _create(context, True),
    attach=lambda folder, settings: _attach(folder, settings, True),
    options=(*KIND_OPTIONS, *SHARED_OPTIONS),
    preflight=lambda settings: _preflight(settings, True),
    plan=lambda settings: _plan(settings, "kind"),
    shared=True,  # every worker of a run uses the one cluster and mesh (see shared.py)
)

CLUSTER = PlatformKind(
    name="cluster",
    summary="a mesh on your own Kubernetes cluster (kubeconfig/context): installed by meshconform or yours",
    create=lambda context: _create(context, False),
    attach=lambda folder, settings: _attach(folder, settings, False),
    options=SHARED_OPTIONS,
    preflight=lambda settings: _preflight(settings, False),
    plan=lambda settings: _plan(settings, "cluster"),
    shared=True,
)
