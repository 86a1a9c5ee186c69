"""The local platform: Bookinfo and the testbed as processes on loopback, each behind a real Envoy
sidecar, plus an ingress gateway Envoy, all configured from Istio YAML by the reference translator.

It is a reference data plane for developing and self-testing the suite. It is not Istio.

This class wires the parts, each with one job (as Locust's Environment does): `state` (typed run
state on disk), `reconcile` (desired resources -> snapshot and Envoy config, pure), `certificates`,
`processes` (start, stop, readiness), `envoy` (delivery and acceptance), `observation` (vantages,
logs, evidence)."""

from __future__ import annotations

import json
import time
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from filelock import FileLock

from meshconform import __version__
from meshconform.errors import ConfigError, PlatformError
from meshconform.interrupts import sigterm_as_interrupt
from meshconform.meshapi.loader import Sourced, load_files
from meshconform.platform.api import (
    INGRESS,
    MESHED_CLIENT,
    Applied,
    ContainerState,
    Endpoint,
    FoundObject,
    LoadTarget,
    ProxyUsage,
    Workload,
)
from meshconform.platform.local import addresses, envoy, observation, reconcile
from meshconform.platform.local.ca import CertificateAuthority
from meshconform.platform.local.fidelity import under_test_block
from meshconform.platform.local.misbehaviour import Misbehaviour, parse
from meshconform.platform.local.observation import LocalVantage
from meshconform.platform.local.processes import GATEWAY_KEY, OUTBOUND_PORT, Processes, tail
from meshconform.platform.local.state import (
    EnvoyInfo,
    ParsedResources,
    RunFiles,
    RunState,
    UnreadableState,
    stored,
)
from meshconform.platform.local.supervisor import ProcessRecord, Supervisor
from meshconform.platform.local.translator import MeshSnapshot
from meshconform.platform.local.translator.clusters import selected_pods
from meshconform.platform.local.translator.model import ROOT_NAMESPACE, Pod

READY_DEADLINE_S = 60.0
CONVERGE_DEADLINE_S = 30.0
LOCK_TIMEOUT_S = 120.0


def base_manifests() -> list[Path]:
    folder = Path(str(resources.files("meshconform.bookinfo"))) / "manifests"  # data, as kube reads it: no import
    return [folder / "namespaces.yaml", folder / "bookinfo.yaml", folder / "testbed.yaml"]


class LocalPlatform:
    """See the module docstring. State lives in the run directory, so a later process (the CLI's
    `apply` or `down`) can pick up a platform that an earlier `up` started."""

    name = "local"

    def __init__(self, run_dir: Path, misbehave: Collection[str] = frozenset(),
                 manifests: Sequence[Path] | None = None) -> None:
        try:
            self._misbehave = parse(misbehave)
        except ValueError as exc:
            raise PlatformError(str(exc)) from None
        self.files = RunFiles(Path(run_dir).resolve())
        self.manifests = list(manifests) if manifests is not None else base_manifests()
        self.supervisor = Supervisor(self.files.processes)
        self.processes = Processes(self.files, self.supervisor)
        self._parsed = ParsedResources()
        self._unreadable: UnreadableState | None = None
        try:
            self._state = RunState.load(self.files.state)
        except UnreadableState as exc:  # said by every command but `down`, which needs only the processes' record
            self._state, self._unreadable = None, exc
        if self._state is not None:
            self._misbehave = parse(self._state.misbehave)
        self._restore_misbehave: frozenset[Misbehaviour] | None = None
        self._snapshot_cache: tuple[object, object, frozenset[Misbehaviour], MeshSnapshot] | None = None
        self._logs = observation.JsonLogReader()
        self._computed_cleanly: set[str] = set()  # reconcile.inputs_key of desired states compute accepted
        # What the mesh as found excludes (found_config): a platform this process brought up holds only its own
        # set-up; one it attached to holds what others applied, besides what this process applies itself.
        self._brought_up = False
        self._applied_here: set[tuple[str, str, str]] = set()

    # ------------------------------------------------------------------ lifecycle

    @property
    def misbehave(self) -> frozenset[Misbehaviour]:
        return self._misbehave

    @property
    def folder(self) -> Path:
        return self.files.root

    @property
    def state(self) -> RunState:
        if self._state is None:
            raise self._unreadable or PlatformError(f"no local platform in {self.files.root}: run 'meshconform up' "
                                                    "first")
        return self._state

    @property
    def endpoint(self) -> Endpoint:
        ports = self.state.gateway_ports
        https = f"https://127.0.0.1:{ports['https']}" if self._has_tls_server() else None
        return Endpoint(f"http://127.0.0.1:{ports['http']}", https, {"ca_cert": str(self.files.certs / "ca.pem")})

    def is_up(self) -> bool:
        known = self._state is not None or self._unreadable is not None  # a state file, readable or not
        return known and any(self.supervisor.is_alive(r) for r in self.supervisor.records())

    def up(self) -> Endpoint:
        if self.is_up():
            raise PlatformError(f"the local platform in {self.files.root} is already up; run 'meshconform down' first")
        binary = envoy.envoy_binary()
        self._brought_up = True
        self.files.root.mkdir(parents=True, exist_ok=True)
        self._state = RunState(block=addresses.pick_block(),
                               gateway_ports={"http": addresses.free_port(), "https": addresses.free_port()},
                               envoy=EnvoyInfo(binary.path, binary.version, binary.sha256),
                               misbehave=sorted(self._misbehave))
        self._state.save(self.files.state)
        try:
            with sigterm_as_interrupt():
                CertificateAuthority(self.files.certs)  # created now: the app launcher trusts it (SSL_CERT_FILE)
                self.processes.start_launcher()  # its imports overlap the first translation
                self.apply(load_files(self.manifests))
        except BaseException:
            self.down()
            raise
        return self.endpoint

    def down(self) -> None:
        self.supervisor.stop()
        if self._state is not None and self.files.state.exists():
            self._state.stopped = time.time()
            self._state.save(self.files.state)

    def misbehave_for_session(self, misbehave: Collection[str]) -> None:
        """Switch misbehaviours on an attached platform until `detach` (self-tests share one platform)."""
        if self._restore_misbehave is None:
            self._restore_misbehave = self._misbehave
        if parse(misbehave) != self._misbehave:
            self.misbehave_as(misbehave)

    def detach(self) -> None:
        self._deliver_pending()  # the platform stays up: leave it running what it says it runs
        if self._restore_misbehave is not None and self._restore_misbehave != self._misbehave:
            self.misbehave_as(self._restore_misbehave)
        self._restore_misbehave = None

    def misbehave_as(self, misbehave: Collection[str]) -> None:
        """Switch the deliberate misbehaviours of a running platform (self-tests only): every proxy
        gets re-translated config, and pods restart if injection changes."""
        try:
            chosen = parse(misbehave)
        except ValueError as exc:
            raise PlatformError(str(exc)) from None
        with self._locked() as state:
            self._misbehave = chosen
            state.misbehave = sorted(chosen)
            self._reconcile(state, self._parsed.of(state.resources), state.next_seq)

    # ------------------------------------------------------------------ config

    def apply(self, resources: Sequence[Sourced]) -> None:
        self._applied_here.update(item.key for item in resources)
        with self._locked() as state:
            desired, next_seq = reconcile.merged(self._parsed.of(state.resources), resources, state.next_seq)
            self._reconcile(state, desired, next_seq)

    def resources(self) -> list[Sourced]:
        """What is applied now, in creation order (for analysis of what is applied next)."""
        return [item for _, item in self._parsed.of(self.state.resources)]

    def applied(self) -> list[Applied]:
        """What is applied now (the desired state, as `kubectl get` lists the API server's), in creation order, with
        when each was first applied (`meshconform get`). Nothing is delivered here: a test's config warnings list
        it after every test, and delivering then would undo the deferred delete's saving (one reconciliation
        between two tests, not two)."""
        created = {r.seq: r.created or self.state.started for r in self.state.resources}
        return [Applied(item, created[seq]) for seq, item in self._parsed.of(self.state.resources)]

    def found_config(self) -> list[FoundObject]:
        """The mesh as found (api.SupportsFoundConfig): what this platform holds beyond its own Bookinfo and testbed
        that this process did not apply, i.e. what a user applied (`meshconform apply`) before this process
        attached to it. A platform this process brought up holds nothing else."""
        if self._brought_up:
            return []
        base = {str(path) for path in self.manifests}
        found = []
        for item in self.resources():
            if item.source in base or item.key in self._applied_here:
                continue
            meta = item.resource.metadata
            scope = (f"mesh-wide: root namespace {ROOT_NAMESPACE}" if meta.namespace == ROOT_NAMESPACE
                     else f"namespace {meta.namespace}, applied from {item.source}")
            found.append(FoundObject(str(item.document.get("apiVersion", "")), item.resource.kind, meta.namespace,
                                     meta.name, item.document, scope))
        return found

    def delete(self, resources: Sequence[Sourced], ignore_missing: bool = False) -> list[Sourced]:
        with self._locked() as state:
            remaining, missing = self._without(state, resources, ignore_missing)
            self._reconcile(state, remaining, state.next_seq)
        return missing

    def delete_later(self, resources: Sequence[Sourced], ignore_missing: bool = False) -> None:
        """Take `resources` out of the desired state now; the next apply, send or status delivers it (see
        api.SupportsDeferredDelete). Checked like `delete`; nothing on the data plane changes yet."""
        with self._locked() as state:
            remaining, _ = self._without(state, resources, ignore_missing)
            items = [item for _, item in remaining]
            key = reconcile.inputs_key(items, state, self._misbehave)
            # Errors now. A test's cleanup mostly returns to a state computed cleanly before (compute is pure).
            if key not in self._computed_cleanly:
                reconcile.compute(items, state, self.files, self._misbehave)
                self._computed_cleanly.add(key)
            state.resources = stored(remaining, state.resources)
            state.undelivered = True
            state.save(self.files.state)

    def _without(self, state: RunState, resources: Sequence[Sourced], ignore_missing: bool
                 ) -> tuple[list[tuple[int, Sourced]], list[Sourced]]:
        """What stays applied once `resources` are deleted, and those of `resources` that were not there."""
        current = self._parsed.of(state.resources)
        present = {item.key for _, item in current}
        missing = [item for item in resources if item.key not in present]
        if missing and not ignore_missing:
            item = missing[0]
            raise ConfigError("not found on the platform", source=item.source, resource=item.resource.ref)
        keys = {item.key for item in resources}
        return [(s, item) for s, item in current if item.key not in keys], missing

    def _deliver_pending(self) -> None:
        """Deliver what delete_later left undelivered, before anything observes the data plane."""
        if self._state is None or not self._state.undelivered:
            return
        with self._locked() as state:
            if state.undelivered:
                self._reconcile(state, self._parsed.of(state.resources), state.next_seq)

    def _reconcile(self, state: RunState, desired: list[tuple[int, Sourced]], next_seq: int) -> None:
        """Compute everything first (nothing changes on a ConfigError), then issue certificates,
        start/stop processes, write Envoy config, and wait until every proxy runs it. A rejection
        restores the previous resources."""
        since = time.time()
        items = [item for _, item in desired]
        key = reconcile.inputs_key(items, state, self._misbehave)
        target = reconcile.compute(items, state, self.files, self._misbehave)
        self._computed_cleanly.add(key)
        previous, was_undelivered = state.resources, state.undelivered
        state.pod_ips = target.pod_ips
        state.resources = stored(desired, previous)
        state.next_seq = next_seq
        state.undelivered = False
        try:
            target.certificates.issue(target.snapshot)
            self._write_services(target.snapshot)
            gateway = next(p for p in target.snapshot.pods if p.is_gateway)
            deadline = time.monotonic() + READY_DEADLINE_S
            started = self.processes.sync(state.pods, target.specs, gateway, target.configs, deadline,
                                          READY_DEADLINE_S)
            state.save(self.files.state)
            self._deliver(target, started, since, deadline)
        except PlatformError:
            state.resources = previous
            state.undelivered = was_undelivered
            state.save(self.files.state)
            raise
        except KeyboardInterrupt:
            # Ctrl-C half-way: some proxies may run the new config and others not, a new pod may have started. Back
            # to the previous resources, marked undelivered: the next command that observes or applies delivers them
            # to every proxy, so nothing half-applied stays (it stayed, and the state said it was all applied).
            state.resources = previous
            state.undelivered = True
            state.save(self.files.state)
            raise
        state.save(self.files.state)

    def _write_services(self, snapshot: MeshSnapshot) -> None:
        """Name -> endpoints, for workloads without a sidecar (our stand-in for DNS + kube-proxy)."""
        table = {f"{s.fqdn}:{p.port}": [f"{pod.ip}:{p.container_port}" for pod in selected_pods(snapshot, s, None)]
                 for s in snapshot.services for p in s.spec.ports}
        tmp = self.files.services.with_suffix(".tmp")
        tmp.write_text(json.dumps(table, indent=1))
        tmp.replace(self.files.services)

    def _deliver(self, target: reconcile.Desired, started: list[str], since: float, deadline: float) -> None:
        proxies = {}
        for pod in target.snapshot.pods:
            key = f"{pod.namespace}/{pod.name}"
            if key not in target.configs:
                continue
            folder = self.files.proxy_dir(pod)
            log = folder / "envoy.log"
            offset = log.stat().st_size if log.exists() else 0
            expected = envoy.write_xds(folder / "xds", target.configs[key])
            fresh = (GATEWAY_KEY if pod.is_gateway else key) in started
            if expected.changed or fresh:  # an untouched running proxy already runs (and drained) this config
                proxies[key] = (envoy.Admin(pod.ip, keep_alive=True), expected, log, offset)
        self.processes.raise_if_gone()  # a proxy whose keeper is gone will never take the config
        self.processes.wait_ready(target.snapshot, started, deadline, READY_DEADLINE_S, since)
        try:
            envoy.wait_accepted(proxies, max(1.0, deadline - time.monotonic()) if started else CONVERGE_DEADLINE_S)
        except PlatformError:
            self.processes.raise_if_crashed(since, "while the configuration was delivered")
            raise

    @contextmanager
    def _locked(self) -> Iterator[RunState]:
        current = self.state  # raises the "no platform here" error before waiting on a lock
        with FileLock(str(self.files.lock), timeout=LOCK_TIMEOUT_S):
            self._state = RunState.load(self.files.state) or current
            yield self._state

    def _has_tls_server(self) -> bool:
        for entry in self.state.resources:
            document = entry.document
            servers = document.get("spec", {}).get("servers", []) if document.get("kind") == "Gateway" else []
            if any((server.get("port") or {}).get("protocol") == "HTTPS" for server in servers):
                return True
        return False

    # ------------------------------------------------------------------ observation

    def _snapshot(self) -> MeshSnapshot:
        """The snapshot of what is applied now. Kept while the state's resources and addresses are the same
        objects (every change replaces them): checks look up pods on every log poll, and rebuilding the
        topology each time was a measurable share of the suite's CPU."""
        state = self.state
        cached = self._snapshot_cache
        if cached is not None and cached[0] is state.resources and cached[1] is state.pod_ips \
                and cached[2] == self._misbehave:
            return cached[3]
        items = [item for _, item in self._parsed.of(state.resources)]
        snapshot = reconcile.snapshot_of(items, state, self._misbehave)[0]
        self._snapshot_cache = (state.resources, state.pod_ips, self._misbehave, snapshot)
        return snapshot

    def pods_of(self, namespace: str, deployment: str) -> list[Pod]:
        """The local pods of a Deployment, with their loopback addresses (local-specific, not the Platform API)."""
        return [p for p in self._snapshot().pods if p.namespace == namespace and p.deployment == deployment]

    def workloads(self) -> list[Workload]:
        self._deliver_pending()  # a deleted Deployment's processes stop on delivery
        records = {r.name: r for r in self.supervisor.records()}
        result = []
        for pod in self._snapshot().pods:
            names = ([("istio-proxy", "envoy:gateway")] if pod.is_gateway else
                     [("app", f"app:{pod.namespace}/{pod.name}")]
                     + ([("istio-proxy", f"envoy:{pod.namespace}/{pod.name}")] if pod.injected else []))
            containers = tuple(self._container(container, records.get(process)) for container, process in names)
            result.append(Workload(pod.name, pod.namespace, pod.deployment, pod.labels, pod.injected, pod.identity,
                                   all(c.state == "running" for c in containers), containers, pod.ip))
        return result

    def _container(self, name: str, record: ProcessRecord | None) -> ContainerState:
        if record is None:
            return ContainerState(name, "stopped")
        status = self.supervisor.status(record)
        return ContainerState(name, status.state, status.restarts,
                              status.last_exit.describe() if status.last_exit else None)

    def vantage(self, name: str) -> LocalVantage:
        if name == INGRESS:
            return LocalVantage.ingress(name, self.state.gateway_ports, self._deliver_pending)
        namespace, _, deployment = name.rpartition("/")
        pods = self.pods_of(namespace or "default", deployment)
        if not pods:
            raise PlatformError(f"no vantage {name!r}: use 'ingress' or '<namespace>/<client deployment>'")
        return LocalVantage.client(name, pods[0], self._deliver_pending)

    def in_flight(self, workloads: Collection[tuple[str, str]],
                  request_ids: Collection[str] | None = None) -> dict[str, int]:
        """Requests under way at these workloads' pods (api.SupportsInFlight)."""
        self._deliver_pending()
        wanted = set(workloads)
        return observation.in_flight([p for p in self._snapshot().pods if (p.namespace, p.deployment) in wanted],
                                     request_ids)

    def request_log(self, namespace: str, deployment: str) -> list[dict[str, Any]]:
        return self._logs.records(self.files.request_log(p.namespace, p.name)
                                  for p in self.pods_of(namespace, deployment))

    def access_log(self, namespace: str, deployment: str) -> list[dict[str, Any]]:
        return self._logs.records(self.files.proxy_dir(p) / "access.log" for p in self.pods_of(namespace, deployment))

    def evidence(self, namespace: str, deployment: str, hosts: Collection[str] = ()) -> dict[str, Any]:
        """Proxy routes and access logs per pod, and its containers' states: a test that ran while a
        process was down says so (restarts, how and when it last ended)."""
        found = observation.evidence(self.files, self.pods_of(namespace, deployment), hosts)
        for workload in self.workloads():
            if workload.namespace == namespace and workload.deployment == deployment:
                found.setdefault(workload.name, {})["containers"] = [
                    {"name": c.name, "state": c.state, "restarts": c.restarts, "last_exit": c.last_exit}
                    for c in workload.containers]
        return found

    def load_targets(self, service: str = "productpage", port: int = 9080,
                     plain_namespace: str | None = None) -> dict[str, LoadTarget]:
        """Addresses a load generator uses to reach `service` (in `default`) four ways:
        'ingress' (the gateway), 'in-mesh' (the meshed client's sidecar, as the client app uses it),
        'mesh' (a pod of the service through its sidecar), and 'no-mesh': the same service's pod in
        `plain_namespace` (a namespace without injection), or else straight to the meshed pod's app
        port (skipping only its inbound sidecar)."""
        self._deliver_pending()
        snapshot = self._snapshot()

        def pod_of(namespace: str) -> Pod:
            for pod in snapshot.pods:
                if pod.namespace == namespace and pod.labels.get("app") == service and port in pod.container_ports:
                    return pod
            raise PlatformError(f"no pod of service {service!r} with port {port} in namespace {namespace!r}")
        meshed = pod_of("default")
        client_ns, _, client = MESHED_CLIENT.partition("/")
        clients = [p for p in snapshot.pods if p.namespace == client_ns and p.deployment == client and p.injected]
        targets = {INGRESS: LoadTarget(INGRESS, self.endpoint.http, None, True),
                   "mesh": LoadTarget("mesh", f"http://{meshed.ip}:{port}", None, meshed.injected)}
        if clients:
            targets["in-mesh"] = LoadTarget("in-mesh", f"http://{clients[0].ip}:{OUTBOUND_PORT}", f"{service}:{port}",
                                            True)
        if plain_namespace is not None:
            plain = pod_of(plain_namespace)
            targets["no-mesh"] = LoadTarget("no-mesh", f"http://{plain.ip}:{port}", None, plain.injected)
        else:
            targets["no-mesh"] = LoadTarget("no-mesh", f"http://{meshed.ip}:{meshed.app_port(port)}", None, False)
        return targets

    def unavailable_load_targets(self) -> dict[str, str]:
        """None: every target is a loopback address of this host."""
        return {}

    def proxy_usage(self) -> dict[str, ProxyUsage]:
        """CPU seconds and resident memory of every running proxy (gateway and sidecars), by name."""
        import psutil
        usage: dict[str, ProxyUsage] = {}
        for record in self.supervisor.records():
            if not record.name.startswith("envoy:"):
                continue
            status = self.supervisor.status(record)  # the Envoy itself, not the keeper that restarts it
            if status.pid is None:
                continue
            try:
                process = psutil.Process(status.pid)
                times, memory = process.cpu_times(), process.memory_info()
            except psutil.Error:
                continue
            usage[record.name.removeprefix("envoy:")] = ProxyUsage(
                times.user + times.system, memory.rss, "resident set size", "process accounting (psutil)")
        return usage

    def diagnostics(self, reason: str = "") -> list[Path]:
        """Every process's state (as `status` shows it) and the log tails of those that ever exited."""
        folder = self.files.root / "diagnostics" / time.strftime("%Y%m%d-%H%M%S")
        try:
            folder.mkdir(parents=True, exist_ok=True)
            lines = [reason, ""] if reason else []
            logs = []
            for record in self.supervisor.records():
                status = self.supervisor.status(record)
                lines.append(f"{record.name}: {status.describe()} (log {record.log})")
                if status.last_exit is not None or status.state != "running":
                    logs.append(f"== {record.name}\n{tail(Path(record.log), 40)}")
            (folder / "processes.txt").write_text("\n".join(lines) + "\n")
            written = [folder / "processes.txt"]
            if logs:
                (folder / "exited-logs.txt").write_text("\n\n".join(logs) + "\n")
                written.append(folder / "exited-logs.txt")
            return written
        except OSError:
            return []

    def describe(self) -> dict[str, Any]:
        env = self._state.envoy if self._state is not None else None
        return {"platform": "local",
                "description": "meshconform's local reference data plane: processes on loopback behind real Envoy "
                               "proxies configured by meshconform's own translator from Istio resources. Not Istio.",
                "mesh": {"name": "meshconform-reference-translator", "version": __version__,
                         "istio_semantics": "Istio 1.28+ defaults (no -shadow suffix, no 503 default retries)"},
                "proxy": {"name": "envoy", "version": env.version if env else None,
                          "sha256": env.sha256 if env else None},
                "fidelity": under_test_block(),
                "misbehave": sorted(self._misbehave),
                # the platform fact the Kubernetes platform decides from the mesh config; here always so
                "access_log": {"readable": True, "decided_by": "the local platform: every Envoy it starts writes an "
                                                               "access log it reads"},
                "run_dir": str(self.files.root)}


__all__ = ["LocalPlatform", "LocalVantage"]
