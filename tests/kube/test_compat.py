"""The cluster's Kubernetes version against what the chosen Istio supports (kind-istio facts §3.1: Istio 1.30 and
1.31 support Kubernetes 1.32 to 1.36; kind v0.33.0's default node image is 1.37)."""

from __future__ import annotations

import pytest

from meshconform.errors import PlatformError
from meshconform.platform.kube.compat import check_supported, kube_minor


def test_versions_as_servers_report_them():
    assert kube_minor("v1.36.4") == (1, 36)
    assert kube_minor("v1.33.5+k3s1") == (1, 33)
    assert kube_minor("v1.34.1-gke.1829001") == (1, 34)
    with pytest.raises(PlatformError):
        kube_minor("unknown")


def test_support_range():
    assert check_supported("v1.36.4", "1.31.1") is None
    assert check_supported("v1.32.0", "1.30.5") is None
    with pytest.raises(PlatformError, match="Kubernetes v1.37.0, which Istio 1.31 does not support"):
        check_supported("v1.37.0", "1.31.1")
    with pytest.raises(PlatformError, match=r"1\.32 to 1\.36"):
        check_supported("v1.31.9", "1.30.3")
    assert "not in meshconform's support table" in check_supported("v1.36.4", "1.29.0")
    assert "mesh version unknown" in check_supported("v1.36.4", None)
