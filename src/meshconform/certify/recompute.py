"""Verdicts recomputed from what a report records: each figure that carries its design and observations (kinds
`sequential-shares` and `latency-bounds`, wherever it sits among a test's figures) is judged again by the installed
suite's own statistics, and the test's recorded verdict must follow from them; the profile parts and the summary
must follow from the tests' recorded results.

What follows and what does not: a passed test must have every recomputed figure pass; a figure's own recorded
`passed` must equal the recomputed one. A failed test whose recomputed figures all pass is consistent (it may have
failed on an assertion the report records no design for). A share sample's looks must be the ones its design
schedules, in order, each counting at least what the look before it counted, and the design must have decided at
the last one."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from meshconform.report.figures import find
from meshconform.report.model import PartSummary, TestResult, UnitInfo, Verdict, profile_reports
from meshconform.stats.splits import SplitTest
from meshconform.suite.features import Profile

KINDS = ("sequential-shares", "latency-bounds")


@dataclass(frozen=True)
class Recomputed:
    where: str  # the figure's path among the test's figures ("shares", "replies.latency_s")
    passed: bool | None  # None: it cannot be recomputed (why says why)
    why: str  # what the observations give, in one sentence


def recorded_figures(figures: Any) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every figure of a recomputable kind, with its path."""
    return find(figures, lambda figure: figure if figure.get("kind") in KINDS else None)


def shares(figure: Mapping[str, Any]) -> tuple[bool | None, str]:
    """A sequential share sample judged again from its design and the counts at each look."""
    design, observed = figure["design"], figure["observations"]
    try:
        # The recorded miss probability is the largest of the designs' (an exact design declares alpha there and
        # ignores beta), which is the one every non-exact design of the sample was built with.
        test = SplitTest({str(k): float(v) for k, v in design["expected"].items()}, float(design["false_failure_rate"]),
                         float(design["tolerance"]), bool(design["exclusive"]), float(design["miss_probability"]),
                         int(design["batch"]))
    except (ValueError, KeyError, TypeError) as exc:
        return None, f"its design cannot be rebuilt: {exc}"
    sent, before = 0, dict[str, int]()
    looks: Sequence[Mapping[str, int]] = observed["looks"]
    for number, look in enumerate(looks, 1):
        total = sum(int(v) for v in look.values())
        if test.decision != "continue":
            return False, f"look {number} comes after the design had decided ({test.reason})"
        scheduled = next((n for n in _schedule(test) if n > sent), None)
        if total != scheduled:
            return False, f"look {number} counts {total} replies where the design looks at {scheduled}"
        shrunk = [name for name, count in before.items() if int(look.get(name, 0)) < count]
        if shrunk:
            return False, f"look {number} counts fewer {', '.join(shrunk)} than the look before it"
        try:
            test.observe({str(k): int(v) for k, v in look.items()})
        except AssertionError as exc:
            return None, f"the design left shares open at its last look: {exc}"
        sent, before = total, {str(k): int(v) for k, v in look.items()}
    if test.decision == "continue":
        return False, f"the recorded looks stop after {sent} replies, before the design decides"
    if int(observed["sent"]) != sent or {k: int(v) for k, v in observed["counts"].items() if int(v)} != \
            {k: v for k, v in before.items() if v}:
        return False, f"the recorded totals (sent {observed['sent']}, counts {dict(observed['counts'])}) are not " \
                      f"the last look's ({sent}, {before})"
    return test.decision == "accept", test.reason


def _schedule(test: SplitTest) -> list[int]:
    """Every look the design may take."""
    looks, sent = [], 0
    while sent < test.planned:
        sent = test.next_look(sent)
        looks.append(sent)
    return looks


def latency(figure: Mapping[str, Any]) -> tuple[bool | None, str]:
    design = figure["design"]
    low, high = design.get("lower_s"), design.get("upper_s")
    latencies = [float(v) for v in figure["observations"]["latencies_s"]]
    outside = [v for v in latencies if (low is not None and v < float(low)) or (high is not None and v > float(high))]
    bounds = f"{'' if low is None else low}..{'' if high is None else high} s"
    if outside:
        return False, f"{len(outside)} of {len(latencies)} latencies outside {bounds}: {outside[:5]}"
    return True, f"all {len(latencies)} latencies within {bounds}"


def recompute(test: Mapping[str, Any]) -> list[Recomputed]:
    """Each recomputable figure of one test's entry, judged again."""
    out = []
    for where, figure in recorded_figures(test.get("figures") or {}):
        try:
            passed, why = (shares if figure["kind"] == "sequential-shares" else latency)(figure)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            passed, why = None, f"its record is incomplete: {type(exc).__name__}: {exc}"
        out.append(Recomputed(where, passed, why))
    return out


def verdict_problems(test: Mapping[str, Any], judged: Sequence[Recomputed] | None = None) -> list[str]:
    """Why a test's recorded verdict, or a figure's recorded `passed`, does not follow from its observations
    (`judged`: its figures already recomputed)."""
    problems = []
    for figure in recompute(test) if judged is None else judged:
        recorded = _figure_at(test["figures"], figure.where).get("passed")
        if figure.passed is None:
            problems.append(f"figures.{figure.where} cannot be recomputed: {figure.why}")
            continue
        said = "passed" if figure.passed else "failed"
        if recorded is not figure.passed:
            problems.append(f"figures.{figure.where} records passed={recorded}, but its observations give {said}: "
                            f"{figure.why}")
        if not figure.passed and test.get("result") == "passed":
            problems.append(f"the recorded verdict 'passed' does not follow: figures.{figure.where} gives {said} "
                            f"({figure.why})")
    return problems


def _figure_at(figures: Mapping[str, Any], where: str) -> Mapping[str, Any]:
    value: Any = figures
    for part in where.replace("[", ".[").split("."):
        value = value[int(part[1:-1])] if part.startswith("[") else value[part]
    found: Mapping[str, Any] = value
    return found


def status_problems(report: Mapping[str, Any], known: Mapping[str, Profile]) -> list[tuple[str, str]]:
    """(subject, why) where a profile part or the summary does not follow from the tests' recorded results."""
    results = [TestResult(UnitInfo(str(t["unit"]), str(t["description"]), tuple(t["features"])),
                          str(t["id"]).partition("[")[2].rpartition("]")[0], Verdict(t["result"]),
                          float(t["durationSeconds"])) for t in report["tests"]]
    problems: list[tuple[str, str]] = []
    counts = {v.value: sum(r.verdict is v for r in results) for v in Verdict}
    summary = report["summary"]
    for verdict, count in counts.items():
        if summary.get(verdict) != count:
            problems.append(("summary", f"summary.{verdict} is {summary.get(verdict)}, the tests give {count}"))
    listed = {str(p["name"]): p for p in report["profiles"]}
    unsupported = (report.get("certification") or {}).get("unsupportedFeatures") \
        or {f for p in report["profiles"] for f in (p.get("extended") or {}).get("unsupportedFeatures") or ()}
    supported = set().union(*(set(p.core | p.extended) for p in known.values())) - set(unsupported)
    rebuilt = {r.name: r for r in profile_reports(results, list(known.values()), supported)}
    for name in sorted(listed.keys() - rebuilt.keys()):
        problems.append((f"profiles.{name}", "listed, but no test of the report counts in it"))
    for name, profile in rebuilt.items():
        if name not in listed:
            problems.append((f"profiles.{name}", "missing, though tests of the report count in it"))
            continue
        for part_name, part in (("core", profile.core), ("extended", profile.extended)):
            problems += _part_problems(f"profiles.{name}.{part_name}", listed[name].get(part_name), part)
    return problems


def _part_problems(where: str, recorded: Mapping[str, Any] | None, rebuilt: PartSummary | None
                   ) -> list[tuple[str, str]]:
    if rebuilt is None:
        return [] if recorded is None else [(where, "listed, but no test of the report counts in it")]
    if recorded is None:
        return [(where, f"missing, but the tests give {rebuilt.result} ({rebuilt.passed} passed)")]
    expected = rebuilt.to_json()
    return [(where, f"{key} is {recorded.get(key)!r}, the tests give {expected[key]!r}")
            for key in ("result", "statistics", "failedTests", "skippedTests") if recorded.get(key) != expected[key]]
