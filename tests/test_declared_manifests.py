"""A unit lists its manifests once: the framework applies them before the test with the unit's values (a mapping,
or a function of the test's parameters and fixtures), a parametrised unit's `chosen_by` picks one per parameter
value, `deferred` ones wait for the test's `apply_deferred`, `update` re-applies with changed values; a unit that
names a manifest in its body again is refused. Run on the minimal platform, which records what is applied."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from meshconform.suite.unit import chosen_by, conformance_test, deferred

UNITS = '''
import pytest
from meshconform.suite.unit import chosen_by, conformance_test, deferred


def applied(platform):
    """(kind, name) -> the rendered document, of what the platform holds now."""
    return {(key[0], key[2]): item.document for key, item in platform.held.items()}


@pytest.mark.parametrize("weights", [(80, 20), (1, 9)], ids=lambda w: f"{w[0]}-{w[1]}")
@conformance_test("weights", "x", features={"WeightedRouting"}, manifests=("routing/echo-weighted.yaml",),
                  values=lambda weights: {"v1": weights[0], "v2": weights[1]})
def test_weights(weights, mesh_platform, mesh_manifests):
    vs = applied(mesh_platform)[("VirtualService", "weights-echo")]
    assert [d["weight"] for d in vs["spec"]["http"][0]["route"]] == list(weights)
    # every route is tagged with this apply's marker
    assert vs["spec"]["http"][0]["headers"]["response"]["set"]["x-meshconform-config"] == mesh_manifests.marker


@pytest.mark.parametrize("mode", ["permissive", "disable"])
@conformance_test("choice", "x", features={"MTLSPermissive"},
                  manifests=(chosen_by("mode", {"permissive": "mtls/namespace-permissive.yaml",
                                                "disable": "mtls/namespace-disable.yaml"}),))
def test_choice(mode, mesh_platform):  # does not ask for mesh_manifests: applied all the same
    [(kind, name)] = applied(mesh_platform)
    assert kind == "PeerAuthentication" and name == "choice-default"
    assert applied(mesh_platform)[(kind, name)]["spec"]["mtls"]["mode"] == mode.upper()


@pytest.fixture
def secret_port():
    return 8443


@conformance_test("later", "x", features={"FaultAbort"},
                  manifests=("fault/echo-abort.yaml", deferred("mtls/port-level-permissive.yaml")),
                  values=lambda secret_port: {"status": 418, "percent": 100, "port": secret_port})
def test_later(mesh_platform, mesh_manifests):
    assert {kind for kind, _ in applied(mesh_platform)} == {"VirtualService"}
    first = mesh_manifests.marker
    again = mesh_manifests.update(percent=30)
    vs = applied(mesh_platform)[("VirtualService", "later-echo")]
    assert again != first and vs["spec"]["http"][0]["fault"]["abort"]["percentage"]["value"] == 30
    mesh_manifests.apply_deferred(port_mode="STRICT")
    assert ("PeerAuthentication", "later-echo-port-level") in applied(mesh_platform)
    assert mesh_manifests.values["port"] == 8443


@conformance_test("twice", "x", features={"FaultAbort"}, manifests=("fault/echo-abort.yaml",),
                  values={"status": 418, "percent": 100})
def test_twice(mesh_config):
    with pytest.raises(ValueError, match="applied by the framework, as declared"):
        mesh_config.apply_manifest("fault/echo-abort.yaml", status=500, percent=100)
'''

MISSING_CHOICE = '''
import pytest
from meshconform.suite.unit import chosen_by, conformance_test


@pytest.mark.parametrize("mode", ["permissive", "strict"])
@conformance_test("half-declared", "x", features={"MTLSPermissive"},
                  manifests=(chosen_by("mode", {"permissive": "mtls/namespace-permissive.yaml"}),))
def test_half(mode, mesh_platform):
    pass
'''


def _run(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_units.py").write_text(text)
    here = Path(__file__).parent / "platforms"
    env = {**os.environ, "MESHCONFORM_PLATFORMS": "minimal_platform:PLATFORM",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(here), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", "pytest", str(tmp_path / "test_units.py"), "-q",
                           "-p", "no:cacheprovider", "--import-mode=importlib", "--mesh-platform=minimal",
                           f"--mesh-report-dir={tmp_path / 'run'}"], env=env, capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)


def test_the_framework_applies_what_a_unit_declares(tmp_path: Path) -> None:
    run = _run(tmp_path, UNITS)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "6 passed" in run.stdout


def test_a_parameter_value_without_declared_manifests_is_a_usage_error(tmp_path: Path) -> None:
    run = _run(tmp_path, MISSING_CHOICE)
    assert run.returncode == 4, run.stdout[-2000:] + run.stderr[-2000:]
    assert "conformance unit half-declared declares no manifests for mode='strict'" in run.stderr


def test_a_unit_reports_every_manifest_it_may_apply_once() -> None:
    @conformance_test("listing", "x", features={"MTLSPermissive"},
                      manifests=("mtls/namespace-strict.yaml",
                                 chosen_by("m", {1: "mtls/namespace-permissive.yaml", 2: ("mtls/namespace-strict.yaml",
                                                                                          "mtls/namespace-disable.yaml")}),
                                 deferred("mtls/workload-disable.yaml")))
    def listing() -> None:
        pass
    from meshconform.suite.unit import REGISTRY
    unit = REGISTRY.pop("listing")
    assert unit.manifests == ("mtls/namespace-strict.yaml", "mtls/namespace-permissive.yaml",
                              "mtls/namespace-disable.yaml", "mtls/workload-disable.yaml")
    assert unit.upfront({"m": 2}) == ("mtls/namespace-strict.yaml", "mtls/namespace-disable.yaml")
    assert unit.deferred == ("mtls/workload-disable.yaml",)
