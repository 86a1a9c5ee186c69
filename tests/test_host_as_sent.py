"""A Request's host is sent exactly as given, case kept, as the Host (:authority) a proxy routes and authorizes by:
AuthorizationPolicy hosts match it ignoring case, so a check must be able to send "Echo:8080". yarl (under aiohttp)
lowercases a URL's host; through a sidecar used as an HTTP proxy the absolute-form target is what Envoy takes
:authority from, so the sender builds the URL with the authority as written. Each way a request leaves (from outside
to a fixed address, through a sidecar, resolved without one) is checked at a loopback server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from meshconform.platform.local.transport import ResolverTransport, SidecarTransport
from meshconform.traffic.model import Request
from meshconform.traffic.sender import exact_url, send_batch
from meshconform.traffic.transport import DirectTransport
from tests.conftest import recording_server

Seen = list[tuple[str, str]]  # (request line, Host header) as they arrived


@pytest.fixture
def server() -> Iterator[tuple[str, Seen]]:
    with recording_server(lambda request: (request.requestline, request.headers.get("host", ""))) as served:
        yield served


def test_from_outside_the_host_header_keeps_its_case(server: tuple[str, Seen]) -> None:
    address, seen = server
    replies = send_batch([Request("/x", host="Echo:8080"), Request("/y", host="echo.Default.SVC:8080")],
                         DirectTransport(address), concurrency=1)
    assert [r.status for r in replies] == [200, 200]
    assert seen == [("GET /x HTTP/1.1", "Echo:8080"), ("GET /y HTTP/1.1", "echo.Default.SVC:8080")]


def test_through_a_sidecar_the_absolute_target_and_host_keep_their_case(server: tuple[str, Seen]) -> None:
    # The loopback server stands where the sidecar's outbound listener is: it gets the proxy form of the request.
    address, seen = server
    replies = send_batch([Request("/x?q=a b", host="Echo:8080"), Request("/y", host="echo:8080")],
                         SidecarTransport(f"http://{address}"), concurrency=1)
    assert [r.status for r in replies] == [200, 200]
    assert seen == [("GET http://Echo:8080/x?q=a+b HTTP/1.1", "Echo:8080"),
                    ("GET http://echo:8080/y HTTP/1.1", "echo:8080")]


def test_without_a_sidecar_the_name_resolves_ignoring_case(server: tuple[str, Seen], tmp_path: Path) -> None:
    address, seen = server
    table = tmp_path / "services.json"
    table.write_text(json.dumps({"echo.default.svc.cluster.local:8080": [address]}))
    replies = send_batch([Request("/x", host="Echo:8080")], ResolverTransport(table, "default"))
    assert replies[0].status == 200 and seen == [("GET /x HTTP/1.1", "Echo:8080")]


def test_exact_url_changes_only_the_hosts_case() -> None:
    assert str(exact_url("http://Echo:8080/a b?x=1 2")) == "http://Echo:8080/a%20b?x=1+2"
    assert str(exact_url("http://echo.default.svc.Cluster.Local:8080/")) == \
        "http://echo.default.svc.Cluster.Local:8080/"
    assert str(exact_url("http://127.0.0.1:15001/p?q")) == "http://127.0.0.1:15001/p?q"
    assert exact_url("https://Api.Example.com/").port == 443
