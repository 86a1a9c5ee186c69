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
_HOW_TO_GET = {
    "docker": ("start Docker (Docker Engine: `sudo systemctl start docker`; Docker Desktop: open it) or install it "
               "(https://docs.docker.com/engine/install/)"),
    "podman": ("start Podman (on macOS and Windows: `podman machine start`) or install it "
               "(https://podman.io/docs/installation)"),
}
_ELSE_CLUSTER = "or test a cluster you already have with --platform cluster"


def _what_to_do(candidates: list[str]) -> str:
    """Advice for the engines that were tried; the other engine is offered only when it was not asked for."""
    if len(candidates) == 1:
        (name,) = candidates
        other = next(e for e in ENGINES if e != name)
        return f"{_HOW_TO_GET[name]}; or use {other} with --container-engine {other}; {_ELSE_CLUSTER}"
    return f"{_HOW_TO_GET['docker']}; or {_HOW_TO_GET['podman']} and pass --container-engine podman; {_ELSE_CLUSTER}"


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
                            "none:\n  " + "\n  ".join(reasons) + f"\n  what to do: {_what_to_do(candidates)}")


# What the kind platform needs of the engine (its CPUs and memory are the node's): the kind control plane requests
# ~0.95 CPU, the mesh as meshconform installs it on kind (Istio's demo-profile requests: 10m / 40Mi per proxy) ~0.2
# CPU and ~1.1 GiB; in use, Bookinfo's three Java reviews, 16 Envoys, istiod and the control plane come to ~3 GiB
# (an estimate, not a measurement: no cluster runs here). A 2-vCPU / 7 GB GitHub runner fits.
MIN_CPUS = 2
MIN_MEMORY_GIB = 4.0
_CAPACITY = {"docker": ["info", "--format", "{{.NCPU}} {{.MemTotal}}"],
             "podman": ["info", "--format", "{{.Host.CPUs}} {{.Host.MemTotal}}"]}


class TooSmall(PlatformError):
    """The engine has fewer CPUs or less memory than the kind platform needs."""


def capacity(engine: Engine) -> tuple[int, int]:
    """(CPUs, memory in bytes) the engine gives its containers (docker info's NCPU/MemTotal, podman info's
    Host.CPUs/Host.MemTotal)."""
    result = tools.run([engine.name, *_CAPACITY[engine.name]], timeout=TIMEOUTS.engine_probe,
                       what=f"ask {engine.name} for its CPUs and memory")
    try:
        cpus, memory = result.stdout.split()[:2]
        return int(cpus), int(memory)
    except ValueError:
        raise tools.ToolOutputError(f"`{engine.name} {' '.join(_CAPACITY[engine.name])}` printed no CPU count and "
                                    f"memory size: {result.stdout.strip()[:200]!r}", argv=result.argv) from None


def check_capacity(engine: Engine) -> tuple[int, int]:
    """The engine's (CPUs, memory bytes), or TooSmall naming both numbers and the minimum."""
    cpus, memory = capacity(engine)
    gib = memory / 2**30
    if cpus < MIN_CPUS or gib < MIN_MEMORY_GIB:
        raise TooSmall(f"{engine.name}'s engine gives its containers {cpus} CPUs and {gib:.1f} GiB of memory; the kind "
                       f"platform needs at least {MIN_CPUS} CPUs and {MIN_MEMORY_GIB:g} GiB (the cluster, Istio, "
                       "Bookinfo and the testbed on one node). Give it more (Docker Desktop: Settings > Resources; "
                       "podman machine set --cpus/--memory), or test a larger cluster with --platform cluster")
    return cpus, memory
