"""The local platform: Bookinfo and the testbed as processes on loopback, each behind a real Envoy
sidecar, plus an ingress gateway Envoy, all configured from Istio YAML by the reference translator.

It is a reference data plane for developing and self-testing the suite. It is not Istio."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from filelock import FileLock

from meshconform import __version__
from meshconform.errors import ConfigError, PlatformError
from meshconform.interrupts import sigterm_as_interrupt
from meshconform.meshapi.loader import Sourced, load_files, parse_document
from meshconform.platform.api import INGRESS, MESHED_CLIENT, Endpoint, LoadTarget, ProxyUsage, Workload
from meshconform.platform.local import addresses, envoy, topology
from meshconform.platform.local.ca import CertificateAuthority, write_private
from meshconform.platform.local.supervisor import Supervisor
from meshconform.platform.local.translator import MISBEHAVIOURS, GatewayPorts, MeshSnapshot, Pod, translate
from meshconform.traffic.model import Request, Response
from meshconform.traffic.sender import send_batch
from meshconform.traffic.transport import DirectTransport

CLIENT_CONTROL_PORT = 15900
READY_DEADLINE_S = 60.0
CONVERGE_DEADLINE_S = 30.0


def base_manifests() -> list[Path]:
    from meshconform import bookinfo  # type: ignore[attr-defined]  # mapped from bookinfo/ at install
    folder = Path(bookinfo.__file__).parent / "manifests"
    return [folder / "namespaces.yaml", folder / "bookinfo.yaml", folder / "testbed.yaml"]


@dataclass
class _Files:
    """Where everything of one run lives (all under the run directory)."""

    root: Path

    @property
    def state(self) -> Path:
        return self.root / "platform.json"

    @property
    def processes(self) -> Path:
        return self.root / "processes.json"

    @property
    def services(self) -> Path:
        return self.root / "services.json"

    @property
    def certs(self) -> Path:
        return self.root / "certs"

    def proxy_dir(self, pod: Pod) -> Path:
        return self.root / "proxies" / f"{pod.namespace}.{pod.name}"

    def app_log(self, namespace: str, pod: str) -> Path:
        return self.root / "apps" / f"{namespace}.{pod}.log"

    def request_log(self, namespace: str, pod: str) -> Path:
        return self.root / "apps" / f"{namespace}.{pod}.requests.jsonl"


class _Certificates:
    """CertificatePaths for the translator, backed by the run-local CA."""

    def __init__(self, files: _Files) -> None:
        self.files = files
        self.authority = CertificateAuthority(files.certs)

    @property
    def ca(self) -> Path:
        return self.authority.cert_path

    def workload(self, pod: Pod) -> tuple[Path, Path]:
        folder = self.files.certs / f"{pod.namespace}.{pod.name}"
        cert, key = folder / "cert.pem", folder / "key.pem"
        self.authority.issue(cert, key, uri=pod.identity)
        return cert, key

    def gateway_credential(self, namespace: str, name: str) -> tuple[Path, Path]:
        folder = self.files.certs / "credentials"
        return folder / f"{namespace}.{name}.crt", folder / f"{namespace}.{name}.key"


class LocalPlatform:
    """See the module docstring. State lives in the run directory, so a later process (the CLI's
    `apply` or `down`) can pick up a platform that an earlier `up` started."""

    name = "local"

    def __init__(self, run_dir: Path, misbehave: frozenset[str] = frozenset(),
                 manifests: Sequence[Path] | None = None) -> None:
        unknown = set(misbehave) - MISBEHAVIOURS.keys()
        if unknown:
            raise PlatformError(f"unknown misbehaviour(s) {sorted(unknown)}; known: {sorted(MISBEHAVIOURS)}")
        self.files = _Files(Path(run_dir).resolve())
        self.misbehave = frozenset(misbehave)
        self.manifests = list(manifests) if manifests is not None else base_manifests()
        self.supervisor = Supervisor(self.files.processes)
        self._state: dict[str, Any] = {}
        if self.files.state.exists():
            self._state = json.loads(self.files.state.read_text())
            self.misbehave = frozenset(self._state.get("misbehave", []))

    # ------------------------------------------------------------------ lifecycle

    @property
    def endpoint(self) -> Endpoint:
        ports = self._state["gateway_ports"]
        https = f"https://127.0.0.1:{ports['https']}" if self._has_tls_server() else None
        return Endpoint(f"http://127.0.0.1:{ports['http']}", https)

    def is_up(self) -> bool:
        return bool(self._state) and any(self.supervisor.is_alive(r) for r in self.supervisor.records())

    def up(self) -> Endpoint:
        if self.is_up():
            raise PlatformError(f"the local platform in {self.files.root} is already up; run 'meshconform down' first")
        binary = envoy.envoy_binary()
        self.files.root.mkdir(parents=True, exist_ok=True)
        self._state = {"block": addresses.pick_block(), "pod_ips": {}, "resources": [], "next_seq": 1,
                       "pods": {}, "misbehave": sorted(self.misbehave),
                       "gateway_ports": {"http": addresses.free_port(), "https": addresses.free_port()},
                       "envoy": {"path": binary.path, "version": binary.version, "sha256": binary.sha256},
                       "started": time.time()}
        self._save()
        try:
            with sigterm_as_interrupt():
                self.apply(load_files(self.manifests))
        except BaseException:
            self.down()
            raise
        return self.endpoint

    def down(self) -> None:
        self.supervisor.stop()
        if self.files.state.exists():
            self._state["stopped"] = time.time()
            self._save()

    def misbehave_as(self, misbehave: frozenset[str]) -> None:
        """Switch the deliberate misbehaviours of a running platform (self-tests only): every proxy
        gets re-translated config, and pods restart if injection changes."""
        unknown = set(misbehave) - MISBEHAVIOURS.keys()
        if unknown:
            raise PlatformError(f"unknown misbehaviour(s) {sorted(unknown)}; known: {sorted(MISBEHAVIOURS)}")
        with self._locked():
            self.misbehave = frozenset(misbehave)
            self._state["misbehave"] = sorted(self.misbehave)
            self._reconcile(self._resources(), self._state["next_seq"])

    # ------------------------------------------------------------------ config

    def apply(self, resources: Sequence[Sourced]) -> None:
        with self._locked():
            current = self._resources()
            seq = self._state["next_seq"]
            merged = {item.key: (s, item) for s, item in current}
            for item in resources:
                existing = merged.get(item.key)
                # An update keeps the creation order (like creationTimestamp); new ones go last.
                merged[item.key] = (existing[0] if existing else seq, item)
                if not existing:
                    seq += 1
            self._reconcile(sorted(merged.values(), key=lambda pair: pair[0]), next_seq=seq)

    def delete(self, resources: Sequence[Sourced], ignore_missing: bool = False) -> None:
        with self._locked():
            current = self._resources()
            keys = {item.key for item in resources}
            present = {item.key for _, item in current}
            missing = [item for item in resources if item.key not in present]
            if missing and not ignore_missing:
                item = missing[0]
                raise ConfigError("not found on the platform", source=item.source, resource=item.resource.ref)
            remaining = [(s, item) for s, item in current if item.key not in keys]
            self._reconcile(remaining, next_seq=self._state["next_seq"])

    def _resources(self) -> list[tuple[int, Sourced]]:
        result = []
        for entry in self._state.get("resources", []):
            resource = parse_document(entry["document"], entry["source"])
            result.append((entry["seq"], Sourced(resource, entry["source"], entry["document"])))
        return result

    def _reconcile(self, desired: list[tuple[int, Sourced]], next_seq: int) -> None:
        """Compute everything first (nothing changes on a ConfigError), then start/stop processes,
        write Envoy config, and wait until every proxy runs it. A rejection rolls back."""
        items = [item for _, item in desired]
        pod_ips = dict(self._state["pod_ips"])
        snapshot, specs = topology.build(items, lambda key: self._ip_for(key, pod_ips),
                                         no_injection="no-injection" in self.misbehave)
        certs = _Certificates(self.files)
        configs = self._translate(snapshot, certs, items)
        previous_resources = self._state["resources"]
        self._state["pod_ips"] = pod_ips
        self._state["resources"] = [{"seq": s, "source": i.source, "document": i.document} for s, i in desired]
        self._state["next_seq"] = next_seq
        try:
            self._write_credentials(snapshot, certs)
            self._write_services(snapshot)
            started = self._sync_processes(specs, configs, certs)
            self._deliver(snapshot, configs, started)
        except PlatformError:
            self._state["resources"] = previous_resources
            self._save()
            raise
        self._save()

    def _translate(self, snapshot: MeshSnapshot, certs: _Certificates, items: list[Sourced]) -> dict:
        try:
            return translate(snapshot, certs, GatewayPorts(**self._state["gateway_ports"]),
                             lambda pod: (self.files.proxy_dir(pod) / "xds", self.files.proxy_dir(pod) / "access.log"),
                             self.misbehave)
        except ConfigError as exc:
            if exc.resource and not exc.source:
                source = next((i.source for i in items if i.resource.ref == exc.resource), "")
                raise ConfigError(exc.detail, source=source, resource=exc.resource, field=exc.field) from None
            raise

    def _ip_for(self, key: str, pod_ips: dict[str, str]) -> str:
        if key not in pod_ips:
            used = set(pod_ips.values())
            host = 1 if key.endswith("/istio-ingressgateway") else 2
            while f"{self._state['block']}.{host}" in used:
                host += 1
            if host > 254:
                raise PlatformError("more than 253 pods: the local platform's address block is full")
            pod_ips[key] = f"{self._state['block']}.{host}"
        return pod_ips[key]

    def _write_credentials(self, snapshot: MeshSnapshot, certs: _Certificates) -> None:
        for secret in snapshot.secrets:
            cert = secret.value("tls.crt") or secret.value("cert")
            key = secret.value("tls.key") or secret.value("key")
            if cert and key:
                cert_path, key_path = certs.gateway_credential(secret.metadata.namespace, secret.metadata.name)
                cert_path.parent.mkdir(parents=True, exist_ok=True)
                cert_path.write_bytes(cert)
                write_private(key_path, key)

    def _write_services(self, snapshot: MeshSnapshot) -> None:
        """Name -> endpoints, for workloads without a sidecar (our stand-in for DNS + kube-proxy)."""
        from meshconform.platform.local.translator.clusters import selected_pods
        table = {f"{s.fqdn}:{p.port}": [f"{pod.ip}:{p.container_port}" for pod in selected_pods(snapshot, s, None)]
                 for s in snapshot.services for p in s.spec.ports}
        tmp = self.files.services.with_suffix(".tmp")
        tmp.write_text(json.dumps(table, indent=1))
        tmp.replace(self.files.services)

    # ------------------------------------------------------------------ processes

    def _sync_processes(self, specs: list[topology.PodSpec], configs: dict, certs: _Certificates) -> list[str]:
        """Start pods that should run and stop those that should not; returns newly started pod keys."""
        running: dict[str, str] = self._state["pods"]  # pod key -> fingerprint
        wanted = {f"{s.pod.namespace}/{s.pod.name}": s for s in specs}
        fingerprints = {key: topology._hash([s.app, s.env, s.pod.injected, s.pod.container_ports, s.pod.ip])
                        for key, s in wanted.items()}
        gone = [key for key in running if key not in wanted or running[key] != fingerprints[key]]
        if gone:
            self.supervisor.stop({f"app:{k}" for k in gone} | {f"envoy:{k}" for k in gone})
            for key in gone:
                running.pop(key, None)
        started = []
        if "gateway" not in running:
            self._start_envoy_for(self._gateway_pod(), configs, certs)
            running["gateway"] = "gateway"
            started.append("gateway")
        for key, spec in wanted.items():
            if key in running:
                continue
            if spec.pod.injected:
                self._start_envoy_for(spec.pod, configs, certs)
            self._start_app(spec)
            running[key] = fingerprints[key]
            started.append(key)
        self._state["pods"] = running
        self._save()
        return started

    def _gateway_pod(self) -> Pod:
        ip = self._state["pod_ips"]["istio-system/istio-ingressgateway"]
        return Pod("istio-ingressgateway", "istio-system", "istio-ingressgateway",
                   dict(topology.GATEWAY_LABELS), "istio-ingressgateway-service-account", ip, (), False, True)

    def _start_envoy_for(self, pod: Pod, configs: dict, certs: _Certificates) -> None:
        folder = self.files.proxy_dir(pod)
        envoy.write_bootstrap(folder / "bootstrap.json", pod.name, pod.ip, folder / "xds")
        envoy.write_xds(folder / "xds", configs[f"{pod.namespace}/{pod.name}"])
        name = "envoy:gateway" if pod.is_gateway else f"envoy:{pod.namespace}/{pod.name}"
        self.supervisor.start(name, envoy.envoy_argv(folder / "bootstrap.json"), _clean_env(), folder / "envoy.log")

    def _start_app(self, spec: topology.PodSpec) -> None:
        pod = spec.pod
        port = pod.container_ports[0] if pod.container_ports else 9080
        env = _clean_env() | spec.env | {
            "HOSTNAME": pod.name, "MESHCONFORM_NAMESPACE": pod.namespace,
            "MESHCONFORM_VERSION": pod.labels.get("version", "v1"),
            "MESHCONFORM_BIND": f"{pod.ip}:{pod.app_port(port)}",
            "MESHCONFORM_REQUEST_LOG": str(self.files.request_log(pod.namespace, pod.name)),
            "MESHCONFORM_SERVICES_FILE": str(self.files.services),
            "MESHCONFORM_CONTROL": f"{pod.ip}:{CLIENT_CONTROL_PORT}",
        }
        if pod.injected:
            env["MESHCONFORM_OUTBOUND_PROXY"] = f"http://{pod.ip}:{15001}"
        argv = [sys.executable, "-m", f"meshconform.bookinfo.apps.{spec.app}"]
        self.supervisor.start(f"app:{pod.namespace}/{pod.name}", argv, env,
                              self.files.app_log(pod.namespace, pod.name))

    def _deliver(self, snapshot: MeshSnapshot, configs: dict, started: list[str]) -> None:
        proxies = {}
        for pod in snapshot.pods:
            key = f"{pod.namespace}/{pod.name}"
            if key not in configs:
                continue
            folder = self.files.proxy_dir(pod)
            log = folder / "envoy.log"
            offset = log.stat().st_size if log.exists() else 0
            expected = envoy.write_xds(folder / "xds", configs[key])
            proxies[key] = (envoy.Admin(pod.ip), expected, log, offset)
        deadline = time.monotonic() + READY_DEADLINE_S
        self._wait_apps_ready(snapshot, started, deadline)
        try:
            envoy.wait_accepted(proxies, max(1.0, deadline - time.monotonic()) if started else CONVERGE_DEADLINE_S)
        except PlatformError:
            self._raise_if_crashed()
            raise

    def _wait_apps_ready(self, snapshot: MeshSnapshot, started: list[str], deadline: float) -> None:
        pods = {f"{p.namespace}/{p.name}": p for p in snapshot.pods}
        waiting = {key: pods[key] for key in started if key in pods}
        delay = 0.02
        while waiting:
            self._raise_if_crashed()
            for key, pod in list(waiting.items()):
                if pod.container_ports:
                    address = (pod.ip, pod.app_port(pod.container_ports[0]))
                else:
                    address = (pod.ip, CLIENT_CONTROL_PORT)
                if addresses.accepting(*address):
                    del waiting[key]
            if not waiting:
                return
            if time.monotonic() > deadline:
                raise PlatformError(f"workloads not ready within {READY_DEADLINE_S:.0f}s: {', '.join(sorted(waiting))}")
            time.sleep(delay)
            delay = min(delay * 1.5, 0.2)

    def _raise_if_crashed(self) -> None:
        dead = self.supervisor.exited()
        if dead:
            record = dead[0]
            tail = _tail(Path(record.log))
            raise PlatformError(f"process {record.name} exited during start-up (log {record.log}):\n{tail}")

    @contextmanager
    def _locked(self) -> Iterator[None]:
        if not self._state:
            raise PlatformError(f"no local platform in {self.files.root}: run 'meshconform up' first")
        with FileLock(str(self.files.root / "apply.lock"), timeout=120):
            if self.files.state.exists():
                self._state = json.loads(self.files.state.read_text())
            yield

    def _save(self) -> None:
        tmp = self.files.state.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._state, indent=1))
        tmp.replace(self.files.state)

    def _has_tls_server(self) -> bool:
        for entry in self._state.get("resources", []):
            document = entry["document"]
            servers = document.get("spec", {}).get("servers", []) if document.get("kind") == "Gateway" else []
            if any((server.get("port") or {}).get("protocol") == "HTTPS" for server in servers):
                return True
        return False

    # ------------------------------------------------------------------ observation

    def _snapshot(self) -> tuple[MeshSnapshot, list[topology.PodSpec]]:
        pod_ips = dict(self._state["pod_ips"])
        return topology.build([i for _, i in self._resources()], lambda key: self._ip_for(key, pod_ips),
                              no_injection="no-injection" in self.misbehave)

    def workloads(self) -> list[Workload]:
        snapshot, _ = self._snapshot()
        return [Workload(p.name, p.namespace, p.deployment, p.labels, p.injected, p.identity)
                for p in snapshot.pods]

    def _pods_of(self, namespace: str, deployment: str) -> list[Pod]:
        snapshot, _ = self._snapshot()
        return [p for p in snapshot.pods if p.namespace == namespace and p.deployment == deployment]

    def vantage(self, name: str) -> LocalVantage:
        if name == INGRESS:
            ports = self._state["gateway_ports"]
            return LocalVantage(name, DirectTransport(f"127.0.0.1:{ports['http']}", f"127.0.0.1:{ports['https']}"))
        namespace, _, deployment = name.rpartition("/")
        pods = self._pods_of(namespace or "default", deployment)
        if not pods:
            raise PlatformError(f"no vantage {name!r}: use 'ingress' or '<namespace>/<client deployment>'")
        return LocalVantage(name, None, f"http://{pods[0].ip}:{CLIENT_CONTROL_PORT}/batch")

    def request_log(self, namespace: str, deployment: str) -> list[dict[str, Any]]:
        return _json_lines(self.files.request_log(namespace, p.name) for p in self._pods_of(namespace, deployment))

    def access_log(self, namespace: str, deployment: str) -> list[dict[str, Any]]:
        return _json_lines(self.files.proxy_dir(p) / "access.log" for p in self._pods_of(namespace, deployment))

    def evidence(self, namespace: str, deployment: str, hosts: Collection[str] = ()) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for pod in self._pods_of(namespace, deployment):
            folder = self.files.proxy_dir(pod) / "xds"
            if folder.exists():
                routes = {p.name: _route_excerpt(json.loads(p.read_text()), hosts) for p in folder.glob("rds-*.json")}
                result[pod.name] = {"routes": {name: r for name, r in routes.items() if r},
                                    "access_log_tail": _tail(self.files.proxy_dir(pod) / "access.log", 10)}
        return result

    def load_targets(self, service: str = "productpage", port: int = 9080,
                     plain_namespace: str | None = None) -> dict[str, LoadTarget]:
        """Addresses a load generator uses to reach `service` (in `default`) four ways:
        'ingress' (the gateway), 'in-mesh' (the meshed client's sidecar, as the client app uses it),
        'mesh' (a pod of the service through its sidecar), and 'no-mesh': the same service's pod in
        `plain_namespace` (a namespace without injection), or else straight to the meshed pod's app
        port (skipping only its inbound sidecar)."""
        snapshot, _ = self._snapshot()

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
            targets["in-mesh"] = LoadTarget("in-mesh", f"http://{clients[0].ip}:15001", f"{service}:{port}", True)
        if plain_namespace is not None:
            plain = pod_of(plain_namespace)
            targets["no-mesh"] = LoadTarget("no-mesh", f"http://{plain.ip}:{port}", None, plain.injected)
        else:
            targets["no-mesh"] = LoadTarget("no-mesh", f"http://{meshed.ip}:{meshed.app_port(port)}", None, False)
        return targets

    def proxy_usage(self) -> dict[str, ProxyUsage]:
        """CPU seconds and resident memory of every running proxy (gateway and sidecars), by name."""
        import psutil
        usage = {}
        for record in self.supervisor.records():
            if not record.name.startswith("envoy:") or not self.supervisor.is_alive(record):
                continue
            try:
                process = psutil.Process(record.pid)
                times, memory = process.cpu_times(), process.memory_info()
            except psutil.Error:
                continue
            usage[record.name.removeprefix("envoy:")] = ProxyUsage(times.user + times.system, memory.rss)
        return usage

    def describe(self) -> dict[str, Any]:
        env = self._state.get("envoy", {})
        return {"platform": "local",
                "description": "meshconform's local reference data plane: processes on loopback behind real Envoy "
                               "proxies configured by meshconform's own translator from Istio resources. Not Istio.",
                "mesh": {"name": "meshconform-reference-translator", "version": __version__,
                         "istio_semantics": "Istio 1.28+ defaults (no -shadow suffix, no 503 default retries)"},
                "proxy": {"name": "envoy", "version": env.get("version"), "sha256": env.get("sha256")},
                "misbehave": sorted(self.misbehave),
                "run_dir": str(self.files.root)}


class LocalVantage:
    """Ingress: sent from this process through the gateway. Workload: posted to the client app,
    which sends the whole batch from inside its pod (through its sidecar, if it has one)."""

    def __init__(self, name: str, transport: DirectTransport | None, control_url: str | None = None) -> None:
        self.name = name
        self.transport = transport
        self.control_url = control_url

    def send(self, requests_: Sequence[Request], concurrency: int = 10,
             reuse_connections: bool = True) -> list[Response]:
        if self.transport is not None:
            return send_batch(requests_, self.transport, concurrency, reuse_connections)
        assert self.control_url is not None
        budget = 60 + sum(r.timeout for r in requests_) / max(1, concurrency)
        reply = requests.post(self.control_url, json={
            "requests": [r.to_json() for r in requests_], "concurrency": concurrency,
            "reuse_connections": reuse_connections}, timeout=budget)
        reply.raise_for_status()
        return [Response.from_json(r) for r in reply.json()["responses"]]


def _clean_env() -> dict[str, str]:
    """The environment for child processes: no proxy settings may leak into the apps."""
    return {k: v for k, v in os.environ.items() if k.lower() not in (
        "http_proxy", "https_proxy", "all_proxy", "no_proxy")}


def _route_excerpt(discovery: dict[str, Any], hosts: Collection[str]) -> list[dict[str, Any]]:
    """The virtual hosts of an RDS file that serve one of `hosts` (all of them if none given)."""
    excerpt = []
    for config in discovery.get("resources", []):
        vhosts = [v for v in config.get("virtual_hosts", [])
                  if not hosts or any(h in domain for h in hosts for domain in v.get("domains", []))]
        if vhosts:
            excerpt.append({"name": config.get("name"), "virtual_hosts": vhosts})
    return excerpt


def _json_lines(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """One record per line of each existing file (request logs and Envoy access logs)."""
    return [json.loads(line) for path in paths if path.exists()
            for line in path.read_text().splitlines() if line.strip()]


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


__all__ = ["LocalPlatform", "LocalVantage"]
