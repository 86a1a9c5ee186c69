"""Gateway ingress: hosts, paths and TLS bound through a Gateway and VirtualServices."""

from __future__ import annotations

from meshconform.suite.checks import outcomes, wait_for, wait_for_marker
from meshconform.suite.tls import issue_server_credential
from meshconform.suite.unit import conformance_test
from meshconform.traffic.model import Request


@conformance_test("gateway-host-path", "Exposed paths of a bound host reach the backend; other paths and "
                  "other hosts get 404.", features={"GatewayHTTP"}, manifests=("gateway/echo-http.yaml",))
def test_gateway_host_and_path(mesh_config, mesh_ingress, mesh_timeouts, mesh_result) -> None:  # type: ignore[no-untyped-def]
    host = "echo-gw.example.com"
    marker = mesh_config.apply_manifest("gateway/echo-http.yaml", host=host)
    wait_for_marker(mesh_ingress, Request("/status/200", host=host), marker, mesh_timeouts)
    ok, exact, other_path, other_host = mesh_ingress.send([
        Request("/status/201", host=host), Request("/exact", host=host), Request("/headers", host=host),
        Request("/status/200", host="not-bound.example.com")])
    mesh_result.figure("statuses", [ok.status, exact.status, other_path.status, other_host.status])
    assert ok.status == 201 and ok.json()["service"] == "echo", ok.summary()
    assert exact.status == 200, exact.summary()
    assert other_path.status == 404, other_path.summary()
    assert other_host.status == 404, other_host.summary()


@conformance_test("gateway-host-routing", "Two hosts on one gateway server reach different backends (echo v1 and "
                  "v2), each host only its own.", features={"GatewayHTTP"}, manifests=("gateway/echo-hosts.yaml",))
def test_gateway_host_routing(mesh_config, mesh_ingress, mesh_timeouts, mesh_result) -> None:  # type: ignore[no-untyped-def]
    host_a, host_b = "a.echo.example.com", "b.echo.example.com"
    marker = mesh_config.apply_manifest("gateway/echo-hosts.yaml", host_a=host_a, host_b=host_b)
    wait_for_marker(mesh_ingress, Request("/", host=host_a), marker, mesh_timeouts)
    wait_for_marker(mesh_ingress, Request("/", host=host_b), marker, mesh_timeouts)
    to_a = mesh_ingress.send([Request(f"/{i}", host=host_a) for i in range(50)])
    to_b = mesh_ingress.send([Request(f"/{i}", host=host_b) for i in range(50)])
    mesh_result.figure("versions", {host_a: sorted({str(r.version) for r in to_a}),
                                    host_b: sorted({str(r.version) for r in to_b})})
    assert {r.version for r in to_a} == {"v1"}, [r.summary() for r in to_a[:3]]
    assert {r.version for r in to_b} == {"v2"}, [r.summary() for r in to_b[:3]]


@conformance_test("gateway-tls-simple", "SIMPLE TLS with a certificate from the test's own CA: https with that CA "
                  "and the bound SNI reaches echo; a client trusting another CA fails the handshake, and one asking "
                  "for an unbound name gets no answer.", features={"GatewayTLS"}, manifests=("gateway/echo-tls.yaml",))
def test_gateway_tls(mesh_config, mesh_ingress, mesh_timeouts, mesh_result) -> None:  # type: ignore[no-untyped-def]
    host = "secure.echo.example.com"
    credential = issue_server_credential(host)
    other_ca = issue_server_credential(host, ca_name="some other CA").ca_pem
    mesh_config.apply_manifest("gateway/echo-tls.yaml", host=host, **credential.secret_data())
    secure = Request("/status/200", host=host, scheme="https", ca_pem=credential.ca_pem)
    wait_for(mesh_ingress, secure, lambda r: r.status == 200, mesh_timeouts, "https through the gateway")
    good = mesh_ingress.send([secure] * 10)
    untrusted = mesh_ingress.send([Request("/status/200", host=host, scheme="https", ca_pem=other_ca)])[0]
    unbound = mesh_ingress.send([Request("/status/200", host="elsewhere.example.com", scheme="https",
                                         ca_pem=credential.ca_pem)])[0]
    mesh_result.figure("results", {"trusted": sorted({str(r.status) for r in good}),
                                   "untrusted_ca": untrusted.error, "unbound_sni": unbound.status or unbound.error})
    assert all(r.status == 200 and r.json()["service"] == "echo" for r in good), \
        f"https with the test's CA and the bound SNI must reach echo: {outcomes(good)} of {len(good)}"
    assert untrusted.status is None and untrusted.error == "tls", \
        f"a client trusting another CA must fail the TLS handshake; it got {untrusted.summary()}"
    assert unbound.status is None, f"https for an unbound name must get no answer; it got {unbound.summary()}"
