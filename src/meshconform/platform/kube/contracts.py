"""The contract between the Kubernetes platform core (this package) and what brings a cluster and a mesh:
a `ClusterLifecycle` (kind creates one, `cluster` only checks the user's) and a `MeshInstaller`
(istioctl, helm, none, or a vendor's executable). Both live in `meshconform.platform.kind`; the core only
calls them through these protocols. Extend only by adding optional members.

How KubePlatform calls them (a run's xdist workers share one platform, see shared.py): `ensure` and `install`
in every worker's `up`, `uninstall` and `teardown` in every worker's `down` (after the last worker has removed
the run's objects): the lifecycle and installer share the cluster and the mesh among the run's workers themselves
(first one makes, last one removes). `ingress_address` once per run, by the first worker; `proxy_status` after
every apply and delete (`istioctl proxy-status -o json` output, or None when istioctl is not available:
convergence then rests on the suite's marker probes); `describe` for the report; `diagnostics` on any failure,
into a folder under the platform's diagnostics.

Optional lifecycle member (looked up with getattr; a lifecycle without it publishes nothing):
`published_node_port(node_port) -> (host, port) | None`: where this host reaches a nodePort of the cluster
(kind: the host port its extraPortMappings got, on 127.0.0.1), None when it is not published. `meshconform
perf` uses it for `LOAD_NODE_PORTS`; a lifecycle that implements it is asked once the cluster exists.
`ingress_node_ports: (http, https)`: the gateway Service's nodePorts that `ingress_address` publishes; KubePlatform
reads the Service back after the install and stops, naming both, when they differ.

A lifecycle whose `ingress_address` is None (cluster): the gateway Service's LoadBalancer address when it gets one
(within KubeTimeouts.ingress_address), else a port-forward of each process's own through the API server."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol


@dataclass(frozen=True)
class LoadNodePorts:
    """Fixed nodePorts of the NodePort Services `meshconform perf` creates to reach one Bookinfo pod from outside
    the cluster: `mesh` (productpage in the injected namespace, entered through its sidecar) and `no_mesh` (its twin
    in the namespace without injection). A lifecycle that can publish them on this host (kind) does."""

    mesh: int = 30090
    no_mesh: int = 30091

    def all(self) -> tuple[int, int]:
        return (self.mesh, self.no_mesh)


LOAD_NODE_PORTS = LoadNodePorts()


@dataclass(frozen=True)
class ClusterAccess:
    """How to reach one cluster's API server."""

    kubeconfig: Path  # file
    context: str | None  # None: the kubeconfig's current context


class MeshInstaller(Protocol):
    name: str  # "istioctl" | "helm" | "none" | path of a vendor executable

    def plan(self) -> list[str]:
        """Human-readable steps, each with its exact command line."""
        ...

    def install(self, access: ClusterAccess) -> None:
        """Returns when istiod and the ingress gateway are ready."""
        ...

    def uninstall(self, access: ClusterAccess) -> None: ...

    def describe(self) -> dict[str, Any]:
        """Method, istio version, revision, profile, hub, vendor hook version."""
        ...

    def proxy_status(self, access: ClusterAccess) -> str | None:
        """`istioctl proxy-status` output if available."""
        ...

    def diagnostics(self, access: ClusterAccess, folder: Path) -> list[Path]:
        """E.g. proxy-status, analyze outputs, written under `folder`."""
        ...


class ClusterLifecycle(Protocol):
    def ensure(self) -> ClusterAccess:
        """kind: create (or reuse) the cluster; cluster: check reachability."""
        ...

    def teardown(self) -> None:
        """kind: delete what ensure created (unless kept); cluster: nothing."""
        ...

    def describe(self) -> dict[str, Any]:
        """kind version, node image, cluster name; or the context."""
        ...

    def diagnostics(self, folder: Path) -> list[Path]:
        """E.g. `kind export logs`, written under `folder`."""
        ...

    def ingress_address(self) -> tuple[str, int, int] | None:
        """kind: ("127.0.0.1", http, https) via extraPortMappings; None: ask the gateway Service."""
        ...
