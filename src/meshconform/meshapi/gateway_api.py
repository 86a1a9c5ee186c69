"""The Kubernetes Gateway API subset meshconform understands (gateway.networking.k8s.io/v1): Gateway and HTTPRoute.

Field names, defaults and validation follow the v1 CRDs (standard channel, the schemas vendored under
platform/kube/schemas/): unknown fields are refused as the API server would; fields the CRD has that
meshconform does not model are kept (`unmodelled`), so kind and cluster apply them as they are and the
local platform refuses them by name in its capability check. Semantics (segment-based PathPrefix, rule
precedence, weights) live in the local translator (`translator/gateway_api.py`)."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import Field, ModelWrapValidatorHandler, field_validator, model_validator

from meshconform.meshapi.base import IstioMessage, Resource

GROUP = "gateway.networking.k8s.io"
ISTIO_GROUP = "networking.istio.io"  # the group of Istio's own backend kinds (Hostname)
API_VERSIONS = (f"{GROUP}/v1", f"{GROUP}/v1beta1")
# The CRDs' patterns: an RFC 1123 hostname, optionally with a leading '*.' label; no IPs, no port.
HOSTNAME = r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
SECTION_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
HEADER_NAME = r"^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$"


class GatewayAPIMessage(IstioMessage):
    """A Gateway API message: strict like the CRD (unknown fields refused), unmodelled fields kept."""


class GatewayAPIResource(Resource):
    """A Gateway API object. Its key carries the group: an Istio Gateway and a Gateway API Gateway may share a
    namespace and name (`kubectl get gateway.gateway.networking.k8s.io` tells them apart the same way)."""

    api_versions: ClassVar[tuple[str, ...]] = API_VERSIONS

    @property
    def key(self) -> tuple[str, str, str]:
        return (f"{self.kind}.{GROUP}", self.metadata.namespace, self.metadata.name)

    @property
    def ref(self) -> str:
        return f"{self.kind}.{GROUP} {self.metadata.namespace}/{self.metadata.name}"


# ---------------------------------------------------------------- Gateway

class FromNamespaces(StrEnum):
    ALL = "All"
    SAME = "Same"
    SELECTOR = "Selector"


class RouteNamespaces(GatewayAPIMessage):
    unmodelled = frozenset({"selector"})
    from_: FromNamespaces = Field(default=FromNamespaces.SAME, alias="from")


class AllowedRoutes(GatewayAPIMessage):
    unmodelled = frozenset({"kinds"})
    namespaces: RouteNamespaces = Field(default_factory=RouteNamespaces)


class Listener(GatewayAPIMessage):
    unmodelled = frozenset({"tls"})
    name: str = Field(pattern=SECTION_NAME, max_length=253)
    hostname: str | None = Field(default=None, pattern=HOSTNAME, max_length=253)
    port: int = Field(ge=1, le=65535)
    protocol: str = Field(min_length=1, max_length=255)
    allowed_routes: AllowedRoutes = Field(default_factory=AllowedRoutes)


class GatewayAddress(GatewayAPIMessage):
    type: str = "IPAddress"
    value: str = Field(min_length=1, max_length=253)


class GatewaySpec(GatewayAPIMessage):
    unmodelled = frozenset({"infrastructure", "backendTLS", "tls", "defaultScope"})
    gateway_class_name: str = Field(min_length=1, max_length=253)
    listeners: list[Listener] = Field(min_length=1, max_length=64)
    addresses: list[GatewayAddress] = Field(default_factory=list, max_length=16)

    @field_validator("listeners")
    @classmethod
    def _unique_names(cls, value: list[Listener]) -> list[Listener]:
        names = [listener.name for listener in value]
        if len(names) != len(set(names)):
            raise ValueError(f"Listener name must be unique within the Gateway, got {names}")
        return value


class Gateway(GatewayAPIResource):
    spec: GatewaySpec


# ---------------------------------------------------------------- HTTPRoute

class ParentReference(GatewayAPIMessage):
    group: str = GROUP
    kind: str = "Gateway"
    namespace: str | None = None
    name: str = Field(min_length=1, max_length=253)
    section_name: str | None = Field(default=None, pattern=SECTION_NAME)
    port: int | None = Field(default=None, ge=1, le=65535)

    @property
    def is_service(self) -> bool:
        """A GAMMA parent: the Service (core group) whose traffic the route governs in the mesh."""
        return self.group in ("", "core") and self.kind == "Service"

    @property
    def is_gateway(self) -> bool:
        return self.group == GROUP and self.kind == "Gateway"


class PathMatchType(StrEnum):
    EXACT = "Exact"
    PATH_PREFIX = "PathPrefix"
    REGULAR_EXPRESSION = "RegularExpression"


class HTTPPathMatch(GatewayAPIMessage):
    type: PathMatchType = PathMatchType.PATH_PREFIX
    value: str = Field(default="/", max_length=1024)

    @model_validator(mode="after")
    def _valid(self) -> HTTPPathMatch:
        if self.type is PathMatchType.REGULAR_EXPRESSION:
            _compiles(self.value)
            return self
        # The CRD's CEL rules: an absolute path without '//', '/./', '/../', '%2f', '%2F' or '#'.
        if not self.value.startswith("/"):
            raise ValueError("value must be an absolute path and start with '/' when type one of ['Exact', "
                             "'PathPrefix']")
        for bad in ("//", "/./", "/../", "%2f", "%2F", "#"):
            if bad in self.value:
                raise ValueError(f"must not contain '{bad}' when type one of ['Exact', 'PathPrefix']")
        if self.value.endswith(("/..", "/.")):
            raise ValueError("must not end with '/..' or '/.' when type one of ['Exact', 'PathPrefix']")
        return self


class ValueMatchType(StrEnum):
    EXACT = "Exact"
    REGULAR_EXPRESSION = "RegularExpression"


class HTTPHeaderMatch(GatewayAPIMessage):
    type: ValueMatchType = ValueMatchType.EXACT
    name: str = Field(min_length=1, max_length=256, pattern=HEADER_NAME)
    value: str = Field(min_length=1, max_length=4096)

    @model_validator(mode="after")
    def _valid(self) -> HTTPHeaderMatch:
        if self.type is ValueMatchType.REGULAR_EXPRESSION:
            _compiles(self.value)
        return self


class HTTPQueryParamMatch(HTTPHeaderMatch):
    pass


class HTTPMethod(StrEnum):
    GET = "GET"
    HEAD = "HEAD"
    POST = "POST"
    PUT = "PUT"
    DELETE = "DELETE"
    CONNECT = "CONNECT"
    OPTIONS = "OPTIONS"
    TRACE = "TRACE"
    PATCH = "PATCH"


class HTTPRouteMatch(GatewayAPIMessage):
    path: HTTPPathMatch = Field(default_factory=HTTPPathMatch)
    headers: list[HTTPHeaderMatch] = Field(default_factory=list, max_length=16)
    query_params: list[HTTPQueryParamMatch] = Field(default_factory=list, max_length=16)
    method: HTTPMethod | None = None

    @model_validator(mode="after")
    def _unique(self) -> HTTPRouteMatch:
        for field, items, fold in (("headers", self.headers, True), ("queryParams", self.query_params, False)):
            names = [m.name.lower() if fold else m.name for m in items]
            if len(names) != len(set(names)):
                raise ValueError(f"{field}: names must be unique within a match, got {names}")
        return self


class HTTPHeader(GatewayAPIMessage):
    name: str = Field(min_length=1, max_length=256, pattern=HEADER_NAME)
    value: str = Field(max_length=4096)


class HTTPHeaderFilter(GatewayAPIMessage):
    set: list[HTTPHeader] = Field(default_factory=list, max_length=16)
    add: list[HTTPHeader] = Field(default_factory=list, max_length=16)
    remove: list[str] = Field(default_factory=list, max_length=16)


class BackendObjectReference(GatewayAPIMessage):
    group: str = ""
    kind: str = "Service"
    name: str = Field(min_length=1, max_length=253)
    namespace: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)

    @model_validator(mode="after")
    def _port_for_service(self) -> BackendObjectReference:
        if self.group in ("", "core") and self.kind == "Service" and self.port is None:
            raise ValueError("Must have port for Service reference")
        return self

    @property
    def is_service(self) -> bool:
        return self.group in ("", "core") and self.kind == "Service"

    @property
    def is_hostname(self) -> bool:
        """Istio's synthetic backend kind: a host name routed as written (istiod: group networking.istio.io, kind
        Hostname; the Service or ServiceEntry it names is looked up, not required)."""
        return self.group == ISTIO_GROUP and self.kind == "Hostname"


class Fraction(GatewayAPIMessage):
    numerator: int = Field(ge=0)
    denominator: int = Field(default=100, ge=1)

    @model_validator(mode="after")
    def _at_most_one(self) -> Fraction:
        if self.numerator > self.denominator:
            raise ValueError("numerator must be less than or equal to denominator")
        return self


class HTTPRequestMirrorFilter(GatewayAPIMessage):
    backend_ref: BackendObjectReference
    percent: int | None = Field(default=None, ge=0, le=100)
    fraction: Fraction | None = None

    @model_validator(mode="after")
    def _one_share(self) -> HTTPRequestMirrorFilter:
        if self.percent is not None and self.fraction is not None:
            raise ValueError("Only one of percent or fraction may be specified in HTTPRequestMirrorFilter")
        return self

    @property
    def share(self) -> float:
        """Mirrored share of requests: all of them when neither percent nor fraction is set."""
        if self.percent is not None:
            return self.percent / 100
        if self.fraction is not None:
            return self.fraction.numerator / self.fraction.denominator
        return 1.0


class FilterType(StrEnum):
    REQUEST_HEADER_MODIFIER = "RequestHeaderModifier"
    RESPONSE_HEADER_MODIFIER = "ResponseHeaderModifier"
    REQUEST_MIRROR = "RequestMirror"
    REQUEST_REDIRECT = "RequestRedirect"
    URL_REWRITE = "URLRewrite"
    EXTENSION_REF = "ExtensionRef"
    CORS = "CORS"
    EXTERNAL_AUTH = "ExternalAuth"


_FILTER_FIELDS = {
    FilterType.REQUEST_HEADER_MODIFIER: "requestHeaderModifier", FilterType.RESPONSE_HEADER_MODIFIER:
    "responseHeaderModifier", FilterType.REQUEST_MIRROR: "requestMirror", FilterType.REQUEST_REDIRECT:
    "requestRedirect", FilterType.URL_REWRITE: "urlRewrite", FilterType.EXTENSION_REF: "extensionRef",
    FilterType.CORS: "cors", FilterType.EXTERNAL_AUTH: "externalAuth",
}
_TYPES = {t.value for t in FilterType}
_TYPE_OF = {field: kind.value for kind, field in _FILTER_FIELDS.items()}


class HTTPRouteFilter(GatewayAPIMessage):
    unmodelled = frozenset({"requestRedirect", "urlRewrite", "extensionRef", "cors", "externalAuth"})
    type: FilterType
    request_header_modifier: HTTPHeaderFilter | None = None
    response_header_modifier: HTTPHeaderFilter | None = None
    request_mirror: HTTPRequestMirrorFilter | None = None

    @model_validator(mode="wrap")
    @classmethod
    def _hold_unmodelled(cls, data: Any, handler: ModelWrapValidatorHandler[HTTPRouteFilter]) -> HTTPRouteFilter:
        # Replaces IstioMessage's validator of this name: the CRD's CEL rules (the body named after the type must
        # be set, and no other body) need the raw document, before the unmodelled bodies are set aside.
        if isinstance(data, dict) and data.get("type") in _TYPES:
            wanted = _FILTER_FIELDS[FilterType(data["type"])]
            present = [name for name in _FILTER_FIELDS.values() if name in data]
            if wanted not in present:
                raise ValueError(f"filter.{wanted} must be specified for {data['type']} filter.type")
            for other in sorted(set(present) - {wanted}):
                raise ValueError(f"filter.{other} must be nil if the filter.type is not {_TYPE_OF[other]}")
        held = {k: v for k, v in data.items() if k in cls.unmodelled} if isinstance(data, dict) else {}
        message = handler({k: v for k, v in data.items() if k not in held} if isinstance(data, dict) else data)
        message._unmodelled_fields = held
        return message


class HTTPBackendRef(BackendObjectReference):
    unmodelled = frozenset({"filters"})
    weight: int = Field(default=1, ge=0, le=1_000_000)


class HTTPRouteRule(GatewayAPIMessage):
    unmodelled = frozenset({"timeouts", "retry", "sessionPersistence"})
    name: str | None = Field(default=None, pattern=SECTION_NAME)
    matches: list[HTTPRouteMatch] = Field(default_factory=lambda: [HTTPRouteMatch()], max_length=64)
    filters: list[HTTPRouteFilter] = Field(default_factory=list, max_length=16)
    backend_refs: list[HTTPBackendRef] = Field(default_factory=list, max_length=16)

    @model_validator(mode="after")
    def _filters(self) -> HTTPRouteRule:
        kinds = [f.type for f in self.filters]
        for once in (FilterType.REQUEST_HEADER_MODIFIER, FilterType.RESPONSE_HEADER_MODIFIER):
            if kinds.count(once) > 1:
                raise ValueError(f"{once} filter cannot be repeated")
        return self


class HTTPRouteSpec(GatewayAPIMessage):
    parent_refs: list[ParentReference] = Field(default_factory=list, max_length=32)
    hostnames: list[str] = Field(default_factory=list, max_length=16)
    rules: list[HTTPRouteRule] = Field(default_factory=lambda: [HTTPRouteRule()], max_length=16)

    @field_validator("hostnames")
    @classmethod
    def _hostnames(cls, value: list[str]) -> list[str]:
        for hostname in value:
            if not re.fullmatch(HOSTNAME, hostname) or len(hostname) > 253:
                raise ValueError(f"hostname {hostname!r} is not a valid (wildcard) DNS name")
        return value


class HTTPRoute(GatewayAPIResource):
    spec: HTTPRouteSpec = Field(default_factory=HTTPRouteSpec)


def _compiles(pattern: str) -> None:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"regular expression {pattern!r} does not compile: {exc}") from exc


GATEWAY_API_KINDS: dict[str, type[Resource]] = {"Gateway": Gateway, "HTTPRoute": HTTPRoute}
