"""What a unit claims in a shared mesh, read from its manifests (suite/claims.py): the units that meet on a service
or the ingress overlap, policies and undeclared traffic make a unit exclusive, and every registered unit's
manifests can be read for it."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import yaml

from meshconform.suite.claims import INGRESS, Claims, claims_of, derive
from meshconform.suite.unit import REGISTRY, ConformanceTest


@pytest.fixture(scope="module")
def units() -> dict[str, ConformanceTest]:
    for path in sorted((Path(__file__).parents[1] / "conformance").glob("test_*.py")):
        importlib.import_module(f"meshconform.conformance.{path.stem}")
    return dict(REGISTRY)


def test_every_unit_has_claims_or_runs_alone(units: dict[str, ConformanceTest]) -> None:
    for unit in units.values():
        claims = claims_of(unit)
        assert claims.exclusive or claims.keys, unit.id


def test_units_meet_on_the_services_and_the_ingress_their_manifests_name(units: dict[str, ConformanceTest]) -> None:
    def of(unit_id: str) -> Claims:
        return claims_of(units[unit_id])
    assert of("fault-abort").keys == {"echo"} and of("weighted-split-echo").keys == {"echo"}
    assert of("fault-abort").overlaps(of("weighted-split-echo"))
    assert of("mirror-full").keys == {"echo", "echo-mirror"}  # the mirror's target too
    assert of("gateway-api-mesh-request-mirror").keys == {"echo", "echo-mirror"}  # a RequestMirror backend
    assert of("gateway-host-routing").keys == {"echo", INGRESS}  # bound to a Gateway: outside names are not services
    assert of("match-near-misses").keys == {"echo", "echo-ports"}  # a Service selecting app echo claims echo


def test_policies_and_undeclared_traffic_need_the_mesh_alone(units: dict[str, ConformanceTest]) -> None:
    assert claims_of(units["mtls-strict"]).exclusive  # declared parallel=False
    assert claims_of(units["injection-rules"]).exclusive  # no manifests: sends to services nothing names
    # Not declared parallel=False, yet an AuthorizationPolicy applies to a whole namespace.
    policy = ConformanceTest("probe-policy", "x", frozenset({"Authorization"}), ("authorization/allow-nothing.yaml",))
    assert claims_of(policy).exclusive and "AuthorizationPolicy" in claims_of(policy).why
    assert claims_of(policy).overlaps(Claims(frozenset()))  # exclusive: overlaps even a unit claiming nothing


@pytest.mark.parametrize("text, why", [
    ("kind: VirtualService\nspec: {hosts: ['*'], http: [{route: [{destination: {host: echo}}]}]}", "'*'"),
    ("kind: VirtualService\nspec: {hosts: [echo], http: [{route: [{destination: {}}]}]}", "template"),
    ("kind: EnvoyFilter\nmetadata: {name: x}\nspec: {}", "EnvoyFilter x"),
    ("kind: ServiceEntry\nspec: {hosts: ['*.example.com']}", "*.example.com"),
])
def test_hosts_that_are_not_one_named_service_make_a_unit_exclusive(text: str, why: str) -> None:
    claims = derive([yaml.safe_load(text)])
    assert claims.exclusive and why in claims.why, claims


def test_every_spelling_of_a_host_claims_the_same_service() -> None:
    documents = [yaml.safe_load(f"kind: DestinationRule\nspec: {{host: {host}}}")
                 for host in ("echo", "echo.default", "echo.default.svc.cluster.local")]
    assert derive(documents) == Claims(frozenset({"echo"}))
