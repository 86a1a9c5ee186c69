"""A conformance test is a small declared unit: id, description, features, the manifests it applies
(see suite/manifests.py) and whether it may share a cluster with other tests running in parallel.

`parallel=False` matters on shared clusters (kind): such tests change namespace-wide or mesh-wide
policy, so they carry one xdist group and, on a platform whose workers share one mesh, run on one
worker (the plugin switches xdist's loadgroup on there). On the local platform every xdist worker has
a platform of its own, so all tests are isolated and the group is not used."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest

from meshconform.suite.features import ALL_FEATURES

F = TypeVar("F", bound=Callable[..., Any])
SERIAL_GROUP = "meshconform-serial"
REGISTRY: dict[str, ConformanceTest] = {}


@dataclass(frozen=True)
class ConformanceTest:
    id: str
    description: str
    features: frozenset[str]
    manifests: tuple[str, ...] = ()
    parallel: bool = True
    provisional: bool = False


def conformance_test(id: str, description: str, features: set[str], manifests: tuple[str, ...] = (),
                     parallel: bool = True, provisional: bool = False) -> Callable[[F], F]:
    unknown = set(features) - ALL_FEATURES
    if unknown:
        raise ValueError(f"{id}: unknown features {sorted(unknown)}")
    from meshconform.suite.manifests import manifest_path
    for name in manifests:
        manifest_path(name)  # a typo fails at import, not halfway through a run
    unit = ConformanceTest(id, description, frozenset(features), manifests, parallel, provisional)

    def decorate(function: F) -> F:
        # The same file may be imported under two module names (pytest's importlib mode and the
        # installed package); only a second *definition* of an id is an error.
        where = f"{function.__code__.co_filename}:{function.__name__}"
        if _DEFINED_AT.setdefault(id, where) != where:
            raise ValueError(f"conformance test id {id!r} declared twice: {_DEFINED_AT[id]} and {where}")
        REGISTRY[id] = unit
        if not parallel:
            function = pytest.mark.xdist_group(SERIAL_GROUP)(function)
        return pytest.mark.mesh_conformance(unit)(function)  # type: ignore[no-any-return]
    return decorate


_DEFINED_AT: dict[str, str] = {}
