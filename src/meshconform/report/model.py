"""The typed result of a run: one `TestResult` per conformance test (unit, verdict, reason, figures, evidence), the
`ConformanceReport` built from them (shaped after the Gateway API ConformanceReport), and `PlatformEvent`s (a
container restarting or exiting while the run went on).

Serialisation is where a run's data leaves it (to the controller, to files, to people), so it is the one place it is
redacted (meshconform.report.redact): `TestResult.to_json` and `ConformanceReport.to_json` hand out redacted copies;
what a test records in memory is kept as it was.

A check of a share or a latency records, in its figures, the observations and the design its verdict follows from,
so that a reader, or `meshconform verify`, can recompute it: `kind: sequential-shares` (meshconform.suite.sampling's
`ShareSample.to_json`: the expected shares, alpha, tolerance, miss probability and batch, and the counts at every
look) and `kind: latency-bounds` (meshconform.suite.timing's `LatencyBounds.to_json`: the bounds, how they were
derived, and every latency)."""

from __future__ import annotations

import datetime
import enum
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from meshconform.report.certification import Certification
from meshconform.report.redact import redact

API_VERSION = "meshconform.io/v1alpha1"


class Verdict(enum.StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class UnitInfo:
    """What the report says of a declared unit: its id, what it checks, under which features."""

    id: str
    description: str
    features: tuple[str, ...]


@dataclass(frozen=True)
class PlatformEvent:
    """A container that restarted, exited or stopped while the run went on, and the test it happened in (or just
    before)."""

    workload: str  # namespace/pod
    container: str
    restarts: int  # how many more restarts than when it was last seen
    last_exit: str  # how and when it last ended ("killed by signal 9 at 10:42:03")
    state: str  # running | restarting | stopped, when seen
    during: str  # the test's id, or where in the run it was seen

    def to_json(self) -> dict[str, Any]:
        return {"workload": self.workload, "container": self.container, "restarts": self.restarts,
                "lastExit": self.last_exit, "state": self.state, "during": self.during}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PlatformEvent:
        return cls(str(data["workload"]), str(data["container"]), int(data["restarts"]), str(data["lastExit"]),
                   str(data["state"]), str(data["during"]))

    def describe(self) -> str:
        what = f"restarted {self.restarts}x" if self.restarts else self.state
        return (f"{self.workload} {self.container} {what} during {self.during}"
                + (f" (last exit: {self.last_exit})" if self.last_exit else ""))


@dataclass
class TestResult:
    __test__ = False  # not a pytest test class
    unit: UnitInfo
    variant: str  # the test's parameters as pytest names them ("80-20"), or ""
    verdict: Verdict
    duration_s: float
    reason: str = ""  # one sentence: what was expected, what was observed, with counts
    message: str = ""  # pytest's failure text (traceback), or the skip reason
    figures: dict[str, Any] = field(default_factory=dict)
    evidence: dict[str, Any] = field(default_factory=dict)
    events: list[PlatformEvent] = field(default_factory=list)  # restarts and exits seen around the test

    @property
    def id(self) -> str:
        return f"{self.unit.id}[{self.variant}]" if self.variant else self.unit.id

    def headline(self) -> str:
        """The reason, or for a failure that gave none, the last line of its failure text."""
        if self.reason or self.verdict is Verdict.PASSED:
            return self.reason
        lines = [line.strip().removeprefix("E").strip() for line in self.message.strip().splitlines()]
        return next((line for line in reversed(lines) if line and not line.startswith(("_", "-"))), "")

    def to_json(self) -> dict[str, Any]:
        """The result as the report lists it (redacted): evidence only for a failure."""
        data: dict[str, Any] = {
            "id": self.id, "unit": self.unit.id, "description": self.unit.description,
            "features": list(self.unit.features), "result": self.verdict.value,
            **({"reason": self.headline()} if self.verdict is not Verdict.PASSED else {}),
            "durationSeconds": round(self.duration_s, 3), "message": self.message[-4000:], "figures": self.figures,
            **({"evidence": self.evidence} if self.verdict is Verdict.FAILED else {}),
            **({"platformEvents": [event.to_json() for event in self.events]} if self.events else {})}
        return redact(data)

    def to_transport(self) -> dict[str, Any]:
        """Everything, redacted, for the controller to rebuild the result (`from_transport`)."""
        return redact({"unit": {"id": self.unit.id, "description": self.unit.description,
                                "features": list(self.unit.features)},
                       "variant": self.variant, "verdict": self.verdict.value, "duration_s": self.duration_s,
                       "reason": self.reason, "message": self.message, "figures": self.figures,
                       "evidence": self.evidence, "events": [event.to_json() for event in self.events]})

    @classmethod
    def from_transport(cls, data: Mapping[str, Any]) -> TestResult:
        unit = data["unit"]
        return cls(UnitInfo(unit["id"], unit["description"], tuple(unit["features"])), data["variant"],
                   Verdict(data["verdict"]), float(data["duration_s"]), data.get("reason", ""),
                   data.get("message", ""), dict(data.get("figures") or {}), dict(data.get("evidence") or {}),
                   [PlatformEvent.from_json(event) for event in data.get("events") or []])


class ProfileDefinition(Protocol):
    """A profile as the suite declares it (meshconform.suite.features.Profile has this shape)."""

    @property
    def name(self) -> str: ...

    @property
    def core(self) -> frozenset[str]: ...

    @property
    def extended(self) -> frozenset[str]: ...


@dataclass(frozen=True)
class PartSummary:
    """One part (core or extended) of a profile: its result and counts, as the Gateway API report has them."""

    result: str  # success | partial | failure
    passed: int
    failed: int
    skipped: int
    failed_tests: tuple[str, ...]
    skipped_tests: tuple[str, ...]
    supported_features: tuple[str, ...] | None = None  # extended only
    unsupported_features: tuple[str, ...] | None = None

    @classmethod
    def of(cls, results: Sequence[TestResult], supported: tuple[str, ...] | None = None,
           unsupported: tuple[str, ...] | None = None) -> PartSummary:
        count = {verdict: sum(r.verdict is verdict for r in results) for verdict in Verdict}
        # As the Gateway API suite's report: failure if a test failed, partial if one was skipped, else success;
        # a part no test ran in is partial (nothing shows it works), never a success.
        result = ("failure" if count[Verdict.FAILED] else "partial" if count[Verdict.SKIPPED] or not results
                  else "success")
        return cls(result, count[Verdict.PASSED], count[Verdict.FAILED], count[Verdict.SKIPPED],
                   tuple(sorted(r.id for r in results if r.verdict is Verdict.FAILED)),
                   tuple(sorted(r.id for r in results if r.verdict is Verdict.SKIPPED)), supported, unsupported)

    def summary(self) -> str:
        if self.result == "success":
            return f"succeeded ({self.passed} passed)"
        if self.result == "failure":
            return f"failed with {self.failed} test failures"
        if not (self.passed or self.failed or self.skipped):
            return "no test ran"
        return f"partially succeeded with {self.skipped} test skips"

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"result": self.result, "statistics": {"Passed": self.passed, "Skipped": self.skipped,
                                                                       "Failed": self.failed},
                                "failedTests": list(self.failed_tests), "skippedTests": list(self.skipped_tests)}
        if self.supported_features is not None:
            data["supportedFeatures"] = list(self.supported_features)
        if self.unsupported_features is not None:
            data["unsupportedFeatures"] = list(self.unsupported_features)
        return data


@dataclass(frozen=True)
class ProfileReport:
    name: str
    core: PartSummary
    extended: PartSummary | None  # None: no extended test of this profile ran (the Gateway API leaves it out too)

    def to_json(self) -> dict[str, Any]:
        summary = f"Core tests {self.core.summary()}." + (
            f" Extended tests {self.extended.summary()}." if self.extended else "")
        return {"name": self.name, "summary": summary, "core": self.core.to_json(),
                **({"extended": self.extended.to_json()} if self.extended else {})}


def profile_reports(results: Sequence[TestResult], profiles: Collection[ProfileDefinition],
                    supported: Collection[str]) -> list[ProfileReport]:
    """Each profile this run tested: a test counts in a profile's core when all its features are core features
    of it, in its extended part when all are the profile's and one is extended (as the Gateway API suite sorts)."""
    reports = []
    for profile in profiles:
        core = [r for r in results if set(r.unit.features) & profile.core and not set(r.unit.features) - profile.core]
        extended = [r for r in results
                    if r not in core and set(r.unit.features) <= profile.core | profile.extended]
        if not core and not extended and len(profiles) > 1:
            continue  # as the Gateway API report: the profiles this run tested, not every one known
        extended_part = None
        unsupported = tuple(sorted(profile.extended - set(supported)))
        if extended or unsupported:
            # Nothing ran but something is declared unsupported: partial (not all of it is there).
            extended_part = PartSummary.of(extended, tuple(sorted(profile.extended & set(supported))), unsupported)
        reports.append(ProfileReport(profile.name, PartSummary.of(core), extended_part))
    return reports


@dataclass
class ConformanceReport:
    implementation: dict[str, Any]
    under_test: dict[str, Any]
    timeouts: dict[str, Any]
    timeout_overrides: dict[str, Any]
    profiles: list[ProfileReport]
    tests: list[TestResult]
    platform_events: list[PlatformEvent] = field(default_factory=list)
    date: str = field(default_factory=lambda: datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"))
    certification: Certification | None = None  # set by a certification run (meshconform certify)

    @property
    def mode(self) -> str:
        return str(self.under_test.get("platform", "unknown"))

    def counts(self) -> dict[Verdict, int]:
        return {verdict: sum(t.verdict is verdict for t in self.tests) for verdict in Verdict}

    def result(self) -> str:
        counts = self.counts()
        return ("failure" if counts[Verdict.FAILED] else "partial" if counts[Verdict.SKIPPED] or not self.tests
                else "success")

    def to_json(self) -> dict[str, Any]:
        """The report as conformance.yaml holds it (redacted)."""
        counts = self.counts()
        head = redact({"implementation": self.implementation, "underTest": self.under_test,
                       "timeouts": self.timeouts, "timeoutOverrides": self.timeout_overrides})
        return {
            "apiVersion": API_VERSION, "kind": "ConformanceReport", "date": self.date, "mode": self.mode,
            "implementation": head["implementation"], "underTest": head["underTest"], "timeouts": head["timeouts"],
            "timeoutOverrides": head["timeoutOverrides"],
            "summary": {"result": self.result(), "passed": counts[Verdict.PASSED], "failed": counts[Verdict.FAILED],
                        "skipped": counts[Verdict.SKIPPED],
                        "platformEvents": [event.describe() for event in self.platform_events]},
            "profiles": [profile.to_json() for profile in self.profiles],
            "tests": [test.to_json() for test in sorted(self.tests, key=lambda t: t.id)],
            **({"platformEvents": [event.to_json() for event in self.platform_events]}
               if self.platform_events else {}),
            **({"certification": redact(self.certification.to_json())} if self.certification else {}),
        }


def build(results: Sequence[TestResult], implementation: Mapping[str, Any], under_test: Mapping[str, Any],
          timeouts: Mapping[str, Any], overrides: Mapping[str, Any], supported: Collection[str],
          profiles: Collection[ProfileDefinition], platform_events: Sequence[PlatformEvent] = ()
          ) -> ConformanceReport:
    return ConformanceReport(dict(implementation), dict(under_test), dict(timeouts), dict(overrides),
                             profile_reports(results, profiles, supported), list(results), list(platform_events))
