"""The run folder's HTML page: verdicts, mesh cost, pictures, series table (Jinja2 template)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

TEMPLATES = Path(__file__).parent / "templates"


def write(document: dict[str, Any], comparison: dict[str, Any] | None, images: dict[str, str | None],
          path: Path, verdict: dict[str, Any] | None = None) -> Path:
    """`verdict`: the run's summary line, its one-sentence meaning and exit code (cli.outcome, cli.explain)."""
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]))
    path.write_text(env.get_template("perf.html.j2").render(doc=document, comparison=comparison, images=images,
                                                            verdict=verdict))
    return path
