"""Sidecar (inbound + outbound) and ingress gateway listeners, with their route configurations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from meshconform.errors import ConfigError
from meshconform.meshapi.istio import Gateway, MutualTLSMode, OutboundTrafficPolicyMode, VirtualService
from meshconform.meshapi.kube import Service
from meshconform.platform.local.misbehaviour import Misbehaviour, Misbehaviours
from meshconform.platform.local.translator import authz, egress, gateway_api, inbound, jwt, mtls
from meshconform.platform.local.translator.clusters import selected_pods
from meshconform.platform.local.translator.envoy_types import (
    DOWNSTREAM_TLS,
    FAULT,
    FAULT_FILTER,
    HCM,
    ROUTER,
    TLS_INSPECTOR,
    access_log,
    socket_address,
    tls_certificate,
)
from meshconform.platform.local.translator.model import CertificatePaths, GatewayPorts, MeshSnapshot, Pod
from meshconform.platform.local.translator.names import (
    cluster_name,
    host_matches,
    inbound_cluster_name,
    resolve_host,
    service_domains,
)
from meshconform.platform.local.translator.routes import RouteBuilder, default_route, default_route_to

OUTBOUND_PORT = 15001
HTTP_FILTERS = [
    {"name": FAULT_FILTER, "typed_config": {"@type": FAULT}},
    {"name": "envoy.filters.http.router", "typed_config": {"@type": ROUTER}},
]


def rds(name: str, config_dir: Path) -> dict[str, Any]:
    path = config_dir / f"rds-{name}.json"
    return {"route_config_name": name, "config_source": {
        "resource_api_version": "V3",
        "path_config_source": {"path": str(path)}}}  # reloaded when a file is moved onto the path


def _hcm(stat_prefix: str, route: dict[str, Any], log: list[dict[str, Any]],
         first_filters: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    return {"name": "envoy.filters.network.http_connection_manager",
            "typed_config": {"@type": HCM, "stat_prefix": stat_prefix, **route,
                             "http_filters": [*(first_filters or []), *HTTP_FILTERS], "access_log": log, **extra}}


# ---------------------------------------------------------------- sidecar

# What the trace-headers-dropped misbehaviour strips: the request id and W3C and B3 trace context.
TRACE_HEADERS_DROPPED = ("x-request-id", "traceparent", "tracestate", "x-b3-traceid", "x-b3-spanid",
                         "x-b3-parentspanid", "x-b3-sampled", "x-b3-flags", "b3")

def inbound_listeners(mesh: MeshSnapshot, pod: Pod, certs: CertificatePaths, log_path: Path,
                      misbehave: Misbehaviours) -> list[dict[str, Any]]:
    listeners = []
    for port in pod.container_ports:
        mode = mtls.effective_mode(mesh, pod, port, misbehave)
        if Misbehaviour.STRICT_AS_PERMISSIVE in misbehave and mode is MutualTLSMode.STRICT:
            mode = MutualTLSMode.PERMISSIVE
        if Misbehaviour.PERMISSIVE_AS_STRICT in misbehave and mode is MutualTLSMode.PERMISSIVE:
            mode = MutualTLSMode.STRICT
        kind = inbound.port_kind(mesh, pod, port)
        if kind is not inbound.PortKind.HTTP:
            _refuse_tcp_authorization(mesh, pod, port, misbehave)
        passthrough = kind is inbound.PortKind.PASSTHROUGH
        cluster = inbound.INBOUND_PASSTHROUGH_CLUSTER if passthrough else inbound_cluster_name(port)
        forward = {"cluster": cluster, "timeout": "0s"}
        faults = (_destination_faults(mesh, pod, port, forward)
                  if Misbehaviour.FAULTS_AT_DESTINATION in misbehave else [])
        # Clusters are not validated with the listener: a port turning passthrough or back changes its cluster,
        # and Envoy may load the new listener before the new clusters (as outbound and gateway routes allow).
        route = {"route_config": {"name": f"inbound|{port}", "validate_clusters": False, "virtual_hosts": [{
            "name": "inbound", "domains": ["*"],
            "routes": [*faults, {"match": {"prefix": "/"}, "route": forward}]}]}}
        if Misbehaviour.TRACE_HEADERS_DROPPED in misbehave:
            route["route_config"]["request_headers_to_remove"] = list(TRACE_HEADERS_DROPPED)
        log = access_log(log_path, pod.name, "inbound")
        # The app learns its caller's identity from XFCC, set only from a verified client certificate.
        # JWT verification first, so RBAC can read the request principal it leaves in metadata.
        rbac = [*jwt.jwt_filters(mesh, pod, misbehave), *authz.rbac_filters(mesh, pod, misbehave)]
        tls_hcm = _hcm(f"inbound_{port}", route, log, rbac, forward_client_cert_details="SANITIZE_SET",
                       set_current_client_cert_details={
                           "subject": Misbehaviour.XFCC_SUBJECT_DROPPED not in misbehave, "uri": True})
        # A caller without mTLS has no certificate to vouch for: any XFCC it sent is dropped (Envoy strips
        # XFCC on non-mTLS connections in every mode but ALWAYS_FORWARD_ONLY, which the misbehaviour uses).
        plain_hcm = _hcm(f"inbound_{port}", route, log, rbac, forward_client_cert_details=(
            "ALWAYS_FORWARD_ONLY" if Misbehaviour.XFCC_FORWARDED_FROM_UNTRUSTED in misbehave else "SANITIZE"))
        tcp = inbound.tcp_proxy(f"inbound_{port}", cluster, log)
        first = [inbound.original_destination(pod, port)] if passthrough else []
        # As istiod: chains by the port's kind and mode (inbound.py). STRICT takes any TLS (a client without a
        # certificate then fails the handshake); PERMISSIVE tells mTLS from plaintext by Istio's ALPN values.
        chosen = inbound.options(kind, mode)
        chains = []
        for index, option in enumerate(chosen):
            main = (tls_hcm if option.mtls else plain_hcm) if option.http else tcp
            name = f"{'mtls' if option.mtls else 'plaintext'}-{'http' if option.http else 'tcp'}-{index}"
            chain: dict[str, Any] = {"name": name, "filters": [*first, main]}
            if option.match:
                chain["filter_chain_match"] = option.match
            if option.mtls:
                chain["transport_socket"] = mtls.downstream_mtls(certs, pod, misbehave)
            chains.append(chain)
        listeners.append({
            "name": f"inbound_{pod.ip}_{port}",
            "address": socket_address(pod.ip, port),
            "listener_filters": inbound.listener_filters(chosen),
            "filter_chains": chains,
        })
    return listeners


def _refuse_tcp_authorization(mesh: MeshSnapshot, pod: Pod, port: int, misbehave: Misbehaviours) -> None:
    """Traffic on a port without a declared protocol, or passthrough, may be proxied as TCP, where istiod enforces
    authorization with a network RBAC filter the local platform does not build: refuse rather than allow it."""
    policies = authz.policies_for(mesh, pod)
    if policies and Misbehaviour.AUTHZ_IGNORED not in misbehave:
        raise ConfigError(f"valid Istio, not implemented by the local platform: authorization of TCP traffic (pod "
                          f"{pod.namespace}/{pod.name} port {port} declares no protocol, or no Service targets it)",
                          resource=policies[0].ref, field="spec")


def _destination_faults(mesh: MeshSnapshot, pod: Pod, port: int, forward: dict[str, Any]) -> list[dict[str, Any]]:
    """For the faults-at-destination misbehaviour: the faulty routes of the VirtualServices of this pod's services,
    served by its own inbound route table (behind the callers' routers, so their retries see the faults)."""
    services = {s.fqdn: s for s in mesh.services}
    routes = []
    for fqdn, vs in mesh_virtual_services(mesh).items():
        service = services[fqdn]
        for service_port in service.spec.ports:
            if service_port.container_port != port or pod not in selected_pods(mesh, service, None):
                continue
            for built in RouteBuilder(vs, services, frozenset()).routes(service_port.port):
                if FAULT_FILTER in built.get("typed_per_filter_config", {}):
                    routes.append({"match": built["match"], "route": forward,
                                   "typed_per_filter_config": built["typed_per_filter_config"]})
    return routes


def outbound_listener(pod: Pod, config_dir: Path, log_path: Path) -> dict[str, Any]:
    """The app's HTTP proxy: stands in for iptables capture of outbound traffic on port 15001."""
    return {"name": "outbound", "address": socket_address(pod.ip, OUTBOUND_PORT),
            "filter_chains": [{"filters": [_hcm("outbound", {"rds": rds("outbound", config_dir)},
                                                access_log(log_path, pod.name, "outbound"))]}]}


def mesh_virtual_services(mesh: MeshSnapshot, caller_namespace: str | None = None) -> dict[str, VirtualService]:
    """Service FQDN -> the VirtualService that governs it for sidecars (of `caller_namespace`): one naming the
    service exactly wins over a wildcard one (istiod: "most exact match wins"), then the oldest wins. One lowered
    from an HTTPRoute has istiod's gateway semantics: it governs a service only for callers in its own namespace
    (consumer, tried first) or in the service's (producer), and a host that names no service routes nothing."""
    ordered = sorted(mesh.virtual_services, key=lambda vs: not (
        caller_namespace is not None and gateway_api.is_lowered(vs) and vs.metadata.namespace == caller_namespace))
    owners: dict[str, VirtualService] = {}
    for exact in (True, False):
        for vs in ordered:
            if not vs.bound_to_mesh:
                continue
            lowered = gateway_api.is_lowered(vs)
            for host in vs.spec.hosts:
                pattern = resolve_host(host, vs.metadata.namespace)
                if pattern.startswith("*") == exact:
                    continue
                for service in mesh.services:
                    if lowered and caller_namespace is not None and vs.metadata.namespace not in (
                            service.metadata.namespace, caller_namespace):
                        continue
                    if host_matches(pattern, service.fqdn):
                        owners.setdefault(service.fqdn, vs)
    return owners


def unmatched_hosts(mesh: MeshSnapshot, entry_hosts: frozenset[str] = frozenset()) -> dict[str, VirtualService]:
    """VirtualService hosts that name no service nor ServiceEntry host (e.g. *.example.com): istiod routes them
    as written, on port 80 only; the oldest VirtualService naming a host wins. Not those lowered from HTTPRoutes
    (istiod's gateway semantics route only the services a host names)."""
    found: dict[str, VirtualService] = {}
    for vs in mesh.virtual_services:
        if not vs.bound_to_mesh or gateway_api.is_lowered(vs):
            continue
        for host in vs.spec.hosts:
            pattern = resolve_host(host, vs.metadata.namespace)
            if pattern not in entry_hosts and not any(host_matches(pattern, service.fqdn)
                                                      for service in mesh.services):
                found.setdefault(pattern, vs)
    return found


def outbound_routes(mesh: MeshSnapshot, caller_namespace: str, misbehave: Misbehaviours,
                    mode: OutboundTrafficPolicyMode = OutboundTrafficPolicyMode.ALLOW_ANY) -> dict[str, Any]:
    services = {s.fqdn: s for s in mesh.services}
    owners = mesh_virtual_services(mesh, caller_namespace)
    hosts = []
    for service in mesh.services:
        for port in service.spec.ports:
            vs = owners.get(service.fqdn)
            routes = RouteBuilder(vs, services, misbehave).routes(port.port) if vs else [
                default_route(service, port.port, misbehave)]
            hosts.append({"name": f"{service.fqdn}:{port.port}",
                          "domains": service_domains(service, port.port, caller_namespace),
                          "routes": routes})
    external = egress.entry_hosts(mesh, caller_namespace, misbehave)
    for _, host, entry_port in external:
        vs = egress.virtual_service_for(mesh, host, misbehave)
        routes = RouteBuilder(vs, services, misbehave).routes(entry_port.number) if vs else [
            default_route_to(cluster_name(entry_port.number, None, host))]
        hosts.append({"name": f"{host}:{entry_port.number}", "domains": egress.entry_domains(host, entry_port.number),
                      "routes": routes})
    for pattern, vs in unmatched_hosts(mesh, frozenset(host for _, host, _ in external)).items():
        domain = _wildcard_domain(pattern, misbehave)
        hosts.append({"name": f"{pattern}:80", "domains": [domain, f"{domain}:80"],
                      "routes": RouteBuilder(vs, services, misbehave).routes(80)})
    if not any("*" in vhost["domains"] for vhost in hosts):  # a VirtualService for host '*' already catches all
        hosts.append(egress.catch_all(mode))
    return {"name": "outbound", "virtual_hosts": hosts, "validate_clusters": False}


# ---------------------------------------------------------------- gateway

GATEWAY_PORT_ALIASES = {80: "http", 8080: "http", 443: "https", 8443: "https"}


def gateway_servers(mesh: MeshSnapshot, gateway_pod: Pod) -> list[tuple[Gateway, int]]:
    """(Gateway, server index) of every server whose Gateway selects this gateway pod."""
    found: list[tuple[Gateway, int]] = []
    for gateway in mesh.gateways:
        selector = gateway.spec.selector
        if all(gateway_pod.labels.get(k) == v for k, v in selector.items()):
            found.extend((gateway, i) for i in range(len(gateway.spec.servers)))
    return found


def _vs_for_gateway(mesh: MeshSnapshot, gateway: Gateway) -> list[VirtualService]:
    own = f"{gateway.metadata.namespace}/{gateway.metadata.name}"
    bound = []
    for vs in mesh.virtual_services:
        names = {g if "/" in g else f"{vs.metadata.namespace}/{g}" for g in vs.spec.gateways}
        if own in names:
            bound.append(vs)
    return bound


def gateway_config(mesh: MeshSnapshot, pod: Pod, ports: GatewayPorts, certs: CertificatePaths,
                   config_dir: Path, log_path: Path, misbehave: Misbehaviours
                   ) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    services = {s.fqdn: s for s in mesh.services}
    http_hosts: dict[str, dict[str, Any]] = {}
    https_chains: list[dict[str, Any]] = []
    routes: dict[str, dict[str, Any]] = {}
    http_server = False
    rbac = [*jwt.jwt_filters(mesh, pod, misbehave), *authz.rbac_filters(mesh, pod, misbehave)]
    for gateway, index in gateway_servers(mesh, pod):
        server = gateway.spec.servers[index]
        where = f"spec.servers[{index}]"
        kind = GATEWAY_PORT_ALIASES[server.port.number]  # other ports: refused by local.capabilities
        named = gateway.spec.servers[0].hosts if Misbehaviour.GATEWAY_FIRST_SERVER_HOSTS in misbehave else server.hosts
        server_hosts = [h.split("/", 1)[1] if "/" in h else h for h in named]
        if Misbehaviour.GATEWAY_HOST_IGNORED in misbehave:
            server_hosts = ["*"]
        vhosts = _gateway_virtual_hosts(mesh, gateway, server_hosts, services, misbehave)
        if Misbehaviour.GATEWAY_HOST_IGNORED in misbehave and vhosts:
            routes_any = [route for vhost in vhosts.values() for route in vhost["routes"]]
            vhosts = {"*": {"name": "*", "domains": ["*"], "routes": routes_any}}
        redirects = server.tls is not None and server.tls.https_redirect
        if redirects and Misbehaviour.HTTPS_REDIRECT_IGNORED not in misbehave:
            # As istiod: every host of a redirecting server redirects, whether or not a route binds it.
            for host in server_hosts:
                vhosts.setdefault(host, {"name": host, "domains": [host], "routes": []})
            for vhost in vhosts.values():
                vhost["require_tls"] = "ALL"
        if kind == "http":
            http_server = True
            for domain, vhost in vhosts.items():
                existing = http_hosts.setdefault(domain, {**vhost, "routes": []})
                existing["routes"].extend(vhost["routes"])
            continue
        assert server.tls is not None and server.tls.credential_name  # SIMPLE only: see local.capabilities
        secret = next((s for s in mesh.secrets if s.metadata.namespace == pod.namespace
                       and s.metadata.name == server.tls.credential_name), None)
        if secret is None:
            raise ConfigError(f"no Secret {pod.namespace}/{server.tls.credential_name}: the credential must live in "
                              "the gateway's namespace", resource=gateway.ref, field=f"{where}.tls.credentialName")
        name = f"https.443.{server.port.name}.{gateway.metadata.name}.{gateway.metadata.namespace}"
        routes[name] = {"name": name, "virtual_hosts": list(vhosts.values()), "validate_clusters": False}
        cert, key = certs.gateway_credential(pod.namespace, server.tls.credential_name)
        if Misbehaviour.GATEWAY_CREDENTIAL_IGNORED in misbehave:
            cert, key = certs.workload(pod)
        chain: dict[str, Any] = {
            "name": name,
            "transport_socket": {"name": "envoy.transport_sockets.tls", "typed_config": {
                "@type": DOWNSTREAM_TLS,
                "common_tls_context": {"tls_certificates": [tls_certificate(cert, key)],
                                       "alpn_protocols": ["h2", "http/1.1"]}}},
            "filters": [_gateway_hcm(name, config_dir, log_path, pod, rbac, misbehave)],
        }
        sni = [h for h in server_hosts if h != "*"]
        if sni:
            chain["filter_chain_match"] = {"server_names": sni}
        https_chains.append(chain)
    listeners = []
    if http_server:
        # An HTTP server with nothing bound still listens and answers 404, as istiod's blackhole host.
        vhosts_80 = list(http_hosts.values()) or [{"name": "blackhole:80", "domains": ["*"], "routes": []}]
        routes["http.8080"] = {"name": "http.8080", "virtual_hosts": vhosts_80, "validate_clusters": False}
        listeners.append({"name": "0.0.0.0_8080", "address": socket_address("127.0.0.1", ports.http),
                          "filter_chains": [{"filters": [_gateway_hcm("http.8080", config_dir, log_path, pod, rbac,
                                                                         misbehave)]}]})
    if https_chains:
        listeners.append({"name": "0.0.0.0_8443", "address": socket_address("127.0.0.1", ports.https),
                          "listener_filters": [{"name": "envoy.filters.listener.tls_inspector",
                                               "typed_config": {"@type": TLS_INSPECTOR}}],
                          "filter_chains": https_chains})
    return listeners, routes


def _gateway_hcm(route_name: str, config_dir: Path, log_path: Path, pod: Pod, rbac: list[dict[str, Any]],
                 misbehave: Misbehaviours = frozenset()) -> dict[str, Any]:
    hcm = _hcm(route_name, {"rds": rds(route_name, config_dir)}, access_log(log_path, pod.name, "gateway"), rbac,
               use_remote_address=True, preserve_external_request_id=True, strip_any_host_port=True,
               codec_type="AUTO")
    if Misbehaviour.GATEWAY_HOST_PORT_KEPT in misbehave:
        hcm["typed_config"]["strip_any_host_port"] = False
    if Misbehaviour.GATEWAY_XFF_NOT_APPENDED in misbehave:
        hcm["typed_config"]["use_remote_address"] = False
    return hcm


def _gateway_virtual_hosts(mesh: MeshSnapshot, gateway: Gateway, server_hosts: list[str],
                           services: dict[str, Service], misbehave: Misbehaviours) -> dict[str, dict[str, Any]]:
    vhosts: dict[str, dict[str, Any]] = {}
    for vs in _vs_for_gateway(mesh, gateway):
        for host in vs.spec.hosts:
            for server_host in server_hosts:
                if host_matches(server_host, host):
                    domain = host
                elif host == "*" or (host.startswith("*") and host_matches(host, server_host)):
                    domain = server_host
                else:
                    continue
                vhost = vhosts.setdefault(domain, {"name": domain, "domains": [_wildcard_domain(domain, misbehave)],
                                                   "routes": []})
                vhost["routes"].extend(RouteBuilder(vs, services, misbehave).routes(None))
    return vhosts


def _wildcard_domain(domain: str, misbehave: Misbehaviours) -> str:
    """Envoy's `*.example.com` needs the dot; the misbehaviour drops it, so `badexample.com` matches too."""
    if Misbehaviour.WILDCARD_WITHOUT_DOT_BOUNDARY in misbehave and domain.startswith("*."):
        return "*" + domain[2:]
    return domain
