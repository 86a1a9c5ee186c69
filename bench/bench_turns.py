"""Turns on a shared mesh, measured: how much of a run with workers sharing one mesh had tests running side by side,
and what they waited for. Reads the run's `turns/turns.jsonl` (suite/turns.py): a run it makes itself (the
conformance suite with -n on `local-shared`), or any earlier run folder, a kind or cluster run's included.

    .venv/bin/python bench/bench_turns.py [--workers 2]        # runs the suite on local-shared, then reports
    .venv/bin/python bench/bench_turns.py --run-dir reports/X  # reports on a run already made

Prints: the span of the turns, the sum of the time tests held their turns, their ratio (1.0: one test at a time;
2.0: two all along), the time spent waiting, by what the waiting test claimed, and the longest waits."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from meshconform import runs
from meshconform.suite.turns import LOG

ROOT = Path(__file__).resolve().parents[1]


def run_suite(workers: int, folder: Path) -> None:
    command = [sys.executable, "-m", "pytest", str(ROOT / "conformance"), "-q", "-n", str(workers),
               "-p", "no:cacheprovider", "--mesh-platform=local-shared", f"--mesh-report-dir={folder}"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    print(done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-2000:])


def report(folder: Path) -> None:
    path = folder / "turns" / LOG
    if not path.exists():
        raise SystemExit(f"{path}: no turns were taken (not a run with -n on a shared platform)")
    turns = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    start = min(t["began"] - t["waited_s"] for t in turns)
    end = max(t["began"] + t["held_s"] for t in turns)
    held = sum(t["held_s"] for t in turns)
    waits: dict[str, float] = defaultdict(float)
    for turn in turns:
        waits[turn["claims"]] += turn["waited_s"]
    print(f"{len(turns)} turns over {end - start:.1f} s; held {held:.1f} s in all: "
          f"{held / (end - start):.2f} tests at a time on average")
    print(f"waited {sum(waits.values()):.1f} s in all; by what the waiting test claimed:")
    for claims, seconds in sorted(waits.items(), key=lambda item: -item[1])[:10]:
        print(f"  {seconds:6.1f} s  {claims}")
    print("longest waits:")
    for turn in sorted(turns, key=lambda t: -t["waited_s"])[:5]:
        print(f"  {turn['waited_s']:6.2f} s  {turn['holder']}  ({turn['claims']})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, help="report on this run folder instead of making a run")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if args.run_dir:
        report(args.run_dir)
        return
    folder = runs.new_run_dir("turns")  # the run's reports stay there, as any run's do
    run_suite(args.workers, folder)
    report(folder)
    print(f"run folder: {folder}")


if __name__ == "__main__":
    main()
