"""The mesh as found (suite/found.py, fixtures/found.py): a local platform attached with --mesh-platform-dir that
already holds a user's VirtualServices for echo and reviews. The run refuses before any check, naming them; with
--mesh-found-config=skip-affected it runs the checks they cannot touch, reports the others as not run naming them,
and finishes in minutes instead of twenty; either way the user's objects are left exactly as they were. A check of
the user's own that never converges names the other VirtualService for its host."""

from __future__ import annotations

import copy
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from meshconform import conformance
from meshconform.meshapi.loader import load_text
from meshconform.platform import registry
from meshconform.platform.api import FoundObject, SupportsFoundConfig
from meshconform.platform.local.platform import LocalPlatform
from meshconform.suite import found
from meshconform.suite.convergence import NeverConverged, rival_config
from meshconform.suite.unit import ConformanceTest

USERS_ROUTES = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: users-echo
  namespace: default
spec:
  hosts: [echo]
  http:
  - route:
    - destination: {host: echo}
      headers: {response: {set: {x-users-route: echo}}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: users-reviews
  namespace: default
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews}
"""
OWN_TEST = """\
from meshconform.suite.checks import wait_for_marker
from meshconform.traffic.model import Request

ROUTE = '''
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: my-echo, namespace: default}
spec:
  hosts: [echo]
  http:
  - route:
    - destination: {host: echo}
      headers: {response: {set: {x-meshconform-config: mine}}}
'''


def test_my_route(mesh_config, mesh_meshed_client, mesh_timeouts):
    mesh_config.apply_yaml(ROUTE, "my-route.yaml")
    wait_for_marker(mesh_meshed_client, Request("/", host="echo:8080"), "mine", mesh_timeouts)
"""


@pytest.fixture(scope="module")
def users_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalPlatform, dict]]:
    """A local platform up in its own folder, holding the user's two VirtualServices (as `meshconform apply` leaves
    them), and the stored documents as they were right after."""
    root = tmp_path_factory.mktemp("users-platform")
    kind = registry.get("local")
    platform = registry.create(kind, registry.PlatformContext(root / "platform", root, "main", kind.settings({})))
    assert isinstance(platform, LocalPlatform)
    try:
        platform.up()
        platform.apply(load_text(USERS_ROUTES, "users-routes.yaml"))
        yield platform, _users_objects(root / "platform")
    finally:
        platform.down()


def _users_objects(folder: Path) -> dict:
    """The user's objects as the platform stores them (creation order, source, document), read afresh."""
    state = LocalPlatform(folder).state
    return {(r.document["kind"], r.document["metadata"]["name"]): copy.deepcopy(vars(r)) for r in state.resources
            if r.source == "users-routes.yaml"}


def _pytest(folder: Path, report: Path, *args: str, timeout: float = 600) -> tuple[subprocess.CompletedProcess[str],
                                                                                    float]:
    started = time.monotonic()
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--import-mode=importlib",
                          f"--mesh-platform-dir={folder}", f"--mesh-report-dir={report}", *args],
                         capture_output=True, text=True, timeout=timeout)
    return run, time.monotonic() - started


def test_an_attached_local_platform_lists_only_what_it_did_not_create(users_platform) -> None:
    platform, _ = users_platform
    assert platform.found_config() == []  # this process brought it up: only its own set-up and what it applied
    attached = LocalPlatform(platform.folder)
    assert isinstance(attached, SupportsFoundConfig)
    listed = {f.ref: f.scope for f in attached.found_config()}
    assert listed == {"VirtualService default/users-echo": "namespace default, applied from users-routes.yaml",
                      "VirtualService default/users-reviews": "namespace default, applied from users-routes.yaml"}


def test_the_run_refuses_naming_the_users_objects_and_leaves_them(users_platform, tmp_path: Path) -> None:
    platform, before = users_platform
    run, took = _pytest(platform.folder, tmp_path / "refused", str(Path(conformance.__file__).parent))
    output = run.stdout + run.stderr
    assert run.returncode == 4, output[-3000:]  # a usage error: no check ran
    assert "VirtualService default/users-echo (namespace default, applied from users-routes.yaml): touches echo" in \
        output and "VirtualService default/users-reviews" in output
    assert "--mesh-found-config=skip-affected" in output and " passed" not in output
    assert _users_objects(platform.folder) == before
    print(f"refused after {took:.1f} s")


@pytest.mark.slow
def test_with_skip_affected_the_run_names_them_finishes_and_leaves_them(users_platform, tmp_path: Path) -> None:
    platform, before = users_platform
    report = tmp_path / "skipped"
    run, took = _pytest(platform.folder, report, str(Path(conformance.__file__).parent),
                        "--mesh-found-config=skip-affected", timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert took < 180, f"the run took {took:.0f} s"
    results = yaml.safe_load((report / "conformance.yaml").read_text())["tests"]
    not_run = [t for t in results if t["result"] == "skipped"]
    ran = [t for t in results if t["result"] == "passed"]
    assert ran and not [t for t in results if t["result"] == "failed"], results
    echo_checks = [t for t in not_run if t["id"].startswith(("weighted-split-echo", "fault-abort"))]
    assert echo_checks and all("VirtualService default/users-echo" in str(t) for t in echo_checks)
    assert [t for t in not_run if "VirtualService default/users-reviews" in str(t)]
    assert all("not run: configuration this run did not create" in str(t) for t in not_run)
    assert _users_objects(platform.folder) == before  # exactly as they were: order, source, document
    print(f"skip-affected: {len(ran)} passed, {len(not_run)} not run, {took:.1f} s")


def test_a_check_that_never_converges_names_the_other_config_for_its_host(users_platform, tmp_path: Path) -> None:
    platform, before = users_platform
    test = tmp_path / "test_own.py"
    test.write_text(OWN_TEST)
    run, _ = _pytest(platform.folder, tmp_path / "own", str(test), "--mesh-timeout=max_time_to_consistency=3")
    output = run.stdout + run.stderr
    assert run.returncode == 1 and "never converged" in output, output[-3000:]
    assert ("other configuration for the same hosts, not created by this test, is on the mesh: VirtualService "
            "default/users-echo") in output, output[-3000:]
    assert _users_objects(platform.folder) == before


def _found(kind: str, namespace: str, name: str, spec: dict, scope: str = "namespace default") -> FoundObject:
    document = {"apiVersion": "networking.istio.io/v1" if kind not in ("PeerAuthentication", "AuthorizationPolicy")
                else "security.istio.io/v1", "kind": kind, "metadata": {"name": name, "namespace": namespace},
                "spec": spec}
    return FoundObject(document["apiVersion"], kind, namespace, name, document, scope)


def test_which_checks_an_object_affects_follows_the_claims() -> None:
    echo_route = _found("VirtualService", "default", "u", {"hosts": ["echo"], "http": [{"route": [
        {"destination": {"host": "echo"}}]}]})
    strict = _found("PeerAuthentication", "istio-system", "default", {"mtls": {"mode": "STRICT"}},
                    "mesh-wide: root namespace istio-system")
    permissive = _found("PeerAuthentication", "istio-system", "spelled-out", {"mtls": {"mode": "PERMISSIVE"}},
                        "mesh-wide: root namespace istio-system")
    gateway = _found("Gateway", "shop", "g", {"selector": {"istio": "ingressgateway"}, "servers": []})
    findings = found.survey([echo_route, strict, permissive, gateway])
    assert [f.claims.describe() for f in findings] == ["echo", "the whole mesh (a mesh-wide PeerAuthentication)",
                                                       "", "ingress"]
    assert findings[2].harmless  # Istio's default, written out: listed, never blamed
    on_echo = ConformanceTest("x", "", frozenset({"HTTPRouting"}), ("routing/echo-weighted.yaml",))
    without_manifests = ConformanceTest("y", "", frozenset({"HTTPRouting"}))
    assert [f.ref for f in found.affecting(on_echo, findings)] == [
        "VirtualService default/u", "PeerAuthentication istio-system/default"]
    assert len(found.affecting(without_manifests, findings)) == 3  # sends where nothing names: all but the harmless
    assert "--mesh-found-config=skip-affected" in found.refusal(findings, {"x": findings[:2]}, 5)


def test_a_telemetry_for_metrics_or_mesh_wide_access_logging_is_listed_never_blamed() -> None:
    """A vendor's mesh typically turns its access log on with a root-namespace Telemetry (istio.io "Envoy Access
    Logs"): that changes no reply, so it must not stop the run; whether the log is readable is the platform's fact.
    Tracing (sampling) or a workload's own access-log setting still counts as a policy."""
    scope = "mesh-wide: root namespace istio-system"
    logging = _found("Telemetry", "istio-system", "mesh-default", {"accessLogging": [{"providers": [
        {"name": "envoy"}]}], "metrics": [{"providers": [{"name": "prometheus"}]}]}, scope)
    tracing = _found("Telemetry", "istio-system", "sampled", {"tracing": [{"randomSamplingPercentage": 100}]}, scope)
    per_workload = _found("Telemetry", "istio-system", "quiet-echo", {"selector": {"matchLabels": {"app": "echo"}},
                                                                       "accessLogging": [{"disabled": True}]}, scope)
    for found_object in (logging, tracing, per_workload):
        found_object.document["apiVersion"] = "telemetry.istio.io/v1"
    findings = found.survey([logging, tracing, per_workload])
    assert findings[0].harmless and not findings[1].harmless and not findings[2].harmless
    on_echo = ConformanceTest("x", "", frozenset({"HTTPRouting"}), ("routing/echo-weighted.yaml",))
    assert [f.ref for f in found.affecting(on_echo, findings)] == ["Telemetry istio-system/sampled",
                                                                    "Telemetry istio-system/quiet-echo"]


def test_a_service_account_is_listed_and_affects_no_check() -> None:
    """Istio's Bookinfo sample applied to an attached platform brings four ServiceAccounts; each was said to touch
    the whole mesh and refused every check (weighted-split-echo included), though an identity changes no traffic."""
    account = FoundObject("v1", "ServiceAccount", "default", "bookinfo-details",
                          {"apiVersion": "v1", "kind": "ServiceAccount",
                           "metadata": {"name": "bookinfo-details", "namespace": "default"}},
                          "namespace default, applied from bookinfo.yaml")
    [finding] = found.survey([account])
    assert finding.harmless and "touches nothing a check sees" in finding.describe()
    on_echo = ConformanceTest("x", "", frozenset({"HTTPRouting"}), ("routing/echo-weighted.yaml",))
    without_manifests = ConformanceTest("y", "", frozenset({"HTTPRouting"}))
    assert found.affecting(on_echo, [finding]) == found.affecting(without_manifests, [finding]) == []


def test_rival_config_and_the_reason_it_adds() -> None:
    applied = load_text("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: mine, "
                        "namespace: default}\nspec:\n  hosts: [echo]\n  http:\n  - route:\n    - destination: "
                        "{host: echo}\n", "mine.yaml")
    rival = _found("VirtualService", "default", "users-echo", {"hosts": ["echo"], "http": [{"route": [
        {"destination": {"host": "echo"}}]}]})
    other = _found("VirtualService", "default", "users-ratings", {"hosts": ["ratings"], "http": [{"route": [
        {"destination": {"host": "ratings"}}]}]})
    itself = _found("VirtualService", "default", "mine", {"hosts": ["echo"]})
    rivals = rival_config([rival, other, itself], applied)
    assert rivals == ["VirtualService default/users-echo (namespace default): touches echo"]
    error = NeverConverged("config m1", 3.0, 3, 4, __import__("collections").Counter({"answered 200 without this "
                                                                                      "config's marker": 4}), ["x"])
    error.blame(rivals)
    assert error.reason.endswith("is on the mesh: VirtualService default/users-echo (namespace default): touches echo")
    assert str(error).startswith(error.reason)
