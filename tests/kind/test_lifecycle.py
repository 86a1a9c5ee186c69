"""Contract tests of the kind lifecycle against stand-in kind and docker executables: the exact commands, the
kind config, one cluster for all workers, deleting only what this run created, and failures cleaned up.
Also the `cluster` lifecycle's checks of the user's kubeconfig."""

from __future__ import annotations

import importlib.util
import os
import threading
from pathlib import Path

import pytest
import recorded_output as rec
import yaml

from meshconform.platform.kind import engine, lifecycle, tools
from meshconform.platform.kind.lifecycle import ExistingCluster, KindLifecycle

IMAGE = "kindest/node:v1.36.4@sha256:099e049362a1526b2db71494e1947aae99bd16290d7c895f2b7ea312e3cbfaed"


def kind_rules(clusters: str = "", create: dict | None = None) -> list[dict]:
    return [{"args": ["version"], "stdout": rec.KIND_VERSION},
            {"args": ["get", "clusters"], "stdout": clusters,
             "stderr": "" if clusters else rec.KIND_NO_CLUSTERS_STDERR},
            create or {"args": ["create", "cluster"], "stderr": rec.KIND_CREATE_STDERR, "write_arg": "--kubeconfig",
                       "write_text": rec.KUBECONFIG},
            {"args": ["export", "kubeconfig"], "stderr": rec.KIND_EXPORT_KUBECONFIG_STDERR,
             "write_arg": "--kubeconfig", "write_text": rec.KUBECONFIG},
            {"args": ["export", "logs"], "stderr": rec.KIND_EXPORT_LOGS_STDERR, "stdout": "/tmp/x\n"},
            {"args": ["load"], "stderr": rec.KIND_LOAD_STDERR},
            {"args": ["delete", "cluster"], "stderr": rec.KIND_DELETE_STDERR}]


def docker_rules(ports: bool = True, load_ports: bool = True) -> list[dict]:
    node = "meshconform-control-plane"
    pulls = [{"args": ["pull"], "stdout": rec.DOCKER_PULL_STDOUT}, {"args": ["save"]}]
    if not ports:
        return [{"args": ["info"], "stdout": rec.DOCKER_SERVER_VERSION}, *pulls,
                {"args": ["port"], "stderr": rec.DOCKER_PORT_NONE_STDERR, "exit": 1}]
    rules = [{"args": ["info"], "stdout": rec.DOCKER_SERVER_VERSION}, *pulls,
             {"args": ["port", node, "30080/tcp"], "stdout": rec.DOCKER_PORT_HTTP},
             {"args": ["port", node, "30443/tcp"], "stdout": rec.DOCKER_PORT_HTTPS}]
    if load_ports:
        rules += [{"args": ["port", node, "30090/tcp"], "stdout": rec.DOCKER_PORT_LOAD_MESH},
                  {"args": ["port", node, "30091/tcp"], "stdout": rec.DOCKER_PORT_LOAD_NO_MESH}]
    return rules + [{"args": ["port"], "stderr": rec.DOCKER_PORT_NONE_STDERR.replace("30080", "30090"), "exit": 1}]


def make(tmp_path: Path, make_settings, worker: str = "main", **values) -> KindLifecycle:
    mesh, kind = make_settings(kind_binary="kind", **values)
    return KindLifecycle(tmp_path / "run" / f"platform-{worker}", tmp_path / "run", worker, mesh, kind)


def test_create_then_delete_with_the_exact_commands(standins, tmp_path: Path, make_settings) -> None:
    standins.tool("kind", kind_rules())
    standins.tool("docker", docker_rules())
    cluster = make(tmp_path, make_settings)
    access = cluster.ensure()
    kubeconfig = tmp_path / "run" / ".private" / "kind-meshconform"
    config = tmp_path / "run" / "platform-main" / "kind-config.yaml"
    assert (access.kubeconfig, access.context) == (kubeconfig, "kind-meshconform")
    assert kubeconfig.stat().st_mode & 0o777 == 0o600 and kubeconfig.parent.stat().st_mode & 0o777 == 0o700
    preload = [f"docker.io/istio/examples-bookinfo-{name}:1.20.3" for name in (
        "details-v1", "productpage-v1", "ratings-v1", "reviews-v1", "reviews-v2", "reviews-v3")] + [
        "docker.io/istio/pilot:1.31.1", "docker.io/istio/proxyv2:1.31.1"]
    calls = standins.argvs()
    pulls = [i for i, argv in enumerate(calls) if argv[:2] == ["docker", "pull"]]
    assert sorted(calls[i][2] for i in pulls) == preload  # on this host (a few at a time), before any cluster exists
    assert max(pulls) < calls.index(next(a for a in calls if a[1] == "create"))
    assert [argv for argv in calls if argv[:2] != ["docker", "pull"]] == [
        ["docker", "info", "--format", "{{.ServerVersion}}"],
        ["kind", "version"],
        ["kind", "get", "clusters"],
        ["kind", "create", "cluster", "--name", "meshconform", "--config", str(config), "--kubeconfig",
         str(kubeconfig), "--wait", "180s", "--retain"],
        ["kind", "load", "docker-image", *preload, "--name", "meshconform"],
        ["docker", "port", "meshconform-control-plane", "30080/tcp"],
        ["docker", "port", "meshconform-control-plane", "30443/tcp"],
        ["docker", "port", "meshconform-control-plane", "30090/tcp"],
        ["docker", "port", "meshconform-control-plane", "30091/tcp"]]
    assert all(c["env"].get("KIND_EXPERIMENTAL_PROVIDER") == "docker" for c in standins.calls("kind")
               if c["args"] != ["version"])
    written = yaml.safe_load(config.read_text())
    assert written == {"kind": "Cluster", "apiVersion": "kind.x-k8s.io/v1alpha4", "name": "meshconform",
                       "nodes": [{"role": "control-plane", "image": IMAGE, "extraPortMappings": [
                           {"containerPort": 30080, "listenAddress": "127.0.0.1", "protocol": "TCP"},
                           {"containerPort": 30443, "listenAddress": "127.0.0.1", "protocol": "TCP"},
                           {"containerPort": 30090, "listenAddress": "127.0.0.1", "protocol": "TCP"},
                           {"containerPort": 30091, "listenAddress": "127.0.0.1", "protocol": "TCP"}]}]}
    assert cluster.ingress_address() == ("127.0.0.1", 41235, 41236)
    # perf's nodePorts (LOAD_NODE_PORTS), read back the same way: the optional lifecycle member
    assert cluster.published_node_port(30090) == ("127.0.0.1", 41237)
    assert cluster.published_node_port(30091) == ("127.0.0.1", 41238)
    assert cluster.published_node_port(30092) is None
    described = cluster.describe()
    assert described["created_by_meshconform"] and described["node_image"] == IMAGE
    assert described["container_engine"] == {"name": "docker", "version": "28.2.2"}
    cluster.teardown()
    assert standins.argvs()[-1] == ["kind", "delete", "cluster", "--name", "meshconform", "--kubeconfig",
                                    str(kubeconfig)]
    assert not kubeconfig.exists()


def test_an_existing_cluster_is_reused_and_never_deleted(standins, tmp_path: Path, make_settings) -> None:
    standins.tool("kind", kind_rules(clusters="other\nmeshconform\n"))
    standins.tool("docker", docker_rules())
    cluster = make(tmp_path, make_settings)
    access = cluster.ensure()
    assert ["kind", "export", "kubeconfig", "--name", "meshconform", "--kubeconfig", str(access.kubeconfig)] \
        in standins.argvs()
    assert not [a for a in standins.argvs("kind") if a[1] == "create"]
    cluster.teardown()
    assert not [a for a in standins.argvs("kind") if a[1] == "delete"]
    assert cluster.describe()["created_by_meshconform"] is False


def test_keep_cluster_keeps_it(standins, tmp_path: Path, make_settings) -> None:
    standins.tool("kind", kind_rules())
    standins.tool("docker", docker_rules())
    cluster = make(tmp_path, make_settings, keep_cluster=True)
    cluster.ensure()
    assert not cluster.will_delete()
    cluster.teardown()
    assert not [a for a in standins.argvs("kind") if a[1] == "delete"]


def test_a_user_kubeconfig_file_is_never_deleted(standins, tmp_path: Path, make_settings) -> None:
    standins.tool("kind", kind_rules())
    standins.tool("docker", docker_rules())
    mine = tmp_path / "home" / "config"
    cluster = make(tmp_path, make_settings, kubeconfig=str(mine))
    assert cluster.ensure().kubeconfig == mine
    cluster.teardown()
    assert ["kind", "delete", "cluster", "--name", "meshconform", "--kubeconfig", str(mine)] in standins.argvs()
    assert mine.exists()


def test_workers_share_one_cluster_and_the_last_one_deletes_it(standins, tmp_path: Path, make_settings) -> None:
    create = {"args": ["create", "cluster"], "sleep": 1.0, "stderr": rec.KIND_CREATE_STDERR,
              "write_arg": "--kubeconfig", "write_text": rec.KUBECONFIG}
    standins.tool("kind", kind_rules(create=create))
    standins.tool("docker", docker_rules())
    workers = [make(tmp_path, make_settings, worker=w) for w in ("gw0", "gw1")]
    results: dict[str, object] = {}
    threads = [threading.Thread(target=lambda w=w: results.__setitem__(w.worker, w.ensure())) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert results["gw0"] == results["gw1"]
    assert len([a for a in standins.argvs("kind") if a[1] == "create"]) == 1
    workers[0].teardown()
    assert not [a for a in standins.argvs("kind") if a[1] == "delete"]  # gw1 still uses it
    workers[1].teardown()
    assert len([a for a in standins.argvs("kind") if a[1] == "delete"]) == 1


def test_a_cluster_someone_else_created_meanwhile_is_not_deleted(standins, tmp_path: Path, make_settings) -> None:
    standins.tool("kind", kind_rules(create={"args": ["create", "cluster"], "stderr": rec.KIND_ALREADY_EXISTS_STDERR,
                                            "exit": 1}))
    standins.tool("docker", docker_rules())
    with pytest.raises(tools.ToolFailed) as caught:
        make(tmp_path, make_settings).ensure()
    assert "node(s) already exist" in str(caught.value) and "--kind-cluster-name" in str(caught.value)
    assert not [a for a in standins.argvs("kind") if a[1] == "delete"]


def test_a_failed_create_leaves_no_cluster(standins, tmp_path: Path, make_settings) -> None:
    standins.tool("kind", kind_rules(create={"args": ["create", "cluster"], "stderr": rec.KIND_CREATE_FAILED_STDERR,
                                            "exit": 1}))
    standins.tool("docker", docker_rules())
    with pytest.raises(tools.ToolFailed, match="Preparing nodes"):
        make(tmp_path, make_settings).ensure()
    # kept by --retain, so its logs are exported first, then deleted
    assert [a[:3] for a in standins.argvs("kind")[-2:]] == [["kind", "export", "logs"], ["kind", "delete", "cluster"]]
    assert standins.argvs("kind")[-2][3] == str(tmp_path / "run" / "platform-main" / "diagnostics" /
                                                "kind-create-failed")


def test_a_create_past_its_deadline_is_stopped_and_cleaned_up(standins, tmp_path: Path, make_settings,
                                                              monkeypatch) -> None:
    monkeypatch.setattr(lifecycle, "TIMEOUTS", lifecycle.TIMEOUTS.__class__(kind_create=1))
    standins.tool("kind", kind_rules(create={"args": ["create", "cluster"], "sleep": 30}))
    standins.tool("docker", docker_rules())
    with pytest.raises(tools.ToolTimedOut, match="did not finish within 1 s"):
        make(tmp_path, make_settings).ensure()
    assert standins.argvs("kind")[-1][:5] == ["kind", "delete", "cluster", "--name", "meshconform"]


def test_no_engine_fails_before_kind_is_touched(standins, tmp_path: Path, make_settings) -> None:
    standins.tool("docker", [{"args": ["info"], "stdout": "\n", "stderr": rec.DOCKER_NO_ENGINE_STDERR, "exit": 1}])
    standins.tool("kind", kind_rules())
    with pytest.raises(engine.NoContainerEngine):
        make(tmp_path, make_settings).ensure()
    assert standins.argvs("kind") == []


def test_podman_is_passed_to_kind(standins, tmp_path: Path, make_settings) -> None:
    standins.tool("podman", [{"args": ["info"], "stdout": rec.PODMAN_VERSION}, {"args": ["pull"]}, {"args": ["save"]},
                             {"args": ["port"], "stdout": rec.DOCKER_PORT_HTTP}])
    standins.tool("kind", kind_rules())
    make(tmp_path, make_settings, container_engine="podman").ensure()
    # kind's docker-image load reads docker's images only: podman's go through an archive
    saved = [a for a in standins.argvs("podman") if a[1] == "save"]
    assert len(saved) == 1 and saved[0][2:5] == ["-m", "-o", str(tmp_path / "run" / "platform-main" / "images.tar")]
    assert ["kind", "load", "image-archive", saved[0][4], "--name", "meshconform"] in standins.argvs("kind")
    assert not (tmp_path / "run" / "platform-main" / "images.tar").exists()
    assert {c["env"].get("KIND_EXPERIMENTAL_PROVIDER") for c in standins.calls("kind") if c["args"] != ["version"]} \
        == {"podman"}
    assert ["podman", "port", "meshconform-control-plane", "30080/tcp"] in standins.argvs()


def test_a_reused_cluster_without_perfs_port_mappings_publishes_only_the_gateway(standins, tmp_path: Path,
                                                                                 make_settings) -> None:
    """A cluster made elsewhere (or by an older meshconform) with only the gateway's mappings: the ingress works,
    perf's nodePorts are not published, and the platform says so instead of offering them."""
    standins.tool("kind", kind_rules(clusters="meshconform\n"))
    standins.tool("docker", docker_rules(load_ports=False))
    cluster = make(tmp_path, make_settings)
    cluster.ensure()
    assert cluster.ingress_address() == ("127.0.0.1", 41235, 41236)
    assert cluster.published_node_port(30090) is None and cluster.published_node_port(30091) is None
    from meshconform.platform.kube import load
    missing = load.unavailable("kind", cluster.published_node_port, is_up=True)
    assert set(missing) == {"in-mesh", "mesh", "no-mesh"}
    assert "nodePort 30090" in missing["mesh"] and "port mappings" in missing["mesh"]


def test_no_published_ports_means_ask_the_service(standins, tmp_path: Path, make_settings) -> None:
    standins.tool("kind", kind_rules(clusters="meshconform\n"))
    standins.tool("docker", docker_rules(ports=False))
    cluster = make(tmp_path, make_settings)
    cluster.ensure()
    assert cluster.ingress_address() is None


def test_diagnostics_export_the_logs(standins, tmp_path: Path, make_settings) -> None:
    standins.tool("kind", kind_rules())
    standins.tool("docker", docker_rules())
    cluster = make(tmp_path, make_settings)
    cluster.ensure()
    folder = tmp_path / "diag"
    assert cluster.diagnostics(folder) == [folder / "kind-logs"]
    assert standins.argvs("kind")[-1] == ["kind", "export", "logs", str(folder / "kind-logs"), "--name", "meshconform"]
    standins.tool("kind", [{"args": ["version"], "stdout": rec.KIND_VERSION},
                           {"args": ["export"], "stderr": 'ERROR: unknown cluster "meshconform"\n', "exit": 1}])
    cluster = make(tmp_path, make_settings)
    [note] = cluster.diagnostics(folder)
    assert "unknown cluster" in note.read_text()


def test_unpinned_node_image_is_refused(tmp_path: Path, make_settings) -> None:
    with pytest.raises(Exception, match="pin it by digest"):
        make(tmp_path, make_settings, kind_node_image="kindest/node:v1.36.4")
    with pytest.raises(Exception, match="no node image is pinned for kind v0.31.0"):
        make(tmp_path, make_settings, kind_version="v0.31.0")


# ------------------------------------------------------------------ the user's cluster

def test_existing_cluster_checks_name_the_problem(tmp_path: Path, make_settings, monkeypatch) -> None:
    mesh, _ = make_settings(kubeconfig=str(tmp_path / "nope"))
    with pytest.raises(Exception, match="kubeconfig .*nope does not exist: pass --kubeconfig"):
        ExistingCluster(mesh).ensure()
    config = tmp_path / "config"
    config.write_text(rec.KUBECONFIG)
    mesh, _ = make_settings(kubeconfig=str(config), context="prod")
    with pytest.raises(Exception, match="has no context 'prod' \\(it has: kind-meshconform\\)"):
        ExistingCluster(mesh).ensure()
    mesh, _ = make_settings(kubeconfig=str(config))
    assert ExistingCluster(mesh).context_and_server() == ("kind-meshconform", "https://127.0.0.1:39321")
    monkeypatch.setenv("KUBECONFIG", f"{config}:{config}")
    mesh, _ = make_settings()
    with pytest.raises(Exception, match="KUBECONFIG lists 2 files"):
        ExistingCluster(mesh).kubeconfig_path()


def test_an_unreachable_cluster_is_one_clear_error(tmp_path: Path, make_settings) -> None:
    config = tmp_path / "config"
    config.write_text(rec.KUBECONFIG.replace("https://127.0.0.1:39321", "https://127.0.0.1:1"))
    mesh, _ = make_settings(kubeconfig=str(config))
    expected = ("cannot reach the cluster of context 'kind-meshconform'" if importlib.util.find_spec("kubernetes")
                else "the kubernetes Python client is not installed")
    with pytest.raises(Exception, match=expected):
        ExistingCluster(mesh).ensure()


def _kubeconfig(path: Path, server: str) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "ctx",
        "clusters": [{"name": "c", "cluster": {"server": server}}],
        "users": [{"name": "u", "user": {"token": "not-a-real-token"}}],
        "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u"}}]}))
    return path


@pytest.mark.skipif(importlib.util.find_spec("kubernetes") is None, reason="the kubernetes client is not installed")
def test_a_reachable_cluster_reports_its_version_and_a_refused_one_is_named(tmp_path: Path, make_settings) -> None:
    import json
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class ApiServer(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            # GET /version as the API server answers it (k8s.io/apimachinery pkg/version.Info json tags)
            body = json.dumps({"major": "1", "minor": "36", "gitVersion": "v1.36.4", "gitCommit": "abc",
                               "gitTreeState": "clean", "buildDate": "2026-08-12T10:00:00Z", "goVersion": "go1.24.6",
                               "compiler": "gc", "platform": "linux/amd64"}).encode()
            self.send_response(200 if self.path.rstrip("/") == "/version" else 404)  # the client asks /version/
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), ApiServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        config = _kubeconfig(tmp_path / "up", f"http://127.0.0.1:{server.server_address[1]}")
        mesh, _ = make_settings(kubeconfig=str(config))
        cluster = ExistingCluster(mesh)
        access = cluster.ensure()
        assert (access.kubeconfig, access.context) == (config.resolve(), "ctx")
        assert cluster.describe()["kubernetes_version"] == "v1.36.4"
    finally:
        server.shutdown()
        server.server_close()
    mesh, _ = make_settings(kubeconfig=str(_kubeconfig(tmp_path / "down", "http://127.0.0.1:1")))
    with pytest.raises(Exception, match="cannot reach the cluster of context 'ctx' \\(http://127.0.0.1:1\\)"):
        ExistingCluster(mesh).ensure()


def test_ctrl_c_during_create_stops_kind_and_deletes_the_half_made_cluster(standins, tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import time
    standins.tool("kind", kind_rules(create={"args": ["create", "cluster"], "sleep": 120, "sleeping_child": True}))
    standins.tool("docker", docker_rules())
    code = ("from pathlib import Path; from meshconform.platform.kind.lifecycle import KindLifecycle; "
            "from meshconform.platform.kind.settings import kind_settings, mesh_settings; "
            "v = {'kind_binary': 'kind'}; "
            f"KindLifecycle(Path({str(tmp_path / 'run' / 'p')!r}), Path({str(tmp_path / 'run')!r}), 'main', "
            "mesh_settings(v), kind_settings(v)).ensure()")
    # Ctrl-C at its default in the child whatever this process inherited: a background job (CI started with
    # `&` or nohup) ignores SIGINT, and Python keeps ignoring a signal ignored at its start.
    process = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.default_int_handler))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (standins.dir / "child.pid").exists():
        time.sleep(0.1)  # until kind create is running (its stand-in has started its child)
    assert (standins.dir / "child.pid").exists(), "kind create never started"
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode != 0 and "KeyboardInterrupt" in stderr
    kind_calls = [c["args"] for c in standins.calls("kind")]
    assert kind_calls[-1][:4] == ["delete", "cluster", "--name", "meshconform"], kind_calls
    creator = [c["pid"] for c in standins.calls("kind") if c["args"][:2] == ["create", "cluster"]][0]
    for pid in (creator, int((standins.dir / "child.pid").read_text())):
        try:
            os.kill(pid, 0)
            stat = Path(f"/proc/{pid}/stat")
            assert stat.exists() and stat.read_text().split()[2] == "Z", f"process {pid} outlived Ctrl-C"
        except ProcessLookupError:
            pass
    assert not (tmp_path / "run" / "kind-meshconform.json").exists()  # no record of a cluster to reuse


def test_a_pull_the_host_is_refused_stops_before_any_cluster_exists(standins, tmp_path: Path, make_settings) -> None:
    standins.tool("kind", kind_rules())
    standins.tool("docker", [{"args": ["pull", "docker.io/istio/examples-bookinfo-reviews-v2:1.20.3"],
                              "stderr": rec.DOCKER_PULL_LIMIT_STDERR, "exit": 1}, *docker_rules()])
    with pytest.raises(tools.ToolFailed) as caught:
        make(tmp_path, make_settings).ensure()
    message = str(caught.value)
    assert "cannot pull docker.io/istio/examples-bookinfo-reviews-v2:1.20.3 on this host" in message
    assert "toomanyrequests" in message and "`docker login docker.io`" in message
    assert not [a for a in standins.argvs("kind") if a[1] in ("create", "load", "delete")]


def test_docker_s_containerd_store_loads_through_an_archive_per_image(standins, tmp_path: Path,
                                                                      make_settings) -> None:
    """kind#3795: `kind load docker-image` fails with 'content digest ... not found'; each image is then saved for
    the node's platform only and loaded as an archive."""
    standins.tool("kind", [{"args": ["load", "docker-image"], "stderr": rec.KIND_LOAD_DIGEST_STDERR, "exit": 1},
                           *kind_rules()])
    standins.tool("docker", docker_rules())
    make(tmp_path, make_settings, install="none").ensure()  # no Istio images: the workloads' six
    saves = [a for a in standins.argvs("docker") if a[1] == "save"]
    archive = str(tmp_path / "run" / "platform-main" / "images.tar")
    assert len(saves) == 6 and all(a[2] == "--platform" and a[3].startswith("linux/") and a[4:6] == ["-o", archive]
                                   for a in saves)
    assert len([a for a in standins.argvs("kind") if a[1:3] == ["load", "image-archive"]]) == 6
    assert not Path(archive).exists()


def test_a_registry_mirror_replaces_the_host_pulls(standins, tmp_path: Path, make_settings) -> None:
    standins.tool("kind", kind_rules())
    standins.tool("docker", docker_rules())
    cluster = make(tmp_path, make_settings, registry_mirror="https://mirror.example.test")
    cluster.ensure()
    assert not [a for a in standins.argvs() if a[1] in ("pull", "load")]
    node = yaml.safe_load(cluster.config_path().read_text())["nodes"][0]
    hosts = cluster.mirror_dir() / "hosts.toml"
    assert node["extraMounts"] == [{"hostPath": str(cluster.mirror_dir()),
                                    "containerPath": "/etc/containerd/certs.d/docker.io", "readOnly": True}]
    assert hosts.read_text() == ('server = "https://registry-1.docker.io"\n\n[host."https://mirror.example.test"]\n'
                                 '  capabilities = ["pull", "resolve"]\n')
