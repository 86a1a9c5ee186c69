"""Helpers the conformance tests share: unique markers and convergence probes."""

from __future__ import annotations

import uuid

from meshconform.platform.api import Vantage
from meshconform.suite.convergence import await_convergence
from meshconform.suite.timeouts import Timeouts
from meshconform.traffic.model import Request

MARKER_HEADER = "x-meshconform-config"


def new_marker(test_id: str) -> str:
    return f"{test_id}-{uuid.uuid4().hex[:8]}"


def marker_headers(marker: str) -> str:
    """YAML for a route's `headers` that tags responses with this config's marker."""
    return f"{{response: {{set: {{{MARKER_HEADER}: {marker}}}}}}}"


def wait_for_marker(vantage: Vantage, request: Request, marker: str, timeouts: Timeouts) -> float:
    """Converged when the response carries this test's own marker N times in a row."""
    return wait_for(vantage, request, lambda reply: reply.headers.get(MARKER_HEADER) == marker, timeouts,
                    f"config {marker}")


def wait_for(vantage: Vantage, request: Request, predicate, timeouts: Timeouts, what: str) -> float:  # type: ignore[no-untyped-def]
    def probe() -> tuple[bool, str]:
        reply = vantage.send([Request(request.path, host=request.host, headers=request.headers,
                                      timeout=timeouts.request_timeout)])[0]
        return bool(predicate(reply)), reply.summary()
    return await_convergence(probe, timeouts, what)
