"""Gateway ingress: hosts, paths and TLS bound through a Gateway and VirtualServices."""

from __future__ import annotations

import ipaddress
import re
from collections import Counter

import pytest

from meshconform.suite.checks import outcomes, wait_for, wait_for_marker
from meshconform.suite.failures import GATEWAY, failed_as, log_outcomes, records_for
from meshconform.suite.tls import ServerCredential, issue_server_credential
from meshconform.suite.unit import conformance_test
from meshconform.traffic.model import Request, Response

HTTP_HOST = "echo-gw.example.com"
HOST_A, HOST_B = "a.echo.example.com", "b.echo.example.com"
HOST_C = "c.second.example.com"  # a host only the Gateway's second server names
TLS_HOST = "secure.echo.example.com"
REDIRECT_HOST = "redirect.echo.example.com"
ZONE = "gwnm.example"  # gateway-wildcard-near-misses' own domain
WILDCARD_VALUES = {"zone": ZONE, "authority_regex": rf"api-[0-9]+\.wild\.{re.escape(ZONE)}"}


@pytest.fixture
def tls_credential() -> ServerCredential:
    """A server certificate for TLS_HOST from a CA of the test's own (in the Secret the manifest applies)."""
    return issue_server_credential(TLS_HOST)


@pytest.fixture
def redirect_credential() -> ServerCredential:
    return issue_server_credential(REDIRECT_HOST)


@conformance_test("gateway-host-path", "Exposed paths of a bound host reach the backend, also with the server's "
                  "port in the Host (host:80, as clients send it to a port they name); other paths and "
                  "other hosts get the gateway's own 404 (no route, NR). The gateway is the edge: it appends the "
                  "address it was called from to the X-Forwarded-For the client sent, which reaches the backend as "
                  "two elements (the client's claim, then an IP address).", features={"GatewayHTTP"},
                  manifests=("gateway/echo-http.yaml",), values={"host": HTTP_HOST})
def test_gateway_host_and_path(mesh_platform, mesh_manifests, mesh_ingress, mesh_timeouts, mesh_result) -> None:
    host = HTTP_HOST
    wait_for_marker(mesh_ingress, Request("/status/200", host=host), mesh_manifests.marker, mesh_timeouts)
    ok, with_port, exact, other_path, other_host, forwarded = mesh_ingress.send([
        Request("/status/201", host=host), Request("/status/202", host=f"{host}:80"), Request("/exact", host=host),
        Request("/headers", host=host), Request("/status/200", host="not-bound.example.com"),
        Request("/status/200", host=host, headers={"x-forwarded-for": CLAIMED_CLIENT})])
    mesh_result.figure("statuses", [ok.status, with_port.status, exact.status, other_path.status, other_host.status])
    assert ok.status == 201 and ok.json()["service"] == "echo", ok.summary()
    assert with_port.status == 202 and with_port.json()["service"] == "echo", (
        f"a Host with the server's port ({host}:80) must take the host's route: {with_port.summary()}")
    assert exact.status == 200, exact.summary()
    assert other_path.status == 404, other_path.summary()
    assert other_host.status == 404, other_host.summary()
    _appended_peer(forwarded, mesh_result)
    # The 404s must be the gateway's own "no route" (NR), not a backend's 404 passed through.
    records = records_for(mesh_platform, [GATEWAY], [other_path, other_host], mesh_timeouts, direction="gateway")
    mesh_result.figure("gateway_log", dict(log_outcomes(records)))
    assert not failed_as(records, 404, "NR"), f"the 404s were not the gateway's no-route: {dict(log_outcomes(records))}"


# What a client says in X-Forwarded-For (a documentation address, RFC 5737: a header value, never a destination).
# Istio's gateway is the edge proxy (istiod sets use_remote_address on it; istio.io's "Configuring Gateway Network
# Topology" shows the gateway's peer appended to the client's X-Forwarded-For), and a sidecar appends nothing.
CLAIMED_CLIENT = "203.0.113.7"


def _appended_peer(reply: Response, result) -> None:
    echoed = reply.echoed
    assert reply.status == 200 and echoed is not None, reply.summary()
    elements = echoed.elements("x-forwarded-for")
    result.figure("x_forwarded_for_at_app", elements)
    assert len(elements) == 2 and elements[0] == CLAIMED_CLIENT and _is_address(elements[1]), (
        f"the app saw X-Forwarded-For {elements}; the gateway must append the address it was called from to the "
        f"client's {CLAIMED_CLIENT!r} (and the app's sidecar nothing): [{CLAIMED_CLIENT!r}, <an IP address>]")


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


@conformance_test("gateway-host-routing", "Two hosts on one gateway server reach different backends (echo v1 and "
                  "v2), each host only its own; a third host, named only by the Gateway's second server (same port), "
                  "reaches its own VirtualService's backend (echo v2): every server of a Gateway serves its own hosts.",
                  features={"GatewayHTTP"}, manifests=("gateway/echo-hosts.yaml",),
                  values={"host_a": HOST_A, "host_b": HOST_B, "host_c": HOST_C})
def test_gateway_host_routing(mesh_manifests, mesh_ingress, mesh_timeouts, mesh_result) -> None:
    host_a, host_b, host_c, marker = HOST_A, HOST_B, HOST_C, mesh_manifests.marker
    wait_for_marker(mesh_ingress, Request("/", host=host_a), marker, mesh_timeouts)
    wait_for_marker(mesh_ingress, Request("/", host=host_b), marker, mesh_timeouts)
    to_a = mesh_ingress.send([Request(f"/{i}", host=host_a) for i in range(50)])
    to_b = mesh_ingress.send([Request(f"/{i}", host=host_b) for i in range(50)])
    to_c = mesh_ingress.send([Request(f"/{i}", host=host_c) for i in range(20)])
    mesh_result.figure("versions", {host: sorted({str(r.version) for r in replies})
                                    for host, replies in ((host_a, to_a), (host_b, to_b), (host_c, to_c))})
    assert {r.version for r in to_a} == {"v1"}, [r.summary() for r in to_a[:3]]
    assert {r.version for r in to_b} == {"v2"}, [r.summary() for r in to_b[:3]]
    assert all(r.status == 200 and r.version == "v2" for r in to_c), (
        f"{host_c}, a host of the Gateway's second server only, must reach its VirtualService's echo v2: "
        f"{outcomes(to_c)}")


@conformance_test("gateway-tls-simple", "SIMPLE TLS with a certificate from the test's own CA: https with that CA "
                  "and the bound SNI reaches echo; a client trusting another CA fails the handshake, and one asking "
                  "for an unbound name is refused in the handshake by the gateway (it is never given a certificate).",
                  features={"GatewayTLS"}, manifests=("gateway/echo-tls.yaml",),
                  values=lambda tls_credential: {"host": TLS_HOST, **tls_credential.secret_data()})
def test_gateway_tls(tls_credential, mesh_ingress, mesh_timeouts, mesh_result) -> None:
    host, credential = TLS_HOST, tls_credential
    other_ca = issue_server_credential(host, ca_name="some other CA").ca_pem
    secure = Request("/status/200", host=host, scheme="https", ca_pem=credential.ca_pem)
    wait_for(mesh_ingress, secure, lambda r: r.status == 200, mesh_timeouts, "https through the gateway")
    good = mesh_ingress.send([secure] * 10)
    untrusted = mesh_ingress.send([Request("/status/200", host=host, scheme="https", ca_pem=other_ca)] * 10)
    unbound = mesh_ingress.send([Request("/status/200", host="elsewhere.example.com", scheme="https",
                                         ca_pem=credential.ca_pem)] * 10)
    mesh_result.figure("results", {"trusted": sorted({str(r.status) for r in good}),
                                   "untrusted_ca": dict(Counter(str(r.error) for r in untrusted)),
                                   "unbound_sni": dict(Counter(str(r.status or r.error) for r in unbound))})
    assert all(r.status == 200 and r.json()["service"] == "echo" for r in good), \
        f"https with the test's CA and the bound SNI must reach echo: {outcomes(good)} of {len(good)}"
    # A client trusting another CA rejects the (right) certificate it was given.
    wrong = [r for r in untrusted if not (r.status is None and r.error == "tls-certificate")]
    assert not wrong, f"{len(wrong)} of {len(untrusted)} https requests trusting another CA did not fail by " \
                      f"rejecting the gateway's certificate: {wrong[0].summary()}"
    # An unbound SNI: the gateway refuses the handshake (no filter chain), so even a client trusting the test's CA
    # never gets a certificate to reject; a certificate rejection here means the gateway answered with one.
    wrong = [r for r in unbound if not (r.status is None and r.error in ("tls", "reset"))]
    assert not wrong, f"https to an unbound SNI: {len(wrong)} of {len(unbound)} attempts were not refused in the " \
                      f"handshake by the gateway: {wrong[0].summary()}"


@conformance_test("gateway-wildcard-near-misses", "Wildcard hosts through the gateway: '*.wild.Z' takes names one or "
                  "more labels under it; its bare domain and names ending like it without the dot boundary "
                  "('badwild.Z') fall to the wider '*.Z', and names '*.Z' does not cover get 404; an authority regex "
                  "must match the whole Host; a server naming one host ('api.solo-Z') is served by a wider "
                  "VirtualService host ('*.solo-Z') for that host only.", features={"GatewayHTTP"},
                  manifests=("gateway/echo-wildcard.yaml",), values=WILDCARD_VALUES)
def test_gateway_wildcard_near_misses(mesh_manifests, mesh_ingress, mesh_timeouts, mesh_result) -> None:
    from meshconform.meshapi.istio import Gateway, VirtualService
    from meshconform.suite.near_miss import Probe, expect, host_variants, near_misses, wrong_routes

    zone, values, marker = ZONE, WILDCARD_VALUES, mesh_manifests.marker
    items = [item.resource for item in mesh_manifests.rendered("gateway/echo-wildcard.yaml")]
    services = [r for r in items if isinstance(r, VirtualService)]
    server_hosts = [h for r in items if isinstance(r, Gateway) for s in r.spec.servers for h in s.hosts]
    # Around every VirtualService host, and every server host no VirtualService names as it is (a wider
    # VirtualService host serves a server's narrower one: the route's domain is their intersection).
    patterns = [h for vs in services for h in vs.spec.hosts]
    patterns += [h for h in server_hosts if h not in patterns]
    probes = [Probe(f"host {label}: {host}", Request("/", host=host))
              for pattern in patterns for label, host in host_variants(pattern)]
    probes += [p for vs in services for rule in vs.spec.http for m in rule.match
               for p in near_misses(m, Request("/", host=f"a.wild.{zone}"), {values["authority_regex"]:
                                                                            f"api-7.wild.{zone}"})]
    probes = expect(probes, services, server_hosts)
    wait_for_marker(mesh_ingress, Request("/", host=f"a.wild.{zone}"), marker, mesh_timeouts)
    wrong = wrong_routes(mesh_ingress, probes)
    mesh_result.figure("probes", {p.label: p.expected for p in probes})
    assert not wrong, f"{len(wrong)} of {len(probes)} host probes took the wrong route: " + "; ".join(wrong)


@conformance_test("gateway-https-redirect", "A Gateway with two named servers for one host: plain HTTP gets a 301 to "
                  "the same URL over https (httpsRedirect), https reaches echo.",
                  features={"GatewayTLS", "GatewayHTTP"},
                  manifests=("gateway/echo-https-redirect.yaml",),
                  values=lambda redirect_credential: {"host": REDIRECT_HOST, **redirect_credential.secret_data()})
def test_gateway_https_redirect(redirect_credential, mesh_ingress, mesh_timeouts, mesh_result) -> None:
    host, credential = REDIRECT_HOST, redirect_credential
    secure = Request("/status/200", host=host, scheme="https", ca_pem=credential.ca_pem)
    wait_for(mesh_ingress, secure, lambda r: r.status == 200, mesh_timeouts, "https through the gateway")
    plain = mesh_ingress.send([Request(f"/page/{i}?q=1", host=host) for i in range(10)])
    good = mesh_ingress.send([secure] * 10)
    mesh_result.figure("plain", sorted({f"{r.status} {r.headers.get('location', '')}" for r in plain})[:3])
    # Envoy's require_tls answers 301 with the https URL of the same host and path (Istio: httpsRedirect).
    wrong = [r for r in plain if not (r.status == 301 and r.headers.get("location") == f"https://{host}{r.path}")]
    assert not wrong, f"{len(wrong)} of {len(plain)} plain requests not redirected to https: {wrong[0].summary()} " \
                      f"location={wrong[0].headers.get('location')}"
    assert all(r.status == 200 and r.json()["service"] == "echo" for r in good), [r.summary() for r in good[:3]]
