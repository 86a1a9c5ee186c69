"""Sidecar injection as observed from the platform and from traffic."""

from __future__ import annotations

from meshconform.suite.unit import conformance_test
from meshconform.traffic.model import Request


@conformance_test("injection-rules", "istio-injection=enabled namespaces get sidecars, unlabelled ones do not, "
                  "a pod-level opt-out wins, and injected workloads' traffic goes through their proxy.",
                  features={"SidecarInjection"})
def test_injection(mesh_platform, mesh_meshed_client, mesh_result) -> None:  # type: ignore[no-untyped-def]
    sidecars = {(w.namespace, w.deployment): w.sidecar for w in mesh_platform.workloads()}
    mesh_result.figure("sidecars", {f"{ns}/{d}": s for (ns, d), s in sorted(sidecars.items())})
    assert sidecars[("default", "echo-v1")] is True
    assert sidecars[("legacy", "echo-v1")] is False
    assert sidecars[("default", "echo-optout")] is False
    injected, optout = mesh_meshed_client.send([Request("/", host="echo:8080"), Request("/", host="echo-optout:8080")])
    assert injected.status == 200 and "x-forwarded-client-cert" in injected.json()["headers"]
    assert optout.status == 200 and "x-forwarded-client-cert" not in optout.json()["headers"]
