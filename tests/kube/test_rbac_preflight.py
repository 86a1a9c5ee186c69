"""The cluster preflight asks the cluster, with SelfSubjectAccessReview through the real client against the fake API
server, for every permission the run needs (platform/kube/rbac.py), and names each one missing with why it is
needed, before anything is created."""

from __future__ import annotations

import pytest

from meshconform.errors import PlatformError
from meshconform.platform.kind.lifecycle import ExistingCluster
from meshconform.platform.kind.settings import mesh_settings
from meshconform.platform.kube import rbac


def _cluster(kubeconfig, install: str = "none") -> ExistingCluster:
    return ExistingCluster(mesh_settings({"kubeconfig": str(kubeconfig), "context": "fake", "install": install}))


def test_every_missing_permission_is_named_with_why(fake_api) -> None:
    fake, kubeconfig = fake_api
    fake.denied = {("create", "", "pods", "exec"), ("delete", "networking.istio.io", "virtualservices", "")}
    with pytest.raises(PlatformError) as caught:
        _cluster(kubeconfig).check_permissions()
    message = str(caught.value)
    assert "  create pods/exec: a failing check's proxy config" in message
    assert "  delete networking.istio.io/virtualservices: the checks' config" in message
    assert "patch networking.istio.io/virtualservices" not in message  # granted: not named
    reviews = [c for c in fake.calls if c.path == "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"]
    asked = {tuple(c.body["spec"]["resourceAttributes"].get(k, "") for k in ("verb", "group", "resource",
                                                                            "subresource")) for c in reviews}
    assert len(asked) == len(reviews) == sum(len(p.verbs) for p in rbac.NEEDED) + len(rbac.REACH)
    assert all(c.method == "POST" and "namespace" not in c.body["spec"]["resourceAttributes"] for c in reviews)
    assert not [c for c in fake.calls if c.method in ("PATCH", "DELETE", "PUT")]  # nothing was created


def test_reaching_pods_needs_the_pod_proxy_or_port_forward(fake_api) -> None:
    fake, kubeconfig = fake_api
    fake.denied = {("create", "", "pods", "proxy")}
    _cluster(kubeconfig).check_permissions()  # port-forward is enough
    fake.denied.add(("create", "", "pods", "portforward"))
    with pytest.raises(PlatformError, match=r"create pods/proxy \(this or the next\).*\n.*create pods/portforward"):
        _cluster(kubeconfig).check_permissions()


def test_installing_istio_asks_for_cluster_admin(fake_api) -> None:
    fake, kubeconfig = fake_api
    fake.denied = {("*", "*", "*", "")}
    _cluster(kubeconfig, "none").check_permissions()
    with pytest.raises(PlatformError, match=r"\* \*/\*: installing Istio \(--install istioctl\|helm\) needs "
                                            "cluster-admin"):
        _cluster(kubeconfig, "istioctl").check_permissions()
