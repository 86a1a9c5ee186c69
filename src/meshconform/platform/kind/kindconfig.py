"""The kind cluster we create: the node image pinned by digest for the pinned kind release, and the kind
config (kind.x-k8s.io/v1alpha4, fields from kind's pkg/apis/config/v1alpha4/types.go) whose
extraPortMappings publish the ingress gateway's fixed HTTP and HTTPS nodePorts on 127.0.0.1, and the two
nodePorts `meshconform perf` uses to reach a Bookinfo pod with and without its sidecar (LOAD_NODE_PORTS).

The gateway's Service must use exactly `NODE_PORTS` (the installers set them). Host ports are left to
kind (unset `hostPort`: kind picks a free port, stable across restarts, types.go) and read back with
`docker port`, so parallel clusters never collide on a fixed host port (kind#3681)."""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from meshconform.errors import PlatformError
from meshconform.platform.kube.contracts import LOAD_NODE_PORTS, LoadNodePorts

# kind release -> the 1.36 node image built for it. Not kind v0.33.0's default (v1.37.0): Istio 1.30/1.31
# support Kubernetes 1.32-1.36 only (istio.io release announcements for 1.30 and 1.31). Digests: kind's
# pkg/apis/config/defaults/image.go at each release tag, and its release notes.
NODE_IMAGES = {
    "v0.33.0": "kindest/node:v1.36.4@sha256:099e049362a1526b2db71494e1947aae99bd16290d7c895f2b7ea312e3cbfaed",
    "v0.32.0": "kindest/node:v1.36.1@sha256:3489c7674813ba5d8b1a9977baea8a6e553784dab7b84759d1014dbd78f7ebd5",
}


@dataclass(frozen=True)
class NodePorts:
    http: int = 30080  # Service port 80 -> gateway pod 8080 (istio-ingressgateway layout)
    https: int = 30443  # Service port 443 -> gateway pod 8443


NODE_PORTS = NodePorts()
CONTEXT_PREFIX = "kind-"  # kind names the kubeconfig context kind-<cluster> (kubeconfig.ContextForCluster)
LISTEN_ADDRESS = "127.0.0.1"  # reachable from this host only, never from the network


def node_image(kind_version: str, given: str = "") -> str:
    """The node image: `given` (must carry a digest), else the one pinned for this kind release."""
    image = given or NODE_IMAGES.get(kind_version, "")
    if not image:
        raise PlatformError(f"no node image is pinned for kind {kind_version} (pinned: {', '.join(NODE_IMAGES)}); "
                            "pass --kind-node-image kindest/node:<version>@sha256:<digest> from that kind "
                            "release's notes")
    if "@sha256:" not in image:
        raise PlatformError(f"--kind-node-image {image}: pin it by digest (…@sha256:<64 hex>); kind supports only "
                            "the images built for its own release, and a tag can move")
    return image


def control_plane_container(cluster: str) -> str:
    """kind names a single-node cluster's node container <cluster>-control-plane."""
    return f"{cluster}-control-plane"


def published(ports: NodePorts = NODE_PORTS, load: LoadNodePorts = LOAD_NODE_PORTS) -> tuple[int, ...]:
    """Every nodePort the kind config publishes: the gateway's HTTP and HTTPS, then perf's mesh and no-mesh."""
    return (ports.http, ports.https, *load.all())


MIRRORED_REGISTRY = "docker.io"  # where Bookinfo's, the testbed's and Istio's images come from
CERTS_D = "/etc/containerd/certs.d"  # containerd's registry host configuration, enabled in kind's node images
# (v0.27.0+; kind site/static/examples/kind-with-registry.sh)


def mirror_hosts_toml(mirror: str) -> str:
    """containerd's hosts.toml for docker.io: pull and resolve through `mirror`, the registry itself behind it
    (containerd docs/hosts.md)."""
    return (f'server = "https://registry-1.docker.io"\n\n[host."{mirror.rstrip("/")}"]\n'
            '  capabilities = ["pull", "resolve"]\n')


def render(cluster: str, image: str, ports: NodePorts = NODE_PORTS, load: LoadNodePorts = LOAD_NODE_PORTS,
           mirror_dir: str = "") -> str:
    """The kind config for `cluster`: one node (as Istio's own CI), the gateway's and perf's nodePorts published
    on 127.0.0.1 (containerPort must equal the Service nodePort: kind docs/user/configuration.md); with a registry
    mirror, its hosts.toml folder mounted as the node's containerd configuration for docker.io."""
    node: dict[str, object] = {
        "role": "control-plane",
        "image": image,
        "extraPortMappings": [
            {"containerPort": port, "listenAddress": LISTEN_ADDRESS, "protocol": "TCP"}
            for port in published(ports, load)],
    }
    if mirror_dir:
        node["extraMounts"] = [{"hostPath": mirror_dir, "containerPath": f"{CERTS_D}/{MIRRORED_REGISTRY}",
                                "readOnly": True}]
    config = {"kind": "Cluster", "apiVersion": "kind.x-k8s.io/v1alpha4", "name": cluster, "nodes": [node]}
    return yaml.safe_dump(config, sort_keys=False)
