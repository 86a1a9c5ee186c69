"""`meshconform get`: what is applied on the platform that is up, listed as `kubectl get` lists it: a kind
argument (plural, singular, short name: `vs`, `destinationrules`, `vs,dr`), names, `-n`/`-A`, and ages;
`-o yaml|json|name` for the objects themselves (Secret data masked, as everywhere meshconform prints)."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import click
import yaml

from meshconform.commands.active import attached
from meshconform.errors import MeshconformError
from meshconform.meshapi import resource_names
from meshconform.meshapi.resource_names import ResourceName
from meshconform.platform.api import Applied, SupportsListing
from meshconform.platform.cli_options import platform_choice
from meshconform.report.redact import redact


@click.command()
@click.argument("kinds", required=False)
@click.argument("names", nargs=-1)
@click.option("-n", "--namespace", default="default", show_default=True, help="The namespace to list.")
@click.option("-A", "--all-namespaces", is_flag=True, help="List every namespace.")
@click.option("-o", "--output", type=click.Choice(["table", "yaml", "json", "name"]), default="table",
              show_default=True)
@platform_choice(None)
def get(kinds: str | None, names: tuple[str, ...], namespace: str, all_namespaces: bool, output: str,
        platform_name: str | None) -> None:
    """List what is applied on the platform that is up: KINDS (e.g. vs, virtualservices, vs,dr; every kind if
    omitted), optionally NAMES of that kind."""
    chosen = _kinds(kinds)
    if names and len(chosen) != 1:
        raise click.UsageError("names need exactly one kind (e.g. 'meshconform get vs reviews')")
    platform = attached(platform_name)
    if not isinstance(platform, SupportsListing):
        raise MeshconformError(f"the {platform.name} platform does not list what it holds: 'meshconform get' lists "
                               "the local platform's; on a cluster, use kubectl get")
    scope = None if all_namespaces else namespace
    found = select(platform.applied(), chosen, scope, names)
    missing = [name for name in names if not any(a.item.resource.metadata.name == name for a in found)]
    now = time.time()
    if output == "table":
        _print_tables(found, qualified=kinds is None or len(chosen) > 1, all_namespaces=all_namespaces, now=now)
        if not found and not missing:
            click.echo(f"No resources found{'' if all_namespaces else f' in {namespace} namespace'}.", err=True)
    elif output == "name":
        for entry in found:
            click.echo(f"{_kind_of(entry).qualified}/{entry.item.resource.metadata.name}")
    elif found or not names:
        documents = [as_document(entry) for entry in found]
        data: Any = documents[0] if len(names) == 1 and len(documents) == 1 else {
            "apiVersion": "v1", "kind": "List", "items": documents, "metadata": {"resourceVersion": ""}}
        click.echo(yaml.safe_dump(data, sort_keys=False).rstrip() if output == "yaml" else json.dumps(data, indent=4))
    if missing:
        kind = chosen[0]
        where = "" if kind.namespaced is False or all_namespaces else f" in namespace {namespace}"
        raise MeshconformError("; ".join(f'{kind.qualified} "{name}" not found{where}' for name in missing))


def _kinds(argument: str | None) -> list[ResourceName]:
    if argument is None:
        return list(resource_names.RESOURCES)
    chosen = []
    for word in argument.split(","):
        try:
            chosen.append(resource_names.lookup(word))
        except KeyError:
            known = ", ".join(sorted({r.plural for r in resource_names.RESOURCES}))
            raise click.UsageError(f"the resource type {word!r} is not one meshconform applies (known: {known}; "
                                   "short names as kubectl's: vs, dr, gw, se, pa, ap, ra, svc, deploy, sa, ns, gtw)"
                                   ) from None
    return chosen


def select(applied: Sequence[Applied], kinds: Sequence[ResourceName], namespace: str | None,
           names: Sequence[str] = ()) -> list[Applied]:
    """`applied` of `kinds`, in `namespace` (None: all; cluster-scoped kinds always), named `names` (if any),
    grouped by kind in the order of `kinds`, each group by namespace and name (as the API server lists)."""
    keys = [k.key for k in kinds]
    chosen = [a for a in applied if a.item.key[0] in keys
              and (namespace is None or not _kind_of(a).namespaced or a.item.resource.metadata.namespace == namespace)
              and (not names or a.item.resource.metadata.name in names)]
    return sorted(chosen, key=lambda a: (keys.index(a.item.key[0]), a.item.key[1], a.item.key[2]))


def _kind_of(entry: Applied) -> ResourceName:
    return resource_names.by_key(entry.item.key[0])


def age(seconds: float) -> str:
    """A duration as kubectl's AGE column shows it: 90s, 5m25s, 37m, 5h30m, 31h, 4d21h, 40d, 2y10d."""
    s = int(seconds)
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes, hours, days = s // 60, s // 3600, s // 86400
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if hours < 3:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if days < 8:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    if days < 365 * 2:
        return f"{days}d"
    years = days // 365
    if days < 365 * 8:
        return f"{years}y{days % 365}d" if days % 365 else f"{years}y"
    return f"{years}y"


def as_document(entry: Applied) -> dict[str, Any]:
    """The object as applied, with what the platform adds (namespace, creationTimestamp); Secret data masked."""
    document = json.loads(json.dumps(entry.item.document))
    meta = document.setdefault("metadata", {})
    if _kind_of(entry).namespaced:
        meta.setdefault("namespace", entry.item.resource.metadata.namespace)
    meta["creationTimestamp"] = datetime.fromtimestamp(entry.created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return dict(redact(document))


def _print_tables(found: Sequence[Applied], qualified: bool, all_namespaces: bool, now: float) -> None:
    groups: dict[str, list[Applied]] = {}
    for entry in found:
        groups.setdefault(entry.item.key[0], []).append(entry)
    for index, entries in enumerate(groups.values()):
        kind = _kind_of(entries[0])
        header = (["NAMESPACE"] if all_namespaces and kind.namespaced else []) + ["NAME", "AGE"]
        rows = [header] + [([e.item.resource.metadata.namespace] if all_namespaces and kind.namespaced else [])
                           + [f"{kind.qualified}/{e.item.resource.metadata.name}" if qualified
                              else e.item.resource.metadata.name, age(now - e.created)] for e in entries]
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        if index:
            click.echo("")
        for row in rows:
            click.echo("   ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
