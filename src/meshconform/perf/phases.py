"""Which load phases a perf run runs on its platform: each phase needs load targets, a platform says which it
cannot offer and why (SupportsLoad.unavailable_load_targets). Phases the user named that the platform cannot run
are refused, naming the phase, the reason and the --phases value that drops them; without --phases, the run takes
every phase the platform offers by design and records the others with their reasons (same set every night on one
platform). A phase the platform offers by design but cannot run this time (e.g. a reused kind cluster without
the port mappings) is always refused: that result would silently differ from the last one."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from meshconform.errors import PlatformError

PHASES = ("scenarios", "in-mesh", "mesh-cost")
NEEDS = {"scenarios": ("ingress",), "in-mesh": ("in-mesh",), "mesh-cost": ("mesh", "no-mesh")}


@dataclass(frozen=True)
class Choice:
    """The phases to run, in order, and those left out (phase -> why)."""

    run: list[str]
    not_run: dict[str, str] = field(default_factory=dict)


def _why(phase: str, unavailable: dict[str, str]) -> str | None:
    reasons = [f"no '{target}' target: {unavailable[target]}" for target in NEEDS[phase] if target in unavailable]
    return "; ".join(dict.fromkeys(reasons)) or None


def choose(requested: list[str] | None, unavailable: dict[str, str], platform: str) -> Choice:
    """`requested`: the phases named with --phases, or None for the default (every phase the platform offers)."""
    if requested is None:
        reasons = {p: _why(p, unavailable) for p in PHASES}
        run = [p for p in PHASES if reasons[p] is None]
        if not run:
            raise PlatformError(f"the {platform} platform can run none of perf's phases: "
                                + "; ".join(f"{p}: {r}" for p, r in reasons.items()))
        return Choice(run, {p: r for p, r in reasons.items() if r is not None})
    refused = {p: r for p in requested if (r := _why(p, unavailable)) is not None}
    if refused:
        left = [p for p in requested if p not in refused]
        drop = f"--phases {','.join(left)}" if left else "another platform"
        raise PlatformError(f"the {platform} platform cannot run phase(s) {', '.join(refused)}: "
                            + "; ".join(f"{p}: {r}" for p, r in refused.items()) + f". Drop them: {drop}")
    return Choice(list(requested))


def check_offered(choice: Choice, targets: Mapping[str, object], unavailable: Mapping[str, str],
                  platform: str) -> None:
    """After the platform is up: every chosen phase's targets are there, else one error naming phase and reason."""
    for phase in choice.run:
        lacking = [t for t in NEEDS[phase] if t not in targets]
        if lacking:
            reasons = "; ".join(f"no '{t}' target: {unavailable.get(t, 'the platform did not offer it')}"
                                for t in lacking)
            left = [p for p in choice.run if p != phase]
            raise PlatformError(f"the {platform} platform cannot run phase {phase} this time ({reasons}); "
                                f"drop it with --phases {','.join(left) or '...'} or fix the platform")
