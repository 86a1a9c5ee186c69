"""Typing as a contract: the package ships py.typed, and the fixtures' public types are importable
from one module, so users' own tests type-check against them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

USER_TEST = '''
from meshconform.testing import MeshConfig, Request, Response, ResultRecord, Vantage

def test_mine(mesh_config: MeshConfig, mesh_meshed_client: Vantage, mesh_result: ResultRecord) -> None:
    replies: list[Response] = mesh_meshed_client.send([Request("/", host="echo:8080")])
    mesh_result.figure("n", len(replies))
    mesh_config.apply_manifest(42)  # wrong: names are strings
'''


def test_package_is_marked_typed() -> None:
    assert (Path(str(resources.files("meshconform"))) / "py.typed").is_file()


def test_a_users_test_is_type_checked_against_the_public_types(tmp_path: Path) -> None:
    # As a user has it: the package laid out as installed (pyproject's package-dir mapping), not the
    # editable install, whose import hook mypy cannot follow.
    site, repo = tmp_path / "site", Path(__file__).parents[1]
    shutil.copytree(repo / "src" / "meshconform", site / "meshconform")
    for folder in ("fixtures", "conformance", "bookinfo"):
        shutil.copytree(repo / folder, site / "meshconform" / folder)
    (tmp_path / "test_mine.py").write_text(USER_TEST)
    run = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--ignore-missing-imports",
                          "test_mine.py"], capture_output=True, text=True, timeout=300, cwd=tmp_path,
                         env={**os.environ, "MYPYPATH": str(site)})
    assert 'Argument 1 to "apply_manifest" of "MeshConfig" has incompatible type "int"' in run.stdout, run.stdout
    assert run.stdout.count("error:") == 1, run.stdout
