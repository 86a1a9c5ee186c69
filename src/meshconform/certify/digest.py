"""The installed suite's digest: its version and the SHA-256 of every file that decides a verdict, each named by
its installed path (meshconform/conformance/test_routing.py), so that a modified check, manifest or judging module
shows in a submission and `meshconform verify` can say which.

Covered: the checks and their manifests (meshconform.conformance), Bookinfo's deployed manifests and scenario
configs (their YAML), the code that judges (suite, stats, traffic, report, the pytest plugin, the public testing
module) and the cluster testbed's agent (the instrument inside a pod on kind and cluster), plus every installed
check package's tests and manifests. Not covered: the platforms' own code (how a mesh is installed and reached),
which the report describes in its platform facts instead."""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

from meshconform.errors import ConfigError
from meshconform.report.certification import SuiteDigest
from meshconform.suite.extensions import packages

# (importable package or module, the files of it that count: "" for all, else a folder inside it)
OURS: tuple[tuple[str, str], ...] = (
    ("meshconform.conformance", ""),
    ("meshconform.bookinfo", "manifests"), ("meshconform.bookinfo", "networking"),
    ("meshconform.fixtures", ""), ("meshconform.suite", ""), ("meshconform.stats", ""),
    ("meshconform.traffic", ""), ("meshconform.report", ""), ("meshconform.testing", ""),
    ("meshconform.platform.kube.agent", ""),
)
SKIPPED_PARTS = frozenset({"__pycache__"})


def _located(name: str) -> tuple[Path, bool]:
    """Where an importable package (its folder, True) or module (its file, False) is."""
    spec = importlib.util.find_spec(name)
    if spec is None:
        raise ConfigError(f"{name} is not importable: the suite is not installed whole", source="suite digest")
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations))), True
    if spec.origin is None:
        raise ConfigError(f"{name} has no file", source="suite digest")
    return Path(spec.origin), False


def _files(name: str, inside: str) -> Iterator[tuple[str, Path]]:
    """(installed path, file) for each file of `name` that counts."""
    where, is_package = _located(name)
    installed = name.replace(".", "/")
    if not is_package:
        yield installed + where.suffix, where
        return
    root = where / inside if inside else where
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(where)
        if path.is_file() and path.suffix != ".pyc" and not SKIPPED_PARTS & set(relative.parts) \
                and not any(part.startswith(".") for part in relative.parts):
            yield f"{installed}/{relative.as_posix()}", path


def covered() -> list[tuple[str, str]]:
    """Every (package or module, folder) the digest covers: ours, then each installed check package's."""
    found = list(OURS)
    for package in packages().values():
        found.append((package.tests, ""))
        if package.manifests:
            found.append((package.manifests, "manifests"))
    return found


def installed() -> SuiteDigest:
    """The digest of the suite as installed here."""
    files: dict[str, str] = {}
    for name, inside in covered():
        for key, path in _files(name, inside):
            files[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return SuiteDigest(version("meshconform"), files)
