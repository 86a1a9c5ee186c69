"""The options of the `kind` and `cluster` platforms (`--mesh-<name>` in pytest, `--<name>` on the CLI) and
their typed, validated form. Options both platforms take are declared once here and listed by both (the
registry accepts one option shared by several platforms when the declaration is identical)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meshconform.errors import PlatformError
from meshconform.platform.kind.binaries import DEFAULT_VERSIONS, normalise_version
from meshconform.platform.registry import PlatformOption

INSTALL_METHODS = ("istioctl", "helm", "none")  # or the path of a vendor's hook executable
DEFAULT_HUB = "docker.io/istio"  # not gcr.io/istio-release nor registry.istio.io/release: retired Dec 2026 (§3.2)
DEFAULT_CLUSTER = "meshconform"
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

# Both platforms (one declaration each, listed by both).
SHARED_OPTIONS = (
    PlatformOption("kubeconfig", "kubeconfig file (cluster: default $KUBECONFIG or ~/.kube/config; kind: where "
                                 "kind writes the new cluster's, default a private file in the run folder)"),
    PlatformOption("context", "kubeconfig context (cluster: default the current context; kind: kind-<name>)"),
    PlatformOption("install", "how the mesh is installed: istioctl, helm, none (already installed, e.g. a "
                              "vendor distribution) or the path of a vendor hook executable", default="istioctl"),
    PlatformOption("istio-version", "Istio version installed and istioctl/charts used",
                   default=DEFAULT_VERSIONS["istioctl"]),
    PlatformOption("istio-revision", "install Istio as this revision (istioctl -r / Helm revision)"),
    PlatformOption("istio-hub", "image registry for Istio's images", default=DEFAULT_HUB),
    PlatformOption("readiness-timeout", "seconds to wait for istiod and the ingress gateway", default="300"),
    PlatformOption("keep-mesh", "leave the mesh installed at the end (default: uninstall what was installed)",
                   flag=True),
    PlatformOption("allow-unpinned-images", "deprecated, ignored (with a warning): Bookinfo goes by the tags Istio "
                                            "publishes and the report records each digest run; accepted so older "
                                            "command lines still work", flag=True),
    PlatformOption("require-pinned-images", "refuse, before any cluster exists, every workload image not pinned by "
                                            "digest (Bookinfo is named by the tags Istio publishes; the digest each "
                                            "pod ran is in the report either way)", flag=True),
    PlatformOption("image-digests", "a YAML file pinning images the manifests name by tag: `image: sha256:<digest>` "
                                    "per line (e.g. from a previous run's images.ran); applied before the run, "
                                    "shown in the plan, and compared with what the pods ran"),
    PlatformOption("istioctl-sha256", "SHA-256 of the istioctl archive (required for versions without a "
                                      "pinned checksum)"),
    PlatformOption("istioctl-binary", "use this istioctl (a path or a name on PATH) instead of downloading; "
                                      "its version must be --istio-version"),
    PlatformOption("helm-version", "Helm version used with --install helm", default=DEFAULT_VERSIONS["helm"]),
    PlatformOption("helm-sha256", "SHA-256 of the helm archive (versions without a pinned checksum)"),
    PlatformOption("helm-binary", "use this helm (a path or a name on PATH) instead of downloading"),
    PlatformOption("download-mirror", "fetch binaries from <mirror>/<tool>/<version>/<asset> instead of the "
                                      "official release hosts (checksums are verified all the same)"),
)

KIND_OPTIONS = (
    PlatformOption("kind-cluster-name", "kind cluster name; an existing cluster of that name is reused (and "
                                        "never deleted)", default=DEFAULT_CLUSTER),
    PlatformOption("keep-cluster", "leave the kind cluster (and its mesh) running at the end", flag=True),
    PlatformOption("kind-node-image", "node image, pinned by digest (default: the 1.36 image of the kind release)"),
    PlatformOption("kind-version", "kind release used", default=DEFAULT_VERSIONS["kind"]),
    PlatformOption("kind-sha256", "SHA-256 of the kind binary (versions without a pinned checksum)"),
    PlatformOption("kind-binary", "use this kind (a path or a name on PATH) instead of downloading; its version "
                                  "must be --kind-version"),
    PlatformOption("container-engine", "docker or podman (default: the first whose engine answers)"),
    PlatformOption("registry-mirror", "the node pulls docker.io images through this registry mirror (URL) instead of "
                                      "meshconform pulling them on this host and loading them into the node"),
)


@dataclass(frozen=True)
class MeshSettings:
    """What both platforms need to reach a cluster and install the mesh."""

    kubeconfig: str
    context: str
    install: str
    istio_version: str
    revision: str
    hub: str
    readiness_timeout: float
    keep_mesh: bool
    istioctl_sha256: str
    istioctl_binary: str
    helm_version: str
    helm_sha256: str
    helm_binary: str
    download_mirror: str
    image_digests: str = ""  # the pins file, resolved (kube/images.py load_pins reads it)


@dataclass(frozen=True)
class KindSettings:
    cluster_name: str
    keep_cluster: bool
    node_image: str
    kind_version: str
    kind_sha256: str
    kind_binary: str
    container_engine: str
    registry_mirror: str = ""


def _text(values: Mapping[str, Any], key: str, default: str = "") -> str:
    value = values.get(key)
    return default if value in (None, "") else str(value).strip()


def mesh_settings(values: Mapping[str, Any]) -> MeshSettings:
    """The shared options, validated: a bad value is one clear error naming the option."""
    install = _text(values, "install", "istioctl")
    if install not in INSTALL_METHODS and "/" not in install:
        raise PlatformError(f"--install {install!r}: one of {', '.join(INSTALL_METHODS)}, or the path of a vendor "
                            "hook executable (e.g. ./vendor-hook)")
    raw_timeout = _text(values, "readiness_timeout", "300")
    try:
        readiness = float(raw_timeout)
    except ValueError:
        readiness = -1.0
    if readiness <= 0:
        raise PlatformError(f"--readiness-timeout {raw_timeout!r}: a positive number of seconds")
    revision = _text(values, "istio_revision")
    if revision and not _DNS_LABEL.match(revision):
        raise PlatformError(f"--istio-revision {revision!r}: a DNS label (lower-case letters, digits, '-'), "
                            "e.g. 1-31-1")
    return MeshSettings(
        kubeconfig=_text(values, "kubeconfig"), context=_text(values, "context"), install=install,
        istio_version=normalise_version("istioctl", _text(values, "istio_version", DEFAULT_VERSIONS["istioctl"])),
        revision=revision, hub=_text(values, "istio_hub", DEFAULT_HUB), readiness_timeout=readiness,
        keep_mesh=bool(values.get("keep_mesh")), istioctl_sha256=_text(values, "istioctl_sha256"),
        istioctl_binary=_text(values, "istioctl_binary"),
        helm_version=normalise_version("helm", _text(values, "helm_version", DEFAULT_VERSIONS["helm"])),
        helm_sha256=_text(values, "helm_sha256"), helm_binary=_text(values, "helm_binary"),
        download_mirror=_text(values, "download_mirror"),
        image_digests=str(Path(pins).expanduser().resolve()) if (pins := _text(values, "image_digests")) else "")


def kind_settings(values: Mapping[str, Any]) -> KindSettings:
    name = _text(values, "kind_cluster_name", DEFAULT_CLUSTER)
    if not _DNS_LABEL.match(name):
        raise PlatformError(f"--kind-cluster-name {name!r}: lower-case letters, digits and '-' (it names containers "
                            "and the kubeconfig context)")
    engine = _text(values, "container_engine")
    if engine and engine not in ("docker", "podman"):
        raise PlatformError(f"--container-engine {engine!r}: docker or podman")
    mirror = _text(values, "registry_mirror")
    if mirror and not re.match(r"^https?://[^/\s]+", mirror):
        raise PlatformError(f"--registry-mirror {mirror!r}: a registry URL, e.g. https://mirror.example.com or "
                            "http://kind-registry:5000")
    return KindSettings(
        registry_mirror=mirror,
        cluster_name=name, keep_cluster=bool(values.get("keep_cluster")), node_image=_text(values, "kind_node_image"),
        kind_version=normalise_version("kind", _text(values, "kind_version", DEFAULT_VERSIONS["kind"])),
        kind_sha256=_text(values, "kind_sha256"), kind_binary=_text(values, "kind_binary"), container_engine=engine)
