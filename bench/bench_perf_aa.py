"""A/A before A/B: how often `meshconform perf --baseline` says REGRESSION between separate runs of the same
configuration on this machine (it should not), whether it still sees the fault file's 20 ms delay on half
of the details calls (it should), and the run-to-run spread that the comparison assumes without history.

It runs `meshconform perf` as a user would (a platform brought up and taken down per run, default settings
or --preset), --aa times plain and --faults times with bench/perf-fault-details-delay.yaml, the faults spread
among the plain runs, each in a reports folder of its own, with `uptime`'s load before and after each. Then:

1. A/A: every plain run compared with the first valid plain run (the "Done when" check: none may say
   REGRESSION), and every ordered pair of plain runs (baseline earlier, current later): the false-alarm share;
   both for all runs and for valid runs only (an invalid run is refused as a baseline by the CLI).
2. Faults: each fault run compared with the first valid plain run: which page series are worse.
3. The run-to-run spread: per percentile, the SD of log(percentile) across the valid plain runs less what
   their own block-bootstrap error explains (the value for spec.RUN_SPREAD), and the smallest detectable
   change the comparisons state.
4. Send lateness during the runs (the generator's own, per phase), the idle figure when the machine is quiet.

Run (about 2 min per run with the default preset, ~30 min for 11 + 3 runs; one at a time, niced):
    nice -n 19 .venv/bin/python bench/bench_perf_aa.py --aa 11 --faults 3
On a shared machine, each run waiting for a quiet moment and its turn on the long-jobs lock (resumable: again
with the same --out keeps the runs already made):
    nice -n 19 .venv/bin/python bench/bench_perf_aa.py --out DIR --below 2 --lock /path/to/fullrun.lock
Re-analyse runs already made (no new runs): .venv/bin/python bench/bench_perf_aa.py --analyse DIR"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import itertools
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from meshconform import runs
from meshconform.perf import baseline, histograms, result

FAULT = Path(__file__).parent / "perf-fault-details-delay.yaml"
PAGE_SERIES = ("ingress/page", "ingress/page-signed-in", "in-mesh/page", "mesh/page")


def _load() -> float:
    return os.getloadavg()[0]


def _politely(lock: Path | None, below: float | None) -> contextlib.AbstractContextManager[object]:
    """Wait until the 1-minute load average is under `below`, then hold `lock` (flock) for one run: on a shared
    machine, long jobs take turns through one lock."""
    while below is not None and _load() >= below:
        time.sleep(30)
    if lock is None:
        return contextlib.nullcontext()
    handle = open(lock, "a")  # noqa: SIM115 (closed by the context below)
    fcntl.flock(handle, fcntl.LOCK_EX)
    return contextlib.closing(handle)


def make_runs(out: Path, aa: int, faults: int, preset: str, lock: Path | None = None,
              below: float | None = None) -> None:
    """The runs, in an order that spreads the faults among the plain runs (a time trend hits both alike)."""
    order = ["A"] * aa
    for i in range(faults):
        order.insert(1 + (i + 1) * len(order) // (faults + 1), "F")
    log = out / "runs.log"
    for number, kind in enumerate(order, 1):
        label = f"{number:02d}-{kind}"
        if any((out / label).glob(f"*/{result.RESULT_NAME}")):
            continue  # made by an earlier, interrupted invocation (--out the same folder)
        argv = [sys.executable, "-m", "meshconform.cli", "perf", "--preset", preset]
        if kind == "F":
            argv += ["-f", str(FAULT)]
        # A state folder of its own: the run brings its own platform up (never attaches to one someone left up).
        env = {**os.environ, "MESHCONFORM_REPORTS": str(out / label), runs.STATE_DIR_ENV: str(out / label / "state")}
        with _politely(lock, below):
            before, started = _load(), time.monotonic()
            done = subprocess.run(argv, env=env, text=True, capture_output=True, check=False)
        (out / f"{label}.out").write_text(done.stdout + done.stderr)
        line = (f"{label} exit {done.returncode} {time.monotonic() - started:.0f}s load {before:.2f} -> "
                f"{_load():.2f}")
        print(line, flush=True)
        with open(log, "a") as handle:
            handle.write(line + "\n")


def _runs(out: Path) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for folder in sorted(p for p in out.iterdir() if p.is_dir()):
        paths = list(folder.glob(f"*/{result.RESULT_NAME}"))
        if paths:
            found.append((folder.name, result.read(paths[0])))
    return found


def _regressions(current: dict[str, Any], reference: dict[str, Any]) -> list[str]:
    comparison = baseline.compare(current, [reference])
    return [f"{v.series} {v.metric} {v.change:+.0%}" for v in comparison.verdicts if v.outcome == "worse"]


def analyse(out: Path) -> None:
    found = _runs(out)
    plain = [(label, d) for label, d in found if label.endswith("A")]
    faults = [(label, d) for label, d in found if label.endswith("F")]
    print(f"\n{len(plain)} plain and {len(faults)} fault runs in {out}")
    for label, document in found:
        phases = {p["name"]: p["generator"]["send_lateness_us"] for p in document["phases"]}
        late = ", ".join(f"{name} " + " ".join(f"{m} {s[m]:.0f}" for m in ("p50", "p90", "p99") if m in s) + " us"
                         for name, s in phases.items())
        load = document["environment"]["machine"]["load_average"][0]
        print(f"  {label} {'valid  ' if document['valid'] else 'INVALID'} load {load:5.2f}  send lateness: {late}")
    valid = [(label, d) for label, d in plain if d["valid"]]
    first = valid[0] if valid else (plain[0] if plain else None)
    if first is None:
        print("no plain run")
        return
    print(f"\n1. A/A against the first {'valid ' if valid else ''}plain run {first[0]}:")
    for label, document in plain:
        if label == first[0]:
            continue
        worse = _regressions(document, first[1])
        print(f"  {label} ({'valid' if document['valid'] else 'INVALID'}): "
              + ("REGRESSION " + ", ".join(worse) if worse else "no regression"))
    for name, pool in (("all plain runs", plain), ("valid plain runs", valid)):
        pairs = list(itertools.combinations(pool, 2))
        alarms = sum(bool(_regressions(later[1], earlier[1])) for earlier, later in pairs)
        if pairs:
            print(f"  every ordered pair of {name}: {alarms} of {len(pairs)} said REGRESSION "
                  f"({alarms / len(pairs):.1%})")
    print(f"\n2. Faults against {first[0]}:")
    for label, document in faults:
        worse = _regressions(document, first[1])
        pages = sorted({w.split()[0] for w in worse} & set(PAGE_SERIES))
        print(f"  {label} ({'valid' if document['valid'] else 'INVALID'}): page series flagged: "
              f"{', '.join(pages) or 'NONE'}; all: {', '.join(worse) or '-'}")
    spread(valid or plain, first[1])


def spread(pool: list[tuple[str, dict[str, Any]]], reference: dict[str, Any]) -> None:
    """Run-to-run SD of log(percentile) beyond the runs' own block-bootstrap error, per percentile; the false-alarm
    rate a pair comparison would have if those were the true spreads, for the default and other assumed spreads."""
    rng = np.random.default_rng(0)
    policy = baseline.Policy()
    print(f"\n3. Run-to-run spread over {len(pool)} runs (SD of log percentile, less the runs' own sampling error):")
    if len(pool) < 3:
        print("  fewer than 3 runs: not estimated")
        return
    names = sorted({s["name"] for _, d in pool for s in d["results"] if "step" not in s})
    measured: list[tuple[float, float]] = []  # (run-to-run SD, own error) per judged metric
    for p in (50.0, 90.0, 99.0):
        extra = []
        for name in names:
            entries = [next((s for s in d["results"] if s["name"] == name), None) for _, d in pool]
            if any(e is None or not histograms.supported(e["requests"], p) for e in entries):
                continue
            pairs = [baseline.log_percentile(e, p, policy, rng) for e in entries if e]
            logs, errors = np.array(pairs).T
            excess = float(np.var(logs, ddof=1) - np.mean(errors ** 2))
            extra.append(excess)
            measured.append((math.sqrt(max(excess, 0.0)), math.sqrt(float(np.mean(errors ** 2)))))
            print(f"  {name:24s} {histograms.key_name(p):5s} SD {np.std(logs, ddof=1):.3f}, own error "
                  f"{math.sqrt(np.mean(errors ** 2)):.3f}, run-to-run {math.sqrt(max(excess, 0.0)):.3f}")
        if extra:
            overall = math.sqrt(max(float(np.mean(extra)), 0.0))
            print(f"  {histograms.key_name(p)}: run-to-run SD over the series {overall:.3f}")
    comparison = baseline.compare(pool[-1][1], [reference])
    implied(measured, sum(v.outcome not in baseline.NOT_JUDGED for v in comparison.verdicts), policy)
    detect = {}
    for verdict in comparison.verdicts:
        if verdict.outcome not in baseline.NOT_JUDGED and verdict.metric != "error_rate":
            detect.setdefault(verdict.metric, []).append(verdict.detectable)
    print(f"  smallest detectable change (pair comparison at --run-spread {policy.run_spread:.0%}, median over the "
          "series): " + ", ".join(f"{m} {float(np.median(v)):+.0%}" for m, v in sorted(detect.items())))


def implied(measured: list[tuple[float, float]], metrics: int, policy: baseline.Policy) -> None:
    """If each metric's true run-to-run SD were the one measured, how often would a pair comparison that assumes a
    given spread say REGRESSION between two runs of one configuration (baseline.pair_false_alarm_rate)? Point
    estimates from few runs: a rough guide, not a proof."""
    print(f"  a pair comparison's A/A false-alarm rate if these were the true spreads ({metrics} metrics, alpha "
          f"{policy.alpha:g}; sum over metrics):")
    for assumed in sorted({0.10, 0.15, 0.20, 0.25, policy.run_spread}):
        rate = baseline.pair_false_alarm_rate(measured, assumed, metrics, policy.alpha)
        print(f"    --run-spread {assumed:.0%}{' (default)' if assumed == policy.run_spread else ''}: {rate:.1%}")
    print(f"    the smallest assumed spread that keeps it at or under {policy.alpha:g}: "
          f"{baseline.smallest_safe_spread(measured, metrics, policy.alpha):.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--aa", type=int, default=11, help="plain runs (the first is the baseline)")
    parser.add_argument("--faults", type=int, default=3, help="runs with the fault file")
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--analyse", type=Path, help="only analyse the runs in this folder")
    parser.add_argument("--out", type=Path, help="the folder for the runs (again: runs already there are kept)")
    parser.add_argument("--lock", type=Path, help="hold this file locked (flock) during each run")
    parser.add_argument("--below", type=float, help="start each run only when the 1-minute load is under this")
    args = parser.parse_args()
    if args.analyse:
        analyse(args.analyse)
        return
    out = args.out or runs.new_run_dir("bench-perf-aa")
    out.mkdir(parents=True, exist_ok=True)
    print(f"{args.aa} plain + {args.faults} fault runs (--preset {args.preset}) into {out}; load {_load():.2f}",
          flush=True)
    make_runs(out, args.aa, args.faults, args.preset, args.lock, args.below)
    analyse(out)
    (out / "done.json").write_text(json.dumps({"aa": args.aa, "faults": args.faults, "preset": args.preset}))


if __name__ == "__main__":
    main()
