"""The baseline comparison's statistics: how often it cries wolf on identical distributions, how
often it sees a real shift, and that its exact bootstrap agrees with resampling."""

from __future__ import annotations

import numpy as np
import pytest

from meshconform.perf import baseline, bootstrap, histograms

TRIALS = 100
SAMPLES = 3000
RESAMPLES = 2000  # per comparison: tails of 10 draws at the per-metric 99 % level


def _histogram(rng: np.random.Generator, scale: float = 1.0, n: int = SAMPLES) -> object:
    """Latencies like a service's: log-normal around 2 ms with a long right tail."""
    h = histograms.new()
    histograms.record_many(h, rng.lognormal(np.log(2000.0), 0.45, n) * scale)
    return h


def _document(h: object, name: str = "ingress/page", errors: int = 0) -> dict:
    return {"id": name, "results": [{"name": name, "requests": h.get_total_count(), "errors": errors,  # type: ignore[attr-defined]
                                     "error_rate": errors / h.get_total_count(),  # type: ignore[attr-defined]
                                     "histogram": histograms.encode(h)}]}  # type: ignore[arg-type]


def test_false_alarm_rate_on_identical_distributions() -> None:
    """No tolerance at all (pure statistics): a family of 5 metrics at alpha 0.05 may raise a false
    alarm (better or worse) in at most 5 % of comparisons. With a fixed seed the count is fixed; the
    bound 12/100 is what a true 5 % rate stays under with probability 0.998."""
    rng = np.random.default_rng(11)
    strict = baseline.Thresholds(relative=0.0, floor_us=0.0, error_rate=0.0, alpha=0.05)
    alarms = 0
    for trial in range(TRIALS):
        verdicts = baseline.compare(_document(_histogram(rng)), _document(_histogram(rng)), strict, seed=trial,
                                    resamples=RESAMPLES)
        alarms += any(v.outcome in ("better", "worse") for v in verdicts)
    assert alarms <= 12, f"{alarms}/{TRIALS} false alarms on identical distributions"


def test_default_thresholds_never_flag_identical_distributions() -> None:
    rng = np.random.default_rng(12)
    for trial in range(30):
        verdicts = baseline.compare(_document(_histogram(rng)), _document(_histogram(rng)), seed=trial,
                                    resamples=RESAMPLES)
        assert not [v.line() for v in verdicts if v.outcome in ("better", "worse")]


def test_power_on_a_20_percent_shift() -> None:
    """Everything 20 % slower (above the default 10 % threshold): p50 and p90 must be flagged worse
    in at least 95 of 100 runs of 3000 samples each."""
    rng = np.random.default_rng(13)
    detected = {"p50": 0, "p90": 0}
    for trial in range(TRIALS):
        verdicts = baseline.compare(_document(_histogram(rng, 1.2)), _document(_histogram(rng)), seed=trial,
                                    resamples=RESAMPLES)
        for v in verdicts:
            if v.metric in detected and v.outcome == "worse":
                detected[v.metric] += 1
        assert len(verdicts) == 5
    assert detected["p50"] >= 95 and detected["p90"] >= 95, detected


def test_extreme_percentiles_need_enough_samples() -> None:
    """With 3000 requests only ~3 lie above p99.9: it is reported but not judged."""
    rng = np.random.default_rng(18)
    verdicts = baseline.compare(_document(_histogram(rng, 3.0)), _document(_histogram(rng)), seed=1,
                                resamples=RESAMPLES)
    outcomes = {v.metric: v.outcome for v in verdicts}
    assert outcomes["p99_9"] == "too few" and outcomes["p99"] == "worse"


def test_faster_is_better_not_worse() -> None:
    rng = np.random.default_rng(14)
    verdicts = baseline.compare(_document(_histogram(rng, 0.7)), _document(_histogram(rng)), seed=1)
    outcomes = {v.metric: v.outcome for v in verdicts}
    assert outcomes["p50"] == "better" and outcomes["p90"] == "better"
    assert not baseline.summary(verdicts, {"results": []}, {"id": "b", "results": []})["regression"]


def test_error_rate_rise_is_worse() -> None:
    rng = np.random.default_rng(15)
    h = _histogram(rng)
    verdicts = baseline.compare(_document(h, errors=200), _document(h, errors=0), seed=1)
    assert {v.metric: v.outcome for v in verdicts}["error_rate"] == "worse"


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
    summary = histograms.summary(h)
    assert summary["min"] == 150 and summary["p50"] == 152
    assert h.get_total_count() == 6
    assert histograms.decode(histograms.encode(h)).get_total_count() == 6
