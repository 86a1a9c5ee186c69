"""The import rules of docs/architecture.md, enforced for every room: each module belongs to exactly one room, and a
room imports of meshconform only itself and what its row in the table allows."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
SRC = "src/meshconform"
IMPLEMENTATIONS = ("platform.local", "platform.kube", "platform.kind")
ROOMS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # room: (its files or folders, what it may import of meshconform besides itself: module prefixes)
    "meshapi": ((f"{SRC}/meshapi",), ("errors",)),
    "platform api": ((f"{SRC}/platform/api.py", f"{SRC}/platform/__init__.py"), ("meshapi", "traffic", "errors")),
    "platform registry": ((f"{SRC}/platform/registry.py",), ("platform.api", "errors")),
    "platform session": ((f"{SRC}/platform/session.py",), ("platform.registry", "platform.api", "errors")),
    "platform options": ((f"{SRC}/platform/cli_options.py",), ("platform.registry",)),
    "platform sharing": ((f"{SRC}/platform/sharing.py",), ("errors",)),
    "local platform": ((f"{SRC}/platform/local",), ("meshapi", "platform.api", "platform.registry",
                                                      "platform.sharing", "traffic", "errors", "interrupts")),
    "kubernetes platform": ((f"{SRC}/platform/kube",), ("meshapi", "platform.api", "platform.registry", "traffic",
                                                          "errors")),
    "kind and cluster": ((f"{SRC}/platform/kind",), ("platform.kube", "platform.registry", "platform.api",
                                                      "platform.sharing", "errors")),
    "perf": ((f"{SRC}/perf",), ("platform.api", "platform.registry", "platform.session", "platform.cli_options",
                                "runs", "meshapi", "errors", "interrupts")),
    "traffic": ((f"{SRC}/traffic",), ()),
    "stats": ((f"{SRC}/stats",), ()),
    "suite": ((f"{SRC}/suite",), ("meshapi", "platform.api", "traffic", "stats", "bookinfo.pages", "errors")),
    "fidelity": ((f"{SRC}/fidelity",), ("platform.local", "platform.api", "meshapi", "traffic", "suite.tls",
                                        "errors", "runs")),
    "report": ((f"{SRC}/report",), ()),
    "certify": ((f"{SRC}/certify",), ("report", "stats", "suite", "fixtures", "platform.registry",
                                      "platform.session", "errors", "conformance")),
    "testing": ((f"{SRC}/testing.py",), ("fixtures", "platform.api", "traffic", "suite", "stats")),
    "command line": ((f"{SRC}/cli.py", f"{SRC}/console.py", f"{SRC}/commands", f"{SRC}/__init__.py"),
                     ("meshapi", "platform.api", "platform.registry", "platform.session", "platform.cli_options",
                      "perf", "fixtures", "suite.extensions", "report", "runs", "errors", "conformance", "certify")),
    "runs": ((f"{SRC}/runs.py",), ("errors",)),
    "errors, interrupts": ((f"{SRC}/errors.py", f"{SRC}/interrupts.py"), ()),
    "fixtures": (("fixtures",), ("meshapi", "platform.api", "platform.registry", "platform.session", "traffic",
                                 "stats", "suite", "report", "bookinfo", "errors", "interrupts", "runs")),
    "conformance": (("conformance",), ("suite", "stats", "traffic", "platform.api", "bookinfo.pages", "meshapi",
                                       "testing")),
    # The apps use the local platform's transports only when that platform put them in their environment.
    "bookinfo": (("bookinfo",), ("traffic", "platform.local.transport")),
}
# What a module's files are installed as (the repository's top-level rooms are sub-packages of meshconform).
PACKAGES = {"src/meshconform": "meshconform", "fixtures": "meshconform.fixtures",
            "conformance": "meshconform.conformance", "bookinfo": "meshconform.bookinfo"}


def _module_of(path: Path) -> str:
    relative = path.relative_to(ROOT).with_suffix("")
    for folder, package in PACKAGES.items():
        if relative.is_relative_to(folder):
            parts = relative.relative_to(folder).parts
            return ".".join((package, *parts)).removesuffix(".__init__")
    raise AssertionError(path)


def _imports(path: Path) -> list[str]:
    """Every meshconform module a file imports (`from meshconform.x import y` counts as meshconform.x.y)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names += [f"{node.module}.{alias.name}" for alias in node.names]
    return [name for name in names if name.startswith("meshconform.")]


def _files(room: str) -> list[Path]:
    found = []
    for place in ROOMS[room][0]:
        path = ROOT / place
        found += [path] if path.is_file() else sorted(path.rglob("*.py"))
    return found


def test_every_module_is_in_exactly_one_room() -> None:
    every = {path for folder in ("src", "fixtures", "conformance", "bookinfo")
             for path in (ROOT / folder).rglob("*.py")}
    placed: dict[Path, list[str]] = {}
    for room in ROOMS:
        for path in _files(room):
            placed.setdefault(path, []).append(room)
    # A folder room holds its sub-folders unless a sub-folder is a room of its own (platform/local in platform).
    assert sorted(str(p.relative_to(ROOT)) for p in every - set(placed)) == []
    assert {str(p.relative_to(ROOT)): rooms for p, rooms in placed.items() if len(rooms) > 1} == {}


def _own(room: str) -> set[str]:
    """The modules a room is: its files', or its folders' packages."""
    return {_module_of(ROOT / place) if place.endswith(".py") else _module_of(ROOT / place / "__init__.py")
            for place in ROOMS[room][0]}


@pytest.mark.parametrize("room", list(ROOMS))
def test_room_imports_only_what_it_may(room: str) -> None:
    own = _own(room)
    allowed = tuple(f"meshconform.{prefix}" for prefix in ROOMS[room][1])
    broken = []
    for path in _files(room):
        for name in _imports(path):
            mine = any(name == module or name.startswith(module + ".") for module in own if module != "meshconform")
            if mine or name == "meshconform.__version__" or any(
                    name == prefix or name.startswith(prefix + ".") for prefix in allowed):
                continue
            broken.append(f"{path.relative_to(ROOT)} imports {name}")
    assert broken == []


def test_no_room_but_the_platforms_own_imports_an_implementation() -> None:
    """Nothing outside a platform's package names its classes (the one seam is the registry); fidelity runs Istio's
    cases on the local platform, and the apps take its transports, by design."""
    for room, (_, allowed) in ROOMS.items():
        if room in ("local platform", "kubernetes platform", "kind and cluster", "fidelity", "bookinfo"):
            continue
        assert not [prefix for prefix in allowed if prefix.startswith(IMPLEMENTATIONS)], room


def test_every_module_starts_with_a_purpose_line() -> None:
    missing = [str(path.relative_to(ROOT)) for folder in ("src", "fixtures", "conformance", "bookinfo", "examples")
               for path in (ROOT / folder).rglob("*.py")
               if path.stat().st_size and ast.get_docstring(ast.parse(path.read_text())) is None]
    assert missing == []
