"""End-user authentication: RequestAuthentication verifies JWTs, AuthorizationPolicy uses their principal.

Istio's documented semantics (RequestAuthentication and AuthorizationPolicy references, the Authentication
Policy task): a request with no token passes authentication (only a policy requiring a request principal
turns it away, 403); a token that is present must be valid (signature, not expired, a configured issuer),
else 401; a valid token's principal `<iss>/<sub>` matches `requestPrincipals` (and `notRequestPrincipals`
excludes it); the token is not forwarded to the app unless forwardOriginalToken; a token whose `aud` is
not among `audiences` is refused (403 from Envoy's jwt_authn, which Istio configures); `fromHeaders`
replaces the default location (Authorization: Bearer) for its issuer, and a header without the prefix
carries no token. A token at a location only other issuers' rules read is invalid for them (an unknown
issuer there): 401. Keys are made by the test and live only in memory; the issuer names are fresh per
test. Each outcome is a deterministic rule, checked on every one of 20 requests (no share is claimed)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import pytest

from meshconform.suite.checks import wait_for_all
from meshconform.suite.jwt import JwtIssuer
from meshconform.suite.unit import conformance_test
from meshconform.traffic.model import Request, Response

MANIFEST = "authorization/jwt-echo.yaml"
HOST = "echo:8080"
SUBJECT = "alice"
BANNED = "mallory"
ASSERTION = "x-jwt-assertion"
PER_CASE = 20
DENIED_BODY = "RBAC: access denied"
# Envoy's jwt_authn (Istio's data plane) answers a token outside `audiences` with 403 and this body, every
# other invalid token with 401.
AUDIENCE_BODY = "Audiences in Jwt are not allowed"
RECENTLY_EXPIRED_S = 180  # a token that expired this long ago: past jwt_authn's 60 s clock skew, with room to spare


@dataclass(frozen=True)
class Issuers:
    first: JwtIssuer  # read from Authorization: Bearer, with audiences [audience]
    by_header: JwtIssuer  # read only from x-jwt-assertion, prefix 'Token '
    audience: str


@pytest.fixture
def jwt_issuers() -> Issuers:
    """Two issuers with fresh names and keys (in memory only), and an audience of the test's own."""
    tag = secrets.token_hex(4)
    return Issuers(JwtIssuer(f"https://issuer-{tag}.meshconform.test"),
                   JwtIssuer(f"https://header-issuer-{tag}.meshconform.test"), f"echo-{tag}")


def _values(jwt_issuers: Issuers) -> dict[str, object]:
    return {"issuer": jwt_issuers.first.issuer, "jwks": jwt_issuers.first.jwks(), "subject": SUBJECT,
            "banned": BANNED, "audience": jwt_issuers.audience, "header_issuer": jwt_issuers.by_header.issuer,
            "header_jwks": jwt_issuers.by_header.jwks()}


def _bearer(token: str | None) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"} if token else {}


def _header_reached_app(reply: Response, name: str) -> bool:
    data = reply.json()
    return isinstance(data, dict) and name in {k.lower() for k in (data.get("headers") or {})}


@conformance_test("jwt-request-authentication", "With a RequestAuthentication of two issuers (inline JWKS made by "
                  "the test): the first read from Authorization: Bearer with audiences [the test's], the second "
                  "only from x-jwt-assertion with prefix 'Token ' and forwardOriginalToken; and an ALLOW policy "
                  "(/open/* for notRequestPrincipals <iss>/mallory, /secure/* for requestPrincipals <iss>/alice "
                  "and the suffix */alice, /issuer/* for the prefix <second issuer>/*): no token passes /open and "
                  "gets 403 on /secure and /issuer; only the second issuer's alice passes /issuer; alice's valid "
                  "token passes /open and /secure (the first issuer's is not forwarded to the app, the second's "
                  "is); bob's gets 403 on /secure, "
                  "mallory's 403 on both; a wrong-audience token 403 from authentication (not RBAC); a token expired "
                  f"an hour or {RECENTLY_EXPIRED_S} s ago (past Envoy's 60 s clock skew), a "
                  "wrongly signed or wrong-issuer token, or the second issuer's token in Authorization: Bearer, "
                  "gets 401 on both; the second's under another "
                  f"prefix is no token ({PER_CASE} requests each, every one must agree).",
                  features={"JWTAuthentication"}, parallel=False, manifests=(MANIFEST,), values=_values)
def test_jwt(jwt_issuers, mesh_meshed_client, mesh_timeouts, mesh_result) -> None:
    issuer, by_header, audience = jwt_issuers.first, jwt_issuers.by_header, jwt_issuers.audience
    header_token = by_header.token(SUBJECT)
    headers: dict[str, dict[str, str]] = {
        "none": {},
        "valid-alice": _bearer(issuer.token(SUBJECT, audience=audience)),
        "valid-bob": _bearer(issuer.token("bob", audience=audience)),
        "valid-mallory": _bearer(issuer.token(BANNED, audience=audience)),
        # well past Envoy's 60 s clock-skew allowance (jwt_authn's default, which istiod keeps)
        "expired": _bearer(issuer.token(SUBJECT, lifetime=-3600, audience=audience)),
        # past it too, leaving two minutes for the test host's and the proxies' clocks to differ
        "expired-recently": _bearer(issuer.token(SUBJECT, lifetime=-RECENTLY_EXPIRED_S, audience=audience)),
        "wrongly-signed": _bearer(issuer.forger().token(SUBJECT, audience=audience)),
        "wrong-issuer": _bearer(issuer.token(SUBJECT, issuer="https://other.meshconform.test", audience=audience)),
        "wrong-audience": _bearer(issuer.token(SUBJECT, audience=f"{audience}-other")),
        "header-alice": {ASSERTION: f"Token {header_token}"},
        "header-in-authorization": _bearer(header_token),
        "header-other-prefix": {ASSERTION: f"Bearer {header_token}"},
    }
    # Converged when these issuers' keys and policy are in force: only this config lets alice's tokens
    # through /secure and turns a token its keys did not sign away. Every other case, the expired token's among
    # them, is judged below on what it gets: a mesh that accepts an expired token is reported as answering it
    # wrongly, not as never converging.
    wait_for_all(mesh_meshed_client, [
        (Request("/secure/probe", host=HOST, headers=headers["valid-alice"]), lambda r: r.status == 200),
        (Request("/secure/probe", host=HOST, headers=headers["header-alice"]), lambda r: r.status == 200),
        (Request("/secure/probe", host=HOST), lambda r: r.status == 403),
        (Request("/open/probe", host=HOST, headers=headers["wrongly-signed"]), lambda r: r.status == 401)],
        mesh_timeouts, "RequestAuthentication and policy in force")
    rejected = ("expired", "expired-recently", "wrongly-signed", "wrong-issuer", "header-in-authorization")
    expected = {  # (case, path) -> status
        ("none", "open"): 200, ("none", "secure"): 403,
        ("valid-alice", "open"): 200, ("valid-alice", "secure"): 200,
        ("valid-bob", "open"): 200, ("valid-bob", "secure"): 403,
        ("valid-mallory", "open"): 403, ("valid-mallory", "secure"): 403,
        ("header-alice", "open"): 200, ("header-alice", "secure"): 200,
        ("header-other-prefix", "open"): 200, ("header-other-prefix", "secure"): 403,
        ("wrong-audience", "open"): 403, ("wrong-audience", "secure"): 403,
        # requestPrincipals <second issuer>/*: its alice passes; the first issuer's alice and no token do not.
        ("header-alice", "issuer"): 200, ("valid-alice", "issuer"): 403, ("none", "issuer"): 403,
        **{(case, path): 401 for case in rejected for path in ("open", "secure")},
    }
    plan = [(case, path, Request(f"/{path}/{case}/{i}", host=HOST, headers=headers[case]))
            for (case, path) in expected for i in range(PER_CASE)]
    replies = mesh_meshed_client.send([request for _, _, request in plan], concurrency=20)
    observed: dict[str, dict[str, int]] = {}
    wrong: list[str] = []
    for (case, path, _), reply in zip(plan, replies, strict=True):
        key = f"{case} {path}"
        observed.setdefault(key, {})
        observed[key][str(reply.status)] = observed[key].get(str(reply.status), 0) + 1
        if reply.status != expected[(case, path)]:
            wrong.append(f"{key}: {reply.status} (expected {expected[(case, path)]})")
        elif reply.status == 403 and (body := AUDIENCE_BODY if case == "wrong-audience" else DENIED_BODY) \
                not in reply.body:
            wrong.append(f"{key}: 403 without '{body}'")
        elif reply.status == 200 and case.startswith("valid") and _header_reached_app(reply, "authorization"):
            wrong.append(f"{key}: the token reached the app (forwardOriginalToken is false)")
        elif reply.status == 200 and case == "header-alice" and not _header_reached_app(reply, ASSERTION):
            wrong.append(f"{key}: the token did not reach the app (forwardOriginalToken is true)")
    mesh_result.figure("statuses", observed)  # statuses only: tokens never go into the report
    assert not wrong, f"{len(wrong)} of {len(plan)} requests: {sorted(set(wrong))[:6]}"
