"""The Gateway API subset in meshapi: what the v1 CRDs accept or refuse (errors naming file, resource and field),
its Gateway told apart from Istio's, and what the local platform refuses by name (capabilities)."""

from __future__ import annotations

import pytest

from meshconform.errors import ConfigError
from meshconform.meshapi import gateway_api as gw
from meshconform.meshapi import istio
from meshconform.meshapi.loader import load_text
from meshconform.platform.local import capabilities

GATEWAY = """
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: same, namespace: default}
spec:
  gatewayClassName: istio
  listeners: [{name: http, port: 80, protocol: HTTP}]
---
"""
ISTIO_GATEWAY = """
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: same, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ['*']}]
---
"""


def route(rule: str = "{backendRefs: [{name: echo, port: 8080}]}", extra: str = "") -> str:
    return f"""
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: r, namespace: default}}
spec:
  parentRefs: [{{name: same}}]{extra}
  rules: [{rule}]
"""


def refusal(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_text(text, "f.yaml")
    return caught.value


def test_a_gateway_api_gateway_and_an_istio_gateway_of_one_name_are_two_objects() -> None:
    items = load_text(GATEWAY + ISTIO_GATEWAY, "f.yaml")
    assert [type(i.resource) for i in items] == [gw.Gateway, istio.Gateway]
    assert len({i.key for i in items}) == 2
    assert items[0].resource.ref == "Gateway.gateway.networking.k8s.io default/same"


def test_defaults_follow_the_crd() -> None:
    parsed = load_text(route("{}"), "f.yaml")[0].resource
    assert isinstance(parsed, gw.HTTPRoute)
    rule = parsed.spec.rules[0]
    assert rule.matches[0].path.type is gw.PathMatchType.PATH_PREFIX and rule.matches[0].path.value == "/"
    assert parsed.spec.parent_refs[0].is_gateway and not parsed.spec.parent_refs[0].is_service


@pytest.mark.parametrize(("text", "field", "words"), [
    (route("{backendRefs: [{name: echo, port: 8080, wieght: 1}]}"), "spec.rules[0].backendRefs[0].wieght",
     "not part of the Gateway API"),
    (route("{backendRefs: [{name: echo}]}"), "spec.rules[0].backendRefs[0]", "Must have port"),
    (route("{matches: [{path: {type: PathPrefix, value: foo}}]}"), "spec.rules[0].matches[0].path", "start with '/'"),
    (route("{matches: [{path: {type: Exact, value: /a//b}}]}"), "spec.rules[0].matches[0].path", "'//'"),
    (route("{filters: [{type: RequestMirror}]}"), "spec.rules[0].filters[0]", "requestMirror must be specified"),
    (route("{filters: [{type: RequestHeaderModifier, requestHeaderModifier: {}, requestMirror: "
           "{backendRef: {name: m, port: 1}}}]}"), "spec.rules[0].filters[0]", "must be nil"),
    (route(extra="\n  hostnames: ['1.2.3.4:80']"), "spec.hostnames", "not a valid"),
    (route("{backendRefs: [{name: echo, port: 8080, weight: -1}]}"), "spec.rules[0].backendRefs[0].weight",
     "greater than or equal to 0"),
    (GATEWAY.replace("listeners: [{name: http, port: 80, protocol: HTTP}]",
                     "listeners: [{name: a, port: 80, protocol: HTTP}, {name: a, port: 81, protocol: HTTP}]"),
     "spec.listeners", "unique"),
])
def test_invalid_resources_are_refused_naming_the_field(text: str, field: str, words: str) -> None:
    error = refusal(text)
    assert error.field == field and words in str(error) and error.source == "f.yaml", str(error)


@pytest.mark.parametrize(("text", "field"), [
    (route("{filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplaceFullPath, replaceFullPath: /x}}}], "
           "backendRefs: [{name: echo, port: 8080}]}"), "spec.rules[0].filters[0].urlRewrite"),
    (route("{timeouts: {request: 1s}, backendRefs: [{name: echo, port: 8080}]}"), "spec.rules[0].timeouts"),
    (route("{backendRefs: [{name: echo, port: 8080, filters: []}]}"), "spec.rules[0].backendRefs[0].filters"),
    (route("{backendRefs: [{group: networking.istio.io, kind: Hostname, name: a.b, namespace: x, port: 80}]}"),
     "spec.rules[0].backendRefs[0].namespace"),
    (route("{backendRefs: [{group: networking.istio.io, kind: Hostname, name: a.example.com}]}"),
     "spec.rules[0].backendRefs[0].port"),
    (GATEWAY.replace("port: 80, protocol: HTTP", "port: 443, protocol: HTTPS"), "spec.listeners[0].port"),
    (GATEWAY.replace("port: 80, protocol: HTTP", "port: 80, protocol: TCP"), "spec.listeners[0].protocol"),
    (GATEWAY.replace("gatewayClassName: istio", "gatewayClassName: istio\n  addresses: [{value: 10.0.0.1}]"),
     "spec.addresses[0]"),
])
def test_local_refuses_what_it_does_not_implement_naming_the_field(text: str, field: str) -> None:
    items = load_text(text, "f.yaml")
    with pytest.raises(ConfigError) as caught:
        capabilities.check(items)
    assert caught.value.field == field and "valid Gateway API, not implemented" in str(caught.value), str(caught.value)


def test_local_accepts_a_gateway_linked_to_its_ingress_service() -> None:
    linked = GATEWAY.replace("gatewayClassName: istio", "gatewayClassName: istio\n  addresses: "
                             "[{type: Hostname, value: istio-ingressgateway.istio-system.svc.cluster.local}]")
    capabilities.check(load_text(linked + route(), "f.yaml"))


def test_an_httproute_under_an_istio_api_version_names_the_right_one() -> None:
    error = refusal(route().replace("gateway.networking.k8s.io/v1", "networking.istio.io/v1"))
    assert error.field == "apiVersion" and "gateway.networking.k8s.io/v1" in str(error), str(error)


def test_failure_evidence_follows_httproute_services() -> None:
    from meshconform.fixtures import evidence
    from meshconform.suite.manifests import load_manifest
    items = load_manifest("gateway-api/echo-mesh-mirror.yaml")
    assert evidence.route_hosts(items) == {"echo"}  # proxy config excerpts are cut to the parent Service
    assert evidence._http_route_services(items[0]) == {("default", "echo"), ("default", "echo-mirror")}
