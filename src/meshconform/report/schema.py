"""The published JSON Schemas of what meshconform writes, shipped in the package (report/schema/): one per
apiVersion of the conformance report, and the Gateway API's ConformanceReport as its v1.6.1 types define it.

`problems(document)` validates a report against the schema of its own apiVersion and says where it breaks (the
field's path and what is wrong), one line each; the report writers check every report on its way out, and
`meshconform verify` checks a submission's."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from importlib import resources
from typing import Any

import jsonschema

# apiVersion -> schema file (report/schema/); a new apiVersion gets a file of its own, and the old one stays.
REPORT_SCHEMAS = {"meshconform.io/v1alpha1": "conformance-report-v1alpha1.schema.json"}
GATEWAY_API_SCHEMA = "gateway-api-conformance-report-v1.schema.json"


@functools.cache
def load(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(resources.files("meshconform.report").joinpath("schema", name).read_text())
    return loaded


def _validator(name: str) -> jsonschema.protocols.Validator:
    schema = load(name)
    validator: jsonschema.protocols.Validator = jsonschema.Draft202012Validator(schema)
    return validator


def problems_against(document: Any, name: str) -> list[str]:
    """Every place `document` breaks the schema `name`, as '<path>: <message>', in document order."""
    # An error under anyOf (a figure of any shape) is said where it really is: jsonschema's best match among the
    # alternatives' own errors, rather than "is not valid under any of the given schemas" at the top of the figure.
    errors = [jsonschema.exceptions.best_match([error]) or error for error in _validator(name).iter_errors(document)]
    errors.sort(key=lambda e: [str(p) for p in e.absolute_path])
    return [f"{_path(error.absolute_path)}: {_message(error)}" for error in errors]


def problems(report: Mapping[str, Any]) -> list[str]:
    """A meshconform report checked against the schema of its apiVersion."""
    version = report.get("apiVersion") if isinstance(report, Mapping) else None
    if version not in REPORT_SCHEMAS:
        return [f"apiVersion: {version!r} is not one this meshconform knows ({', '.join(REPORT_SCHEMAS)})"]
    return problems_against(report, REPORT_SCHEMAS[str(version)])


def _path(parts: Any) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(the document)"


def _message(error: jsonschema.ValidationError) -> str:
    """jsonschema's message, without quoting a whole sub-document back."""
    message = str(error.message)
    return message if len(message) <= 300 else message[:297] + "..."
