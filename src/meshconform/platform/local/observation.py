"""What tests observe on the local platform: vantage points, request and access logs, proxy config
excerpts for evidence. Reads the run's files; changes nothing."""

from __future__ import annotations

import json
import urllib.error
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from meshconform.platform.local.processes import CLIENT_CONTROL_PORT, tail
from meshconform.platform.local.state import RunFiles
from meshconform.platform.local.translator.model import Pod
from meshconform.traffic.model import Request, Response, with_send_ids
from meshconform.traffic.sender import send_batch
from meshconform.traffic.transport import DirectTransport


class LocalVantage:
    """Ingress: sent from this process through the gateway. Workload: posted to the client app,
    which sends the whole batch from inside its pod (through its sidecar, if it has one)."""

    def __init__(self, name: str, transport: DirectTransport | None, control_url: str | None = None,
                 before_send: Callable[[], None] | None = None) -> None:
        self.name = name
        self.transport = transport
        self.control_url = control_url
        self.before_send = before_send  # the platform delivers pending config before any traffic

    @classmethod
    def ingress(cls, name: str, gateway_ports: dict[str, int],
                before_send: Callable[[], None] | None = None) -> LocalVantage:
        return cls(name, DirectTransport(f"127.0.0.1:{gateway_ports['http']}", f"127.0.0.1:{gateway_ports['https']}"),
                   before_send=before_send)

    @classmethod
    def client(cls, name: str, pod: Pod, before_send: Callable[[], None] | None = None) -> LocalVantage:
        return cls(name, None, f"http://{pod.ip}:{CLIENT_CONTROL_PORT}/batch", before_send)

    def send(self, requests_: Sequence[Request], concurrency: int = 10,
             reuse_connections: bool = True) -> list[Response]:
        if self.before_send is not None:
            self.before_send()
        if self.transport is not None:
            return send_batch(requests_, self.transport, concurrency, reuse_connections)
        assert self.control_url is not None
        requests_ = with_send_ids(requests_)
        budget = 60 + sum(r.timeout for r in requests_) / max(1, concurrency)
        reply = requests.post(self.control_url, json={
            "requests": [r.to_json() for r in requests_], "concurrency": concurrency,
            "reuse_connections": reuse_connections}, timeout=budget)
        reply.raise_for_status()
        return [Response.from_json(r) for r in reply.json()["responses"]]


def evidence(files: RunFiles, pods: Iterable[Pod], hosts: Collection[str] = ()) -> dict[str, Any]:
    """Per pod: the route config about `hosts` its proxy runs, and its access log's last lines."""
    result: dict[str, Any] = {}
    for pod in pods:
        folder = files.proxy_dir(pod) / "xds"
        if folder.exists():
            routes = {p.name: route_excerpt(discovery, hosts) for p in folder.glob("rds-*.json")
                      if (discovery := _read_json(p)) is not None}
            result[pod.name] = {"routes": {name: r for name, r in routes.items() if r},
                                "access_log_tail": tail(files.proxy_dir(pod) / "access.log", 10)}
    return result


def _read_json(path: Path) -> Any:
    """A discovery file's content, or None if it was being replaced (unlinked before the new one moves in)."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None


def route_excerpt(discovery: dict[str, Any], hosts: Collection[str]) -> list[dict[str, Any]]:
    """The virtual hosts of an RDS file that serve one of `hosts` (all of them if none given)."""
    excerpt = []
    for config in discovery.get("resources", []):
        vhosts = [v for v in config.get("virtual_hosts", [])
                  if not hosts or any(h in domain for h in hosts for domain in v.get("domains", []))]
        if vhosts:
            excerpt.append({"name": config.get("name"), "virtual_hosts": vhosts})
    return excerpt


class JsonLogReader:
    """Records of append-only JSON-lines logs (request logs and Envoy access logs), one per complete line,
    read incrementally: each call parses only what was appended since the last one, because checks poll
    logs every few tens of milliseconds and re-parsing whole logs cost more CPU than the requests did.
    A last line without its newline is still being written (Envoy flushes its buffer on a timer, wherever
    it ends): it is left for the next read rather than parsed half-written. A file replaced or truncated
    (a new run in the same folder) is read again from its start."""

    def __init__(self) -> None:
        self._tails: dict[Path, _Tail] = {}

    def records(self, paths: Iterable[Path]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for path in paths:
            found.extend(self._read(path))
        return found

    def _read(self, path: Path) -> list[dict[str, Any]]:
        try:
            stat = path.stat()
        except FileNotFoundError:
            self._tails.pop(path, None)
            return []
        tail = self._tails.get(path)
        if tail is None or tail.inode != stat.st_ino or stat.st_size < tail.offset:
            tail = self._tails[path] = _Tail(stat.st_ino)
        if stat.st_size > tail.offset:
            with path.open("rb") as handle:
                handle.seek(tail.offset)
                chunk = handle.read()
            complete = chunk[:chunk.rfind(b"\n") + 1]
            tail.records.extend(json.loads(line) for line in complete.splitlines() if line.strip())
            tail.offset += len(complete)
        return tail.records


@dataclass
class _Tail:
    inode: int
    offset: int = 0
    records: list[dict[str, Any]] = field(default_factory=list)


# Envoy's gauges of requests under way: sent upstream and not yet answered (pending in a pool included), and
# received and not yet answered. The admin interface's own request (http.admin.) is the one reading them.
ACTIVE_REQUEST_STATS = r"rq_(pending_)?active$"
IN_FLIGHT_READERS = 8  # ~40 loopback reads per look; in parallel they take a few ms
IN_FLIGHT_READ_TIMEOUT_S = 2.0
# Where each app lists the request ids it is handling (bookinfo/apps/common.py answers it; the apps do not import
# the platform, so the path is written on both sides, and tests/test_settle.py checks they agree).
IN_FLIGHT_PATH = "/meshconform/in-flight"


def in_flight(pods: Sequence[Pod], request_ids: Collection[str] | None = None) -> dict[str, int]:
    """Requests under way now, by '<namespace>/<pod>' (SupportsInFlight): each sidecar's and the gateway's
    active-request gauges, and the requests each serving app is handling (only those with one of `request_ids`,
    if given; its request log is written before a request leaves that list). A process that refuses the
    connection has nothing under way; one too slow to answer counts as one request under way."""
    from concurrent.futures import ThreadPoolExecutor
    from functools import partial

    from meshconform.platform.local.envoy import Admin

    # A process that refuses the connection is gone: nothing of it can still land. One too slow to answer is
    # alive and may be busy: counted as one request under way, so a loaded machine cannot end a wait early.
    def proxy(ip: str) -> int:
        try:
            stats = Admin(ip).stats(ACTIVE_REQUEST_STATS, timeout=IN_FLIGHT_READ_TIMEOUT_S)
        except TimeoutError:
            return 1
        except urllib.error.URLError as exc:
            return 1 if isinstance(exc.reason, TimeoutError) else 0
        except (OSError, ValueError):
            return 0
        return sum(int(value or 0) for name, value in stats.items() if not name.startswith("http.admin."))

    def app(pod: Pod) -> int:
        url = f"http://{pod.ip}:{pod.app_port(pod.listening[0])}{IN_FLIGHT_PATH}"
        try:
            handling = requests.get(url, timeout=IN_FLIGHT_READ_TIMEOUT_S).json()
        except requests.Timeout:
            return 1
        except (requests.RequestException, ValueError):
            return 0
        return sum(1 for request_id in handling if request_ids is None or request_id in request_ids)

    reads: list[tuple[str, Callable[[], int]]] = []
    for pod in pods:
        key = f"{pod.namespace}/{pod.name}"
        if pod.is_gateway or pod.injected:
            reads.append((key, partial(proxy, pod.ip)))
        if not pod.is_gateway and pod.container_ports:  # a serving app (clients have none)
            reads.append((key, partial(app, pod)))
    with ThreadPoolExecutor(IN_FLIGHT_READERS) as pool:
        counts = list(pool.map(lambda read: read[1](), reads))
    found: dict[str, int] = {}
    for (key, _), count in zip(reads, counts, strict=True):
        if count:
            found[key] = found.get(key, 0) + count
    return found
