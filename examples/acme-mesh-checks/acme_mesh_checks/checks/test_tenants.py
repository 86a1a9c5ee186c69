"""Tenant routing as ACME's customers use it: a header names the tenant, the premium one gets its own version.

Istio's documented behaviour (VirtualService reference, HTTPMatchRequest.headers `exact`, HTTPRoute.headers): the
first rule whose match holds routes the request, header values are matched exactly (case-sensitive), and a rule's
request header operations reach the destination. Every request must agree (deterministic rules, no shares)."""

from __future__ import annotations

from meshconform.testing import Request, Response, conformance_test, outcomes, wait_for_marker

PREMIUM = "gold"
PER_CASE = 30


def _landed(reply: Response) -> str:
    """Which echo version answered, and the route the app was told it came by."""
    data = reply.json() or {}
    return f"{data.get('version')} via {(data.get('headers') or {}).get('x-acme-route')}"


@conformance_test("acme-tenant-routing", f"Requests of tenant {PREMIUM!r} (header x-acme-tenant, exact) reach echo v2 "
                  "and the app sees x-acme-route set by their rule; other tenants, a case variant and no tenant "
                  f"reach v1 by the default rule ({PER_CASE} requests each, every one must agree).",
                  features={"AcmeTenantRouting"}, manifests=("acme/tenant-routing.yaml",), values={"premium": PREMIUM})
def test_tenant_routing(mesh_manifests, mesh_meshed_client, mesh_timeouts, mesh_result) -> None:
    wait_for_marker(mesh_meshed_client, Request("/probe", host="echo:8080"), mesh_manifests.marker, mesh_timeouts)
    cases = {PREMIUM: "v2 via gold", "silver": "v1 via standard", PREMIUM.upper(): "v1 via standard",
             "": "v1 via standard"}
    replies = {tenant: mesh_meshed_client.send([Request(f"/tenant/{i}", host="echo:8080",
                                                        headers={"x-acme-tenant": tenant} if tenant else {})
                                                for i in range(PER_CASE)]) for tenant in cases}
    mesh_result.figure("landed", {tenant or "(none)": outcomes(got, _landed) for tenant, got in replies.items()})
    wrong = {tenant or "(none)": outcomes(got, _landed) for tenant, got in replies.items()
             if any(_landed(reply) != cases[tenant] for reply in got)}
    assert not wrong, f"tenants that did not land as routed (of {PER_CASE} each): {wrong}; expected {cases}"
