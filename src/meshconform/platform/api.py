"""The platform-neutral API. Conformance tests talk to this and nothing else.

A platform brings a mesh up and down, applies and deletes resources (returning once its data plane
has them), sends batches of requests from a vantage point, and lets tests observe workloads.
Platforms are chosen and attached through `meshconform.platform.registry`."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from meshconform.errors import PlatformError
from meshconform.meshapi.loader import Sourced
from meshconform.traffic.model import Request, Response

INGRESS = "ingress"
# In a platform's folder: the lines of its long steps meant for the user's terminal (kind create, istioctl install),
# one per line as printed; under pytest-xdist, which relays no worker's stderr, the controller prints them from here.
PROGRESS_LOG = "progress.log"
MESHED_CLIENT = "default/client"
UNMESHED_CLIENT = "legacy/client"


@dataclass(frozen=True)
class ContainerState:
    """One container of a pod, as `kubectl get pods` shows it."""

    name: str  # "app" or "istio-proxy"
    state: str  # running | restarting | stopped
    restarts: int = 0
    last_exit: str | None = None  # how and when it last ended, e.g. "killed by signal 9 at 10:42:03"


@dataclass(frozen=True)
class Workload:
    name: str  # pod name
    namespace: str
    deployment: str
    labels: dict[str, str]
    sidecar: bool
    identity: str
    ready: bool = True
    containers: tuple[ContainerState, ...] = ()
    address: str | None = None  # the pod's IP (None until it has one): what a caller connects to without a Service

    @property
    def restarts(self) -> int:
        return sum(c.restarts for c in self.containers)


class NotApplicableHere(PlatformError):
    """What a check asked to observe, this platform cannot give (a fact about the platform or the mesh as found,
    decided once, not a failure to wait out). A check that meets one is reported not applicable, with this reason,
    never failed: the plugin turns it into a skip whichever check raised it."""


class RequestsNotRecorded(NotApplicableHere):
    """A workload's app keeps no request records the platform can read: on a cluster, Istio's own Bookinfo images
    log plain text, and only the testbed's agent writes one record per request. A check that reads them reports
    itself not applicable there, with this reason, rather than failing."""


class AccessLogNotRecorded(NotApplicableHere):
    """The mesh writes no access log the platform can read: on a mesh installed without access logging (MeshConfig
    `accessLogFile` empty and no Telemetry resource enabling it), to a file instead of the proxy's stdout, or in a
    custom format. Decided once, when the platform comes up or is attached, and recorded in its description."""


@dataclass(frozen=True)
class Endpoint:
    """Where the outside world reaches the mesh."""

    http: str
    https: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Vantage(Protocol):
    name: str

    def send(self, requests: Sequence[Request], concurrency: int = 10,
             reuse_connections: bool = True) -> list[Response]:
        """Send all requests from this vantage point, in one go; results in request order."""
        ...


class Platform(Protocol):
    name: str

    @property
    def folder(self) -> Path:
        """Where this platform keeps its state, logs and diagnostics (inside the run's folder)."""
        ...

    @property
    def endpoint(self) -> Endpoint:
        """Where the outside world reaches the mesh (valid once up)."""
        ...

    def up(self) -> Endpoint:
        """Create what the platform needs, install the mesh and the workloads, wait until ready."""
        ...

    def down(self) -> None:
        """Remove everything `up` created, and nothing else."""
        ...

    def is_up(self) -> bool: ...

    def detach(self) -> None:
        """Stop using a platform this process attached to, leaving it running (undoing any
        session-only change made on attach, e.g. the local platform's self-test misbehaviours)."""
        ...

    def apply(self, resources: Sequence[Sourced]) -> None: ...

    def delete(self, resources: Sequence[Sourced], ignore_missing: bool = False) -> list[Sourced]:
        """Delete what `resources` name; returns those that were not there (a missing one is an error unless
        `ignore_missing`), so a caller can say what was deleted and what was not found."""
        ...

    def workloads(self) -> list[Workload]: ...

    def vantage(self, name: str) -> Vantage: ...

    def request_log(self, namespace: str, deployment: str) -> list[dict[str, Any]]:
        """Requests the workload's app received (one dict per request, with `request_id`). Raises
        `RequestsNotRecorded` where the app keeps no such records (a check built on them does not apply there)."""
        ...

    def access_log(self, namespace: str, deployment: str) -> list[dict[str, Any]]:
        """The access log of the workload's proxies (the gateway: "istio-system", "istio-ingressgateway"), one
        dict per request with at least `request_id`, `status`, `flags` (Envoy's %RESPONSE_FLAGS%, e.g. "UO",
        "UT", "NR"), `details` (%RESPONSE_CODE_DETAILS%) and `direction` ("inbound", "outbound" or "gateway").
        Istio's default access log carries the same fields. Raises `AccessLogNotRecorded` at once where the mesh
        writes none the platform can read (a check built on it does not apply there)."""
        ...

    def evidence(self, namespace: str, deployment: str, hosts: Collection[str] = ()) -> dict[str, Any]:
        """Proxy config excerpts (the parts about `hosts`, if given) and access-log lines for a
        failing test's report."""
        ...

    def describe(self) -> dict[str, Any]:
        """What is under test, with versions, for the report."""
        ...

    def diagnostics(self, reason: str = "") -> list[Path]:
        """After a failure: write what is worth reading (pods, events, proxy status and config, logs; secrets
        redacted) under the platform's folder and return the files. Never raises."""
        ...


@dataclass(frozen=True)
class LoadTarget:
    """Where a load generator outside the mesh sends requests (performance runs).

    `host` is the Host header to send (None: the URL's own). `meshed`: the first hop is a proxy."""

    name: str
    base_url: str
    host: str | None
    meshed: bool


@dataclass(frozen=True)
class ProxyUsage:
    """One proxy's resource use so far: CPU seconds consumed since it started, and its memory now, with what that
    memory figure is (`memory_metric`) and where both come from (`source`): platforms measure differently."""

    cpu_seconds: float
    memory_bytes: int
    memory_metric: str = "resident set size"
    source: str = "process accounting (psutil)"
    # When the CPU counter was read, if the source says (epoch seconds): the kubelet refreshes its stats
    # periodically, so a sample taken now may hold a reading from seconds ago. None: read when sampled.
    cpu_read_at: float | None = None


LOAD_TARGETS = ("ingress", "in-mesh", "mesh", "no-mesh")


@runtime_checkable
class SupportsDeferredDelete(Protocol):
    """A platform that can take resources out of its desired state now and deliver that with whatever touches
    the data plane next (an apply, a send from a vantage, a status). Between two tests this makes one
    reconciliation instead of two: the next test's apply removes the last test's config and adds its own."""

    def delete_later(self, resources: Sequence[Sourced], ignore_missing: bool = False) -> None:
        """Remove `resources` from what is applied, as `delete` does, without waiting for the proxies to
        change; every observation through the Platform API afterwards sees them gone."""
        ...


@dataclass(frozen=True)
class Applied:
    """A resource a platform holds, and when it was first applied (its creationTimestamp: an update keeps it)."""

    item: Sourced
    created: float  # seconds since the epoch


@runtime_checkable
class SupportsListing(Protocol):
    """A platform that can list what is applied on it (`meshconform get`): the local platform, which holds the
    desired state itself. On kind and cluster, kubectl lists the cluster's objects."""

    def applied(self) -> list[Applied]: ...


def everything_applied(platform: object) -> list[Sourced] | None:
    """What `platform` holds, in creation order, where it can list it (`SupportsListing`); None where it cannot (on
    kind and cluster an analysis cannot tell a missing Service from one it does not see)."""
    if not isinstance(platform, SupportsListing) or not callable(platform.applied):  # isinstance sees a name only
        return None
    return [entry.item for entry in platform.applied()]


@runtime_checkable
class SupportsInFlight(Protocol):
    """A platform that can tell whether requests are still under way anywhere in its data plane. A check that
    counts what arrived late (a mirror's copies, tries the caller gave up on) waits for that instead of for a
    count that has stopped growing for a while, which is a guess: faster when nothing is left, and still right
    when a copy is slow to land. Platforms without it are settled by the quiet window (`settle_quiet`)."""

    def in_flight(self, workloads: Collection[tuple[str, str]],
                  request_ids: Collection[str] | None = None) -> dict[str, int]:
        """Requests under way now at the pods of these (namespace, deployment) workloads, by '<namespace>/<pod>',
        only where some are: a proxy's requests to upstreams not yet answered (pending included) and those it
        received not yet answered, and an app's requests not yet answered (only those carrying one of
        `request_ids` as x-request-id, if given). {}: all of that has been answered or abandoned, and the apps
        have logged it (`request_log` is complete for them). Scoped, because an earlier check may leave a slow
        request behind (an app still sleeping on a request its caller gave up on)."""
        ...


@runtime_checkable
class SupportsLoad(Protocol):
    """What `meshconform perf` needs beyond `Platform` (local: processes on loopback; kind: an injected vs a
    non-injected namespace through published nodePorts, proxies' use from the kubelet; cluster: the ingress)."""

    def load_targets(self, service: str = "productpage", port: int = 9080,
                     plain_namespace: str | None = None) -> dict[str, LoadTarget]:
        """Named base URLs for load from outside the mesh: 'ingress', 'in-mesh' (through a meshed
        client's sidecar; with a Host header), 'mesh' (the service's pod through its sidecar) and
        'no-mesh' (the service's pod in `plain_namespace`, where nothing is injected). Only those this
        platform can offer (see `unavailable_load_targets`)."""
        ...

    def unavailable_load_targets(self) -> dict[str, str]:
        """The targets of LOAD_TARGETS this platform cannot offer, each with why; answerable before `up`
        (then: by design) and after it (then also what the running platform lacks)."""
        ...

    def proxy_usage(self) -> dict[str, ProxyUsage]:
        """Every running proxy's cumulative CPU seconds and memory, by '<namespace>/<pod>' (namespaces as the
        suite names them)."""
        ...


@dataclass(frozen=True)
class FoundObject:
    """Mesh configuration a platform holds that neither the platform's own set-up (its Bookinfo and testbed) nor
    this run created: a user's VirtualService, a vendor's mesh-wide policy. `scope` says where it applies
    ("mesh-wide: root namespace istio-system", "namespace default", ...); `document` is the object as stored."""

    api_version: str
    kind: str
    namespace: str
    name: str
    document: dict[str, Any]
    scope: str

    @property
    def ref(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"

    @property
    def key(self) -> tuple[str, str, str]:
        """As `Sourced.key`: (kind, namespace, name)."""
        return (self.kind, self.namespace, self.name)


@runtime_checkable
class SupportsFoundConfig(Protocol):
    """A platform that can list the mesh as it found it: configuration it did not create that can change what a check
    sees (root-namespace and namespace-wide PeerAuthentication, AuthorizationPolicy, RequestAuthentication, Sidecar,
    EnvoyFilter; VirtualServices, DestinationRules, ServiceEntries and Gateways visible to the suite's namespaces
    or its ingress). The suite names these before any check (suite/found.py), never leaving them to a timeout."""

    def found_config(self) -> list[FoundObject]:
        """That configuration as it is now, namespaces as the suite names them."""
        ...
