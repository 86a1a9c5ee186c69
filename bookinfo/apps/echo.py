"""echo: answers with what it received and who it is, for precise checks.

`/status/<code>` answers that code; `/grpc-status/<code>` adds that gRPC status to the response headers;
`/delay/<ms>` waits first. `/first/<n>/...` limits those to the first n
arrivals of a request id at this instance (later tries of the same request, e.g. retries, answer 200 at once), so
a test can fail or slow down chosen attempts. `POST /meshconform/fail-for/<ms>` makes the one instance that
receives it answer 500 to everything else for that long, `POST /meshconform/fail-next/<n>` to its next n requests
(it heals itself, so nothing is left failing; `fail-for/0` heals it at once). The answer reports what was on the
wire: every header line in order, the Host as it arrived and the raw query string. Every
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
FAIL_NEXT_CONTROL = "/meshconform/fail-next/"
failing_until = 0.0  # monotonic time until which this instance fails (set through FAIL_CONTROL)
failing_next = 0  # how many of the next requests this instance fails (set through FAIL_NEXT_CONTROL)
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


def _control(request: web.Request, prefix: str) -> int | None:
    """The number a failure control names (POST <prefix><number>), when the request is that control."""
    tail = request.path[len(prefix):] if request.path.startswith(prefix) else ""
    return int(tail) if request.method == "POST" and tail.isdigit() else None


async def echo(request: web.Request) -> web.Response:
    global failing_until, failing_next
    status = FORCED_STATUS or 200
    fail_for_ms, fail_next = _control(request, FAIL_CONTROL), _control(request, FAIL_NEXT_CONTROL)
    if fail_for_ms is not None:
        failing_until = time.monotonic() + fail_for_ms / 1000
        failing_next = 0 if fail_for_ms == 0 else failing_next
    elif fail_next is not None:
        failing_next = fail_next
    elif time.monotonic() < failing_until:
        status = 500
    elif failing_next > 0:
        failing_next -= 1
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
            "headers": {k.lower(): v for k, v in request.headers.items()}, "body_bytes": len(body),
            # What was on the wire: every header line in order (a repeated header shows each value), the Host as it
            # arrived, the query string undecoded (traffic/model.py's EchoedRequest reads them).
            "header_lines": [[k.decode("latin-1").lower(), v.decode("latin-1")] for k, v in request.raw_headers],
            "authority": request.headers.get("Host"), "query": request.rel_url.raw_query_string}
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
