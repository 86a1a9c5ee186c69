"""AuthorizationPolicy (ALLOW and DENY) as Envoy RBAC filters on a sidecar's inbound listener.

Istio's evaluation order is kept by filter order: a DENY filter first (any matching DENY policy
denies), then an ALLOW filter if any ALLOW policy selects the workload (a request no ALLOW policy
matches is denied). A policy without rules never matches, so `spec: {}` allows nothing. Denials
are Envoy's own: 403 with the body `RBAC: access denied`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from meshconform.meshapi.istio import (
    AuthorizationAction,
    AuthorizationOperation,
    AuthorizationPolicy,
    AuthorizationRule,
    AuthorizationSource,
)
from meshconform.platform.local.misbehaviour import Misbehaviour, Misbehaviours
from meshconform.platform.local.translator.jwt import FILTER_NAME as JWT_FILTER
from meshconform.platform.local.translator.jwt import issuers_for
from meshconform.platform.local.translator.model import MeshSnapshot, Pod
from meshconform.platform.local.translator.selection import selecting

RBAC = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC"
TRUST_DOMAIN_PREFIX = "spiffe://"


def policies_for(mesh: MeshSnapshot, pod: Pod, misbehave: Misbehaviours = frozenset()) -> list[AuthorizationPolicy]:
    """Policies of the pod's namespace and of the root namespace (mesh-wide) whose selector matches."""
    return selecting(mesh.authorization_policies, pod, misbehave)


def rbac_filters(mesh: MeshSnapshot, pod: Pod, misbehave: Misbehaviours = frozenset()) -> list[dict[str, Any]]:
    if Misbehaviour.AUTHZ_IGNORED in misbehave:
        return []
    policies = policies_for(mesh, pod, misbehave)
    issuers = issuers_for(mesh, pod, misbehave)
    options = _Options(negations=Misbehaviour.AUTHZ_NEGATIONS_IGNORED not in misbehave,
                       hosts_ignore_case=Misbehaviour.AUTHZ_HOSTS_CASE_SENSITIVE not in misbehave,
                       not_namespaces_of=pod.namespace if Misbehaviour.AUTHZ_NOT_NAMESPACES_OF_WORKLOAD in misbehave
                       else None, path_with_query=Misbehaviour.AUTHZ_PATH_WITH_QUERY in misbehave,
                       unverified_principals=Misbehaviour.UNVERIFIED_REQUEST_PRINCIPAL in misbehave)
    filters = []
    for action in (AuthorizationAction.DENY, AuthorizationAction.ALLOW):
        chosen = [p for p in policies if p.spec.action is action]
        if not chosen:
            continue
        rules = {f"ns[{p.metadata.namespace}]-policy[{p.metadata.name}]-rule[{i}]":
                 _policy(rule, issuers, options)
                 for p in chosen for i, rule in enumerate(p.spec.rules)}
        filters.append({"name": f"envoy.filters.http.rbac.{action.value.lower()}",
                        "typed_config": {"@type": RBAC, "rules": {"action": action.value, "policies": rules}}})
    return filters


@dataclass(frozen=True)
class _Options:
    """How rules translate, each field set by rbac_filters; all but the correct translation are misbehaviours.
    `negations` False: the not* fields are dropped; `hosts_ignore_case` False: hosts match case-sensitively;
    `not_namespaces_of`: notNamespaces is decided by this namespace (the workload's own) instead of the caller's
    certificate; `path_with_query`: paths match the whole :path, query string included; `unverified_principals`:
    a request principal pattern with no issuer to check it against matches every request."""

    negations: bool
    hosts_ignore_case: bool
    not_namespaces_of: str | None
    path_with_query: bool
    unverified_principals: bool = False


def _policy(rule: AuthorizationRule, issuers: list[str], options: _Options) -> dict[str, Any]:
    permissions = [_operation(to.operation, options) for to in rule.to] or [{"any": True}]
    principals = [_source(frm.source, issuers, options) for frm in rule.from_] or [{"any": True}]
    return {"permissions": [{"or_rules": {"rules": permissions}}],
            "principals": [{"or_ids": {"ids": principals}}]}


def _string(pattern: str) -> dict[str, Any]:
    if pattern == "*":
        return {"safe_regex": {"regex": ".+"}}
    if pattern.endswith("*"):
        return {"prefix": pattern[:-1]}
    if pattern.startswith("*"):
        return {"suffix": pattern[1:]}
    return {"exact": pattern}


def _wildcard_match(pattern: str, value: str) -> bool:
    """Istio's string match: exact, "*", a "prefix*" or a "*suffix"."""
    if pattern == "*":
        return True
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    if pattern.startswith("*"):
        return value.endswith(pattern[1:])
    return value == pattern


def _any_of(values: list[str], make: Any) -> dict[str, Any]:
    return {"or_rules": {"rules": [make(v) for v in values]}}


def _all_of(rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {"and_rules": {"rules": rules}} if rules else {"any": True}


def _operation(op: AuthorizationOperation, options: _Options) -> dict[str, Any]:
    def header(name: str) -> Any:
        return lambda v: {"header": {"name": name, "string_match": _string(v)}}

    def host(v: str) -> dict[str, Any]:
        # Istio's reference: hosts match the request's Host (:authority, as sent, port included) ignoring case.
        match = _string(v)
        if "safe_regex" not in match and options.hosts_ignore_case:  # ".+" for "*": nothing to fold
            match["ignore_case"] = True
        return {"header": {"name": ":authority", "string_match": match}}

    def path(v: str) -> dict[str, Any]:
        # As istiod: Envoy's url_path, the path without its query string and fragment.
        if options.path_with_query:
            return {"header": {"name": ":path", "string_match": _string(v)}}
        return {"url_path": {"path": _string(v)}}

    def port(v: str) -> dict[str, Any]:
        return {"destination_port": int(v)}

    parts = []
    for values, negated_values, make in ((op.methods, op.not_methods, header(":method")),
                                         (op.paths, op.not_paths, path),
                                         (op.hosts, op.not_hosts, host),
                                         (op.ports, op.not_ports, port)):
        if values:
            parts.append(_any_of(values, make))
        if negated_values and options.negations:
            parts.append({"not_rule": _any_of(negated_values, make)})
    return _all_of(parts)


def _principal_pattern(principal: str) -> dict[str, Any]:
    # Istio principals omit "spiffe://"; the peer certificate's URI SAN carries it.
    if principal == "*":
        return {"safe_regex": {"regex": ".+"}}
    if principal.startswith("*"):
        return {"suffix": principal[1:]}
    return _string(TRUST_DOMAIN_PREFIX + principal)


def _claim(issuer: str, claim: str, match: dict[str, Any]) -> dict[str, Any]:
    """A claim of a token verified for `issuer` (jwt_authn keeps its payload under the issuer's name)."""
    return {"metadata": {"filter": JWT_FILTER, "path": [{"key": issuer}, {"key": claim}], "value": match}}


def _request_principal(pattern: str, issuers: list[str]) -> dict[str, Any]:
    """`<iss>/<sub>` of a verified token: exact, `*` (any), `<iss>/*` or `*/<sub>` (capabilities refuses
    other wildcards). A principal names no issuer but one of the workload's RequestAuthentications: no match."""
    present: dict[str, Any] = {"present_match": True}
    candidates: list[tuple[str, dict[str, Any]]]
    if pattern == "*":
        candidates = [(iss, present) for iss in issuers]
    elif pattern.startswith("*/"):
        candidates = [(iss, {"string_match": {"exact": pattern[2:]}}) for iss in issuers]
    elif pattern.endswith("/*"):
        candidates = [(pattern[:-2], present)]
    else:
        # The issuer is the longest configured one the principal starts with (issuers are URLs with '/').
        known = [iss for iss in issuers if pattern.startswith(iss + "/")]
        iss = max(known, key=len) if known else pattern.rpartition("/")[0]
        candidates = [(iss, {"string_match": {"exact": pattern[len(iss) + 1:]}})]
    ids = [_claim(iss, "sub", match) for iss, match in candidates]
    return {"or_ids": {"ids": ids}} if ids else {"not_id": {"any": True}}


def _source(source: AuthorizationSource, issuers: list[str], options: _Options) -> dict[str, Any]:
    def principal(v: str) -> dict[str, Any]:
        return {"authenticated": {"principal_name": _principal_pattern(v)}}

    def namespace(v: str) -> dict[str, Any]:
        name = ".*" if v == "*" else re.escape(v.rstrip("*")) + (".*" if v.endswith("*") else "")
        if v.startswith("*") and v != "*":
            name = ".*" + re.escape(v[1:])
        return {"authenticated": {"principal_name": {"safe_regex": {"regex": f"spiffe://[^/]+/ns/{name}/sa/.+"}}}}

    def any_id(values: list[str], make: Any) -> dict[str, Any]:
        return {"or_ids": {"ids": [make(v) for v in values]}}

    def request_principal(v: str) -> dict[str, Any]:
        if options.unverified_principals and not issuers:  # misbehaviour: an unvalidated token counts
            return {"any": True}
        return _request_principal(v, issuers)

    parts = []
    for values, negated_values, make in ((source.principals, source.not_principals, principal),
                                         (source.request_principals, source.not_request_principals,
                                          request_principal),
                                         (source.namespaces, source.not_namespaces, namespace)):
        if values:
            parts.append(any_id(values, make))
        if not (negated_values and options.negations):
            continue
        if make is namespace and options.not_namespaces_of is not None:  # misbehaviour: the workload's namespace
            own = options.not_namespaces_of
            parts.append({"not_id": {"any": True}} if any(_wildcard_match(v, own) for v in negated_values)
                         else {"any": True})
        else:
            parts.append({"not_id": any_id(negated_values, make)})
    return {"and_ids": {"ids": parts}} if parts else {"any": True}
