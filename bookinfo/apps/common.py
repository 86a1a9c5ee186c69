"""What every local workload shares: where to listen, a request log, and calls to other services."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from collections import Counter
from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import web

from meshconform.traffic.loop import use_fast_loop
from meshconform.traffic.transport import PlainTransport, Transport

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
POD = os.environ.get("HOSTNAME", "local")
NAMESPACE = os.environ.get("MESHCONFORM_NAMESPACE", "default")
VERSION = os.environ.get("MESHCONFORM_VERSION", "v1")
# The trace-context headers a request log records (W3C and B3): ids and sampling flags, never credentials.
TRACE_HEADERS = ("traceparent", "tracestate", "x-b3-traceid", "x-b3-spanid", "x-b3-parentspanid",
                 "x-b3-sampled", "x-b3-flags", "b3")


# Answers the request ids of the requests this app is handling, as a JSON list ("" for a request without one), for
# the local platform's SupportsInFlight (platform/local/observation.py reads it): not logged, not counted itself.
IN_FLIGHT_PATH = "/meshconform/in-flight"
CLIENT_CLOSED = 499  # the status logged for a request abandoned before it was answered (nginx's code for it)


def _request_logger(path: str | None) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    log = open(path, "a", buffering=1) if path else None  # noqa: SIM115 (lives as long as the process)
    in_flight: Counter[str] = Counter()  # request id -> requests with it being handled

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == IN_FLIGHT_PATH:
            return web.json_response(list(in_flight.elements()))
        started = time.time()
        request_id = request.headers.get("x-request-id", "")
        in_flight[request_id] += 1
        try:
            response = await handler(request)
            status = response.status
        except web.HTTPException as exc:
            status = exc.status
            raise
        except asyncio.CancelledError:
            status = CLIENT_CLOSED  # the caller's proxy gave up on it (a timeout): logged now, not when it would end
            raise
        finally:
            if log is not None:
                log.write(json.dumps({
                    "time": started, "pod": POD, "method": request.method, "path": request.path_qs,
                    "host": request.host, "request_id": request.headers.get("x-request-id"),
                    "status": locals().get("status", 500),
                    "xfcc": request.headers.get("x-forwarded-client-cert"),
                    "end_user": request.headers.get("end-user"),
                    # user-agent is forwarded by Bookinfo's apps, so a test can tie the hops of one request
                    "user_agent": request.headers.get("user-agent"),
                    "trace": {h: request.headers[h] for h in TRACE_HEADERS if h in request.headers}}) + "\n")
            in_flight[request_id] -= 1  # after the record is written: nothing in flight means it is all in the log
            if not in_flight[request_id]:
                del in_flight[request_id]
        return response
    return middleware


def make_app() -> web.Application:
    return web.Application(middlewares=[_request_logger(os.environ.get("MESHCONFORM_REQUEST_LOG"))])


def serve(app: web.Application, stop_when_abandoned: bool = False) -> None:
    """`stop_when_abandoned`: a request whose connection closes (its caller's proxy gave up: a route or per-try
    timeout) stops being handled there and then, so its record is written at once; otherwise the handler runs
    to its end, as most servers do."""
    use_fast_loop()
    # One address per port the pod declares, each parsed once.
    binds = [(host, int(port)) for host, _, port in (address.rpartition(":") for address in
                                                       os.environ.get("MESHCONFORM_BIND", "127.0.0.1:9080").split(","))]
    for host, port in binds:  # uvloop would bind port 70000 as 4464: a port out of range is named, and nothing binds
        if not 0 < port < 65536:
            raise SystemExit(f"cannot bind {host}:{port}: the port is out of range (1-65535)")
    if len(binds) == 1:
        [(host, port)] = binds
        web.run_app(app, host=host, port=port, access_log=None, print=None, shutdown_timeout=1,
                    handler_cancellation=stop_when_abandoned)
        return
    sockets = []
    for host, port in binds:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sockets.append(sock)
    web.run_app(app, sock=sockets, access_log=None, print=None, shutdown_timeout=1,
                handler_cancellation=stop_when_abandoned)


def outbound_transport() -> Transport:
    """How this workload reaches services: the local platform's stand-ins when it set them up in the
    environment, otherwise the system's own name resolution (a pod on a real cluster)."""
    if os.environ.get("MESHCONFORM_OUTBOUND_PROXY") or os.environ.get("MESHCONFORM_SERVICES_FILE"):
        from meshconform.platform.local.transport import local_transport_from_env
        return local_transport_from_env()
    return PlainTransport()


class Outbound:
    """Calls to other services, the way this workload's platform routes them."""

    def __init__(self, transport: Transport | None = None) -> None:
        self.transport = transport or outbound_transport()
        self._session: aiohttp.ClientSession | None = None

    async def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200, use_dns_cache=False))
        return self._session

    async def get(self, host: str, path: str, headers: dict[str, str], timeout: float) -> tuple[int | None, bytes]:
        """(status, body); status None when the call failed (timeout, reset, refused)."""
        target = self.transport.target(host, path)
        if target.url is None:
            return None, b""
        if target.host_header:
            headers = {**headers, "Host": target.host_header}
        session = await self.session()
        try:
            async with session.get(target.url, headers=headers, proxy=target.proxy,
                                   timeout=aiohttp.ClientTimeout(total=timeout)) as reply:
                return reply.status, await reply.read()
        except (aiohttp.ClientError, TimeoutError, OSError):
            return None, b""
