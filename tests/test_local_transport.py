"""The local platform's network stand-ins: where a request goes, and the original destination a sidecar's
PassthroughCluster forwards to (what iptables keeps on a cluster)."""

from __future__ import annotations

import json
from pathlib import Path

from meshconform.platform.local.translator.envoy_types import ORIGINAL_DST_HEADER
from meshconform.platform.local.transport import ResolverTransport, SidecarTransport

PROXY = "http://127.0.0.5:15001"


def test_a_meshed_app_names_where_it_would_have_connected() -> None:
    sidecar = SidecarTransport(PROXY)
    by_address = sidecar.target("127.0.0.9:8080", "/x")
    assert (by_address.url, by_address.proxy) == ("http://127.0.0.9:8080/x", PROXY)
    assert dict(by_address.headers) == {ORIGINAL_DST_HEADER: "127.0.0.9:8080"}
    assert dict(sidecar.target("127.0.0.9", "/x").headers) == {ORIGINAL_DST_HEADER: "127.0.0.9:80"}
    named = sidecar.target("outside.test", "/x", connect_to="127.0.0.9:80")
    assert named.url == "http://outside.test/x" and dict(named.headers) == {ORIGINAL_DST_HEADER: "127.0.0.9:80"}
    # A name alone (a service, or one no registry knows): no original destination, the sidecar routes by Host.
    assert sidecar.target("echo:8080", "/x").headers == ()


def test_an_app_without_sidecar_connects_to_addresses_and_connect_to_directly(tmp_path: Path) -> None:
    table = tmp_path / "services.json"
    table.write_text(json.dumps({"echo.default.svc.cluster.local:8080": ["127.0.0.3:8080"]}))
    plain = ResolverTransport(table, "default")
    assert plain.target("echo:8080", "/x").url == "http://127.0.0.3:8080/x"
    assert plain.target("127.0.0.9:8080", "/x").url == "http://127.0.0.9:8080/x"
    named = plain.target("outside.test", "/x", connect_to="127.0.0.9:8080")
    assert (named.url, named.host_header) == ("http://127.0.0.9:8080/x", "outside.test")
    assert plain.target("nowhere.test", "/x").url is None  # like DNS: an unknown name does not resolve
