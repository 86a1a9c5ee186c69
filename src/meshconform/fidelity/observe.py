"""Making one case's call on the local platform and saying what happened, in istiod's terms.

A call through a proxy (from a meshed client or into the ingress gateway) is real traffic; the cluster
that served it is the one whose request counter moved on the calling proxy, and the echo that answered
must be that cluster's service. A call straight to a workload's inbound port (as iptables would hand
it over) is made from this process over a raw socket; a refusal is told apart by the proxy's own
counters: no filter chain matched, a TLS handshake without the required client certificate, or a
protocol error in the HTTP connection manager. Where traffic cannot show Istio's assertion, the
proxy's route configuration is read (see routes.py)."""

from __future__ import annotations

import json
import socket
import ssl
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meshconform.fidelity import routes
from meshconform.fidelity.cases import Call
from meshconform.platform.api import INGRESS
from meshconform.platform.local.ca import CertificateAuthority
from meshconform.platform.local.envoy import ADMIN_PORT
from meshconform.platform.local.platform import LocalPlatform
from meshconform.platform.local.translator.listeners import GATEWAY_PORT_ALIASES
from meshconform.platform.local.translator.model import Pod
from meshconform.suite.tls import ServerCredential
from meshconform.traffic.model import Request, Response

CALL_TIMEOUT_S = 5.0  # one call; the local proxies answer in milliseconds
COUNTER_DEADLINE_S = 3.0  # a refused connection's counter shows within this after the socket closes
CALLER_IDENTITY = "spiffe://cluster.local/ns/default/sa/fidelity-caller"
NOT_HTTP = b"\x00\x01fidelity: these bytes are not HTTP\r\n\r\n"


@dataclass(frozen=True)
class Outcome:
    """What a call produced, in the vocabulary of the case files, with the evidence behind it."""

    cluster: str | None = None
    error: str | None = None
    absent_virtual_host: str | None = None
    evidence: str = ""

    def describe(self) -> str:
        if self.cluster:
            return f"cluster {self.cluster}"
        if self.error:
            return f"error {self.error}"
        if self.absent_virtual_host:
            return f"no virtual host {self.absent_virtual_host}"
        return "nothing Istio would name"


def _admin_stats(ip: str, pattern: str) -> dict[str, int]:
    url = f"http://{ip}:{ADMIN_PORT}/stats?format=json&filter={urllib.parse.quote(pattern)}"
    with urllib.request.urlopen(url, timeout=2) as reply:  # noqa: S310 (loopback admin)
        stats = json.loads(reply.read()).get("stats", [])
    return {s["name"]: int(s.get("value", 0)) for s in stats if "name" in s and isinstance(s.get("value"), int)}


def _moved(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}


CLUSTER_COUNTERS = r"^cluster\.(outbound|inbound)\|.*\.upstream_rq_total$"
# How an inbound cluster shows it served a call: requests (HTTP), or a connection carrying bytes (TCP proxied).
SERVED_COUNTERS = r"upstream_(rq_total|cx_total|cx_tx_bytes_total)"


def _cluster_of(stat: str) -> str:
    return stat[len("cluster."):-len(".upstream_rq_total")]


class Observer:
    """Calls for one platform; holds the caller certificate for mTLS calls into workloads."""

    def __init__(self, platform: LocalPlatform, work_dir: Path) -> None:
        self.platform = platform
        self.authority = CertificateAuthority(platform.files.certs)
        self.caller_cert, self.caller_key = work_dir / "caller.pem", work_dir / "caller-key.pem"
        self.authority.issue(self.caller_cert, self.caller_key, uri=CALLER_IDENTITY)

    # ---------------------------------------------------------------- helpers

    def _pod(self, namespace: str, deployment: str) -> Pod:
        pods = self.platform.pods_of(namespace, deployment)  # the local platform's own pods (addresses)
        if not pods:
            raise LookupError(f"no pod for {namespace}/{deployment}")
        return pods[0]

    def _route_config(self, pod: Pod, name: str) -> dict[str, Any]:
        path = self.platform.files.proxy_dir(pod) / "xds" / f"rds-{name}.json"
        if not path.exists():
            return {}
        resources = json.loads(path.read_text()).get("resources", [])
        return resources[0] if resources else {}

    def _proxy_of(self, call: Call) -> tuple[Pod, str]:
        """The calling proxy and the route configuration that serves the call's port."""
        if call.source == INGRESS:
            return self._pod("istio-system", "istio-ingressgateway"), "http.8080"
        namespace = call.source.split("/", 1)[0]
        return self._pod(namespace, "client"), "outbound"

    # ---------------------------------------------------------------- calls

    def observe(self, call: Call, credentials: dict[str, ServerCredential]) -> Outcome:
        if call.expect.absent_virtual_host is not None:
            return self._absent(call)
        if call.source == "inbound":
            return self._inbound(call)
        if call.source == INGRESS and call.port not in (80, 443):
            return self._gateway_port(call)
        return self._proxied(call, credentials)

    def _gateway_port(self, call: Call) -> Outcome:
        """A gateway port the ingress gateway's Service does not publish: traffic cannot reach it, so whether its
        proxy has a listener for that server port is read from its listener configuration."""
        pod = self._pod("istio-system", "istio-ingressgateway")
        path = self.platform.files.proxy_dir(pod) / "xds" / "lds.json"
        names = sorted(r.get("name", "") for r in json.loads(path.read_text()).get("resources", [])) \
            if path.exists() else []
        served = {p for name in names for p, kind in GATEWAY_PORT_ALIASES.items()
                  if name == f"0.0.0.0_{8080 if kind == 'http' else 8443}"}
        if call.port in served:
            return Outcome(evidence=f"listeners {names} serve server port {call.port}")
        return Outcome(error="no_listener", evidence=f"no listener serves server port {call.port}; listeners {names} "
                                                     f"serve ports {sorted(served)}")

    def _absent(self, call: Call) -> Outcome:
        """Traffic first, where the name can be called: the call is not routed (no cluster counts it, the proxy answers
        404 itself). Then the route configuration shows no virtual host for the name, which is what Istio asserts (a
        wildcard name such as *.cluster.local is no valid Host: only the configuration can show it)."""
        pod, route_name = self._proxy_of(call)
        domain = call.expect.absent_virtual_host or ""
        unrouted = "a wildcard name, not callable"
        if "*" not in call.host:
            before = _admin_stats(pod.ip, CLUSTER_COUNTERS)
            response = self.platform.vantage(call.source).send([self._request(call, {})], concurrency=1)[0]
            moved = _moved(before, _admin_stats(pod.ip, CLUSTER_COUNTERS))
            if moved or response.status != 404:
                return Outcome(evidence=f"the call was routed: status {response.status} "
                                        f"({response.error or 'no error'}), clusters {sorted(moved) or 'none'}")
            unrouted = "404 from the proxy, no cluster counted the call"
        present = routes.has_domain(self._route_config(pod, route_name), domain)
        if present:
            return Outcome(evidence=f"virtual host {present!r} of route config {route_name!r} lists {domain!r}")
        return Outcome(absent_virtual_host=domain, evidence=f"{unrouted}; no virtual host of {route_name!r} lists "
                                                            f"{domain!r}")

    def _request(self, call: Call, credentials: dict[str, ServerCredential]) -> Request:
        if call.source == INGRESS:
            if call.tls == "tls":
                credential = credentials.get(call.host)
                return Request(call.path, host=call.host, scheme="https", timeout=CALL_TIMEOUT_S,
                               ca_pem=credential.ca_pem if credential else None)
            return Request(call.path, host=call.host, timeout=CALL_TIMEOUT_S)
        return Request(call.path, host=f"{call.host}:{call.port}", timeout=CALL_TIMEOUT_S)

    def _proxied(self, call: Call, credentials: dict[str, ServerCredential]) -> Outcome:
        if call.source == INGRESS and call.port not in (80, 443):
            raise ValueError(f"{call.id}: the local ingress gateway publishes ports 80 and 443 only")
        pod, route_name = self._proxy_of(call)
        before = _admin_stats(pod.ip, CLUSTER_COUNTERS)
        response = self.platform.vantage(call.source).send([self._request(call, credentials)], concurrency=1)[0]
        moved = _moved(before, _admin_stats(pod.ip, CLUSTER_COUNTERS))
        return self._judge_proxied(call, response, moved, pod, route_name)

    def _judge_proxied(self, call: Call, response: Response, moved: dict[str, int], pod: Pod,
                       route_name: str) -> Outcome:
        seen = f"status {response.status} ({response.error or 'no error'}), clusters {sorted(moved) or 'none'}"
        if response.status is None and response.error == "refused":
            return Outcome(error="no_listener", evidence=f"connection refused: {seen}")
        location = response.headers.get("location") or response.headers.get("Location") or ""
        if response.status == 301 and location.startswith("https://"):
            return Outcome(error="tls_redirect", evidence=f"301 to {location}")
        if moved:
            clusters = sorted(_cluster_of(s) for s in moved)
            if len(clusters) != 1:
                return Outcome(evidence=f"several clusters served one call: {seen}")
            cluster = clusters[0]
            answer = response.json() if response.ok else None
            host = cluster.rsplit("|", 1)[-1]
            if isinstance(answer, dict):
                served = f"{answer.get('service')}.{answer.get('namespace')}.svc.cluster.local"
                if served != host:
                    return Outcome(evidence=f"cluster {cluster} counted the call but {served} answered: {seen}")
            return Outcome(cluster=cluster, evidence=f"{seen}; answered by {response.answered_by}")
        # Envoy answered itself: read the route configuration the way Envoy does.
        config = self._route_config(pod, route_name)
        authority = call.host if call.source == INGRESS or call.port == 80 else f"{call.host}:{call.port}"
        vhost = routes.virtual_host_for(config, authority)
        if response.status == 404:
            if vhost is None:
                return Outcome(error="no_virtual_host", evidence=f"404; no virtual host of {route_name!r} "
                                                                 f"serves {authority!r}")
            if routes.route_for(vhost, call.path) is None:
                return Outcome(error="no_route", evidence=f"404; virtual host {vhost.get('name')!r} has no route "
                                                          f"for {call.path!r}")
        if response.status == 503 and vhost is not None:
            route = routes.route_for(vhost, call.path)
            target = routes.routed_cluster(route) if route else None
            if target and target not in self._cluster_names(pod):
                return Outcome(cluster=target, evidence=f"503: the route in {vhost.get('name')!r} names "
                                                        f"{target}, which the proxy does not have")
        return Outcome(evidence=f"unexplained: {seen}; body {response.body[:200]!r}")

    def _cluster_names(self, pod: Pod) -> set[str]:
        path = self.platform.files.proxy_dir(pod) / "xds" / "cds.json"
        return {r.get("name") for r in json.loads(path.read_text()).get("resources", [])} if path.exists() else set()

    # ---------------------------------------------------------------- inbound

    def _inbound(self, call: Call) -> Outcome:
        namespace, service = call.workload.split("/", 1)
        pod = self._pod(namespace, service)
        port = call.port
        # The outbound port's own connection manager too (TestLoop calls port 15001 straight).
        pattern = (rf"(^listener\.{pod.ip.replace('.', '[.]')}_{port}\.)|(^(http|tcp)\.inbound_{port}\.)"
                   rf"|(^http\.outbound\.downstream_cx_protocol_error$)"
                   rf"|(^cluster\.(inbound\|{port}\|\||InboundPassthroughCluster)\.{SERVED_COUNTERS}$)")
        before = _admin_stats(pod.ip, pattern)
        status, body, failure = self._raw_call(pod.ip, call)
        deadline = time.monotonic() + COUNTER_DEADLINE_S
        while True:
            moved = _moved(before, _admin_stats(pod.ip, pattern))
            outcome = _classify_inbound(call, pod, status, body, failure, moved)
            if outcome.cluster or outcome.error or time.monotonic() > deadline:
                return outcome
            time.sleep(0.05)  # polling the proxy's counters, bounded by the deadline above

    def _raw_call(self, ip: str, call: Call) -> tuple[int | None, bytes, str]:
        """(status, body, failure) of one call made straight to a workload's port."""
        try:
            raw = socket.create_connection((ip, call.port), timeout=CALL_TIMEOUT_S)
        except OSError as exc:
            return None, b"", f"connect: {exc}"
        try:
            conn: socket.socket = raw
            if call.tls != "plaintext":
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE  # Istio's simulation does not verify the server either
                alpn = call.alpn or _default_alpn(call)
                if alpn:
                    context.set_alpn_protocols([alpn])
                if call.tls == "mtls":
                    context.load_cert_chain(self.caller_cert, self.caller_key)
                conn = context.wrap_socket(raw)
            if call.protocol == "http2":
                return _http2_get(conn, call.path, call.host or "fidelity")
            payload = NOT_HTTP if call.protocol == "tcp" else (
                f"GET {call.path} HTTP/1.1\r\nHost: {call.host or 'fidelity'}\r\nConnection: close\r\n\r\n").encode()
            conn.sendall(payload)
            data = b""
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
        except (OSError, ssl.SSLError) as exc:
            return None, b"", f"{type(exc).__name__}: {exc}"
        finally:
            raw.close()
        if not data.startswith(b"HTTP/1."):
            return None, data, "closed without an HTTP response" if not data else "not an HTTP response"
        head, _, body = data.partition(b"\r\n\r\n")
        return int(head.split(b" ", 2)[1]), body, ""


H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
H2_STATUS = {0x88: 200, 0x89: 204, 0x8A: 206, 0x8B: 304, 0x8C: 400, 0x8D: 404, 0x8E: 500}  # HPACK static table


def _h2_frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return len(payload).to_bytes(3, "big") + bytes([kind, flags]) + stream.to_bytes(4, "big") + payload


def _http2_get(conn: socket.socket, path: str, authority: str) -> tuple[int | None, bytes, str]:
    """One GET over HTTP/2 with prior knowledge (h2c), enough to tell whether a port speaks HTTP/2: the
    request uses HPACK's static table and literals without Huffman coding; the answer's status is read
    from the static table (Envoy sends common statuses that way), the body from DATA frames."""
    def literal(index: int, value: str) -> bytes:  # literal without indexing, indexed name
        data = value.encode()
        return bytes([index]) + bytes([len(data)]) + data
    block = bytes([0x82, 0x86]) + literal(0x04, path) + literal(0x01, authority)  # GET, http, :path, :authority
    conn.sendall(H2_PREFACE + _h2_frame(0x4, 0, 0) + _h2_frame(0x1, 0x5, 1, block))  # SETTINGS, HEADERS
    buffer, status, body = b"", None, b""
    while True:
        while len(buffer) < 9 or len(buffer) < 9 + int.from_bytes(buffer[:3], "big"):
            chunk = conn.recv(65536)
            if not chunk:
                return status, body, "" if status else "closed without an HTTP/2 response"
            buffer += chunk
        length, kind, flags = int.from_bytes(buffer[:3], "big"), buffer[3], buffer[4]
        stream, payload, buffer = int.from_bytes(buffer[5:9], "big") & 0x7FFFFFFF, buffer[9:9 + length], \
            buffer[9 + length:]
        if kind == 0x4 and not flags & 0x1:
            conn.sendall(_h2_frame(0x4, 0x1, 0))  # acknowledge the server's SETTINGS
        elif kind == 0x7:  # GOAWAY
            return status, body, "" if status else "GOAWAY before a response"
        elif stream == 1 and kind == 0x1:
            status = H2_STATUS.get(payload[0]) if payload else None
        elif stream == 1 and kind == 0x0:
            body += payload
        if stream == 1 and kind in (0x0, 0x1) and flags & 0x1:  # END_STREAM
            return status, body, ""


def _default_alpn(call: Call) -> str | None:
    """What Istio's simulation offers by default (traffic.go: protocolToTLSAlpn / protocolToMTLSAlpn)."""
    if call.tls == "mtls":
        return "istio-http/1.1" if call.protocol == "http" else "istio"
    return "http/1.1" if call.protocol == "http" else None


def _classify_inbound(call: Call, pod: Pod, status: int | None, body: bytes, failure: str,
                      moved: dict[str, int]) -> Outcome:
    seen = f"status {status} {failure}; counters moved: {sorted(moved) or 'none'}"
    requests = [k[len("cluster."):-len(".upstream_rq_total")] for k in moved if k.endswith(".upstream_rq_total")]
    carried = [k[len("cluster."):-len(".upstream_cx_tx_bytes_total")] for k in moved
               if k.endswith(".upstream_cx_tx_bytes_total")]
    try:
        answer = json.loads(body) if body else None
    except ValueError:  # not the echo's JSON: judged by the counters alone
        answer = None
    if isinstance(answer, dict) and answer.get("pod") != pod.name and (requests or carried):
        return Outcome(evidence=f"answered by {answer.get('pod')}, not {pod.name}: {seen}")
    if any(k.startswith("tcp.") for k in moved) and len(carried) == 1:
        # Proxied as TCP (a TCP proxy's counters moved): the proxy connected to the app through this cluster and
        # sent it the call's bytes (what the app made of them, an answer or a failed TLS handshake, is the app's).
        return Outcome(cluster=carried[0], evidence=f"proxied as TCP: {seen}")
    if status is not None and 200 <= status < 300 and len(requests) == 1:
        if isinstance(answer, dict):
            # The proxy tells the app who called only over mTLS it terminated (XFCC): it must match the call.
            xfcc = (answer.get("headers") or {}).get("x-forwarded-client-cert", "")
            if (call.tls == "mtls") != (CALLER_IDENTITY in xfcc):
                return Outcome(evidence=f"a {call.tls} call, but the app saw XFCC {xfcc!r}: {seen}")
        return Outcome(cluster=requests[0], evidence=f"{seen}; XFCC {'with' if call.tls == 'mtls' else 'without'} "
                                                      "the caller's identity")
    if any(k.endswith(".no_filter_chain_match") for k in moved):
        return Outcome(error="no_filter_chain", evidence=seen)
    if any(k.endswith((".ssl.connection_error", ".ssl.fail_verify_no_cert")) for k in moved):
        return Outcome(error="mtls_error", evidence=seen)
    if any(k.endswith(".downstream_cx_protocol_error") for k in moved):
        return Outcome(error="protocol_error", evidence=seen)
    if status is None and "refused" in failure.lower() and not moved:
        return Outcome(error="no_listener", evidence=f"nothing listens on port {call.port}: {seen}")
    return Outcome(evidence=f"unexplained: {seen}")
