"""Reading translated config the way Envoy reads it, so tests assert behaviour, not layout.

Each function evaluates one piece of Envoy's documented semantics (envoy.config.route.v3,
envoy.config.listener.v3, envoy.config.cluster.v3, envoy.extensions.filters.http.rbac.v3) on a
request or connection described in test terms: which virtual host and route a request takes (first
match wins), which cluster shares it, whether a listener accepts a connection, whether RBAC lets a
request through, what an upstream connection to an endpoint looks like. Envoy's defaults for unset
fields are spelt out here (route timeout 15 s, LB ROUND_ROBIN, circuit breakers 1024/1024/1024/3,
panic threshold 50 %), so a translator that forgets a field is judged by what Envoy would do."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from meshconform.fidelity.routes import virtual_host_for
from meshconform.platform.local.translator.model import ProxyConfig

Json = dict[str, Any]

DENOMINATORS = {"HUNDRED": 100, "TEN_THOUSAND": 10_000, "MILLION": 1_000_000}
ENVOY_DEFAULT_ROUTE_TIMEOUT = 15.0
ENVOY_DEFAULT_THRESHOLDS = {"max_connections": 1024, "max_pending_requests": 1024, "max_requests": 1024,
                            "max_retries": 3}
ENVOY_DEFAULT_PANIC_THRESHOLD = 50.0
UPSTREAM_TLS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
DOWNSTREAM_TLS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"


# ---------------------------------------------------------------- small readers

def seconds(duration: str) -> float:
    """A protobuf JSON duration ("1.5s") in seconds."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)s", duration)
    assert match, f"not a protobuf duration: {duration!r}"
    return float(match.group(1))


def share(fractional_percent: Json | None) -> float:
    """A FractionalPercent as a share in [0, 1]; Envoy's default denominator is HUNDRED."""
    if fractional_percent is None:
        return 0.0
    return fractional_percent.get("numerator", 0) / DENOMINATORS[fractional_percent.get("denominator", "HUNDRED")]


# ---------------------------------------------------------------- requests and routes

@dataclass(frozen=True)
class Request:
    """An HTTP request as a route sees it; header names are lowercase like Envoy's."""

    host: str
    path: str = "/"
    method: str = "GET"
    headers: Mapping[str, str] = field(default_factory=dict)
    scheme: str = "http"

    def header(self, name: str) -> str | None:
        pseudo = {":authority": self.host, ":method": self.method, ":path": self.path, ":scheme": self.scheme,
                  "host": self.host}
        if name in pseudo:
            return pseudo[name]
        return {k.lower(): v for k, v in self.headers.items()}.get(name.lower())

    @property
    def path_only(self) -> str:
        return urlsplit(self.path).path

    @property
    def query(self) -> dict[str, str]:
        params: dict[str, str] = {}
        for key, value in parse_qsl(urlsplit(self.path).query, keep_blank_values=True):
            params.setdefault(key, value)  # the first occurrence, as Envoy's query matcher reads it
        return params


def string_matches(matcher: Json, value: str) -> bool:
    """envoy.type.matcher.v3.StringMatcher (regexes match the whole value; ignore_case skips regexes)."""
    fold = (lambda s: s.lower()) if matcher.get("ignore_case") else (lambda s: s)
    if "exact" in matcher:
        return fold(value) == fold(matcher["exact"])
    if "prefix" in matcher:
        return fold(value).startswith(fold(matcher["prefix"]))
    if "suffix" in matcher:
        return fold(value).endswith(fold(matcher["suffix"]))
    if "contains" in matcher:
        return fold(matcher["contains"]) in fold(value)
    if "safe_regex" in matcher:
        return re.fullmatch(matcher["safe_regex"]["regex"], value) is not None
    raise AssertionError(f"unknown StringMatcher {matcher}")


def header_matches(matcher: Json, request: Request) -> bool:
    """envoy.config.route.v3.HeaderMatcher: a missing header fails a value match even when inverted,
    unless treat_missing_header_as_empty; present_match is inverted like any other."""
    value = request.header(matcher["name"])
    invert = matcher.get("invert_match", False)
    if "present_match" in matcher:
        return ((value is not None) == matcher["present_match"]) != invert
    if value is None:
        if not matcher.get("treat_missing_header_as_empty", False):
            return False
        value = ""
    if "string_match" in matcher:
        result = string_matches(matcher["string_match"], value)
    else:
        legacy = {k.removesuffix("_match"): v for k, v in matcher.items() if k.endswith("_match")}
        result = string_matches(legacy, value)
    return result != invert


def route_matches(match: Json, request: Request) -> bool:
    """envoy.config.route.v3.RouteMatch: path specifier, then headers, then query parameters."""
    path = request.path_only
    sensitive = match.get("case_sensitive", True)
    fold = (lambda s: s) if sensitive else (lambda s: s.lower())
    if "prefix" in match:
        ok = fold(path).startswith(fold(match["prefix"]))
    elif "path" in match:
        ok = fold(path) == fold(match["path"])
    elif "safe_regex" in match:
        ok = re.fullmatch(match["safe_regex"]["regex"], path) is not None
    elif "path_separated_prefix" in match:
        p = match["path_separated_prefix"]
        ok = fold(path) == fold(p) or fold(path).startswith(fold(p) + "/")
    else:
        raise AssertionError(f"route match without a path specifier: {match}")
    if not ok:
        return False
    if not all(header_matches(h, request) for h in match.get("headers", [])):
        return False
    query = request.query
    for q in match.get("query_parameters", []):
        value = query.get(q["name"])
        if "present_match" in q:
            if (value is not None) != q["present_match"]:
                return False
        elif value is None or not string_matches(q["string_match"], value):
            return False
    return True


def virtual_host(route_config: Json, authority: str) -> Json | None:
    """Envoy's virtual host for an authority (exact, suffix and prefix wildcards longest first, then '*'):
    the one implementation in meshconform.fidelity.routes, which the fidelity runner reads configs with."""
    return virtual_host_for(route_config, authority)


def route_for(route_config: Json, request: Request) -> Json | None:
    """The route Envoy picks: the virtual host for the authority, then the first matching route."""
    vhost = virtual_host(route_config, request.host)
    if vhost is None:
        return None
    return next((r for r in vhost["routes"] if route_matches(r["match"], request)), None)


def route_named_in(route_config: Json, request: Request) -> str | None:
    route = route_for(route_config, request)
    return None if route is None else route.get("name")


def cluster_shares(route: Json) -> dict[str, float]:
    """Share of requests per cluster: weight / sum of weights (Istio >= 1.15 and Envoy alike)."""
    action = route["route"]
    if "cluster" in action:
        return {action["cluster"]: 1.0}
    clusters = action["weighted_clusters"]["clusters"]
    total = sum(c.get("weight", 0) for c in clusters)
    if "total_weight" in action["weighted_clusters"]:
        assert action["weighted_clusters"]["total_weight"] == total, "Envoy rejects a total_weight != sum"
    assert total > 0, "Envoy rejects weighted clusters whose weights sum to 0"
    shares: dict[str, float] = {}
    for c in clusters:
        shares[c["name"]] = shares.get(c["name"], 0.0) + c.get("weight", 0) / total
    return shares


def route_timeout(route: Json) -> float | None:
    """Seconds before Envoy gives up on the upstream; None when disabled (0s). Envoy's default is 15 s."""
    timeout = route["route"].get("timeout")
    value = ENVOY_DEFAULT_ROUTE_TIMEOUT if timeout is None else seconds(timeout)
    return value or None


def retry_policy(route: Json, vhost: Json | None = None) -> Json | None:
    """The effective retry policy: the route's, else the virtual host's, else none (Envoy retries nothing)."""
    return route["route"].get("retry_policy") or (vhost or {}).get("retry_policy")


def retry_conditions(policy: Json | None) -> set[str]:
    if policy is None:
        return set()
    return {c.strip() for c in policy.get("retry_on", "").split(",") if c.strip()}


def retry_count(policy: Json | None) -> int:
    """num_retries defaults to 1 in Envoy once a policy exists."""
    if policy is None or not retry_conditions(policy):
        return 0
    return int(policy.get("num_retries", 1))


def retried_statuses(policy: Json | None) -> set[int]:
    """Status codes Envoy retries: 5xx covers 500-599, gateway-error 502-504, retriable-status-codes the list."""
    conditions = retry_conditions(policy)
    codes: set[int] = set()
    if "5xx" in conditions:
        codes |= set(range(500, 600))
    if "gateway-error" in conditions:
        codes |= {502, 503, 504}
    if "retriable-status-codes" in conditions and policy is not None:
        codes |= set(policy.get("retriable_status_codes", []))
    return codes


@dataclass(frozen=True)
class Fault:
    delay_seconds: float | None
    delay_share: float
    abort_status: int | None
    abort_share: float


def fault(route: Json, hcm_filters: list[Json] | None = None) -> Fault | None:
    """The route's fault config. If the HCM's filter list is given, the fault filter must be in it, ahead of
    the router, or Envoy never applies the per-route config."""
    config = route.get("typed_per_filter_config", {}).get("envoy.filters.http.fault")
    if config is None:
        return None
    if hcm_filters is not None:
        names = [f["name"] for f in hcm_filters]
        assert "envoy.filters.http.fault" in names, "per-route fault config without the fault filter in the chain"
        assert names.index("envoy.filters.http.fault") < names.index("envoy.filters.http.router")
    delay, abort = config.get("delay"), config.get("abort")
    return Fault(delay_seconds=seconds(delay["fixed_delay"]) if delay else None,
                 delay_share=share(delay.get("percentage")) if delay else 0.0,
                 abort_status=abort.get("http_status") if abort else None,
                 abort_share=share(abort.get("percentage")) if abort else 0.0)


@dataclass(frozen=True)
class Mirror:
    cluster: str
    share: float
    host_suffix_appended: bool


def mirrors(route: Json) -> list[Mirror]:
    """Mirror policies with their effective share (no runtime_fraction: 100 %) and whether Envoy appends
    '-shadow' to the Host (its default unless disable_shadow_host_suffix_append)."""
    found = []
    for policy in route["route"].get("request_mirror_policies", []):
        fraction = policy.get("runtime_fraction")
        found.append(Mirror(cluster=policy["cluster"],
                            share=1.0 if fraction is None else share(fraction.get("default_value")),
                            host_suffix_appended=not policy.get("disable_shadow_host_suffix_append", False)))
    return found


@dataclass(frozen=True)
class HeaderEdits:
    set: dict[str, str]
    add: dict[str, str]
    remove: list[str]


def header_edits(holder: Json, direction: str) -> HeaderEdits:
    """Header operations on a route or a weighted cluster; append_action decides set (overwrite) vs add."""
    set_: dict[str, str] = {}
    add: dict[str, str] = {}
    for option in holder.get(f"{direction}_headers_to_add", []):
        action = option.get("append_action", "APPEND_IF_EXISTS_OR_ADD")
        if "append" in option:  # the deprecated bool, if a translator used it
            action = "APPEND_IF_EXISTS_OR_ADD" if option["append"] else "OVERWRITE_IF_EXISTS_OR_ADD"
        target = set_ if action == "OVERWRITE_IF_EXISTS_OR_ADD" else add
        target[option["header"]["key"]] = option["header"]["value"]
    return HeaderEdits(set_, add, list(holder.get(f"{direction}_headers_to_remove", [])))


# ---------------------------------------------------------------- proxies, listeners, filter chains

def sidecar_routes(config: ProxyConfig) -> Json:
    return config.routes["outbound"]


def listener(config: ProxyConfig, name: str) -> Json:
    found = [li for li in config.listeners if li["name"] == name]
    assert len(found) == 1, f"listener {name!r}: {[li['name'] for li in config.listeners]}"
    return found[0]


def inbound_listener(config: ProxyConfig, port: int) -> Json:
    found = [li for li in config.listeners if li["address"]["socket_address"]["port_value"] == port
             and li["name"].startswith("inbound")]
    assert len(found) == 1, f"one inbound listener on port {port}: {[li['name'] for li in config.listeners]}"
    return found[0]


def listener_on(config: ProxyConfig, port: int) -> Json | None:
    return next((li for li in config.listeners if li["address"]["socket_address"]["port_value"] == port), None)


@dataclass(frozen=True)
class Connection:
    """A client connection as listener filters see it."""

    tls: bool = False
    client_certificate: bool = False
    alpn: tuple[str, ...] = ()
    sni: str | None = None
    http: bool = True  # the bytes inside are HTTP/1.1 (an http_inspector reports "http/1.1" for plaintext)


def _sni_matches(pattern: str, sni: str) -> bool:
    return pattern == sni or (pattern.startswith("*.") and sni.endswith(pattern[1:]))


def filter_chain(listener_config: Json, connection: Connection) -> Json | None:
    """Envoy's filter chain selection: criteria in order (server_names, transport_protocol,
    application_protocols); at each, chains naming a matching value beat chains leaving it empty, and chains
    naming only other values drop out. TLS, SNI and ALPN are only seen with the tls_inspector (without one, TLS
    is raw_buffer, Envoy's default); plaintext HTTP is seen as ALPN http/1.1 with the http_inspector."""
    names = {f["name"] for f in listener_config.get("listener_filters", [])}
    tls_seen = connection.tls and "envoy.filters.listener.tls_inspector" in names
    transport = "tls" if tls_seen else "raw_buffer"
    sni = connection.sni if tls_seen else None
    alpn = set(connection.alpn) if tls_seen else set()
    if not connection.tls and connection.http and "envoy.filters.listener.http_inspector" in names:
        alpn = {"http/1.1"}
    chains = list(listener_config.get("filter_chains", []))

    def narrow(key: str, fits: Any) -> None:
        nonlocal chains
        naming = [c for c in chains if c.get("filter_chain_match", {}).get(key)]
        matching = [c for c in naming if fits(c["filter_chain_match"][key])]
        chains = matching or [c for c in chains if not c.get("filter_chain_match", {}).get(key)]

    narrow("server_names", lambda names: sni is not None and any(_sni_matches(n, sni) for n in names))
    narrow("transport_protocol", lambda proto: proto == transport)
    narrow("application_protocols", lambda protos: bool(alpn & set(protos)))
    if chains:
        return chains[0]
    return listener_config.get("default_filter_chain")


def downstream_tls(chain: Json) -> Json | None:
    socket = chain.get("transport_socket")
    if socket and socket["typed_config"]["@type"] == DOWNSTREAM_TLS:
        return socket["typed_config"]
    return None


def accepts(listener_config: Json, connection: Connection) -> bool:
    """Whether the connection reaches an HTTP connection manager: a chain is chosen and its handshake
    succeeds (TLS on both sides or neither; a client certificate where one is required)."""
    chain = filter_chain(listener_config, connection)
    if chain is None:
        return False
    tls = downstream_tls(chain)
    if (tls is not None) != connection.tls:
        return False
    if tls is not None and tls.get("require_client_certificate") and not connection.client_certificate:
        return False
    return True


def hcm(chain: Json) -> Json:
    found = [f for f in chain["filters"] if f["name"] == "envoy.filters.network.http_connection_manager"]
    assert len(found) == 1, f"one HTTP connection manager in {chain.get('name')}"
    return found[0]["typed_config"]


def http_filter_names(chain: Json) -> list[str]:
    return [f["name"] for f in hcm(chain)["http_filters"]]


# ---------------------------------------------------------------- RBAC

@dataclass(frozen=True)
class Caller:
    """Who sends a request: the peer certificate's URI SAN (None over plaintext) and the destination port."""

    principal: str | None = None
    port: int = 8080


def _permission(rule: Json, request: Request, caller: Caller) -> bool:
    if rule.get("any"):
        return True
    if "and_rules" in rule:
        return all(_permission(r, request, caller) for r in rule["and_rules"]["rules"])
    if "or_rules" in rule:
        return any(_permission(r, request, caller) for r in rule["or_rules"]["rules"])
    if "not_rule" in rule:
        return not _permission(rule["not_rule"], request, caller)
    if "header" in rule:
        return header_matches(rule["header"], request)
    if "url_path" in rule:
        return string_matches(rule["url_path"]["path"], request.path_only)
    if "destination_port" in rule:
        return bool(caller.port == rule["destination_port"])
    raise AssertionError(f"permission not modelled: {rule}")


def _principal(rule: Json, request: Request, caller: Caller) -> bool:
    if rule.get("any"):
        return True
    if "and_ids" in rule:
        return all(_principal(r, request, caller) for r in rule["and_ids"]["ids"])
    if "or_ids" in rule:
        return any(_principal(r, request, caller) for r in rule["or_ids"]["ids"])
    if "not_id" in rule:
        return not _principal(rule["not_id"], request, caller)
    if "authenticated" in rule:
        if caller.principal is None:
            return False
        name = rule["authenticated"].get("principal_name")
        return name is None or string_matches(name, caller.principal)
    if "header" in rule:
        return header_matches(rule["header"], request)
    raise AssertionError(f"principal not modelled: {rule}")


def _policy_matches(policy: Json, request: Request, caller: Caller) -> bool:
    """A policy matches when any permission and any principal match."""
    return (any(_permission(p, request, caller) for p in policy["permissions"])
            and any(_principal(p, request, caller) for p in policy["principals"]))


def rbac_filters(chain: Json) -> Iterator[Json]:
    for f in hcm(chain)["http_filters"]:
        if f["typed_config"]["@type"].endswith("envoy.extensions.filters.http.rbac.v3.RBAC"):
            yield f["typed_config"]


def rbac_allows(chain: Json, request: Request, caller: Caller) -> bool:
    """Envoy RBAC filters in order: ALLOW lets through only requests some policy matches (none: deny all),
    DENY stops requests some policy matches; a filter without `rules` enforces nothing."""
    for config in rbac_filters(chain):
        rules = config.get("rules")
        if rules is None:
            continue
        matched = any(_policy_matches(p, request, caller) for p in rules.get("policies", {}).values())
        action = rules.get("action", "ALLOW")
        if action == "ALLOW" and not matched:
            return False
        if action == "DENY" and matched:
            return False
    return True


def rbac_denies(chain: Json, request: Request, caller: Caller) -> bool:
    """Whether a DENY filter stops the request, whatever an ALLOW filter would decide."""
    return any(config.get("rules", {}).get("action") == "DENY"
               and any(_policy_matches(p, request, caller) for p in config["rules"].get("policies", {}).values())
               for config in rbac_filters(chain))


# ---------------------------------------------------------------- clusters

def cluster(config: ProxyConfig, name: str) -> Json:
    found = [c for c in config.clusters if c["name"] == name]
    assert len(found) == 1, f"cluster {name!r} not in {sorted(c['name'] for c in config.clusters)}"
    return found[0]


@dataclass(frozen=True)
class Endpoint:
    address: str
    port: int
    metadata: Json


def endpoints(cluster_config: Json) -> list[Endpoint]:
    found = []
    for group in cluster_config.get("load_assignment", {}).get("endpoints", []):
        for lb_endpoint in group.get("lb_endpoints", []):
            address = lb_endpoint["endpoint"]["address"]["socket_address"]
            found.append(Endpoint(address["address"], address["port_value"], lb_endpoint.get("metadata", {})))
    return found


def upstream_socket(cluster_config: Json, endpoint: Endpoint) -> Json | None:
    """The transport socket Envoy uses towards this endpoint: the first transport_socket_matches entry whose
    `match` is a subset of the endpoint's envoy.transport_socket_match metadata, else the cluster's
    transport_socket, else none (plaintext)."""
    labels = endpoint.metadata.get("filter_metadata", {}).get("envoy.transport_socket_match", {})
    for candidate in cluster_config.get("transport_socket_matches", []):
        if all(labels.get(k) == v for k, v in candidate.get("match", {}).items()):
            return candidate.get("transport_socket")
    return cluster_config.get("transport_socket")


@dataclass(frozen=True)
class Upstream:
    """What a connection to one endpoint looks like."""

    tls: bool
    client_certificate: bool
    trusted_ca: str | None
    peer_identities: tuple[str, ...]
    alpn: tuple[str, ...]
    sni: str | None


def upstream(cluster_config: Json, endpoint: Endpoint) -> Upstream:
    socket = upstream_socket(cluster_config, endpoint)
    if socket is None or socket["typed_config"]["@type"] != UPSTREAM_TLS:
        return Upstream(False, False, None, (), (), None)
    tls = socket["typed_config"]
    common = tls.get("common_tls_context", {})
    validation = common.get("validation_context", {})
    sans = tuple(m["matcher"]["exact"] for m in validation.get("match_typed_subject_alt_names", []))
    return Upstream(True, bool(common.get("tls_certificates")),
                    validation.get("trusted_ca", {}).get("filename"), sans,
                    tuple(common.get("alpn_protocols", [])), tls.get("sni"))


def thresholds(cluster_config: Json) -> dict[str, int]:
    """Circuit breaker thresholds at default priority, with Envoy's own defaults for unset ones."""
    given = (cluster_config.get("circuit_breakers", {}).get("thresholds") or [{}])[0]
    return {k: int(given.get(k, default)) for k, default in ENVOY_DEFAULT_THRESHOLDS.items()}


def lb_policy(cluster_config: Json) -> str:
    return str(cluster_config.get("lb_policy", "ROUND_ROBIN"))


def panic_threshold(cluster_config: Json) -> float:
    value = cluster_config.get("common_lb_config", {}).get("healthy_panic_threshold")
    return ENVOY_DEFAULT_PANIC_THRESHOLD if value is None else float(value.get("value", 0.0))


def max_requests_per_connection(cluster_config: Json) -> int | None:
    for options in cluster_config.get("typed_extension_protocol_options", {}).values():
        value = options.get("common_http_protocol_options", {}).get("max_requests_per_connection")
        if value is not None:
            return int(value)
    return None


# ---------------------------------------------------------------- gateway

def gateway_route_config(config: ProxyConfig, chain: Json) -> Json:
    name = hcm(chain)["rds"]["route_config_name"]
    assert name in config.routes, f"RDS {name!r} not among {sorted(config.routes)}"
    return config.routes[name]


@dataclass(frozen=True)
class GatewayAnswer:
    """What the gateway does with a request: refuses the connection, redirects to HTTPS, routes, or 404."""

    kind: str  # "refused" | "redirect" | "route" | "not-found"
    route: Json | None = None


def gateway_handles(config: ProxyConfig, port: int, request: Request, connection: Connection = Connection()
                    ) -> GatewayAnswer:
    listener_config = listener_on(config, port)
    if listener_config is None or not accepts(listener_config, connection):
        return GatewayAnswer("refused")
    chain = filter_chain(listener_config, connection)
    assert chain is not None
    manager = hcm(chain)
    routes = gateway_route_config(config, chain)
    host = request.host
    if manager.get("strip_any_host_port") and ":" in host:
        host = host.rsplit(":", 1)[0]
    vhost = virtual_host(routes, host)
    if vhost is None:
        return GatewayAnswer("not-found")
    if vhost.get("require_tls") == "ALL" and not connection.tls:
        return GatewayAnswer("redirect")
    stripped = Request(host, request.path, request.method, request.headers, "https" if connection.tls else "http")
    route = next((r for r in vhost["routes"] if route_matches(r["match"], stripped)), None)
    return GatewayAnswer("route", route) if route is not None else GatewayAnswer("not-found")


# ---------------------------------------------------------------- diffs

def diff(before: Any, after: Any, path: str = "") -> list[str]:
    """Paths of every leaf that differs; a list of another length is one difference at the list's path."""
    if isinstance(before, dict) and isinstance(after, dict):
        found = []
        for key in sorted(set(before) | set(after), key=str):
            where = f"{path}.{key}" if path else str(key)
            if key not in before or key not in after:
                found.append(where)
            else:
                found.extend(diff(before[key], after[key], where))
        return found
    if isinstance(before, list) and isinstance(after, list):
        if len(before) != len(after):
            return [f"{path}[len]"]
        return [d for i, (b, a) in enumerate(zip(before, after, strict=True)) for d in diff(b, a, f"{path}[{i}]")]
    return [] if before == after else [path]


def config_diff(before: dict[str, ProxyConfig], after: dict[str, ProxyConfig]) -> list[str]:
    """Differences between two translations, as `proxy:listeners[i]...` paths."""
    found = [f"{proxy}:<missing>" for proxy in sorted(set(before) ^ set(after))]
    for proxy in sorted(set(before) & set(after)):
        b, a = before[proxy], after[proxy]
        for part in ("listeners", "clusters", "routes"):
            found.extend(f"{proxy}:{d}" for d in diff(getattr(b, part), getattr(a, part), part))
    return found
