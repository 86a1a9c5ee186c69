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

    def __post_init__(self) -> None:
        if self.max_tls_version is not None and self.max_tls_version not in TLS_VERSIONS:
            raise ValueError(f"Request.max_tls_version must be one of {sorted(TLS_VERSIONS)} or None, "
                             f"not {self.max_tls_version!r}")

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)  # its fields, shallow: asdict's deep copy cost more than the send

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Request:
        return cls(**data)


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

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)  # its fields, shallow: asdict's deep copy cost more than the send

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Response:
        return cls(**data)

    def summary(self) -> str:
        what = str(self.status) if self.status is not None else f"no response ({self.error})"
        return f"{self.path} -> {what} in {self.latency * 1000:.1f} ms by {self.answered_by or '?'}"
