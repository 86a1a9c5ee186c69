"""Report writers, as a list: each turns the (redacted) report into one file in the run's folder.

Ours are conformance.yaml, junit.xml and report.html; another format is a writer of its own, registered under the
entry-point group `meshconform.report_writers` (an object with a `name` and `write(report, folder) -> Path`), and
written beside ours without an edit here."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Protocol

import yaml

from meshconform.report import html, junit
from meshconform.report.model import ConformanceReport

ENTRY_POINT_GROUP = "meshconform.report_writers"


class ReportWriter(Protocol):
    @property
    def name(self) -> str: ...

    def write(self, report: dict[str, Any], folder: Path) -> Path:
        """Write `report` (ConformanceReport.to_json(): redacted, plain data) into `folder`; the file written."""
        ...


@dataclass(frozen=True)
class FileWriter:
    """One file rendered from the report's data."""

    name: str
    filename: str
    render: Callable[[dict[str, Any]], str]

    def write(self, report: dict[str, Any], folder: Path) -> Path:
        path = folder / self.filename
        path.write_text(self.render(report))
        return path


def _yaml(report: dict[str, Any]) -> str:
    return yaml.safe_dump(report, sort_keys=False, width=120)


OURS = (FileWriter("yaml", "conformance.yaml", _yaml), FileWriter("junit", "junit.xml", junit.render),
        FileWriter("html", "report.html", html.render))


def writers() -> list[ReportWriter]:
    """Ours (YAML first: it is the report), then every registered one."""
    found: list[ReportWriter] = list(OURS)
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        writer = entry.load()
        found.append(writer() if isinstance(writer, type) else writer)
    return found


def write(report: ConformanceReport, folder: Path, chosen: Sequence[ReportWriter] | None = None) -> list[Path]:
    """The report serialised once (and redacted there), then written by every writer; the files, YAML first."""
    folder.mkdir(parents=True, exist_ok=True)
    plain = report.to_json()
    return [writer.write(plain, folder) for writer in (writers() if chosen is None else chosen)]
