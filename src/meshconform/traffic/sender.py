"""Sends a batch of requests concurrently and returns typed responses (never raises per request)."""

from __future__ import annotations

import asyncio
import errno
import ssl
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from yarl import URL

from meshconform.traffic.loop import use_fast_loop
from meshconform.traffic.model import TLS_VERSIONS, Request, Response, with_send_ids
from meshconform.traffic.transport import Transport

BODY_LIMIT = 16_384
KEPT_HEADERS = ("server", "content-type", "x-envoy-upstream-service-time", "x-envoy-overloaded",
                "x-meshconform-config", "x-meshconform-route", "location", "x-request-id", "set-cookie",
                "x-echo-version")
KEPT_PREFIX = "x-meshconform-"  # headers a test's route sets for the caller to see (header-operations, ...)


def exact_url(url: str) -> URL:
    """`url` with its authority exactly as written. yarl lowercases host names (DNS is case-insensitive), but the
    authority is also what the request names as its Host: through a sidecar used as an HTTP proxy, the
    absolute-form target Envoy takes :authority from (RFC 9112 3.2.2). A Request's host is sent as given, case
    kept, so checks can send a mixed-case Host (AuthorizationPolicy hosts match it ignoring case). The path and
    query are yarl's usual encoding."""
    parsed = URL(url)
    written = url.split("/", 3)[2] if url.count("/") >= 2 else ""
    if parsed.raw_authority == written:  # nothing lowercased: the parse is the URL as written (most requests)
        return parsed
    return URL.build(scheme=parsed.scheme, authority=urlsplit(url).netloc, path=parsed.raw_path,
                     query_string=parsed.raw_query_string, fragment=parsed.raw_fragment, encoded=True)


def _with_lines(headers: dict[str, str], extra: tuple[tuple[str, str], ...]) -> list[tuple[str, str]]:
    """`headers`, then each extra line, in order, as pairs aiohttp sends as lines of their own. A name repeated in
    another case is written as first seen: aiohttp folds later pairs of a name into the first only when the case
    agrees (a second 'X-A' would replace an 'x-a')."""
    lines = list(headers.items())
    spelled = {name.lower(): name for name, _ in lines}
    for name, value in extra:
        lines.append((spelled.setdefault(name.lower(), name), value))
    return lines


def _classify(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return "timeout"
    # The client rejecting the certificate it was given is not the server refusing the handshake.
    if isinstance(exc, aiohttp.ClientConnectorCertificateError | ssl.SSLCertVerificationError):
        return "tls-certificate"
    if isinstance(exc, aiohttp.ClientSSLError | ssl.SSLError):
        return "tls"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "reset"
    if isinstance(exc, aiohttp.ClientConnectorError):
        os_error = getattr(exc, "os_error", None)
        if getattr(os_error, "errno", None) == errno.ECONNREFUSED:
            return "refused"
        return "reset" if getattr(os_error, "errno", None) == errno.ECONNRESET else f"connect:{exc}"
    if isinstance(exc, aiohttp.ClientOSError | ConnectionResetError):
        return "reset"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return "reset"
    return f"other:{type(exc).__name__}:{exc}"


def client_context(ca_pem: str, verify_server: bool, max_tls_version: str | None) -> ssl.SSLContext:
    """A TLS client context trusting `ca_pem` (or the system's roots), offering no certificate of its own; with
    verify_server False it checks neither the server's certificate nor its name."""
    context = ssl.create_default_context(cadata=ca_pem) if ca_pem else ssl.create_default_context()
    if not verify_server:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if max_tls_version:
        context.maximum_version = TLS_VERSIONS[max_tls_version]
    return context


async def _one(session: aiohttp.ClientSession, transport: Transport, request: Request,
               ssl_contexts: dict[tuple[str, bool, str | None], ssl.SSLContext]) -> Response:
    host = request.host or "localhost"
    target = transport.target(host, request.path, request.scheme, request.connect_to)
    headers = {"x-request-id": request.request_id, **request.headers} if request.send_request_id else dict(
        request.headers)
    headers.update(target.headers)
    if target.host_header:
        headers["Host"] = target.host_header
    lines = _with_lines(headers, request.header_lines)
    started = time.perf_counter()
    if target.url is None:
        return Response(request.request_id, None, "unresolved", 0.0, path=request.path)
    kwargs: dict[str, Any] = {}
    if request.scheme == "https":
        key = (request.ca_pem or "", request.verify_server, request.max_tls_version)
        if key not in ssl_contexts:
            ssl_contexts[key] = client_context(*key)
        kwargs["ssl"] = ssl_contexts[key]
        kwargs["server_hostname"] = host.split(":")[0]
    try:
        async with session.request(request.method, exact_url(target.url), headers=lines, data=request.body,
                                   proxy=target.proxy, allow_redirects=False,
                                   timeout=aiohttp.ClientTimeout(total=request.timeout), **kwargs) as reply:
            body = await reply.read()
            kept_lines = tuple((k.lower(), v) for k, v in reply.headers.items() if k.lower() in KEPT_HEADERS
                               or k.lower().startswith(KEPT_PREFIX))
            return Response(request.request_id, reply.status, None, time.perf_counter() - started,
                            dict(kept_lines), body[:BODY_LIMIT].decode(errors="replace"), request.path, kept_lines)
    except (TimeoutError, aiohttp.ClientError, OSError, ssl.SSLError) as exc:
        return Response(request.request_id, None, _classify(exc), time.perf_counter() - started,
                        path=request.path)


async def send_batch_async(requests: Sequence[Request], transport: Transport, concurrency: int = 10,
                           reuse_connections: bool = True) -> list[Response]:
    """All requests, at most `concurrency` in flight; order of results = order of requests.
    A fresh connection pool per batch, so a batch never rides on connections from before a config change."""
    limit = asyncio.Semaphore(max(1, concurrency))
    connector = aiohttp.TCPConnector(limit=max(1, concurrency), force_close=not reuse_connections,
                                     use_dns_cache=False)
    ssl_contexts: dict[tuple[str, bool, str | None], ssl.SSLContext] = {}
    async with aiohttp.ClientSession(connector=connector, auto_decompress=True) as session:
        async def guarded(request: Request) -> Response:
            async with limit:
                return await _one(session, transport, request, ssl_contexts)
        return list(await asyncio.gather(*(guarded(r) for r in with_send_ids(requests))))


def send_batch(requests: Sequence[Request], transport: Transport, concurrency: int = 10,
               reuse_connections: bool = True) -> list[Response]:
    use_fast_loop()
    return asyncio.run(send_batch_async(requests, transport, concurrency, reuse_connections))
