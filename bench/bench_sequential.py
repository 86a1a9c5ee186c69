"""Benchmark: requests per proportion check, fixed sample (before) vs the sequential design (now).

Per check of the suite: the old fixed n; the new design's mean n on a conforming mesh and on one
off by the declared shift (exact, and simulated batch by batch); exact and simulated false-failure
and miss rates; the chance of catching a mesh off by one tolerance, old and new.

    .venv/bin/python bench/bench_sequential.py [--runs 200000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.stats import binom

from meshconform.stats.proportions import DEFAULT_ALPHA, acceptance_region, sample_size
from meshconform.stats.sequential import DEFAULT_BETA, design_for, simulate

CHECKS = [  # name, expected share, tolerance, batch (as conformance/ calls measure_shares)
    ("weighted 50/50", 0.5, 0.05, 50),
    ("weighted 80/20", 0.8, 0.05, 50),
    ("weighted 90/10", 0.9, 0.05, 50),
    ("weighted 10/90", 0.1, 0.05, 50),
    ("fault abort 30%", 0.3, 0.05, 50),
    ("fault delay 50% (±0.1)", 0.5, 0.1, 100),
    ("mirror fraction 50% (±0.1)", 0.5, 0.1, 100),
    ("exact 100% (or 0%)", 1.0, 0.05, 50),
]


def old_pass_probability(share: float, expected: float, tolerance: float) -> float:
    """The fixed design's chance of passing a mesh whose true share is `share`."""
    n = sample_size(expected, tolerance, DEFAULT_ALPHA)
    low, high = acceptance_region(n, expected, DEFAULT_ALPHA)
    return float(binom.cdf(high, n, share) - binom.cdf(low - 1, n, share))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200_000, help="simulated runs per share")
    args = parser.parse_args()
    rng = np.random.default_rng(2024)
    print(f"false-failure alpha = {DEFAULT_ALPHA:g} per check; miss beta = {DEFAULT_BETA:g} at the declared shift; "
          f"{args.runs} simulated runs per share\n")
    header = (f"{'check':28} {'old n':>6} {'max n':>6} {'mean n ok':>10} {'(sim)':>7} {'p50/p90/p99 ok':>15} "
              f"{'mean n off':>10} "
              f"{'false fail exact':>16} {'(sim)':>9} {'miss exact':>10} {'(sim)':>9} {'catch@tol old/new':>18} "
              f"{'design s':>8}")
    print(header)
    for name, share, tolerance, batch in CHECKS:
        started = time.perf_counter()
        design = design_for(share, tolerance, DEFAULT_ALPHA, DEFAULT_BETA, batch)
        built = time.perf_counter() - started
        old_n = sample_size(share, tolerance, DEFAULT_ALPHA)
        conforming = design.operating(share)
        sim = simulate(design, share, args.runs, rng)
        off = [design.operating(p) for p in design.alternatives()]
        off_sim = [simulate(design, p, args.runs, rng) for p in design.alternatives()]
        miss = max(o.accept for o in off)
        miss_sim = max(s.accepted / s.runs for s in off_sim)
        at_tol = [p for p in (share - tolerance, share + tolerance) if 0 <= p <= 1]
        catch_old = min(1 - old_pass_probability(p, share, tolerance) for p in at_tol)
        catch_new = min(design.operating(p).reject for p in at_tol)
        quantiles = "/".join(f"{q:.0f}" for q in sim.n_percentiles)
        print(f"{name:28} {old_n:6d} {design.n_max:6d} {conforming.mean_n:10.1f} {sim.mean_n:7.1f} {quantiles:>15} "
              f"{max(o.mean_n for o in off):10.1f} {conforming.reject:16.3g} {sim.rejected / sim.runs:9.2g} "
              f"{miss:10.3g} {miss_sim:9.2g} {catch_old:8.2f} / {catch_new:<7.2f} {built:8.2f}")
    print("\nmean n off: the larger mean over the declared shifted shares "
          "(expected ± 2 x tolerance; a quarter of the share near 0 or 1; ± tolerance for exact checks).")
    print("p50/p90/p99 ok: percentiles of the requests sent on a conforming mesh (simulated).")
    print("catch@tol: worst chance of failing a mesh off by one tolerance, old fixed design / new.")


if __name__ == "__main__":
    main()
