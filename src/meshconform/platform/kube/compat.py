"""Which Kubernetes versions each Istio minor release supports (istio.io release announcements; istioctl's own
`MinK8SVersion = 32` in istioctl/pkg/install/k8sversion/version.go), checked before anything is installed."""

from __future__ import annotations

import re

from meshconform.errors import PlatformError

# Istio minor -> (oldest, newest) Kubernetes minor officially supported (1.x).
SUPPORTED: dict[str, tuple[int, int]] = {
    "1.30": (32, 36),  # announcing-1.30
    "1.31": (32, 36),  # announcing-1.31
}


def kube_minor(git_version: str) -> tuple[int, int]:
    """'v1.36.4' / 'v1.36.4+k3s1' / 'v1.36.4-gke.100' -> (1, 36)."""
    match = re.match(r"^v?(\d+)\.(\d+)", git_version.strip())
    if not match:
        raise PlatformError(f"cannot read the Kubernetes version from {git_version!r}")
    return int(match.group(1)), int(match.group(2))


def istio_minor(version: str) -> str:
    match = re.match(r"^(\d+)\.(\d+)", version.strip())
    if not match:
        raise PlatformError(f"cannot read the Istio version from {version!r}")
    return f"{match.group(1)}.{match.group(2)}"


def check_supported(kubernetes_git_version: str, istio_version: str | None) -> str | None:
    """Raises PlatformError if this Istio does not support this Kubernetes; returns a note when support is
    unknown (an Istio release not in the table, or no Istio version given: a vendor's mesh)."""
    major, minor = kube_minor(kubernetes_git_version)
    if not istio_version:
        return f"Kubernetes {kubernetes_git_version}: mesh version unknown, support not checked"
    release = istio_minor(istio_version)
    if release not in SUPPORTED:
        return f"Istio {istio_version}: not in meshconform's support table ({', '.join(SUPPORTED)}), not checked"
    low, high = SUPPORTED[release]
    if major != 1 or not low <= minor <= high:
        raise PlatformError(f"the cluster runs Kubernetes {kubernetes_git_version}, which Istio {release} does not "
                            f"support (1.{low} to 1.{high}); use a node image in that range (e.g. kind's "
                            "kindest/node:v1.36.4) or another Istio version")
    return None
