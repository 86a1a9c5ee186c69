"""Verdicts recomputed from a report's records (meshconform.certify.recompute): a share sample as measure_counted
records it judges the same again; a count changed so the design would have stopped otherwise, a look off the
design's schedule, a passed test whose latencies lie outside their bounds, a profile part or summary the tests'
results do not give: each is named."""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Mapping
from typing import Any

from meshconform.certify import recompute
from meshconform.report.model import build
from meshconform.suite.features import profiles
from meshconform.suite.sampling import measure_counted
from meshconform.suite.timing import LatencyBounds
from tests.test_report import result


def _shares(split: Mapping[str, float]) -> dict[str, Any]:
    """A conforming 80/20 split's record: every batch exactly on its expected shares."""
    def send(first: int, size: int) -> Counter[str]:
        return Counter({name: round(size * share) for name, share in split.items()})
    return measure_counted(send, dict(split), alpha=1e-4, tolerance=0.05).to_json()


def _test(figures: dict[str, Any], verdict: str = "passed") -> dict[str, Any]:
    return {"id": "weighted-split-echo[80-20]", "result": verdict, "figures": figures}


def test_a_recorded_share_sample_judges_the_same_again() -> None:
    figure = _shares({"v1": 0.8, "v2": 0.2})
    assert figure["passed"] is True and len(figure["observations"]["looks"]) >= 1
    [again] = recompute.recompute(_test({"shares": figure}))
    assert (again.where, again.passed) == ("shares", True)
    assert recompute.verdict_problems(_test({"shares": figure})) == []


def test_a_count_changed_so_the_verdict_no_longer_follows_is_named() -> None:
    figure = _shares({"v1": 0.8, "v2": 0.2})
    tampered = copy.deepcopy(figure)
    second = tampered["observations"]["looks"][1]  # 100 replies: the design rejects v2 at 3 or fewer
    second["v1"], second["v2"] = 97, 3
    problems = recompute.verdict_problems(_test({"shares": tampered}))
    assert any("the recorded verdict 'passed' does not follow: figures.shares gives failed" in p for p in problems)
    assert any("figures.shares records passed=True, but its observations give failed" in p for p in problems)
    # A failed test is consistent with a failing sample; its recorded `passed` must still agree.
    tampered["passed"] = False
    assert recompute.verdict_problems(_test({"shares": tampered}, "failed")) == []


def test_looks_off_the_design_or_stopping_early_do_not_follow() -> None:
    figure = _shares({"v1": 0.5, "v2": 0.5})
    off = copy.deepcopy(figure)
    off["observations"]["looks"][0] = {"v1": 30, "v2": 30}  # 60 replies where the design looks at 50
    [again] = recompute.recompute(_test({"shares": off}))
    assert again.passed is False and "look 1 counts 60 replies where the design looks at 50" in again.why
    cut = copy.deepcopy(figure)
    cut["observations"]["looks"] = cut["observations"]["looks"][:1]
    cut["observations"]["sent"] = 50
    cut["observations"]["counts"] = dict(cut["observations"]["looks"][0])
    if len(figure["observations"]["looks"]) > 1:  # the conforming sample needed more than one look
        [again] = recompute.recompute(_test({"shares": cut}))
        assert again.passed is False and "before the design decides" in again.why
    totals = copy.deepcopy(figure)
    totals["observations"]["counts"] = {"v1": 1, "v2": 1}
    [again] = recompute.recompute(_test({"shares": totals}))
    assert again.passed is False and "are not the last look's" in again.why


def test_latency_bounds_anywhere_among_the_figures_are_judged_again() -> None:
    inside = LatencyBounds.of("timed-out requests", [0.51, 0.6], 0.48, 1.0, "0.5 s timeout").to_json()
    outside = copy.deepcopy(inside)
    outside["observations"]["latencies_s"].append(1.7)
    entry = _test({"replies": {"statuses": {"504": 2}, "latency_s": inside}})
    assert [(r.where, r.passed) for r in recompute.recompute(entry)] == [("replies.latency_s", True)]
    entry = _test({"replies": {"statuses": {"504": 3}, "latency_s": outside}})
    [problem, verdict] = recompute.verdict_problems(entry)
    assert "figures.replies.latency_s records passed=True" in problem and "1 of 3 latencies outside" in problem
    assert verdict.startswith("the recorded verdict 'passed' does not follow")


def test_profile_parts_and_the_summary_must_follow_from_the_results() -> None:
    results = [result("weighted-split-echo[80-20]", "split", ["WeightedRouting"], "passed", 1.0),
               result("mirror-full", "mirror", ["Mirroring"], "failed", 1.0, "AssertionError: no copies")]
    report = build(results, {}, {"platform": "local"}, {}, {}, supported=set(), profiles=list(profiles().values()))
    plain = report.to_json()
    assert recompute.status_problems(plain, profiles()) == []
    split = next(t for t in plain["tests"] if t["id"] == "weighted-split-echo[80-20]")
    split["result"] = "failed"  # the mirror failed; now the split too, but the counts were left as they were
    found = recompute.status_problems(plain, profiles())
    assert ("summary", "summary.passed is 1, the tests give 0") in found
    assert ("summary", "summary.failed is 1, the tests give 2") in found
    assert ("profiles.MESH-HTTP.core", "statistics is {'Passed': 1, 'Skipped': 0, 'Failed': 1}, the tests give "
                                       "{'Passed': 0, 'Skipped': 0, 'Failed': 2}") in found
