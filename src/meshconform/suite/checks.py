"""Helpers the conformance tests share: unique markers and convergence probes."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace

from meshconform.platform.api import Vantage
from meshconform.suite.convergence import await_convergence
from meshconform.suite.manifests import MARKER_HEADER
from meshconform.suite.timeouts import Timeouts
from meshconform.traffic.model import Request, Response, new_request_id


def new_marker(test_id: str) -> str:
    return f"{test_id}-{uuid.uuid4().hex[:8]}"


def wait_for_marker(vantage: Vantage, request: Request, marker: str, timeouts: Timeouts) -> float:
    """Converged when the response carries this test's own marker N times in a row."""
    return wait_for(vantage, request, lambda reply: reply.headers.get(MARKER_HEADER) == marker, timeouts,
                    f"config {marker}")


def wait_for(vantage: Vantage, request: Request, predicate: Callable[[Response], bool], timeouts: Timeouts,
             what: str) -> float:
    """Converged when the reply to `request` meets `predicate` N times in a row."""
    return wait_for_all(vantage, [(request, predicate)], timeouts, what)


def wait_for_all(vantage: Vantage, expectations: Sequence[tuple[Request, Callable[[Response], bool]]],
                 timeouts: Timeouts, what: str) -> float:
    """Converged when every request of the batch meets its own expectation, N times in a row.
    A batch that only the new config can satisfy (e.g. one path now allowed, another now denied)
    makes the probe specific to it when no marker header is available."""
    def probe() -> tuple[bool, str]:
        batch = [replace(request, timeout=timeouts.request_timeout, request_id=new_request_id())
                 for request, _ in expectations]
        replies = vantage.send(batch)
        ok = all(bool(check(reply)) for (_, check), reply in zip(expectations, replies, strict=True))
        return ok, "; ".join(reply.summary() for reply in replies)
    return await_convergence(probe, timeouts, what)


def bookinfo_login(vantage: Vantage, user: str) -> str:
    """Log in to Bookinfo's product page as `user`; returns the session cookie to send back."""
    reply = vantage.send([Request("/login", method="POST", body=f"username={user}&passwd=password",
                                  headers={"content-type": "application/x-www-form-urlencoded"})])[0]
    cookie = reply.headers.get("set-cookie", "").split(";")[0]
    assert cookie, f"logging in as {user} set no cookie: {reply.summary()}"
    return cookie
