"""The one seam between meshconform and its platforms: which platforms exist, what options each takes,
how one is created, found again in its folder, and attached to.

A platform registers a `PlatformKind` under the entry-point group `meshconform.platforms` (the packaged
ones: see pyproject.toml), or, for one that is not packaged (a test's, a vendor's work in progress),
through the environment variable MESHCONFORM_PLATFORMS="module:attribute,...". Entry points, not a
pytest hook, because the CLI and pytest must see the same registry and the CLI runs without pytest.

The CLI (`--platform`), the pytest plugin (`--mesh-platform`) and `meshconform run` all go through
`get()`; nothing outside a platform's own package names its classes."""

from __future__ import annotations

import functools
import importlib
import json
import os
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from meshconform.errors import PlatformError
from meshconform.platform.api import Platform

ENTRY_POINT_GROUP = "meshconform.platforms"
EXTRA_PLATFORMS_ENV = "MESHCONFORM_PLATFORMS"
RECORD_FILE = "owner.json"


@dataclass(frozen=True)
class PlatformOption:
    """One option of a platform: `--mesh-<name>` in pytest, `--<name>` on the CLI's up and run."""

    name: str
    help: str
    default: str = ""
    flag: bool = False
    # For comma-separated values: the allowed names (a callable, so that listing them may import lazily).
    choices: Callable[[], Collection[str]] | None = None
    # Set on an option that makes the platform break rules on purpose or otherwise weakens what a check can see:
    # `meshconform certify` refuses it.
    weakens_checks: bool = False

    @property
    def dest(self) -> str:
        return self.name.replace("-", "_")

    def validate(self, value: Any) -> None:
        """A misspelt name is an error, never a silent no-op."""
        if self.choices is None or self.flag or not value:
            return
        allowed = set(self.choices())
        unknown = {v.strip() for v in str(value).split(",") if v.strip()} - allowed
        if unknown:
            raise PlatformError(f"--{self.name}: unknown {', '.join(sorted(unknown))} "
                                f"(known: {', '.join(sorted(allowed))})")


@dataclass(frozen=True)
class PlatformContext:
    """Everything a platform is created with."""

    folder: Path  # this platform instance's own folder: state, logs, config (under the run's folder)
    session_dir: Path  # the run folder shared by every xdist worker of one run (for locks, shared clusters)
    worker: str  # "main" or the xdist worker id ("gw0", ...)
    settings: Mapping[str, Any] = field(default_factory=dict)  # the kind's options, by PlatformOption.dest


@dataclass(frozen=True)
class PlatformKind:
    """A registered platform: its name, its options and how to make one."""

    name: str
    summary: str
    create: Callable[[PlatformContext], Platform]  # a new platform, not yet up
    attach: Callable[[Path, Mapping[str, Any]], Platform]  # the platform whose record is in this folder
    options: tuple[PlatformOption, ...] = ()
    # Fails fast, before anything starts, with one clear error (e.g. no container engine for kind).
    preflight: Callable[[Mapping[str, Any]], None] | None = None
    # The whole plan, as text, without touching anything (`--dry-run`).
    plan: Callable[[Mapping[str, Any]], str] | None = None
    # True: xdist workers share one mesh (a cluster), so units take turns by their claims (suite/turns.py).
    # False: every worker has a platform of its own (local), so every test is isolated anyway.
    shared: bool = False

    def settings(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """This kind's option values from `given` (defaults filled in), each validated."""
        values = {}
        for option in self.options:
            value = given.get(option.dest)
            value = option.default if value is None else value
            option.validate(value)
            values[option.dest] = value
        return values


@functools.cache
def _discovered() -> dict[str, PlatformKind]:
    found: dict[str, PlatformKind] = {}
    sources: list[tuple[str, Callable[[], object]]] = [
        (f"entry point {ep.name} ({ep.value})", ep.load) for ep in entry_points(group=ENTRY_POINT_GROUP)]
    for ref in filter(None, (r.strip() for r in os.environ.get(EXTRA_PLATFORMS_ENV, "").split(","))):
        sources.append((f"{EXTRA_PLATFORMS_ENV} entry {ref}", functools.partial(_load_reference, ref)))
    for where, load in sources:
        kind = load()
        if not isinstance(kind, PlatformKind):
            raise PlatformError(f"{where} is not a PlatformKind")
        if kind.name in found and found[kind.name] is not kind:
            raise PlatformError(f"two platforms are registered as {kind.name!r} ({where})")
        found[kind.name] = kind
    _check_option_names(found.values())
    return dict(sorted(found.items()))


def _load_reference(ref: str) -> object:
    module, _, attribute = ref.partition(":")
    if not attribute:
        raise PlatformError(f"{EXTRA_PLATFORMS_ENV}: {ref!r} is not 'module:attribute'")
    return getattr(importlib.import_module(module), attribute)


def _check_option_names(kinds: Collection[PlatformKind]) -> None:
    """Options share one flat namespace (--mesh-<name>); two platforms may claim one name only with the
    identical declaration (e.g. --kubeconfig of both kind and cluster), never two meanings."""
    owner: dict[str, tuple[str, PlatformOption]] = {}
    for kind in kinds:
        for option in kind.options:
            first = owner.setdefault(option.name, (kind.name, option))
            if first[0] != kind.name and first[1] != option:
                raise PlatformError(f"option --{option.name} is declared by both {first[0]} and {kind.name}")


def kinds() -> dict[str, PlatformKind]:
    """Every registered platform, by name."""
    return _discovered()


def summaries() -> str:
    """Every registered platform with its summary, in one line of help ("local: ...; kind: ...")."""
    return "; ".join(f"{kind.name}: {kind.summary.rstrip('. ')}" for kind in kinds().values())


def get(name: str) -> PlatformKind:
    registered = kinds()
    if name not in registered:
        raise PlatformError(f"unknown platform {name!r} (registered: {', '.join(registered)})")
    return registered[name]


def all_options() -> list[tuple[PlatformKind, PlatformOption]]:
    """Every option once (an option shared by several platforms is listed with the first of them)."""
    seen: set[str] = set()
    listed = []
    for kind in kinds().values():
        for option in kind.options:
            if option.name not in seen:
                seen.add(option.name)
                listed.append((kind, option))
    return listed


def declared_by(option: PlatformOption) -> list[str]:
    """The platforms that take `option` (for help texts)."""
    return [kind.name for kind in kinds().values() if any(o.name == option.name for o in kind.options)]


def check_foreign_options(kind: PlatformKind, given: Mapping[str, Any]) -> None:
    """An option of another platform, set explicitly, is a usage error (it would be ignored)."""
    own = {option.name for option in kind.options}
    for other, option in all_options():
        if option.name not in own and given.get(option.dest) not in (None, "", False, option.default):
            raise PlatformError(f"--{option.name} is an option of platform {other.name}, not {kind.name}")


# ---------------------------------------------------------------- which platform owns a folder

def create(kind: PlatformKind, context: PlatformContext) -> Platform:
    """A new platform of `kind`, its folder recorded as owned by it (so `attach` finds it again)."""
    context.folder.mkdir(parents=True, exist_ok=True)
    record = {"platform": kind.name, "created": time.time(), "worker": context.worker,
              "settings": {k: v for k, v in context.settings.items() if isinstance(v, str | bool | int | float)}}
    (context.folder / RECORD_FILE).write_text(json.dumps(record, indent=1))
    return kind.create(context)


def owner_of(folder: Path) -> str | None:
    record = folder / RECORD_FILE
    if not record.exists():
        return None
    return str(json.loads(record.read_text())["platform"])


def _recorded(folder: Path) -> tuple[Path, str]:
    """The platform folder `folder` names and its platform: `folder` itself, or the run directory `meshconform up`
    printed, whose platform/ subfolder holds the platform."""
    for candidate in (folder, folder / "platform"):
        name = owner_of(candidate)
        if name is not None:
            return candidate, name
    raise PlatformError(f"{folder} holds no meshconform platform: give the run directory 'meshconform up' printed, or "
                        f"its platform/ folder (neither has {RECORD_FILE})")


def attach(folder: Path, settings: Mapping[str, Any] | None = None, expect: str | None = None) -> Platform:
    """The platform recorded in `folder` (or in the run directory's platform/ folder), which must be up.
    `expect`: the platform the user named."""
    folder, name = _recorded(folder)
    if expect is not None and expect != name:
        raise PlatformError(f"the platform up in {folder} is {name!r}, not {expect!r}")
    kind = get(name)
    platform = kind.attach(folder, kind.settings(settings or {}))
    if not platform.is_up():
        raise NotRunning(f"the {name} platform in {folder} is not running any more: run 'meshconform down' to "
                         "clear it, then 'meshconform up'")
    return platform


class NotRunning(PlatformError):
    """The platform recorded in a folder was reached and is not running: unlike an attach that failed (a cluster
    out of reach), it is known to hold nothing any more."""
