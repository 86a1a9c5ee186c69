"""The load generator's HTTP connection (perf/wire.py) against a loopback server: keep-alive (one TCP
connection for many requests), the Host header of a target, the session cookie a login sets, errors
named by their cause."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest

from meshconform.perf.wire import Connection
from tests.conftest import loopback_server


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[tuple[str, str, str, int]] = []  # (path, Host, Cookie, client port)

    def _answer(self, status: int, extra: dict[str, str] | None = None) -> None:
        _Handler.seen.append((self.path, self.headers.get("Host", ""), self.headers.get("Cookie", ""),
                              self.client_address[1]))
        body = b"hello"
        self.send_response(status)
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._answer(503 if self.path == "/fail" else 200)

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self._answer(302, {"Set-Cookie": "session=abc123; Path=/", "Location": "/productpage"})

    def log_message(self, *_: object) -> None:
        return None


@pytest.fixture()
def server() -> Iterator[str]:
    _Handler.seen = []
    with loopback_server(_Handler) as address:
        yield f"http://{address}"


def test_keep_alive_host_header_and_session_cookie(server: str) -> None:
    connection = Connection(server, host_header="productpage:9080")
    try:
        first = connection.request("GET", "/productpage")
        login = connection.request("POST", "/login", "username=jason")
        after = connection.request("GET", "/productpage")
        assert after.ok
        failed = connection.request("GET", "/fail")
    finally:
        connection.close()
    assert (first.status, first.length, first.ok) == (200, 5, True)
    assert login.ok and login.status == 302, "a redirect is a success, not followed"
    assert (failed.status, failed.error, failed.ok) == (503, "HTTP 503", False)
    assert [s[1] for s in _Handler.seen] == ["productpage:9080"] * 4
    assert [s[2] for s in _Handler.seen] == ["", "", "session=abc123", "session=abc123"]
    assert len({s[3] for s in _Handler.seen}) == 1, "all four requests rode one keep-alive connection"


def test_a_refused_connection_is_an_error_named_by_its_cause(server: str) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]  # nobody listens here once the probe closes
    dead = Connection(f"http://127.0.0.1:{closed_port}")
    reply = dead.request("GET", "/")
    assert reply.status == 0 and not reply.ok and "Refused" in reply.error, reply
    live = Connection(server)
    try:
        assert live.request("GET", "/").ok
    finally:
        live.close()


def test_only_plain_http_targets() -> None:
    reply = Connection("https://127.0.0.1:1").request("GET", "/")
    assert not reply.ok and "plain http" in reply.error
