"""VirtualService HTTP rules -> Envoy routes, with Istio's defaults and ordering."""

from __future__ import annotations

from typing import Any

from meshconform.errors import ConfigError
from meshconform.meshapi.durations import envoy_duration
from meshconform.meshapi.istio import (
    Destination,
    HeaderOperations,
    Headers,
    HTTPMatchRequest,
    HTTPRetry,
    HTTPRoute,
    StringMatch,
    VirtualService,
)
from meshconform.meshapi.kube import Service
from meshconform.platform.local.misbehaviour import Misbehaviour, Misbehaviours
from meshconform.platform.local.translator.envoy_types import FAULT, FAULT_FILTER, PREVIOUS_HOSTS, fraction
from meshconform.platform.local.translator.names import cluster_name, resolve_host

NO_CALLER_FAULT = {Misbehaviour.FAULTS_IGNORED, Misbehaviour.FAULTS_AT_DESTINATION}  # no fault on callers' routes
DEFAULT_RETRY_ON = "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
PREVIOUS_HOSTS_PREDICATE = [{"name": "envoy.retry_host_predicates.previous_hosts",
                             "typed_config": {"@type": PREVIOUS_HOSTS}}]


def default_retry_policy(misbehave: Misbehaviours = frozenset()) -> dict[str, Any]:
    """The mesh default when a VirtualService gives no `retries` (Istio >= 1.28: no 503)."""
    policy: dict[str, Any] = {"retry_on": DEFAULT_RETRY_ON, "num_retries": 2,
                              "retry_host_predicate": PREVIOUS_HOSTS_PREDICATE, "host_selection_retry_max_attempts": 5}
    if Misbehaviour.DEFAULT_RETRIES_503 in misbehave:
        policy["retriable_status_codes"] = [503]
    return policy


def default_route(service: Service, port: int, misbehave: Misbehaviours = frozenset()) -> dict[str, Any]:
    return default_route_to(cluster_name(port, None, service.fqdn), misbehave)


def default_route_to(cluster: str, misbehave: Misbehaviours = frozenset()) -> dict[str, Any]:
    return {"name": "default", "match": {"prefix": "/"},
            "route": {"cluster": cluster, "timeout": "0s", "retry_policy": default_retry_policy(misbehave)}}


class RouteBuilder:
    """Builds routes for one VirtualService; `services` resolves destination ports."""

    def __init__(self, vs: VirtualService, services: dict[str, Service], misbehave: Misbehaviours) -> None:
        self.vs = vs
        self.services = services
        self.misbehave = misbehave

    def routes(self, port: int | None) -> list[dict[str, Any]]:
        """Every match block becomes its own route, in order; istiod stops after the first catch-all."""
        result = []
        for index, rule in enumerate(self.vs.spec.http):
            matches: list[HTTPMatchRequest | None] = list(rule.match) or [None]
            for match in matches:
                if (match is not None and match.port is not None and port is not None and match.port != port
                        and Misbehaviour.MATCH_PORT_IGNORED not in self.misbehave):
                    continue
                if match is not None and Misbehaviour.HEADER_MATCH_IGNORED in self.misbehave and match.headers:
                    match = match.model_copy(update={"headers": {}})
                    if match.uri is None and not match.query_params and not match.without_headers:
                        match = None
                route = {"name": rule.name or f"{self.vs.metadata.name}.{index}",
                         "match": self._match(match), **self._action(rule, index, port)}
                if Misbehaviour.ROUTE_NAMES_GENERATED in self.misbehave:
                    route["name"] = f"{self.vs.metadata.name}.{index}"
                result.append(route)
                if _is_catch_all(match):
                    return result
        return result

    def _match(self, match: HTTPMatchRequest | None) -> dict[str, Any]:
        if match is None:
            return {"prefix": "/"}
        envoy: dict[str, Any] = {}
        uri = match.uri
        if uri is None:
            envoy["prefix"] = "/"
        elif uri.exact is not None and Misbehaviour.EXACT_AS_PREFIX in self.misbehave:
            envoy["prefix"] = uri.exact
        elif uri.exact is not None:
            envoy["path"] = uri.exact
        elif uri.prefix is not None:
            envoy["prefix"] = uri.prefix
        else:
            envoy["safe_regex"] = {"regex": _regex(uri.regex or "", self.misbehave)}
        if match.ignore_uri_case and uri is not None and uri.regex is None:
            envoy["case_sensitive"] = False
        m = self.misbehave
        headers = [_header(name, value, m) for name, value in match.headers.items()]
        # As istiod (route_test.go, "regex matching on without header"): a missing header counts as "", so a
        # request without it matches a withoutHeaders block rather than falling through.
        headers += [{**_header(name, value, m), "invert_match": True,
                     **({} if value.is_presence else {"treat_missing_header_as_empty": True})}
                    for name, value in match.without_headers.items()]
        method = None if Misbehaviour.METHOD_MATCH_IGNORED in m else match.method
        for pseudo, value in ((":method", method), (":authority", match.authority), (":scheme", match.scheme)):
            if value is not None:
                headers.append(_header(pseudo, value, m))
        if headers:
            envoy["headers"] = headers
        if match.query_params and Misbehaviour.QUERY_MATCH_IGNORED not in m:
            envoy["query_parameters"] = [
                {"name": name, "present_match": True} if value.is_presence
                else {"name": name, "string_match": _string_matcher(value, m)}
                for name, value in match.query_params.items()]
        return envoy

    def _action(self, rule: HTTPRoute, index: int, port: int | None) -> dict[str, Any]:
        where = f"spec.http[{index}]"
        destinations = [d for d in rule.route if len(rule.route) == 1 or d.weight > 0]
        timeout = None if Misbehaviour.TIMEOUTS_IGNORED in self.misbehave else rule.timeout
        action: dict[str, Any] = {"timeout": envoy_duration(timeout or 0.0)}
        if len(destinations) == 1:
            action["cluster"] = self._cluster(destinations[0].destination, port, f"{where}.route[0]")
        else:
            weights = [d.weight for d in destinations]
            if Misbehaviour.WEIGHTS_SKEWED in self.misbehave:
                weights = _skew(weights)
            action["weighted_clusters"] = {"clusters": [
                {"name": self._cluster(d.destination, port, f"{where}.route[{i}]"), "weight": w,
                 **_header_fields(d.headers, self.misbehave, destination=True)}
                for i, (d, w) in enumerate(zip(destinations, weights, strict=True))]}
        retries = None if Misbehaviour.RETRIES_IGNORED in self.misbehave else rule.retries
        action["retry_policy"] = (_retry_policy(retries, self.misbehave) if retries
                                  else default_retry_policy(self.misbehave))
        if not action["retry_policy"]:
            del action["retry_policy"]
        elif Misbehaviour.ROUTE_TIMEOUT_PER_TRY in self.misbehave and retries and timeout:
            action["retry_policy"]["per_try_timeout"] = action.pop("timeout")
            action["timeout"] = "0s"
        if rule.mirror is not None and Misbehaviour.MIRROR_DROPPED not in self.misbehave:
            mirror = rule.mirror
            if Misbehaviour.MIRROR_SUBSET_IGNORED in self.misbehave:
                mirror = mirror.model_copy(update={"subset": None})
            if Misbehaviour.MIRROR_PORT_IGNORED in self.misbehave:
                mirror = mirror.model_copy(update={"port": None})
            action["request_mirror_policies"] = [{
                "cluster": self._cluster(mirror, port, f"{where}.mirror"),
                "runtime_fraction": {"default_value": fraction(
                    1.0 if Misbehaviour.MIRROR_PERCENTAGE_IGNORED in self.misbehave else rule.mirror_fraction)},
                "trace_sampled": False,
                # Istio >= 1.28: the copy keeps the request's authority (before, "echo" became "echo-shadow").
                "disable_shadow_host_suffix_append": Misbehaviour.MIRROR_SHADOW_HOST not in self.misbehave,
            }]
        route: dict[str, Any] = {"route": action}
        if len(destinations) == 1:
            route.update(_header_fields(destinations[0].headers, self.misbehave, destination=True))
        _merge_header_fields(route, _header_fields(rule.headers, self.misbehave))
        if rule.fault is not None and not NO_CALLER_FAULT & self.misbehave:
            route["typed_per_filter_config"] = {FAULT_FILTER: _fault(rule, self.misbehave)}
        return route

    def _cluster(self, destination: Destination, port: int | None, where: str) -> str:
        fqdn = resolve_host(destination.host, self.vs.metadata.namespace)
        service = self.services.get(fqdn)
        if destination.port is not None:
            number = destination.port.number
        elif service is not None and len(service.spec.ports) == 1:
            number = service.spec.ports[0].port
        elif port is not None:
            number = port
        else:
            raise ConfigError(f"destination {destination.host} has several ports: set destination.port.number",
                              resource=self.vs.ref, field=f"{where}.destination.port")
        return cluster_name(number, destination.subset, fqdn)


def _is_catch_all(match: HTTPMatchRequest | None) -> bool:
    if match is None:
        return True
    only_uri = not (match.headers or match.without_headers or match.query_params or match.method
                    or match.authority or match.scheme or match.port)
    return only_uri and (match.uri is None or match.uri.prefix == "/" or match.uri.regex in ("*", ".*"))


def _regex(regex: str, misbehave: Misbehaviours) -> str:
    # Envoy's safe_regex must match the whole value; the misbehaviour lets it match anywhere inside.
    return f".*(?:{regex}).*" if Misbehaviour.REGEX_AS_PARTIAL_MATCH in misbehave else regex


def _string_matcher(value: StringMatch, misbehave: Misbehaviours = frozenset()) -> dict[str, Any]:
    if value.exact is not None:
        return {"prefix" if Misbehaviour.EXACT_AS_PREFIX in misbehave else "exact": value.exact}
    if value.prefix is not None:
        return {"prefix": value.prefix}
    return {"safe_regex": {"regex": _regex(value.regex or "", misbehave)}}


def _header(name: str, value: StringMatch, misbehave: Misbehaviours = frozenset()) -> dict[str, Any]:
    if value.is_presence or value.regex == "*":
        return {"name": name, "present_match": True}
    return {"name": name, "string_match": _string_matcher(value, misbehave)}


def _retry_policy(retries: HTTPRetry, misbehave: Misbehaviours = frozenset()) -> dict[str, Any]:
    if retries.attempts == 0 or (retries.attempts == 1 and Misbehaviour.RETRY_ONCE_AS_NONE in misbehave):
        return {}
    retry_on = "5xx" if Misbehaviour.RETRY_ON_IGNORED in misbehave else retries.retry_on or DEFAULT_RETRY_ON
    tokens = [t.strip() for t in retry_on.split(",") if t.strip()]
    codes = [int(t) for t in tokens if t.isdigit()]
    names = [t for t in tokens if not t.isdigit()]
    if codes and "retriable-status-codes" not in names:
        names.append("retriable-status-codes")
    policy: dict[str, Any] = {"retry_on": ",".join(names), "num_retries": retries.attempts,
                              "retry_host_predicate": PREVIOUS_HOSTS_PREDICATE,
                              "host_selection_retry_max_attempts": 5}
    if Misbehaviour.RETRY_SAME_HOST in misbehave:
        del policy["retry_host_predicate"], policy["host_selection_retry_max_attempts"]
    if codes:
        policy["retriable_status_codes"] = codes
    if retries.per_try_timeout is not None and Misbehaviour.PER_TRY_TIMEOUT_IGNORED not in misbehave:
        policy["per_try_timeout"] = envoy_duration(retries.per_try_timeout)
    return policy


def _fault(rule: HTTPRoute, misbehave: Misbehaviours = frozenset()) -> dict[str, Any]:
    assert rule.fault is not None
    config: dict[str, Any] = {"@type": FAULT}
    delay = rule.fault.delay
    if delay is not None:
        share = delay.fraction
        if Misbehaviour.DELAY_PERCENT_IGNORED in misbehave and delay.percentage is None:
            share = 0.0
        config["delay"] = {"fixed_delay": envoy_duration(delay.fixed_delay), "percentage": fraction(share)}
    if rule.fault.abort is not None:
        config["abort"] = {"http_status": rule.fault.abort.http_status,
                           "percentage": fraction(rule.fault.abort.fraction)}
    return config


def _header_values(ops: HeaderOperations, misbehave: Misbehaviours = frozenset()) -> list[dict[str, Any]]:
    """`set` overwrites every value the header has; `add` appends one (Headers reference: "Append the given values
    to the headers specified by keys"); the misbehaviours swap one for the other."""
    overwrite, append = "OVERWRITE_IF_EXISTS_OR_ADD", "APPEND_IF_EXISTS_OR_ADD"
    set_action = append if Misbehaviour.HEADER_SET_APPENDS in misbehave else overwrite
    add_action = overwrite if Misbehaviour.HEADER_ADD_REPLACES in misbehave else append
    values = [{"header": {"key": k, "value": v}, "append_action": set_action} for k, v in ops.set.items()]
    values += [{"header": {"key": k, "value": v}, "append_action": add_action} for k, v in ops.add.items()]
    return values


def _header_fields(headers: Headers | None, misbehave: Misbehaviours = frozenset(),
                   destination: bool = False) -> dict[str, Any]:
    """Envoy's header fields for a rule's (or, `destination`, one destination's) `headers`."""
    if headers is None:
        return {}
    fields: dict[str, Any] = {}
    if headers.request is not None and Misbehaviour.REQUEST_HEADER_OPERATIONS_IGNORED not in misbehave:
        fields["request_headers_to_add"] = _header_values(headers.request, misbehave)
        fields["request_headers_to_remove"] = list(headers.request.remove)
    response = headers.response
    if response is not None and Misbehaviour.RESPONSE_HEADER_OPERATIONS_IGNORED in misbehave:
        # The misbehaviour keeps a rule's `set` only: the suite's convergence marker rides on it.
        response = None if destination else response.model_copy(update={"add": {}, "remove": []})
    if response is not None:
        fields["response_headers_to_add"] = _header_values(response, misbehave)
        fields["response_headers_to_remove"] = list(response.remove)
    return {k: v for k, v in fields.items() if v}


def _merge_header_fields(route: dict[str, Any], extra: dict[str, Any]) -> None:
    for key, values in extra.items():
        route[key] = [*route.get(key, []), *values]


def _skew(weights: list[int]) -> list[int]:
    """Deliberate misbehaviour for self-tests: move 15 points of share to the first destination."""
    total = sum(weights)
    shift = max(1, round(total * 0.15))
    skewed = list(weights)
    skewed[0] += shift
    for i in range(1, len(skewed)):
        take = min(skewed[i], shift)
        skewed[i] -= take
        shift -= take
    return [max(w, 0) for w in skewed]
