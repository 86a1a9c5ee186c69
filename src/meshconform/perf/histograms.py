"""HDR histograms of latencies in microseconds (PyPI `hdrhistogram`): recording, merging,
encoding into results, percentiles, and the (value, count) bins the bootstrap resamples."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence

import numpy as np
from hdrh.histogram import HdrHistogram

from meshconform.perf.spec import HISTOGRAM_DIGITS, HISTOGRAM_MAX_US

PERCENTILES = (50.0, 90.0, 99.0, 99.9)


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


def decode(blob: str) -> HdrHistogram:
    histogram = new()
    if blob:
        histogram.decode_and_add(blob.encode("ascii"))
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


def summary(histogram: HdrHistogram) -> dict[str, float]:
    """min, mean, the reported percentiles and max, in microseconds (HDR's highest-equivalent values)."""
    if histogram.get_total_count() == 0:
        return {}
    out: dict[str, float] = {"min": float(histogram.get_min_value()), "mean": round(histogram.get_mean_value(), 1)}
    for p, value in zip(PERCENTILES, percentiles(histogram, PERCENTILES), strict=True):
        out[key_name(p)] = value
    out["max"] = float(histogram.get_max_value())
    return out


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
