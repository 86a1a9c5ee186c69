"""Checks others add: a vendor's or a user's own conformance units, with manifests and features of their own, shipped
as a package and found through the entry-point group `meshconform.checks` (as platforms are through
`meshconform.platforms`). Each entry point names a `CheckPackage`:

    [project.entry-points."meshconform.checks"]
    acme = "acme_mesh_checks:CHECKS"

    CHECKS = CheckPackage("acme", tests="acme_mesh_checks.checks", manifests="acme_mesh_checks",
                          profiles=(Profile("ACME-MESH", core=frozenset({"AcmeTenantRouting"}), extended=frozenset()),))

Its units declare its features (its profiles' core and extended) and its manifests by `<name>/<file>` (the files in
`<manifests package>/manifests/`); `meshconform run` collects its tests beside ours, `--mesh-run-test`,
`--mesh-profile` and `--mesh-supported-features` select them as ours, and the report lists them under its profiles.
`examples/acme-mesh-checks` is a complete one."""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from importlib import resources
from importlib.metadata import entry_points
from pathlib import Path

from meshconform.errors import ConfigError
from meshconform.suite.features import Profile

ENTRY_POINT_GROUP = "meshconform.checks"
# Names ours take: a package may not shadow them.
RESERVED = frozenset({"bookinfo", "meshconform"})


@dataclass(frozen=True)
class CheckPackage:
    name: str  # its manifests are named "<name>/<file>"
    tests: str  # the importable package holding its test modules
    manifests: str = ""  # the importable package whose `manifests/` folder holds its manifests ("": none)
    profiles: tuple[Profile, ...] = ()  # the profiles (and so the features) its units declare

    def tests_path(self) -> Path:
        """The folder of its test modules (what pytest is given to collect)."""
        spec = importlib.util.find_spec(self.tests)
        if spec is None or not spec.submodule_search_locations:
            raise ConfigError(f"check package {self.name}: {self.tests} is not an importable package",
                              source=ENTRY_POINT_GROUP)
        return Path(next(iter(spec.submodule_search_locations)))

    def manifest_root(self) -> Path:
        if not self.manifests:
            raise ConfigError(f"check package {self.name} ships no manifests", source=ENTRY_POINT_GROUP)
        return Path(str(resources.files(self.manifests))) / "manifests"


@functools.cache
def packages() -> dict[str, CheckPackage]:
    """Every installed check package, by name."""
    found: dict[str, CheckPackage] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        package = entry.load()
        where = f"entry point {entry.name} ({entry.value})"
        if not isinstance(package, CheckPackage):
            raise ConfigError(f"{where} is not a CheckPackage", source=ENTRY_POINT_GROUP)
        if package.name in RESERVED or package.name in found or "/" in package.name:
            raise ConfigError(f"{where}: the name {package.name!r} is taken or not a single word",
                              source=ENTRY_POINT_GROUP)
        found[package.name] = package
    return dict(sorted(found.items()))
