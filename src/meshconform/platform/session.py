"""A platform's life in one run, in one place: the chosen platform with its validated settings (`PlatformChoice`),
preflight run once, a platform created or attached, described, and taken down (`PlatformSession`).

The CLI (`up`, `run`, `down`...), the pytest plugin and `meshconform perf` all go through it, so "kind -> options ->
settings -> preflight -> create" is written once, and `meshconform run` hands the pytest plugin the session it
validated and preflighted instead of command-line text for pytest to parse and check again."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meshconform.errors import PlatformError
from meshconform.platform import registry
from meshconform.platform.api import Platform


@dataclass(frozen=True)
class PlatformChoice:
    """A registered platform and its own option values, validated (an option of another platform, a misspelt
    name among a comma-separated option's choices: errors)."""

    kind: registry.PlatformKind
    settings: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, name: str, given: Mapping[str, Any] | None = None) -> PlatformChoice:
        kind = registry.get(name)
        registry.check_foreign_options(kind, given or {})
        return cls(kind, kind.settings(given or {}))

    @property
    def name(self) -> str:
        return self.kind.name

    def plan(self) -> str:
        """The whole plan, as text, touching nothing (`--dry-run`)."""
        if self.kind.plan is None:
            return f"platform {self.name}: no external steps to plan ({self.kind.summary})"
        return self.kind.plan(self.settings)

    def to_json(self) -> dict[str, Any]:
        """What another process (an xdist worker) needs to make the same choice again."""
        return {"platform": self.name, "settings": {k: v for k, v in self.settings.items()
                                                    if isinstance(v, str | bool | int | float) or v is None}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PlatformChoice:
        return cls.of(str(data["platform"]), dict(data.get("settings") or {}))


class PlatformSession:
    """One platform for one run: `preflight` runs once however often it is asked for; `create` brings a new one
    into being (not yet up), `attach` finds the one recorded in a folder; `close` takes down what this session
    created and only detaches from what it attached to."""

    def __init__(self, choice: PlatformChoice, preflighted: bool = False) -> None:
        self.choice = choice
        self.preflighted = preflighted  # e.g. by the process that started this one (meshconform run, xdist)
        self.platform: Platform | None = None
        self.created = False

    @property
    def kind(self) -> registry.PlatformKind:
        return self.choice.kind

    def preflight(self) -> None:
        """Fail fast, before anything starts, with one clear error (no container engine, ...); once per session."""
        if not self.preflighted and self.kind.preflight is not None:
            self.kind.preflight(self.choice.settings)
        self.preflighted = True

    def create(self, folder: Path, session_dir: Path, worker: str = "main") -> Platform:
        """A new platform of the chosen kind in `folder` (recorded there as its owner), not yet up."""
        self.preflight()
        self.platform = registry.create(self.kind, registry.PlatformContext(folder, session_dir, worker,
                                                                            self.choice.settings))
        self.created = True
        return self.platform

    def attach(self, folder: Path, expect_kind: bool = True) -> Platform:
        """The platform up in `folder`, with this session's settings; of the chosen kind unless not `expect_kind`
        (pytest's --mesh-platform-dir takes whichever platform is up there)."""
        self.platform = registry.attach(folder, self.choice.settings, expect=self.kind.name if expect_kind else None)
        self.created = False
        return self.platform

    def platform_attached(self) -> Platform:
        """The platform this session holds (after `create` or `attach`)."""
        if self.platform is None:
            raise PlatformError(f"no {self.kind.name} platform is attached")
        return self.platform

    def describe(self) -> dict[str, Any]:
        if self.platform is None:
            return {"platform": self.kind.name, "settings": dict(self.choice.to_json()["settings"]),
                    "description": "no platform was started"}
        return self.platform.describe()

    def close(self) -> None:
        """Take down what this session created; leave running what it attached to."""
        platform, self.platform = self.platform, None
        if platform is None:
            return
        if self.created:
            platform.down()
        else:
            platform.detach()


def attach_recorded(folder: Path, expect: str | None = None) -> PlatformSession:
    """A session attached to the platform recorded in `folder` (`meshconform up` wrote it), of whichever kind."""
    name = registry.owner_of(folder)
    if name is None:
        raise PlatformError(f"{folder} holds no meshconform platform (no {registry.RECORD_FILE})")
    session = PlatformSession(PlatformChoice.of(expect or name), preflighted=True)
    session.attach(folder)
    return session


def take_down_recorded(folder: Path) -> bool:
    """Take down the platform recorded in `folder` (`meshconform down`), running or not: whatever is left of it
    (processes, a cluster) goes. False when `folder` holds no platform (removed since, say), so nothing was."""
    name = registry.owner_of(folder)
    if name is None:
        return False
    kind = registry.get(name)
    kind.attach(folder, kind.settings({})).down()
    return True
