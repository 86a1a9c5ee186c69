"""RequestAuthentication as Envoy's jwt_authn filter on a proxy's HTTP listeners, placed before RBAC.

As istiod: every jwtRule of the RequestAuthentications selecting the workload (its namespace's and the root
namespace's) is one provider; a request may carry no token (`allow_missing`), but a token that is present
must verify against one of them (signature, expiry, issuer, audiences), else Envoy answers 401. A verified
token's payload goes to dynamic metadata under its issuer, where RBAC reads the request principal
`<iss>/<sub>` (authz.py). The token is removed before the app unless forwardOriginalToken."""

from __future__ import annotations

from typing import Any

from meshconform.meshapi.istio import JWTRule, RequestAuthentication
from meshconform.platform.local.misbehaviour import Misbehaviour, Misbehaviours
from meshconform.platform.local.translator.model import MeshSnapshot, Pod
from meshconform.platform.local.translator.selection import selecting

JWT_AUTHN = "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication"
FILTER_NAME = "envoy.filters.http.jwt_authn"


def request_authentications_for(mesh: MeshSnapshot, pod: Pod, misbehave: Misbehaviours = frozenset()
                                 ) -> list[RequestAuthentication]:
    return selecting(mesh.request_authentications, pod, misbehave)


def issuers_for(mesh: MeshSnapshot, pod: Pod, misbehave: Misbehaviours = frozenset()) -> list[str]:
    """Issuers whose verified tokens can give this workload a request principal."""
    return sorted({rule.issuer for ra in request_authentications_for(mesh, pod, misbehave)
                   for rule in ra.spec.jwt_rules})


# The jwt-expiry-unchecked misbehaviour's clock skew: ten years, so no token is ever too old (Envoy's default, which
# istiod keeps, is 60 s).
UNCHECKED_EXPIRY_SKEW_S = 10 * 365 * 24 * 3600


def _provider(rule: JWTRule, options: bool = True, expiry: bool = True) -> dict[str, Any]:
    """`options` False drops audiences, fromHeaders and forwardOriginalToken, `expiry` False lets expired tokens pass
    (misbehaviours)."""
    provider: dict[str, Any] = {"issuer": rule.issuer, "forward": rule.forward_original_token and options,
                                "payload_in_metadata": rule.issuer}
    if not expiry:
        provider["clock_skew_seconds"] = UNCHECKED_EXPIRY_SKEW_S
    if not options:
        rule = rule.model_copy(update={"audiences": [], "from_headers": []})
    if rule.audiences:
        provider["audiences"] = list(rule.audiences)
    if rule.jwks is not None:
        provider["local_jwks"] = {"inline_string": rule.jwks}
    if rule.from_headers:
        provider["from_headers"] = [{"name": h.name, "value_prefix": h.prefix} for h in rule.from_headers]
    return provider


def jwt_filters(mesh: MeshSnapshot, pod: Pod, misbehave: Misbehaviours = frozenset()) -> list[dict[str, Any]]:
    if Misbehaviour.JWT_IGNORED in misbehave:
        return []
    options = Misbehaviour.JWT_RULE_OPTIONS_IGNORED not in misbehave
    expiry = Misbehaviour.JWT_EXPIRY_UNCHECKED not in misbehave
    providers = {f"origins-{ra.metadata.namespace}-{ra.metadata.name}-{i}": _provider(rule, options, expiry)
                 for ra in request_authentications_for(mesh, pod, misbehave)
                 for i, rule in enumerate(ra.spec.jwt_rules)}
    if not providers:
        return []
    requirements: list[dict[str, Any]] = [{"provider_name": name} for name in providers]
    return [{"name": FILTER_NAME, "typed_config": {
        "@type": JWT_AUTHN, "providers": providers,
        "rules": [{"match": {"prefix": "/"},
                   "requires": {"requires_any": {"requirements": [*requirements, {"allow_missing": {}}]}}}]}}]
