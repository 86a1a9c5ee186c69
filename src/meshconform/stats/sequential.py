"""Sequential tests for shares of traffic: stop as soon as a batch settles pass or fail.

**What a check promises.** For an expected share p0 with a declared tolerance t and false-failure
probability alpha (1e-4 per assertion in the suite):
- a conforming mesh (true share exactly p0) fails with probability <= alpha (false failure);
- a mesh off by 2 x t (true share p0 - 2t or p0 + 2t) passes with probability <= beta = 1e-3
  (miss); near 0 or 1, where p0 - 2t is below p0 / 4 (p0 < 8t/3), the miss is bounded at p0 / 4
  instead (at 1 - (1 - p0) / 4 near 1): 90/10 must catch the 10 % dropping to 2.5 %, not only vanishing;
- at most `n_max` requests are sent: the fixed sample size the suite used before (the smallest n whose
  exact central 1 - alpha binomial band lies within p0 ± t, see stats.proportions), rounded up to
  whole batches. At that last look the acceptance band is about p0 ± t, as the fixed test's was.
Both error probabilities are *exact* (computed by dynamic programming over the binomial count at every
look, with the batch schedule that is really used), not asymptotic; the design is refused if they
do not hold. The tests check them again by simulation.

**Design: a truncated group-sequential test, Bayes-optimal for the mean sample size of a conforming
mesh.** Requests go out in batches of `batch`; after each batch the count x of the judged outcome
among the n replies so far falls into one of: reject (fail now), accept (pass now), or continue. The
regions are found by backward induction over (n, x), minimising

    E_p0[N] + w * (E_p0-2t[N] + E_p0+2t[N]) / 2 + lambda0 * P_p0(reject) + lambda1 * sum of P_p0±2t(accept)

(the Lagrangian form of "fewest requests on a conforming mesh, subject to both error constraints";
Eales & Jennison 1992, Barber & Jennison 2002 for optimal group-sequential tests), with lambda0 and
lambda1 tuned by bisection until both exact error probabilities meet their targets. w = 0.5 keeps a
broken mesh from being sampled to the end before it fails. Why this and not the alternatives:
- Wald's SPRT minimises the mean sample size under both of *two* simple hypotheses, but our
  alternative is two-sided; the usual pair of one-sided SPRTs (Sobel-Wald) must wait until both
  accept. With Wald's thresholds for these rates, checked in batches of 50 and truncated at 1500,
  it averaged 541 requests for 50/50 and still missed 2.7e-3 (truncation); this design averages
  476 and misses 9.8e-4. Wald's thresholds only approximate the error rates (overshoot at batch
  ends, truncation), where this design computes them.
- Error-spending group-sequential designs (O'Brien-Fleming, Pocock) aim at few looks and at the
  sample size under the alternative; here looks are cheap and the sample size that matters is
  the conforming mesh's.
- Keeping the fixed design's miss rate at 2t (about 1e-4) is not possible within 500 requests: this
  method at beta = 1e-4 needs about 600 on average for 50/50 (batches of 50, up to 2000 requests),
  and no sequential test can go below Wald's bound of 451 for even one side. So beta = 1e-3 is
  declared at 2t. At t itself a mesh is now caught with probability 0.27 (80/20) to 0.51 (90/10),
  0.36 for 50/50; the fixed design caught it about half the time (bench/bench_sequential.py).
The count regions are intervals at every look (reject in the tails, accept in the middle) and are
checked to be so; `Look` holds them and is what both the suite and the simulations decide with.

**Exact checks** (p0 = 0 or 1) keep their design: any counterexample fails at once; a pass needs
n = ceil(ln alpha / ln(1 - t)) agreeing replies (180 for t = 0.05), which sees a departure of t with
probability 1 - alpha. It is already optimal for a conforming mesh: every conforming run looks the
same (all replies agree), and any test that passes it after fewer replies misses a mesh off by t
with probability (1 - t)^n > alpha.

Tuned multipliers for the suite's own checks are stored in stats.tuned (regenerate with
`python -m meshconform.stats.sequential`); any other design is tuned on first use (a few seconds).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache, cached_property
from typing import Any, Literal

import numpy as np

from meshconform.stats.proportions import sample_size

DEFAULT_BETA = 1e-3  # miss probability ...
MISS_SHIFT = 2.0  # ... for a mesh off by this many tolerances,
NEAR_EDGE = 0.25  # ... or, near 0 or 1, for one whose share (or its complement) shrank to this fraction
DEFAULT_BATCH = 50  # requests per look: small enough to stop near the optimum, large enough to send concurrently
ALTERNATIVE_WEIGHT = 0.5  # w above: weight of a broken mesh's mean sample size
_LOG_CAP = 700.0  # likelihood ratios beyond e^700 are "certainly not p0"; keeps the arithmetic finite

Decision = Literal["accept", "reject", "continue"]
_CONTINUE, _ACCEPT, _REJECT = 0, 1, 2
_NAMES: tuple[Decision, Decision, Decision] = ("continue", "accept", "reject")


@dataclass(frozen=True)
class Look:
    """The decision after `n` replies, by the count x of the judged outcome: reject if x <= reject_low
    or x >= reject_high; accept if accept_low <= x <= accept_high (empty when accept_low > accept_high);
    else continue."""
    n: int
    reject_low: int
    accept_low: int
    accept_high: int
    reject_high: int

    def decide(self, count: int) -> Decision:
        return _NAMES[int(self.decide_many(np.asarray([count]))[0])]

    def decide_many(self, counts: np.ndarray) -> np.ndarray:
        """Vectorised decisions (0 continue, 1 accept, 2 reject) for an array of counts."""
        out = np.where((counts >= self.accept_low) & (counts <= self.accept_high), _ACCEPT, _CONTINUE)
        return np.where((counts <= self.reject_low) | (counts >= self.reject_high), _REJECT, out)

    def passing_band(self) -> tuple[int, int]:
        """Counts that are not rejected at this look (accepted, or continued)."""
        return self.reject_low + 1, self.reject_high - 1

    def flipped(self) -> Look:
        """The same look judging the complementary outcome (count n - x)."""
        n = self.n
        return Look(n, n - self.reject_high, n - self.accept_high, n - self.accept_low, n - self.reject_low)


@dataclass(frozen=True)
class Operating:
    """Exact behaviour of a design when the true share is p."""
    share: float
    reject: float
    accept: float
    mean_n: float
    reaches_last_look: float


@dataclass(frozen=True)
class SequentialDesign:
    expected: float
    tolerance: float
    alpha: float
    beta: float
    shift: float  # the miss probability beta holds at expected ± shift
    batch: int
    looks: tuple[Look, ...]
    kind: str

    @property
    def n_max(self) -> int:
        return self.looks[-1].n

    def look_at(self, n: int) -> Look:
        for look in self.looks:
            if look.n == n:
                return look
        raise ValueError(f"no look after {n} replies in a design with batches of {self.batch}")

    def operating(self, share: float) -> Operating:
        """Exact probabilities of failing and passing, and the mean number of requests, at a true share."""
        from scipy.stats import binom  # where used: see stats.proportions
        density = np.array([1.0])  # probability of each count among runs still going
        reject = accept = mean_n = 0.0
        sent = 0
        for look in self.looks:
            step = look.n - sent
            mean_n += step * float(density.sum())
            density = np.convolve(density, binom.pmf(np.arange(step + 1), step, share))
            sent = look.n
            decided = look.decide_many(np.arange(look.n + 1))
            reject += float(density[decided == _REJECT].sum())
            accept += float(density[decided == _ACCEPT].sum())
            last = float(density.sum())
            density = np.where(decided == _CONTINUE, density, 0.0)
        return Operating(share, reject, accept, mean_n, last)

    def alternatives(self) -> list[float]:
        return _alternatives(self.expected, self.shift)

    def exact_errors(self) -> tuple[float, float]:
        """(false-failure probability at the expected share, worst miss probability at expected ± shift)."""
        return self._exact_errors

    @cached_property
    def _exact_errors(self) -> tuple[float, float]:
        miss = max((self.operating(p).accept for p in self.alternatives()), default=0.0)
        return self.operating(self.expected).reject, miss

    @cached_property
    def conforming(self) -> Operating:
        return self.operating(self.expected)

    def to_json(self, upto: int | None = None) -> dict[str, Any]:
        """Figures for the report; `upto` cuts the boundary table after the look where sampling stopped."""
        false_failure, miss = self.exact_errors()
        conforming = self.conforming
        looks = [look for look in self.looks if upto is None or look.n <= upto]
        return {"kind": self.kind, "batch": self.batch, "planned_max": self.n_max,
                "false_failure_exact": float(f"{false_failure:.3g}"), "miss_probability": self.beta,
                "miss_exact": float(f"{miss:.3g}"), "miss_at": [round(p, 4) for p in self.alternatives()],
                "mean_n_conforming": round(conforming.mean_n, 1),
                "boundaries": {"columns": ["n", "reject_at_or_below", "accept_from", "accept_to", "reject_at_or_above"],
                               "looks": [[look.n, look.reject_low, look.accept_low, look.accept_high,
                                          look.reject_high] for look in looks]}}


@dataclass(frozen=True)
class Simulated:
    """Outcome of simulated runs of a design (Monte Carlo, to check the exact figures)."""
    share: float
    runs: int
    rejected: int
    accepted: int
    mean_n: float
    n_percentiles: tuple[float, float, float]  # median, 90th and 99th percentile of the requests sent


def simulate(design: SequentialDesign, share: float, runs: int, rng: np.random.Generator,
             chunk: int = 200_000) -> Simulated:
    """Run the design `runs` times on a mesh whose true share is `share`, batch by batch as the suite
    sends them, deciding with the same `Look.decide_many` the suite uses."""
    rejected = accepted = 0
    sizes = []
    for start in range(0, runs, chunk):
        size = min(chunk, runs - start)
        counts = np.zeros(size, dtype=np.int64)
        state = np.zeros(size, dtype=np.int8)
        stopped_at = np.zeros(size, dtype=np.int64)
        sent = 0
        for look in design.looks:
            live = np.flatnonzero(state == _CONTINUE)
            if not len(live):
                break
            counts[live] += rng.binomial(look.n - sent, share, size=len(live))
            sent = look.n
            state[live] = look.decide_many(counts[live])
            stopped_at[live] = look.n
        if np.any(state == _CONTINUE):
            raise AssertionError("runs left undecided after the last look")
        rejected += int(np.count_nonzero(state == _REJECT))
        accepted += int(np.count_nonzero(state == _ACCEPT))
        sizes.append(stopped_at)
    n = np.concatenate(sizes)
    p50, p90, p99 = (float(q) for q in np.percentile(n, [50, 90, 99]))
    return Simulated(share, runs, rejected, accepted, float(n.mean()), (p50, p90, p99))


def _alternatives(p0: float, shift: float) -> list[float]:
    """The shares a miss is bounded at: off by `shift`, or, where that is nearer, a quarter of the
    expected share (of its complement near 1). A share of 0.1 can only be off by 0.1 downwards by
    never showing, and a check designed against that alone would pass a mesh that halves it."""
    if p0 <= 0 or p0 >= 1:
        return [round(p0 - shift, 12) if p0 >= 1 else round(p0 + shift, 12)]
    return [round(max(p0 - shift, p0 * NEAR_EDGE), 12), round(min(p0 + shift, 1 - (1 - p0) * NEAR_EDGE), 12)]


def _log_lr(n: int, counts: np.ndarray, p0: float, p1: float) -> np.ndarray:
    """log P_p1(count) / P_p0(count) for n Bernoulli trials; p1 may be 0 or 1."""
    with np.errstate(divide="ignore", invalid="ignore"):
        hits = np.where(counts == 0, 0.0, counts * math.log(p1 / p0) if p1 > 0 else -np.inf)
        misses = np.where(counts == n, 0.0, (n - counts) * math.log((1 - p1) / (1 - p0)) if p1 < 1 else -np.inf)
    capped: np.ndarray = np.minimum(hits + misses, _LOG_CAP)
    return capped


def _optimal_regions(p0: float, shift: float, batch: int, n_max: int, lam0: float, lam1: float) -> list[np.ndarray]:
    """Backward induction (see the module doc) on the p0 measure: costs of a broken mesh enter through
    its likelihood ratio, E_p1[cost] = E_p0[cost * LR]. Returns each look's decision per count."""
    from scipy.stats import binom  # where used: see stats.proportions
    alternatives = _alternatives(p0, shift)
    pmf = binom.pmf(np.arange(batch + 1), batch, p0)
    looks = n_max // batch
    regions: list[np.ndarray] = [np.empty(0)] * looks
    value = np.empty(0)
    for j in range(looks, 0, -1):
        n = j * batch
        counts = np.arange(n + 1)
        ratio = sum(np.exp(_log_lr(n, counts, p0, p1)) for p1 in alternatives)
        accept_cost = lam1 * np.asarray(ratio)
        reject_cost = np.full(n + 1, lam0)
        if j == looks:
            go_on = np.full(n + 1, np.inf)
        else:
            mean_ratio = np.asarray(ratio) / max(len(alternatives), 1)
            go_on = batch * (1 + ALTERNATIVE_WEIGHT * mean_ratio) + np.convolve(value, pmf[::-1], mode="valid")
        value = np.minimum(np.minimum(accept_cost, reject_cost), go_on)
        regions[j - 1] = np.where(value == reject_cost, _REJECT, np.where(value == accept_cost, _ACCEPT, _CONTINUE))
    return regions


def _as_looks(regions: list[np.ndarray], batch: int) -> tuple[Look, ...]:
    looks = []
    for j, region in enumerate(regions, start=1):
        n = j * batch
        reject = np.flatnonzero(region == _REJECT)
        accept = np.flatnonzero(region == _ACCEPT)
        middle = accept if len(accept) else np.flatnonzero(region == _CONTINUE)
        centre = int(middle[len(middle) // 2]) if len(middle) else n // 2
        low, high = reject[reject < centre], reject[reject > centre]
        look = Look(n, int(low.max()) if len(low) else -1,
                    int(accept.min()) if len(accept) else n + 1, int(accept.max()) if len(accept) else n,
                    int(high.min()) if len(high) else n + 1)
        if not np.array_equal(look.decide_many(np.arange(n + 1)), region):
            raise ArithmeticError(f"look at n={n}: decision regions are not intervals")
        looks.append(look)
    return tuple(looks)


def _planned_max(p0: float, tolerance: float, alpha: float, batch: int) -> int:
    return -(-sample_size(p0, tolerance, alpha) // batch) * batch


def tune(p0: float, tolerance: float, alpha: float, beta: float, batch: int) -> tuple[float, float]:
    """log10 of (lambda0, lambda1) for the design at p0 <= 0.5: the smallest penalties (fewest
    requests) whose exact error probabilities meet alpha and beta. Nested bisection; seconds."""
    n_max = _planned_max(p0, tolerance, alpha, batch)

    def build(log0: float, log1: float) -> SequentialDesign:
        return _build(p0, tolerance, alpha, beta, batch, log0, log1)

    low1, high1, found = 0.0, 12.0, None
    for _ in range(14):  # to 1e-3 decades: finer changes no boundary of these sizes
        mid1 = (low1 + high1) / 2
        low0, high0 = mid1, mid1 + 10.0  # rejecting must cost more than accepting a broken mesh
        for _ in range(14):
            mid0 = (low0 + high0) / 2
            if build(mid0, mid1).operating(p0).reject > alpha:
                low0 = mid0
            else:
                high0 = mid0
        if build(high0, mid1).exact_errors()[1] > beta:
            low1 = mid1
        else:
            high1, found = mid1, (high0, mid1)
    if found is None:
        raise ValueError(f"no design for share {p0} at tolerance {tolerance}: alpha={alpha}, beta={beta} "
                         f"cannot both hold within {n_max} requests")
    return found


def _build(p0: float, tolerance: float, alpha: float, beta: float, batch: int, log0: float,
           log1: float) -> SequentialDesign:
    shift, n_max = MISS_SHIFT * tolerance, _planned_max(p0, tolerance, alpha, batch)
    regions = _optimal_regions(p0, shift, batch, n_max, 10.0 ** log0, 10.0 ** log1)
    return SequentialDesign(p0, tolerance, alpha, beta, shift, batch, _as_looks(regions, batch),
                            "group-sequential, optimal for a conforming mesh (exact errors)")


def _exact(p0: float, tolerance: float, alpha: float, batch: int) -> SequentialDesign:
    """Expected share 0 or 1: every reply must agree; see the module doc."""
    n_max = sample_size(p0, tolerance, alpha)
    looks = []
    for n in [*range(batch, n_max, batch), n_max]:
        last = n == n_max
        if p0 >= 1:  # every reply must be the outcome
            looks.append(Look(n, n - 1, n if last else n + 1, n, n + 1))
        else:  # no reply may be the outcome
            looks.append(Look(n, -1, 0 if last else 1, 0, 1))
    return SequentialDesign(p0, tolerance, alpha, alpha, tolerance, batch, tuple(looks),
                            "exact: every reply must agree")


@cache
def design_for(expected: float, tolerance: float, alpha: float, beta: float = DEFAULT_BETA,
               batch: int = DEFAULT_BATCH) -> SequentialDesign:
    """The design for one judged share, its error probabilities verified exactly."""
    from meshconform.stats.tuned import TUNED

    if not 0 < tolerance < 0.5 or not 0 < alpha < 1 or not 0 < beta < 1 or batch < 1:
        raise ValueError(f"bad design parameters: tolerance={tolerance}, alpha={alpha}, beta={beta}, batch={batch}")
    if expected <= 0 or expected >= 1:
        return _exact(expected, tolerance, alpha, batch)
    p0 = min(expected, 1 - expected)  # the design is symmetric: judge the rarer side, flip back
    key = (round(p0, 6), tolerance, alpha, beta, batch)
    design = None
    if key in TUNED:
        design = _build(p0, tolerance, alpha, beta, batch, *TUNED[key])
        false_failure, miss = design.exact_errors()
        if false_failure > alpha or miss > beta:  # e.g. another scipy rounds differently: tune afresh
            design = None
    if design is None:
        design = _build(p0, tolerance, alpha, beta, batch, *tune(p0, tolerance, alpha, beta, batch))
    if expected > 0.5:
        design = SequentialDesign(expected, tolerance, alpha, beta, design.shift, batch,
                                  tuple(look.flipped() for look in design.looks), design.kind)
    return design


def main() -> None:  # pragma: no cover - regenerates stats/tuned.py
    from meshconform.stats.proportions import DEFAULT_ALPHA

    # The suite's checks (share <= 0.5, tolerance, batch), then the looser designs its tests simulate.
    suite = [(0.5, 0.05, 50), (0.2, 0.05, 50), (0.1, 0.05, 50), (0.3, 0.05, 50), (0.5, 0.1, 50), (0.5, 0.1, 100)]
    keys = [(p0, tolerance, DEFAULT_ALPHA, DEFAULT_BETA, batch) for p0, tolerance, batch in suite]
    keys += [(0.5, 0.05, 1e-2, 1e-2, 50), (0.1, 0.05, 1e-2, 1e-2, 50)]
    print("TUNED: dict[tuple[float, float, float, float, int], tuple[float, float]] = {")
    for p0, tolerance, alpha, beta, batch in keys:
        logs = tune(p0, tolerance, alpha, beta, batch)
        print(f"    ({p0}, {tolerance}, {alpha}, {beta}, {batch}): ({logs[0]!r}, {logs[1]!r}),")
    print("}")


if __name__ == "__main__":
    main()
