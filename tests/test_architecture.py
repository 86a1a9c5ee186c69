"""The import rules of docs/architecture.md, enforced: a room that imports what it must not fails here."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
ROOMS = {  # room -> (folder, prefixes it must not import)
    "meshapi": (ROOT / "src/meshconform/meshapi", ("meshconform.platform", "meshconform.traffic", "meshconform.suite",
                                                   "meshconform.fixtures")),
    "traffic": (ROOT / "src/meshconform/traffic", ("meshconform.platform", "meshconform.bookinfo",
                                                   "meshconform.suite")),
    "stats": (ROOT / "src/meshconform/stats", ("meshconform.platform", "meshconform.traffic", "meshconform.suite")),
    "platform api and registry": (ROOT / "src/meshconform/platform", ("meshconform.platform.local",
                                                                      "meshconform.platform.kube",
                                                                      "meshconform.platform.kind")),
    "local platform": (ROOT / "src/meshconform/platform/local", ("meshconform.suite", "meshconform.fixtures",
                                                                 "meshconform.conformance", "meshconform.report")),
    "kubernetes platform": (ROOT / "src/meshconform/platform/kube", ("meshconform.platform.local", "meshconform.suite",
                                                                     "meshconform.fixtures", "meshconform.conformance",
                                                                     "meshconform.report")),
    "suite": (ROOT / "src/meshconform/suite", ("meshconform.platform.local", "meshconform.platform.kube",
                                               "meshconform.fixtures")),
    "fidelity": (ROOT / "src/meshconform/fidelity", ("meshconform.fixtures", "meshconform.conformance",
                                                     "meshconform.report")),
    "fixtures": (ROOT / "fixtures", ("meshconform.platform.local", "meshconform.platform.kube",
                                     "meshconform.platform.kind")),
    "conformance": (ROOT / "conformance", ("meshconform.platform.local", "meshconform.platform.kube",
                                           "meshconform.platform.kind")),
    "command line": (ROOT / "src/meshconform/commands", ("meshconform.platform.local", "meshconform.platform.kube",
                                                        "meshconform.platform.kind", "meshconform.suite",
                                                        "meshconform.fixtures")),
}


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


@pytest.mark.parametrize("room", list(ROOMS))
def test_room_imports_only_what_it_may(room: str) -> None:
    folder, forbidden = ROOMS[room]
    # "platform api and registry" means the files directly in platform/, not its implementations
    files = folder.glob("*.py") if room == "platform api and registry" else folder.rglob("*.py")
    broken = [f"{path.relative_to(ROOT)} imports {name}" for path in files for name in _imports(path)
              if name.startswith(forbidden)]
    assert broken == []


def test_every_module_starts_with_a_purpose_line() -> None:
    missing = [str(path.relative_to(ROOT)) for folder in ("src", "fixtures", "conformance", "bookinfo")
               for path in (ROOT / folder).rglob("*.py")
               if path.stat().st_size and ast.get_docstring(ast.parse(path.read_text())) is None]
    assert missing == []
