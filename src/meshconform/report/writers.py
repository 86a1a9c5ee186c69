"""Report writers, as a list: each turns the (redacted) report into one file in the run's folder.

Ours are conformance.yaml, junit.xml and report.html, and for a certification run the submission's own
(report/submission.py: README.md, the Gateway API ConformanceReport, suite-digest.txt); another format is a writer of
its own, registered under the entry-point group `meshconform.report_writers` (an object with a `name` and
`write(report, folder) -> Path | None`), and written beside ours without an edit here.

Every report is checked against the JSON Schema of its apiVersion (report/schema.py) on its way out: one that breaks
it is still written, for reading, and then refused with the places it breaks."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Protocol

import yaml

from meshconform.report import html, junit, schema, submission
from meshconform.report.model import ConformanceReport

ENTRY_POINT_GROUP = "meshconform.report_writers"


class ReportWriter(Protocol):
    @property
    def name(self) -> str: ...

    def write(self, report: dict[str, Any], folder: Path) -> Path | None:
        """Write `report` (ConformanceReport.to_json(): redacted, plain data) into `folder`; the file written (None:
        nothing to write for this report)."""
        ...


class ReportSchemaError(Exception):
    """A report that breaks its published schema: a fault of the code that made it, said with where it breaks."""


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
    """The report serialised once (and redacted there), then written by every writer (a certification report by
    the submission's too); the files, YAML first."""
    folder.mkdir(parents=True, exist_ok=True)
    plain = report.to_json()
    every = [*(writers() if chosen is None else chosen), *(submission.WRITERS if report.certification else ())]
    written = [path for writer in every if (path := writer.write(plain, folder)) is not None]
    problems = schema.problems(plain)
    if problems:
        raise ReportSchemaError(f"{written[0] if written else folder}: the report breaks its schema "
                                f"({schema.REPORT_SCHEMAS.get(str(plain.get('apiVersion')), 'none')}): "
                                + "; ".join(problems[:10]))
    return written
