"""What the local platform implements of the Istio API: one pass over parsed resources that refuses,
naming file, resource and field, anything valid in Istio that the local platform cannot honour.

meshapi/ accepts what Istio accepts; this module is the only place that says what *local* does not do,
so a refusal here is never mistaken for invalid Istio (kind and cluster apply the same resources as they are)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from pydantic import BaseModel

from meshconform.errors import ConfigError
from meshconform.meshapi import gateway_api as gw
from meshconform.meshapi.base import IstioMessage
from meshconform.meshapi.istio import (
    AuthorizationAction,
    AuthorizationPolicy,
    ClientTLSMode,
    DestinationRule,
    Gateway,
    LoadBalancerKind,
    RequestAuthentication,
    ServerProtocol,
    ServerTLSMode,
    ServiceEntry,
    ServiceEntryLocation,
    ServiceEntryResolution,
    VirtualService,
)
from meshconform.meshapi.kube import ISTIO_OPAQUE_PROTOCOLS, Service
from meshconform.meshapi.loader import Sourced
from meshconform.platform.local.translator.listeners import GATEWAY_PORT_ALIASES

NOT_IMPLEMENTED = "valid Istio, not implemented by the local platform"
NOT_IMPLEMENTED_GATEWAY_API = "valid Gateway API, not implemented by the local platform"
NOT_IMPLEMENTED_KUBERNETES = "valid Kubernetes, not implemented by the local platform"
# The one ingress gateway Envoy serves every Gateway of class `istio`: with no addresses, or linked to it by
# name as Istio's manual deployment does (`addresses: [{type: Hostname, value: <its Service>}]`).
INGRESS_SERVICE = "istio-ingressgateway.istio-system.svc.cluster.local"


def check(resources: Sequence[Sourced]) -> None:
    """Raises ConfigError on the first resource using what the local platform does not implement."""
    for item in resources:
        for field, detail in _refusals(item.resource):
            what = (NOT_IMPLEMENTED_GATEWAY_API if isinstance(item.resource, gw.GatewayAPIResource)
                    else NOT_IMPLEMENTED_KUBERNETES if isinstance(item.resource, Service) else NOT_IMPLEMENTED)
            raise ConfigError(f"{what}: {detail}", source=item.source, resource=item.resource.ref, field=field)


def _refusals(resource: BaseModel) -> Iterator[tuple[str, str]]:
    for path, message in _messages(resource, ""):
        for name in message.unmodelled_fields:
            yield _join(path, name), f"field {name}"
    if isinstance(resource, VirtualService):
        yield from _virtual_service(resource)
    elif isinstance(resource, DestinationRule):
        yield from _destination_rule(resource)
    elif isinstance(resource, AuthorizationPolicy):
        yield from _authorization_policy(resource)
    elif isinstance(resource, Gateway):
        yield from _gateway(resource)
    elif isinstance(resource, RequestAuthentication):
        yield from _request_authentication(resource)
    elif isinstance(resource, gw.Gateway):
        yield from _k8s_gateway(resource)
    elif isinstance(resource, gw.HTTPRoute):
        yield from _http_route(resource)
    elif isinstance(resource, ServiceEntry):
        yield from _service_entry(resource)
    elif isinstance(resource, Service):
        yield from _service(resource)


def _messages(value: Any, path: str) -> Iterator[tuple[str, IstioMessage]]:
    """Every Istio message inside `value`, with its field path (camelCase, as written in YAML)."""
    if isinstance(value, IstioMessage):
        yield path, value
    if isinstance(value, BaseModel):
        for name, info in type(value).model_fields.items():
            yield from _messages(getattr(value, name), _join(path, info.alias or name))
    elif isinstance(value, list):
        for index, element in enumerate(value):
            yield from _messages(element, f"{path}[{index}]")
    elif isinstance(value, dict):
        for key, element in value.items():
            yield from _messages(element, f"{path}.{key}")


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _virtual_service(vs: VirtualService) -> Iterator[tuple[str, str]]:
    for r, rule in enumerate(vs.spec.http):
        for m, match in enumerate(rule.match):
            for name, value in match.query_params.items():
                if value.prefix is not None:
                    # istio.io's HTTPMatchRequest: "prefix match is not supported" for queryParams.
                    yield (f"spec.http[{r}].match[{m}].queryParams.{name}.prefix",
                           "a prefix match on a query parameter (Istio supports exact and regex only)")


def _destination_rule(rule: DestinationRule) -> Iterator[tuple[str, str]]:
    policies = [("spec.trafficPolicy", rule.spec.traffic_policy)]
    policies += [(f"spec.subsets[{i}].trafficPolicy", s.traffic_policy) for i, s in enumerate(rule.spec.subsets)]
    for where, policy in policies:
        if policy is None:
            continue
        if policy.tls is not None and policy.tls.mode in (ClientTLSMode.SIMPLE, ClientTLSMode.MUTUAL):
            yield f"{where}.tls.mode", f"tls mode {policy.tls.mode} (origination to servers outside the mesh)"
        if policy.load_balancer is not None and policy.load_balancer.simple is LoadBalancerKind.PASSTHROUGH:
            yield f"{where}.loadBalancer.simple", "loadBalancer PASSTHROUGH"


def _authorization_policy(policy: AuthorizationPolicy) -> Iterator[tuple[str, str]]:
    if policy.spec.action in (AuthorizationAction.AUDIT, AuthorizationAction.CUSTOM):
        yield "spec.action", f"action {policy.spec.action} (ALLOW and DENY are)"
    for r, rule in enumerate(policy.spec.rules):
        for f, frm in enumerate(rule.from_):
            for name, values in (("requestPrincipals", frm.source.request_principals),
                                 ("notRequestPrincipals", frm.source.not_request_principals)):
                for value in values:
                    if "*" in value and value != "*" and not value.endswith("/*") and not value.startswith("*/"):
                        yield (f"spec.rules[{r}].from[{f}].source.{name}",
                               f"request principal {value!r} (exact, '*', '<iss>/*' and '*/<sub>' are)")
        for t, to in enumerate(rule.to):
            for name in ("paths", "not_paths"):
                if any("{" in value for value in getattr(to.operation, name)):
                    field = "notPaths" if name == "not_paths" else "paths"
                    yield (f"spec.rules[{r}].to[{t}].operation.{field}", "path templates ({*}, {**})")


def _request_authentication(ra: RequestAuthentication) -> Iterator[tuple[str, str]]:
    for index, rule in enumerate(ra.spec.jwt_rules):
        if rule.jwks_uri is not None:
            yield f"spec.jwtRules[{index}].jwksUri", "jwksUri (keys fetched at run time; give them inline in jwks)"
        elif rule.jwks is None:
            yield f"spec.jwtRules[{index}].jwks", "a rule without jwks (istiod would fetch the issuer's keys)"


def _gateway(gateway: Gateway) -> Iterator[tuple[str, str]]:
    for index, server in enumerate(gateway.spec.servers):
        where = f"spec.servers[{index}]"
        kind = GATEWAY_PORT_ALIASES.get(server.port.number)
        protocol = server.port.protocol
        if kind is None:
            yield f"{where}.port.number", (f"port {server.port.number}: the local ingress gateway Service has "
                                           "80 and 8080 for HTTP, 443 and 8443 for HTTPS")
        elif kind == "http" and protocol not in (ServerProtocol.HTTP, ServerProtocol.HTTP2):
            yield f"{where}.port.protocol", f"protocol {protocol} on the HTTP port"
        elif kind == "https" and protocol is not ServerProtocol.HTTPS:
            yield f"{where}.port.protocol", f"protocol {protocol} on the HTTPS port"
        elif (kind == "https" and server.tls is not None
              and (server.tls.mode is not ServerTLSMode.SIMPLE or not server.tls.credential_name)):
            yield f"{where}.tls", "tls other than mode SIMPLE with a credentialName"


def _k8s_gateway(gateway: gw.Gateway) -> Iterator[tuple[str, str]]:
    for index, address in enumerate(gateway.spec.addresses):
        if address.type != "Hostname" or address.value != INGRESS_SERVICE:
            yield (f"spec.addresses[{index}]", f"address {address.type} {address.value!r} (local serves a Gateway "
                   f"from its one ingress gateway: give no addresses, or Hostname {INGRESS_SERVICE})")
    for index, listener in enumerate(gateway.spec.listeners):
        where = f"spec.listeners[{index}]"
        if GATEWAY_PORT_ALIASES.get(listener.port) != "http":
            yield f"{where}.port", f"port {listener.port}: the local ingress gateway Service has 80 and 8080 for HTTP"
        elif listener.protocol != "HTTP":
            yield f"{where}.protocol", f"protocol {listener.protocol} (HTTP listeners are)"
        if listener.allowed_routes.namespaces.from_ is gw.FromNamespaces.SELECTOR:
            yield f"{where}.allowedRoutes.namespaces.from", "from Selector (Same and All are)"


def _http_route(route: gw.HTTPRoute) -> Iterator[tuple[str, str]]:
    for index, parent in enumerate(route.spec.parent_refs):
        if not (parent.is_gateway or parent.is_service):
            yield f"spec.parentRefs[{index}]", f"a parent of kind {parent.kind} in group {parent.group!r}"
    for r, rule in enumerate(route.spec.rules):
        for b, backend in enumerate(rule.backend_refs):
            where = f"spec.rules[{r}].backendRefs[{b}]"
            if backend.is_hostname and backend.namespace is not None:
                yield f"{where}.namespace", "a Hostname backend with a namespace (istiod rejects it)"
            elif backend.is_hostname and backend.port is None:
                yield f"{where}.port", "a Hostname backend without a port (istiod rejects it: a port is required)"
        for f, item in enumerate(rule.filters):
            mirror = item.request_mirror
            if mirror is not None and not mirror.backend_ref.is_service:
                yield (f"spec.rules[{r}].filters[{f}].requestMirror.backendRef",
                       f"a mirror backend of kind {mirror.backend_ref.kind}")
            elif mirror is not None and mirror.backend_ref.namespace not in (None, route.metadata.namespace):
                yield (f"spec.rules[{r}].filters[{f}].requestMirror.backendRef.namespace",
                       "a mirror backend in another namespace (needs a ReferenceGrant, which the local platform "
                       "does not implement)")
def _service_entry(entry: ServiceEntry) -> Iterator[tuple[str, str]]:
    spec = entry.spec
    if spec.location is ServiceEntryLocation.MESH_INTERNAL:
        yield "spec.location", "location MESH_INTERNAL (mesh endpoints outside Kubernetes; MESH_EXTERNAL is)"
    if spec.resolution in (ServiceEntryResolution.DNS_ROUND_ROBIN, ServiceEntryResolution.DYNAMIC_DNS):
        yield "spec.resolution", f"resolution {spec.resolution} (NONE, STATIC and DNS with endpoints are)"
    elif spec.resolution is ServiceEntryResolution.DNS and not spec.endpoints:
        yield "spec.endpoints", "resolution DNS of the hosts themselves (the local platform has no DNS: give endpoints)"
    if not spec.ports:
        yield "spec.ports", "a ServiceEntry without ports (the local platform routes HTTP ports only)"
    for index, port in enumerate(spec.ports):
        if (port.protocol or "").upper() not in ("HTTP", "HTTP2"):
            yield f"spec.ports[{index}].protocol", f"protocol {port.protocol} (HTTP and HTTP2 are)"
    for index, endpoint in enumerate(spec.endpoints):
        if endpoint.address is None or endpoint.address.startswith("unix://"):
            yield f"spec.endpoints[{index}].address", "an endpoint without an IP address"


def _service(service: Service) -> Iterator[tuple[str, str]]:
    """Service kinds and port protocols the local data plane does not have: it proxies HTTP only (a port without
    a declared protocol is sniffed, as Istio does), and resolves no names by DNS."""
    if service.spec.type == "ExternalName":
        yield "spec.type", "type ExternalName (an alias resolved by DNS; the local platform has no DNS)"
    if service.spec.cluster_ip == "None":
        yield "spec.clusterIP", "a headless Service (clusterIP None: callers reach each endpoint by its own address)"
    for index, port in enumerate(service.spec.ports):
        protocol = port.istio_protocol
        if protocol in ISTIO_OPAQUE_PROTOCOLS:
            field = "appProtocol" if port.app_protocol is not None else "protocol" if protocol == "udp" else "name"
            yield (f"spec.ports[{index}].{field}", f"a port Istio proxies as {protocol.upper()} (the local platform "
                   "proxies HTTP only: name the port http-*, http2-*, grpc-*, or leave its protocol to detection)")
