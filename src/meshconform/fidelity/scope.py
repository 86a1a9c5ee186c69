"""Whether the local platform accepts a case's resources: the one reason an Istio expectation may stay out of the
fidelity figure's scope is that the platform refuses them, naming the resource and the field.

`refusal` runs what `apply` runs before anything starts (loading, the capability check, topology and the
translator; see platform/local/reconcile.py), on scratch state, with the namespaces the resources name."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from meshconform.errors import ConfigError
from meshconform.meshapi.loader import load_text
from meshconform.platform.local import reconcile
from meshconform.platform.local.state import EnvoyInfo, RunFiles, RunState

PLATFORM_NAMESPACES = {"default", "istio-system"}


def _namespaces(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    named = {(d.get("metadata") or {}).get("namespace", "default") for d in documents} - PLATFORM_NAMESPACES
    given = {(d.get("metadata") or {}).get("name") for d in documents if d.get("kind") == "Namespace"}
    return [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n, "labels": {"istio-injection": "enabled"}}}
            for n in sorted(named - given)]


def refusal(documents: list[dict[str, Any]], source: str) -> ConfigError | None:
    """The local platform's refusal of `documents` (None: it accepts them)."""
    text = yaml.safe_dump_all([*_namespaces(documents), *documents], sort_keys=False)
    state = RunState(block="127.255.255", gateway_ports={"http": 1, "https": 2}, envoy=EnvoyInfo("", "", ""))
    try:
        items = load_text(text, source)
        with tempfile.TemporaryDirectory(prefix="meshconform-scope-") as folder:
            reconcile.compute(items, state, RunFiles(Path(folder)), frozenset())
    except ConfigError as exc:
        return exc
    return None


# ---------------------------------------------------------------- which expectations each entry covers

Pattern = str | list[Any]


def expand(pattern: Pattern) -> list[str]:
    """A pattern as id strings: an id, an id prefix ending in "/*", or a list of segments (joined by "/"), each a
    string or a list of alternatives, whose last may be "*" (the rest)."""
    if isinstance(pattern, str):
        return [pattern]
    found = [""]
    for segment in pattern:
        options = segment if isinstance(segment, list) else [segment]
        found = [f"{head}/{option}" if head else str(option) for head in found for option in options]
    return found


def covers(patterns: list[Pattern], case_id: str) -> bool:
    for text in (t for p in patterns for t in expand(p)):
        if text == case_id or (text.endswith("/*") and case_id.startswith(text[:-1])):
            return True
    return False


@dataclass(frozen=True)
class Entry:
    """An out-of-scope or not-yet-ported entry: the expectations it names and why."""

    patterns: list[Pattern]
    calls: int
    reason: str
    refused_resource: str = ""
    refused_field: str = ""
    resources: str = ""
    where: str = ""  # file and index, for messages

    def refusal(self) -> ConfigError | None:
        return refusal([d for d in yaml.safe_load_all(self.resources) if d], self.where)


def load_entries(path: Path, refusals: bool) -> list[Entry]:
    entries = []
    for index, data in enumerate(yaml.safe_load(path.read_text()) or []):
        where = f"{path.name}[{index}]"
        required = ("cases", "calls", "reason", *(("refused", "resources") if refusals else ()))
        for key in required:
            if key not in data:
                raise ConfigError(f"missing {key!r}", source=str(path), resource=where, field=key)
        refused = data.get("refused") or {}
        entries.append(Entry(list(data["cases"]), int(data["calls"]), " ".join(str(data["reason"]).split()),
                             str(refused.get("resource", "")), str(refused.get("field", "")),
                             str(data.get("resources", "")), where))
    return entries


@dataclass
class Accounting:
    """Istio's expectations split: ported (run), out of scope (refused), not yet ported (in scope, counted as not
    agreeing). `problems` names every id in none or several of them, and entries whose count is off."""

    ported: list[str]
    out_of_scope: list[str]
    not_ported: list[str]
    problems: list[str]


def account(index: list[str], ported: list[str], out_of_scope: list[Entry], not_ported: list[Entry]) -> Accounting:
    problems = [f"ported case {i!r} is not an expectation of the index" for i in ported if i not in set(index)]
    result = Accounting([], [], [], problems)
    ported_ids = set(ported)
    for entries in (out_of_scope, not_ported):
        for entry in entries:
            covered = [i for i in index if covers(entry.patterns, i)]
            if len(covered) != entry.calls:
                problems.append(f"{entry.where} covers {len(covered)} expectations, not {entry.calls}")
    for case_id in index:
        homes = ([result.ported] if case_id in ported_ids else []) + \
            [result.out_of_scope for e in out_of_scope if covers(e.patterns, case_id)] + \
            [result.not_ported for e in not_ported if covers(e.patterns, case_id)]
        if len(homes) != 1:
            where = "nowhere" if not homes else f"{len(homes)} times"
            problems.append(f"{case_id!r} is accounted for {where} (ported, out_of_scope.yaml, not_ported.yaml)")
        for home in homes[:1]:
            home.append(case_id)
    return result
