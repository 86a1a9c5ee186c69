"""Output the stand-ins replay, each shaped after where it is written in the real program (source file or
documentation named beside it). Versions, hashes and timings inside are examples; the shape is the fact.
Nothing here was captured from a real cluster: there is none on these machines."""

from __future__ import annotations

import json

# ---------------------------------------------------------------- docker / podman
# Recorded on this machine (docker CLI 28.2.2, no engine): `docker info --format '{{.ServerVersion}}'`
# printed an empty line on stdout, this on stderr, and exited 1.
DOCKER_NO_ENGINE_STDERR = ("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. "
                           "Is the docker daemon running?\n")
DOCKER_SERVER_VERSION = "28.2.2\n"  # `{{.ServerVersion}}` of a running engine: the server's version alone
PODMAN_VERSION = "5.4.2\n"  # podman-info(1): `.Version` placeholder -> `{{.Version.Version}}`
# docker container port reference (docs.docker.com/engine/reference/commandline/port): one `ip:port` line.
DOCKER_PORT_HTTP = "127.0.0.1:41235\n"
DOCKER_PORT_HTTPS = "127.0.0.1:41236\n"
DOCKER_PORT_LOAD_MESH = "127.0.0.1:41237\n"  # perf's nodePorts, same shape
DOCKER_PORT_LOAD_NO_MESH = "127.0.0.1:41238\n"
DOCKER_PORT_NONE_STDERR = "Error: No public port '30080/tcp' published for meshconform-control-plane\n"
# `docker pull` without a terminal (docker/cli cli/command/image/pull.go, jsonmessage without a TTY: one line per
# status), ending with the reference pulled.
DOCKER_PULL_STDOUT = """1.20.3: Pulling from istio/examples-bookinfo-details-v1
2d473b07cdd5: Pulling fs layer
2d473b07cdd5: Download complete
2d473b07cdd5: Pull complete
Digest: sha256:0000000000000000000000000000000000000000000000000000000000000001
Status: Downloaded newer image for istio/examples-bookinfo-details-v1:1.20.3
docker.io/istio/examples-bookinfo-details-v1:1.20.3
"""
# Docker Hub's answer past its anonymous pull limit, as the daemon relays it (docs.docker.com "Docker Hub usage
# and limits": `toomanyrequests: You have reached your pull rate limit...`).
DOCKER_PULL_LIMIT_STDERR = ("Error response from daemon: toomanyrequests: You have reached your pull rate limit. "
                            "You may increase the limit by authenticating and upgrading: "
                            "https://www.docker.com/increase-rate-limit\n")
# `docker info --format '{{.NCPU}} {{.MemTotal}}'`: the engine's CPUs and memory in bytes (a 2-vCPU, 7 GB runner).
DOCKER_CAPACITY = "2 7281799168\n"
DOCKER_CAPACITY_SMALL = "2 2085826560\n"  # Docker Desktop's old 2 GB default

# ---------------------------------------------------------------- kind (kubernetes-sigs/kind v0.32.0 sources)
# pkg/cmd/kind/version/version.go DisplayVersion: "kind v" + version + " " + go version + " " + GOOS/GOARCH
KIND_VERSION = "kind v0.33.0 go1.24.6 linux/amd64\n"
# pkg/cmd/kind/get/clusters/clusters.go: names on stdout, one per line; none: the message on stderr.
KIND_NO_CLUSTERS_STDERR = "No kind clusters found.\n"
# pkg/cluster/internal/create/create.go ("Creating cluster %q ...", logUsage, salutation), the status lines of
# pkg/internal/cli/status.go (" ✓ %s") for the actions' Status.Start texts (providers/docker/images.go,
# provider.go, actions/config, kubeadminit, installcni, installstorage, waitforready).
KIND_CREATE_STDERR = """Creating cluster "meshconform" ...
 ✓ Ensuring node image (kindest/node:v1.36.4) 🖼
 ✓ Preparing nodes 📦
 ✓ Writing configuration 📜
 ✓ Starting control-plane 🕹️
 ✓ Installing CNI 🔌
 ✓ Installing StorageClass 💾
 ✓ Waiting ≤ 3m0s for control-plane = Ready ⏳
 • Ready after 21s 💚
Set kubectl context to "kind-meshconform"
You can now use your cluster with:

kubectl cluster-info --context kind-meshconform --kubeconfig /tmp/kubeconfig

Thanks for using kind! 😊
"""
# cmd/kind/app/main.go ("ERROR: %v"), createcluster.go ("failed to create cluster"), create.go alreadyExists.
KIND_ALREADY_EXISTS_STDERR = ('ERROR: failed to create cluster: node(s) already exist for a cluster with the name '
                              '"meshconform"\n')
# A failure part-way (the status line turns into " ✗ %s", status.go), then main.go's ERROR line around
# pkg/exec/types.go RunError ("command \"%s\" failed with error: %v").
KIND_CREATE_FAILED_STDERR = """Creating cluster "meshconform" ...
 ✓ Ensuring node image (kindest/node:v1.36.4) 🖼
 ✗ Preparing nodes 📦
ERROR: failed to create cluster: command "docker run --name meshconform-control-plane ..." failed with error: \
exit status 125
"""
# pkg/cmd/kind/load/docker-image/docker-image.go: one line per image not yet on the node.
KIND_LOAD_STDERR = ('Image: "docker.io/istio/examples-bookinfo-details-v1:1.20.3" with ID "sha256:' + "0" * 63 + '2" '
                    'not yet present on node "meshconform-control-plane", loading...\n')
# The same under Docker's containerd image store (kind#3795): ctr cannot import what `docker save` wrote.
KIND_LOAD_DIGEST_STDERR = ('ERROR: failed to load image: command "docker exec --privileged -i '
                           'meshconform-control-plane ctr --namespace=k8s.io images import --all-platforms --digests '
                           '--snapshotter=overlayfs -" failed with error: exit status 1\nCommand Output: ctr: content '
                           'digest sha256:' + "0" * 63 + '3: not found\n')
# pkg/cmd/kind/delete/cluster/deletecluster.go, pkg/cluster/internal/delete/delete.go
KIND_DELETE_STDERR = 'Deleting cluster "meshconform" ...\nDeleted nodes: ["meshconform-control-plane"]\n'
# pkg/cmd/kind/export/kubeconfig/kubeconfig.go
KIND_EXPORT_KUBECONFIG_STDERR = 'Set kubectl context to "kind-meshconform"\n'
# pkg/cmd/kind/export/logs/logs.go: the message on stderr, the folder on stdout
KIND_EXPORT_LOGS_STDERR = 'Exporting logs for cluster "meshconform" to:\n'
# A kubeconfig as kind writes it (clientcmd v1 layout; data shortened, no real key).
KUBECONFIG = """apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: LS0tLS1CRUdJTi...
    server: https://127.0.0.1:39321
  name: kind-meshconform
contexts:
- context:
    cluster: kind-meshconform
    user: kind-meshconform
  name: kind-meshconform
current-context: kind-meshconform
kind: Config
preferences: {}
users:
- name: kind-meshconform
  user:
    client-certificate-data: LS0tLS1CRUdJTi...
    client-key-data: LS0tLS1CRUdJTi...
"""

# ---------------------------------------------------------------- istioctl (istio/istio release-1.31 sources)
# pkg/version/cobra.go + cobra_test.go case 3 (`version --remote=false -o json`): BuildInfo json tags.
ISTIOCTL_CLIENT_VERSION = json.dumps({"clientVersion": {
    "version": "1.31.1", "revision": "3e9a6c1d0f2b8a7c5d4e3f2a1b0c9d8e7f6a5b4c", "golang_version": "go1.25.4",
    "status": "Clean", "tag": "1.31.1"}}, indent=2) + "\n"
# istioctl/pkg/version/version.go getRemoteInfoWrapper: without istiod it prints this line and no meshVersion.
ISTIOCTL_VERSION_NO_MESH = ("Istio is not present in the cluster: no running Istio pods in namespace "
                            "\"istio-system\"\n" + ISTIOCTL_CLIENT_VERSION)


def istioctl_mesh_version(version: str = "1.31.1", revision: str = "default") -> str:
    """`istioctl version -o json` with a control plane (cobra_test.go case 7 layout; ServerInfo has no json
    tags, so Component/Revision/Info; Component is the istiod pod's `istio` label, pkg/kube/client.go)."""
    data = json.loads(ISTIOCTL_CLIENT_VERSION)
    data["meshVersion"] = [{"Component": "pilot", "Revision": revision, "Info": {
        "version": version, "revision": "3e9a6c1d0f2b8a7c5d4e3f2a1b0c9d8e7f6a5b4c", "golang_version": "go1.25.4",
        "status": "Clean", "tag": version}}]
    return json.dumps(data, indent=2) + "\n"


# operator/pkg/util/progress/progress.go + component.go names/icons; progress_test.go shows the lines.
ISTIOCTL_INSTALL_STDOUT = ("✔ Istio core installed ⛵️\n✔ Istiod installed 🧠\n✔ Ingress gateways installed 🛬\n"
                           "✔ Installation complete\n")
# progress_test.go: "✘ <component> encountered an error: <error>"
ISTIOCTL_INSTALL_FAILED_STDERR = ("✔ Istio core installed ⛵️\n✔ Istiod installed 🧠\n✘ Ingress gateways encountered "
                                  "an error: failed to wait for resource: resources not ready after 5m0s: context "
                                  "deadline exceeded\n  Deployment/istio-system/istio-ingressgateway (container "
                                  "failed to start: ImagePullBackOff)\nError: failed to install manifests: errors "
                                  "occurred during operation\n")
ISTIOCTL_UNINSTALL_STDOUT = "✔ Uninstall complete\n"  # progress.go StateUninstallComplete
# pkg/config/analysis/diag/message.go String(): "<Level> [<Code>] (<resource>) <message>"; exit 79 on findings
# at or above --failure-threshold (istioctl/cmd/sysexits.go).
ISTIOCTL_ANALYZE_FINDINGS = ('Error [IST0101] (VirtualService default/reviews) Referenced host not found: '
                             '"reviews-v9"\nError: Analyzers found issues when analyzing all namespaces.\n')
# istioctl/pkg/writer/pilot/testdata/multiXdsStatusSinglePilot.txt (header and one row, as istioctl prints it)
ISTIOCTL_PROXY_STATUS = ("NAME                              CLUSTER        ISTIOD                     VERSION     "
                         "SUBSCRIBED TYPES\nproductpage-v1-5d9b4c9849-zkq7d.default     Kubernetes     "
                         "istiod-7b69f9b5c4-x2j4q     1.31.1      4 (CDS,LDS,EDS,RDS)\n")

# ---------------------------------------------------------------- helm (helm/helm v4.2.4 sources)
HELM_VERSION = "v4.2.4+g3900f43\n"  # pkg/cmd/version.go formatVersion(short): "%s+g%s" version, commit[:7]


def helm_install_stdout(release: str) -> str:
    """pkg/cmd/status.go statusPrinter.WriteTable (NAME, LAST DEPLOYED, NAMESPACE, STATUS, REVISION,
    DESCRIPTION, TEST SUITE)."""
    return (f"NAME: {release}\nLAST DEPLOYED: Sun Nov 22 07:01:12 2026\nNAMESPACE: istio-system\nSTATUS: deployed\n"
            "REVISION: 1\nDESCRIPTION: Install complete\nTEST SUITE: None\n")


def helm_list(*releases: str) -> str:
    """`helm list -o json`: pkg/cmd/list.go releaseElement json tags."""
    return json.dumps([{"name": r, "namespace": "istio-system", "revision": "1",
                        "updated": "2026-11-20 09:12:44.1 +0000 UTC", "status": "deployed",
                        "chart": f"{r}-1.31.1", "app_version": "1.31.1"} for r in releases]) + "\n"


# Helm's error when a resource belongs to another installation (pkg/action/validate.go existingResourceConflict)
HELM_CONFLICT_STDERR = ('Error: INSTALLATION FAILED: Unable to continue with install: CustomResourceDefinition '
                        '"authorizationpolicies.security.istio.io" in namespace "" exists and cannot be imported into '
                        'the current release: invalid ownership metadata\n')

# `istioctl proxy-status -o json`: protomarshal of istiod's DiscoveryResponse (istioctl/pkg/writer/pilot/status.go
# printMachineReadable); the shape of istioctl/pkg/writer/pilot/testdata/multiXdsStatusSinglePilot.json.
ISTIOCTL_PROXY_STATUS_JSON = json.dumps({
    "versionInfo": "1.31.1",
    "resources": [{
        "@type": "type.googleapis.com/envoy.service.status.v3.ClientConfig",
        "node": {"id": "productpage-v1-5d9b4c9849-zkq7d.default",
                 "metadata": {"CLUSTER_ID": "Kubernetes", "ISTIO_VERSION": "1.31.1"}},
        "genericXdsConfigs": [
            {"typeUrl": "type.googleapis.com/envoy.config.cluster.v3.Cluster", "configStatus": "SYNCED"},
            {"typeUrl": "type.googleapis.com/envoy.config.listener.v3.Listener", "configStatus": "SYNCED"},
            {"typeUrl": "type.googleapis.com/envoy.config.route.v3.RouteConfiguration", "configStatus": "SYNCED"},
            {"typeUrl": "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
             "configStatus": "SYNCED"}]}],
    "typeUrl": "type.googleapis.com/envoy.service.status.v3.ClientConfig",
    "controlPlane": {"identifier": json.dumps({"Component": "istiod", "ID": "istiod-7b69f9b5c4-x2j4q", "Info": {
        "version": "1.31.1", "revision": "", "golang_version": "", "status": "", "tag": ""}})}}, indent=4) + "\n"
