"""The one place meshconform talks to a Kubernetes API server: a thin, typed layer over the official `kubernetes`
client (37.x). Every call the platform makes is a method here, so the list of API calls is this file.

ApiClients apart for streams: `stream()` (exec, port-forward) swaps the transport of the client it is given for the
duration of the call, so a REST call on the same client from another thread would fail (kubernetes-client/python#928);
each stream opens on a client of its own, taken from a small pool. Every call has a deadline (KubeTimeouts):
`_request_timeout` on each request, the server's own timeoutSeconds on watches, and a deadline of ours on opening a
stream, whose websocket connect the client gives none (`_open_stream`)."""

from __future__ import annotations

import builtins
import json
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

from meshconform.errors import PlatformError
from meshconform.platform.kube.contracts import ClusterAccess
from meshconform.platform.kube.ownership import MANAGER, ObjectRef
from meshconform.platform.kube.portforward import Stream
from meshconform.platform.kube.timeouts import KubeTimeouts

T = TypeVar("T")


class ApplyRejected(PlatformError):
    """The API server (or an admission webhook) refused an object: the caller names its file."""

    def __init__(self, ref: ObjectRef, reason: str) -> None:
        self.ref = ref
        self.reason = reason
        super().__init__(f"apply {ref}: {reason}")


@dataclass(frozen=True)
class Listing:
    items: list[dict[str, Any]]
    resource_version: str


class KubeClient:
    """Calls on one cluster. Errors from the API become PlatformError naming the object and the server's reason."""

    def __init__(self, access: ClusterAccess, discovery_cache: Path, timeouts: KubeTimeouts | None = None) -> None:
        from kubernetes import config as _config
        from kubernetes.dynamic import DynamicClient as _DynamicClient
        config: Any = _config  # the client's functions are untyped; typed here, at its edge
        DynamicClient: Any = _DynamicClient  # noqa: N806
        self.access = access
        self.timeouts = timeouts or KubeTimeouts()
        self._streams = threading.Lock()  # guards the pool of idle stream clients
        self._idle_stream_apis: builtins.list[Any] = []
        if not access.kubeconfig.is_file():
            raise PlatformError(f"kubeconfig {access.kubeconfig} does not exist")
        try:
            # new_client_from_config: an independent ApiClient per cluster (never the global configuration).
            self.api: Any = config.new_client_from_config(config_file=str(access.kubeconfig), context=access.context,
                                                     persist_config=False)
            self.stream_api: Any = config.new_client_from_config(config_file=str(access.kubeconfig),
                                                            context=access.context, persist_config=False)
            self._idle_stream_apis.append(self.stream_api)  # the pool's first; more are made when streams overlap
            self._new_stream_api: Callable[[], Any] = lambda: config.new_client_from_config(
                config_file=str(access.kubeconfig), context=access.context, persist_config=False)
        except config.ConfigException as exc:
            raise PlatformError(f"kubeconfig {access.kubeconfig} (context {access.context or 'current'}): {exc}") \
                from None
        discovery_cache.parent.mkdir(parents=True, exist_ok=True)
        # The discovery cache in the platform's folder: never shared between runs or workers.
        try:
            self.dynamic: Any = DynamicClient(self.api, cache_file=str(discovery_cache))
        except Exception as exc:  # noqa: BLE001 (urllib3/ApiException: the cluster is not reachable)
            raise PlatformError(f"cannot reach the API server of {self._where()}: {_reason(exc)}") from None

    def _where(self) -> str:
        return f"context {self.access.context or '(current)'} in {self.access.kubeconfig}"

    # ------------------------------------------------------------------ discovery

    def server_version(self) -> dict[str, str]:
        """GET /version (read once by discovery): gitVersion, major, minor, platform."""
        version = self.dynamic.version
        return {str(k): str(v) for k, v in dict(version.get("kubernetes") or {}).items()}

    def _resource(self, api_version: str, kind: str) -> Any:
        from kubernetes.dynamic.exceptions import ResourceNotFoundError
        try:
            return self.dynamic.resources.get(api_version=api_version, kind=kind)
        except ResourceNotFoundError:
            raise PlatformError(f"the cluster does not serve {kind} in {api_version} (is the mesh's CRD "
                                "installed?)") from None

    # ------------------------------------------------------------------ objects

    def get(self, ref: ObjectRef) -> dict[str, Any] | None:
        """GET one object; None if it does not exist."""
        from kubernetes.dynamic.exceptions import NotFoundError
        resource = self._resource(ref.api_version, ref.kind)
        try:
            found = resource.get(name=ref.name, namespace=ref.namespace or None,
                                 _request_timeout=self.timeouts.api_call)
        except NotFoundError:
            return None
        except Exception as exc:  # noqa: BLE001
            raise PlatformError(f"GET {ref}: {_reason(exc)}") from None
        return cast(dict[str, Any], found.to_dict())

    def apply(self, doc: Mapping[str, Any], dry_run: bool = False) -> dict[str, Any]:
        """PATCH with Content-Type application/apply-patch+yaml, fieldManager=meshconform, force=true
        (server-side apply; force only ever reaches objects this run owns, see ownership); `dry_run`:
        dryRun=All, validated by the server and its admission webhooks (Istio's) but not stored."""
        ref = ObjectRef.of(doc)
        resource = self._resource(ref.api_version, ref.kind)
        try:
            applied = resource.server_side_apply(body=dict(doc), name=ref.name, namespace=ref.namespace or None,
                                                 field_manager=MANAGER, force_conflicts=True,
                                                 dry_run="All" if dry_run else None,
                                                 _request_timeout=self.timeouts.api_call)
        except Exception as exc:  # noqa: BLE001
            raise ApplyRejected(ref, _reason(exc)) from None
        return cast(dict[str, Any], applied.to_dict())

    def delete(self, ref: ObjectRef) -> bool:
        """DELETE one object (propagationPolicy=Background); False if it was already gone."""
        from kubernetes.dynamic.exceptions import NotFoundError
        resource = self._resource(ref.api_version, ref.kind)
        try:
            resource.delete(name=ref.name, namespace=ref.namespace or None, propagation_policy="Background",
                            _request_timeout=self.timeouts.api_call)
        except NotFoundError:
            return False
        except Exception as exc:  # noqa: BLE001
            raise PlatformError(f"delete {ref}: {_reason(exc)}") from None
        return True

    def list(self, api_version: str, kind: str, namespace: str | None = None, label_selector: str | None = None,
             field_selector: str | None = None) -> Listing:
        resource = self._resource(api_version, kind)
        try:
            found = resource.get(namespace=namespace, label_selector=label_selector, field_selector=field_selector,
                                 _request_timeout=self.timeouts.api_call)
        except Exception as exc:  # noqa: BLE001
            raise PlatformError(f"list {kind} in {namespace or 'all namespaces'}: {_reason(exc)}") from None
        data = found.to_dict()
        return Listing(list(data.get("items") or []), str((data.get("metadata") or {}).get("resourceVersion", "")))

    def watch(self, api_version: str, kind: str, namespace: str | None, label_selector: str | None,
              resource_version: str, timeout_seconds: int) -> Iterator[tuple[str, dict[str, Any]]]:
        """GET ...?watch=true&resourceVersion=..&timeoutSeconds=..: (event type, object) until the server ends it."""
        from kubernetes import watch as _watch
        watch: Any = _watch
        resource = self._resource(api_version, kind)
        watcher = watch.Watch()
        try:
            for event in self.dynamic.watch(resource, namespace=namespace, label_selector=label_selector,
                                            resource_version=resource_version or None,
                                            timeout=max(1, int(timeout_seconds)), watcher=watcher):
                yield str(event["type"]), dict(event["raw_object"])
        except Exception as exc:  # noqa: BLE001
            raise PlatformError(f"watch {kind} in {namespace or 'all namespaces'}: {_reason(exc)}") from None
        finally:
            watcher.stop()

    # ------------------------------------------------------------------ pods

    def pod_log(self, namespace: str, pod: str, container: str, tail_lines: int | None = None,
                since_seconds: int | None = None, timestamps: bool = False) -> str:
        """GET /api/v1/namespaces/{ns}/pods/{pod}/log?container=..[&tailLines=..][&sinceSeconds=..][&timestamps=true]"""
        from kubernetes import client
        try:
            return str(client.CoreV1Api(self.api).read_namespaced_pod_log(
                pod, namespace, container=container, tail_lines=tail_lines, since_seconds=since_seconds,
                timestamps=timestamps or None, _request_timeout=self.timeouts.exec_call))
        except Exception as exc:  # noqa: BLE001
            raise PlatformError(f"logs of {namespace}/{pod} container {container}: {_reason(exc)}") from None

    def exec(self, namespace: str, pod: str, container: str, command: builtins.list[str]) -> str:
        """GET (websocket) /api/v1/namespaces/{ns}/pods/{pod}/exec?container=..&command=..&stdout=true&stderr=true"""
        from kubernetes import client
        from kubernetes.stream import stream

        def run(api: Any) -> str:
            return str(stream(client.CoreV1Api(api).connect_get_namespaced_pod_exec, pod, namespace,
                              container=container, command=command, stderr=True, stdin=False, stdout=True,
                              tty=False, _request_timeout=self.timeouts.exec_call))
        # the client bounds the reading (_request_timeout), not the connect: this deadline covers both
        return self._open_stream(f"exec {' '.join(command)} in {namespace}/{pod} ({container})",
                                 self.timeouts.port_forward + self.timeouts.exec_call, run)

    def port_forward(self, namespace: str, pod: str, port: int) -> Stream:
        """GET (websocket) /api/v1/namespaces/{ns}/pods/{pod}/portforward?ports=..: a stream to the pod's port, through
        the API server and the kubelet (no kubectl; pods/portforward `create`)."""
        from kubernetes import client
        from kubernetes.stream import portforward

        def opened(api: Any) -> Stream:
            forward: Stream = portforward(client.CoreV1Api(api).connect_get_namespaced_pod_portforward, pod, namespace,
                                          ports=str(port), _request_timeout=self.timeouts.port_forward)
            return forward
        return self._open_stream(f"port-forward to {namespace}/{pod}:{port}", self.timeouts.port_forward, opened,
                                 on_late=lambda forward: forward.close())

    def _open_stream(self, what: str, deadline: float, call: Callable[[Any], T],
                     on_late: Callable[[T], None] | None = None) -> T:
        """`call(api)` on a stream client of the pool, in a thread of its own, waited on for at most `deadline`
        seconds. The client's websocket connect takes no timeout (kubernetes.stream.ws_client.create_websocket opens
        websocket-client's WebSocket without one: the TCP connect and the HTTP upgrade block until answered), so an
        API server or kubelet that accepts a connection and never answers would hold the run for ever. Past the
        deadline the error names what was being opened; the thread is left to end by itself (a daemon), what it
        opens late goes to `on_late` (to be closed), and its client is dropped instead of going back to the pool."""
        with self._streams:
            api = self._idle_stream_apis.pop() if self._idle_stream_apis else None
        if api is None:
            api = self._new_stream_api()
        settled = threading.Lock()
        outcome: dict[str, Any] = {}

        def attempt() -> None:
            value: Any = None
            failure: BaseException | None = None
            try:
                value = call(api)
            except Exception as exc:  # noqa: BLE001 (handed to the caller)
                failure = exc
            with settled:
                if not outcome.get("abandoned"):
                    outcome.update(value=value, failure=failure, done=True)
                    return
            if failure is None and on_late is not None:
                try:
                    on_late(value)
                except Exception:  # noqa: BLE001, S110 (closing what nobody waits for any more)
                    pass
            _close_quietly(api)

        worker = threading.Thread(target=attempt, name=f"meshconform {what}", daemon=True)
        worker.start()
        worker.join(deadline)
        with settled:
            if not outcome.get("done"):
                outcome["abandoned"] = True
                raise PlatformError(f"{what}: no answer within {deadline:g} s (opening the stream through the API "
                                    "server: the connection or its websocket upgrade was never answered; are the API "
                                    "server and the kubelet of the pod's node reachable?)")
        with self._streams:
            self._idle_stream_apis.append(api)
        if outcome["failure"] is not None:
            raise PlatformError(f"{what}: {_reason(outcome['failure'])}") from None
        result: T = outcome["value"]
        return result

    def pod_proxy_post(self, namespace: str, pod: str, port: int, path: str, body: Mapping[str, Any],
                       timeout: float) -> Any:
        """POST /api/v1/namespaces/{ns}/pods/{pod}:{port}/proxy/{path} with a JSON body: the API server carries one
        HTTP call to a port of the pod (the client app's control port); returns the parsed JSON reply."""
        target = f"/api/v1/namespaces/{namespace}/pods/{pod}:{port}/proxy/{path.lstrip('/')}"
        try:
            reply = self.dynamic.request("post", target, body=dict(body), serialize=False,
                                         _request_timeout=timeout)
        except Exception as exc:  # noqa: BLE001
            raise PlatformError(f"POST {target}: {_reason(exc)}") from None
        try:
            return json.loads(reply.data)
        except ValueError:
            raise PlatformError(f"POST {target}: the reply is not JSON: {reply.data[:200]!r}") from None

    def node_proxy_get(self, node: str, path: str, timeout: float) -> str:
        """GET /api/v1/nodes/{node}/proxy/{path} (Accept: text/plain): the API server carries one call to the node's
        kubelet (e.g. metrics/resource). Needs `get` on `nodes/proxy`; a 403 says so."""
        target = f"/api/v1/nodes/{node}/proxy/{path.lstrip('/')}"
        try:
            reply = self.dynamic.request("get", target, header_params={"Accept": "text/plain"}, serialize=False,
                                         _request_timeout=timeout)
        except Exception as exc:  # noqa: BLE001
            if getattr(exc, "status", None) == 403:
                raise PlatformError(
                    f"GET {target}: forbidden ({_reason(exc)}). Reading the proxies' CPU and memory from the "
                    "kubelet needs the kubeconfig's user to be allowed 'get' on 'nodes/proxy' (a ClusterRole rule: "
                    "apiGroups [\"\"], resources [\"nodes/proxy\"], verbs [\"get\"], bound with a "
                    "ClusterRoleBinding)") from None
            raise PlatformError(f"GET {target}: {_reason(exc)}") from None
        data = reply.data
        return data.decode(errors="replace") if isinstance(data, bytes) else str(data)

    def close(self) -> None:
        with self._streams:
            idle, self._idle_stream_apis = self._idle_stream_apis, []
        for api in {id(a): a for a in (self.api, self.stream_api, *idle)}.values():
            _close_quietly(api)


def _close_quietly(api: Any) -> None:
    try:
        api.close()
    except Exception:  # noqa: BLE001, S110 (closing a connection pool on the way out)
        pass


def _reason(exc: BaseException) -> str:
    """The API server's own message (Status.message) when there is one."""
    body = getattr(exc, "body", None)
    status = getattr(exc, "status", None)
    if isinstance(body, bytes):
        body = body.decode(errors="replace")
    if isinstance(body, str):
        try:
            message = json.loads(body).get("message")
        except (ValueError, AttributeError):
            message = body[:300]
        if message:
            return f"{status} {message}" if status else str(message)
    summary = getattr(exc, "summary", None)
    if callable(summary):
        return str(summary())
    return f"{type(exc).__name__}: {exc}"
