"""Parsing and validation: errors name the file, the resource and the field."""

from __future__ import annotations

import pytest

from meshconform.errors import ConfigError
from meshconform.meshapi.istio import VirtualService
from meshconform.meshapi.loader import load_text

VS = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - match: [{headers: {end-user: {exact: jason}}}]
    fault: {delay: {fixedDelay: 7s, percentage: {value: 100}}}
    route: [{destination: {host: reviews, subset: v2}}]
  - route:
    - {destination: {host: reviews, subset: v1}, weight: 80}
    - {destination: {host: reviews, subset: v2}, weight: 20}
"""


def _error(text: str) -> ConfigError:
    """The error for `text`, from the schema or, for valid Istio, from the local platform's capability check."""
    from meshconform.platform.local import capabilities
    with pytest.raises(ConfigError) as caught:
        capabilities.check(load_text(text, "bad.yaml"))
    return caught.value


def test_valid_virtual_service_parses_with_istio_defaults() -> None:
    [item] = load_text(VS, "vs.yaml")
    vs = item.resource
    assert isinstance(vs, VirtualService)
    assert vs.bound_to_mesh  # no gateways means mesh only
    assert vs.spec.http[0].fault is not None and vs.spec.http[0].fault.delay is not None
    assert vs.spec.http[0].fault.delay.fixed_delay == 7.0
    assert vs.spec.http[0].mirror_fraction == 1.0  # absent mirrorPercentage means 100%


def test_unknown_field_names_file_resource_and_field() -> None:
    error = _error(VS.replace("weight: 20}", "wieght: 20}"))
    assert error.source == "bad.yaml"
    assert error.resource == "VirtualService default/reviews"
    assert error.field == "spec.http[1].route[1].wieght"
    assert "unknown field" in str(error)


def test_valid_istio_the_local_platform_does_not_implement_is_accepted_by_the_schema_refused_by_local() -> None:
    from meshconform.platform.local import capabilities
    text = VS.replace("route: [{destination: {host: reviews, subset: v2}}]",
                      "route: [{destination: {host: reviews, subset: v2}}]\n"
                      "    corsPolicy: {allowOrigins: [{exact: a}]}")
    [item] = load_text(text, "cors.yaml")  # valid Istio: the schema accepts it, as a cluster would
    assert item.resource.spec.http[0].unmodelled_fields == {"corsPolicy": {"allowOrigins": [{"exact": "a"}]}}
    with pytest.raises(ConfigError) as caught:
        capabilities.check([item])
    error = caught.value
    assert (error.source, error.resource, error.field) == ("cors.yaml", "VirtualService default/reviews",
                                                            "spec.http[0].corsPolicy")
    assert "valid Istio, not implemented by the local platform" in str(error)


@pytest.mark.parametrize(("document", "field", "words"), [
    ("""apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: audit, namespace: default}
spec: {action: AUDIT}
""", "spec.action", "action AUDIT"),
    ("""apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: tpl, namespace: default}
spec:
  rules: [{to: [{operation: {paths: ["/api/{*}/x"]}}]}]
""", "spec.rules[0].to[0].operation.paths", "path templates"),
    ("""apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ext, namespace: default}
spec: {host: httpbin.org, trafficPolicy: {tls: {mode: SIMPLE}}}
""", "spec.trafficPolicy.tls.mode", "tls mode SIMPLE"),
    ("""apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: tcp, namespace: default}
spec: {servers: [{port: {number: 31400, name: tcp, protocol: TCP}, hosts: ["*"]}]}
""", "spec.servers[0].port.number", "port 31400"),
    ("""apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext, namespace: default}
spec: {hosts: [httpbin.org], ports: [{number: 80, name: http, protocol: HTTP}], resolution: DNS}
""", "spec.endpoints", "no DNS"),
    ("""apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext, namespace: default}
spec: {hosts: [a.test], ports: [{number: 443, name: tls, protocol: TLS}], resolution: NONE}
""", "spec.ports[0].protocol", "protocol TLS"),
    ("""apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext, namespace: default}
spec: {hosts: [a.test], addresses: [10.0.0.1], ports: [{number: 80, name: http, protocol: HTTP}]}
""", "spec.addresses", "field addresses"),
    ("""apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext, namespace: default}
spec: {hosts: [a.test], location: MESH_INTERNAL, ports: [{number: 80, name: http, protocol: HTTP}]}
""", "spec.location", "MESH_INTERNAL"),
    ("""apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: s, namespace: default}
spec: {egress: [{hosts: ["./*"]}]}
""", "spec.egress", "field egress"),
    ("""apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: s, namespace: default}
spec: {outboundTrafficPolicy: {mode: REGISTRY_ONLY, egressProxy: {host: egress.istio-system}}}
""", "spec.outboundTrafficPolicy.egressProxy", "field egressProxy"),
    ("""apiVersion: v1
kind: Service
metadata: {name: db, namespace: default}
spec: {selector: {app: db}, ports: [{name: http, port: 80}, {name: tcp-db, port: 5432}]}
""", "spec.ports[1].name", "proxies as TCP"),
    ("""apiVersion: v1
kind: Service
metadata: {name: db, namespace: default}
spec: {selector: {app: db}, ports: [{name: web, port: 443, appProtocol: kubernetes.io/wss}]}
""", "spec.ports[0].appProtocol", "proxies as HTTPS"),
    ("""apiVersion: v1
kind: Service
metadata: {name: dns, namespace: default}
spec: {selector: {app: dns}, ports: [{name: dns, port: 53, protocol: UDP}]}
""", "spec.ports[0].protocol", "proxies as UDP"),
    ("""apiVersion: v1
kind: Service
metadata: {name: alias, namespace: default}
spec: {type: ExternalName, externalName: example.com}
""", "spec.type", "ExternalName"),
    ("""apiVersion: v1
kind: Service
metadata: {name: each, namespace: default}
spec: {clusterIP: None, selector: {app: each}, ports: [{name: http, port: 80}]}
""", "spec.clusterIP", "headless"),
])
def test_capability_refusals_name_the_field(document: str, field: str, words: str) -> None:
    from meshconform.platform.local import capabilities
    items = load_text(document, "x.yaml")  # valid Istio
    with pytest.raises(ConfigError) as caught:
        capabilities.check(items)
    assert caught.value.field == field and words in str(caught.value)


@pytest.mark.parametrize(("text", "seconds"), [
    ("7s", 7.0), ("0.5s", 0.5), ("30ms", 0.03), ("15m", 900.0), ("1h30m", 5400.0), ("100us", 1e-4), (".5s", 0.5),
])
def test_go_style_durations_are_accepted_as_istio_does(text: str, seconds: float) -> None:
    from meshconform.meshapi.durations import parse_duration
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["7", "7sec", "-1s", "1d", "", "s", "1h 30m"])
def test_malformed_durations_are_refused(text: str) -> None:
    from meshconform.meshapi.durations import parse_duration
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


@pytest.mark.parametrize(("change", "field", "words"), [
    (("weight: 80", "weight: -5"), "spec.http[1].route[0].weight", "greater than or equal"),
    (("fixedDelay: 7s", "fixedDelay: 7sec"), "spec.http[0].fault.delay.fixedDelay", "duration"),
    (("{value: 100}", "{value: 150}"), "spec.http[0].fault.delay.percentage.value", "less than or equal"),
    (("subset: v2}}]", "subset: V_2}}]"), "spec.http[0].route[0].destination.subset", "pattern"),
])
def test_semantic_errors_point_at_the_field(change: tuple[str, str], field: str, words: str) -> None:
    error = _error(VS.replace(*change, 1))
    assert error.field == field
    assert words in str(error)


def test_zero_total_weight_is_rejected() -> None:
    error = _error(VS.replace("weight: 80", "weight: 0").replace("weight: 20", "weight: 0"))
    assert error.field == "spec.http[1]"
    assert "more than 0" in str(error)


def test_weights_need_not_sum_to_100() -> None:
    [item] = load_text(VS.replace("weight: 80", "weight: 3").replace("weight: 20", "weight: 1"))
    assert [d.weight for d in item.resource.spec.http[1].route] == [3, 1]  # type: ignore[attr-defined]


def test_malformed_yaml_names_the_line() -> None:
    error = _error("apiVersion: v1\nkind: [Service\n")
    assert error.source == "bad.yaml"
    assert "line" in str(error) and "malformed YAML" in str(error)



def test_a_key_written_twice_is_an_error_as_kubectl_says() -> None:
    """PyYAML keeps the last of two `http:` keys: the first list of routes vanished without a word, where kubectl's
    decoder refuses the file ("mapping key already defined"). A YAML merge (`<<: *anchor`) may still be overridden."""
    twice = "spec:\n  hosts: [reviews]\n  http:\n  - route: [{destination: {host: reviews}}]\n  http: []\n"
    error = _error("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\n" + twice)
    assert str(error) == ("bad.yaml: line 8, column 3: malformed YAML: key 'http' written twice in one mapping "
                          "(first on line 6)")
    [merged] = load_text("apiVersion: v1\nkind: Namespace\nmetadata:\n  <<: {name: a}\n  name: b\n")
    assert merged.resource.metadata.name == "b"

def test_unknown_kind_and_api_version() -> None:
    assert _error("apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n").field == "kind"
    error = _error(VS.replace("networking.istio.io/v1", "networking.istio.io/v2"))
    assert error.field == "apiVersion"


def test_gateway_https_server_requires_tls() -> None:
    error = _error("""
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 443, name: https, protocol: HTTPS}, hosts: ["*"]}]
""")
    assert error.field == "spec.servers[0]" and "must have tls" in str(error)


def test_port_level_mtls_requires_selector() -> None:
    error = _error("""
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: pa}
spec: {mtls: {mode: STRICT}, portLevelMtls: {8080: {mode: DISABLE}}}
""")
    assert "selector" in str(error)


AP = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: viewer, namespace: default}
spec:
  selector: {matchLabels: {app: details}}
  rules:
  - from: [{source: {principals: ["cluster.local/ns/default/sa/bookinfo-productpage"]}}]
    to: [{operation: {methods: [GET], paths: ["/details/*"]}}]
"""


def test_authorization_policy_parses_and_defaults_to_allow() -> None:
    [item] = load_text(AP, "ap.yaml")
    spec = item.resource.spec  # type: ignore[attr-defined]
    assert spec.action.value == "ALLOW"
    assert spec.rules[0].from_[0].source.principals == ["cluster.local/ns/default/sa/bookinfo-productpage"]
    [allow_nothing] = load_text("apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
                                "metadata: {name: deny-all}\nspec: {}\n", "empty.yaml")
    assert allow_nothing.resource.spec.rules == []  # type: ignore[attr-defined]  # matches nothing: denies all


@pytest.mark.parametrize(("change", "field", "words"), [
    ("  action: AUDIT\n", "spec.action", "valid Istio, not implemented by the local platform"),
    ("    when: [{key: 'request.auth.claims[iss]', values: [x]}]\n", "spec.rules[0].when",
     "valid Istio, not implemented by the local platform"),
    ("    to: [{operation: {paths: ['/a*b']}}]\n", "spec.rules[0].to[0].operation", "'*' may only lead or end"),
    ("    to: [{operation: {ports: ['http']}}]\n", "spec.rules[0].to[0].operation", "not a port number"),
    ("    to: [{operation: {verbs: [GET]}}]\n", "spec.rules[0].to[0].operation.verbs", "unknown field 'verbs'"),
    ("    to: [{operation: {}}]\n", "spec.rules[0].to[0].operation", "empty operation is refused by Istio"),
])
def test_authorization_policy_errors_name_the_field(change: str, field: str, words: str) -> None:
    base = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: p}\nspec:\n"
    text = base + (change if change.startswith("  action") else "  rules:\n  - from: [{source: {namespaces: [a]}}]\n"
                   + change)
    error = _error(text)
    assert error.resource == "AuthorizationPolicy default/p"
    assert error.field == field, str(error)
    assert words in str(error)


def test_an_empty_source_is_refused_as_istio_refuses_it_and_one_with_an_unmodelled_field_is_not() -> None:
    base = ("apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: p}\nspec:\n"
            "  rules:\n  - from: [{source: %s}]\n")
    error = _error(base % "{}")
    assert (error.resource, error.field) == ("AuthorizationPolicy default/p", "spec.rules[0].from[0].source")
    assert "empty source is refused by Istio" in str(error)
    [policy] = load_text(base % "{ipBlocks: [10.0.0.0/8]}", "ip.yaml")  # valid Istio; the local platform refuses it
    assert policy.resource.spec.rules[0].from_[0].source.unmodelled_fields == {"ipBlocks": ["10.0.0.0/8"]}  # type: ignore[attr-defined]


RA = """apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: default}
spec:
  selector: {matchLabels: {app: echo}}
  jwtRules:
  - issuer: https://issuer.test
    %s
"""


def test_request_authentication_models_what_local_implements() -> None:
    from meshconform.meshapi.istio import RequestAuthentication
    from meshconform.platform.local import capabilities
    items = load_text(RA % "jwks: '{\"keys\": []}'\n    fromHeaders: [{name: x-jwt, prefix: 'Token '}]", "ra.yaml")
    capabilities.check(items)
    resource = items[0].resource
    assert isinstance(resource, RequestAuthentication)
    rule = resource.spec.jwt_rules[0]
    assert rule.issuer == "https://issuer.test" and rule.from_headers[0].prefix == "Token "
    assert rule.forward_original_token is False  # Istio's default: the token is removed before the app


@pytest.mark.parametrize(("extra", "field"), [
    ("jwksUri: https://issuer.test/jwks", "spec.jwtRules[0].jwksUri"),
    ("jwks: '{}'\n    outputPayloadToHeader: x-payload", "spec.jwtRules[0].outputPayloadToHeader"),
])
def test_request_authentication_the_local_platform_does_not_implement_is_refused(extra: str, field: str) -> None:
    error = _error(RA % extra)
    assert (error.resource, error.field) == ("RequestAuthentication default/jwt", field)


def test_request_principal_wildcards_local_cannot_match_are_refused() -> None:
    error = _error("""apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: p, namespace: default}
spec:
  rules: [{from: [{source: {requestPrincipals: ["https://issuer.test/al*"]}}]}]
""")
    assert error.field == "spec.rules[0].from[0].source.requestPrincipals"


def test_service_entry_endpoints_must_fit_the_resolution_as_the_crd_says() -> None:
    text = """apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext, namespace: default}
spec:
  hosts: [a.test]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: NONE
  endpoints: [{address: 10.0.0.1}]
"""
    with pytest.raises(ConfigError) as caught:
        load_text(text, "se.yaml")
    assert "NONE takes none" in str(caught.value)


@pytest.mark.parametrize(("port", "protocol"), [
    ({"name": "http"}, "http"), ({"name": "http2-api"}, "http2"), ({"name": "grpc-web-ui"}, "grpc-web"),
    ({"name": "GRPC"}, "grpc"), ({"name": "tcp-db"}, "tcp"), ({"name": "auto"}, None), ({}, None),
    ({"name": "web", "appProtocol": "http"}, "http"), ({"name": "http", "appProtocol": "tcp"}, "tcp"),
    ({"name": "x", "appProtocol": "kubernetes.io/h2c"}, "http2"), ({"name": "http", "protocol": "UDP"}, "udp"),
])
def test_a_service_ports_protocol_is_chosen_as_istio_chooses_it(port: dict[str, str], protocol: str | None) -> None:
    from meshconform.meshapi.kube import ServicePort
    assert ServicePort.model_validate({"port": 80, **port}).istio_protocol == protocol


def test_a_service_needs_ports_unless_it_is_external_name_or_headless() -> None:
    with pytest.raises(ConfigError) as caught:
        load_text("apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {selector: {app: s}}\n", "s.yaml")
    assert "at least one port" in str(caught.value)
    load_text("apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {type: ExternalName, externalName: a.b}\n",
              "s.yaml")
