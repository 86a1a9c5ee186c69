"""The testbed app on a cluster: echo backend or batch client, standard library only, so it runs on a stock
`python:3.13-slim` image (pinned by digest) with this file delivered by a ConfigMap: no private registry, no
image build, nothing installed at start. Behaves as bookinfo/apps/echo.py and bookinfo/apps/client.py do on the
local platform: the same echo JSON, the same request-log records (one JSON line on stdout each, read back from
the container log), and the same batch protocol and Response fields (meshconform.traffic.model).

Run as `python3 agent.py echo` or `python3 agent.py client`. On a cluster the pod's own network does the routing
(the sidecar's iptables capture for meshed pods, kube-proxy otherwise), so requests go to `http://<host><path>`."""

from __future__ import annotations

import http.client
import json
import os
import select
import signal
import socket
import ssl
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

BODY_LIMIT = 16_384  # as meshconform.traffic.sender
KEPT_HEADERS = ("server", "content-type", "x-envoy-upstream-service-time", "x-envoy-overloaded",
                "x-meshconform-config", "location", "x-request-id", "set-cookie", "x-echo-version")
KEPT_PREFIX = "x-meshconform-"  # as meshconform.traffic.sender
POD = os.environ.get("HOSTNAME", "local")
NAMESPACE = os.environ.get("MESHCONFORM_NAMESPACE", "default")
VERSION = os.environ.get("MESHCONFORM_VERSION", "v1")
SERVICE = os.environ.get("MESHCONFORM_SERVICE", "echo")
# The trace-context headers a request record keeps (as bookinfo/apps/common.py): ids and flags, never credentials.
TRACE_HEADERS = ("traceparent", "tracestate", "x-b3-traceid", "x-b3-spanid", "x-b3-parentspanid",
                 "x-b3-sampled", "x-b3-flags", "b3")
FORCED_STATUS = int(os.environ.get("ECHO_STATUS", "0") or "0") or None
_log_lock = threading.Lock()
# POST /meshconform/fail-for/<ms>: the instance receiving it answers 500 to everything else that long; POST
# /meshconform/fail-next/<n>: to its next n requests (echo.py).
FAIL_CONTROL = "/meshconform/fail-for/"
FAIL_NEXT_CONTROL = "/meshconform/fail-next/"
_failing_until = [0.0]
_failing_next = [0]
_failing_lock = threading.Lock()
CLIENT_CLOSED = 499  # the status logged for a request abandoned before it was answered (as echo.py)
# `/first/<n>/...` limits /status and /delay to the first n arrivals of a request id here (echo.py's later_try).
_arrivals: dict[str, int] = {}  # insertion-ordered: the oldest ids are dropped past _ARRIVALS_KEPT
_ARRIVALS_KEPT = 10_000
_arrivals_lock = threading.Lock()


def later_try(parts: list[str], request_id: str | None) -> bool:
    with _arrivals_lock:
        seen = _arrivals.pop(request_id, 0) + 1 if request_id else 1
        if request_id:
            _arrivals[request_id] = seen
            while len(_arrivals) > _ARRIVALS_KEPT:
                del _arrivals[next(iter(_arrivals))]
    limits = [int(parts[i + 1]) for i in range(len(parts) - 1) if parts[i] == "first" and parts[i + 1].isdigit()]
    return bool(limits) and seen > limits[0]


def tail_number(parts: list[str], name: str) -> int | None:
    """The number a path ends with after the segment `name` (as echo.py)."""
    return int(parts[-1]) if len(parts) >= 2 and parts[-2] == name and parts[-1].isdigit() else None


def log_request(record: dict[str, Any]) -> None:
    with _log_lock:
        sys.stdout.write(json.dumps(record) + "\n")
        sys.stdout.flush()


class EchoHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the local echo (aiohttp) does
    disable_nagle_algorithm = True  # headers and body are two writes: no Nagle wait between them

    def _any(self) -> None:
        started = time.time()
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        path = self.path
        parts = path.split("?", 1)[0].strip("/").split("/")
        status = FORCED_STATUS or 200
        fail_for_ms, fail_next = self._control(FAIL_CONTROL), self._control(FAIL_NEXT_CONTROL)
        with _failing_lock:
            if fail_for_ms is not None:
                _failing_until[0] = time.monotonic() + fail_for_ms / 1000
                _failing_next[0] = 0 if fail_for_ms == 0 else _failing_next[0]
            elif fail_next is not None:
                _failing_next[0] = fail_next
            elif time.monotonic() < _failing_until[0]:
                status = 500
            elif _failing_next[0] > 0:
                _failing_next[0] -= 1
                status = 500
        if later_try(parts, self.headers.get("x-request-id")):
            parts = []
        code = tail_number(parts, "status")
        status = status if code is None else code
        host = self.headers.get("host", "")
        delay_ms = tail_number(parts, "delay")
        if delay_ms is not None and self._abandoned_within(delay_ms / 1000):
            # Its caller's proxy gave up on it (a timeout): logged now, as echo.py does, not when the delay ends.
            self.close_connection = True
            self._log(started, path, host, CLIENT_CLOSED)
            return
        data = {"pod": POD, "namespace": NAMESPACE, "service": SERVICE, "version": VERSION,
                "method": self.command, "path": path, "host": host, "proto": self.request_version,
                "headers": {k.lower(): v for k, v in self.headers.items()}, "body_bytes": len(body),
                # What was on the wire, as echo.py reports it: every header line in order, the Host as it arrived,
                # the query string undecoded.
                "header_lines": [[k.lower(), v] for k, v in self.headers.items()],
                "authority": self.headers.get("host"), "query": path.partition("?")[2]}
        payload = json.dumps(data).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("x-echo-version", VERSION)  # the app's own response header (as bookinfo's echo.py)
            grpc_status = tail_number(parts, "grpc-status")
            if grpc_status is not None:  # as echo.py: what retryOn `unavailable` reads
                self.send_header("grpc-status", str(grpc_status))
            self.end_headers()
            if self.command != "HEAD":  # a HEAD reply announces the length but carries no body
                self.wfile.write(payload)
        finally:  # a try the caller gave up on (a per-try timeout) is still logged, as echo.py does
            self._log(started, path, host, status)

    def _control(self, prefix: str) -> int | None:
        """The number a failure control names (POST <prefix><number>), when this request is that control."""
        path = self.path.split("?", 1)[0]
        tail = path[len(prefix):] if path.startswith(prefix) else ""
        return int(tail) if self.command == "POST" and tail.isdigit() else None

    def _abandoned_within(self, seconds: float) -> bool:
        """Wait `seconds`; True as soon as the caller closes the connection (nothing else arrives on it meanwhile:
        a proxy does not pipeline requests)."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            if select.select([self.connection], [], [], left)[0]:
                try:
                    closed = self.connection.recv(1, socket.MSG_PEEK) == b""
                except OSError:
                    closed = True
                if closed:
                    return True
                time.sleep(max(0.0, end - time.monotonic()))  # data, not a close: wait the delay out
        return False

    def _log(self, started: float, path: str, host: str, status: int) -> None:
        log_request({"time": started, "pod": POD, "method": self.command, "path": path, "host": host,
                     "request_id": self.headers.get("x-request-id"), "status": status,
                     "xfcc": self.headers.get("x-forwarded-client-cert"), "end_user": self.headers.get("end-user"),
                     "user_agent": self.headers.get("user-agent"),
                     "trace": {h: self.headers[h] for h in TRACE_HEADERS if h in self.headers}})

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _any

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        pass  # stdout carries only request records


# As meshconform.traffic.model's: the agent runs standalone and imports nothing of the package.
TLS_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


def _classify(exc: BaseException) -> str:
    """The error names of meshconform.traffic.sender: timeout, tls-certificate, tls, reset, refused, connect:,
    other:."""
    if isinstance(exc, socket.timeout | TimeoutError):
        return "timeout"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "tls-certificate"
    if isinstance(exc, ssl.SSLError):
        return "tls"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, ConnectionResetError | BrokenPipeError | http.client.RemoteDisconnected |
                  http.client.IncompleteRead):
        return "reset"
    if isinstance(exc, socket.gaierror):
        return f"connect:{exc}"
    return f"other:{type(exc).__name__}:{exc}"


class _HTTP(http.client.HTTPConnection):
    def connect(self) -> None:
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # a body is a second write


class _HTTPS(http.client.HTTPConnection):
    """TLS to `address`, naming `server_name` (SNI and the certificate check), as the sender does: with
    connect_to, the address is not the name the request is for."""

    default_port = http.client.HTTPS_PORT

    def __init__(self, address: str, server_name: str, context: ssl.SSLContext, timeout: float) -> None:
        super().__init__(address, timeout=timeout)
        self.server_name, self.context = server_name, context

    def connect(self) -> None:
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = self.context.wrap_socket(self.sock, server_hostname=self.server_name)


class _Connections(threading.local):
    pool: dict[tuple[str, str, str, str, bool, str], http.client.HTTPConnection]


def send_one(request: dict[str, Any], reuse: bool, local: _Connections) -> dict[str, Any]:
    host = request.get("host") or "localhost"
    scheme = request.get("scheme", "http")
    own_id = {"x-request-id": request["request_id"]} if request.get("send_request_id", True) else {}
    headers = {**own_id, **(request.get("headers") or {}), "Host": host}
    # Then the request's own header lines, each a line of its own, in order (a name repeated is sent again).
    lines = [*headers.items(), *((str(k), str(v)) for k, v in request.get("header_lines") or ())]
    timeout = float(request.get("timeout", 15.0))
    started = time.perf_counter()
    # connect_to: open the connection there (the sidecar's capture routes by Host), as curl --connect-to does.
    address = request.get("connect_to") or host
    verify = bool(request.get("verify_server", True))
    max_tls = str(request.get("max_tls_version") or "")
    key = (scheme, address, host, request.get("ca_pem") or "", verify, max_tls)
    pool = getattr(local, "pool", None)
    if pool is None:
        pool = local.pool = {}
    try:
        conn = pool.get(key) if reuse else None
        if conn is None:
            if scheme == "https":
                context = ssl.create_default_context(cadata=request["ca_pem"]) if request.get("ca_pem") \
                    else ssl.create_default_context()
                if not verify:  # curl --insecure: to ask what the server demands of a caller, not who it is
                    context.check_hostname = False
                    context.verify_mode = ssl.CERT_NONE
                if max_tls:  # "1.2": the server takes or refuses the caller's certificate inside the handshake
                    context.maximum_version = TLS_VERSIONS[max_tls]
                conn = _HTTPS(address, host.rpartition(":")[0] if ":" in host else host, context, timeout)
            else:
                conn = _HTTP(address, timeout=timeout)
        conn.timeout = timeout
        if conn.sock is not None:  # a reused connection keeps the timeout its socket was made with
            conn.sock.settimeout(timeout)
        body = request.get("body")
        payload = body.encode() if isinstance(body, str) else None
        if not reuse:
            lines.append(("Connection", "close"))
        _send_lines(conn, request.get("method", "GET"), request.get("path", "/"), lines, payload)
        reply = conn.getresponse()
        data = reply.read()
        kept_lines = [(k.lower(), v) for k, v in reply.getheaders() if k.lower() in KEPT_HEADERS
                      or k.lower().startswith(KEPT_PREFIX)]
        if reuse and not reply.will_close:
            pool[key] = conn
        else:
            conn.close()
            pool.pop(key, None)
        return {"request_id": request["request_id"], "status": reply.status, "error": None,
                "latency": time.perf_counter() - started, "headers": dict(kept_lines),
                "body": data[:BODY_LIMIT].decode(errors="replace"), "path": request.get("path", "/"),
                "header_lines": kept_lines}
    except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
        stale = pool.pop(key, None)
        if stale is not None:
            stale.close()
        return {"request_id": request["request_id"], "status": None, "error": _classify(exc),
                "latency": time.perf_counter() - started, "headers": {}, "body": "", "path": request.get("path", "/")}


def _send_lines(conn: http.client.HTTPConnection, method: str, path: str, lines: list[tuple[str, str]],
                body: bytes | None) -> None:
    """The request with every header line as given, in order (http.client's `request` takes a mapping, one value
    a name); Content-Length and Accept-Encoding: identity as `request` adds them (0 for a method expecting a body
    that has none)."""
    names = {name.lower() for name, _ in lines}
    conn.putrequest(method, path, skip_host="host" in names, skip_accept_encoding="accept-encoding" in names)
    for name, value in lines:
        conn.putheader(name, value)
    length = len(body) if body is not None else 0 if method.upper() in ("PATCH", "POST", "PUT") else None
    if length is not None and "content-length" not in names:
        conn.putheader("Content-Length", str(length))
    conn.endheaders(body)


def send_batch(requests: list[dict[str, Any]], concurrency: int, reuse: bool) -> list[dict[str, Any]]:
    """All requests, at most `concurrency` in flight, results in request order; connections of this batch only."""
    local = _Connections()
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        results = list(pool.map(lambda r: send_one(r, reuse, local), requests))
    return results


class ClientHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_POST(self) -> None:  # noqa: N802 (stdlib naming)
        if self.path.split("?")[0] != "/batch":
            self._reply(404, {"error": "POST /batch"})
            return
        try:
            payload = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)))
            responses = send_batch(list(payload["requests"]), int(payload.get("concurrency", 10)),
                                   bool(payload.get("reuse_connections", True)))
        except (ValueError, KeyError, TypeError) as exc:
            self._reply(400, {"error": f"bad batch: {exc}"})
            return
        self._reply(200, {"responses": responses})

    def do_GET(self) -> None:  # noqa: N802
        self._reply(200, {"status": "ok"}) if self.path.split("?")[0] == "/health" else self._reply(404, {})

    def _reply(self, status: int, data: dict[str, Any]) -> None:
        payload = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


def _address(variable: str, default: str) -> tuple[str, int]:
    host, _, port = os.environ.get(variable, default).rpartition(":")
    return host or "0.0.0.0", int(port)  # noqa: S104 (a pod listens on its own address)


def main(argv: list[str]) -> None:
    role = argv[1] if len(argv) > 1 else ""
    if role == "echo":
        server = ThreadingHTTPServer(_address("MESHCONFORM_BIND", "0.0.0.0:8080"), EchoHandler)
    elif role == "client":
        server = ThreadingHTTPServer(_address("MESHCONFORM_CONTROL", "0.0.0.0:15900"), ClientHandler)
    else:
        raise SystemExit("usage: agent.py echo|client")
    server.daemon_threads = True
    # PID 1 in its container: without a handler the kernel ignores SIGTERM, and every pod deletion would wait out
    # the grace period before the kubelet's SIGKILL. Exit at once instead (the batch in flight is abandoned).
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(0))
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv)
