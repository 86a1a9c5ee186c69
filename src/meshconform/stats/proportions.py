"""Judging observed shares (weights, fault and mirror percentages) with exact binomial tests.

A check is designed from two numbers: the false-failure probability `alpha` (how often a correct
mesh may fail the check by chance) and the `tolerance` (how far from the expected share the
acceptance band may reach). The sample size follows: the smallest n whose central (1 - alpha)
binomial region lies within expected ± tolerance. A mesh whose true share is off by 2 x tolerance
or more then fails with probability of at least about 1 - alpha.

The suite now judges shares sequentially (stats.sequential); these fixed-n regions give its
largest sample (`sample_size`) and serve checks that take one fixed sample."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import cache
from typing import Any


def warm_up() -> None:
    """Import what the exact tests use. scipy.stats is imported where used, not at the top: its import takes ~0.6 s,
    which every run of the suite spent collecting, before the platform started; the suite's fixture calls this in
    a thread while the platform comes up, which is mostly waiting on processes."""
    import scipy.stats  # noqa: F401


DEFAULT_ALPHA = 1e-4


def binomial_cdf(k: int, n: int, p: float) -> float:
    """P(Binomial(n, p) <= k). For checks that state their error rates: scipy stays out of their imports (see
    warm_up: a module-level `from scipy.stats import ...` in a check costs every run ~1 s while collecting)."""
    from scipy.stats import binom
    return float(binom.cdf(k, n, p))


def binomial_sf(k: int, n: int, p: float) -> float:
    """P(Binomial(n, p) > k)."""
    from scipy.stats import binom
    return float(binom.sf(k, n, p))


@cache
def acceptance_region(n: int, p: float, alpha: float) -> tuple[int, int]:
    """[lo, hi] such that a Binomial(n, p) count falls outside with probability <= alpha."""
    if p <= 0:
        return 0, 0
    if p >= 1:
        return n, n
    from scipy.stats import binom
    lo = int(binom.ppf(alpha / 2, n, p))
    if binom.cdf(lo - 1, n, p) > alpha / 2:  # make the lower tail strictly <= alpha/2
        lo -= 1
    hi = int(binom.isf(alpha / 2, n, p))
    while binom.sf(hi, n, p) > alpha / 2:
        hi += 1
    return max(lo, 0), min(hi, n)


@cache
def sample_size(p: float, tolerance: float, alpha: float = DEFAULT_ALPHA) -> int:
    """Requests needed so the acceptance band stays within p ± tolerance (see the module doc).
    For p = 0 or 1 every request must agree; n is then what it takes to see a counterexample
    with probability 1 - alpha when the true share is off by `tolerance`."""
    if not 0 < tolerance < 1:
        raise ValueError("tolerance must be in (0, 1)")
    if p <= 0 or p >= 1:
        return math.ceil(math.log(alpha) / math.log(1 - tolerance))

    def fits(n: int) -> bool:
        lo, hi = acceptance_region(n, p, alpha)
        return lo / n >= p - tolerance - 1e-12 and hi / n <= p + tolerance + 1e-12

    high = 16
    while not fits(high):
        high *= 2
    low = high // 2
    while low + 1 < high:  # the band narrows as n grows; find the first n that fits
        mid = (low + high) // 2
        if fits(mid):
            high = mid
        else:
            low = mid
    return high


def clopper_pearson(k: int, n: int, confidence: float) -> tuple[float, float]:
    """Exact two-sided confidence interval for a binomial share."""
    if n == 0:
        return 0.0, 1.0
    from scipy.stats import beta
    a = 1 - confidence
    lower = 0.0 if k == 0 else float(beta.ppf(a / 2, k, n - k + 1))
    upper = 1.0 if k == n else float(beta.ppf(1 - a / 2, k + 1, n - k))
    return lower, upper


@dataclass(frozen=True)
class ProportionVerdict:
    name: str
    expected: float
    observed: int
    total: int
    accept_low: int
    accept_high: int
    alpha: float
    tolerance: float
    ci_low: float
    ci_high: float

    @property
    def passed(self) -> bool:
        return self.accept_low <= self.observed <= self.accept_high

    @property
    def share(self) -> float:
        return self.observed / self.total if self.total else 0.0

    def describe(self) -> str:
        return (f"{self.name}: {self.observed}/{self.total} = {self.share:.3f} (expected {self.expected:.3f}, "
                f"accepted {self.accept_low}..{self.accept_high}; "
                f"{(1 - self.alpha) * 100:.4g}% CI [{self.ci_low:.3f}, {self.ci_high:.3f}], "
                f"false-failure rate {self.alpha:g})")

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed, "share": round(self.share, 4)}


def judge(name: str, observed: int, total: int, expected: float, alpha: float = DEFAULT_ALPHA,
          tolerance: float = 0.05) -> ProportionVerdict:
    lo, hi = acceptance_region(total, expected, alpha)
    ci = clopper_pearson(observed, total, 1 - alpha)
    return ProportionVerdict(name, expected, observed, total, lo, hi, alpha, tolerance, ci[0], ci[1])


def judge_split(counts: dict[str, int], expected: dict[str, float], alpha: float = DEFAULT_ALPHA,
                tolerance: float = 0.05) -> list[ProportionVerdict]:
    """One verdict per expected outcome (alpha per `split_alpha`), plus a zero-share verdict for
    every unexpected outcome that showed up (exactly the expected set must answer)."""
    total = sum(counts.values())
    share = split_alpha(expected, alpha)
    verdicts = [judge(name, counts.get(name, 0), total, p, share, tolerance) for name, p in expected.items()]
    verdicts += [judge(name, count, total, 0.0, share, tolerance) for name, count in counts.items()
                 if name not in expected]
    return verdicts


def split_alpha(expected: dict[str, float], alpha: float) -> float:
    """The false-failure probability each outcome's band gets. Two outcomes: the two bands reject
    the same samples (one count is the total minus the other), so each gets all of alpha; more:
    Bonferroni, alpha shared out."""
    return alpha if len(expected) <= 2 else alpha / len(expected)


def split_sample_size(expected: dict[str, float], tolerance: float, alpha: float = DEFAULT_ALPHA) -> int:
    share = split_alpha(expected, alpha)
    return max(sample_size(p, tolerance, share) for p in expected.values())

