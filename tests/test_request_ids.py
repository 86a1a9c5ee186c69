"""Every send is its own request in the proxies' logs: a Request reused as a template (in one batch, or as a
module constant across tests) never makes two sends share an x-request-id. A shared id once let a test match
another test's access-log record (a 200 from an earlier test read as this test's 403)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from meshconform.traffic.model import Request, with_send_ids
from meshconform.traffic.sender import send_batch
from meshconform.traffic.transport import DirectTransport
from tests.conftest import recording_server


@pytest.fixture
def server() -> Iterator[tuple[str, list[str]]]:
    with recording_server(lambda request: request.headers.get("x-request-id", "")) as served:
        yield served


def test_a_reused_request_gets_a_fresh_id_per_send(server: tuple[str, list[str]]) -> None:
    address, seen = server
    template = Request("/", host="echo:8080")
    transport = DirectTransport(address)
    first = send_batch([template] * 3, transport)
    second = send_batch([template] * 3, transport)
    ids = [r.request_id for r in (*first, *second)]
    assert all(r.status == 200 for r in (*first, *second))
    assert len(set(ids)) == 6 and "" not in ids, ids
    assert sorted(seen) == sorted(ids), "the responses carry the ids the server received"


def test_a_pinned_id_is_kept() -> None:
    pinned = Request("/", request_id="rid-7")
    assert [r.request_id for r in with_send_ids([pinned, Request("/")])][0] == "rid-7"
    assert with_send_ids([Request("/")])[0].request_id
