"""Vantage points on a cluster. Ingress: requests from this process to the gateway's reachable address. A client
pod: the whole batch goes in ONE call through the API server's pod proxy (or, where the control plane cannot reach
pod IPs, a port-forward) to the client app's control port (the app sends it from inside the pod, through its sidecar
if it has one), never one call per request."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Protocol

from meshconform.errors import PlatformError
from meshconform.platform.kube.names import NamespaceMap
from meshconform.platform.kube.portforward import Opener, forwarded_post
from meshconform.traffic.model import Request, Response, with_send_ids
from meshconform.traffic.sender import send_batch
from meshconform.traffic.transport import DirectTransport

CONTROL_PORT = 15900  # the client app's control port (bookinfo/manifests/testbed.yaml; excluded from capture)


class PodProxy(Protocol):
    def pod_proxy_post(self, namespace: str, pod: str, port: int, path: str, body: dict[str, Any],
                       timeout: float) -> Any: ...


class ForwardedPodProxy:
    """The same call through a port-forward stream per batch (portforward.py), for clusters whose control plane
    cannot reach pod IPs (the platform decides once per run which of the two it uses)."""

    def __init__(self, opener: Opener) -> None:
        self.opener = opener

    def pod_proxy_post(self, namespace: str, pod: str, port: int, path: str, body: dict[str, Any],
                       timeout: float) -> Any:
        return forwarded_post(self.opener, namespace, pod, port, path, body, timeout)


def unmapped(response: Response, names: NamespaceMap) -> Response:
    """The reply as the suite expects to read it: the run's namespace names back to logical ones."""
    return replace(response, body=names.unmap_text(response.body),
                   headers={k: names.unmap_text(v) for k, v in response.headers.items()})


class IngressVantage:
    def __init__(self, name: str, host: str, http_port: int, https_port: int | None, names: NamespaceMap) -> None:
        self.name = name
        self.transport = DirectTransport(f"{host}:{http_port}", f"{host}:{https_port}" if https_port else None)
        self.names = names

    def send(self, requests: Sequence[Request], concurrency: int = 10,
             reuse_connections: bool = True) -> list[Response]:
        return [unmapped(r, self.names) for r in send_batch(requests, self.transport, concurrency, reuse_connections)]


class PodVantage:
    def __init__(self, name: str, api: PodProxy, namespace: str, pod: str, names: NamespaceMap,
                 logical_namespaces: Sequence[str], base_timeout: float) -> None:
        self.name = name
        self.api = api
        self.namespace = namespace  # real
        self.pod = pod
        self.names = names
        self.logical_namespaces = list(logical_namespaces)
        self.base_timeout = base_timeout

    def payload(self, requests: Sequence[Request], concurrency: int, reuse_connections: bool) -> dict[str, Any]:
        """The batch as the client app takes it, hosts naming the suite's namespaces mapped to the run's."""
        mapped = [replace(r, host=self.names.host(r.host, self.logical_namespaces)) if r.host else r
                  for r in requests]
        return {"requests": [r.to_json() for r in mapped], "concurrency": concurrency,
                "reuse_connections": reuse_connections}

    def send(self, requests: Sequence[Request], concurrency: int = 10,
             reuse_connections: bool = True) -> list[Response]:
        if not requests:
            return []
        requests = with_send_ids(requests)
        budget = self.base_timeout + sum(r.timeout for r in requests) / max(1, concurrency)
        reply = self.api.pod_proxy_post(self.namespace, self.pod, CONTROL_PORT, "batch",
                                        self.payload(requests, concurrency, reuse_connections), budget)
        return parse_batch_reply(reply, requests, self.names)


def parse_batch_reply(reply: Any, requests: Sequence[Request], names: NamespaceMap) -> list[Response]:
    """Responses in request order; a reply that does not answer every request is an error, never padded."""
    if not isinstance(reply, dict) or not isinstance(reply.get("responses"), list):
        raise PlatformError(f"the client app answered without 'responses': {str(reply)[:200]}")
    responses = [unmapped(Response.from_json(r), names) for r in reply["responses"]]
    if [r.request_id for r in responses] != [r.request_id for r in requests]:
        raise PlatformError(f"the client app answered {len(responses)} responses for {len(requests)} requests, "
                            "or out of order")
    return responses
