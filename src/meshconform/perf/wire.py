"""The load generator's HTTP: one keep-alive HTTP/1.1 connection per user and target, straight through
geventhttpclient (the library under Locust's FastHttpUser).

Why not Locust's FastHttpSession: per request it parses the URL, runs a cookie jar, builds its own
statistics entry and wraps the response, which together cost several times the CPU of the request
itself (profiled against an Envoy answering directly: most of the generator's time went there), and
the generator's CPU is what caps its rate and what the saturation guard watches. Locust still runs the
users, the load shape, distributed mode and its statistics (the scenarios fire Locust's request event
themselves). Only the session cookie a scenario needs is kept (the signed-in reader's)."""

from __future__ import annotations

from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from urllib.parse import urlsplit

from geventhttpclient import HTTPClient

from meshconform.perf.spec import CONNECT_TIMEOUT_S, NETWORK_TIMEOUT_S


@dataclass(frozen=True)
class Reply:
    status: int  # 0: no HTTP reply (connection refused, reset, timeout)
    length: int
    error: str  # "" when 200 <= status < 400

    @property
    def ok(self) -> bool:
        return not self.error


@dataclass
class Connection:
    """One user's connection to one base URL (http only: every target is plain HTTP on loopback or
    a cluster's published node port; TLS would be measured through the gateway's HTTPS elsewhere)."""

    base_url: str
    host_header: str | None = None
    cookies: dict[str, str] = field(default_factory=dict)
    _client: HTTPClient | None = None

    def _open(self) -> HTTPClient:
        if self._client is None:
            parts = urlsplit(self.base_url)
            if parts.scheme != "http" or not parts.hostname:
                raise ValueError(f"load targets are plain http URLs, not {self.base_url!r}")
            self._client = HTTPClient(parts.hostname, parts.port or 80, concurrency=1,
                                      connection_timeout=CONNECT_TIMEOUT_S, network_timeout=NETWORK_TIMEOUT_S)
        return self._client

    def request(self, method: str, path: str, form: str | None = None) -> Reply:
        headers = {"Host": self.host_header} if self.host_header else {}
        if form is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        try:
            response = self._open().request(method, path, body=(form or "").encode(), headers=headers)
            try:
                body = response.read()
                cookies = response.get("set-cookie")
                for value in [cookies] if isinstance(cookies, str) else cookies or []:
                    self._keep(value)
            finally:
                response.release()
        except Exception as exc:  # refused, reset, timeout: the connection is done for; the next request reconnects
            self.close()
            return Reply(0, 0, f"{type(exc).__name__}: {exc}"[:120])
        status = response.status_code
        return Reply(status, len(body), "" if 200 <= status < 400 else f"HTTP {status}")

    def _keep(self, set_cookie: str) -> None:
        jar: SimpleCookie = SimpleCookie()
        jar.load(set_cookie)
        for name, morsel in jar.items():
            self.cookies[name] = morsel.value

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
