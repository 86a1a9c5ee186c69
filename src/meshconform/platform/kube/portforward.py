"""Reaching a pod's port from this process through the API server (what `kubectl port-forward` does, without
kubectl): the official client's port-forward stream (`kubernetes.stream.portforward`, a websocket to
/api/v1/namespaces/{ns}/pods/{pod}/portforward), which goes through the kubelet, so it works where the control plane
cannot reach pod IPs and where no LoadBalancer gives the ingress gateway an address.

`Forwarder` listens on 127.0.0.1:<free port> in this process and carries each accepted connection to the pod on a
stream of its own, choosing the pod per connection (a restarted gateway pod is followed). `forwarded_post` sends one
HTTP request over a stream (the testbed agent's batch when the API server's pod proxy cannot reach the pod)."""

from __future__ import annotations

import http.client
import json
import select
import socket
import threading
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from meshconform.errors import PlatformError

CHUNK = 65536


class Stream(Protocol):
    """What the client's PortForward gives: a socket-like end per port, the error channel, close."""

    def socket(self, port_number: int) -> Any: ...

    def error(self, port_number: int) -> str | None: ...

    def close(self) -> None: ...


Opener = Callable[[str, str, int], Stream]  # (namespace, pod, port) -> an open stream to that pod's port


def _pump(local: socket.socket, remote: Any, stream: Stream) -> None:
    """Copy both ways until either side closes, then close both."""
    try:
        while True:
            readable, _, _ = select.select([local, remote], [], [], 60.0)
            if not readable:
                continue
            for source in readable:
                data = source.recv(CHUNK)
                if not data:
                    return
                (remote if source is local else local).sendall(data)
    except OSError:
        return
    finally:
        for closing in (local.close, stream.close):
            try:
                closing()
            except OSError:
                pass


class Forwarder:
    """127.0.0.1:<port> here -> `port` of the pod `pick()` names, in `namespace`, per connection."""

    def __init__(self, opener: Opener, namespace: str, pick: Callable[[], str], port: int, what: str) -> None:
        self.opener, self.namespace, self.pick, self.port, self.what = opener, namespace, pick, port, what
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.local_port = int(self._listener.getsockname()[1])
        self._closed = threading.Event()
        threading.Thread(target=self._accept, name=f"meshconform port-forward {what}", daemon=True).start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                local, _ = self._listener.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._carry, args=(local,), daemon=True).start()

    def _carry(self, local: socket.socket) -> None:
        try:
            stream = self.opener(self.namespace, self.pick(), self.port)
        except Exception:  # noqa: BLE001 (the caller sees a reset connection, as a failed kubectl port-forward)
            local.close()
            return
        _pump(local, stream.socket(self.port), stream)

    def close(self) -> None:
        self._closed.set()
        try:
            self._listener.close()
        except OSError:
            pass


def forwarded_post(opener: Opener, namespace: str, pod: str, port: int, path: str, body: Mapping[str, Any],
                   timeout: float) -> Any:
    """POST `body` as JSON to http://<pod>:<port>/<path> over a port-forward stream; the parsed JSON reply."""
    stream = opener(namespace, pod, port)
    try:
        connection = http.client.HTTPConnection("localhost", port, timeout=timeout)
        remote = stream.socket(port)
        remote.settimeout(timeout)
        connection.sock = remote  # already connected: http.client sends on it as it is
        payload = json.dumps(body).encode()
        connection.request("POST", "/" + path.lstrip("/"), body=payload,
                           headers={"Content-Type": "application/json", "Content-Length": str(len(payload))})
        reply = connection.getresponse()
        data = reply.read()
    except (OSError, http.client.HTTPException) as exc:
        error = stream.error(port)
        raise PlatformError(f"POST /{path.lstrip('/')} to {namespace}/{pod}:{port} through a port-forward: "
                            f"{type(exc).__name__}: {exc}" + (f" ({error.strip()})" if error else "")) from None
    finally:
        stream.close()
    try:
        return json.loads(data)
    except ValueError:
        raise PlatformError(f"POST /{path.lstrip('/')} to {namespace}/{pod}:{port}: the reply is not JSON: "
                            f"{data[:200]!r}") from None
