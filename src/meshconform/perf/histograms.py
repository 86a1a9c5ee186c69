"""HDR histograms of latencies in microseconds (PyPI `hdrhistogram`): recording, merging,
encoding into results, percentiles, and the (value, count) bins the bootstrap resamples."""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence

import numpy as np
from hdrh.histogram import HdrHistogram
from scipy import stats

from meshconform.perf.spec import HISTOGRAM_DIGITS, HISTOGRAM_MAX_US

PERCENTILES = (50.0, 90.0, 99.0, 99.9)
MIN_TAIL = 10  # a percentile is reported (and judged) only with at least this many values beyond it: p50 needs
# 20 values, p90 100, p99 1000, p99.9 10 000. Below that its estimate is one of the last few values, and a
# bootstrap of it can only return those values (an extreme order statistic is not bootstrap-consistent).
CONFIDENCE = 0.95  # of the distribution-free interval reported beside each percentile


def supported(count: int, percentile: float) -> bool:
    """Whether `count` values support reporting this percentile (MIN_TAIL beyond it)."""
    return count * (1.0 - percentile / 100.0) >= MIN_TAIL - 1e-6  # 1 - 99.9/100 is not exactly 0.001


def needed(percentile: float) -> int:
    """How many values this percentile needs to be reported."""
    return math.ceil(round(MIN_TAIL / (1.0 - percentile / 100.0), 6))


def percentile_interval(histogram: HdrHistogram, percentile: float,
                        confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """The distribution-free confidence interval of a percentile: the order statistics whose ranks the binomial
    distribution gives (Conover; the interval scipy.stats.quantile_test's confidence_interval returns, computed on
    the histogram's bins instead of every value: tests check they agree), at HDR resolution. None when the
    sample is too small for either bound."""
    values, counts = bins(histogram)
    n = int(counts.sum())
    if n == 0 or not 0.0 < percentile < 100.0:
        return None
    ranks = stats.binom(n, percentile / 100.0)
    tail = (1.0 - confidence) / 2.0
    low_index, high_index = int(ranks.ppf(tail)) - 1, int(ranks.isf(tail))  # 0-based, as scipy's
    if low_index < 0 or high_index >= n:
        return None
    cumulative = np.cumsum(counts)
    low, high = np.searchsorted(cumulative, [low_index, high_index], side="right")  # bins holding those values
    return float(values[low]), float(values[high])


def new() -> HdrHistogram:
    return HdrHistogram(1, HISTOGRAM_MAX_US, HISTOGRAM_DIGITS)


def record(histogram: HdrHistogram, value_us: int) -> None:
    """Out-of-range values are clamped: hdrhistogram would drop them silently."""
    histogram.record_value(min(max(1, round(value_us)), HISTOGRAM_MAX_US))


def record_many(histogram: HdrHistogram, values_us: Sequence[float] | np.ndarray) -> None:
    """Record many values at once (vectorised: hdrhistogram's record_value is pure Python, ~50 us a
    call on a busy machine, which would cost the load generator most of its ceiling)."""
    if len(values_us) == 0:
        return
    values = np.clip(np.rint(np.asarray(values_us, dtype=float)), 1, HISTOGRAM_MAX_US).astype(np.int64)
    indexes = np.searchsorted(_bin_values(), values, side="left")  # first bin whose top is >= the value
    np.add.at(np.ctypeslib.as_array(histogram.counts), indexes, 1)
    histogram.total_count += len(values)
    histogram.min_value = min(histogram.min_value, int(values.min()))
    histogram.max_value = max(histogram.max_value, int(values.max()))


def encode(histogram: HdrHistogram) -> str:
    return str(histogram.encode().decode("ascii"))


def encode_values(values_us: Sequence[float] | np.ndarray) -> str:
    """A histogram of these values, encoded ("" for none)."""
    if len(values_us) == 0:
        return ""
    histogram = new()
    record_many(histogram, values_us)
    return encode(histogram)


def decode(blob: str) -> HdrHistogram:
    if not blob:
        return new()
    # one histogram straight from the blob (decode_and_add would decode into a second one and add it)
    histogram: HdrHistogram = HdrHistogram.decode(blob.encode("ascii"))
    return histogram


def merged(blobs: Iterable[str]) -> HdrHistogram:
    total = new()
    for blob in blobs:
        if blob:
            total.decode_and_add(blob.encode("ascii"))
    return total


def key_name(percentile: float) -> str:
    """50.0 -> 'p50', 99.9 -> 'p99_9'."""
    text = f"{percentile:g}".replace(".", "_")
    return f"p{text}"


def summary(histogram: HdrHistogram, every: bool = False) -> dict[str, float]:
    """min, mean, the reported percentiles and max, in microseconds (HDR's highest-equivalent values). A
    percentile the count does not support (see `supported`) is left out unless `every`."""
    count = histogram.get_total_count()
    if count == 0:
        return {}
    out: dict[str, float] = {"min": float(histogram.get_min_value()), "mean": round(histogram.get_mean_value(), 1)}
    for p, value in zip(PERCENTILES, percentiles(histogram, PERCENTILES), strict=True):
        if every or supported(count, p):
            out[key_name(p)] = value
    out["max"] = float(histogram.get_max_value())
    return out


def intervals(histogram: HdrHistogram) -> dict[str, list[float]]:
    """The confidence interval of each reported percentile (see `percentile_interval`)."""
    count = histogram.get_total_count()
    out = {}
    for p in PERCENTILES:
        if supported(count, p) and (interval := percentile_interval(histogram, p)) is not None:
            out[key_name(p)] = [interval[0], interval[1]]
    return out


def not_reported(count: int) -> dict[str, int]:
    """The percentiles left out for too few values, with the count each needs."""
    return {key_name(p): needed(p) for p in PERCENTILES if not supported(count, p)}


@functools.cache
def _bin_values() -> np.ndarray:
    """Highest-equivalent value of every counts index (the same for every histogram made by `new`),
    computed with HdrHistogram's index layout in numpy (its per-index Python calls take ~1 s, which
    would freeze a load generator's event loop)."""
    h = new()
    index = np.arange(h.counts_len, dtype=np.int64)
    bucket = (index >> h.sub_bucket_half_count_magnitude) - 1
    sub_bucket = (index & (h.sub_bucket_half_count - 1)) + h.sub_bucket_half_count
    first = bucket < 0
    sub_bucket[first] -= h.sub_bucket_half_count
    bucket[first] = 0
    lowest = sub_bucket << (bucket + h.unit_magnitude)
    # The equivalent range of a value is 1 << (unit magnitude + its bucket), one bucket up at the top edge.
    adjusted = bucket + (sub_bucket >= h.sub_bucket_count)
    top: np.ndarray = (lowest + (np.int64(1) << (h.unit_magnitude + adjusted)) - 1).astype(float)
    return top


def warm() -> None:
    """Build the bin table now (load generators call this before sending)."""
    _bin_values()


def bins(histogram: HdrHistogram) -> tuple[np.ndarray, np.ndarray]:
    """(values, counts) of the non-empty bins, ascending; values are HDR's highest-equivalent value."""
    counts = np.ctypeslib.as_array(histogram.counts).astype(np.int64)
    nonzero = np.flatnonzero(counts)
    return _bin_values()[nonzero], counts[nonzero]


def bin_values(indexes: np.ndarray) -> np.ndarray:
    """The highest-equivalent values of these counts indexes."""
    values: np.ndarray = _bin_values()[indexes]
    return values


def indexed_counts(histogram: HdrHistogram) -> tuple[np.ndarray, np.ndarray]:
    """(counts indexes, counts) of the non-empty bins, ascending: histograms made by `new` share the indexes."""
    counts = np.ctypeslib.as_array(histogram.counts)
    nonzero = np.flatnonzero(counts)
    return nonzero, counts[nonzero].astype(np.int64)


def percentiles(histogram: HdrHistogram, ps: Sequence[float] | np.ndarray) -> list[float]:
    """Values at the percentiles, as HdrHistogram's get_value_at_percentile gives them (its own is a
    Python loop over every bin, ~10 ms a call)."""
    values, counts = bins(histogram)
    if counts.size == 0:
        return [0.0 for _ in ps]
    return [float(quantile_from_counts(values, counts, p)[0]) for p in ps]


def percentile(histogram: HdrHistogram, p: float) -> float:
    return percentiles(histogram, [p])[0]


def rank(percentile: float, total: int) -> int:
    """Which order statistic HDR reports as the percentile: round(p/100 * n), at least the first."""
    return max(1, int(percentile * total / 100.0 + 0.5))


def quantile_from_counts(values: np.ndarray, counts: np.ndarray, percentile: float) -> np.ndarray:
    """Percentile over bins, as HDR computes it (the value at which the cumulative count reaches
    rank(p, n)); `counts` may be 2-D (one row per bootstrap replicate)."""
    counts = np.atleast_2d(counts)
    total = counts.sum(axis=1)
    target = np.maximum(1, np.floor(percentile / 100.0 * total + 0.5)).astype(np.int64)
    cumulative = np.cumsum(counts, axis=1)
    index = (cumulative < target[:, None]).sum(axis=1)
    chosen: np.ndarray = values[np.minimum(index, len(values) - 1)]
    return chosen
