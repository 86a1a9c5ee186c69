"""The statistics under the figures: the exact bootstrap agrees with resampling, HDR recording and
percentiles, percentiles reported only where the requests support them, their intervals as scipy's
quantile_test gives them, the block bootstrap's standard error. The comparison itself: test_perf_compare.py."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from meshconform.perf import bootstrap, histograms


def test_exact_bootstrap_matches_resampling() -> None:
    """The exact bootstrap distribution of a percentile equals brute-force resampling of the raw values
    (means within 1 % and standard deviations within 10 % for 4000 resamples)."""
    rng = np.random.default_rng(16)
    raw = rng.lognormal(np.log(2000.0), 0.45, 3000).round()
    h = histograms.new()
    histograms.record_many(h, raw)
    _, exact = bootstrap.quantile_replicates(h, 90.0, 20000, np.random.default_rng(1))
    values, counts = histograms.bins(h)
    expanded = np.repeat(values, counts)
    brute = np.sort(rng.choice(expanded, (4000, expanded.size)), axis=1)[:, int(np.ceil(0.9 * expanded.size)) - 1]
    assert exact.mean() == pytest.approx(brute.mean(), rel=0.01)
    assert exact.std() == pytest.approx(brute.std(), rel=0.10)


def test_vectorised_recording_equals_hdrhistograms_own() -> None:
    values = np.random.default_rng(17).lognormal(8, 2, 5000)
    one, many = histograms.new(), histograms.new()
    for value in values:
        histograms.record(one, value)
    histograms.record_many(many, values)
    assert one.equals(many)
    reference = histograms.new()
    assert [reference.get_highest_equivalent_value(reference.get_value_from_index(i)) for i in range(0, 17408, 97)] \
        == histograms._bin_values()[::97].tolist()
    assert (one.get_min_value(), one.get_max_value()) == (many.get_min_value(), many.get_max_value())


def test_percentiles_in_microseconds_at_hdr_resolution() -> None:
    h = histograms.new()
    for value in (150, 151, 152, 10_000, 59_999_999, 10**9):  # the last is clamped, not dropped
        histograms.record(h, value)
    summary = histograms.summary(h, every=True)
    assert summary["min"] == 150 and summary["p50"] == 152
    assert h.get_total_count() == 6
    assert histograms.decode(histograms.encode(h)).get_total_count() == 6


@pytest.mark.parametrize(("count", "reported"), [(19, []), (20, ["p50"]), (99, ["p50"]), (100, ["p50", "p90"]),
                                                 (375, ["p50", "p90"]), (1000, ["p50", "p90", "p99"]),
                                                 (10_000, ["p50", "p90", "p99", "p99_9"])])
def test_a_percentile_is_reported_only_with_ten_requests_beyond_it(count: int, reported: list[str]) -> None:
    """p99.9 of 188 requests is their maximum: below 10 values beyond it a percentile is left out of the summary,
    named with the count it needs, and given no interval."""
    h = histograms.new()
    histograms.record_many(h, np.random.default_rng(count).lognormal(8.0, 0.6, count))
    summary = histograms.summary(h)
    assert [k for k in summary if k.startswith("p")] == reported
    assert set(histograms.not_reported(count)) == {"p50", "p90", "p99", "p99_9"} - set(reported)
    assert set(histograms.intervals(h)) == set(reported)
    assert {"min", "mean", "max"} <= set(summary)


def test_percentile_intervals_are_scipys_quantile_test_intervals() -> None:
    """Computed on the histogram's bins, the interval is the one scipy.stats.quantile_test gives on every value."""
    rng = np.random.default_rng(19)
    for count in (6, 40, 375, 1000, 5000):
        h = histograms.new()
        histograms.record_many(h, rng.lognormal(8.0, 0.6, count))
        values, counts = histograms.bins(h)
        every = np.repeat(values, counts)
        for p in (50.0, 90.0, 99.0, 99.9):
            ci = stats.quantile_test(every, q=0.0, p=p / 100.0).confidence_interval(0.95)
            mine = histograms.percentile_interval(h, p)
            if np.isfinite(ci.low) and np.isfinite(ci.high):
                assert mine == (ci.low, ci.high), (count, p)
            else:
                assert mine is None, (count, p)


def test_block_bootstrap_sees_the_spread_between_seconds_that_single_requests_hide() -> None:
    """Two runs with the same requests per second; in one, whole 10-second stretches are 30 % slower or faster.
    Resampling single requests gives both the same standard error; resampling 5-second blocks gives the
    drifting run a standard error several times larger."""
    rng = np.random.default_rng(20)
    steady, drifting = [], []
    for second in range(60):
        steady.append(histograms.encode_values(rng.lognormal(np.log(5000.0), 0.5, 30)))
        offset = 0.3 if (second // 10) % 2 else -0.3
        drifting.append(histograms.encode_values(rng.lognormal(np.log(5000.0) + offset, 0.5, 30)))
    errors = {name: bootstrap.block_log_quantile(bootstrap.Seconds.from_blobs(blobs), 50.0, 5, 1000,
                                                 np.random.default_rng(1))[1]
              for name, blobs in (("steady", steady), ("drifting", drifting))}
    assert errors["drifting"] > 3 * errors["steady"], errors
