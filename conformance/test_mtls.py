"""mTLS enforcement with PeerAuthentication: modes, and which policy wins."""

from __future__ import annotations

from dataclasses import replace

from meshconform.suite.checks import outcomes, wait_for
from meshconform.suite.unit import conformance_test
from meshconform.traffic.model import Request

# An un-meshed caller names the namespace: it is in `legacy`, the servers are in `default`.
FROM_OUTSIDE = Request("/mtls", host="echo.default:8080")
FROM_MESH = Request("/mtls", host="echo:8080")
# An un-meshed caller that speaks TLS but has no certificate to give (it does not check the server's either).
# TLS 1.2, so the server takes or refuses the want of a certificate inside the handshake (TLS 1.3 refuses after
# it, and the caller's request races the alert).
TLS_WITHOUT_CERTIFICATE = replace(FROM_OUTSIDE, scheme="https", verify_server=False, max_tls_version="1.2")
# The same workload in a namespace no policy covers.
IN_OPTIN = Request("/mtls", host="echo.optin:8080")
CLIENT_ID = "URI=spiffe://cluster.local/ns/default/sa/client"


def _refused_by_strict(reply) -> bool:
    """How STRICT turns plaintext away: the server's proxy has no plaintext filter chain and resets the
    connection (istio.io mTLS migration task: "Recv failure: Connection reset by peer"), not a timeout, not a
    refused connection (no listener at all) and not an HTTP error from somewhere else."""
    return reply.status is None and reply.error == "reset"


def _client_identity(reply) -> str:
    """The caller identity the server's proxy vouched for (Istio's X-Forwarded-Client-Cert), or ''."""
    data = reply.json() or {}
    return str(data.get("headers", {}).get("x-forwarded-client-cert", ""))


@conformance_test("mtls-strict", "Namespace STRICT: a caller without a sidecar is rejected, in plaintext (reset) "
                  "and in TLS without a client certificate (the server refuses the handshake); a meshed caller "
                  "succeeds and the server sees its SPIFFE identity; the same workload in another namespace still "
                  "takes plaintext.",
                  features={"MTLSStrict"}, parallel=False, manifests=("mtls/namespace-strict.yaml",))
def test_strict(mesh_meshed_client, mesh_unmeshed_client, mesh_timeouts, mesh_result) -> None:
    took = wait_for(mesh_unmeshed_client, FROM_OUTSIDE, _refused_by_strict, mesh_timeouts,
                    "STRICT rejects plaintext")
    rejected = mesh_unmeshed_client.send([FROM_OUTSIDE] * 20)
    without_certificate = mesh_unmeshed_client.send([TLS_WITHOUT_CERTIFICATE] * 10)
    accepted = mesh_meshed_client.send([FROM_MESH] * 20)
    elsewhere = mesh_unmeshed_client.send([IN_OPTIN] * 10)
    mesh_result.figure("converged_s", round(took, 3))
    mesh_result.figure("unmeshed", sorted({str(r.status or r.error) for r in rejected}))
    mesh_result.figure("tls_without_certificate", sorted({str(r.status or r.error) for r in without_certificate}))
    assert all(_refused_by_strict(r) for r in rejected), [r.summary() for r in rejected[:3]]
    # STRICT is mutual TLS (facts 4.4: "mTLS with a client certificate is required"): TLS alone is not enough.
    assert all(r.status is None and r.error == "tls" for r in without_certificate), \
        f"STRICT must refuse the TLS handshake of a caller that gives no client certificate: " \
        f"{outcomes(without_certificate)} of 10"
    assert all(r.status == 200 for r in accepted), [r.summary() for r in accepted[:3]]
    assert all(CLIENT_ID in _client_identity(r) for r in accepted), {_client_identity(r) for r in accepted}
    # A policy without a selector outside the root namespace covers its own namespace only (facts 4.4 Scope).
    assert {r.status for r in elsewhere} == {200}, \
        f"a namespace STRICT in default must leave optin (no policy: PERMISSIVE) taking plaintext: " \
        f"{outcomes(elsewhere)} of 10"


@conformance_test("mtls-permissive", "PERMISSIVE accepts callers with and without a sidecar; meshed callers still "
                  "use mTLS (auto mTLS), so the server sees their identity.", features={"MTLSPermissive"},
                  parallel=False, manifests=("mtls/namespace-permissive.yaml",))
def test_permissive(mesh_meshed_client, mesh_unmeshed_client, mesh_timeouts, mesh_result) -> None:
    wait_for(mesh_unmeshed_client, FROM_OUTSIDE, lambda r: r.status == 200, mesh_timeouts,
             "PERMISSIVE accepts plaintext")
    plain = mesh_unmeshed_client.send([FROM_OUTSIDE] * 20)
    meshed = mesh_meshed_client.send([FROM_MESH] * 20)
    assert {r.status for r in plain} == {200}, [r.summary() for r in plain[:3]]
    assert all(_client_identity(r) == "" for r in plain), \
        f"a plaintext caller has no identity, yet the server saw {sorted({_client_identity(r) for r in plain})}"
    assert {r.status for r in meshed} == {200}, f"PERMISSIVE must accept meshed callers: {outcomes(meshed)} of 20"
    assert all(CLIENT_ID in _client_identity(r) for r in meshed), \
        f"meshed callers must arrive over mTLS as {CLIENT_ID}: the server saw " \
        f"{sorted({_client_identity(r) for r in meshed})}"


@conformance_test("mtls-disable", "Namespace DISABLE: both callers succeed, and a meshed caller talks plaintext "
                  "(auto mTLS honours the server's policy), so the server sees no client identity.",
                  features={"MTLSDisable"}, parallel=False, manifests=("mtls/namespace-disable.yaml",))
def test_disable(mesh_meshed_client, mesh_unmeshed_client, mesh_timeouts, mesh_result) -> None:
    wait_for(mesh_meshed_client, FROM_MESH, lambda r: r.status == 200 and not _client_identity(r), mesh_timeouts,
             "meshed caller switched to plaintext")
    meshed = mesh_meshed_client.send([FROM_MESH] * 20)
    plain = mesh_unmeshed_client.send([FROM_OUTSIDE] * 20)
    mesh_result.figure("meshed_identities", sorted({_client_identity(r) for r in meshed}))
    assert all(r.status == 200 and _client_identity(r) == "" for r in meshed), [r.summary() for r in meshed[:3]]
    assert {r.status for r in plain} == {200}, f"DISABLE must accept plaintext callers: {outcomes(plain)} of 20"


@conformance_test("mtls-workload-precedence", "A workload-level DISABLE overrides a namespace STRICT for that "
                  "workload only.", features={"MTLSPrecedence", "MTLSStrict"}, parallel=False,
                  manifests=("mtls/workload-disable.yaml",))
def test_workload_precedence(mesh_unmeshed_client, mesh_timeouts, mesh_result) -> None:
    other = Request("/mtls", host="echo-mirror.default:8080")
    wait_for(mesh_unmeshed_client, FROM_OUTSIDE, lambda r: r.status == 200, mesh_timeouts, "workload DISABLE wins")
    wait_for(mesh_unmeshed_client, other, _refused_by_strict, mesh_timeouts, "namespace STRICT elsewhere")
    allowed, refused = mesh_unmeshed_client.send([FROM_OUTSIDE] * 10), mesh_unmeshed_client.send([other] * 10)
    assert {r.status for r in allowed} == {200}, \
        f"workload DISABLE must accept plaintext to that workload: {outcomes(allowed)} of 10"
    assert all(_refused_by_strict(r) for r in refused), \
        f"namespace STRICT must reset plaintext to other workloads: {outcomes(refused)} of 10"


@conformance_test("mtls-namespace-precedence", "A namespace PERMISSIVE overrides a mesh-wide STRICT (root namespace) "
                  "in that namespace only: plaintext reaches default/echo but not optin/echo, whose own namespace "
                  "policy leaves the mode UNSET (it inherits the mesh's STRICT).",
                  features={"MTLSPrecedence", "MTLSStrict"}, parallel=False,
                  manifests=("mtls/mesh-strict-namespace-permissive.yaml",))
def test_namespace_precedence(mesh_unmeshed_client, mesh_timeouts, mesh_result) -> None:
    elsewhere = Request("/mtls", host="echo.optin:8080")
    wait_for(mesh_unmeshed_client, elsewhere, _refused_by_strict, mesh_timeouts, "mesh STRICT in optin")
    wait_for(mesh_unmeshed_client, FROM_OUTSIDE, lambda r: r.status == 200, mesh_timeouts, "PERMISSIVE in default")
    allowed, refused = mesh_unmeshed_client.send([FROM_OUTSIDE] * 10), mesh_unmeshed_client.send([elsewhere] * 10)
    assert {r.status for r in allowed} == {200}, \
        f"namespace PERMISSIVE must accept plaintext in default: {outcomes(allowed)} of 10"
    assert all(_refused_by_strict(r) for r in refused), \
        f"mesh-wide STRICT must reset plaintext in optin: {outcomes(refused)} of 10"


@conformance_test("mtls-port-level", "portLevelMtls on a workload policy overrides its own mode for that port (the "
                  "workload's port, istio.io PeerAuthentication reference): STRICT with port 8080 PERMISSIVE takes "
                  "plaintext on 8080 and still mTLS from meshed callers; with port 8080 STRICT, plaintext is reset "
                  "again; a workload the policy does not select stays STRICT.", features={"MTLSPrecedence"},
                  parallel=False, manifests=("mtls/port-level-permissive.yaml",), values={"port_mode": "PERMISSIVE"})
def test_port_level(mesh_manifests, mesh_unmeshed_client, mesh_meshed_client, mesh_timeouts, mesh_result) -> None:
    other = Request("/mtls", host="echo-mirror.default:8080")
    wait_for(mesh_unmeshed_client, FROM_OUTSIDE, lambda r: r.status == 200, mesh_timeouts, "port 8080 PERMISSIVE")
    plain = mesh_unmeshed_client.send([FROM_OUTSIDE] * 10)
    meshed = mesh_meshed_client.send([FROM_MESH] * 10)
    elsewhere = mesh_unmeshed_client.send([other] * 10)
    mesh_result.figure("permissive_port", {"plain": sorted({str(r.status or r.error) for r in plain}),
                                           "unselected": sorted({str(r.status or r.error) for r in elsewhere})})
    assert {r.status for r in plain} == {200}, [r.summary() for r in plain[:3]]
    assert all(r.status == 200 and CLIENT_ID in _client_identity(r) for r in meshed), [r.summary() for r in meshed[:3]]
    assert all(_refused_by_strict(r) for r in elsewhere), [r.summary() for r in elsewhere[:3]]
    mesh_manifests.update(port_mode="STRICT")
    wait_for(mesh_unmeshed_client, FROM_OUTSIDE, _refused_by_strict, mesh_timeouts, "port 8080 STRICT")
    strict = mesh_unmeshed_client.send([FROM_OUTSIDE] * 10)
    assert all(_refused_by_strict(r) for r in strict), [r.summary() for r in strict[:3]]
