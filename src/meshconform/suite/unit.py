"""A conformance test is a small declared unit: id, description, features, the manifests it applies (see
suite/manifests.py) with the values they are rendered with, and whether it may share a mesh with other tests
running at the same time.

A unit lists its manifests once, in the decorator; the framework applies them before the test body runs (the
plugin's `mesh_manifests` fixture), rendered with the unit's `values`, and removes them afterwards. Three forms:

    manifests=("routing/echo-weighted.yaml",)                      # applied before the test
    manifests=(*BASE, chosen_by("scenario", {"v1": "a.yaml", "v3": "b.yaml"}))  # one per parameter value
    manifests=("egress/outside-server.yaml", deferred("egress/registry-only.yaml"))  # applied by the test,
                                                                   # once it knows their values (apply_deferred)

`values` is a mapping, or a function whose parameters are named after the test's parameters or fixtures (the
framework passes them, as pytest does), returning the mapping: `values=lambda weights: {"v1": weights[0]}`.

`parallel=False` matters where the run's xdist workers share one mesh (kind, cluster): the unit runs alone there.
Others take turns by what their manifests claim (suite/claims.py): a unit whose traffic or config reaches beyond
the services its manifests name must say parallel=False. On the local platform every xdist worker has a platform
of its own, so all tests are isolated anyway."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest

F = TypeVar("F", bound=Callable[..., Any])
REGISTRY: dict[str, ConformanceTest] = {}
Values = Mapping[str, Any] | Callable[..., Mapping[str, Any]] | None


@dataclass(frozen=True)
class ChosenBy:
    """Manifests a parametrised unit chooses among by the value of one of its parameters."""

    parameter: str
    options: tuple[tuple[Any, tuple[str, ...]], ...]

    def names(self) -> tuple[str, ...]:
        return tuple(name for _, names in self.options for name in names)

    def chosen(self, params: Mapping[str, Any]) -> tuple[str, ...]:
        if self.parameter not in params:
            raise ValueError(f"chooses its manifests by parameter {self.parameter!r}, which the test does not have "
                             f"(its parameters: {', '.join(params) or 'none'})")
        value = params[self.parameter]
        for option, names in self.options:
            if option == value:
                return names
        raise ValueError(f"declares no manifests for {self.parameter}={value!r} "
                         f"(declared for: {', '.join(repr(option) for option, _ in self.options)})")


@dataclass(frozen=True)
class Deferred:
    """Manifests the test applies itself, when it knows their values (`mesh_manifests.apply_deferred(**values)`)."""

    names: tuple[str, ...]


Declared = str | ChosenBy | Deferred


def chosen_by(parameter: str, options: Mapping[Any, str | Sequence[str]]) -> ChosenBy:
    """For a parametrised unit: the manifests to apply for each value of `parameter`."""
    return ChosenBy(parameter, tuple((value, (names,) if isinstance(names, str) else tuple(names))
                                     for value, names in options.items()))


def deferred(*names: str) -> Deferred:
    return Deferred(tuple(names))


@dataclass(frozen=True)
class ConformanceTest:
    id: str
    description: str
    features: frozenset[str]
    declared: tuple[Declared, ...] = ()
    parallel: bool = True
    provisional: bool = False
    values: Values = field(default=None, hash=False, compare=False)

    @property
    def manifests(self) -> tuple[str, ...]:
        """Every manifest the unit may apply, each once, in declaration order (its claims are read from these)."""
        return tuple(dict.fromkeys(name for entry in self.declared for name in _names(entry)))

    def upfront(self, params: Mapping[str, Any]) -> tuple[str, ...]:
        """The manifests the framework applies before the test with these parameters."""
        names: list[str] = []
        for entry in self.declared:
            if isinstance(entry, str):
                names.append(entry)
            elif isinstance(entry, ChosenBy):
                names += entry.chosen(params)
        return tuple(dict.fromkeys(names))

    @property
    def deferred(self) -> tuple[str, ...]:
        return tuple(name for entry in self.declared if isinstance(entry, Deferred) for name in entry.names)

    def values_for(self, argument: Callable[[str], Any]) -> dict[str, Any]:
        """The unit's values; a function's parameters are looked up by name with `argument`."""
        if self.values is None:
            return {}
        if callable(self.values):
            names = inspect.signature(self.values).parameters
            return dict(self.values(**{name: argument(name) for name in names}))
        return dict(self.values)


def _names(entry: Declared) -> Iterable[str]:
    if isinstance(entry, str):
        return (entry,)
    return entry.names() if isinstance(entry, ChosenBy) else entry.names


def conformance_test(id: str, description: str, features: set[str], manifests: Sequence[Declared] = (),
                     values: Values = None, parallel: bool = True, provisional: bool = False) -> Callable[[F], F]:
    from meshconform.suite.features import all_features
    unknown = set(features) - all_features()
    if unknown:
        raise ValueError(f"{id}: unknown features {sorted(unknown)}")
    unit = ConformanceTest(id, description, frozenset(features), tuple(manifests), parallel, provisional, values)
    from meshconform.suite.manifests import manifest_path
    for name in unit.manifests:
        manifest_path(name)  # a typo fails at import, not halfway through a run

    def decorate(function: F) -> F:
        # The same file may be imported under two module names (pytest's importlib mode and the
        # installed package); only a second *definition* of an id is an error.
        where = f"{function.__code__.co_filename}:{function.__name__}"
        if _DEFINED_AT.setdefault(id, where) != where:
            raise ValueError(f"conformance test id {id!r} declared twice: {_DEFINED_AT[id]} and {where}")
        REGISTRY[id] = unit
        marked: F = pytest.mark.mesh_conformance(unit)(function)
        return marked
    return decorate


_DEFINED_AT: dict[str, str] = {}
