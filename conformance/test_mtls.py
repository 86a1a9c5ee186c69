"""mTLS enforcement with PeerAuthentication."""

from __future__ import annotations

from meshconform.suite.checks import wait_for
from meshconform.suite.unit import conformance_test
from meshconform.traffic.model import Request

PROBE = Request("/mtls", host="echo.default:8080")


def _pa(name: str, mode: str, selector: str = "") -> str:
    return f"""apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {{name: {name}, namespace: default}}
spec: {{{selector}mtls: {{mode: {mode}}}}}
"""


@conformance_test("mtls-strict", "Namespace STRICT: a caller without a sidecar is rejected; a meshed caller "
                  "succeeds and the server sees its SPIFFE identity.", features={"MTLSStrict"}, parallel=False)
def test_strict(mesh_config, mesh_meshed_client, mesh_unmeshed_client, mesh_timeouts, mesh_result) -> None:  # type: ignore[no-untyped-def]
    mesh_config.apply_yaml(_pa("default", "STRICT"))
    took = wait_for(mesh_unmeshed_client, PROBE, lambda r: r.status is None, mesh_timeouts, "STRICT rejects plaintext")
    rejected = mesh_unmeshed_client.send([PROBE] * 20)
    accepted = mesh_meshed_client.send([Request("/mtls", host="echo:8080")] * 20)
    mesh_result.figure("converged_s", round(took, 3))
    mesh_result.figure("unmeshed", sorted({str(r.status or r.error) for r in rejected}))
    assert all(r.status is None for r in rejected), [r.summary() for r in rejected[:3]]
    assert all(r.status == 200 for r in accepted)
    identities = {r.json()["headers"].get("x-forwarded-client-cert", "") for r in accepted}
    assert all("URI=spiffe://cluster.local/ns/default/sa/client" in x for x in identities), identities


@conformance_test("mtls-permissive", "PERMISSIVE accepts callers with and without a sidecar.",
                  features={"MTLSPermissive"}, parallel=False)
def test_permissive(mesh_config, mesh_meshed_client, mesh_unmeshed_client, mesh_timeouts, mesh_result) -> None:  # type: ignore[no-untyped-def]
    mesh_config.apply_yaml(_pa("default", "PERMISSIVE"))
    wait_for(mesh_unmeshed_client, PROBE, lambda r: r.status == 200, mesh_timeouts, "PERMISSIVE accepts plaintext")
    assert {r.status for r in mesh_unmeshed_client.send([PROBE] * 20)} == {200}
    assert {r.status for r in mesh_meshed_client.send([Request("/mtls", host="echo:8080")] * 20)} == {200}


@conformance_test("mtls-workload-precedence", "A workload-level DISABLE overrides a namespace STRICT for that "
                  "workload only.", features={"MTLSPrecedence", "MTLSStrict"}, parallel=False)
def test_workload_precedence(mesh_config, mesh_unmeshed_client, mesh_timeouts, mesh_result) -> None:  # type: ignore[no-untyped-def]
    mesh_config.apply_yaml(_pa("default", "STRICT") + "---\n" + _pa("echo-plain", "DISABLE",
                                                                    "selector: {matchLabels: {app: echo}}, "))
    wait_for(mesh_unmeshed_client, PROBE, lambda r: r.status == 200, mesh_timeouts, "workload DISABLE wins")
    other = Request("/mtls", host="echo-mirror.default:8080")
    wait_for(mesh_unmeshed_client, other, lambda r: r.status is None, mesh_timeouts, "namespace STRICT elsewhere")
    assert {r.status for r in mesh_unmeshed_client.send([PROBE] * 10)} == {200}
    assert {r.status for r in mesh_unmeshed_client.send([other] * 10)} == {None}
