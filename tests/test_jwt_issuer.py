"""The suite's run-local JWT issuer: its tokens verify against its own JWKS only, carry the claims asked for,
and are masked wherever the report could show them."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from meshconform.report.redact import redact, redact_text
from meshconform.suite.jwt import JwtIssuer, unverifiable_token


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _verify(token: str, jwks: str) -> dict:
    """RS256 verification against a JWKS, as a verifier does it (raises InvalidSignature)."""
    header_b64, claims_b64, signature_b64 = token.split(".")
    header = json.loads(_b64decode(header_b64))
    key = next(k for k in json.loads(jwks)["keys"] if k["kid"] == header["kid"])
    public = rsa.RSAPublicNumbers(int.from_bytes(_b64decode(key["e"]), "big"),
                                  int.from_bytes(_b64decode(key["n"]), "big")).public_key()
    public.verify(_b64decode(signature_b64), f"{header_b64}.{claims_b64}".encode(), padding.PKCS1v15(),
                  hashes.SHA256())
    return dict(json.loads(_b64decode(claims_b64)))


def test_tokens_verify_against_the_issuers_jwks_with_the_claims_asked_for() -> None:
    issuer = JwtIssuer("https://issuer.test")
    claims = _verify(issuer.token("alice"), issuer.jwks())
    assert claims["iss"] == "https://issuer.test" and claims["sub"] == "alice" and claims["exp"] > claims["iat"]
    assert _verify(issuer.token("alice", lifetime=-3600), issuer.jwks())["exp"] < claims["iat"]
    assert _verify(issuer.token("alice", issuer="https://other.test"), issuer.jwks())["iss"] == "https://other.test"
    assert "d" not in json.loads(issuer.jwks())["keys"][0], "the JWKS carries the public key only"


def test_a_forgers_token_does_not_verify() -> None:
    issuer = JwtIssuer("https://issuer.test")
    with pytest.raises(InvalidSignature):
        _verify(issuer.forger().token("alice"), issuer.jwks())


def test_keys_are_fresh_per_issuer() -> None:
    assert JwtIssuer("https://a.test").jwks() != JwtIssuer("https://a.test").jwks()


def test_tokens_are_masked_in_what_a_report_can_hold() -> None:
    token = JwtIssuer("https://issuer.test").token("alice")
    echoed = json.dumps({"headers": {"authorization": f"Bearer {token}"}})
    evidence = redact({"request": {"headers": {"authorization": f"Bearer {token}"}}, "body": echoed})
    assert token not in json.dumps(evidence)
    assert token not in redact_text(f"sent {token} to echo")


def test_an_unverifiable_token_is_well_formed_and_names_its_issuer_and_subject() -> None:
    parts = unverifiable_token("https://nobody.test", "someone").split(".")
    decoded = [_b64decode(part) for part in parts]
    assert len(parts) == 3 and json.loads(decoded[0])["alg"] == "RS256"
    assert json.loads(decoded[1]) == {"iss": "https://nobody.test", "sub": "someone"}
    assert decoded[2] == b"not-a-signature"
