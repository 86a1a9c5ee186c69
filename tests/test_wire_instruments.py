"""The test instruments report what was on the wire. Both senders (traffic/sender.py, used by the local platform's
clients and from outside, and the cluster agent's) send a Request's repeated header lines each as a line of its own,
in order, and hand back every line of a repeated response header; both echoes (bookinfo/apps/echo.py and the agent's)
report every request header line in order, the authority as it arrived and the raw query. The one-value views
(`Response.headers`, the echo's `headers`) keep working beside them. A mesh that adds a second line where it should
replace, or replaces where it should append, is visible only through these."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from meshconform.platform.kube import agent as agent_module
from meshconform.traffic.model import EchoedRequest, Request, Response, with_send_ids
from meshconform.traffic.sender import send_batch
from meshconform.traffic.transport import PlainTransport
from tests.conftest import loopback_server

SENDERS = ("sender", "agent")


def _send(sender: str, requests: Sequence[Request]) -> list[Response]:
    if sender == "sender":
        return send_batch(requests, PlainTransport(), concurrency=2)
    batch = [r.to_json() for r in with_send_ids(requests)]
    return [Response.from_json(r) for r in agent_module.send_batch(batch, 2, True)]


@pytest.mark.parametrize("sender", SENDERS)
def test_an_echo_reports_every_header_line_the_authority_and_the_raw_query(
        echo: tuple[str, int, Path], sender: str) -> None:
    kind, port, _ = echo
    request = Request("/wire/a?b=2&a=x%20y&a=1", host=f"127.0.0.1:{port}", headers={"x-single": "one"},
                      header_lines=(("x-repeated", "first"), ("X-Repeated", "second"), ("x-between", "b"),
                                    ("x-repeated", "third, fourth")))
    reply = _send(sender, [request, Request("/plain", host=f"127.0.0.1:{port}", method="POST")])
    seen = reply[0].echoed
    assert seen is not None, reply[0].summary()
    assert seen.values("x-repeated") == ["first", "second", "third, fourth"], (kind, seen.header_lines)
    # The lines in the order they arrived, the repeated ones around another.
    names = [name for name, _ in seen.header_lines if name in ("x-repeated", "x-between")]
    assert names == ["x-repeated", "x-repeated", "x-between", "x-repeated"]
    assert seen.elements("x-repeated") == ["first", "second", "third", "fourth"]
    assert seen.values("x-single") == ["one"] and seen.values("absent") == []
    assert seen.authority == f"127.0.0.1:{port}"
    assert seen.query == "b=2&a=x%20y&a=1"
    # The one-value view beside it, as the checks have always read it.
    assert reply[0].json()["headers"]["x-single"] == "one"
    plain = reply[1].echoed
    assert plain is not None and plain.query == "" and plain.values("x-repeated") == []
    assert reply[1].status == 200 and reply[1].json()["method"] == "POST"


class _RepeatedResponseHeaders(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 (stdlib naming)
        self.send_response(200)
        for name, value in (("x-echo-version", "v1"), ("x-meshconform-added", "a"), ("x-echo-version", "v9"),
                            ("x-not-kept", "n"), ("x-meshconform-added", "b")):
            self.send_header(name, value)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (stdlib signature)
        pass


@pytest.fixture
def repeating_server() -> Iterator[str]:
    with loopback_server(_RepeatedResponseHeaders) as address:
        yield address


@pytest.mark.parametrize("sender", SENDERS)
def test_a_sender_hands_back_every_line_of_a_repeated_response_header(repeating_server: str, sender: str) -> None:
    reply = _send(sender, [Request("/", host=repeating_server)])[0]
    assert reply.status == 200, reply.summary()
    assert reply.header_values("x-echo-version") == ["v1", "v9"]
    assert reply.header_values("X-Meshconform-Added") == ["a", "b"]
    assert reply.header_values("x-not-kept") == []  # only the kept headers, as `headers`
    assert reply.headers["x-echo-version"] in ("v1", "v9")  # the one-value view keeps one of them
    # Through the JSON a batch travels in (the local client app, the agent's control API), unchanged.
    assert Response.from_json(reply.to_json()).header_values("x-echo-version") == ["v1", "v9"]


def test_echoed_request_reads_only_echo_answers() -> None:
    assert EchoedRequest.from_answer({"pod": "x"}) is None and EchoedRequest.from_answer("text") is None
    seen = EchoedRequest.from_answer({"header_lines": [["X-A", "1, 2"], ["x-a", "3"]], "authority": "h:1",
                                      "query": "q=1"})
    assert seen is not None and seen.values("x-a") == ["1, 2", "3"] and seen.elements("X-A") == ["1", "2", "3"]


def test_a_request_with_header_lines_survives_its_json() -> None:
    request = Request("/", host="h:1", header_lines=(("a", "1"), ("a", "2")))
    assert Request.from_json(request.to_json()) == request
    assert Request.from_json({**request.to_json(), "header_lines": [["a", "1"], ["a", "2"]]}) == request


def test_fail_next_fails_exactly_that_many_requests(echo: tuple[str, int, Path]) -> None:
    """`POST /meshconform/fail-next/<n>`: the instance answers 500 to its next n requests, then heals (the outlier
    check counts an ejection threshold exactly with it); `fail-for/0` heals it at once."""
    kind, port, _ = echo
    host = f"127.0.0.1:{port}"
    control = _send("sender", [Request("/meshconform/fail-next/3", host=host, method="POST")])[0]
    assert control.status == 200, control.summary()
    statuses = [_send("sender", [Request(f"/r/{i}", host=host)])[0].status for i in range(5)]
    assert statuses == [500, 500, 500, 200, 200], kind
    _send("sender", [Request("/meshconform/fail-next/5", host=host, method="POST")])
    _send("sender", [Request("/meshconform/fail-for/0", host=host, method="POST")])
    assert _send("sender", [Request("/r/healed", host=host)])[0].status == 200, kind
