"""A conformance test is a small declared unit: id, description, features, the manifests it applies
(see suite/manifests.py) and whether it may share a mesh with other tests running at the same time.

`parallel=False` matters where the run's xdist workers share one mesh (kind, cluster): the unit runs alone there.
Others take turns by what their manifests claim (suite/claims.py): a unit whose traffic or config reaches beyond
the services its manifests name must say parallel=False. On the local platform every xdist worker has a platform
of its own, so all tests are isolated anyway."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest

from meshconform.suite.features import ALL_FEATURES

F = TypeVar("F", bound=Callable[..., Any])
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
        return pytest.mark.mesh_conformance(unit)(function)  # type: ignore[no-any-return]
    return decorate


_DEFINED_AT: dict[str, str] = {}
