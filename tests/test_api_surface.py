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
import yaml
from pydantic import BaseModel

from meshconform import conformance
from meshconform.meshapi import gateway_api, istio
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
# Claimed fields no conformance check exercises yet: the checks still to write (target: none). queryParams
# prefix: istio.io's HTTPMatchRequest reference says prefix is not supported for query parameters, so the
# local platform should refuse it rather than a check exercise it.
NOT_YET_EXERCISED: set[str] = {
    "DestinationRule.spec.subsets[].trafficPolicy",
    "DestinationRule.spec.subsets[].trafficPolicy.connectionPool",
    "DestinationRule.spec.subsets[].trafficPolicy.connectionPool.http",
    "DestinationRule.spec.subsets[].trafficPolicy.connectionPool.http.http1MaxPendingRequests",
    "DestinationRule.spec.subsets[].trafficPolicy.connectionPool.http.http2MaxRequests",
    "DestinationRule.spec.subsets[].trafficPolicy.connectionPool.http.maxRequestsPerConnection",
    "DestinationRule.spec.subsets[].trafficPolicy.connectionPool.http.maxRetries",
    "DestinationRule.spec.subsets[].trafficPolicy.connectionPool.tcp",
    "DestinationRule.spec.subsets[].trafficPolicy.connectionPool.tcp.connectTimeout",
    "DestinationRule.spec.subsets[].trafficPolicy.connectionPool.tcp.maxConnections",
    "DestinationRule.spec.subsets[].trafficPolicy.loadBalancer",
    "DestinationRule.spec.subsets[].trafficPolicy.loadBalancer.simple",
    "DestinationRule.spec.subsets[].trafficPolicy.outlierDetection",
    "DestinationRule.spec.subsets[].trafficPolicy.outlierDetection.baseEjectionTime",
    "DestinationRule.spec.subsets[].trafficPolicy.outlierDetection.consecutive5xxErrors",
    "DestinationRule.spec.subsets[].trafficPolicy.outlierDetection.consecutiveGatewayErrors",
    "DestinationRule.spec.subsets[].trafficPolicy.outlierDetection.interval",
    "DestinationRule.spec.subsets[].trafficPolicy.outlierDetection.maxEjectionPercent",
    "DestinationRule.spec.subsets[].trafficPolicy.outlierDetection.minHealthPercent",
    "DestinationRule.spec.subsets[].trafficPolicy.tls",
    "DestinationRule.spec.subsets[].trafficPolicy.tls.mode",
    "DestinationRule.spec.trafficPolicy.connectionPool.http.http2MaxRequests",
    "DestinationRule.spec.trafficPolicy.connectionPool.http.maxRetries",
    "DestinationRule.spec.trafficPolicy.connectionPool.tcp.connectTimeout",
    "DestinationRule.spec.trafficPolicy.loadBalancer",
    "DestinationRule.spec.trafficPolicy.loadBalancer.simple",
    "DestinationRule.spec.trafficPolicy.outlierDetection.consecutiveGatewayErrors",
    "DestinationRule.spec.trafficPolicy.outlierDetection.minHealthPercent",
    "DestinationRule.spec.trafficPolicy.tls",
    "DestinationRule.spec.trafficPolicy.tls.mode",
    # Gateway API: cross-namespace references (need a ReferenceGrant for backends), other backend kinds, mirror
    # fractions, query/method matching and named rules (extended features of their own in the Gateway API suite),
    # and ResponseHeaderModifier bodies beyond the marker the suite itself sets on every rule (suite/manifests.py).
    *{f"HTTPRoute.{gateway_api.GROUP}.spec.{path}" for path in (
        "parentRefs[].namespace", "rules[].backendRefs[].group", "rules[].backendRefs[].kind",
        "rules[].backendRefs[].namespace", "rules[].filters[].requestMirror.backendRef.group",
        "rules[].filters[].requestMirror.backendRef.kind", "rules[].filters[].requestMirror.backendRef.namespace",
        "rules[].filters[].requestMirror.fraction", "rules[].filters[].requestMirror.fraction.denominator",
        "rules[].filters[].requestMirror.fraction.numerator", "rules[].filters[].responseHeaderModifier",
        "rules[].filters[].responseHeaderModifier.add", "rules[].filters[].responseHeaderModifier.add[].name",
        "rules[].filters[].responseHeaderModifier.add[].value", "rules[].filters[].responseHeaderModifier.remove",
        "rules[].filters[].responseHeaderModifier.set", "rules[].filters[].responseHeaderModifier.set[].name",
        "rules[].filters[].responseHeaderModifier.set[].value", "rules[].matches[].method",
        "rules[].matches[].queryParams", "rules[].matches[].queryParams[].name", "rules[].matches[].queryParams[].type",
        "rules[].matches[].queryParams[].value", "rules[].name")},
    "ServiceEntry.spec.endpoints[].ports",
    "VirtualService.spec.http[].fault.delay.percent",
    "VirtualService.spec.http[].headers.response.add",
    "VirtualService.spec.http[].headers.response.remove",
    "VirtualService.spec.http[].match[].port",
    "VirtualService.spec.http[].match[].queryParams{}.prefix",
    "VirtualService.spec.http[].mirror.port",
    "VirtualService.spec.http[].mirror.port.number",
    "VirtualService.spec.http[].mirror.subset",
    "VirtualService.spec.http[].route[].headers.response",
    "VirtualService.spec.http[].route[].headers.response.add",
    "VirtualService.spec.http[].route[].headers.response.remove",
    "VirtualService.spec.http[].route[].headers.response.set",
}


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
    every = {path for kind, spec in KINDS.items() for path in claimed(spec, f"{kind}.spec")}
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
