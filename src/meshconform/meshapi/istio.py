"""The Istio API subset meshconform understands, as typed models.

Field names and defaults follow istio/api (networking v1, security v1); the notes on
semantics live in the translator, which is the one place that gives them meaning."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import ClassVar

from pydantic import Field, field_validator, model_validator

from meshconform.meshapi.base import Duration, IstioMessage, PositiveDuration, Resource

DNS1123_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


class StringMatch(IstioMessage):
    """exact, prefix or regex (RE2, whole-string). All unset is a presence check (headers only)."""

    exact: str | None = None
    prefix: str | None = None
    regex: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> StringMatch:
        if sum(v is not None for v in (self.exact, self.prefix, self.regex)) > 1:
            raise ValueError("set only one of exact, prefix, regex")
        if self.regex is not None:
            try:
                re.compile(self.regex)
            except re.error as exc:
                raise ValueError(f"regex {self.regex!r} does not compile: {exc}") from exc
        return self

    @property
    def is_presence(self) -> bool:
        return self.exact is None and self.prefix is None and self.regex is None


class HTTPMatchRequest(IstioMessage):
    unmodelled = frozenset({"sourceLabels", "sourceNamespace", "gateways", "statPrefix"})
    name: str | None = None
    uri: StringMatch | None = None
    scheme: StringMatch | None = None
    method: StringMatch | None = None
    authority: StringMatch | None = None
    headers: dict[str, StringMatch] = Field(default_factory=dict)
    without_headers: dict[str, StringMatch] = Field(default_factory=dict)
    query_params: dict[str, StringMatch] = Field(default_factory=dict)
    port: int | None = Field(default=None, ge=1, le=65535)
    ignore_uri_case: bool = False

    @model_validator(mode="after")
    def _not_empty(self) -> HTTPMatchRequest:
        for name in ("uri", "scheme", "method", "authority"):
            value = getattr(self, name)
            if value is not None and value.is_presence:
                raise ValueError(f"{name} needs one of exact, prefix, regex")
        if not any((self.uri, self.scheme, self.method, self.authority, self.headers,
                    self.without_headers, self.query_params, self.port)):
            raise ValueError("an HTTPMatchRequest may not be empty")
        return self

    @field_validator("headers", "without_headers")
    @classmethod
    def _lowercase_keys(cls, value: dict[str, StringMatch]) -> dict[str, StringMatch]:
        for key in value:
            if key != key.lower():
                raise ValueError(f"header name {key!r} must be lowercase")
        return value


class PortSelector(IstioMessage):
    number: int = Field(ge=1, le=65535)


class Destination(IstioMessage):
    host: str = Field(min_length=1)
    subset: str | None = Field(default=None, pattern=DNS1123_LABEL)
    port: PortSelector | None = None

    @field_validator("host")
    @classmethod
    def _not_wildcard(cls, value: str) -> str:
        if value == "*":
            raise ValueError("a destination host may not be '*'")
        return value


class HeaderOperations(IstioMessage):
    set: dict[str, str] = Field(default_factory=dict)
    add: dict[str, str] = Field(default_factory=dict)
    remove: list[str] = Field(default_factory=list)


class Headers(IstioMessage):
    request: HeaderOperations | None = None
    response: HeaderOperations | None = None


class HTTPRouteDestination(IstioMessage):
    destination: Destination
    weight: int = Field(default=0, ge=0)
    headers: Headers | None = None


class Percent(IstioMessage):
    value: float = Field(ge=0, le=100)


class Delay(IstioMessage):
    unmodelled = frozenset({"exponentialDelay"})
    fixed_delay: PositiveDuration
    percentage: Percent | None = None
    percent: int | None = Field(default=None, ge=0, le=100)

    @property
    def fraction(self) -> float:
        """Share of requests delayed; Istio applies none when no percentage is given."""
        if self.percentage is not None:
            return self.percentage.value / 100
        return (self.percent or 0) / 100


class Abort(IstioMessage):
    unmodelled = frozenset({"grpcStatus", "http2Error"})
    http_status: int = Field(ge=200, le=600)
    percentage: Percent | None = None

    @property
    def fraction(self) -> float:
        return self.percentage.value / 100 if self.percentage is not None else 0.0


class HTTPFaultInjection(IstioMessage):
    delay: Delay | None = None
    abort: Abort | None = None

    @model_validator(mode="after")
    def _one_of(self) -> HTTPFaultInjection:
        if self.delay is None and self.abort is None:
            raise ValueError("a fault needs delay or abort")
        return self


class HTTPRetry(IstioMessage):
    unmodelled = frozenset({"retryRemoteLocalities", "retryIgnorePreviousHosts", "backoff"})
    attempts: int = Field(ge=0)
    per_try_timeout: PositiveDuration | None = None
    retry_on: str | None = None


class HTTPRoute(IstioMessage):
    unmodelled = frozenset({
        "redirect", "directResponse", "delegate", "rewrite", "corsPolicy", "mirrors", "mirrorPercent",
    })
    name: str | None = None
    match: list[HTTPMatchRequest] = Field(default_factory=list)
    route: list[HTTPRouteDestination] = Field(min_length=1)
    timeout: Duration | None = None
    retries: HTTPRetry | None = None
    fault: HTTPFaultInjection | None = None
    mirror: Destination | None = None
    mirror_percentage: Percent | None = None
    headers: Headers | None = None

    @model_validator(mode="after")
    def _weights(self) -> HTTPRoute:
        if len(self.route) > 1 and sum(d.weight for d in self.route) <= 0:
            raise ValueError("with more than one destination the weights must add up to more than 0")
        return self

    @property
    def mirror_fraction(self) -> float:
        """Istio mirrors everything when mirrorPercentage is absent."""
        return 1.0 if self.mirror_percentage is None else self.mirror_percentage.value / 100


class VirtualServiceSpec(IstioMessage):
    unmodelled = frozenset({"tcp", "tls", "exportTo"})
    hosts: list[str] = Field(min_length=1)
    gateways: list[str] = Field(default_factory=list)
    http: list[HTTPRoute] = Field(default_factory=list)


class VirtualService(Resource):
    api_versions: ClassVar[tuple[str, ...]] = (
        "networking.istio.io/v1", "networking.istio.io/v1beta1", "networking.istio.io/v1alpha3")
    spec: VirtualServiceSpec

    @property
    def bound_to_mesh(self) -> bool:
        return not self.spec.gateways or "mesh" in self.spec.gateways


class LoadBalancerKind(StrEnum):
    UNSPECIFIED = "UNSPECIFIED"
    LEAST_CONN = "LEAST_CONN"
    RANDOM = "RANDOM"
    PASSTHROUGH = "PASSTHROUGH"
    ROUND_ROBIN = "ROUND_ROBIN"
    LEAST_REQUEST = "LEAST_REQUEST"


class LoadBalancerSettings(IstioMessage):
    unmodelled = frozenset({"consistentHash", "localityLbSetting", "warmupDurationSecs", "warmup"})
    simple: LoadBalancerKind = LoadBalancerKind.UNSPECIFIED


class TCPSettings(IstioMessage):
    unmodelled = frozenset({"tcpKeepalive", "maxConnectionDuration", "idleTimeout"})
    max_connections: int | None = Field(default=None, ge=1)
    connect_timeout: PositiveDuration | None = None


class HTTPSettings(IstioMessage):
    unmodelled = frozenset({
        "idleTimeout", "h2UpgradePolicy", "useClientProtocol", "maxConcurrentStreams", "http2KeepAlive",
    })
    http1_max_pending_requests: int | None = Field(default=None, ge=1, alias="http1MaxPendingRequests")
    http2_max_requests: int | None = Field(default=None, ge=1, alias="http2MaxRequests")
    max_requests_per_connection: int | None = Field(default=None, ge=0)
    max_retries: int | None = Field(default=None, ge=0)


class ConnectionPoolSettings(IstioMessage):
    tcp: TCPSettings | None = None
    http: HTTPSettings | None = None


class OutlierDetection(IstioMessage):
    unmodelled = frozenset({"splitExternalLocalOriginErrors", "consecutiveLocalOriginFailures",
                             "consecutiveErrors"})
    consecutive_5xx_errors: int | None = Field(default=None, ge=0, alias="consecutive5xxErrors")
    consecutive_gateway_errors: int | None = Field(default=None, ge=0)
    interval: PositiveDuration | None = None
    base_ejection_time: PositiveDuration | None = None
    max_ejection_percent: int | None = Field(default=None, ge=0, le=100)
    min_health_percent: int | None = Field(default=None, ge=0, le=100)


class ClientTLSMode(StrEnum):
    DISABLE = "DISABLE"
    SIMPLE = "SIMPLE"
    MUTUAL = "MUTUAL"
    ISTIO_MUTUAL = "ISTIO_MUTUAL"


class ClientTLSSettings(IstioMessage):
    unmodelled = frozenset({"clientCertificate", "privateKey", "caCertificates", "credentialName",
                             "subjectAltNames", "sni", "insecureSkipVerify", "caCrl"})
    mode: ClientTLSMode = ClientTLSMode.DISABLE


class TrafficPolicy(IstioMessage):
    unmodelled = frozenset({"portLevelSettings", "tunnel", "proxyProtocol", "retryBudget"})
    load_balancer: LoadBalancerSettings | None = None
    connection_pool: ConnectionPoolSettings | None = None
    outlier_detection: OutlierDetection | None = None
    tls: ClientTLSSettings | None = None

    def overlay(self, narrower: TrafficPolicy | None) -> TrafficPolicy:
        """A subset policy overrides the rule-level one field by field, each field as a whole (istiod's
        MergeTrafficPolicy: a subset's connectionPool replaces the rule's, nothing inside it is inherited)."""
        if narrower is None:
            return self
        fields = {name: getattr(narrower, name) or getattr(self, name) for name in type(self).model_fields}
        return TrafficPolicy(**fields)


class Subset(IstioMessage):
    name: str = Field(pattern=DNS1123_LABEL)
    labels: dict[str, str] = Field(default_factory=dict)
    traffic_policy: TrafficPolicy | None = None


class DestinationRuleSpec(IstioMessage):
    unmodelled = frozenset({"exportTo", "workloadSelector"})
    host: str = Field(min_length=1)
    subsets: list[Subset] = Field(default_factory=list)
    traffic_policy: TrafficPolicy | None = None

    @field_validator("subsets")
    @classmethod
    def _unique(cls, value: list[Subset]) -> list[Subset]:
        names = [s.name for s in value]
        if len(names) != len(set(names)):
            raise ValueError(f"subset names must be unique, got {names}")
        return value


class DestinationRule(Resource):
    api_versions: ClassVar[tuple[str, ...]] = VirtualService.api_versions
    spec: DestinationRuleSpec


class ServerProtocol(StrEnum):
    HTTP = "HTTP"
    HTTPS = "HTTPS"
    HTTP2 = "HTTP2"
    GRPC = "GRPC"
    GRPC_WEB = "GRPC-WEB"
    MONGO = "MONGO"
    TCP = "TCP"
    TLS = "TLS"


class GatewayPort(IstioMessage):
    unmodelled = frozenset({"targetPort"})
    number: int = Field(ge=1, le=65535)
    name: str = Field(min_length=1)
    protocol: ServerProtocol


class ServerTLSMode(StrEnum):
    PASSTHROUGH = "PASSTHROUGH"
    SIMPLE = "SIMPLE"
    MUTUAL = "MUTUAL"
    AUTO_PASSTHROUGH = "AUTO_PASSTHROUGH"
    ISTIO_MUTUAL = "ISTIO_MUTUAL"
    OPTIONAL_MUTUAL = "OPTIONAL_MUTUAL"


class ServerTLSSettings(IstioMessage):
    unmodelled = frozenset({
        "serverCertificate", "privateKey", "caCertificates", "caCrl", "credentialNames",
        "tlsCertificates", "subjectAltNames", "verifyCertificateSpki", "verifyCertificateHash",
        "minProtocolVersion", "maxProtocolVersion", "cipherSuites",
    })
    https_redirect: bool = False
    mode: ServerTLSMode = ServerTLSMode.PASSTHROUGH
    credential_name: str | None = None


class Server(IstioMessage):
    unmodelled = frozenset({"bind", "defaultEndpoint"})
    port: GatewayPort
    hosts: list[str] = Field(min_length=1)
    tls: ServerTLSSettings | None = None
    name: str | None = None

    @model_validator(mode="after")
    def _tls_matches_protocol(self) -> Server:
        if self.port.protocol in (ServerProtocol.HTTPS, ServerProtocol.TLS) and self.tls is None:
            raise ValueError(f"a {self.port.protocol} server must have tls")
        if self.port.protocol is ServerProtocol.HTTP and self.tls is not None and not self.tls.https_redirect:
            raise ValueError("an HTTP server may not have tls (except httpsRedirect)")
        return self


class GatewaySpec(IstioMessage):
    selector: dict[str, str] = Field(default_factory=dict)
    servers: list[Server] = Field(min_length=1)

    @field_validator("servers")
    @classmethod
    def _unique_port_names(cls, value: list[Server]) -> list[Server]:
        names = [s.port.name for s in value]
        if len(names) != len(set(names)):
            raise ValueError(f"port names must be unique within a Gateway, got {names}")
        return value


class Gateway(Resource):
    api_versions: ClassVar[tuple[str, ...]] = VirtualService.api_versions
    spec: GatewaySpec


class MutualTLSMode(StrEnum):
    UNSET = "UNSET"
    DISABLE = "DISABLE"
    PERMISSIVE = "PERMISSIVE"
    STRICT = "STRICT"


class PeerAuthenticationMTLS(IstioMessage):
    mode: MutualTLSMode = MutualTLSMode.UNSET


class WorkloadSelector(IstioMessage):
    match_labels: dict[str, str] = Field(default_factory=dict)


class PeerAuthenticationSpec(IstioMessage):
    unmodelled = frozenset({"targetRef", "targetRefs"})
    selector: WorkloadSelector | None = None
    mtls: PeerAuthenticationMTLS | None = None
    port_level_mtls: dict[int, PeerAuthenticationMTLS] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _port_level_needs_selector(self) -> PeerAuthenticationSpec:
        if self.port_level_mtls and (self.selector is None or not self.selector.match_labels):
            raise ValueError("portLevelMtls requires a workload selector")
        return self


class PeerAuthentication(Resource):
    api_versions: ClassVar[tuple[str, ...]] = ("security.istio.io/v1", "security.istio.io/v1beta1")
    spec: PeerAuthenticationSpec


# ---------------------------------------------------------------- AuthorizationPolicy

def _check_patterns(values: list[str], field: str) -> list[str]:
    """Istio's string forms: exact, `prefix*`, `*suffix`, or `*` (presence)."""
    for value in values:
        if "{" in value:
            continue  # a path template ({*}, {**}), Istio 1.22+
        if value != "*" and "*" in value.strip("*"):
            raise ValueError(f"{field}: {value!r}: '*' may only lead or end a value")
        if value.startswith("*") and value.endswith("*") and value != "*":
            raise ValueError(f"{field}: {value!r}: use a prefix or a suffix wildcard, not both")
    return values


_SOURCE_FIELDS = ("principals", "not_principals", "request_principals", "not_request_principals", "namespaces",
                  "not_namespaces")


class AuthorizationSource(IstioMessage):
    unmodelled = frozenset({"ipBlocks", "notIpBlocks", "remoteIpBlocks", "notRemoteIpBlocks", "serviceAccounts",
                             "notServiceAccounts"})
    principals: list[str] = Field(default_factory=list)
    not_principals: list[str] = Field(default_factory=list)
    # `<iss>/<sub>` of a JWT verified by a RequestAuthentication
    request_principals: list[str] = Field(default_factory=list)
    not_request_principals: list[str] = Field(default_factory=list)
    namespaces: list[str] = Field(default_factory=list)
    not_namespaces: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _patterns(self) -> AuthorizationSource:
        for name in _SOURCE_FIELDS:
            _check_patterns(getattr(self, name), name)
        _not_empty(self, _SOURCE_FIELDS, "source")
        return self


def _not_empty(message: IstioMessage, fields: tuple[str, ...], what: str) -> None:
    """Istio's validation refuses a source or operation with no condition (to allow everything, a rule leaves out
    `from` or `to`); one that sets only a field meshconform does not model is not empty."""
    if not message.unmodelled_fields and not any(getattr(message, name) for name in fields):
        raise ValueError(f"an empty {what} is refused by Istio (`{what}` must not be empty): set one of its fields, "
                         f"or leave the rule's `{'from' if what == 'source' else 'to'}` out to match every request")


class AuthorizationOperation(IstioMessage):
    hosts: list[str] = Field(default_factory=list)
    not_hosts: list[str] = Field(default_factory=list)
    ports: list[str] = Field(default_factory=list)
    not_ports: list[str] = Field(default_factory=list)
    methods: list[str] = Field(default_factory=list)
    not_methods: list[str] = Field(default_factory=list)
    paths: list[str] = Field(default_factory=list)
    not_paths: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _patterns(self) -> AuthorizationOperation:
        for name in ("hosts", "not_hosts", "methods", "not_methods", "paths", "not_paths"):
            _check_patterns(getattr(self, name), name)
        for name in ("ports", "not_ports"):
            for value in getattr(self, name):
                if not value.isdigit() or not 1 <= int(value) <= 65535:
                    raise ValueError(f"{name}: {value!r} is not a port number")
        _not_empty(self, ("hosts", "not_hosts", "ports", "not_ports", "methods", "not_methods", "paths", "not_paths"),
                   "operation")
        return self


class AuthorizationFrom(IstioMessage):
    source: AuthorizationSource


class AuthorizationTo(IstioMessage):
    operation: AuthorizationOperation


class AuthorizationRule(IstioMessage):
    unmodelled = frozenset({"when"})
    from_: list[AuthorizationFrom] = Field(default_factory=list, alias="from")
    to: list[AuthorizationTo] = Field(default_factory=list)


class AuthorizationAction(StrEnum):
    ALLOW = "ALLOW"
    DENY = "DENY"
    AUDIT = "AUDIT"
    CUSTOM = "CUSTOM"


class AuthorizationPolicySpec(IstioMessage):
    unmodelled = frozenset({"targetRef", "targetRefs", "provider"})
    selector: WorkloadSelector | None = None
    action: AuthorizationAction = AuthorizationAction.ALLOW
    rules: list[AuthorizationRule] = Field(default_factory=list)


class AuthorizationPolicy(Resource):
    api_versions: ClassVar[tuple[str, ...]] = ("security.istio.io/v1", "security.istio.io/v1beta1")
    spec: AuthorizationPolicySpec = Field(default_factory=AuthorizationPolicySpec)


# ---------------------------------------------------------------- RequestAuthentication

class JWTHeader(IstioMessage):
    name: str = Field(min_length=1)
    prefix: str = ""


class JWTRule(IstioMessage):
    """One issuer's tokens (security/v1beta1/request_authentication.proto, JWTRule)."""

    unmodelled = frozenset({"fromParams", "fromCookies", "outputPayloadToHeader", "outputClaimToHeaders",
                             "timeout"})
    issuer: str = Field(min_length=1)
    audiences: list[str] = Field(default_factory=list)
    jwks_uri: str | None = None
    jwks: str | None = None
    from_headers: list[JWTHeader] = Field(default_factory=list)
    forward_original_token: bool = False

    @model_validator(mode="after")
    def _one_key_source(self) -> JWTRule:
        if self.jwks and self.jwks_uri:
            raise ValueError("jwks and jwksUri are mutually exclusive")
        return self


class RequestAuthenticationSpec(IstioMessage):
    unmodelled = frozenset({"targetRef", "targetRefs"})
    selector: WorkloadSelector | None = None
    jwt_rules: list[JWTRule] = Field(default_factory=list)


class RequestAuthentication(Resource):
    api_versions: ClassVar[tuple[str, ...]] = ("security.istio.io/v1", "security.istio.io/v1beta1")
    spec: RequestAuthenticationSpec = Field(default_factory=RequestAuthenticationSpec)


# ---------------------------------------------------------------- ServiceEntry and Sidecar (egress)

class ServiceEntryLocation(StrEnum):
    MESH_EXTERNAL = "MESH_EXTERNAL"
    MESH_INTERNAL = "MESH_INTERNAL"


class ServiceEntryResolution(StrEnum):
    NONE = "NONE"
    STATIC = "STATIC"
    DNS = "DNS"
    DNS_ROUND_ROBIN = "DNS_ROUND_ROBIN"
    DYNAMIC_DNS = "DYNAMIC_DNS"


class ServicePort(IstioMessage):
    """networking/v1 ServicePort: protocol is one of Istio's protocol names (HTTP, HTTPS, TCP, ...)."""

    number: int = Field(ge=1, le=65535)
    name: str = Field(min_length=1)
    protocol: str | None = None
    target_port: int | None = Field(default=None, ge=1, le=65535)


class WorkloadEntrySpec(IstioMessage):
    """An endpoint of a ServiceEntry (networking/v1 WorkloadEntry, inline)."""

    unmodelled = frozenset({"labels", "network", "locality", "weight", "serviceAccount"})
    address: str | None = None
    ports: dict[str, int] = Field(default_factory=dict)

    @field_validator("ports")
    @classmethod
    def _port_numbers(cls, value: dict[str, int]) -> dict[str, int]:
        for name, number in value.items():
            if not 1 <= number <= 65535:
                raise ValueError(f"port {name}: {number} is not a port number")
        return value


class ServiceEntrySpec(IstioMessage):
    unmodelled = frozenset({"addresses", "workloadSelector", "subjectAltNames"})
    hosts: list[str] = Field(min_length=1)
    ports: list[ServicePort] = Field(default_factory=list)
    location: ServiceEntryLocation = ServiceEntryLocation.MESH_EXTERNAL
    resolution: ServiceEntryResolution = ServiceEntryResolution.NONE
    endpoints: list[WorkloadEntrySpec] = Field(default_factory=list)
    export_to: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _endpoints_fit_resolution(self) -> ServiceEntrySpec:
        # The CRD's CEL rules: NONE takes no endpoints; DNS_ROUND_ROBIN at most one.
        if self.resolution is ServiceEntryResolution.NONE and self.endpoints:
            raise ValueError("endpoints require resolution STATIC or DNS (NONE takes none)")
        if self.resolution is ServiceEntryResolution.DNS_ROUND_ROBIN and len(self.endpoints) > 1:
            raise ValueError("DNS_ROUND_ROBIN takes at most one endpoint")
        names = [p.name for p in self.ports]
        if len(names) != len(set(names)):
            raise ValueError(f"port names must be unique, got {names}")
        return self


class ServiceEntry(Resource):
    api_versions: ClassVar[tuple[str, ...]] = VirtualService.api_versions
    spec: ServiceEntrySpec


class OutboundTrafficPolicyMode(StrEnum):
    REGISTRY_ONLY = "REGISTRY_ONLY"
    ALLOW_ANY = "ALLOW_ANY"


class OutboundTrafficPolicy(IstioMessage):
    unmodelled = frozenset({"egressProxy"})
    mode: OutboundTrafficPolicyMode = OutboundTrafficPolicyMode.ALLOW_ANY


class SidecarWorkloadSelector(IstioMessage):
    labels: dict[str, str] = Field(default_factory=dict)


class SidecarSpec(IstioMessage):
    unmodelled = frozenset({"ingress", "egress", "inboundConnectionPool"})
    workload_selector: SidecarWorkloadSelector | None = None
    outbound_traffic_policy: OutboundTrafficPolicy | None = None


class Sidecar(Resource):
    api_versions: ClassVar[tuple[str, ...]] = VirtualService.api_versions
    spec: SidecarSpec = Field(default_factory=SidecarSpec)


ISTIO_KINDS: dict[str, type[Resource]] = {
    "RequestAuthentication": RequestAuthentication,
    "VirtualService": VirtualService,
    "DestinationRule": DestinationRule,
    "Gateway": Gateway,
    "PeerAuthentication": PeerAuthentication,
    "AuthorizationPolicy": AuthorizationPolicy,
    "ServiceEntry": ServiceEntry,
    "Sidecar": Sidecar,
}
