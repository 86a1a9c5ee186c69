"""What a conformance unit changes in a mesh it shares with other units running at the same time, read from its
declared manifests: the services whose traffic its config routes or shapes, and whether it needs the mesh alone.

Why: on a shared platform (kind, cluster) the run's xdist workers share one testbed, and each test's objects are
named after it, but two tests' VirtualServices for the same host still meet on the same sidecars (Istio keeps one
of them), and a namespace-wide policy (PeerAuthentication, AuthorizationPolicy, ...) changes every test's traffic.
Units whose claims overlap take turns (suite/turns.py); an exclusive unit runs alone.

The rules are conservative (a claim too many costs only parallelism):
- a service is claimed by its short name (`echo`, `echo.optin`, `echo.default.svc.cluster.local` are all `echo`),
  for every host a VirtualService or DestinationRule configures or routes to (mirrors included), every Gateway
  API route's Service parents and backends, a ServiceEntry's hosts, a Service's or Deployment's app;
- anything bound to an ingress gateway (an Istio or Gateway API Gateway, a route attached to one) claims the
  ingress, since Gateways' servers on one port meet in the same gateway proxy;
- exclusive: a unit declared `parallel=False`, a unit with no manifests (its traffic goes to services nothing
  names), any policy or other kind not listed above, a mesh-wide host (`*`), or a host left to a template value.
A unit's traffic goes only to services its manifests name; one that sends elsewhere is declared parallel=False."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import jinja2
import yaml

from meshconform.meshapi.gateway_api import GROUP as GATEWAY_API_GROUP
from meshconform.suite.manifests import manifest_path
from meshconform.suite.unit import ConformanceTest

INGRESS = "ingress"
# Stands for a template value (weights, hosts) when a unit's manifests are read before the test renders them.
TEMPLATE_VALUE = "meshconform-template-value"
_ROUTE_KINDS = frozenset({"HTTPRoute", "GRPCRoute", "TCPRoute", "TLSRoute"})
_WORKLOAD_KINDS = frozenset({"Service", "Deployment"})
_IGNORED_KINDS = frozenset({"Secret"})  # named after the test (a gateway's credential): nobody else reads it


@dataclass(frozen=True)
class Claims:
    """`keys`: the services (and `ingress`) a unit's config touches; `exclusive`: it needs the mesh alone (`why`)."""

    keys: frozenset[str]
    exclusive: bool = False
    why: str = ""

    def overlaps(self, other: Claims) -> bool:
        return self.exclusive or other.exclusive or bool(self.keys & other.keys)

    def describe(self) -> str:
        return f"the whole mesh ({self.why})" if self.exclusive else ", ".join(sorted(self.keys))


@functools.cache
def claims_of(unit: ConformanceTest) -> Claims:
    """The unit's claims, from its declared manifests (template values left open)."""
    if not unit.parallel:
        return Claims(frozenset(), True, "declared parallel=False")
    if not unit.manifests:
        return Claims(frozenset(), True, "no manifests: its traffic is not tied to services it configures")
    documents = [document for name in unit.manifests for document in _documents(name)]
    return derive(documents)


@functools.cache
def manifest_claims(unit: ConformanceTest) -> Claims:
    """What the unit's manifests touch, whether or not it may run beside others (`parallel` is about time, not
    about which services): exclusive only when it has none, or they touch more than named services."""
    if not unit.manifests:
        return Claims(frozenset(), True, "no manifests: its traffic is not tied to services it configures")
    return derive([document for name in unit.manifests for document in _documents(name)])


def derive(documents: Iterable[dict[str, Any]]) -> Claims:
    keys: set[str] = set()
    for document in documents:
        kind = str(document.get("kind"))
        group = str(document.get("apiVersion", "")).rpartition("/")[0]
        spec = document.get("spec") or {}
        found = _claims(kind, group, spec, document)
        if found is None:
            name = (document.get("metadata") or {}).get("name", "?")
            return Claims(frozenset(), True, f"{kind} {name} changes more than named services")
        keys |= found
    unresolved = sorted(key for key in keys if TEMPLATE_VALUE in key or key.startswith("*"))
    if unresolved:
        return Claims(frozenset(), True, f"host {unresolved[0]!r} is mesh-wide or left to a template value")
    return Claims(frozenset(keys))


def _claims(kind: str, group: str, spec: dict[str, Any], document: dict[str, Any]) -> set[str] | None:
    """Keys one object claims; None when it needs the mesh alone."""
    if kind in _IGNORED_KINDS:
        return set()
    if kind == "VirtualService":
        return _virtual_service(spec)
    if kind == "DestinationRule":
        return {_service(spec.get("host"))}
    if kind == "ServiceEntry":
        return {_service(host) for host in spec.get("hosts") or [None]}
    if kind == "Gateway":  # Istio's and the Gateway API's: servers meet in the ingress gateway's proxy
        return {INGRESS}
    if kind in _ROUTE_KINDS and group == GATEWAY_API_GROUP:
        return _gateway_api_route(spec)
    if kind in _WORKLOAD_KINDS and group in ("", "apps"):
        labels = (spec.get("selector") or {}) if kind == "Service" else (
            ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {})
        return {_service(labels.get("app") or (document.get("metadata") or {}).get("name"))}
    return None


def _virtual_service(spec: dict[str, Any]) -> set[str]:
    gateways = spec.get("gateways") or ["mesh"]
    keys = {INGRESS} if any(g != "mesh" for g in gateways) else set()
    if "mesh" in gateways:  # hosts name services only for sidecars; on a gateway they are outside names
        keys |= {_service(host) for host in spec.get("hosts") or [None]}
    for protocol in ("http", "tcp", "tls"):
        for rule in spec.get(protocol) or []:
            targets = [route.get("destination") for route in rule.get("route") or []]
            targets += [rule.get("mirror"), *(m.get("destination") for m in rule.get("mirrors") or [])]
            keys |= {_service(t.get("host")) for t in targets if isinstance(t, dict)}
    return keys


def _gateway_api_route(spec: dict[str, Any]) -> set[str]:
    keys: set[str] = set()
    for parent in spec.get("parentRefs") or []:
        keys.add(_service(parent.get("name")) if parent.get("kind") == "Service" else INGRESS)
    for rule in spec.get("rules") or []:
        refs = list(rule.get("backendRefs") or [])
        refs += [(f.get("requestMirror") or {}).get("backendRef") for f in rule.get("filters") or []]
        keys |= {_service(ref.get("name")) for ref in refs if isinstance(ref, dict)}
    return keys


def _service(host: Any) -> str:
    """A service's claim key: its short name (the first label), so every spelling of one host claims the same."""
    if not isinstance(host, str) or not host:
        return TEMPLATE_VALUE  # absent or templated: unresolved, so exclusive
    return host if host == "*" or host.startswith("*.") else host.split(".")[0]


class _OpenValue(jinja2.ChainableUndefined):
    """A template value not known yet: renders as a marker, iterates as empty (a loop over rules adds none)."""

    def __str__(self) -> str:
        return TEMPLATE_VALUE


def _documents(name: str) -> list[dict[str, Any]]:
    environment = jinja2.Environment(undefined=_OpenValue, autoescape=False)  # noqa: S701 (YAML, not HTML)
    environment.policies["json.dumps_kwargs"] = {"default": str}  # `| tojson` of an open value
    text = environment.from_string(manifest_path(name).read_text()).render()
    return [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]
