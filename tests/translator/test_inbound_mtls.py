"""Sidecar inbound listeners and PeerAuthentication, judged by which connections Envoy would accept:
STRICT takes mutual TLS only, PERMISSIVE both, DISABLE plaintext only; mesh, namespace, workload and port
level, the narrowest scope wins, the oldest policy wins within a scope, UNSET inherits (istio.io
PeerAuthentication reference; istiod pilot/pkg/security/authn/policy_applier.go; facts §4.4)."""

from __future__ import annotations

import pytest

from meshconform.platform.local.translator.model import ProxyConfig
from tests.translator import envoy_view as ev
from tests.translator.meshes import CA, Mesh, peer_auth, pod, service

MUTUAL_TLS = ev.Connection(tls=True, client_certificate=True, alpn=("istio",))
TLS_WITHOUT_CERTIFICATE = ev.Connection(tls=True, alpn=("istio",))
PLAINTEXT = ev.Connection()


def server_mesh(*policies: str) -> Mesh:
    """echo (ports 8080 and 9090) with a sidecar, `other` in the same namespace, `far` in namespace `far`."""
    mesh = Mesh().add(service("echo"), service("other"), *policies).with_pods(
        pod("echo-0", labels={"app": "echo", "version": "v1"}, ports=(8080, 9090)),
        pod("other-0", labels={"app": "other"}),
        pod("far-0", namespace="far", labels={"app": "echo"}))
    mesh.namespaces["far"] = {"istio-injection": "enabled"}
    return mesh


def mode(config: ProxyConfig, port: int = 8080) -> str:
    """The PeerAuthentication mode a listener behaves as."""
    inbound = ev.inbound_listener(config, port)
    mutual, plain = ev.accepts(inbound, MUTUAL_TLS), ev.accepts(inbound, PLAINTEXT)
    assert not ev.accepts(inbound, TLS_WITHOUT_CERTIFICATE), "mesh TLS always requires a client certificate"
    return {(True, False): "STRICT", (True, True): "PERMISSIVE", (False, True): "DISABLE"}[(mutual, plain)]


def modes(*policies: str) -> dict[str, str]:
    configs = server_mesh(*policies).translate()
    return {"echo": mode(configs["default/echo-0"]), "other": mode(configs["default/other-0"]),
            "far": mode(configs["far/far-0"])}


def test_no_policy_means_permissive() -> None:
    assert modes() == {"echo": "PERMISSIVE", "other": "PERMISSIVE", "far": "PERMISSIVE"}


@pytest.mark.parametrize("level", ["STRICT", "PERMISSIVE", "DISABLE"])
def test_mesh_wide_policy(level: str) -> None:
    assert modes(peer_auth("default", "istio-system", level)) == {"echo": level, "other": level, "far": level}


@pytest.mark.parametrize("level", ["STRICT", "PERMISSIVE", "DISABLE"])
def test_namespace_policy_applies_to_its_namespace_only(level: str) -> None:
    assert modes(peer_auth("default", "default", level)) == {"echo": level, "other": level, "far": "PERMISSIVE"}


def test_workload_policy_applies_to_selected_pods_of_its_namespace_only() -> None:
    found = modes(peer_auth("echo", "default", "STRICT", selector={"app": "echo"}))
    assert found == {"echo": "STRICT", "other": "PERMISSIVE", "far": "PERMISSIVE"}


@pytest.mark.parametrize(("policies", "expected"), [
    ([("istio-system", "STRICT", None), ("default", "PERMISSIVE", None)], "PERMISSIVE"),
    ([("istio-system", "DISABLE", None), ("default", "STRICT", None)], "STRICT"),
    ([("default", "STRICT", None), ("default", "DISABLE", {"app": "echo"})], "DISABLE"),
    ([("default", "DISABLE", {"app": "echo"}), ("default", "STRICT", None)], "DISABLE"),
    ([("istio-system", "STRICT", None), ("default", "PERMISSIVE", None), ("default", "DISABLE", {"app": "echo"})],
     "DISABLE"),
    ([("istio-system", "STRICT", None), ("default", "DISABLE", {"app": "echo"})], "DISABLE"),
], ids=["namespace-over-mesh", "namespace-over-mesh-2", "workload-over-namespace",
        "workload-over-namespace-created-first", "workload-over-all", "workload-over-mesh"])
def test_the_narrowest_scope_wins(policies: list[tuple[str, str, dict[str, str] | None]], expected: str) -> None:
    texts = [peer_auth(f"p{i}", ns, level, selector=sel) for i, (ns, level, sel) in enumerate(policies)]
    assert modes(*texts)["echo"] == expected


@pytest.mark.parametrize(("first", "second"), [("STRICT", "PERMISSIVE"), ("PERMISSIVE", "STRICT"),
                                               ("DISABLE", "STRICT")])
def test_the_oldest_policy_wins_among_equals(first: str, second: str) -> None:
    assert modes(peer_auth("a", "default", first), peer_auth("b", "default", second))["echo"] == first
    selector = {"app": "echo"}
    assert modes(peer_auth("a", "default", first, selector=selector),
                 peer_auth("b", "default", second, selector=selector))["echo"] == first
    assert modes(peer_auth("a", "istio-system", first), peer_auth("b", "istio-system", second))["far"] == first


def test_unset_inherits_from_the_next_wider_scope() -> None:
    assert modes(peer_auth("default", "istio-system", "STRICT"), peer_auth("default", "default", "UNSET"))[
        "echo"] == "STRICT"
    assert modes(peer_auth("default", "default", "STRICT"),
                 peer_auth("echo", "default", "UNSET", selector={"app": "echo"}))["echo"] == "STRICT"
    assert modes(peer_auth("default", "default", "DISABLE"),
                 peer_auth("echo", "default", "", selector={"app": "echo"}))["echo"] == "DISABLE"


def test_a_workload_policy_in_the_root_namespace_is_ignored() -> None:
    assert modes(peer_auth("echo", "istio-system", "STRICT", selector={"app": "echo"}))["echo"] == "PERMISSIVE"


def test_port_level_mode_overrides_the_workload_mode_on_that_port() -> None:
    configs = server_mesh(peer_auth("echo", "default", "STRICT", selector={"app": "echo"},
                                    ports={9090: "DISABLE"})).translate()
    assert mode(configs["default/echo-0"], 8080) == "STRICT"
    assert mode(configs["default/echo-0"], 9090) == "DISABLE"


def test_port_level_applies_over_an_inherited_mode_and_unset_port_level_inherits() -> None:
    configs = server_mesh(peer_auth("default", "default", "STRICT"),
                          peer_auth("echo", "default", "", selector={"app": "echo"},
                                    ports={9090: "PERMISSIVE", 8080: "UNSET"})).translate()
    assert mode(configs["default/echo-0"], 8080) == "STRICT"
    assert mode(configs["default/echo-0"], 9090) == "PERMISSIVE"


def test_the_mutual_tls_chain_uses_the_workload_certificate_and_the_mesh_ca() -> None:
    config = server_mesh(peer_auth("default", "default", "STRICT")).translate()["default/echo-0"]
    chain = ev.filter_chain(ev.inbound_listener(config, 8080), MUTUAL_TLS)
    assert chain is not None
    tls = ev.downstream_tls(chain)
    assert tls is not None and tls["require_client_certificate"] is True
    common = tls["common_tls_context"]
    assert common["validation_context"]["trusted_ca"]["filename"] == str(CA)
    assert common["tls_certificates"][0]["certificate_chain"]["filename"] == "/certs/default/echo-0.pem"
    assert "istio" in common["alpn_protocols"]


def test_the_server_sees_the_verified_caller_in_xfcc_and_plaintext_callers_cannot_forge_it() -> None:
    config = server_mesh().translate()["default/echo-0"]
    inbound = ev.inbound_listener(config, 8080)
    mutual, plain = ev.filter_chain(inbound, MUTUAL_TLS), ev.filter_chain(inbound, PLAINTEXT)
    assert mutual is not None and plain is not None and mutual is not plain
    assert ev.hcm(mutual)["forward_client_cert_details"] == "SANITIZE_SET"
    assert ev.hcm(mutual)["set_current_client_cert_details"].get("uri") is True
    assert ev.hcm(plain)["forward_client_cert_details"] == "SANITIZE"


def test_every_container_port_gets_an_inbound_listener_to_its_app() -> None:
    """A Service port goes to inbound|<port>||; a declared port no Service targets is inbound passthrough (istiod's
    InboundPassthroughCluster), told the app's address for that port."""
    mesh = server_mesh()
    echo = next(p for p in mesh.pods if p.name == "echo-0")
    config = mesh.translate()["default/echo-0"]
    for port, cluster in ((8080, "inbound|8080||"), (9090, "InboundPassthroughCluster")):
        inbound = ev.inbound_listener(config, port)
        assert inbound["address"]["socket_address"]["address"] == echo.ip
        chain = ev.filter_chain(inbound, PLAINTEXT)
        assert chain is not None
        route = ev.route_for(ev.hcm(chain)["route_config"], ev.Request("anything"))
        assert route is not None and ev.cluster_shares(route) == {cluster: 1.0}
        assert ev.route_timeout(route) is None
    chain = ev.filter_chain(ev.inbound_listener(config, 9090), PLAINTEXT)
    assert chain is not None
    state = chain["filters"][0]["typed_config"]["on_new_connection"][0]
    assert state["format_string"]["text_format_source"]["inline_string"] == f"{echo.ip}:{echo.app_port(9090)}"
    assert "InboundPassthroughCluster" in {c["name"] for c in config.clusters}
    assert "inbound|9090||" not in {c["name"] for c in config.clusters}
