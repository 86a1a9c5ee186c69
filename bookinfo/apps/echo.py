"""echo: answers with what it received and who it is, for precise checks.

`/status/<code>` answers that code; `/grpc-status/<code>` adds that gRPC status to the response headers;
`/delay/<ms>` waits first. `/first/<n>/...` limits those to the first n
arrivals of a request id at this instance (later tries of the same request, e.g. retries, answer 200 at once), so
a test can fail or slow down chosen attempts. `POST /meshconform/fail-for/<ms>` makes the one instance that
receives it answer 500 to everything else for that long (it heals itself, so nothing is left failing). Every
request is logged with its id; one its caller's proxy gives up on (a timeout) stops there and is logged at once,
with status 499."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import OrderedDict

from aiohttp import web

from meshconform.bookinfo.apps.common import NAMESPACE, POD, VERSION, make_app, serve

SERVICE = os.environ.get("MESHCONFORM_SERVICE", "echo")
# A testbed workload may answer every request with one status (the mirror answers 500 so that
# any leak of its answers to callers is visible).
FORCED_STATUS = int(os.environ.get("ECHO_STATUS", "0")) or None
FAIL_CONTROL = "/meshconform/fail-for/"
failing_until = 0.0  # monotonic time until which this instance fails (set through FAIL_CONTROL)
ARRIVALS: OrderedDict[str, int] = OrderedDict()  # tries seen per request id, the newest ARRIVALS_KEPT
ARRIVALS_KEPT = 10_000


def later_try(parts: list[str], request_id: str | None) -> bool:
    """Whether `/first/<n>/` in the path exempts this arrival: the request id has been seen n times already.
    Every arrival is counted (the kube agent does the same)."""
    seen = ARRIVALS.pop(request_id, 0) + 1 if request_id else 1
    if request_id:
        ARRIVALS[request_id] = seen
        while len(ARRIVALS) > ARRIVALS_KEPT:
            ARRIVALS.popitem(last=False)
    limits = [int(parts[i + 1]) for i in range(len(parts) - 1) if parts[i] == "first" and parts[i + 1].isdigit()]
    return bool(limits) and seen > limits[0]


def tail_number(parts: list[str], name: str) -> int | None:
    """The number a path ends with after the segment `name` (`.../status/503` -> 503 for "status")."""
    return int(parts[-1]) if len(parts) >= 2 and parts[-2] == name and parts[-1].isdigit() else None


def _fail_control(request: web.Request) -> float | None:
    """Seconds to fail for, when the request is the failure control (POST /meshconform/fail-for/<ms>)."""
    tail = request.path[len(FAIL_CONTROL):] if request.path.startswith(FAIL_CONTROL) else ""
    return int(tail) / 1000 if request.method == "POST" and tail.isdigit() else None


async def echo(request: web.Request) -> web.Response:
    global failing_until
    status = FORCED_STATUS or 200
    fail_for = _fail_control(request)
    if fail_for is not None:
        failing_until = time.monotonic() + fail_for
    elif time.monotonic() < failing_until:
        status = 500
    parts = request.path.strip("/").split("/")
    if later_try(parts, request.headers.get("x-request-id")):
        parts = []
    code = tail_number(parts, "status")
    status = status if code is None else code
    headers = {"x-echo-version": VERSION}
    grpc_status = tail_number(parts, "grpc-status")
    if grpc_status is not None:  # a gRPC status in the response headers, as retryOn `unavailable` reads
        headers["grpc-status"] = str(grpc_status)
    delay_ms = tail_number(parts, "delay")
    if delay_ms is not None:
        await asyncio.sleep(delay_ms / 1000)
    body = await request.read()
    data = {"pod": POD, "namespace": NAMESPACE, "service": SERVICE, "version": VERSION,
            "method": request.method, "path": request.path_qs, "host": request.host,
            "proto": f"HTTP/{request.version.major}.{request.version.minor}",
            "headers": {k.lower(): v for k, v in request.headers.items()}, "body_bytes": len(body)}
    # x-echo-version: a response header of the app's own, which header-operations checks a route can remove.
    return web.Response(text=json.dumps(data), status=status, content_type="application/json", headers=headers)


def main() -> None:
    app = make_app()
    app.router.add_route("*", "/{tail:.*}", echo)
    # A try its caller's proxy gave up on is logged when it gives up: checks of timeouts and retries count tries
    # without waiting out the delays they asked for.
    serve(app, stop_when_abandoned=True)


if __name__ == "__main__":
    main()
