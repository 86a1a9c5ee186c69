"""The mesh config one test applies: `MeshConfig` applies resources and removes exactly those afterwards;
`UnitManifests` is a declared unit's manifests for one test, applied by the framework with the unit's values.

Not tied to pytest: the plugin hands them to tests as the `mesh_config` and `mesh_manifests` fixtures, and
anything else driving a platform (a script, a vendor's harness) may use them as they are."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from meshconform.meshapi.loader import Sourced, load_files, load_text
from meshconform.platform.api import Platform, SupportsDeferredDelete
from meshconform.suite.checks import new_marker
from meshconform.suite.manifests import load_manifest, name_after


class MeshConfig:
    """Applies resources for one test and removes them afterwards (even when the test fails)."""

    def __init__(self, platform: Platform, declared: Sequence[str] | None = None, owner: str = "test") -> None:
        self.platform = platform
        self.declared = declared  # a conformance unit may only apply the manifests it declares
        self.owner = owner
        self.applied: list[Sourced] = []
        self.history: list[Sourced] = []  # everything applied, kept for the report after cleanup
        self.renamed: dict[tuple[str, str], str] = {}  # declared manifests' objects, named after the test
        # Where tests take turns on a shared mesh, a unit's turn is decided by its declared manifests' claims:
        # config from anywhere else could meet another test's unseen (suite/claims.py).
        self.declared_only = False

    def apply(self, resources: Sequence[Sourced]) -> list[Sourced]:
        self.platform.apply(resources)
        self.applied.extend(resources)
        self.history.extend(resources)
        return list(resources)

    def apply_yaml(self, text: str, source: str = "<test>") -> list[Sourced]:
        self._undeclared(source)
        return self.apply(load_text(text, source))

    def apply_file(self, *paths: str | Path) -> list[Sourced]:
        self._undeclared(", ".join(map(str, paths)))
        return self.apply(load_files([Path(p) for p in paths]))

    def _undeclared(self, source: str) -> None:
        if self.declared_only and self.declared is not None:
            raise ValueError(f"{self.owner}: on a mesh shared by the run's workers a conformance unit applies only "
                             f"its declared manifests (their claims decide whom it runs beside), not {source}")

    def apply_manifest(self, *names: str, **values: object) -> str:
        """Apply manifests by name (see meshconform.suite.manifests) in one go, their routes tagged with a new
        marker; returns the marker, so the test can wait for exactly this config. For a user's own test: a
        declared conformance unit gets its manifests applied by the framework (`mesh_manifests`)."""
        if self.declared is not None:
            raise ValueError(f"{self.owner}: a conformance unit's manifests are applied by the framework, as "
                             f"declared (use mesh_manifests.update or .apply_deferred for new values), not {names}")
        return self._apply_named(names, values)

    def _apply_named(self, names: Sequence[str], values: Mapping[str, Any]) -> str:
        marker = new_marker(self.owner)
        items = [item for name in names for item in load_manifest(name, marker, **values)]
        self.apply(name_after(items, self.owner, self.renamed))
        return marker

    def cleanup(self) -> None:
        """Deletes what this test applied, and nothing else (each object once, newest first). A platform that
        can defer the delivery does: the next test's apply (or send) removes this config and adds its own in
        one reconciliation."""
        if self.applied:
            unique = list({item.key: item for item in reversed(self.applied)}.values())
            if isinstance(self.platform, SupportsDeferredDelete):
                self.platform.delete_later(unique, ignore_missing=True)
            else:
                self.platform.delete(unique, ignore_missing=True)
            self.applied = []


class UnitManifests:
    """One test's declared manifests: `upfront` (applied by the framework before the test), `deferred` (applied
    by the test with `apply_deferred`, once it knows their values), both rendered with `values`."""

    def __init__(self, config: MeshConfig, upfront: Sequence[str], deferred: Sequence[str],
                 values: Mapping[str, Any]) -> None:
        self.config = config
        self.upfront = tuple(upfront)
        self.deferred = tuple(deferred)
        self.values: dict[str, Any] = dict(values)
        self.marker = ""  # of the latest apply: what a convergence probe waits for
        self._deferred_applied = False

    def apply_upfront(self) -> str:
        if self.upfront:
            self.marker = self.config._apply_named(self.upfront, self.values)
        return self.marker

    def update(self, **changed: Any) -> str:
        """Apply the manifests applied so far again, with these values changed (a test that changes its config
        half-way: a fault's percentage, a mode); returns the new marker."""
        self.values.update(changed)
        names = self.upfront + (self.deferred if self._deferred_applied else ())
        if not names:
            raise ValueError(f"{self.config.owner}: nothing applied yet to update")
        self.marker = self.config._apply_named(names, self.values)
        return self.marker

    def apply_deferred(self, **values: Any) -> str:
        """Apply the unit's deferred manifests with the unit's values and these (known only now: an address the
        platform gave, ...); returns the marker."""
        if not self.deferred:
            raise ValueError(f"{self.config.owner}: declares no deferred manifests")
        self.values.update(values)
        self.marker = self.config._apply_named(self.deferred, self.values)
        self._deferred_applied = True
        return self.marker

    def rendered(self, name: str) -> list[Sourced]:
        """A declared manifest as rendered with the current values, before its objects are named after the test
        (what a test reads to derive its expectations from its own config)."""
        if name not in self.upfront + self.deferred:
            raise ValueError(f"{self.config.owner}: {name} is not among its manifests")
        return load_manifest(name, **self.values)

    def name_of(self, kind: str, name: str) -> str:
        """The name an object of the declared manifests was applied under (named after the test)."""
        return self.config.renamed[(kind, name)]
