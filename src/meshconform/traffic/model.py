"""Requests a vantage point sends and the typed responses it gets back."""

from __future__ import annotations

import re
import ssl
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any


def new_request_id() -> str:
    return uuid.uuid4().hex


# What Request.max_tls_version may say, and the version each caps a client at (the senders' one table).
TLS_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


@dataclass(frozen=True)
class Request:
    """One HTTP request. `host` is a service host ("reviews:9080") from inside the mesh, or the
    virtual host sent to the gateway from outside; `path` may carry a query string. Every platform sends `host`
    exactly as given as the request's Host (:authority), case kept ("Echo:8080"), and resolves it ignoring case
    as DNS does."""

    path: str = "/"
    host: str | None = None
    method: str = "GET"
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None
    scheme: str = "http"
    timeout: float = 15.0
    ca_pem: str | None = None  # trust anchor for https to the gateway
    # False: https without checking the server's certificate (curl --insecure), to ask what a server demands of
    # a caller (a client certificate, for STRICT mTLS) rather than who the server is.
    verify_server: bool = True
    # "1.2" caps the caller's TLS version. A TLS 1.2 server takes or refuses the caller's certificate (or its want
    # of one) inside the handshake; a TLS 1.3 server refuses only after it, racing the request the caller sends.
    max_tls_version: str | None = None
    # "" (the default): every send of this request gets a fresh id, so a Request reused as a template, in one
    # batch or across tests, never makes two sends share an id in the proxies' logs. Set one to pin it.
    request_id: str = ""
    # False sends no x-request-id (the id stays local, for the caller's bookkeeping): a proxy must make one.
    send_request_id: bool = True
    # "address:port" to open the connection to instead of resolving `host` (curl's --connect-to): a name only
    # the mesh knows (a ServiceEntry host) reached through a sidecar, which routes by the Host header.
    connect_to: str | None = None
    # Header lines sent after `headers`, in this order, each a line of its own: a name repeated is sent several
    # times (("x-a", "1"), ("x-a", "2")), as a caller does that already carries a header a route then adds to.
    header_lines: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.max_tls_version is not None and self.max_tls_version not in TLS_VERSIONS:
            raise ValueError(f"Request.max_tls_version must be one of {sorted(TLS_VERSIONS)} or None, "
                             f"not {self.max_tls_version!r}")

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)  # its fields, shallow: asdict's deep copy cost more than the send

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Request:
        lines = tuple((str(name), str(value)) for name, value in data.get("header_lines") or ())
        return cls(**{**data, "header_lines": lines})


def with_send_ids(requests: Sequence[Request]) -> list[Request]:
    """The batch as it goes out: each request without a pinned id gets a fresh one (see Request.request_id)."""
    return [r if r.request_id else replace(r, request_id=new_request_id()) for r in requests]


_VERSIONED_POD = re.compile(r"^[a-z]+-(v\d+)-")


def version_of_pod(pod: str | None) -> str | None:
    """The version in a Deployment-made pod name ("reviews-v2-5b6c9-x7k" -> "v2")."""
    match = _VERSIONED_POD.match(pod or "")
    return match.group(1) if match else None


@dataclass(frozen=True)
class Response:
    request_id: str
    status: int | None  # None when no HTTP response came back
    error: str | None  # reset | refused | timeout | tls (handshake failed) | tls-certificate | other:<text>
    latency: float  # seconds, from send to the complete body
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    path: str = ""
    # The kept response headers (those in `headers`) as the lines that came back, in order: a header the answer
    # carried twice is here twice, where `headers` keeps one value per name.
    header_lines: tuple[tuple[str, str], ...] = ()

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def json(self) -> Any:
        import json
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    @property
    def answered_by(self) -> str | None:
        """The workload (pod) that produced a JSON answer: its `pod` (echo) or `podname` (reviews)."""
        data = self.json()
        if isinstance(data, dict):
            for key in ("pod", "podname"):
                if isinstance(data.get(key), str):
                    return str(data[key])
        return None

    @property
    def version(self) -> str | None:
        """The app version of a JSON answer: its `version` (echo), or the one in its pod name (reviews)."""
        data = self.json()
        if isinstance(data, dict) and isinstance(data.get("version"), str):
            return str(data["version"])
        return version_of_pod(self.answered_by)

    def header_values(self, name: str) -> list[str]:
        """Every value of a kept response header, one per line as it came back, in order."""
        wanted = name.lower()
        return [value for key, value in self.header_lines if key == wanted]

    def header_elements(self, name: str) -> list[str]:
        """A kept response header's list elements, however its lines were written (see `list_elements`)."""
        return list_elements(self.header_values(name))

    @property
    def echoed(self) -> EchoedRequest | None:
        """What the echo app that answered saw of the request on the wire (None: not an echo answer)."""
        return EchoedRequest.from_answer(self.json())

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)  # its fields, shallow: asdict's deep copy cost more than the send

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Response:
        lines = tuple((str(name), str(value)) for name, value in data.get("header_lines") or ())
        return cls(**{**data, "header_lines": lines})

    def summary(self) -> str:
        what = str(self.status) if self.status is not None else f"no response ({self.error})"
        return f"{self.path} -> {what} in {self.latency * 1000:.1f} ms by {self.answered_by or '?'}"


@dataclass(frozen=True)
class EchoedRequest:
    """The request as a testbed echo received it (both echoes report the same fields): every header line in order,
    names lowercased, so a header sent, added or set twice shows twice; the authority (Host) and the query string
    exactly as they arrived."""

    header_lines: tuple[tuple[str, str], ...]
    authority: str | None
    query: str

    @classmethod
    def from_answer(cls, data: Any) -> EchoedRequest | None:
        if not isinstance(data, dict) or not isinstance(data.get("header_lines"), list):
            return None
        lines = tuple((str(name).lower(), str(value)) for name, value in data["header_lines"])
        authority = data.get("authority")
        return cls(lines, authority if isinstance(authority, str) else None, str(data.get("query") or ""))

    def values(self, name: str) -> list[str]:
        """Every line's value of header `name`, in the order they arrived."""
        wanted = name.lower()
        return [value for key, value in self.header_lines if key == wanted]

    def elements(self, name: str) -> list[str]:
        """The header's list elements, however its lines were written (see `list_elements`)."""
        return list_elements(self.values(name))


def list_elements(values: Sequence[str]) -> list[str]:
    """A header field's list elements from its lines' values, in order: RFC 9110 section 5.3 makes several lines of
    one field the same as one line joining their values with commas (a proxy may write either), so ["a", "b"] and
    ["a, b"] both give ["a", "b"]. For fields whose values hold no commas of their own."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]
