"""Offline validation of every manifest the suite or Bookinfo sends to a cluster, as the cluster's API server
would validate it: Kubernetes objects against Kubernetes 1.36's OpenAPI schemas (strict), Istio resources against
Istio 1.30.3's CRD schemas and CEL rules. Each is checked as written and as sent (namespaces mapped, run labels)."""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshconform.meshapi.loader import load_files
from meshconform.platform.kube import apply as applying
from meshconform.platform.kube import images, testbed, validation
from meshconform.platform.kube.names import NamespaceMap
from meshconform.suite.manifests import load_manifest
from meshconform.suite.tls import issue_server_credential

ROOT = Path(__file__).resolve().parents[2]
NAMES = NamespaceMap("mc-3fa2c1")
LOGICAL = ["default", "legacy", "optin"]
CREDENTIAL = issue_server_credential("secure.example.com").secret_data()
# Every template under conformance/manifests/ with the values its tests render it with (conformance/test_*.py).
from meshconform.conformance.test_routing import MATCH_RULES  # noqa: E402  (the rules the check applies)

SAMPLE_VALUES: dict[str, list[dict[str, Any]]] = {
    "authorization/allow-client-get.yaml": [{}], "authorization/allow-nothing.yaml": [{}],
    "authorization/allow-negated-fields.yaml": [{}],
    "authorization/deny-admin.yaml": [{}],
    "authorization/jwt-echo.yaml": [{"issuer": "https://issuer-0a1b.meshconform.test", "subject": "alice",
                                     "jwks": '{"keys":[{"kty":"RSA","alg":"RS256","use":"sig","kid":"k1",'
                                             '"n":"AQAB","e":"AQAB"}]}',
                                     "audience": "echo-0a1b", "banned": "mallory",
                                     "header_issuer": "https://issuer-2c3d.meshconform.test",
                                     "header_jwks": '{"keys":[{"kty":"RSA","alg":"RS256","use":"sig","kid":"k2",'
                                                    '"n":"AQAB","e":"AQAB"}]}'}],
    "authorization/root-namespace-policies.yaml": [{"issuer": "https://root-issuer-4e5f.meshconform.test",
                                                    "jwks": '{"keys":[{"kty":"RSA","alg":"RS256","use":"sig",'
                                                            '"kid":"k3","n":"AQAB","e":"AQAB"}]}'}],
    "fault/echo-abort.yaml": [{"status": 418, "percent": 100}, {"status": 418, "percent": 30}],
    "fault/echo-delay.yaml": [{"delay": "1s", "percent": 50}],
    "gateway/echo-hosts.yaml": [{"host_a": "a.example.com", "host_b": "b.example.com", "host_c": "c.example.org"}],
    "gateway/echo-http.yaml": [{"host": "echo.example.com"}],
    "gateway/echo-tls.yaml": [{"host": "secure.example.com", **CREDENTIAL}],
    "egress/root-and-namespace-sidecars.yaml": [{"namespace_sidecar": False}, {"namespace_sidecar": True}],
    "mirroring/echo-mirror.yaml": [{"percent": None}, {"percent": 50}],
    "mtls/mesh-strict-namespace-permissive.yaml": [{}], "mtls/namespace-disable.yaml": [{}],
    "mtls/namespace-permissive.yaml": [{}], "mtls/namespace-strict.yaml": [{}], "mtls/workload-disable.yaml": [{}],
    "resilience/echo-circuit-breaker.yaml": [
        {"connections": 1000, "pending": 1000, "rule_connections": 1, "rule_pending": 1, "subset": None},
        {"connections": 1, "pending": 1, "rule_connections": 1000, "rule_pending": 1000, "subset": "all"}],
    "resilience/echo-pool-outlier.yaml": [
        {"consecutive": 3, "interval": "1s", "base_ejection": "2.5s", "max_percent": 100, "subset": "pool",
         "rule_consecutive": 1000, "rule_interval": "30s", "rule_base_ejection": "30s", "rule_max_percent": 10},
        {"consecutive": 1000, "interval": "30s", "base_ejection": "30s", "max_percent": 10, "subset": None,
         "rule_consecutive": 3, "rule_interval": "1s", "rule_base_ejection": "2.5s", "rule_max_percent": 34}],
    "resilience/echo-retry-budget.yaml": [{}],
    "resilience/echo-pool-retry.yaml": [{}],
    "resilience/echo-retries.yaml": [{"attempts": 0}, {"attempts": 1}, {"attempts": 3}],
    "resilience/echo-subset-policies.yaml": [{}],
    "resilience/echo-timeout.yaml": [{"timeout": "0.5s"}],
    "routing/echo-weighted.yaml": [{"v1": 80, "v2": 20}, {"v1": 100, "v2": 0}],
    "authorization/allow-ledger-reader.yaml": [{}],
    "gateway/echo-https-redirect.yaml": [{"host": "redirect.example.com", **CREDENTIAL}],
    "gateway/echo-wildcard.yaml": [{"zone": "gwnm.example", "authority_regex": r"api-[0-9]+\.wild\.gwnm\.example"}],
    "mtls/port-level-permissive.yaml": [{"port_mode": "PERMISSIVE"}, {"port_mode": "STRICT"}],
    "routing/echo-header-ops.yaml": [{}],
    "routing/echo-match-rules.yaml": [{"rules": MATCH_RULES}],
    "gateway-api/echo-paths.yaml": [{"host": "paths.gwapi.example.com", "zone": "gwapi.example.com"}],
    "gateway-api/echo-mesh-weights.yaml": [{"v1": 80, "v2": 20}, {"v1": 50, "v2": 50}],
    "gateway-api/echo-mesh-headers.yaml": [{}], "gateway-api/echo-mesh-header-modifier.yaml": [{}],
    "gateway-api/echo-mesh-mirror.yaml": [{}],
    "interactions/echo-v1-subset.yaml": [{}], "interactions/echo-retry-on.yaml": [{}],
    "interactions/echo-abort-retries.yaml": [{}], "interactions/echo-multi-label-subsets.yaml": [{}],
    "interactions/echo-timeout-retries.yaml": [{"cap_timeout": "1s", "cap_attempts": 5, "cap_per_try": "0.4s",
                                              "per_try_route_timeout": "4s", "per_try": "0.5s"}],
    "egress/outside-server.yaml": [{}],
    "egress/registry-only.yaml": [{"host": "outside.egress.meshconform.test", "port": 80, "target_port": 8080,
                                   "address": "10.244.0.17", "timeout": "1s", "alt_port": 8081,
                                   "mapped_host": "mapped.egress.meshconform.test",
                                   "hidden_host": "hidden.egress.meshconform.test",
                                   "dns_host": "dns.wildcard-egress.meshconform.test",
                                   "dns_domain": "wildcard-egress.meshconform.test"}],
}
# Istio's Bookinfo images, by the tag Istio publishes (bookinfo/manifests/bookinfo.yaml): the only images not
# pinned by digest.
BOOKINFO_BY_TAG = {f"docker.io/istio/examples-bookinfo-{name}:1.20.3" for name in (
    "details-v1", "ratings-v1", "reviews-v1", "reviews-v2", "reviews-v3", "productpage-v1")}


def manifests() -> list[tuple[str, dict[str, Any]]]:
    """(label, document) for everything a run applies: base manifests, Bookinfo's scenarios, rendered suite
    templates (marker-tagged, as applied), and the agent ConfigMap."""
    out = []
    base = [*sorted((ROOT / "bookinfo" / "manifests").glob("*.yaml")),
            *sorted((ROOT / "bookinfo" / "networking").glob("*.yaml"))]
    for item in load_files(base):
        out.append((item.source, item))
    templates = sorted(p.relative_to(ROOT / "conformance" / "manifests").as_posix()
                       for p in (ROOT / "conformance" / "manifests").rglob("*.yaml"))
    assert sorted(SAMPLE_VALUES) == templates, "every suite template needs sample values here"
    for name, value_sets in SAMPLE_VALUES.items():
        for index, values in enumerate(value_sets):
            for item in load_manifest(name, marker=f"m{index}", **values):
                out.append((f"{name}#{index}", item))
    as_written = [(label, item.document) for label, item in out]
    as_sent = [(f"{p.source} (as sent)", p.document) for p in
               applying.prepare([item for _, item in out], NAMES, "20261122-061017-run-3fa2c1", LOGICAL)]
    agent = [("agent ConfigMap", testbed.agent_configmap("mc-3fa2c1-default"))]
    return as_written + as_sent + agent


def test_vendored_istio_schemas_are_istios_file():
    data = resources.files("meshconform.platform.kube").joinpath(validation.ISTIO_SCHEMAS).read_bytes()
    assert hashlib.sha256(data).hexdigest() == "dcb43ff6b9af2f629b80b6a82597f5a91db259c757e66cc5353ac007da28351a"
    assert len(validation.istio_crds()) == 15


def test_every_manifest_is_valid_for_kubernetes_and_istio():
    items = manifests()
    findings = validation.validate(items)
    assert not findings, "\n".join(map(str, findings))
    kinds = {doc["kind"] for _, doc in items}
    assert kinds >= {"Namespace", "Service", "ServiceAccount", "Deployment", "Secret", "ConfigMap", "VirtualService",
                     "DestinationRule", "Gateway", "PeerAuthentication", "AuthorizationPolicy", "HTTPRoute"}


def test_every_image_is_a_pullable_reference_and_only_bookinfo_goes_by_tag():
    uses = images.uses_in(manifests())
    images.check(uses, require_pinned=False)  # every reference well-formed, none :latest or untagged
    assert {u.image for u in uses if not u.pinned} == BOOKINFO_BY_TAG
    assert "PLACEHOLDER" not in " ".join(u.image for u in uses)


def test_require_pinned_images_names_the_file_deployment_and_field():
    uses = images.uses_in_files([ROOT / "bookinfo" / "manifests" / "bookinfo.yaml"])
    from meshconform.errors import ConfigError
    with pytest.raises(ConfigError) as caught:
        images.check(uses, require_pinned=True)
    message = str(caught.value)
    where = str(ROOT / "bookinfo" / "manifests" / "bookinfo.yaml")
    assert message.startswith(f"{where}: Deployment default/details-v1: spec.template.spec.containers[0].image: "
                              "image 'docker.io/istio/examples-bookinfo-")
    assert "--require-pinned-images" in message


@pytest.mark.parametrize(("image", "why"), [
    ("python:3.13-slim", None), ("registry.example:5000/team/app:1.0@sha256:" + "a" * 64, None),
    ("python", "names neither a tag nor a digest"), ("python:latest", "tag :latest moves"),
    ("Python:3.13", "not a valid image reference"), ("app@sha256:abc", "not a valid image reference")])
def test_image_references_are_judged_as_a_runtime_would(image: str, why: str | None) -> None:
    problem = images.reference_problem(image)
    assert (problem is None) if why is None else (why in (problem or "")), problem


def test_the_digest_each_pod_ran_is_read_from_its_status():
    pod = {"status": {"containerStatuses": [
        {"name": "details", "image": "docker.io/istio/examples-bookinfo-details-v1:1.20.3",
         "imageID": "docker.io/istio/examples-bookinfo-details-v1@sha256:" + "b" * 64},
        {"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.31.1", "imageID": ""}]},
        "spec": {}}
    assert images.ran([pod]) == {"docker.io/istio/examples-bookinfo-details-v1:1.20.3":
                                 "docker.io/istio/examples-bookinfo-details-v1@sha256:" + "b" * 64}


BAD = """apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: vs, namespace: default}
spec:
  hosts: [echo]
  http:
  - route: [{destination: {host: echo}}]
    timeout: 1ms0
    retries: {attemps: 3}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: pa, namespace: default}
spec:
  portLevelMtls: {"8080": {mode: DISABLE}}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: ["*"]
    tls: {mode: SIMPLE, credentialName: a, credentialNames: [b]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: d, namespace: default}
spec:
  selector: {matchLabels: {app: d}}
  template:
    metadata: {labels: {app: d}}
    spec: {containers: [{name: d, image: x, imagePullPolicy: Sometimes, portz: []}]}
"""


def test_bad_resources_are_caught_with_their_field():
    findings = [str(f) for f in validation.validate(("bad.yaml", d) for d in yaml.safe_load_all(BAD))]
    assert findings[0] == ("bad.yaml: VirtualService default/vs: spec.http[0].retries: Additional properties are not "
                           "allowed ('attemps' was unexpected)")
    # CEL: the duration rule cannot hold on '1ms0' (the server reports an evaluation error too).
    assert findings[1].startswith("bad.yaml: VirtualService default/vs: spec.http[0].timeout: rule \"duration(self)")
    assert findings[2:] == [
        "bad.yaml: PeerAuthentication default/pa: spec: portLevelMtls requires selector",
        "bad.yaml: Gateway default/gw: spec.servers[0].tls: only one of credentialName or credentialNames can be set",
        "bad.yaml: Deployment default/d: spec.template.spec.containers[0]: Additional properties are not allowed "
        "('portz' was unexpected)"]
    # The same rules pass when they hold.
    good = {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication", "metadata": {"name": "pa"},
            "spec": {"selector": {"matchLabels": {"app": "echo"}}, "portLevelMtls": {"8080": {"mode": "DISABLE"}}}}
    assert validation.validate_istio(good) == []
    good["spec"]["portLevelMtls"] = {"70000": {"mode": "DISABLE"}}
    assert validation.validate_istio(good) == [("spec.portLevelMtls", "port must be between 1-65535")]
