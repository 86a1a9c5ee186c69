"""Identity integrity: an identity comes from the caller's service account and its certificate, never from
the names of its pod or Deployment, nor from headers the caller wrote itself.

What Istio does (expectations, not our translator): workload identities are
`spiffe://<trust domain>/ns/<namespace>/sa/<service account>` (facts/bookinfo-istio.md, identities); istiod gives
every sidecar inbound HTTP connection manager `forward_client_cert_details: APPEND_FORWARD` with the current
client certificate's Subject, URI and DNS (pilot/pkg/networking/core, buildSidecarInboundHTTPOpts), and Envoy
applies every mode but ALWAYS_FORWARD_ONLY only to mTLS connections, removing the header on any other: so a
caller without a sidecar cannot hand the app an identity under PERMISSIVE or DISABLE. AuthorizationPolicy
`principals` match the peer certificate's identity (istio.io AuthorizationPolicy reference: `source.principals`
requires mTLS), so a forged header naming an allowed principal is denied."""

from __future__ import annotations

import pytest

from meshconform.suite.checks import wait_for
from meshconform.suite.failures import assert_failed_as
from meshconform.suite.unit import chosen_by, conformance_test
from meshconform.traffic.model import Request

CALLER = "default/caller"  # pod caller-<hash>, Deployment caller, ServiceAccount ledger-reader
CALLER_ID = "spiffe://cluster.local/ns/default/sa/ledger-reader"
CLIENT_ID = "spiffe://cluster.local/ns/default/sa/client"
ECHO_ID = "spiffe://cluster.local/ns/default/sa/echo"  # the server whose proxy writes the header
FORGED_ID = "spiffe://cluster.local/ns/default/sa/ledger-reader"  # the allowed principal, claimed by a header
FORGED_XFCC = f'By=spiffe://cluster.local/ns/default/sa/echo;Hash=00;Subject="";URI={FORGED_ID}'
FROM_OUTSIDE = Request("/identity", host="echo.default:8080", headers={"x-forwarded-client-cert": FORGED_XFCC})
DENIED_BODY = "RBAC: access denied"


def _xfcc(reply) -> str:
    """The X-Forwarded-Client-Cert the app received, or ''."""
    data = reply.json() or {}
    return str(data.get("headers", {}).get("x-forwarded-client-cert", ""))


@conformance_test("identity-by-service-account", "A caller whose pod (caller-<hash>), Deployment (caller) and "
                  "service account (ledger-reader) names all differ reaches echo over mTLS, and echo's proxy vouches "
                  "for spiffe://cluster.local/ns/default/sa/ledger-reader: no other name. The header carries "
                  "By (echo's own identity), Hash, Subject (empty for a SPIFFE certificate) and URI.",
                  features={"MTLSPermissive"}, parallel=False, manifests=("mtls/namespace-permissive.yaml",))
def test_identity_by_service_account(mesh_vantage, mesh_platform, mesh_timeouts, mesh_result) -> None:
    caller = mesh_vantage(CALLER)
    probe = Request("/identity", host="echo:8080")
    wait_for(caller, probe, lambda r: r.status == 200 and CALLER_ID in _xfcc(r), mesh_timeouts, "caller over mTLS")
    replies = caller.send([probe] * 20)
    pods = [w.name for w in mesh_platform.workloads() if w.namespace == "default" and w.deployment == "caller"]
    seen = sorted({_xfcc(r) for r in replies})
    mesh_result.figure("xfcc", seen)
    assert all(r.status == 200 for r in replies), [r.summary() for r in replies[:3]]
    uris = {part.removeprefix("URI=") for value in seen for part in value.split(";") if part.startswith("URI=")}
    assert uris == {CALLER_ID}, f"the server's proxy vouched for {sorted(uris)}, not only {CALLER_ID}"
    wrong_names = [name for name in ("caller", *pods) if f"/sa/{name}" in " ".join(seen)]
    assert not wrong_names, f"identity built from {wrong_names}, not the service account: {seen}"
    # istiod's inbound details: the current client certificate's Subject, URI and DNS, after Envoy's By and Hash
    # (facts: identities, 'By=<server id>;Hash=...;Subject="";URI=<client id>'; a SPIFFE certificate has no DNS SAN).
    for value in seen:
        fields = dict(part.partition("=")[::2] for part in value.split(";"))
        missing = {"By", "Hash", "Subject", "URI"} - set(fields)
        assert not missing and fields["By"] == ECHO_ID, (
            f"X-Forwarded-Client-Cert {value!r}: expected By={ECHO_ID}, Hash, Subject and URI"
            + (f"; missing {sorted(missing)}" if missing else ""))


@pytest.mark.parametrize("mode", ["permissive", "disable"])
@conformance_test("xfcc-forged-untrusted", "A caller without a sidecar sends its own X-Forwarded-Client-Cert naming "
                  "another workload; under PERMISSIVE and DISABLE the request is served but the app never receives "
                  "the forged header. Under PERMISSIVE a meshed caller that forges one is seen as itself only.",
                  features={"MTLSPermissive", "MTLSDisable"}, parallel=False,
                  manifests=(chosen_by("mode", {"permissive": "mtls/namespace-permissive.yaml",
                                                "disable": "mtls/namespace-disable.yaml"}),))
def test_xfcc_forged_untrusted(mode, mesh_unmeshed_client, mesh_meshed_client,
                               mesh_timeouts, mesh_result) -> None:
    meshed = Request("/identity", host="echo:8080", headers={"x-forwarded-client-cert": FORGED_XFCC})
    if mode == "disable":  # converged when the meshed caller talks plaintext (no identity vouched for)
        wait_for(mesh_meshed_client, Request("/identity", host="echo:8080"), lambda r: r.status == 200 and not _xfcc(r),
                 mesh_timeouts, "DISABLE in force")
    wait_for(mesh_unmeshed_client, Request("/identity", host="echo.default:8080"), lambda r: r.status == 200,
             mesh_timeouts, f"{mode.upper()} accepts plaintext")
    forged = mesh_unmeshed_client.send([FROM_OUTSIDE] * 20)
    mesh_result.figure("app_saw_from_unmeshed", sorted({_xfcc(r) for r in forged}))
    assert all(r.status == 200 for r in forged), [r.summary() for r in forged[:3]]
    passed = [_xfcc(r) for r in forged if _xfcc(r)]
    assert not passed, f"{len(passed)} of {len(forged)} forged X-Forwarded-Client-Cert reached the app: {passed[0]}"
    if mode == "permissive":
        from_mesh = mesh_meshed_client.send([meshed] * 20)
        seen = sorted({_xfcc(r) for r in from_mesh})
        mesh_result.figure("app_saw_from_meshed", seen)
        assert all(r.status == 200 for r in from_mesh), [r.summary() for r in from_mesh[:3]]
        assert all(CLIENT_ID in value and FORGED_ID not in value for value in seen), seen


@conformance_test("authz-principal-from-certificate", "ALLOW only principal ledger-reader on echo: the caller "
                  "with that service account passes; the meshed client (another identity) and a caller without a "
                  "sidecar are denied with 403 even when they send an X-Forwarded-Client-Cert naming ledger-reader.",
                  features={"Authorization"}, parallel=False, manifests=("authorization/allow-ledger-reader.yaml",))
def test_authz_principal_from_certificate(mesh_platform, mesh_vantage, mesh_meshed_client,
                                          mesh_unmeshed_client, mesh_timeouts, mesh_result) -> None:
    caller = mesh_vantage(CALLER)
    forged_inside = Request("/identity", host="echo:8080", headers={"x-forwarded-client-cert": FORGED_XFCC})
    wait_for(mesh_meshed_client, forged_inside, lambda r: r.status == 403, mesh_timeouts, "ALLOW ledger-reader only")
    allowed = caller.send([Request("/identity", host="echo:8080")] * 10)
    inside = mesh_meshed_client.send([forged_inside] * 10)
    outside = mesh_unmeshed_client.send([FROM_OUTSIDE] * 10)
    mesh_result.figure("statuses", {name: sorted({str(r.status or r.error) for r in replies}) for name, replies in
                                    {"caller": allowed, "forged_meshed": inside, "forged_unmeshed": outside}.items()})
    assert all(r.status == 200 for r in allowed), [r.summary() for r in allowed[:3]]
    for name, replies in {"meshed client": inside, "caller without a sidecar": outside}.items():
        wrong = [r for r in replies if not (r.status == 403 and DENIED_BODY in r.body)]
        assert not wrong, f"{name} with a forged XFCC: {len(wrong)} of {len(replies)} not denied by RBAC: " \
                          f"{wrong[0].summary()}"
    mesh_result.figure("echo_proxy_log", assert_failed_as(
        mesh_platform, [("default", "echo-v1"), ("default", "echo-v2")], [*inside, *outside], mesh_timeouts, 403,
        details_prefix="rbac_access_denied", direction="inbound", what="forged XFCC requests"))
