"""The vendored Gateway API CRDs (schemas/gateway-api-v1.6.1): the files are the pinned ones, they validate Gateway
and HTTPRoute offline as an API server with these CRDs would (schema, defaults, CEL rules), and Gateway API
references follow the run's namespace mapping."""

from __future__ import annotations

import hashlib
from importlib import resources

import pytest

from meshconform.platform.kube import gateway_api_crds, validation
from meshconform.platform.kube.names import NamespaceMap


def test_vendored_files_are_the_pinned_ones_and_the_whole_standard_install() -> None:
    folder = resources.files("meshconform.platform.kube").joinpath(gateway_api_crds.FOLDER)
    names = sorted(p.name for p in folder.iterdir() if p.name.endswith(".yaml"))
    assert names == sorted(gateway_api_crds.SHA256)
    for name, digest in gateway_api_crds.SHA256.items():
        assert hashlib.sha256(folder.joinpath(name).read_bytes()).hexdigest() == digest, name
    kinds = {kind for _, kind in gateway_api_crds.crds()}
    assert {"Gateway", "GatewayClass", "HTTPRoute", "ReferenceGrant", "GRPCRoute"} <= kinds
    bundle = {doc["metadata"].get("annotations", {}).get("gateway.networking.k8s.io/bundle-version")
              for _, doc in gateway_api_crds.documents() if doc["kind"] == "CustomResourceDefinition"}
    assert bundle == {gateway_api_crds.VERSION}
    assert folder.joinpath("LICENSE").read_text().lstrip().startswith("Apache License")


def route(rule: dict) -> dict:
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "r"},
            "spec": {"parentRefs": [{"group": "", "kind": "Service", "name": "echo", "port": 8080}], "rules": [rule]}}


@pytest.mark.parametrize(("rule", "field", "words"), [
    ({"backendRefs": [{"name": "echo", "port": 8080, "wieght": 1}]}, "spec.rules[0].backendRefs[0]",
     "Additional properties"),
    ({"backendRefs": [{"name": "echo"}]}, "spec.rules[0].backendRefs[0]", "Must have port for Service reference"),
    ({"matches": [{"path": {"type": "PathPrefix", "value": "foo"}}]}, "spec.rules[0].matches[0].path",
     "must be an absolute path"),
    ({"filters": [{"type": "RequestMirror"}]}, "spec.rules[0].filters[0]", "filter.requestMirror must be specified"),
    ({"filters": [{"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "m", "port": 1}, "percent": 5,
                                                              "fraction": {"numerator": 1}}}]},
     "spec.rules[0].filters[0].requestMirror", "Only one of percent or fraction"),
])
def test_invalid_routes_are_refused_as_the_crd_would(rule: dict, field: str, words: str) -> None:
    findings = validation.validate([("f.yaml", route(rule))])
    assert any(f.field == field and words in f.message for f in findings), [str(f) for f in findings]


def test_defaults_apply_before_cel_rules() -> None:
    # backendRef group/kind default to "" and Service: the port rule must see them (no finding for a valid route).
    assert validation.validate([("f.yaml", route({"backendRefs": [{"name": "echo", "port": 8080}]}))]) == []


def test_gateway_api_reference_namespaces_follow_the_run_mapping() -> None:
    names = NamespaceMap("mc-3fa2c1")
    doc = route({"backendRefs": [{"name": "echo", "namespace": "legacy", "port": 8080}]})
    doc["spec"]["parentRefs"][0]["namespace"] = "default"
    sent = names.document(doc, ["default", "legacy"])
    assert sent["metadata"]["namespace"] == "mc-3fa2c1-default"
    assert sent["spec"]["parentRefs"][0]["namespace"] == "mc-3fa2c1-default"
    assert sent["spec"]["rules"][0]["backendRefs"][0]["namespace"] == "mc-3fa2c1-legacy"
    gateway = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "g"},
               "spec": {"gatewayClassName": "istio", "addresses": [
                   {"type": "Hostname", "value": "istio-ingressgateway.istio-system.svc.cluster.local"}],
                   "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]}}
    assert names.document(gateway, ["default"])["spec"] == gateway["spec"]  # the mesh's gateway is shared


def _client(fake_api, tmp_path):  # type: ignore[no-untyped-def]
    from meshconform.platform.kube.client import KubeClient
    from meshconform.platform.kube.contracts import ClusterAccess
    _, kubeconfig = fake_api
    return KubeClient(ClusterAccess(kubeconfig, "fake"), tmp_path / "discovery.json")


CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


def test_absent_crds_are_installed_from_the_vendored_files_and_awaited(fake_api, tmp_path) -> None:  # type: ignore[no-untyped-def]
    fake, _ = fake_api
    client = _client(fake_api, tmp_path)

    def establish(_: float) -> None:  # the API server marks them Established a moment later
        for path, obj in fake.objects.items():
            if path.startswith(CRDS):
                obj["status"] = {"conditions": [{"type": "Established", "status": "True"}]}
    result = gateway_api_crds.ensure(client, True, 5.0, (0.01, 0.02), sleep=establish)
    assert result == {"crds": "installed", "bundle_version": "v1.6.1", "installed": True}
    patches = fake.calls_of("PATCH")
    assert len(patches) == len(gateway_api_crds.documents())
    assert all(c.content_type == "application/apply-patch+yaml" and c.query["fieldManager"] == "meshconform"
               for c in patches)
    assert f"{CRDS}/httproutes.gateway.networking.k8s.io" in {c.path for c in patches}
    assert any("validatingadmissionpolicies" in c.path for c in patches)


def test_present_crds_are_never_changed_and_absent_ones_only_reported_when_the_mesh_is_not_ours(
        fake_api, tmp_path) -> None:  # type: ignore[no-untyped-def]
    fake, _ = fake_api
    client = _client(fake_api, tmp_path)
    absent = gateway_api_crds.ensure(client, False, 5.0, (0.01, 0.02))
    assert absent["crds"] == "absent" and "install them" in absent["note"]
    fake.put("apiextensions.k8s.io/v1", "customresourcedefinitions", {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": gateway_api_crds.PROBE_CRD,
                     "annotations": {gateway_api_crds.BUNDLE_ANNOTATION: "v1.3.0"}}})
    present = gateway_api_crds.ensure(client, True, 5.0, (0.01, 0.02))
    assert present == {"crds": "present", "bundle_version": "v1.3.0", "installed": False}
    assert fake.calls_of("PATCH") == []


def test_gateway_api_objects_go_through_the_same_apply_and_delete_path(fake_api, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from meshconform.meshapi.loader import load_text
    from meshconform.platform.kube import apply as applying
    fake, _ = fake_api
    client = _client(fake_api, tmp_path)
    run = "20261122-061017-run-3fa2c1"
    text = """apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: echo, namespace: default}
spec:
  gatewayClassName: istio
  listeners: [{name: http, port: 80, protocol: HTTP}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: echo, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ['*']}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: echo, namespace: default}
spec:
  parentRefs: [{name: echo}]
  rules: [{backendRefs: [{name: echo, port: 8080}]}]
"""
    prepared = applying.prepare(load_text(text, "gw.yaml"), NamespaceMap("mc-3fa2c1"), run, ["default"])
    applying.apply_all(client, prepared, run)
    base = "/apis/gateway.networking.k8s.io/v1/namespaces/mc-3fa2c1-default"
    wanted = {f"{base}/gateways/echo", f"{base}/httproutes/echo",
              "/apis/networking.istio.io/v1/namespaces/mc-3fa2c1-default/gateways/echo"}
    assert wanted <= set(fake.objects), sorted(fake.objects)
    assert {c.path for c in fake.calls_of("PATCH")} == wanted  # a dry run, then the apply, of each
    deleted = applying.delete_all(client, prepared, run, False, lambda ref: 5.0, (0.01, 0.02))
    assert {(r.api_version, r.kind) for r in deleted} == {("gateway.networking.k8s.io/v1", "Gateway"),
                                                          ("gateway.networking.k8s.io/v1", "HTTPRoute"),
                                                          ("networking.istio.io/v1", "Gateway")}
    assert not wanted & set(fake.objects)
