"""Helpers the conformance tests share: unique markers and convergence probes."""

from __future__ import annotations

import uuid
from dataclasses import replace

from meshconform.platform.api import Vantage
from meshconform.suite.convergence import await_convergence
from meshconform.suite.manifests import MARKER_HEADER
from meshconform.suite.timeouts import Timeouts
from meshconform.traffic.model import Request, new_request_id


def new_marker(test_id: str) -> str:
    return f"{test_id}-{uuid.uuid4().hex[:8]}"


def wait_for_marker(vantage: Vantage, request: Request, marker: str, timeouts: Timeouts) -> float:
    """Converged when the response carries this test's own marker N times in a row."""
    return wait_for(vantage, request, lambda reply: reply.headers.get(MARKER_HEADER) == marker, timeouts,
                    f"config {marker}")


def wait_for(vantage: Vantage, request: Request, predicate, timeouts: Timeouts, what: str) -> float:  # type: ignore[no-untyped-def]
    def probe() -> tuple[bool, str]:
        probe_request = replace(request, timeout=timeouts.request_timeout, request_id=new_request_id())
        reply = vantage.send([probe_request])[0]
        return bool(predicate(reply)), reply.summary()
    return await_convergence(probe, timeouts, what)


def bookinfo_login(vantage: Vantage, user: str) -> str:
    """Log in to Bookinfo's product page as `user`; returns the session cookie to send back."""
    reply = vantage.send([Request("/login", method="POST", body=f"username={user}&passwd=password",
                                  headers={"content-type": "application/x-www-form-urlencoded"})])[0]
    cookie = reply.headers.get("set-cookie", "").split(";")[0]
    assert cookie, f"logging in as {user} set no cookie: {reply.summary()}"
    return cookie
