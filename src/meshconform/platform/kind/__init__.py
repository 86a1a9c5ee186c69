"""Real Istio on real clusters: the `kind` platform (a kind cluster this package creates) and the `cluster`
platform (a cluster the user already has). This package owns what happens outside Python: the pinned,
checksum-verified binaries (kind, istioctl, helm), the cluster lifecycle and the mesh installers. The
Kubernetes-facing platform itself (apply, readiness, vantages, evidence) is `meshconform.platform.kube`."""
