"""End-user authentication: RequestAuthentication verifies JWTs, AuthorizationPolicy uses their principal.

Istio's documented semantics (RequestAuthentication and AuthorizationPolicy references, the Authentication
Policy task): a request with no token passes authentication (only a policy requiring a request principal
turns it away, 403); a token that is present must be valid (signature, not expired, a configured issuer),
else 401; a valid token's principal `<iss>/<sub>` matches `requestPrincipals`; the token is not forwarded
to the app unless forwardOriginalToken. Keys are made by the test and live only in memory; the issuer name is
fresh per test. Each outcome is a deterministic rule, checked on every one of 20 requests (no share is
claimed)."""

from __future__ import annotations

import secrets

from meshconform.suite.checks import wait_for_all
from meshconform.suite.jwt import JwtIssuer
from meshconform.suite.unit import conformance_test
from meshconform.traffic.model import Request, Response

MANIFEST = "authorization/jwt-echo.yaml"
HOST = "echo:8080"
SUBJECT = "alice"
PER_CASE = 20
DENIED_BODY = "RBAC: access denied"


def _bearer(token: str | None) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"} if token else {}


def _token_reached_app(reply: Response) -> bool:
    data = reply.json()
    return isinstance(data, dict) and "authorization" in (data.get("headers") or {})


@conformance_test("jwt-request-authentication", "With a RequestAuthentication (inline JWKS made by the test) and "
                  "an ALLOW policy (/open/* for anyone, /secure/* for requestPrincipals <iss>/alice): no token "
                  "passes /open and gets 403 on /secure; a valid token for alice passes both and is not "
                  "forwarded to the app; a valid token for bob gets 403 on /secure; an expired, wrongly signed "
                  f"or wrong-issuer token gets 401 on both ({PER_CASE} requests each, every one must agree).",
                  features={"JWTAuthentication"}, parallel=False, manifests=(MANIFEST,))
def test_jwt(mesh_config, mesh_meshed_client, mesh_timeouts, mesh_result) -> None:  # type: ignore[no-untyped-def]
    issuer = JwtIssuer(f"https://issuer-{secrets.token_hex(4)}.meshconform.test")
    mesh_config.apply_manifest(MANIFEST, issuer=issuer.issuer, jwks=issuer.jwks(), subject=SUBJECT)
    tokens = {
        "none": None,
        "valid-alice": issuer.token(SUBJECT),
        "valid-bob": issuer.token("bob"),
        "expired": issuer.token(SUBJECT, lifetime=-3600),  # well past Envoy's 60 s clock-skew allowance
        "wrongly-signed": issuer.forger().token(SUBJECT),
        "wrong-issuer": issuer.token(SUBJECT, issuer="https://other.meshconform.test"),
    }
    # Converged when this issuer's keys and policy are in force: only this config lets alice's token
    # through /secure and turns the expired one away.
    wait_for_all(mesh_meshed_client, [
        (Request("/secure/probe", host=HOST, headers=_bearer(tokens["valid-alice"])), lambda r: r.status == 200),
        (Request("/secure/probe", host=HOST), lambda r: r.status == 403),
        (Request("/open/probe", host=HOST, headers=_bearer(tokens["expired"])), lambda r: r.status == 401)],
        mesh_timeouts, "RequestAuthentication and policy in force")
    expected = {  # (case, path) -> status
        ("none", "open"): 200, ("none", "secure"): 403,
        ("valid-alice", "open"): 200, ("valid-alice", "secure"): 200,
        ("valid-bob", "open"): 200, ("valid-bob", "secure"): 403,
        **{(case, path): 401 for case in ("expired", "wrongly-signed", "wrong-issuer") for path in ("open", "secure")},
    }
    plan = [(case, path, Request(f"/{path}/{case}/{i}", host=HOST, headers=_bearer(tokens[case])))
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
        elif reply.status == 403 and DENIED_BODY not in reply.body:
            wrong.append(f"{key}: 403 without '{DENIED_BODY}'")
        elif reply.status == 200 and case != "none" and _token_reached_app(reply):
            wrong.append(f"{key}: the token reached the app (forwardOriginalToken is false)")
    mesh_result.figure("statuses", observed)  # statuses only: tokens never go into the report
    assert not wrong, f"{len(wrong)} of {len(plan)} requests: {sorted(set(wrong))[:6]}"
