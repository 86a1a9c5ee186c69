"""Redaction of secrets in everything a run writes for people (reports, evidence, logs, errors).

Follows kubectl: `kubectl describe secret` shows a Secret's kind, name, namespace and the keys of
its data with their sizes ("tls.key: 241 bytes"), never the values; client-go's debugging round
tripper logs an Authorization header as "Bearer <masked>". On top of Secrets, strings are scrubbed
of PEM private keys (also base64-encoded, as in a Secret's `data`), bearer tokens, JWT-looking
strings and token query parameters, wherever they appear: a traceback, an access-log line, an
error message quoting a manifest.

`redact(value)` walks JSON-like data (dicts, lists, strings) and returns a redacted copy;
`redact_text(text)` does the string part alone."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any, TypeVar, cast

import yaml

T = TypeVar("T")
MASK = "<masked>"
# Header names whose values are credentials (case-insensitive), as client-go masks Authorization.
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization"})
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"  # holds a Secret's data verbatim

# A PEM private key block (RSA, EC, PKCS#8, ENCRYPTED, OPENSSH...). The body may sit in a string
# escaped as JSON/YAML ("\n"), and may be cut short (a truncated message): then up to where it ends.
# A line break continues the body only into a line that is base64 through to its end (not "kind: x").
_B64_BODY = r"(?:[A-Za-z0-9+/=]|\r?\n[ \t]*(?=[A-Za-z0-9+/=]+(?:\r?\n|$|-----|\\[nr]|['\"]))|\\[nr])*"
_PEM_KEY = re.compile(r"-----BEGIN ([A-Z0-9 ]*PRIVATE KEY)-----" + _B64_BODY
                      + r"(?:-----END [A-Z0-9 ]*PRIVATE KEY-----)?")
# base64 of "-----BEGIN" (how a Secret's data holds a PEM); judged by what it decodes to.
_B64_PEM = re.compile(r"LS0tLS1CRUdJTi" + _B64_BODY)
# Bearer tokens and HTTP Basic credentials after the scheme name, in headers or free text.
# In free text a credential is 12 characters or more ("a Basic check" is prose); after an
# Authorization header name, any value is masked (_AUTH_HEADER).
_SCHEME_TOKEN = re.compile(r"(?i)\b(bearer|basic)(\s+)(?!<masked>)[A-Za-z0-9\-._~+/]{12,}=*")
# "authorization: xyz" / "Authorization=xyz" / '"authorization": "xyz"', with or without a scheme name (kept: it says
# what kind of credential it was; atomic, so a masked credential's scheme is never taken for the credential). In free
# text the value must look like one: a short word of lowercase letters is prose ("Authorization: Bearer with
# audiences").
_AUTH_HEADER = re.compile(r"(?i)\b((?:proxy-)?authorization)(['\"]?\s*[:=]\s*['\"]?(?>(?:(?:bearer|basic)\s+)?))"
                          r"(?!<masked>)(?-i:(?![a-z]{1,15}\b))([^\s'\",;}]+)")
# A JWT (header.payload.signature, base64url; the header always starts '{"', base64 "eyJ").
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
# OAuth-style tokens in a query string.
_QUERY_TOKEN = re.compile(r"(?i)([?&](?:access_token|id_token|refresh_token|token)=)([^&\s'\"#]+)")


_REDACTED_SIZE = re.compile(r"^<redacted: \d+ bytes>$")


def _size_note(value: Any, encoded: bool) -> str:
    text = str(value)
    if _REDACTED_SIZE.match(text):  # already redacted: redacting twice changes nothing
        return text
    return f"<redacted: {_b64_size(text) if encoded else len(text.encode())} bytes>"


def _b64_size(value: str) -> int:
    try:
        return len(base64.b64decode(value, validate=False))
    except (binascii.Error, ValueError):
        return len(value.encode())


def _encoded_private_key(match: re.Match[str]) -> str:
    text = match.group(0)
    compact = re.sub(r"\s|\\[nr]", "", text)
    head = compact[: len(compact) // 4 * 4][:96]  # enough to read the BEGIN line, even if cut short
    try:
        decoded = base64.b64decode(head, validate=False)
    except (binascii.Error, ValueError):
        return text
    if b"PRIVATE KEY" not in decoded:
        return text  # a certificate: public
    return f"<redacted base64 private key, {len(compact)} chars>"


def redact_text(text: str) -> str:
    """`text` with private keys, bearer/basic credentials, JWTs and token parameters masked."""
    if not text:
        return text
    text = _PEM_KEY.sub(lambda m: f"-----BEGIN {m.group(1)}----- <redacted> -----END {m.group(1)}-----", text)
    text = _B64_PEM.sub(_encoded_private_key, text)
    text = _SCHEME_TOKEN.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    text = _AUTH_HEADER.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    text = _QUERY_TOKEN.sub(lambda m: f"{m.group(1)}{MASK}", text)
    text = _JWT.sub(f"{MASK} (JWT)", text)
    if "kind: Secret" in text:
        text = _redact_yaml_text(text)
    return text


def _redact_yaml_text(text: str) -> str:
    """A string holding a whole Secret manifest (YAML): redacted structurally, as YAML again."""
    try:
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError:
        return text
    if not any(_is_secret(d) for d in documents):
        return text
    return yaml.safe_dump_all([redact(d) for d in documents], sort_keys=False)


def _is_secret(value: Any) -> bool:
    return isinstance(value, Mapping) and value.get("kind") == "Secret" and (
        "data" in value or "stringData" in value)


def redact_secret(secret: Mapping[str, Any]) -> dict[str, Any]:
    """A Secret as `kubectl describe` shows it: identity, type, keys with their sizes in bytes."""
    result: dict[str, Any] = {}
    for key, value in secret.items():
        if key == "data" and isinstance(value, Mapping):
            result[key] = {k: _size_note(v, encoded=True) for k, v in value.items()}
        elif key == "stringData" and isinstance(value, Mapping):
            result[key] = {k: _size_note(v, encoded=False) for k, v in value.items()}
        elif key == "metadata" and isinstance(value, Mapping):
            annotations = value.get("annotations")
            result[key] = redact(dict(value))
            if isinstance(annotations, Mapping) and LAST_APPLIED in annotations:
                result[key]["annotations"] = {**result[key]["annotations"], LAST_APPLIED: "<redacted>"}
        else:
            result[key] = redact(value)
    return result


def redact(value: T) -> T:
    """A redacted copy of JSON-like data (see the module docstring), of the same shape; other
    objects are kept as they are."""
    return cast(T, _redact(value))


def _redact(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if _is_secret(value):
        return redact_secret(value)
    if isinstance(value, Mapping):
        return {key: _header_value(item) if isinstance(item, str) and str(key).lower() in CREDENTIAL_HEADERS
                else _redact(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_redact(item) for item in value]
    if isinstance(value, tuple):
        return tuple(_redact(item) for item in value)
    return value


def _header_value(value: str) -> str:
    """An Authorization value: the scheme stays (what kind of credential), the credential goes."""
    scheme, _, credential = value.strip().partition(" ")
    return f"{scheme} {MASK}" if credential else MASK
