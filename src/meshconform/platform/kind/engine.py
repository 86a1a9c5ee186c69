"""Finds a running container engine for kind (docker or podman). The engine, not the client: kind's own
check (`docker -v`, pkg/cluster/internal/providers/docker/util.go IsAvailable) passes with a client whose
daemon is down, and a run would then fail minutes later. `docker info` / `podman info` talk to the engine
and fail at once when it is not there."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field

from meshconform.errors import PlatformError
from meshconform.platform.kind import tools
from meshconform.platform.kind.timeouts import TIMEOUTS

ENGINES = ("docker", "podman")  # what kind supports and we test; kind's own auto-detect order is docker first
PROVIDER_ENV = "KIND_EXPERIMENTAL_PROVIDER"  # kind pkg/internal/runtime/runtime.go
# The engine's own version, printed only when the client reached it (docker info: server section;
# podman-info(1): `.Version` placeholder).
_PROBES = {"docker": ["info", "--format", "{{.ServerVersion}}"],
           "podman": ["info", "--format", "{{.Version.Version}}"]}
_HOW_TO_GET = ("start Docker (Docker Engine: `sudo systemctl start docker`; Docker Desktop: open it) or install "
               "Docker (https://docs.docker.com/engine/install/), or install Podman "
               "(https://podman.io/docs/installation) and pass --container-engine podman; or test a cluster you "
               "already have with --platform cluster")


class NoContainerEngine(PlatformError):
    """Neither docker nor podman answers: kind cannot create a cluster."""


@dataclass(frozen=True)
class Engine:
    name: str  # docker | podman
    version: str  # the engine's (server's) version
    env: Mapping[str, str] = field(default_factory=dict)  # what kind needs in its environment to use it


def detect(preferred: str = "", environ: Mapping[str, str] | None = None) -> Engine:
    """The engine kind will use: `preferred` (docker|podman), else KIND_EXPERIMENTAL_PROVIDER if it names
    one, else the first of docker, podman whose engine answers. Raises NoContainerEngine naming each."""
    import os
    environ = os.environ if environ is None else environ
    if preferred and preferred not in ENGINES:
        raise PlatformError(f"--container-engine {preferred!r}: must be one of {', '.join(ENGINES)}")
    from_env = environ.get(PROVIDER_ENV, "")
    candidates = [preferred] if preferred else [from_env] if from_env in ENGINES else list(ENGINES)
    reasons = []
    for name in candidates:
        if shutil.which(name) is None:
            reasons.append(f"{name}: not installed (not on PATH)")
            continue
        try:
            result = tools.run([name, *_PROBES[name]], timeout=TIMEOUTS.engine_probe, check=False,
                               what=f"ask {name} for its engine")
        except tools.ToolTimedOut:
            reasons.append(f"{name}: the client is installed but its engine did not answer within "
                           f"{TIMEOUTS.engine_probe:g} s")
            continue
        version = result.stdout.strip().strip("'\"")
        if result.returncode == 0 and version:
            return Engine(name, version, {PROVIDER_ENV: name})
        said = (result.stderr.strip().splitlines() or ["no version reported"])[-1]
        reasons.append(f"{name}: the client is installed but its engine is not reachable: {said}")
    raise NoContainerEngine("the kind platform needs a running container engine (docker or podman) and found "
                            "none:\n  " + "\n  ".join(reasons) + f"\n  what to do: {_HOW_TO_GET}")
