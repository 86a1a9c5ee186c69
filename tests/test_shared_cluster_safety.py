"""Shared-cluster safety: a test's objects are named after it (references follow), its cleanup removes
only what it applied, and on a platform whose workers share one mesh the units declared parallel=False
run on one xdist worker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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
    from meshconform.fixtures.plugin import MeshConfig

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


UNITS = '''
import os, json
from pathlib import Path
from meshconform.suite.unit import conformance_test

def _note(name):
    with open(os.environ["SERIAL_NOTES"], "a") as f:
        f.write(json.dumps([name, os.environ.get("PYTEST_XDIST_WORKER", "main")]) + "\\n")

@conformance_test("serial-one", "x", features={"MTLSStrict"}, parallel=False)
def test_serial_one(mesh_platform): _note("serial-one")

@conformance_test("serial-two", "x", features={"MTLSPermissive"}, parallel=False)
def test_serial_two(mesh_platform): _note("serial-two")

@conformance_test("serial-three", "x", features={"Authorization"}, parallel=False)
def test_serial_three(mesh_platform): _note("serial-three")

@conformance_test("free-one", "x", features={"WeightedRouting"})
def test_free_one(mesh_platform): _note("free-one")
'''


def test_units_declared_serial_share_one_worker_on_a_shared_platform(tmp_path: Path) -> None:
    (tmp_path / "test_units.py").write_text(UNITS)
    notes = tmp_path / "notes.jsonl"
    here = Path(__file__).parent / "platforms"
    env = {**os.environ, "MESHCONFORM_PLATFORMS": "minimal_platform:SHARED_PLATFORM", "SERIAL_NOTES": str(notes),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(here), os.environ.get("PYTHONPATH")]))}
    run = subprocess.run([sys.executable, "-m", "pytest", str(tmp_path / "test_units.py"), "-q", "-n", "2",
                          "-p", "no:cacheprovider", "--import-mode=importlib", "--mesh-platform=minimal-shared",
                          f"--mesh-report-dir={tmp_path / 'run'}"], env=env, capture_output=True, text=True,
                         timeout=180)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    where = dict(json.loads(line) for line in notes.read_text().splitlines())
    assert len({where["serial-one"], where["serial-two"], where["serial-three"]}) == 1, where
