"""docs/architecture.md's rule for platform/kube: it imports neither the local platform, nor the suite, nor the
fixtures (tests/test_architecture.py does not list this room yet)."""

from __future__ import annotations

import ast
from pathlib import Path

KUBE = Path(__file__).parents[2] / "src" / "meshconform" / "platform" / "kube"
FORBIDDEN = ("meshconform.platform.local", "meshconform.suite", "meshconform.fixtures", "meshconform.conformance")


def test_kube_imports_only_what_it_may():
    broken = []
    for path in KUBE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            broken += [f"{path.name} imports {n}" for n in names if n.startswith(FORBIDDEN)]
    assert broken == []
