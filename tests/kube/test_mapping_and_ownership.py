"""Namespace mapping of the suite's manifests, the run's labels, ownership refusal and cleanup selection."""

from __future__ import annotations

import pytest

from meshconform.errors import ConfigError
from meshconform.meshapi.loader import load_text
from meshconform.platform.kube import apply as applying
from meshconform.platform.kube.names import NamespaceMap, run_prefix
from meshconform.platform.kube.ownership import (
    RUN_LABEL,
    ObjectRef,
    check_may_apply,
    check_run_id,
    cleanup_order,
    deletable,
)
from meshconform.suite.manifests import load_manifest

NAMES = NamespaceMap("mc-3fa2c1")
LOGICAL = ["default", "legacy", "optin"]


def test_run_prefix_is_a_short_dns_label():
    assert run_prefix("20261122-061017-run-3fa2c1") == "mc-3fa2c1"
    with pytest.raises(ValueError):
        NamespaceMap("Not_A_Label")
    with pytest.raises(ValueError):
        check_run_id("x" * 64)


def test_namespaces_and_istio_references_are_mapped_but_mesh_namespaces_are_not():
    doc = {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
           "metadata": {"name": "vs", "namespace": "default"},
           "spec": {"hosts": ["echo", "echo.legacy.svc.cluster.local", "echo.example.com", "*.default"],
                    "gateways": ["istio-system/gw", "default/gw", "mesh", "gw"],
                    "http": [{"match": [{"uri": {"prefix": "/default/x"}}],
                              "route": [{"destination": {"host": "echo.default:8080"}}],
                              "mirror": {"host": "echo-mirror.default.svc.cluster.local"}}]}}
    out = NAMES.document(doc, LOGICAL)
    assert out["metadata"]["namespace"] == "mc-3fa2c1-default"
    assert out["spec"]["hosts"] == ["echo", "echo.mc-3fa2c1-legacy.svc.cluster.local", "echo.example.com",
                                    "*.mc-3fa2c1-default"]
    assert out["spec"]["gateways"] == ["istio-system/gw", "mc-3fa2c1-default/gw", "mesh", "gw"]
    route = out["spec"]["http"][0]
    assert route["match"][0]["uri"]["prefix"] == "/default/x"  # not a host: untouched
    assert route["route"][0]["destination"]["host"] == "echo.mc-3fa2c1-default:8080"
    assert route["mirror"]["host"] == "echo-mirror.mc-3fa2c1-default.svc.cluster.local"
    assert doc["metadata"]["namespace"] == "default"  # the input is not changed


def test_principals_namespaces_and_namespace_objects():
    policy = {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
              "metadata": {"name": "p", "namespace": "default"},
              "spec": {"rules": [{"from": [{"source": {"principals": ["cluster.local/ns/default/sa/client"],
                                                       "namespaces": ["legacy", "istio-system"]}}]}]}}
    source = NAMES.document(policy, LOGICAL)["spec"]["rules"][0]["from"][0]["source"]
    assert source == {"principals": ["cluster.local/ns/mc-3fa2c1-default/sa/client"],
                      "namespaces": ["mc-3fa2c1-legacy", "istio-system"]}
    mesh_wide = {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
                 "metadata": {"name": "default", "namespace": "istio-system"}, "spec": {"mtls": {"mode": "STRICT"}}}
    assert NAMES.document(mesh_wide, LOGICAL)["metadata"]["namespace"] == "istio-system"
    ns = NAMES.document({"apiVersion": "v1", "kind": "Namespace",
                         "metadata": {"name": "default", "labels": {"istio-injection": "enabled"}}}, LOGICAL)
    assert ns["metadata"] == {"name": "mc-3fa2c1-default", "labels": {"istio-injection": "enabled"}}


def test_replies_are_read_back_in_the_suites_namespaces():
    body = '{"namespace": "mc-3fa2c1-legacy", "xfcc": "By=spiffe://cluster.local/ns/mc-3fa2c1-default/sa/echo"}'
    assert NAMES.unmap_text(body) == '{"namespace": "legacy", "xfcc": "By=spiffe://cluster.local/ns/default/sa/echo"}'
    assert NAMES.host("echo.default:8080", LOGICAL) == "echo.mc-3fa2c1-default:8080"
    assert NAMES.host("echo:8080", LOGICAL) == "echo:8080"
    assert NAMES.host("details.istio-system", LOGICAL) == "details.istio-system"
    # Host names ignore case: a check's mixed-case Host still names the suite's namespace (the rest keeps its case).
    assert NAMES.host("Echo.Default.Svc:8080", LOGICAL) == "Echo.mc-3fa2c1-default.Svc:8080"
    assert NAMES.host("Echo:8080", LOGICAL) == "Echo:8080"


def test_authorization_policy_hosts_with_a_wildcard_are_mapped():
    """AuthorizationPolicy hosts/notHosts may end in '*' (a prefix): the namespace before it is the run's."""
    policy = load_manifest("authorization/allow-negated-fields.yaml")[0]
    [prepared] = applying.prepare([policy], NAMES, "run-1", LOGICAL)
    operation = prepared.document["spec"]["rules"][0]["to"][0]["operation"]
    assert operation["hosts"] == ["echo:8080", "echo.mc-3fa2c1-default.svc*"]
    assert operation["notHosts"] == ["echo.mc-3fa2c1-default.svc.cluster.local*"]
    # A suffix stays as written: "*tin" matches the run's mc-3fa2c1-optin as it matched optin.
    assert prepared.document["spec"]["rules"][0]["from"][0]["source"]["namespaces"] == ["mc-3fa2c1-default", "*tin"]


def test_every_conformance_manifest_maps_to_the_runs_namespaces_only():
    """The suite's own rendered manifests: after mapping nothing names `default`, `legacy` or `optin`."""
    items = load_manifest("authorization/allow-client-get.yaml", "m1") + load_manifest("mtls/namespace-strict.yaml")
    prepared = applying.prepare(items, NAMES, "run-1", LOGICAL)
    for item in prepared:
        assert item.ref.namespace in ("istio-system",) or item.ref.namespace.startswith("mc-3fa2c1-")
        assert item.document["metadata"]["labels"][RUN_LABEL] == "run-1"
        text = str(item.document.get("spec"))
        assert "/ns/default/" not in text and "'default'" not in text


def test_deployments_get_the_run_label_on_their_pods_too():
    deployment = load_text("""apiVersion: apps/v1
kind: Deployment
metadata: {name: echo-v1, namespace: default}
spec:
  selector: {matchLabels: {app: echo}}
  template:
    metadata: {labels: {app: echo}}
    spec: {containers: [{name: echo, image: x}]}
""")
    [prepared] = applying.prepare(deployment, NAMES, "run-1", LOGICAL)
    assert prepared.document["spec"]["template"]["metadata"]["labels"] == {"app": "echo", RUN_LABEL: "run-1"}
    assert prepared.document["spec"]["selector"] == {"matchLabels": {"app": "echo"}}  # selectors are immutable


def test_root_namespace_policies_select_only_the_runs_workloads():
    """A root-namespace AuthorizationPolicy or RequestAuthentication with a selector applies in every namespace: its
    selector gains the run label, which only the run's pods carry, so the user's own workloads are never selected.
    One in the run's namespaces, and a mesh-wide one without a selector, are left as written."""
    policies = load_text("""apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: root-deny, namespace: istio-system}
spec:
  selector: {matchLabels: {app: echo}}
  action: DENY
  rules: [{to: [{operation: {paths: ["/x"]}}]}]
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: root-jwt, namespace: istio-system}
spec:
  selector: {matchLabels: {app: echo}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: own, namespace: default}
spec:
  selector: {matchLabels: {app: echo}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: mesh-wide, namespace: istio-system}
spec: {}
""")
    prepared = {p.ref.name: p.document["spec"] for p in applying.prepare(policies, NAMES, "run-1", LOGICAL)}
    assert prepared["root-deny"]["selector"] == {"matchLabels": {"app": "echo", RUN_LABEL: "run-1"}}
    assert prepared["root-jwt"]["selector"] == {"matchLabels": {"app": "echo", RUN_LABEL: "run-1"}}
    assert prepared["own"]["selector"] == {"matchLabels": {"app": "echo"}}
    assert prepared["mesh-wide"] == {}


def test_ownership_refuses_foreign_and_other_runs_objects():
    ref = ObjectRef("v1", "Service", "mc-3fa2c1-default", "echo")
    check_may_apply(ref, None, "run-1")
    check_may_apply(ref, {"metadata": {"labels": {RUN_LABEL: "run-1"}}}, "run-1")
    with pytest.raises(ConfigError, match="outside meshconform"):
        check_may_apply(ref, {"metadata": {"labels": {}}}, "run-1", "testbed.yaml")
    with pytest.raises(ConfigError, match="by meshconform run run-0"):
        check_may_apply(ref, {"metadata": {"labels": {RUN_LABEL: "run-0"}}}, "run-1")


def test_cleanup_selection():
    ns = ObjectRef("v1", "Namespace", "", "mc-3fa2c1-default")
    inside = ObjectRef("apps/v1", "Deployment", "mc-3fa2c1-default", "echo-v1")
    mesh_wide = ObjectRef("security.istio.io/v1", "PeerAuthentication", "istio-system", "default")
    secret = ObjectRef("v1", "Secret", "istio-system", "echo-credential")
    # Objects inside a namespace being deleted go with it; mesh namespace objects are deleted one by one;
    # the namespace itself last.
    assert cleanup_order([ns, inside, secret, mesh_wide]) == [mesh_wide, secret, ns]
    ours, gone, foreign = deletable([ns, secret, mesh_wide], {
        ns: {"metadata": {"labels": {RUN_LABEL: "run-1"}}}, secret: None,
        mesh_wide: {"metadata": {"labels": {}}}}, "run-1")
    assert (ours, gone, foreign) == ([ns], [secret], [mesh_wide])
