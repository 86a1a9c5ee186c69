"""A caller's TLS options, the same in both senders (the local platform's aiohttp sender and the cluster agent):
`verify_server=False` skips checking the server (curl --insecure), `max_tls_version="1.2"` caps the version, and no
certificate is ever offered. Checked against loopback TLS servers, one of which demands a client certificate as a
STRICT sidecar does: the refusal must come inside the handshake, as the error "tls"."""

from __future__ import annotations

import ssl
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from meshconform.platform.kube import agent
from meshconform.suite.tls import ServerCredential, issue_server_credential
from meshconform.traffic.model import Request, Response
from meshconform.traffic.sender import send_batch
from meshconform.traffic.transport import DirectTransport

HOST = "echo.example.test"


def _via_sender(request: Request, address: str) -> Response:
    return send_batch([request], DirectTransport(address), concurrency=1)[0]


def _via_agent(request: Request, address: str) -> Response:
    # The agent connects to `connect_to` (or the host) and sends the host as Host, as in a pod.
    sent = {**Request.to_json(request), "request_id": "r1", "connect_to": address}
    return Response.from_json(agent.send_one(sent, reuse=False, local=agent._Connections()))


SENDERS: dict[str, Callable[[Request, str], Response]] = {"sender": _via_sender, "agent": _via_agent}


@contextmanager
def tls_server(credential: ServerCredential, require_client_certificate: bool) -> Iterator[tuple[str, list[str]]]:
    """A loopback HTTPS server answering 200; yields its address and the TLS version of each request served."""
    versions: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
            versions.append(str(self.connection.version()))  # type: ignore[attr-defined]
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory() as folder:
        chain, key = Path(folder, "cert.pem"), Path(folder, "key.pem")
        chain.write_text(credential.cert_pem)
        key.write_text(credential.key_pem)
        key.chmod(0o600)
        context.load_cert_chain(chain, key)
    if require_client_certificate:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cadata=credential.ca_pem)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    # A failed handshake raises in accept(); socketserver drops that connection and serves on.
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", versions
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def credential() -> ServerCredential:
    return issue_server_credential(HOST)


@pytest.mark.parametrize("send", SENDERS.values(), ids=list(SENDERS))
def test_without_a_certificate_a_demanding_server_refuses_the_handshake(send: Any,
                                                                        credential: ServerCredential) -> None:
    with tls_server(credential, require_client_certificate=True) as (address, served):
        reply = send(Request("/", host=HOST, scheme="https", verify_server=False, max_tls_version="1.2"), address)
    assert (reply.status, reply.error) == (None, "tls"), reply
    assert served == []


@pytest.mark.parametrize("send", SENDERS.values(), ids=list(SENDERS))
def test_the_server_is_checked_unless_told_not_to(send: Any, credential: ServerCredential) -> None:
    with tls_server(credential, require_client_certificate=False) as (address, served):
        untrusted = send(Request("/", host=HOST, scheme="https"), address)
        trusted = send(Request("/", host=HOST, scheme="https", ca_pem=credential.ca_pem), address)
        unchecked = send(Request("/", host=HOST, scheme="https", verify_server=False), address)
        capped = send(Request("/", host=HOST, scheme="https", verify_server=False, max_tls_version="1.2"), address)
    # The caller rejecting an unknown server's certificate is its own error, not the server refusing.
    assert (untrusted.status, untrusted.error) == (None, "tls-certificate"), untrusted
    assert [trusted.status, unchecked.status, capped.status] == [200, 200, 200]
    assert served == ["TLSv1.3", "TLSv1.3", "TLSv1.2"]


def test_an_unknown_tls_version_is_refused_when_the_request_is_made() -> None:
    with pytest.raises(ValueError, match=r"max_tls_version must be one of \['1.2', '1.3'\] or None, not '1.1'"):
        Request("/", scheme="https", max_tls_version="1.1")
