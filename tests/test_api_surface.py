"""API-surface coverage: every field of the Istio API the local platform claims to implement (the meshapi
models' fields; `unmodelled` ones are refused by local.capabilities, so not claimed) against the manifests
the conformance checks apply (their declared files, rendered). Prints the fields no check exercises; the
test fails when a claimed field is unexercised and not yet listed in NOT_YET_EXERCISED (the target is an
empty list: each entry is a check still to write), or when a listed field has become exercised."""

from __future__ import annotations

import pkgutil
import types
import typing
from collections.abc import Iterator
from enum import Enum
from importlib import import_module
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml
from pydantic import BaseModel

from meshconform import conformance
from meshconform.errors import ConfigError
from meshconform.meshapi import gateway_api, istio
from meshconform.meshapi.loader import load_text
from meshconform.platform.local import capabilities
from meshconform.suite.manifests import manifest_path
from meshconform.suite.unit import REGISTRY

KINDS: dict[str, type[BaseModel]] = {
    "VirtualService": istio.VirtualServiceSpec, "DestinationRule": istio.DestinationRuleSpec,
    "Gateway": istio.GatewaySpec, "PeerAuthentication": istio.PeerAuthenticationSpec,
    "AuthorizationPolicy": istio.AuthorizationPolicySpec, "RequestAuthentication": istio.RequestAuthenticationSpec,
    # Gateway API kinds by group-qualified name (its Gateway shares a kind name with Istio's)
    f"Gateway.{gateway_api.GROUP}": gateway_api.GatewaySpec,
    f"HTTPRoute.{gateway_api.GROUP}": gateway_api.HTTPRouteSpec,
    "ServiceEntry": istio.ServiceEntrySpec, "Sidecar": istio.SidecarSpec,
}
# Values for templates whose shape depends on them (loops, tojson); other values render as a placeholder,
# which keeps every key of the template.
TEMPLATE_VALUES: dict[str, dict[str, Any]] = {
    "gateway/echo-wildcard.yaml": {"zone": "z.example", "authority_regex": "a"},
}
_MIRROR_ROUTE = """
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: default}
spec:
  parentRefs: [{group: "", kind: Service, name: echo, port: 8080}]
  rules:
  - filters: [{type: RequestMirror, requestMirror: {backendRef: {BACKEND}}}]
    backendRefs: [{name: echo, port: 8080}]
"""
# Modelled fields (valid Istio / Gateway API) that the local platform refuses by name (capabilities.py), so not
# claimed: path -> (a resource using it, the field the refusal must name). queryParams prefix: istio.io's
# HTTPMatchRequest says prefix is not supported for query parameters. A mirror backend in another namespace
# needs a ReferenceGrant, and one of another group or kind is not a Service: neither is implemented locally.
# jwksUri: the keys would have to be fetched while the config is applied (istiod does), which the local
# platform does not do.
REFUSED: dict[str, tuple[str, str]] = {
    "VirtualService.spec.http[].match[].queryParams{}.prefix": ("""
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: q, namespace: default}
spec:
  hosts: [echo]
  http:
  - match: [{queryParams: {lang: {prefix: en}}}]
    route: [{destination: {host: echo}}]
""", "spec.http[0].match[0].queryParams.lang.prefix"),
    f"HTTPRoute.{gateway_api.GROUP}.spec.rules[].filters[].requestMirror.backendRef.namespace": (
        _MIRROR_ROUTE.replace("BACKEND", "name: echo, namespace: legacy, port: 8080"),
        "spec.rules[0].filters[0].requestMirror.backendRef.namespace"),
    f"HTTPRoute.{gateway_api.GROUP}.spec.rules[].filters[].requestMirror.backendRef.group": (
        _MIRROR_ROUTE.replace("BACKEND", "group: example.com, kind: Service, name: echo, port: 8080"),
        "spec.rules[0].filters[0].requestMirror.backendRef"),
    f"HTTPRoute.{gateway_api.GROUP}.spec.rules[].filters[].requestMirror.backendRef.kind": (
        _MIRROR_ROUTE.replace("BACKEND", "kind: Widget, name: echo, port: 8080"),
        "spec.rules[0].filters[0].requestMirror.backendRef"),
    # istiod fetches jwksUri keys itself and inlines them; the local platform fetches nothing at run time.
    "RequestAuthentication.spec.jwtRules[].jwksUri": ("""
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: default}
spec:
  jwtRules: [{issuer: "https://issuer.test", jwksUri: "https://issuer.test/jwks"}]
""", "spec.jwtRules[0].jwksUri"),
}
# Claimed fields no conformance check exercises yet: the checks still to write (target: none).
# subset-traffic-policy: its subset connectionPool.http.http2MaxRequests (1000) and outlierDetection
# maxEjectionPercent (100) are loose values whose own effect the verdict does not show (the first proves the
# subset's pool replaces the rule's as a whole, the second lets the ejection minHealthPercent overrides happen);
# tcp.connectTimeout is shown accepted only (loopback connects at once). Its rule-level minHealthPercent shows on
# subset pair (two pods): one ejected leaves 50 % healthy, both ejected put the pool in panic.
# circuit-breaking-retries: the rule's connectionPool.http.maxRetries (1000) is loose (subset budget's own 1
# replaces it, a mesh taking the rule's would retry every request).
# mirror-full: a mirror's port is judged at the mirror's proxy (its inbound access-log record names the port the
# copy came in on), on echo-mirror's second port, where nothing listens.
NOT_YET_EXERCISED: set[str] = set()


class _Placeholder(jinja2.ChainableUndefined):
    def __str__(self) -> str:
        return "value"


def _inner(annotation: Any) -> Iterator[tuple[str, Any]]:
    """(suffix, type) for the model types inside an annotation: '[]' for list items, '{}' for map values."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            yield from _inner(arg)
    elif origin is list:
        for suffix, inner in _inner(typing.get_args(annotation)[0]):
            yield "[]" + suffix, inner
    elif origin is dict:
        for suffix, inner in _inner(typing.get_args(annotation)[1]):
            yield "{}" + suffix, inner
    elif origin is typing.Annotated:
        yield from _inner(typing.get_args(annotation)[0])
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield "", annotation
    else:
        yield "", None  # a leaf: str, int, float, bool, an enum


def claimed(model: type[BaseModel], prefix: str) -> Iterator[str]:
    for name, info in model.model_fields.items():
        path = f"{prefix}.{info.alias or name}"
        yield path
        for suffix, inner in _inner(info.annotation):
            if inner is not None and not issubclass(inner, Enum):
                yield from claimed(inner, path + suffix)


def exercised(value: Any, model: type[BaseModel], prefix: str) -> Iterator[str]:
    if not isinstance(value, dict):
        return
    fields = {info.alias or name: info for name, info in model.model_fields.items()}
    for key, item in value.items():
        if key not in fields:
            continue
        path = f"{prefix}.{key}"
        yield path
        for suffix, inner in _inner(fields[key].annotation):
            if inner is None:
                continue
            if suffix.startswith("[]") and isinstance(item, list):
                for element in item:
                    yield from exercised(element, inner, path + "[]")
            elif suffix.startswith("{}") and isinstance(item, dict):
                for element in item.values():
                    yield from exercised(element, inner, path + "{}")
            elif suffix == "":
                yield from exercised(item, inner, path)


def applied_documents() -> Iterator[tuple[str, dict[str, Any]]]:
    for module in pkgutil.iter_modules([str(Path(conformance.__file__).parent)]):
        import_module(f"meshconform.conformance.{module.name}")
    from meshconform.conformance.test_routing import MATCH_RULES
    values = {**TEMPLATE_VALUES, "routing/echo-match-rules.yaml": {"rules": MATCH_RULES}}
    environment = jinja2.Environment(undefined=_Placeholder, autoescape=False)  # noqa: S701 (YAML)
    names = sorted({name for unit in REGISTRY.values() for name in unit.manifests})
    for name in names:
        text = environment.from_string(manifest_path(name).read_text()).render(**values.get(name, {}))
        for document in yaml.safe_load_all(text):
            if isinstance(document, dict):
                yield name, document


def coverage() -> tuple[set[str], dict[str, set[str]]]:
    every = {path for kind, spec in KINDS.items() for path in claimed(spec, f"{kind}.spec")} - set(REFUSED)
    used: dict[str, set[str]] = {}
    for name, document in applied_documents():
        kind = document.get("kind", "")
        if str(document.get("apiVersion", "")).startswith(f"{gateway_api.GROUP}/"):
            kind = f"{kind}.{gateway_api.GROUP}"
        if kind in KINDS:
            for path in exercised(document.get("spec") or {}, KINDS[kind], f"{kind}.spec"):
                used.setdefault(path, set()).add(name)
    return every, used


def test_claimed_api_surface_is_exercised_by_checks() -> None:
    every, used = coverage()
    unexercised = sorted(every - set(used))
    print(f"\nAPI surface: {len(every)} claimed fields, {len(every & set(used))} exercised by conformance manifests, "
          f"{len(unexercised)} not:")
    for path in unexercised:
        print(f"  unexercised  {path}")
    assert set(unexercised) - NOT_YET_EXERCISED == set(), "claimed fields no conformance check exercises"
    assert NOT_YET_EXERCISED - set(unexercised) == set(), "now exercised: remove from NOT_YET_EXERCISED"


def test_the_walk_sees_fields_and_maps() -> None:
    paths = set(exercised({"http": [{"match": [{"headers": {"x": {"exact": "a"}}}],
                                     "route": [{"destination": {"host": "h"}}]}]},
                          istio.VirtualServiceSpec, "VirtualService.spec"))
    assert "VirtualService.spec.http[].match[].headers{}.exact" in paths
    assert "VirtualService.spec.http[].route[].destination.host" in paths
    assert "VirtualService.spec.http[].match[].headers{}.exact" in set(claimed(istio.VirtualServiceSpec,
                                                                               "VirtualService.spec"))


@pytest.mark.parametrize("path", sorted(REFUSED))
def test_refused_fields_are_refused_by_name(path: str) -> None:
    text, field = REFUSED[path]
    items = load_text(text, "refused.yaml")  # valid: the schema accepts it, as a cluster would
    with pytest.raises(ConfigError) as caught:
        capabilities.check(items)
    assert caught.value.field == field, str(caught.value)
    assert "not implemented by the local platform" in str(caught.value)
