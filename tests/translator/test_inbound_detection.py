"""Inbound ports that declare no protocol (detected) and declared ports no Service targets (passthrough), judged by
the filter chain Envoy would pick for a connection: istiod's chain options per mTLS mode (filterchain_options.go),
an HTTP chain for HTTP, a TCP proxy for anything else (Istio's TestInbound; istio.io "Protocol Selection")."""

from __future__ import annotations

import pytest

from meshconform.errors import ConfigError
from meshconform.platform.local.translator.model import ProxyConfig
from tests.translator import envoy_view as ev
from tests.translator.meshes import Mesh, peer_auth, pod

TCP = ev.Connection(http=False)
HTTP = ev.Connection()
TLS = ev.Connection(tls=True, alpn=("http/1.1",), http=False)
MTLS_TCP = ev.Connection(tls=True, client_certificate=True, alpn=("istio",), http=False)
MTLS_HTTP = ev.Connection(tls=True, client_certificate=True, alpn=("istio-http/1.1",))
DETECTED = 81  # a Service port named `auto`: no protocol Istio knows
PASSTHROUGH = 82  # declared by the pod, targeted by no Service
SERVICE = """
apiVersion: v1
kind: Service
metadata: {name: foo, namespace: default}
spec:
  selector: {app: foo}
  ports: [{name: http, port: 80, targetPort: 80}, {name: auto, port: 81, targetPort: 81}]
---
"""


def foo(mode: str | None = None, *extra: str) -> ProxyConfig:
    policies = [peer_auth("default", "istio-system", mode)] if mode else []
    mesh = Mesh().add(SERVICE, *policies, *extra).with_pods(pod("foo-0", labels={"app": "foo"}, ports=(80, 81, 82)))
    return mesh.translate()["default/foo-0"]


def handled(config: ProxyConfig, port: int, connection: ev.Connection) -> tuple[str, bool, str] | None:
    """(http or tcp, whether mTLS is terminated, the cluster) of the chain Envoy picks; None: no chain."""
    chain = ev.filter_chain(ev.inbound_listener(config, port), connection)
    if chain is None:
        return None
    terminated = ev.downstream_tls(chain) is not None
    last = chain["filters"][-1]
    if last["name"] == "envoy.filters.network.tcp_proxy":
        return "tcp", terminated, last["typed_config"]["cluster"]
    route = ev.route_for(ev.hcm(chain)["route_config"], ev.Request("foo"))
    assert route is not None
    return "http", terminated, next(iter(ev.cluster_shares(route)))


AUTO, PASS = "inbound|81||", "InboundPassthroughCluster"


@pytest.mark.parametrize(("mode", "connection", "expected"), [
    ("DISABLE", HTTP, ("http", False, AUTO)), ("DISABLE", TCP, ("tcp", False, AUTO)),
    ("DISABLE", TLS, ("tcp", False, AUTO)), ("DISABLE", MTLS_HTTP, ("tcp", False, AUTO)),
    ("PERMISSIVE", HTTP, ("http", False, AUTO)), ("PERMISSIVE", TCP, ("tcp", False, AUTO)),
    ("PERMISSIVE", TLS, ("tcp", False, AUTO)), ("PERMISSIVE", MTLS_HTTP, ("http", True, AUTO)),
    ("PERMISSIVE", MTLS_TCP, ("tcp", True, AUTO)),
    ("STRICT", HTTP, None), ("STRICT", TCP, None), ("STRICT", MTLS_HTTP, ("http", True, AUTO)),
    ("STRICT", MTLS_TCP, ("tcp", True, AUTO)), ("STRICT", TLS, ("tcp", True, AUTO)),  # TLS without a cert: refused
])
def test_a_port_without_a_declared_protocol_is_detected(mode: str, connection: ev.Connection,
                                                        expected: tuple[str, bool, str] | None) -> None:
    assert handled(foo(mode), DETECTED, connection) == expected


@pytest.mark.parametrize(("mode", "connection", "expected"), [
    ("DISABLE", HTTP, ("http", False, PASS)), ("DISABLE", MTLS_HTTP, ("tcp", False, PASS)),
    ("PERMISSIVE", TCP, ("tcp", False, PASS)), ("PERMISSIVE", MTLS_HTTP, ("http", True, PASS)),
    ("STRICT", TCP, None), ("STRICT", MTLS_TCP, ("tcp", True, PASS)),
])
def test_a_declared_port_no_service_targets_is_passthrough_to_the_app(mode: str, connection: ev.Connection,
                                                                      expected: tuple[str, bool, str] | None) -> None:
    config = foo(mode)
    assert handled(config, PASSTHROUGH, connection) == expected
    chain = ev.filter_chain(ev.inbound_listener(config, PASSTHROUGH), connection)
    if chain is not None:  # told where the app listens: the InboundPassthroughCluster goes there
        state = chain["filters"][0]["typed_config"]["on_new_connection"][0]
        assert state["format_string"]["text_format_source"]["inline_string"].endswith(f":{10000 + PASSTHROUGH}")


def test_an_http_port_never_proxies_tcp_and_disable_runs_no_tls_inspector() -> None:
    assert handled(foo("DISABLE"), 80, TLS) == ("http", False, "inbound|80||")  # a protocol error, as istiod
    assert handled(foo("PERMISSIVE"), 80, TLS) is None  # TLS without Istio's ALPN: no chain
    assert handled(foo("PERMISSIVE"), 80, TCP) == ("http", False, "inbound|80||")
    names = {f["name"] for f in ev.inbound_listener(foo("DISABLE"), 80)["listener_filters"]}
    assert names == set()
    detected = {f["name"] for f in ev.inbound_listener(foo("PERMISSIVE"), DETECTED)["listener_filters"]}
    assert detected == {"envoy.filters.listener.tls_inspector", "envoy.filters.listener.http_inspector"}


def test_authorization_on_a_workload_with_a_tcp_capable_port_is_refused() -> None:
    policy = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-all, namespace: default}
spec: {selector: {matchLabels: {app: foo}}}
---
"""
    with pytest.raises(ConfigError) as caught:
        foo(None, policy)
    assert caught.value.resource == "AuthorizationPolicy default/deny-all" and "TCP traffic" in str(caught.value)
