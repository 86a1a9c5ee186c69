"""Gateway API (Gateway, HTTPRoute) lowered into the Istio model the rest of the translator reads.

istiod does the same: it converts Gateway API objects into internal Gateways and VirtualServices before
building Envoy config (pilot/pkg/config/kube/gateway). Here a Gateway of class `istio` becomes one Istio
Gateway per listener on the ingress gateway pod (which serves it: see `capabilities` for the addresses it
accepts), and the HTTPRoutes attached to a listener or to a Service (GAMMA) become VirtualServices, one per
hostname (ingress) or per Service (mesh), whose rules are sorted by the Gateway API's precedence:

1. an Exact path, then a RegularExpression path, then the longest PathPrefix (istiod ranks regex between);
2. a method match; 3. the most header matches; 4. the most query-parameter matches;
5. the oldest route, then namespace/name alphabetically; then rule and match order within a route.

PathPrefix is segment-based: `/foo` (or `/foo/`) takes `/foo` and `/foo/...`, never `/foobar`, lowered
to the Istio matches `exact: /foo` and `prefix: /foo/`. A rule with no usable backend (none given, all
weights 0, a missing Service, another kind, or a Service in another namespace: the local platform has no
ReferenceGrant, so every cross-namespace backend is RefNotPermitted) answers 500, as the spec requires. An
Istio `Hostname` backend (group networking.istio.io) is routed as written, to outbound|<port>||<name>, whether
or not a service has that name (istiod keeps it; a proxy without that cluster answers 503).

A Service parent's routes are lowered per namespace of the route, as istiod does, with its gateway semantics
(`is_lowered`; see listeners.mesh_virtual_services): a route in the Service's namespace (producer) governs every
caller; a route in another namespace (consumer) only callers in its own namespace, and there it wins; a route
for a Service that does not exist routes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from meshconform.meshapi import gateway_api as gw
from meshconform.meshapi.istio import Gateway, VirtualService
from meshconform.platform.local.misbehaviour import Misbehaviour, Misbehaviours
from meshconform.platform.local.translator.model import MeshSnapshot
from meshconform.platform.local.translator.names import host_matches

GATEWAY_CLASS = "istio"
GATEWAY_SELECTOR = {"istio": "ingressgateway"}
LOWERED_SUFFIX = "k8s-gateway"  # names of the lowered Istio objects: never a name a user's Istio object has
INVALID_BACKEND_STATUS = 500


@dataclass(frozen=True)
class _Entry:
    """One HTTPRoute match of one rule, with what orders it among every route on the same parent."""

    route: gw.HTTPRoute
    age: int
    rule_index: int
    rule: gw.HTTPRouteRule
    match_index: int
    match: gw.HTTPRouteMatch
    port: int | None = None  # a Service parent's port: the rule applies to that port only

    def precedence(self, misbehave: Misbehaviours) -> tuple[Any, ...]:
        order = (self.age, self.route.metadata.namespace, self.route.metadata.name, self.rule_index,
                 self.match_index)
        if Misbehaviour.GATEWAY_API_PRECEDENCE_IGNORED in misbehave:
            return order
        path = self.match.path
        rank = {gw.PathMatchType.EXACT: 3, gw.PathMatchType.REGULAR_EXPRESSION: 2, gw.PathMatchType.PATH_PREFIX: 1}
        length = len(_segment_prefix(path.value)) if path.type is gw.PathMatchType.PATH_PREFIX else 0
        return (-rank[path.type], -length, self.match.method is None, -len(self.match.headers),
                -len(self.match.query_params), *order)


def lower(mesh: MeshSnapshot, misbehave: Misbehaviours) -> MeshSnapshot:
    """`mesh` with its Gateway API objects added as Istio Gateways and VirtualServices (after the user's own,
    so an Istio VirtualService for the same host stays the older one)."""
    if not mesh.k8s_gateways and not mesh.http_routes:
        return mesh
    services = {s.fqdn for s in mesh.services}
    listeners = {(g.metadata.namespace, g.metadata.name): g for g in mesh.k8s_gateways
                 if g.spec.gateway_class_name == GATEWAY_CLASS}
    by_parent: dict[tuple[str, ...], list[_Entry]] = {}
    for age, route in enumerate(mesh.http_routes):
        for key, port in _parents(route, listeners, misbehave):
            by_parent.setdefault(key, []).extend(
                _Entry(route, age, r, rule, m, match, port) for r, rule in enumerate(route.spec.rules)
                for m, match in enumerate(rule.matches))
    gateways = [_istio_gateway(g, listener) for g in listeners.values() for listener in g.spec.listeners]
    virtual_services = []
    for index, (key, entries) in enumerate(sorted(by_parent.items())):
        entries.sort(key=lambda e: e.precedence(misbehave))
        if key[0] == "gateway":
            _, namespace, gateway_name, listener, hostname = key
            binding: dict[str, Any] = {"hosts": [hostname],
                                       "gateways": [f"{namespace}/{_lowered_name(gateway_name, listener)}"]}
        else:
            _, namespace, fqdn = key  # the namespace of the routes (producer or consumer)
            binding = {"hosts": [fqdn], "gateways": ["mesh"]}
        http = [_rule(e, services, misbehave) for e in entries]
        virtual_services.append(VirtualService.model_validate({
            "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": f"gwapi-{index}-{LOWERED_SUFFIX}", "namespace": namespace},
            "spec": {**binding, "http": http}}))
    return replace(mesh, gateways=[*mesh.gateways, *gateways],
                   virtual_services=[*mesh.virtual_services, *virtual_services])


def is_lowered(vs: VirtualService) -> bool:
    """Made here from Gateway API routes: istiod's gateway semantics apply to it (see the module's docstring)."""
    return vs.metadata.name.endswith(LOWERED_SUFFIX)


def _parents(route: gw.HTTPRoute, gateways: dict[tuple[str, str], gw.Gateway], misbehave: Misbehaviours
             ) -> Iterator[tuple[tuple[str, ...], int | None]]:
    """Where the route attaches: ("gateway", ns, name, listener, hostname) per listener and intersecting
    hostname, or ("service", route's ns, fqdn) for a Service parent (GAMMA), with the parent's port if it names
    one (istiod: one VirtualService per route namespace, port and host)."""
    seen: set[tuple[tuple[str, ...], int | None]] = set()
    own = route.metadata.namespace
    for ref in route.spec.parent_refs:
        namespace = own if Misbehaviour.PARENT_NAMESPACE_IGNORED in misbehave else ref.namespace or own
        if ref.is_service:
            service = (("service", own, _fqdn(ref.name, namespace)), ref.port)
            if service not in seen:
                seen.add(service)
                yield service
            continue
        gateway = gateways.get((namespace, ref.name)) if ref.is_gateway else None
        if gateway is None:
            continue  # not attached (istiod reports it in the route's status)
        for listener in gateway.spec.listeners:
            if ref.section_name is not None and listener.name != ref.section_name:
                continue
            if (ref.port is not None and listener.port != ref.port
                    and Misbehaviour.PARENT_PORT_IGNORED not in misbehave):
                continue
            if Misbehaviour.ALLOWED_ROUTES_SAME_IGNORED in misbehave:
                pass  # attached, whatever namespace the route is in
            elif listener.allowed_routes.namespaces.from_ is gw.FromNamespaces.SAME and own != namespace:
                continue
            for hostname in _hostnames(route.spec.hostnames, listener.hostname):
                attached = (("gateway", namespace, ref.name, listener.name, hostname), None)
                if attached not in seen:
                    seen.add(attached)
                    yield attached


def _hostnames(route_hosts: list[str], listener_host: str | None) -> list[str]:
    """The spec's intersection of a route's hostnames with a listener's: the more specific of each matching pair."""
    if listener_host is None:
        return list(route_hosts) or ["*"]
    if not route_hosts:
        return [listener_host]
    found = []
    for host in route_hosts:
        if host_matches(listener_host, host):
            found.append(host)
        elif host_matches(host, listener_host):
            found.append(listener_host)
    return found


def _lowered_name(gateway: str, listener: str) -> str:
    return f"{gateway}-{listener}-{LOWERED_SUFFIX}"[:253]


def _istio_gateway(gateway: gw.Gateway, listener: gw.Listener) -> Gateway:
    return Gateway.model_validate({
        "apiVersion": "networking.istio.io/v1", "kind": "Gateway",
        "metadata": {"name": _lowered_name(gateway.metadata.name, listener.name),
                     "namespace": gateway.metadata.namespace},
        "spec": {"selector": dict(GATEWAY_SELECTOR), "servers": [{
            "port": {"number": listener.port, "name": listener.name, "protocol": listener.protocol},
            "hosts": [listener.hostname or "*"]}]}})


def _segment_prefix(value: str) -> str:
    """PathPrefix ignores a trailing slash: `/foo/` is the prefix `/foo`."""
    return value.rstrip("/") or "/"


def _rule(entry: _Entry, services: set[str], misbehave: Misbehaviours) -> dict[str, Any]:
    namespace, port = entry.route.metadata.namespace, entry.port
    rule: dict[str, Any] = {"name": f"{namespace}.{entry.route.metadata.name}.{entry.rule_index}.{entry.match_index}",
                            "match": [{**m, **({"port": port} if port else {})} for m in _matches(entry.match,
                                                                                                    misbehave)]}
    refs = entry.rule.backend_refs
    if Misbehaviour.ZERO_WEIGHT_BACKENDS_USED in misbehave:
        refs = [b.model_copy(update={"weight": b.weight or 1}) for b in refs]
    backends = [b for b in refs if b.weight > 0]
    usable = [b for b in backends if _usable(b, namespace, services, misbehave)]
    partly_invalid = len(usable) < len(backends) and Misbehaviour.INVALID_BACKEND_SHARE_DROPPED not in misbehave
    if not usable or partly_invalid:
        # istiod: an invalid or missing backend gets its share of 500s; with none usable every request does.
        share = 100.0 * (1 - sum(b.weight for b in usable) / sum(b.weight for b in backends)) if backends else 100.0
        rule["fault"] = {"abort": {"httpStatus": INVALID_BACKEND_STATUS, "percentage": {"value": share}}}
    targets = usable or [gw.HTTPBackendRef(name="invalid-backend", port=1)]
    rule["route"] = [{"destination": _destination(b, namespace), "weight": b.weight} for b in targets]
    headers: dict[str, Any] = {}
    for item in entry.rule.filters:
        if item.request_header_modifier is not None:
            headers["request"] = _header_operations(item.request_header_modifier)
        if item.response_header_modifier is not None:
            headers["response"] = _header_operations(item.response_header_modifier)
        if item.request_mirror is not None:
            rule["mirror"] = _destination(item.request_mirror.backend_ref, namespace)
            rule["mirrorPercentage"] = {"value": 100.0 * item.request_mirror.share}
    if headers:
        rule["headers"] = headers
    return rule


def _usable(backend: gw.HTTPBackendRef, namespace: str, services: set[str], misbehave: Misbehaviours) -> bool:
    """A backend the spec lets traffic reach: a Service (core group) that exists, in the route's own namespace, or
    an Istio Hostname (routed as written). The local platform has no ReferenceGrant, so a backend in another
    namespace is never permitted (RefNotPermitted); like an unknown kind (InvalidKind) or a missing Service, its
    share answers 500."""
    if backend.is_hostname:
        return True
    if not backend.is_service and Misbehaviour.BACKEND_KIND_IGNORED not in misbehave:
        return False
    if backend.namespace not in (None, namespace) and Misbehaviour.REFERENCE_GRANT_IGNORED not in misbehave:
        return False
    return _fqdn(backend.name, backend.namespace or namespace) in services


def _matches(match: gw.HTTPRouteMatch, misbehave: Misbehaviours) -> list[dict[str, Any]]:
    common: dict[str, Any] = {}
    if match.headers:
        common["headers"] = {h.name.lower(): _string(h) for h in match.headers}
    if match.query_params:
        common["queryParams"] = {q.name: _string(q) for q in match.query_params}
    if match.method is not None:
        common["method"] = {"exact": match.method.value}
    path = match.path
    if path.type is gw.PathMatchType.EXACT:
        uris = [{"exact": path.value}]
    elif path.type is gw.PathMatchType.REGULAR_EXPRESSION:
        uris = [{"regex": path.value}]
    else:
        prefix = _segment_prefix(path.value)
        if prefix == "/" or Misbehaviour.PATH_PREFIX_AS_STRING_PREFIX in misbehave:
            uris = [{"prefix": prefix}]
        else:
            uris = [{"exact": prefix}, {"prefix": prefix + "/"}]
    return [{"uri": uri, **common} for uri in uris]


def _string(match: gw.HTTPHeaderMatch) -> dict[str, str]:
    return {"regex" if match.type is gw.ValueMatchType.REGULAR_EXPRESSION else "exact": match.value}


def _header_operations(modifier: gw.HTTPHeaderFilter) -> dict[str, Any]:
    return {"set": {h.name.lower(): h.value for h in modifier.set},
            "add": {h.name.lower(): h.value for h in modifier.add},
            "remove": [name.lower() for name in modifier.remove]}


def _fqdn(name: str, namespace: str) -> str:
    return f"{name}.{namespace}.svc.cluster.local"


def _destination(backend: gw.BackendObjectReference, namespace: str) -> dict[str, Any]:
    host = backend.name if backend.is_hostname else _fqdn(backend.name, backend.namespace or namespace)
    return {"host": host,
            **({"port": {"number": backend.port}} if backend.port else {})}
