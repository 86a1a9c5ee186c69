"""The local platform's processes: one app per pod, a sidecar Envoy per injected pod, the gateway Envoy.

Starts what should run, stops what should not (by process group, through the Supervisor), and waits
until newly started apps accept connections; a process that dies on the way is named with its log."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from meshconform.errors import PlatformError
from meshconform.platform.local import addresses, envoy, launcher, topology
from meshconform.platform.local.state import RunFiles
from meshconform.platform.local.supervisor import Supervisor
from meshconform.platform.local.translator.model import MeshSnapshot, Pod, ProxyConfig

CLIENT_CONTROL_PORT = 15900
OUTBOUND_PORT = 15001
GATEWAY_KEY = "gateway"
LAUNCHER = "launcher"  # the process record of the app launcher


class Processes:
    def __init__(self, files: RunFiles, supervisor: Supervisor) -> None:
        self.files = files
        self.supervisor = supervisor

    def sync(self, running: dict[str, str], specs: list[topology.PodSpec], gateway: Pod,
             configs: Mapping[str, ProxyConfig], deadline: float, limit_s: float) -> list[str]:
        """Start pods that should run and stop those that should not (or whose spec changed);
        updates `running` (pod key -> fingerprint) and returns the newly started pod keys."""
        wanted = {f"{s.pod.namespace}/{s.pod.name}": s for s in specs}
        fingerprints = {key: topology._hash([s.app, s.env, s.pod.injected, s.pod.container_ports,
                                                   s.pod.declared_ports, s.pod.ip])
                        for key, s in wanted.items()}
        gone = [key for key in running if key != GATEWAY_KEY
                and (key not in wanted or running[key] != fingerprints[key])]
        if gone:
            self.supervisor.stop({f"app:{k}" for k in gone} | {f"envoy:{k}" for k in gone})
            for key in gone:
                running.pop(key, None)
        started = []
        new = {key: spec for key, spec in wanted.items() if key not in running}
        if new:
            self.start_launcher()  # it loads the apps' modules while the Envoys start
        if GATEWAY_KEY not in running:
            self._start_envoy(gateway, configs)
            running[GATEWAY_KEY] = GATEWAY_KEY
            started.append(GATEWAY_KEY)
        for spec in new.values():
            if spec.pod.injected:
                self._start_envoy(spec.pod, configs)
        if new:
            self._wait_launcher(deadline, limit_s)
        for key, spec in new.items():
            self._start_app(spec)
            running[key] = fingerprints[key]
            started.append(key)
        return started

    def start_launcher(self) -> None:
        """The app launcher (launcher.py), unless it runs. Early, as it loads the apps' imports meanwhile; after
        the run's CA exists, which it trusts (see _start_app)."""
        if any(r.name == LAUNCHER for r in self.supervisor.records() if self.supervisor.is_alive(r)):
            return
        env = clean_env() | {"SSL_CERT_FILE": str(self.files.certs / "ca.pem")}  # see _start_app
        self.supervisor.start(LAUNCHER, [sys.executable, "-m", "meshconform.platform.local.launcher",
                                         launcher.address(self.files.root)], env, self.files.launcher_log)

    def _wait_launcher(self, deadline: float, limit_s: float) -> None:
        since = time.time() - 1  # a launcher that died at once, before this wait began, is named too
        address = launcher.address(self.files.root)
        while not launcher.accepting(address):
            self.raise_if_crashed(since, "while the app launcher started")
            if time.monotonic() > deadline:
                raise PlatformError(f"the app launcher did not listen within {limit_s:.0f}s "
                                    f"(log {self.files.launcher_log}):\n{tail(self.files.launcher_log)}")
            time.sleep(0.01)

    def _start_envoy(self, pod: Pod, configs: Mapping[str, ProxyConfig]) -> None:
        folder = self.files.proxy_dir(pod)
        envoy.write_bootstrap(folder / "bootstrap.json", pod.name, pod.ip, folder / "xds")
        envoy.write_xds(folder / "xds", configs[f"{pod.namespace}/{pod.name}"])
        name = "envoy:gateway" if pod.is_gateway else f"envoy:{pod.namespace}/{pod.name}"
        self.supervisor.start(name, envoy.envoy_argv(folder / "bootstrap.json"), clean_env(), folder / "envoy.log")

    def _start_app(self, spec: topology.PodSpec) -> None:
        pod = spec.pod
        ports = pod.listening or (9080,)
        env = clean_env() | spec.env | {
            "HOSTNAME": pod.name, "MESHCONFORM_NAMESPACE": pod.namespace,
            "MESHCONFORM_VERSION": pod.labels.get("version", "v1"),
            "MESHCONFORM_BIND": ",".join(f"{pod.ip}:{pod.app_port(port)}" for port in ports),
            "MESHCONFORM_REQUEST_LOG": str(self.files.request_log(pod.namespace, pod.name)),
            "MESHCONFORM_SERVICES_FILE": str(self.files.services),
            "MESHCONFORM_CONTROL": f"{pod.ip}:{CLIENT_CONTROL_PORT}",
            # The apps speak plaintext to their sidecars; trusting only the run's CA spares each app loading the
            # system's CA bundle when aiohttp is imported (~0.1 s CPU each, 16 apps at every bring-up).
            "SSL_CERT_FILE": str(self.files.certs / "ca.pem"),
        }
        if pod.injected:
            env["MESHCONFORM_OUTBOUND_PROXY"] = f"http://{pod.ip}:{OUTBOUND_PORT}"
        try:
            self.supervisor.launch(f"app:{pod.namespace}/{pod.name}", launcher.address(self.files.root),
                                   f"meshconform.bookinfo.apps.{spec.app}", env,
                                   self.files.app_log(pod.namespace, pod.name))
        except OSError as exc:
            raise PlatformError(f"could not start the app of pod {pod.namespace}/{pod.name}: {exc} "
                                f"(launcher log {self.files.launcher_log})") from None

    def wait_ready(self, snapshot: MeshSnapshot, started: list[str], deadline: float, limit_s: float,
                   since: float) -> None:
        """Until every newly started app accepts connections (its port, or a client's control port)."""
        pods = {f"{p.namespace}/{p.name}": p for p in snapshot.pods}
        waiting = {key: pods[key] for key in started if key in pods}
        delay = 0.02
        while waiting:
            self.raise_if_crashed(since, "during start-up")
            for key, pod in list(waiting.items()):
                if pod.listening:
                    address = (pod.ip, pod.app_port(pod.listening[0]))
                else:
                    address = (pod.ip, CLIENT_CONTROL_PORT)
                if addresses.accepting(*address):
                    del waiting[key]
            if not waiting:
                return
            if time.monotonic() > deadline:
                raise PlatformError(f"workloads not ready within {limit_s:.0f}s: {', '.join(sorted(waiting))}")
            time.sleep(delay)
            # Closely: an app is up ~0.25 s after its start, and a look is one loopback connect per pod waited on.
            delay = min(delay * 1.5, 0.05)

    def raise_if_gone(self) -> None:
        """A process that is not running and will not be restarted (its keeper was killed) is named."""
        for record in self.supervisor.records():
            status = self.supervisor.status(record)
            if status.state == "stopped":
                last = f"; last {status.last_exit.describe()}" if status.last_exit else ""
                raise PlatformError(f"process {record.name} is not running and will not restart (its keeper is "
                                    f"gone{last}); run 'meshconform down' and 'meshconform up' (log {record.log})")

    def raise_if_crashed(self, since: float, when: str) -> None:
        """A process that died since `since` is named, with how and when it ended, and its log."""
        crashed = self.supervisor.crashes(since)
        if crashed:
            record, ended = crashed[0]
            how = "its keeper is gone" if ended.status < 0 else ended.describe()
            raise PlatformError(f"process {record.name} exited {when}: {how} (log {record.log}):\n"
                                f"{tail(Path(record.log))}")


def clean_env() -> dict[str, str]:
    """The environment for child processes: no proxy settings may leak into the apps."""
    return {k: v for k, v in os.environ.items() if k.lower() not in (
        "http_proxy", "https_proxy", "all_proxy", "no_proxy")}


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
