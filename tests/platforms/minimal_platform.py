"""A second, minimal platform registered from outside meshconform's own code (through
MESHCONFORM_PLATFORMS), proving that a new platform is one module and no edit anywhere else.

It starts nothing: its one workload answers every request itself, in process."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from meshconform.errors import ConfigError, PlatformError
from meshconform.meshapi.loader import Sourced
from meshconform.platform.api import Endpoint, Platform, Workload
from meshconform.platform.registry import PlatformContext, PlatformKind, PlatformOption
from meshconform.traffic.model import Request, Response


class InProcessVantage:
    def __init__(self, name: str, greeting: str) -> None:
        self.name = name
        self.greeting = greeting

    def send(self, requests: Sequence[Request], concurrency: int = 10,
             reuse_connections: bool = True) -> list[Response]:
        return [Response(r.request_id, 200, None, 0.0, {}, json.dumps({"pod": "hello-0", "version": "v1",
                                                                        "greeting": self.greeting}), r.path)
                for r in requests]


class MinimalPlatform:
    name = "minimal"

    def __init__(self, folder: Path, greeting: str) -> None:
        self._folder = folder
        self.greeting = greeting
        self.held: dict[tuple[str, str, str], Sourced] = {}  # not `applied`: SupportsListing.applied() is a method

    @property
    def folder(self) -> Path:
        return self._folder

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint("http://127.0.0.1:9")

    def up(self) -> Endpoint:
        (self._folder / "up").write_text(self.greeting)
        return self.endpoint

    def down(self) -> None:
        (self._folder / "up").unlink(missing_ok=True)

    def is_up(self) -> bool:
        return (self._folder / "up").exists()

    def detach(self) -> None:
        pass

    def apply(self, resources: Sequence[Sourced]) -> None:
        for item in resources:  # what a platform cannot do is refused by name, before anything is applied
            if item.resource.kind == "Sidecar":
                raise ConfigError("valid Istio, not implemented by the minimal platform", source=item.source,
                                  resource=item.resource.ref, field="spec")
        self.held.update({item.key: item for item in resources})

    def delete(self, resources: Sequence[Sourced], ignore_missing: bool = False) -> list[Sourced]:
        return [item for item in resources if self.held.pop(item.key, None) is None]

    def workloads(self) -> list[Workload]:
        return [Workload("hello-0", "default", "hello", {"app": "hello"}, False, "spiffe://cluster.local/ns/default/sa/hello")]

    def vantage(self, name: str) -> InProcessVantage:
        return InProcessVantage(name, self.greeting)

    def request_log(self, namespace: str, deployment: str) -> list[dict[str, Any]]:
        return []

    def access_log(self, namespace: str, deployment: str) -> list[dict[str, Any]]:
        return []

    def evidence(self, namespace: str, deployment: str, hosts: Collection[str] = ()) -> dict[str, Any]:
        return {}

    def describe(self) -> dict[str, Any]:
        return {"platform": self.name, "description": "a minimal platform for the registry's tests"}

    def diagnostics(self, reason: str = "") -> list[Path]:
        return []


def _create(context: PlatformContext) -> Platform:
    return MinimalPlatform(context.folder, str(context.settings.get("greeting", "hello")))


def _attach(folder: Path, settings: Mapping[str, Any]) -> Platform:
    if (folder / "unreachable").exists():  # as a cluster whose API server does not answer
        raise PlatformError(f"{folder}: no answer")
    greeting = (folder / "up").read_text() if (folder / "up").exists() else ""
    return MinimalPlatform(folder, greeting)


PLATFORM = PlatformKind("minimal", "answers every request in process (registry test)", _create, _attach,
                        options=(PlatformOption("greeting", "what the one workload says", default="hello"),))

# The same platform, declared as one mesh shared by every xdist worker (as a cluster is).
SHARED_PLATFORM = PlatformKind("minimal-shared", "the minimal platform, shared between workers", _create, _attach,
                               options=(PlatformOption("shared-greeting", "what it says", default="hello"),),
                               shared=True)


def _counted_preflight(settings: Mapping[str, Any]) -> None:
    """Notes each call (with the process that made it) in the file MESHCONFORM_PREFLIGHT_LOG names; refuses the
    greeting 'refuse', naming options as a platform does, for the command line."""
    import os

    from meshconform.errors import PlatformError
    with open(os.environ["MESHCONFORM_PREFLIGHT_LOG"], "a") as log:
        log.write(f"{os.getpid()} {settings.get('counted_greeting')}\n")
    if settings.get("counted_greeting") == "refuse":
        raise PlatformError("this platform will not say 'refuse': pass --counted-greeting hello, or use --platform "
                            "minimal (--platform-dir stays as it is)")


# The same platform with a preflight that counts its calls (a run must preflight once).
def _create_counted(context: PlatformContext) -> Platform:
    return MinimalPlatform(context.folder, str(context.settings.get("counted_greeting", "hello")))


COUNTED_PLATFORM = PlatformKind("minimal-counted", "the minimal platform, counting its preflights", _create_counted,
                                _attach,
                                options=(PlatformOption("counted-greeting", "what it says", default="hello"),),
                                preflight=_counted_preflight)
