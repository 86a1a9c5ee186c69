"""Flakes, counted: the conformance suite run serially again and again on the local platform; prints each run's
outcome and time, then the count of failed runs, the tests that failed, and the median time.

Each run is a fresh `pytest conformance` process (its own platform, its own report folder). Runs stop at
--runs or at --until (a wall-clock deadline), whichever comes first; a run that fails keeps its report
folder, a passing one is removed (they are ~7 MB each).

    .venv/bin/python bench/flake_count.py --runs 50 [--until 14:25] [--out flakes.json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

REPORT_LINE = re.compile(r"meshconform: conformance report (\S+)/conformance\.yaml")
FAILED_LINE = re.compile(r"^(?:FAILED|ERROR) (\S+)", re.MULTILINE)
SUMMARY_LINE = re.compile(r"=+ (.*(?:passed|failed|error).*) in [\d.]+s")


def one_run(extra: list[str]) -> dict[str, object]:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "pytest", "conformance", "-q", "-p", "no:randomly", "-rfE", *extra],
                          capture_output=True, text=True, check=False)
    seconds = time.monotonic() - started
    output = done.stdout + done.stderr
    report = REPORT_LINE.search(output)
    summary = SUMMARY_LINE.search(output)
    failed = FAILED_LINE.findall(output)
    if report and done.returncode == 0:
        shutil.rmtree(report.group(1), ignore_errors=True)
    return {"exit": done.returncode, "seconds": round(seconds, 1), "failed": failed,
            "summary": summary.group(1) if summary else output.strip().splitlines()[-1:],
            "report": report.group(1) if report and done.returncode else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--until", help="stop starting runs after this local time (HH:MM)")
    parser.add_argument("--out", type=Path, help="write every run's record here (JSON)")
    parser.add_argument("pytest_args", nargs="*", help="passed to pytest after the suite's own options")
    args = parser.parse_args()
    deadline = None
    if args.until:
        hour, minute = map(int, args.until.split(":"))
        now = dt.datetime.now()
        deadline = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
        if deadline <= now:  # a time already past today is tomorrow's (started at 23:50 --until 00:50: one hour)
            deadline += dt.timedelta(days=1)
    runs: list[dict[str, object]] = []
    for number in range(1, args.runs + 1):
        if deadline is not None and dt.datetime.now() >= deadline:
            break
        record = one_run(args.pytest_args)
        runs.append(record)
        print(f"run {number}: exit {record['exit']} in {record['seconds']} s: {record['summary']}"
              + (f"; failed {record['failed']} (report {record['report']})" if record["exit"] else ""), flush=True)
        if args.out:
            args.out.write_text(json.dumps(runs, indent=1))
    failed_runs = [r for r in runs if r["exit"]]
    tests = Counter(test for r in failed_runs for test in r["failed"])  # type: ignore[attr-defined]
    times = [float(r["seconds"]) for r in runs]  # type: ignore[arg-type]
    print(f"{len(runs)} serial runs: {len(failed_runs)} failed; median {statistics.median(times):.1f} s "
          f"(min {min(times):.1f}, max {max(times):.1f})" if runs else "no run")
    for test, count in tests.most_common():
        print(f"  {test}: failed in {count} runs")


if __name__ == "__main__":
    main()
