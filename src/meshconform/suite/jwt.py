"""A run-local JWT issuer for the suite: an RSA key made in memory per test, its JWKS, and RS256 tokens.

Nothing is fixed in the repository and nothing is written to disk; the JWKS (public key only) goes into
the RequestAuthentication the test applies. JWS compact serialisation is a few lines over `cryptography`
(already a dependency), so no JWT library is added."""

from __future__ import annotations

import base64
import json
import secrets
import time
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _uint(value: int) -> str:
    return _b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def unverifiable_token(issuer: str, subject: str) -> str:
    """A well-formed RS256 token whose signature is no key's: what a caller can send where nothing verifies it."""
    header, claims = {"alg": "RS256", "typ": "JWT"}, {"iss": issuer, "sub": subject}
    return ".".join(_b64url(part) for part in (json.dumps(header).encode(), json.dumps(claims).encode(),
                                               b"not-a-signature"))


@dataclass(frozen=True)
class JwtIssuer:
    """Signs tokens as `issuer`; `kid` names the key in the JWKS."""

    issuer: str
    kid: str = field(default_factory=lambda: secrets.token_hex(8))
    key: rsa.RSAPrivateKey = field(default_factory=lambda: rsa.generate_private_key(65537, 2048), repr=False)

    def jwks(self) -> str:
        """The public key set, as Istio's `jwks` field takes it (a JSON string)."""
        numbers = self.key.public_key().public_numbers()
        return json.dumps({"keys": [{"kty": "RSA", "alg": "RS256", "use": "sig", "kid": self.kid,
                                     "n": _uint(numbers.n), "e": _uint(numbers.e)}]}, separators=(",", ":"))

    def forger(self) -> JwtIssuer:
        """Same issuer name and key id, another key: its tokens carry a signature the JWKS does not verify."""
        return JwtIssuer(self.issuer, self.kid)

    def token(self, subject: str, lifetime: float = 600.0, issuer: str | None = None,
              audience: str | None = None) -> str:
        """An RS256 token for `subject` (with an `aud` claim when `audience` is given); a negative lifetime
        gives one that expired that long ago."""
        now = int(time.time())
        claims: dict[str, object] = {"iss": issuer or self.issuer, "sub": subject, "iat": now - 5,
                                     "exp": now + int(lifetime)}
        if audience is not None:
            claims["aud"] = audience
        header = {"alg": "RS256", "typ": "JWT", "kid": self.kid}
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"
