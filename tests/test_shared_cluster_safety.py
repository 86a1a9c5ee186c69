"""Shared-cluster safety: a test's objects are named after it (references follow), its cleanup removes
only what it applied, and on a platform whose workers share one mesh units whose claims overlap take turns
(suite/claims.py, suite/turns.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from meshconform.meshapi.loader import load_text
from meshconform.suite.manifests import name_after

CONFIG = """apiVersion: v1
kind: Secret
metadata: {name: cred, namespace: istio-system}
type: kubernetes.io/tls
data: {tls.crt: Y2VydA==, tls.key: a2V5}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: ["*"]
    tls: {mode: SIMPLE, credentialName: cred}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: echo}
spec:
  hosts: [echo]
  gateways: [mesh, gw, istio-system/other]
  http: [{route: [{destination: {host: echo}}]}]
"""


def test_objects_are_named_after_the_test_and_references_follow() -> None:
    renamed: dict[tuple[str, str], str] = {}
    secret, gateway, vs = name_after(load_text(CONFIG, "c.yaml"), "gateway-tls-simple", renamed)
    assert secret.resource.metadata.name == "gateway-tls-simple-cred"
    assert gateway.resource.metadata.name == "gateway-tls-simple-gw"
    assert gateway.document["spec"]["servers"][0]["tls"]["credentialName"] == "gateway-tls-simple-cred"
    assert vs.resource.metadata.name == "gateway-tls-simple-echo"
    # 'mesh' and a gateway the test did not apply keep their names
    assert vs.document["spec"]["gateways"] == ["mesh", "gateway-tls-simple-gw", "istio-system/other"]
    # a later apply of the same test refers to the gateway it applied earlier
    [later] = name_after(load_text(CONFIG.split("---")[2], "later.yaml"), "gateway-tls-simple", renamed)
    assert later.document["spec"]["gateways"][1] == "gateway-tls-simple-gw"
    # another test's copy of the same manifest writes other objects
    other = name_after(load_text(CONFIG, "c.yaml"), "gateway-host-routing", {})
    assert {i.key for i in other}.isdisjoint({i.key for i in (secret, gateway, vs)})


def test_cleanup_deletes_only_what_the_test_applied() -> None:
    from meshconform.suite.config import MeshConfig

    class Recorder:
        def __init__(self) -> None:
            self.deleted: list[tuple[str, str, str]] = []

        def apply(self, resources: object) -> None:
            pass

        def delete(self, resources: list, ignore_missing: bool = False) -> None:  # type: ignore[type-arg]
            self.deleted += [item.key for item in resources]

    platform = Recorder()
    config = MeshConfig(platform, owner="t")  # type: ignore[arg-type]
    items = load_text(CONFIG, "c.yaml")
    config.apply(items)
    config.apply(items[2:])  # applied twice: deleted once
    config.cleanup()
    assert sorted(platform.deleted) == sorted(i.key for i in items)
    config.cleanup()  # nothing left to delete
    assert len(platform.deleted) == 3


def test_on_a_shared_mesh_a_unit_applies_only_its_declared_manifests() -> None:
    """Its turn is decided by its manifests' claims: config from elsewhere could meet another test's unseen. A test
    of the user's own (no declared manifests) runs alone there, so it may apply anything."""
    from meshconform.suite.config import MeshConfig

    class Recorder:
        applied: list[object] = []

        def apply(self, resources: list[object]) -> None:
            self.applied += resources
    unit = MeshConfig(Recorder(), declared=("fault/echo-abort.yaml",), owner="fault-abort")  # type: ignore[arg-type]
    unit.declared_only = True
    with pytest.raises(ValueError, match="fault-abort: on a mesh shared .* applies only its declared manifests"):
        unit.apply_yaml(CONFIG, "inline.yaml")
    assert unit.applied == []
    users_own = MeshConfig(Recorder(), owner="test_mine")  # type: ignore[arg-type]
    users_own.declared_only = True
    assert len(users_own.apply_yaml(CONFIG, "mine.yaml")) == 3


UNITS = '''
import json, os, time
from meshconform.suite.unit import conformance_test

def _hold(name):
    # Stands for a test's work on the mesh: long enough that two units run at once would overlap in time.
    started = time.time()
    time.sleep(0.3)
    with open(os.environ["TURN_NOTES"], "a") as f:
        f.write(json.dumps([name, os.environ.get("PYTEST_XDIST_WORKER", "main"), started, time.time()]) + "\\n")

@conformance_test("echo-abort", "x", features={"FaultAbort"}, manifests=("fault/echo-abort.yaml",),
                  values={"status": 418, "percent": 100})
def test_echo_abort(mesh_platform): _hold("echo-abort")

@conformance_test("echo-weights", "x", features={"WeightedRouting"}, manifests=("routing/echo-weighted.yaml",),
                  values={"v1": 50, "v2": 50})
def test_echo_weights(mesh_platform): _hold("echo-weights")

@conformance_test("echo-delay", "x", features={"FaultDelay"}, manifests=("fault/echo-delay.yaml",),
                  values={"delay": "1s", "percent": 50})
def test_echo_delay(mesh_platform): _hold("echo-delay")

@conformance_test("alone", "x", features={"MTLSStrict"}, parallel=False)
def test_alone(mesh_platform): _hold("alone")

@conformance_test("books", "x", features={"BookinfoScenarios"},
                  manifests=("bookinfo/networking/virtual-service-all-v1.yaml",))
def test_books(mesh_platform): _hold("books")

def test_users_own(mesh_platform): _hold("users-own")
'''


def test_units_whose_claims_overlap_never_run_at_once_on_a_shared_platform(tmp_path: Path) -> None:
    """Two workers share one mesh: the three units claiming echo run one after another, the unit declared
    parallel=False and the user's own test (no declared claims) run alone."""
    (tmp_path / "test_units.py").write_text(UNITS)
    notes = tmp_path / "notes.jsonl"
    here = Path(__file__).parent / "platforms"
    env = {**os.environ, "MESHCONFORM_PLATFORMS": "minimal_platform:SHARED_PLATFORM", "TURN_NOTES": str(notes),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(here), os.environ.get("PYTHONPATH")]))}
    run = subprocess.run([sys.executable, "-m", "pytest", str(tmp_path / "test_units.py"), "-q", "-n", "2",
                          "-p", "no:cacheprovider", "--import-mode=importlib", "--mesh-platform=minimal-shared",
                          f"--mesh-report-dir={tmp_path / 'run'}"], env=env, capture_output=True, text=True,
                         timeout=180)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    spans = {name: (worker, start, end) for name, worker, start, end in map(json.loads, notes.read_text().splitlines())}
    assert len(spans) == 6 and len({worker for worker, _, _ in spans.values()}) == 2, spans

    def overlap(a: str, b: str) -> bool:
        return spans[a][1] < spans[b][2] and spans[b][1] < spans[a][2]
    for a, b in [("echo-abort", "echo-weights"), ("echo-abort", "echo-delay"), ("echo-weights", "echo-delay")]:
        assert not overlap(a, b), f"{a} and {b} both claim echo but ran at once: {spans[a]} {spans[b]}"
    for alone in ("alone", "users-own"):
        assert not [other for other in spans if other != alone and overlap(alone, other)], (alone, spans)
