"""Sidecar injection as observed from the platform and from traffic."""

from __future__ import annotations

from meshconform.suite.unit import conformance_test
from meshconform.traffic.model import Request


@conformance_test("injection-rules", "istio-injection=enabled namespaces get sidecars, unlabelled ones do not, a "
                  "pod-level opt-out wins over the namespace and a pod-level opt-in works in an unlabelled namespace; "
                  "injected workloads are ready and their traffic goes through their proxy.",
                  features={"SidecarInjection"})
def test_injection(mesh_platform, mesh_meshed_client, mesh_result) -> None:
    workloads = {(w.namespace, w.deployment): w for w in mesh_platform.workloads()}
    mesh_result.figure("sidecars", {f"{ns}/{d}": w.sidecar for (ns, d), w in sorted(workloads.items())})
    assert workloads[("default", "echo-v1")].sidecar is True, "default/echo-v1 (istio-injection=enabled) has no sidecar"
    assert workloads[("legacy", "echo-v1")].sidecar is False, "legacy/echo-v1 (namespace not labelled) got a sidecar"
    assert workloads[("default", "echo-optout")].sidecar is False, \
        "default/echo-optout (sidecar.istio.io/inject=false) got a sidecar"
    assert workloads[("optin", "echo-v1")].sidecar is True, \
        "optin/echo-v1 (sidecar.istio.io/inject=true) has no sidecar"
    assert all(w.ready for w in workloads.values()), [k for k, w in workloads.items() if not w.ready]
    injected, optout, optin, legacy = mesh_meshed_client.send([
        Request("/", host="echo:8080"), Request("/", host="echo-optout:8080"), Request("/", host="echo.optin:8080"),
        Request("/", host="echo.legacy:8080")])
    # A sidecar-to-sidecar call is mutual TLS, so the server's proxy adds the caller's identity.
    assert injected.status == 200 and "x-forwarded-client-cert" in injected.json()["headers"], injected.summary()
    assert optin.status == 200 and "x-forwarded-client-cert" in optin.json()["headers"], optin.summary()
    assert optout.status == 200 and "x-forwarded-client-cert" not in optout.json()["headers"], optout.summary()
    assert legacy.status == 200 and "x-forwarded-client-cert" not in legacy.json()["headers"], legacy.summary()
