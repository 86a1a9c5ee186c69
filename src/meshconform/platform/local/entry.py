"""Registers the local platform (entry point `meshconform.platforms: local`): its options and constructors.

Kept free of heavy imports: the registry loads this module whenever platforms are listed."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from meshconform.platform.api import Platform
from meshconform.platform.registry import PlatformContext, PlatformKind, PlatformOption


def _misbehaviours() -> Collection[str]:
    from meshconform.platform.local.misbehaviour import Misbehaviour
    return [m.value for m in Misbehaviour]


def _misbehave(settings: Mapping[str, Any]) -> frozenset[str]:
    return frozenset(v.strip() for v in str(settings.get("misbehave") or "").split(",") if v.strip())


MISBEHAVE = PlatformOption("misbehave", "comma-separated deliberate misbehaviours of the local platform "
                                        "(self-tests only)", choices=_misbehaviours, weakens_checks=True)


def _create(context: PlatformContext) -> Platform:
    from meshconform.platform.local.platform import LocalPlatform
    return LocalPlatform(context.folder, misbehave=_misbehave(context.settings))


def _create_shared(context: PlatformContext) -> Platform:
    from meshconform.platform.local.shared import SharedLocalPlatform
    return SharedLocalPlatform(context.folder, context.worker, misbehave=_misbehave(context.settings))


def _attach(folder: Path, settings: Mapping[str, Any]) -> Platform:
    """The local platform up in `folder`. Misbehaviours named in `settings` are switched on for as long
    as this process uses it (`detach` restores the previous ones); none named leaves it as it is."""
    from meshconform.platform.local.platform import LocalPlatform
    platform = LocalPlatform(folder)
    wanted = _misbehave(settings)
    if wanted and platform.is_up():
        platform.misbehave_for_session(wanted)
    return platform


def _attach_shared(folder: Path, settings: Mapping[str, Any]) -> Platform:
    """The shared local platform as the worker recorded in `folder` uses it (its `down` leaves; the last one out
    takes the platform down)."""
    from meshconform.platform.local.shared import SharedLocalPlatform
    from meshconform.platform.registry import RECORD_FILE
    worker = str(json.loads((folder / RECORD_FILE).read_text()).get("worker", "main"))
    return SharedLocalPlatform(folder, worker, misbehave=_misbehave(settings))


PLATFORM = PlatformKind(
    name="local",
    summary="meshconform's reference data plane: processes on loopback behind real Envoy sidecars, "
            "configured by meshconform's own translator. Not Istio.",
    create=_create,
    attach=_attach,
    options=(MISBEHAVE,),
)

# One local platform for all of a run's xdist workers, which take turns as on a cluster (platform/local/shared.py).
SHARED = PlatformKind(
    name="local-shared",
    summary="the local platform shared by a run's xdist workers, which take turns by what each test claims, as "
            "on a cluster: proves the claims with real traffic. Not Istio.",
    create=_create_shared,
    attach=_attach_shared,
    options=(MISBEHAVE,),
    shared=True,
)
