"""Every timeout of an external program this package runs, in one place (seconds).

A subprocess never runs without one of these; `--readiness-timeout` feeds the installers' own waits and
their process deadlines are derived from it here, never at the call site."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ToolTimeouts:
    version: float = 30.0  # `kind version`, `istioctl version --remote=false`, `helm version`, a hook's `version`
    engine_probe: float = 20.0  # `docker info` / `podman info`: a stuck daemon socket must not hang the preflight
    download: float = 300.0  # one binary download (tens of MB)
    download_lock: float = 600.0  # waiting for another worker's download of the same binary
    kind_query: float = 60.0  # `kind get clusters`, `kind export kubeconfig`, `docker port`
    image_pull: float = 900.0  # one image pulled on this host (Bookinfo's reviews are hundreds of MB)
    image_load: float = 900.0  # `kind load` of every image into the node (or `<engine> save` + image-archive)
    kind_create: float = 900.0  # `kind create cluster` incl. pulling the node image (~1 GB) and `--wait`
    kind_create_wait: str = "180s"  # kind's own `--wait` for the control plane (Istio's CI uses 180s)
    kind_delete: float = 300.0
    kind_export_logs: float = 300.0
    cluster_probe: float = 15.0  # reaching a user's API server in the `cluster` preflight
    install_margin: float = 300.0  # added to --readiness-timeout for istioctl/helm (image pulls, CRDs)
    uninstall: float = 600.0
    hook: float = 3600.0  # a vendor's own install/cleanup (may install a whole distribution)
    istioctl_query: float = 120.0  # `istioctl version` (remote), `proxy-status`, `analyze`
    helm_query: float = 60.0  # `helm list`


TIMEOUTS = ToolTimeouts()


def install_deadline(readiness_timeout: float) -> float:
    """The process deadline of an istioctl/helm install that waits `readiness_timeout` itself."""
    return readiness_timeout + TIMEOUTS.install_margin
