"""A conformance test is a small declared unit: id, description, features, config, parallel-safe."""

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
    if id in REGISTRY:
        raise ValueError(f"conformance test id {id!r} declared twice")
    unit = ConformanceTest(id, description, frozenset(features), manifests, parallel, provisional)
    REGISTRY[id] = unit

    def decorate(function: F) -> F:
        return pytest.mark.mesh_conformance(unit)(function)  # type: ignore[no-any-return]
    return decorate
