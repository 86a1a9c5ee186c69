"""Waiting for a new configuration to show, without being fooled by the previous one.

The probe must be specific to the new config (a unique marker header or path), so an older
config cannot pass for it. Not converging within the cap is its own failure, distinct from
converging to the wrong behaviour, and both report what was observed."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING

from meshconform.suite.timeouts import Timeouts

if TYPE_CHECKING:
    from meshconform.meshapi.loader import Sourced
    from meshconform.platform.api import FoundObject


class NeverConverged(AssertionError):
    """The new behaviour was not seen N times in a row within the cap. `reason` says it in one
    sentence with counts (what the report leads with); the message adds the last observations."""

    def __init__(self, what: str, cap: float, needed: int, attempts: int, misses: Counter[str],
                 observed: list[str]) -> None:
        self.what, self.attempts, self.misses = what, attempts, misses
        successes = attempts - sum(misses.values())
        how = ", ".join(f"{count} {kind}" for kind, count in misses.most_common())
        if successes:
            self.reason = (f"{what} did not hold {needed} times in a row within {cap:g} s: {successes} of "
                           f"{attempts} attempts succeeded, {how}")
        elif len(misses) == 1:
            [(kind, count)] = misses.items()
            self.reason = f"{what} never converged within {cap:g} s: {count} of {attempts} attempts {kind}"
        else:
            self.reason = f"{what} never converged within {cap:g} s: of {attempts} attempts, {how}"
        self.observed = observed
        super().__init__(f"{self.reason}; last observed: " + " | ".join(observed))

    def blame(self, rivals: Sequence[str]) -> None:
        """Say that other configuration for the same hosts is on the mesh (see `rival_config`): the likely cause,
        not a mesh that is slow or wrong."""
        if not rivals:
            return
        self.reason += ("; other configuration for the same hosts, not created by this test, is on the mesh: "
                        + "; ".join(rivals))
        self.args = (f"{self.reason}; last observed: " + " | ".join(self.observed),)


def rival_config(present: Sequence[FoundObject], applied: Sequence[Sourced]) -> list[str]:
    """Objects on the mesh, not among `applied`, whose config touches what `applied` configures (the services by
    short name, the ingress; anything mesh-wide touches all): e.g. a user's VirtualService for `echo` beside a
    check's own. Two VirtualServices for one host on sidecars conflict (istioctl analyze IST0109: Istio uses one
    of them), so a check waiting for its own marker never sees it."""
    from meshconform.suite.claims import derive
    from meshconform.suite.found import survey
    mine = {item.key for item in applied}
    touched: set[str] = set()
    for item in applied:
        touched |= derive([item.document]).keys
    return [finding.describe() for finding in survey(other for other in present if other.key not in mine)
            if not finding.harmless and (finding.claims.exclusive or finding.claims.keys & touched)]


Outcome = tuple[bool, str] | tuple[bool, str, str]  # (ok, what was observed[, how a miss went wrong])


def await_convergence(probe: Callable[[], Outcome], timeouts: Timeouts, what: str, consecutive: int | None = None,
                      spacing: float = 0.0, pause: float | None = None) -> float:
    """Call `probe` until it succeeds N times in a row (default: the configured count); a failure
    resets the count. `spacing` is the pause between successful probes (for conditions that must
    hold over time). After a miss the pause starts at `poll_interval` and doubles (a config spreading
    through a mesh), or is the constant `pause` when given (a log filling in the background, where
    a growing pause only adds waiting). Returns the seconds it took.
    `probe` returns (ok, what was observed) and, optionally, how a miss went wrong in a few words
    ("failed the TLS handshake", "answered 404"): counted for the failure's one-sentence reason."""
    return await_rounds(lambda _: [probe()], timeouts, what, consecutive, spacing, pause)


def await_rounds(probe_rounds: Callable[[int], Sequence[Outcome]], timeouts: Timeouts, what: str,
                 consecutive: int | None = None, spacing: float = 0.0, pause: float | None = None) -> float:
    """As `await_convergence`, for a probe that can take several rounds in one go: `probe_rounds(k)`, told that k
    more successes would end the wait, returns the outcomes of one or more rounds in the order they ran. Sending
    traffic, it sends the k rounds in one batch: one call to a vantage instead of k."""
    started = time.monotonic()
    deadline = started + timeouts.max_time_to_consistency
    needed = consecutive or timeouts.required_consecutive_successes
    streak, wait = 0, pause or timeouts.poll_interval
    observed: list[str] = []
    attempts, misses = 0, Counter[str]()
    while True:
        ok = False
        for ok, seen, *kind in probe_rounds(needed - streak):
            attempts += 1
            if not ok:
                misses[kind[0] if kind else "were not as expected"] += 1
            observed = (observed + [seen])[-5:]
            streak = streak + 1 if ok else 0
            if streak >= needed:
                return time.monotonic() - started
        if time.monotonic() > deadline:
            raise NeverConverged(what, timeouts.max_time_to_consistency, needed, attempts, misses, observed)
        if not ok:
            time.sleep(wait)
            wait = wait if pause else min(wait * 2, 1.0)
        elif spacing:
            time.sleep(spacing)


UnderWay = Callable[[], dict[str, int]]


def under_way(platform: object, workloads: Collection[tuple[str, str]],
              request_ids: Collection[str] | None = None) -> UnderWay | None:
    """What `await_settled` watches: requests under way at these (namespace, deployment) workloads (the caller
    and the backends whose log is counted; at the apps only those with `request_ids`, the ones counted), where
    the platform can tell (SupportsInFlight); else None."""
    from meshconform.platform.api import SupportsInFlight

    if isinstance(platform, SupportsInFlight):
        return lambda: platform.in_flight(workloads, request_ids)
    return None


def await_settled(count: Callable[[], int], timeouts: Timeouts, what: str, *, watch: UnderWay | None,
                  at_least: int = 0) -> int:
    """Wait until a growing count (requests a backend logged) is final, for copies and retries that land after
    the caller got its answer; returns it. With `watch` (see under_way): once nothing is under way there and the
    count is at least `at_least`. Without: once it is at least `at_least` and has stopped growing, unchanged for
    `settle_quiet` seconds (a guess: a copy slower than that would be missed). Read every `log_poll_interval`."""
    if watch is not None:
        final = {"count": -1}

        def idle() -> tuple[bool, str]:
            busy = watch()  # first: once nothing is under way, all that arrived is in the log
            final["count"] = count()
            pending = ", ".join(f"{key} {n}" for key, n in sorted(busy.items())) or "nothing"
            return not busy and final["count"] >= at_least, f"{final['count']} counted, under way: {pending}"
        await_convergence(idle, timeouts, what, consecutive=1, pause=timeouts.log_poll_interval)
        return final["count"]
    last = {"count": -1, "since": time.monotonic()}

    def probe() -> tuple[bool, str]:
        now, current = time.monotonic(), count()
        if current != last["count"]:
            last.update(count=current, since=now)
        quiet = now - last["since"]
        return current >= at_least and quiet >= timeouts.settle_quiet, f"{current} counted, unchanged {quiet:.2f}s"
    await_convergence(probe, timeouts, what, consecutive=1, pause=timeouts.log_poll_interval)
    return int(last["count"])
