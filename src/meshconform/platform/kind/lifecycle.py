"""Cluster lifecycles (the `ClusterLifecycle` contract): `KindLifecycle` creates a kind cluster with the kind
CLI (or reuses one of the same name, never deleting a cluster it did not create), shared by every xdist
worker of the run; `ExistingCluster` only checks that the user's cluster is there and reachable.

The kind CLI directly, not pytest-kind's KindCluster: pytest-kind (GPL-3.0+, last release 2022) pins kind
v0.17.0, whose kubeadm v1beta3 configs Kubernetes 1.37 refuses, downloads without checksums, hard-codes
amd64 and has no --wait or config-file ports for our extraPortMappings; wrapping it would mean overriding
every one of those. The five kind commands we need are simpler to run and to contract-test directly."""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

from meshconform.errors import PlatformError
from meshconform.platform.api import PROGRESS_LOG
from meshconform.platform.kind import binaries, kindconfig, kubeprobe, tools
from meshconform.platform.kind import engine as engines
from meshconform.platform.kind.settings import KindSettings, MeshSettings
from meshconform.platform.kind.timeouts import TIMEOUTS
from meshconform.platform.kind.toolbox import Toolbox
from meshconform.platform.kube.contracts import LOAD_NODE_PORTS, ClusterAccess
from meshconform.platform.sharing import SharedResource

PULLS_AT_ONCE = 4  # image pulls on this host running at the same time
PRIVATE_DIR = ".private"  # in the run folder, mode 0700: kubeconfigs (client keys); CI never uploads it


def private_dir(session_dir: Path, create: bool = True) -> Path:
    folder = session_dir / PRIVATE_DIR
    if create:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        folder.chmod(0o700)
    return folder


class KindLifecycle:
    """A kind cluster for this run: created once for all workers (or reused), deleted by the last worker
    if this run created it and --keep-cluster is not set."""

    def __init__(self, folder: Path, session_dir: Path, worker: str, mesh: MeshSettings, kind: KindSettings,
                 toolbox: Toolbox | None = None) -> None:
        self.folder = folder
        self.session_dir = session_dir
        self.worker = worker
        self.mesh = mesh
        self.settings = kind
        self.toolbox = toolbox or Toolbox(mesh, kind)
        self.name = kind.cluster_name
        self.image = kindconfig.node_image(kind.kind_version, kind.node_image)
        wait = TIMEOUTS.kind_create + 2 * TIMEOUTS.kind_query + TIMEOUTS.download
        self.shared = SharedResource(session_dir, f"kind-{self.name}", wait)
        self._engine: engines.Engine | None = None

    # ------------------------------------------------------------------ what the commands are

    @property
    def context(self) -> str:
        return kindconfig.CONTEXT_PREFIX + self.name

    def kubeconfig_path(self) -> Path:
        given = self.mesh.kubeconfig
        if given:
            return Path(given).expanduser().resolve()
        return private_dir(self.session_dir, create=False) / f"kind-{self.name}"

    def config_path(self) -> Path:
        return self.folder / "kind-config.yaml"

    def mirror_dir(self) -> Path:
        """With --registry-mirror: the folder holding docker.io's hosts.toml, mounted into the node."""
        return self.folder / "containerd-certs.d" / kindconfig.MIRRORED_REGISTRY

    def config_text(self) -> str:
        mirror = str(self.mirror_dir()) if self.settings.registry_mirror else ""
        return kindconfig.render(self.name, self.image, mirror_dir=mirror)

    def create_argv(self, kind: str | Path = "kind") -> list[str]:
        """`--retain`: a failed create keeps its node, so its logs can be exported before it is deleted."""
        return [str(kind), "create", "cluster", "--name", self.name, "--config", str(self.config_path()),
                "--kubeconfig", str(self.kubeconfig_path()), "--wait", TIMEOUTS.kind_create_wait, "--retain"]

    def progress(self, label: str) -> tools.Progress:
        return tools.progress_to(self.folder / PROGRESS_LOG, label)

    def preload_images(self) -> list[str]:
        """What this host pulls (with its own login and cache) and loads into the node, so the node pulls nothing
        from Docker Hub anonymously: the workloads' images named by tag, and Istio's own when meshconform installs
        it. Images pinned by digest are left to the node: a copy loaded from the host no longer answers to the
        registry's digest (docker/cli#5933), so the node would pull them again anyway. None with a mirror."""
        if self.settings.registry_mirror:
            return []
        from meshconform.platform.kube import images
        from meshconform.platform.kube.platform import base_manifests
        pins = images.pins_for(self.mesh.image_digests, base_manifests())  # what --image-digests pins: the node's
        names = [pins.pinned(use.image) if pins else use.image for use in images.uses_in_files(base_manifests())]
        if self.mesh.install in ("istioctl", "helm"):
            names += [f"{self.mesh.hub}/{component}:{self.mesh.istio_version}" for component in ("pilot", "proxyv2")]
        return sorted({name for name in names if not images.is_pinned(name)})

    def export_kubeconfig_argv(self, kind: str | Path = "kind") -> list[str]:
        return [str(kind), "export", "kubeconfig", "--name", self.name, "--kubeconfig", str(self.kubeconfig_path())]

    def delete_argv(self, kind: str | Path = "kind") -> list[str]:
        return [str(kind), "delete", "cluster", "--name", self.name, "--kubeconfig", str(self.kubeconfig_path())]

    def engine(self) -> engines.Engine:
        if self._engine is None:
            self._engine = engines.detect(self.settings.container_engine)
        return self._engine

    def _kind(self, args: list[str], what: str, timeout: float, hint: str = "") -> tools.Result:
        kind = self.toolbox.path("kind")
        return tools.run([kind, *args], timeout=timeout, what=what, env=dict(self.engine().env), hint=hint)

    # ------------------------------------------------------------------ the contract

    def ensure(self) -> ClusterAccess:
        self.engine()  # fail at once, naming docker/podman, before any download
        record = self.shared.acquire(self.worker, self._make)
        kubeconfig = Path(record["kubeconfig"])
        if kubeconfig.exists():
            kubeconfig.chmod(0o600)
        return ClusterAccess(kubeconfig, record["context"])

    def _make(self) -> dict[str, Any]:
        existing = self.clusters()
        kubeconfig = self.kubeconfig_path()
        kubeconfig.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        preload = self.preload_images()
        self._pull_on_host(preload)  # before any cluster exists: a pull that fails costs a minute, not ten
        if self.name in existing:  # reuse, and never delete it: we did not create it
            tools.run(self.export_kubeconfig_argv(self.toolbox.path("kind")), timeout=TIMEOUTS.kind_query,
                      env=dict(self.engine().env), what=f"read the kubeconfig of the existing kind cluster {self.name}")
            created = False
        else:
            self._create()
            created = True
        try:
            self._load_into_node(preload)
        except BaseException:
            if created:
                self._delete_quietly(self.toolbox.path("kind"))
            raise
        return {"cluster": self.name, "created": created, "kubeconfig": str(kubeconfig), "context": self.context,
                "engine": self.engine().name, "engine_version": self.engine().version,
                "node_image": self.image if created else "(reused cluster: its own)",
                "images_loaded": preload, "registry_mirror": self.settings.registry_mirror or None,
                "ports": self._published_ports(), "load_ports": self._load_ports()}

    def _pull_on_host(self, names: list[str]) -> None:
        """A few at a time, as the engine pulls layers in parallel anyway; the first failure is raised."""
        engine = self.engine().name

        def pull(name: str) -> None:
            tools.run([engine, "pull", name], timeout=TIMEOUTS.image_pull, what=f"pull {name} on this host",
                      progress=self.progress(f"{engine} pull {name}"),
                      hint=f"'toomanyrequests' or 'rate limit': log in (`{engine} login docker.io`) and run again, or "
                           "pass --registry-mirror; 'not found': the image or tag does not exist")
        with ThreadPoolExecutor(max_workers=PULLS_AT_ONCE) as pool:
            for done in [pool.submit(pull, name) for name in names]:
                done.result()

    def _load_into_node(self, names: list[str]) -> None:
        """`kind load docker-image` (docker), or `<engine> save` + `kind load image-archive` (podman, whose images
        kind's docker-image command cannot read, and docker where its containerd image store makes kind fail with
        'content digest ... not found', kind#3795: saved for the node's platform only)."""
        if not names:
            return
        kind, engine = self.toolbox.path("kind"), self.engine()
        env = dict(engine.env)
        if engine.name == "docker":
            try:
                tools.run([kind, "load", "docker-image", *names, "--name", self.name], timeout=TIMEOUTS.image_load,
                          env=env, what="load the images into the kind node", progress=self.progress("kind load"))
                return
            except tools.ToolFailed as failed:
                if "content digest" not in failed.output:
                    raise
        archive = self.folder / "images.tar"
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            platform = "linux/" + binaries.host_platform().split("-", 1)[1]
            for group in ([names] if engine.name == "podman" else [[name] for name in names]):
                save = ([engine.name, "save", "-m", "-o", str(archive), *group] if engine.name == "podman"
                        else [engine.name, "save", "--platform", platform, "-o", str(archive), *group])
                tools.run(save, timeout=TIMEOUTS.image_load, what=f"save {', '.join(group)} for the node")
                tools.run([kind, "load", "image-archive", str(archive), "--name", self.name], env=env,
                          timeout=TIMEOUTS.image_load, what="load the images into the kind node",
                          progress=self.progress("kind load"))
        finally:
            archive.unlink(missing_ok=True)

    def clusters(self) -> list[str]:
        """`kind get clusters`: one name per line on stdout; "No kind clusters found." goes to stderr
        (kind pkg/cmd/kind/get/clusters/clusters.go)."""
        result = self._kind(["get", "clusters"], "list the kind clusters", TIMEOUTS.kind_query)
        return [line.strip() for line in result.stdout.splitlines() if line.strip()]

    def _create(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.config_path().write_text(self.config_text())
        if self.settings.registry_mirror:
            self.mirror_dir().mkdir(parents=True, exist_ok=True)
            (self.mirror_dir() / "hosts.toml").write_text(kindconfig.mirror_hosts_toml(self.settings.registry_mirror))
        kind = self.toolbox.path("kind")
        try:
            tools.run(self.create_argv(kind), timeout=TIMEOUTS.kind_create, env=dict(self.engine().env),
                      what=f"create the kind cluster {self.name}", progress=self.progress("kind"),
                      hint="read kind's output above (its node's logs are in the run's diagnostics); 'too many open "
                           "files': raise fs.inotify.max_user_watches and max_user_instances (kind known issues); "
                           f"'node(s) already exist': another run created {self.name} meanwhile, pass another "
                           "--kind-cluster-name or reuse it")
        except tools.ToolFailed as failed:
            if "already exist for a cluster with the name" in failed.output:
                raise  # someone else's cluster appeared: never delete it
            self._export_failed_create_logs(kind)  # kept by --retain: what went wrong inside the node
            self._delete_quietly(kind)
            raise
        except tools.ToolTimedOut:
            self._export_failed_create_logs(kind)
            self._delete_quietly(kind)
            raise
        except BaseException:  # Ctrl-C: kind was stopped mid-way and could not clean up; leave at once
            self._delete_quietly(kind)
            raise

    def _export_failed_create_logs(self, kind: Path) -> None:
        target = self.folder / "diagnostics" / "kind-create-failed"
        try:
            tools.run([kind, "export", "logs", str(target), "--name", self.name], timeout=TIMEOUTS.kind_export_logs,
                      env=dict(self.engine().env), what=f"export the logs of the failed cluster {self.name}")
        except tools.ToolError:
            pass  # the create's own error is the one to report

    def _delete_quietly(self, kind: Path) -> None:
        try:
            tools.run(self.delete_argv(kind), timeout=TIMEOUTS.kind_delete, env=dict(self.engine().env),
                      what=f"delete the half-created kind cluster {self.name}")
        except tools.ToolError:
            pass  # the first error is the one to report

    def _published_ports(self) -> list[int] | None:
        """Host ports kind published for the gateway nodePorts: `<engine> port <node> <port>/tcp` prints
        `127.0.0.1:<hostPort>` (docker port reference). None if the cluster has no such mappings."""
        found = [self._host_port(port) for port in (kindconfig.NODE_PORTS.http, kindconfig.NODE_PORTS.https)]
        return None if None in found else [p for p in found if p is not None]

    def _load_ports(self) -> dict[str, int]:
        """Host ports of perf's nodePorts (LOAD_NODE_PORTS), by nodePort; empty for a cluster created without
        them (e.g. a reused one made by another tool or an older meshconform)."""
        found = {str(port): self._host_port(port) for port in LOAD_NODE_PORTS.all()}
        return {port: host for port, host in found.items() if host is not None}

    def _host_port(self, port: int) -> int | None:
        container = kindconfig.control_plane_container(self.name)
        result = tools.run([self.engine().name, "port", container, f"{port}/tcp"], timeout=TIMEOUTS.kind_query,
                           what=f"read the host port of {container}:{port}", check=False)
        match = re.search(r"(?m)^(?:127\.0\.0\.1|0\.0\.0\.0|\[::\]|\[::1\]):(\d+)\s*$", result.stdout)
        if result.returncode != 0 or not match:
            return None
        return int(match.group(1))

    def teardown(self) -> None:
        self.shared.release(self.worker, self._destroy)

    def will_delete(self) -> bool:
        """Whether the cluster goes at the end (created by this run, not kept): then uninstalling the mesh
        first would only cost time."""
        record = self.shared.read() or {}
        return bool(record.get("created")) and not self.settings.keep_cluster

    def _destroy(self, record: dict[str, Any]) -> None:
        if not record.get("created") or self.settings.keep_cluster:
            return  # reused (not ours) or kept on request
        kind = self.toolbox.path("kind")
        argv = [str(kind), "delete", "cluster", "--name", self.name, "--kubeconfig", record["kubeconfig"]]
        tools.run(argv, timeout=TIMEOUTS.kind_delete, env=dict(self.engine().env),
                  what=f"delete the kind cluster {self.name}",
                  hint=f"delete it by hand: kind delete cluster --name {self.name}")
        kubeconfig = Path(record["kubeconfig"])
        if kubeconfig.parent == private_dir(self.session_dir, create=False):  # ours; a --kubeconfig file is the user's
            kubeconfig.unlink(missing_ok=True)

    def describe(self) -> dict[str, Any]:
        record = self.shared.read() or {}
        return {"lifecycle": "kind", "cluster": self.name, "context": self.context,
                "created_by_meshconform": bool(record.get("created")), "kept": self.settings.keep_cluster,
                "node_image": record.get("node_image", self.image), "kind": self.toolbox.describe("kind"),
                "images_loaded_from_host": record.get("images_loaded", []),
                "registry_mirror": record.get("registry_mirror"),
                "container_engine": {"name": record.get("engine"), "version": record.get("engine_version")}}

    def diagnostics(self, folder: Path) -> list[Path]:
        """`kind export logs <folder>/kind-logs --name <cluster>` (prints the folder on stdout)."""
        target = folder / "kind-logs"
        try:
            self._kind(["export", "logs", str(target), "--name", self.name], f"export the logs of {self.name}",
                       TIMEOUTS.kind_export_logs)
        except (tools.ToolError, PlatformError) as exc:
            note = folder / "kind-export-logs.error.txt"
            folder.mkdir(parents=True, exist_ok=True)
            note.write_text(str(exc) + "\n")
            return [note]
        return [target]

    @property
    def ingress_node_ports(self) -> tuple[int, int]:
        """The gateway Service's nodePorts the node publishes (the optional member KubePlatform confirms after the
        install: the Service must use exactly these)."""
        return (kindconfig.NODE_PORTS.http, kindconfig.NODE_PORTS.https)

    def ingress_address(self) -> tuple[str, int, int] | None:
        record = self.shared.read() or {}
        ports = record.get("ports")
        if not ports:
            return None
        return (kindconfig.LISTEN_ADDRESS, int(ports[0]), int(ports[1]))

    def published_node_port(self, node_port: int) -> tuple[str, int] | None:
        """Where this host reaches `node_port` (the optional member of the ClusterLifecycle contract): the host
        port kind published on 127.0.0.1, read back when the cluster was made; None when it is not published."""
        host_port = ((self.shared.read() or {}).get("load_ports") or {}).get(str(node_port))
        return None if host_port is None else (kindconfig.LISTEN_ADDRESS, int(host_port))


class ExistingCluster:
    """The user's cluster: checked (kubeconfig, context, API server answering), never created or deleted."""

    def __init__(self, mesh: MeshSettings) -> None:
        self.mesh = mesh
        self._version: str | None = None

    def kubeconfig_path(self) -> Path:
        if self.mesh.kubeconfig:
            return Path(self.mesh.kubeconfig).expanduser()
        env = os.environ.get("KUBECONFIG", "")
        files = [f for f in env.split(os.pathsep) if f]
        if len(files) > 1:
            raise PlatformError(f"KUBECONFIG lists {len(files)} files; pass the one to use with --kubeconfig")
        return Path(files[0]).expanduser() if files else Path.home() / ".kube" / "config"

    def context_and_server(self) -> tuple[str, str]:
        """The context to use and its API server URL, read from the kubeconfig (no network)."""
        path = self.kubeconfig_path()
        if not path.is_file():
            raise PlatformError(f"kubeconfig {path} does not exist: pass --kubeconfig FILE (and --context NAME) of "
                                "the cluster to test, or set KUBECONFIG")
        try:
            config = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise PlatformError(f"kubeconfig {path} is not YAML: {exc}") from None
        contexts = {c.get("name"): c.get("context") or {} for c in config.get("contexts") or []}
        name = self.mesh.context or config.get("current-context") or ""
        if not name:
            raise PlatformError(f"kubeconfig {path} has no current-context: pass --context "
                                f"({', '.join(map(str, contexts)) or 'it lists no contexts'})")
        if name not in contexts:
            raise PlatformError(f"kubeconfig {path} has no context {name!r} (it has: "
                                f"{', '.join(map(str, contexts)) or 'none'})")
        clusters = {c.get("name"): c.get("cluster") or {} for c in config.get("clusters") or []}
        server = str(clusters.get(contexts[name].get("cluster"), {}).get("server", ""))
        return name, server

    def check_reachable(self) -> str:
        """The API server's version (GET /version through the official client), or one clear error."""
        context, server = self.context_and_server()
        self._version = kubeprobe.server_version(ClusterAccess(self.kubeconfig_path(), context), server)
        return self._version

    def check_permissions(self) -> None:
        """Everything the run will do, asked of the cluster first (SelfSubjectAccessReview, rbac.py): one error
        naming every missing permission and why it is needed, before anything is created."""
        from meshconform.platform.kube import rbac
        context, _ = self.context_and_server()
        access = ClusterAccess(self.kubeconfig_path(), context)
        wanted = rbac.checks(self.mesh.install)
        reach = [(p, p.verbs[0]) for p in rbac.REACH]
        asked = [(verb, p.group, p.resource, p.subresource) for p, verb in [*wanted, *reach]]
        missing = set(kubeprobe.denied(access, asked))
        lines = [f"  {p.name(verb)}: {p.why}" for p, verb in wanted
                 if (verb, p.group, p.resource, p.subresource) in missing]
        if all((verb, p.group, p.resource, p.subresource) in missing for p, verb in reach):
            lines += [f"  {p.name(verb)} (this or the next): {p.why}" for p, verb in reach]
        if lines:
            raise PlatformError(f"the user of context {context!r} may not do everything the run needs on the cluster "
                                "(asked with SelfSubjectAccessReview, cluster-wide: the run's namespaces are new):\n"
                                + "\n".join(lines) + "\nGrant them with a ClusterRole bound to that user (README: "
                                "\"Certify your mesh on your own cluster\" lists every rule), then run again")

    def ensure(self) -> ClusterAccess:
        self.check_reachable()
        context, _ = self.context_and_server()
        return ClusterAccess(self.kubeconfig_path().resolve(), context)

    def teardown(self) -> None:
        """Nothing: the cluster is the user's."""

    def describe(self) -> dict[str, Any]:
        try:
            context, server = self.context_and_server()
        except PlatformError as exc:
            return {"lifecycle": "cluster", "error": str(exc)}
        return {"lifecycle": "cluster", "kubeconfig": str(self.kubeconfig_path()), "context": context,
                "server": server, "kubernetes_version": self._version}

    def diagnostics(self, folder: Path) -> list[Path]:
        return []

    def ingress_address(self) -> tuple[str, int, int] | None:
        return None
