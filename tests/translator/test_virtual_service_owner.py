"""Which mesh VirtualService governs a service when an exact host and a wildcard both name it: the exact one,
whichever is older (istiod's "most exact match wins"; Istio's TestSidecarRoutes cases "wildcard first then
explicit" and "explicit first then wildcard", ported in tests/fidelity). Guards the host ordering in
listeners.mesh_virtual_services, which the conformance suite cannot exercise without a namespace-wide wildcard
VirtualService that would capture every other check's traffic on a shared cluster."""

from __future__ import annotations

import pytest

from tests.translator import envoy_view as ev
from tests.translator.meshes import ECHO_SUBSETS, echo_mesh, vs

ECHO = "echo.default.svc.cluster.local"
V1, V2 = f"outbound|80|v1|{ECHO}", f"outbound|80|v2|{ECHO}"
EXACT = vs("  - route: [{destination: {host: echo, subset: v1}}]", name="exact")
WILDCARD = vs("  - route: [{destination: {host: echo, subset: v2}}]", name="wild",
              hosts='["*.default.svc.cluster.local"]')


@pytest.mark.parametrize("order", [(WILDCARD, EXACT), (EXACT, WILDCARD)], ids=["wildcard-older", "exact-older"])
def test_the_exact_host_beats_a_wildcard_whichever_is_older(order: tuple[str, str]) -> None:
    routes = ev.sidecar_routes(echo_mesh().add(ECHO_SUBSETS, *order).translate()["default/client-0"])
    route = ev.route_for(routes, ev.Request("echo"))
    assert route is not None and ev.cluster_shares(route) == {V1: 1.0}
