"""The local platform's Envoy admin client: a kept-alive connection is reused, reopened once when the proxy
closed it, and an error status raises as urlopen's does (against a stand-in admin server on loopback)."""

from __future__ import annotations

import threading
import urllib.error
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from meshconform.platform.local.envoy import Admin


class _StandIn(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    connections: list[object] = []
    close_after_next = False

    def setup(self) -> None:
        super().setup()
        type(self).connections.append(self.client_address)

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        status, body = (503, b"PRE_INITIALIZING") if self.path == "/ready" else (200, self.path.encode())
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        if type(self).close_after_next:  # closed without saying so, as an idle connection times out
            type(self).close_after_next = False
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def admin_server() -> Iterator[tuple[str, int]]:
    _StandIn.connections = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _StandIn)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield "127.0.0.1", server.server_address[1]
    server.shutdown()
    server.server_close()


def test_a_kept_alive_admin_asks_every_poll_on_one_connection(admin_server: tuple[str, int]) -> None:
    admin = Admin(*admin_server, keep_alive=True)
    try:
        assert [admin.get(f"/stats?n={i}") for i in range(5)] == [f"/stats?n={i}" for i in range(5)]
    finally:
        admin.close()
    assert len(_StandIn.connections) == 1


def test_a_connection_the_proxy_closed_is_opened_again(admin_server: tuple[str, int]) -> None:
    admin = Admin(*admin_server, keep_alive=True)
    try:
        _StandIn.close_after_next = True
        assert admin.get("/first") == "/first"
        assert admin.get("/second") == "/second"
    finally:
        admin.close()
    assert len(_StandIn.connections) == 2


@pytest.mark.parametrize("keep_alive", [True, False])
def test_an_error_status_raises_as_urlopen_does(admin_server: tuple[str, int], keep_alive: bool) -> None:
    admin = Admin(*admin_server, keep_alive=keep_alive)
    try:
        with pytest.raises(urllib.error.HTTPError) as raised:
            admin.get("/ready")
        assert raised.value.code == 503
        assert not admin.ready()
    finally:
        admin.close()
