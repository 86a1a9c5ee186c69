"""Bootstrap confidence intervals for differences of latency percentiles from HDR histograms (the
raw values at the histogram's 0.1 % resolution; the bootstrap distribution of a percentile is
computed exactly, see `quantile_replicates`), and for differences of error rates.

Known limits, stated in results: the bootstrap of a high percentile needs enough samples above it
(p99.9 wants tens of thousands of requests), and it sees only the noise within a run; the
regression threshold absorbs the run-to-run drift that a single run cannot show."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from hdrh.histogram import HdrHistogram
from scipy import stats

from meshconform.perf import histograms

RESAMPLES = 20000


@dataclass(frozen=True)
class Interval:
    estimate: float  # current - reference
    low: float
    high: float


def quantile_replicates(histogram: HdrHistogram, percentile: float, resamples: int,
                        rng: np.random.Generator) -> tuple[float, np.ndarray]:
    """(point estimate, bootstrap replicates) of one percentile.

    The percentile is the k-th smallest of n values (k = round(p n / 100), as HDR reports it). In a
    bootstrap resample it is at most bin value x_j exactly when at least k of the n draws fall at or
    below x_j, so P(q* <= x_j) = P(Binomial(n, F(x_j)) >= k): the whole bootstrap distribution, with no
    resampling error; replicates are drawn from it by inversion."""
    values, counts = histograms.bins(histogram)
    n = int(counts.sum())
    if n == 0:
        raise ValueError("empty histogram: nothing to compare")
    k = histograms.rank(percentile, n)
    cdf = np.cumsum(counts) / n
    distribution = stats.binom.sf(k - 1, n, cdf)  # P(q* <= values[j]), non-decreasing, ends at 1
    distribution[-1] = 1.0
    point = float(values[min(int(np.searchsorted(np.cumsum(counts), k)), len(values) - 1)])
    draws = np.searchsorted(distribution, rng.random(resamples), side="left")
    return point, values[np.minimum(draws, len(values) - 1)]


def percentile_differences(current: HdrHistogram, reference: HdrHistogram, percentiles: Sequence[float],
                           confidence: float = 0.95, resamples: int = RESAMPLES,
                           seed: int | None = None) -> dict[float, Interval]:
    """Two-sided percentile-bootstrap interval of q_p(current) - q_p(reference), per percentile
    (the two runs resampled independently)."""
    rng = np.random.default_rng(seed)
    tail = (1.0 - confidence) / 2.0
    out = {}
    for p in percentiles:
        point_c, reps_c = quantile_replicates(current, p, resamples, rng)
        point_r, reps_r = quantile_replicates(reference, p, resamples, rng)
        diffs = reps_c - reps_r
        out[p] = Interval(point_c - point_r, float(np.quantile(diffs, tail)), float(np.quantile(diffs, 1.0 - tail)))
    return out


def rate_difference(errors_c: int, n_c: int, errors_r: int, n_r: int, confidence: float = 0.95,
                    resamples: int = RESAMPLES, seed: int | None = None) -> Interval:
    """Parametric bootstrap interval of the difference of two error rates."""
    rng = np.random.default_rng(seed)
    rate_c, rate_r = errors_c / max(1, n_c), errors_r / max(1, n_r)
    diffs = rng.binomial(n_c, rate_c, resamples) / max(1, n_c) - rng.binomial(n_r, rate_r, resamples) / max(1, n_r)
    tail = (1.0 - confidence) / 2.0
    return Interval(rate_c - rate_r, float(np.quantile(diffs, tail)), float(np.quantile(diffs, 1.0 - tail)))


@dataclass(frozen=True)
class Seconds:
    """One run's latencies of one series, second by second (by intended send time): `counts[i, j]` requests of
    second i fell in the bin of value `values[j]`. Seconds without requests are left out."""

    values: np.ndarray  # ascending bin values (us)
    counts: np.ndarray  # seconds x bins

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    @classmethod
    def from_blobs(cls, blobs: Sequence[str]) -> Seconds:
        decoded = [histograms.indexed_counts(histograms.decode(blob)) for blob in blobs if blob]
        if not decoded:
            return cls(np.zeros(0), np.zeros((0, 0), dtype=np.int64))
        indexes = np.unique(np.concatenate([i for i, _ in decoded]))
        counts = np.zeros((len(decoded), indexes.size), dtype=np.int64)
        for row, (index, count) in enumerate(decoded):
            counts[row, np.searchsorted(indexes, index)] = count
        return cls(histograms.bin_values(indexes), counts)

    def blocks(self, seconds: int) -> np.ndarray:
        """Consecutive seconds summed into blocks of `seconds` (a last, shorter block is kept)."""
        rows = self.counts.shape[0]
        starts = np.arange(0, rows, max(1, seconds))
        return np.add.reduceat(self.counts, starts, axis=0) if rows else self.counts


def block_log_quantile(sample: Seconds, percentile: float, block_s: int, resamples: int,
                       rng: np.random.Generator) -> tuple[float, float]:
    """(log of the run's percentile, its standard error) by a block bootstrap: the run's blocks of `block_s`
    seconds are drawn with replacement, so the spread between seconds (a neighbour's burst, a slow minute)
    counts, which resampling single requests would treat as independent noise and miss."""
    blocks = sample.blocks(block_s)
    count = blocks.shape[0]
    point = float(histograms.quantile_from_counts(sample.values, blocks.sum(axis=0), percentile)[0])
    if count < 2:
        return float(np.log(point)), float("inf")
    multiplicities = rng.multinomial(count, np.full(count, 1.0 / count), size=resamples)
    replicates = histograms.quantile_from_counts(sample.values, multiplicities @ blocks, percentile)
    return float(np.log(point)), float(np.std(np.log(replicates), ddof=1))
