"""The sequential share tests keep their declared error rates, with the batches the suite sends.

Two independent routes to each figure: exact (dynamic programming over the count at every look,
SequentialDesign.operating) and Monte Carlo (stats.sequential.simulate, numpy). The simulation
checks the exact computation at a loose alpha where it has the power to; at the suite's alpha of
1e-4 the exact figure is the proof and the simulation must agree with it. Every interval check
uses a Clopper-Pearson interval at 1 - 1e-6, so a correct design fails one of them by chance with
probability about 1e-6 per check; the seeds are fixed anyway, so a run is reproducible."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from meshconform.stats import sequential
from meshconform.stats.proportions import DEFAULT_ALPHA, clopper_pearson, sample_size, split_sample_size
from meshconform.stats.sequential import DEFAULT_BETA, design_for, simulate
from meshconform.stats.splits import SplitTest
from meshconform.suite.sampling import measure_counted, measure_shares
from meshconform.traffic.model import Request, Response

CONFIDENCE = 1 - 1e-6

# The suite's proportion checks: (name, expected share, tolerance, batch) as conformance/ calls them.
SUITE = [
    ("50/50", 0.5, 0.05, 50),
    ("80/20", 0.8, 0.05, 50),
    ("90/10", 0.9, 0.05, 50),
    ("10/90", 0.1, 0.05, 50),
    ("30% abort", 0.3, 0.05, 50),
    ("50% delay", 0.5, 0.1, 100),
    ("50% mirror", 0.5, 0.1, 100),
]
IDS = [name for name, *_ in SUITE]


def _within(observed: int, runs: int, exact: float) -> bool:
    low, high = clopper_pearson(observed, runs, CONFIDENCE)
    return low <= exact <= high


@pytest.mark.parametrize(("name", "share", "tolerance", "batch"), SUITE, ids=IDS)
def test_suite_designs_meet_error_rates_exactly(name: str, share: float, tolerance: float, batch: int) -> None:
    design = design_for(share, tolerance, DEFAULT_ALPHA, DEFAULT_BETA, batch)
    false_failure, miss = design.exact_errors()
    assert false_failure <= DEFAULT_ALPHA, f"{name}: false-failure {false_failure:.3g}"
    assert miss <= DEFAULT_BETA, f"{name}: miss {miss:.3g} at {design.alternatives()}"
    # The shift the miss is bounded at: 2 x tolerance (a quarter of the share near 0 or 1).
    assert any(abs(p - share) == pytest.approx(2 * tolerance) for p in design.alternatives())
    # Never more than the fixed sample of before, rounded up to whole batches.
    assert design.n_max == -(-sample_size(share, tolerance, DEFAULT_ALPHA) // batch) * batch
    assert all(look.n % batch == 0 for look in design.looks)
    last = design.looks[-1]
    assert set(last.decide_many(np.arange(last.n + 1)).tolist()) <= {1, 2}, "the last look must decide"


@pytest.mark.parametrize(("name", "share", "tolerance", "batch"), SUITE, ids=IDS)
def test_suite_designs_average_at_most_500_requests(name: str, share: float, tolerance: float, batch: int) -> None:
    design = design_for(share, tolerance, DEFAULT_ALPHA, DEFAULT_BETA, batch)
    exact = design.operating(share).mean_n
    assert exact <= 500, f"{name}: {exact:.0f} requests on average on a conforming mesh"
    assert exact <= 0.55 * split_sample_size({"a": share, "b": 1 - share}, tolerance) or tolerance == 0.1
    runs = simulate(design, share, 100_000, np.random.default_rng(1))
    # The simulated mean agrees with the exact one (sd of N is below n_max; 6 standard errors).
    assert abs(runs.mean_n - exact) <= 6 * design.n_max / np.sqrt(runs.runs), (runs.mean_n, exact)
    # ... and the simulated false failures with the exact rate (about 10 expected in 1e5 runs).
    assert _within(runs.rejected, runs.runs, design.operating(share).reject)


@pytest.mark.parametrize(("name", "share", "tolerance", "batch"), SUITE, ids=IDS)
def test_suite_designs_catch_the_declared_shift(name: str, share: float, tolerance: float, batch: int) -> None:
    design = design_for(share, tolerance, DEFAULT_ALPHA, DEFAULT_BETA, batch)
    rng = np.random.default_rng(2)
    for shifted in design.alternatives():
        exact = design.operating(shifted)
        assert exact.accept <= DEFAULT_BETA
        runs = simulate(design, shifted, 50_000, rng)
        assert _within(runs.accepted, runs.runs, exact.accept), (name, shifted, runs.accepted)
        assert runs.mean_n <= 600, f"{name}: a mesh at {shifted} takes {runs.mean_n:.0f} requests to fail"


@pytest.mark.parametrize("share", [0.5, 0.1])
def test_simulated_false_failures_bound_the_loose_design(share: float) -> None:
    """At alpha = beta = 1e-2 a simulation can resolve the rates: over 2e5 simulated conforming
    meshes the observed false-failure rate's interval must contain the exact rate and must not lie
    above alpha; likewise the misses at the declared shift and beta."""
    design = design_for(share, 0.05, 1e-2, 1e-2, 50)
    false_failure, miss = design.exact_errors()
    assert false_failure <= 1e-2 and miss <= 1e-2
    rng = np.random.default_rng(3)
    conforming = simulate(design, share, 200_000, rng)
    low, high = clopper_pearson(conforming.rejected, conforming.runs, CONFIDENCE)
    assert low <= false_failure <= high and low <= 1e-2, (conforming.rejected, false_failure)
    for shifted in design.alternatives():
        broken = simulate(design, shifted, 100_000, rng)
        low, high = clopper_pearson(broken.accepted, broken.runs, CONFIDENCE)
        assert low <= design.operating(shifted).accept <= high and low <= 1e-2, (shifted, broken.accepted)


def test_exact_computation_matches_closed_forms() -> None:
    """The dynamic programme on designs whose error rates have a closed form."""
    exact = design_for(1.0, 0.05, DEFAULT_ALPHA)
    assert exact.n_max == 180
    assert exact.operating(1.0).reject == 0 and exact.operating(1.0).mean_n == 180
    assert exact.operating(0.95).accept == pytest.approx(0.95 ** 180, rel=1e-9)
    # A mesh at 0.95 fails at the first batch with a counterexample: mean n = sum over looks.
    looks = [look.n for look in exact.looks]
    mean = sum((b - a) * 0.95 ** a for a, b in zip([0, *looks], looks, strict=False))
    assert exact.operating(0.95).mean_n == pytest.approx(mean, rel=1e-9)
    never = design_for(0.0, 0.05, DEFAULT_ALPHA)
    assert never.operating(0.0).reject == 0 and never.operating(0.05).accept == pytest.approx(0.95 ** 180)


def test_the_exact_design_is_the_fewest_requests_that_see_the_tolerance() -> None:
    """Kept from the fixed design: every conforming run is the same, so the fewest requests after
    which a pass misses a departure of t with probability <= alpha is optimal."""
    n = design_for(1.0, 0.05, DEFAULT_ALPHA).n_max
    assert 0.95 ** n <= DEFAULT_ALPHA < 0.95 ** (n - 1)


def test_splits_decide_both_outcomes_alike_and_flip_exactly() -> None:
    low, high = design_for(0.2, 0.05, DEFAULT_ALPHA), design_for(0.8, 0.05, DEFAULT_ALPHA)
    for a, b in zip(low.looks, high.looks, strict=True):
        counts = np.arange(a.n + 1)
        assert np.array_equal(a.decide_many(counts), b.decide_many(a.n - counts))


def _feed(test: SplitTest, outcomes: list[str]) -> int:
    counts: Counter[str] = Counter()
    sent = 0
    while test.decision == "continue":
        upto = test.next_look(sent)
        counts.update(outcomes[sent:upto])
        sent = upto
        test.observe(counts)
    return sent


def test_split_test_decides_as_the_vectorised_simulation() -> None:
    """The scalar path the suite takes (SplitTest) decides exactly as Look.decide_many, run by run."""
    rng = np.random.default_rng(4)
    design = design_for(0.8, 0.05, DEFAULT_ALPHA)
    for share in (0.8, 0.7, 0.75, 0.9):
        for _ in range(20):
            draws = rng.random(design.n_max) < share
            outcomes = ["v1" if hit else "v2" for hit in draws]
            test = SplitTest({"v1": 0.8, "v2": 0.2}, DEFAULT_ALPHA, 0.05)
            sent = _feed(test, outcomes)
            expected_n, expected_decision = next(
                (look.n, look.decide(int(draws[:look.n].sum()))) for look in design.looks
                if look.decide(int(draws[:look.n].sum())) != "continue")
            assert (sent, test.decision) == (expected_n, expected_decision)


def test_an_outcome_outside_the_split_fails_at_once() -> None:
    test = SplitTest({"v1": 0.5, "v2": 0.5}, DEFAULT_ALPHA, 0.05)
    assert test.observe({"v1": 25, "v2": 24, "error:503": 1}) == "reject"
    assert "error:503" in test.reason


def test_three_way_split_shares_alpha_and_keeps_accepted_verdicts() -> None:
    # Loose rates keep the three designs small: tuning them (no stored penalties) takes a moment.
    test = SplitTest({"a": 0.25, "b": 0.25, "c": 0.5}, 3e-2, 0.1, beta=5e-2, batch=25)
    assert test.alpha_each == pytest.approx(1e-2)
    for name, design in test.designs.items():
        false_failure, miss = design.exact_errors()
        assert false_failure <= 1e-2 and miss <= 5e-2, name
    rng = np.random.default_rng(5)
    outcomes = [str(o) for o in rng.choice(["a", "b", "c"], size=test.planned, p=[0.25, 0.25, 0.5])]
    sent = _feed(test, outcomes)
    assert test.decision == "accept", test.reason  # this seed's draw; a conforming split fails w.p. <= 3e-2
    verdicts = test.final_verdicts(Counter(outcomes[:sent]))
    assert {v.name for v in verdicts} == {"a", "b", "c"} and all(v.passed for v in verdicts)
    # An outcome accepted early keeps its verdict, taken at its own look.
    assert all(v.accept_low <= v.observed <= v.accept_high and v.total <= sent for v in verdicts)


class FakeVantage:
    """Answers like a mesh splitting traffic v1/v2 at a given share; records batch sizes."""
    name = "fake"

    def __init__(self, share_v1: float, seed: int) -> None:
        self.rng, self.share, self.batches = np.random.default_rng(seed), share_v1, []

    def send(self, requests: list[Request], concurrency: int = 10, reuse_connections: bool = True) -> list[Response]:
        self.batches.append(len(requests))
        hits = self.rng.random(len(requests)) < self.share
        return [Response(f"r{i}", 200, None, 0.001, headers={"v": "v1" if hit else "v2"}, path=r.path)
                for i, (r, hit) in enumerate(zip(requests, hits, strict=True))]


def test_measure_shares_runs_the_design_batch_by_batch() -> None:
    conforming = FakeVantage(0.5, seed=6)
    sample = measure_shares(conforming, lambda i: Request(f"/x/{i}"), lambda r: r.headers["v"],
                            {"v1": 0.5, "v2": 0.5}, DEFAULT_ALPHA, 0.05)
    assert sample.passed and sample.sent == len(sample.replies) == sum(conforming.batches)
    assert set(conforming.batches) == {50} and sample.planned == 1500
    figures = sample.to_json()
    assert {"planned", "sent", "counts", "false_failure_rate", "tolerance", "passed", "verdicts"} <= set(figures)
    assert figures["sequential"]["stop_reason"] and figures["verdicts"][0]["design"]["boundaries"]["looks"]
    assert {"accept_low", "accept_high", "ci_low", "ci_high", "share"} <= set(figures["verdicts"][0])
    skewed = FakeVantage(0.65, seed=7)  # 15 points of weight moved, as the weights-skewed misbehaviour does
    sample = measure_shares(skewed, lambda i: Request(f"/x/{i}"), lambda r: r.headers["v"],
                            {"v1": 0.5, "v2": 0.5}, DEFAULT_ALPHA, 0.05)
    assert not sample.passed and sample.sent < 500, sample.describe()


def test_requests_alongside_go_with_the_first_batch_and_are_not_counted() -> None:
    vantage = FakeVantage(0.5, seed=6)
    others = [Request(f"/other/{i}") for i in range(7)]
    sample = measure_shares(vantage, lambda i: Request(f"/x/{i}"), lambda r: r.headers["v"],
                            {"v1": 0.5, "v2": 0.5}, DEFAULT_ALPHA, 0.05, alongside=others)
    assert vantage.batches[0] == 50 + 7 and set(vantage.batches[1:]) <= {50}, vantage.batches
    assert [r.path for r in sample.alongside] == [r.path for r in others]
    assert sample.sent == len(sample.replies) == sum(vantage.batches) - 7 == sum(sample.counts.values())
    assert all(r.path.startswith("/x/") for r in sample.replies)


def test_measure_counted_refuses_a_short_batch() -> None:
    with pytest.raises(ValueError, match="came back with"):
        measure_counted(lambda first, size: {"mirrored": size // 2}, {"mirrored": 0.5, "not_mirrored": 0.5},
                        DEFAULT_ALPHA, 0.1, batch=100)


def test_stored_penalties_are_used_without_tuning(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object) -> tuple[float, float]:
        raise AssertionError(f"tuned afresh: {args}")
    monkeypatch.setattr(sequential, "tune", refuse)
    sequential.design_for.cache_clear()
    try:
        for _, share, tolerance, batch in SUITE:
            design_for(share, tolerance, DEFAULT_ALPHA, DEFAULT_BETA, batch)
    finally:
        sequential.design_for.cache_clear()

