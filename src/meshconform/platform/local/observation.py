"""What tests observe on the local platform: vantage points, request and access logs, proxy config
excerpts for evidence. Reads the run's files; changes nothing."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Sequence
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


def request_log(files: RunFiles, pods: Iterable[Pod]) -> list[dict[str, Any]]:
    return json_lines(files.request_log(p.namespace, p.name) for p in pods)


def access_log(files: RunFiles, pods: Iterable[Pod]) -> list[dict[str, Any]]:
    return json_lines(files.proxy_dir(p) / "access.log" for p in pods)


def evidence(files: RunFiles, pods: Iterable[Pod], hosts: Collection[str] = ()) -> dict[str, Any]:
    """Per pod: the route config about `hosts` its proxy runs, and its access log's last lines."""
    result: dict[str, Any] = {}
    for pod in pods:
        folder = files.proxy_dir(pod) / "xds"
        if folder.exists():
            routes = {p.name: route_excerpt(json.loads(p.read_text()), hosts) for p in folder.glob("rds-*.json")}
            result[pod.name] = {"routes": {name: r for name, r in routes.items() if r},
                                "access_log_tail": tail(files.proxy_dir(pod) / "access.log", 10)}
    return result


def route_excerpt(discovery: dict[str, Any], hosts: Collection[str]) -> list[dict[str, Any]]:
    """The virtual hosts of an RDS file that serve one of `hosts` (all of them if none given)."""
    excerpt = []
    for config in discovery.get("resources", []):
        vhosts = [v for v in config.get("virtual_hosts", [])
                  if not hosts or any(h in domain for h in hosts for domain in v.get("domains", []))]
        if vhosts:
            excerpt.append({"name": config.get("name"), "virtual_hosts": vhosts})
    return excerpt


def json_lines(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """One record per complete line of each existing file (request logs and Envoy access logs). A last line
    without its newline is still being written (Envoy flushes its buffer every 200 ms, wherever it ends): it is
    left for the next read rather than parsed half-written."""
    records: list[dict[str, Any]] = []
    for path in paths:
        if not path.exists():
            continue
        text = path.read_text()
        complete = text[:text.rfind("\n") + 1]
        records.extend(json.loads(line) for line in complete.splitlines() if line.strip())
    return records
