"""HDR histograms of latencies in microseconds (PyPI `hdrhistogram`): recording, merging,
encoding into results, percentiles, and the (value, count) bins the bootstrap resamples."""

from __future__ import annotations

import functools
from collections.abc import Iterable

import numpy as np
from hdrh.histogram import HdrHistogram

from meshconform.perf.spec import HISTOGRAM_DIGITS, HISTOGRAM_MAX_US

PERCENTILES = (50.0, 90.0, 99.0, 99.9)


def new() -> HdrHistogram:
    return HdrHistogram(1, HISTOGRAM_MAX_US, HISTOGRAM_DIGITS)


def record(histogram: HdrHistogram, value_us: int) -> None:
    """Out-of-range values are clamped: hdrhistogram would drop them silently."""
    histogram.record_value(min(max(1, int(value_us)), HISTOGRAM_MAX_US))


def encode(histogram: HdrHistogram) -> str:
    return histogram.encode().decode("ascii")


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
    for p in PERCENTILES:
        out[key_name(p)] = float(histogram.get_value_at_percentile(p))
    out["max"] = float(histogram.get_max_value())
    return out


@functools.cache
def _bin_values() -> np.ndarray:
    """Highest-equivalent value of every counts index (the same for every histogram made by `new`)."""
    h = new()
    return np.array([h.get_highest_equivalent_value(h.get_value_from_index(i)) for i in range(h.counts_len)],
                    dtype=float)


def bins(histogram: HdrHistogram) -> tuple[np.ndarray, np.ndarray]:
    """(values, counts) of the non-empty bins, ascending; values are HDR's highest-equivalent value."""
    counts = np.ctypeslib.as_array(histogram.counts).astype(np.int64)
    nonzero = np.flatnonzero(counts)
    return _bin_values()[nonzero], counts[nonzero]


def quantile_from_counts(values: np.ndarray, counts: np.ndarray, percentile: float) -> np.ndarray:
    """Percentile over bins, as HDR computes it (the value at which the cumulative count reaches
    ceil(p/100 * n)); `counts` may be 2-D (one row per bootstrap replicate)."""
    counts = np.atleast_2d(counts)
    total = counts.sum(axis=1)
    target = np.maximum(1, np.ceil(percentile / 100.0 * total)).astype(np.int64)
    cumulative = np.cumsum(counts, axis=1)
    index = (cumulative < target[:, None]).sum(axis=1)
    return values[np.minimum(index, len(values) - 1)]
