"""Mutation audit (outside CI): runs the conformance suite against each of the local platform's misbehaviours and
prints the kill rate, how many misbehaviours at least one check catches, with an exact 95 % interval.

Unlike tests/test_suite_can_fail.py, which runs only the checks each misbehaviour is *meant* to break, this runs the
whole suite in its own order and records which check failed first (`-x`; `--all-checks` runs every check and prints
the full kill matrix, much slower). One local platform serves every run; each run switches its misbehaviour on and
back off (`--mesh-platform-dir`, as test_suite_can_fail does). A misbehaviour no check catches is a survivor: a
check to write, or a misbehaviour equivalent to correct behaviour on everything the suite sends.

Run: .venv/bin/python bench/mutation_audit.py [--only a,b] [--all-checks]   (serial; the suite takes ~150 s per
survivor, much less per misbehaviour caught early)"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from meshconform import conformance
from meshconform.platform import registry
from meshconform.platform.local.platform import LocalPlatform
from meshconform.platform.local.translator import MISBEHAVIOURS
from meshconform.stats.proportions import clopper_pearson

SUITE = Path(conformance.__file__).parent


def run_one(platform: LocalPlatform, misbehaviour: str, report_dir: Path, all_checks: bool) -> tuple[list[str], float]:
    """The checks that failed with this misbehaviour switched on, and the run's seconds."""
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "pytest", str(SUITE), "-q", "-p", "no:cacheprovider",
                    "--import-mode=importlib", *([] if all_checks else ["-x"]),
                    f"--mesh-platform-dir={platform.folder}", f"--mesh-misbehave={misbehaviour}",
                    "--mesh-timeout=max_time_to_consistency=5", f"--mesh-report-dir={report_dir}"],
                   capture_output=True, text=True, timeout=1800)
    seconds = time.monotonic() - started
    report = yaml.safe_load((report_dir / "conformance.yaml").read_text())
    failed = [t["id"] for t in report["tests"] if t["result"] == "failed"]
    return failed, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated misbehaviours (default: all)")
    parser.add_argument("--all-checks", action="store_true", help="run every check, not just up to the first failure")
    args = parser.parse_args()
    chosen = [m.strip() for m in args.only.split(",") if m.strip()] or sorted(MISBEHAVIOURS)
    unknown = set(chosen) - set(MISBEHAVIOURS)
    if unknown:
        parser.error(f"unknown misbehaviours {sorted(unknown)}; known: {sorted(MISBEHAVIOURS)}")
    with tempfile.TemporaryDirectory(prefix="meshconform-audit-") as temp:
        root = Path(temp)
        platform = registry.create(registry.get("local"), registry.PlatformContext(root / "platform", root, "audit"))
        assert isinstance(platform, LocalPlatform)
        platform.up()
        results: dict[str, tuple[list[str], float]] = {}
        try:
            for name in chosen:
                results[name] = run_one(platform, name, root / name, args.all_checks)
                failed, seconds = results[name]
                print(f"{name:36s} {'killed' if failed else 'SURVIVED':8s} {seconds:6.1f}s  "
                      f"{', '.join(failed) or '-'}", flush=True)
        finally:
            platform.down()
    killed = sum(1 for failed, _ in results.values() if failed)
    low, high = clopper_pearson(killed, len(results), 0.95)
    print(f"\nkill rate: {killed}/{len(results)} = {killed / len(results):.1%} "
          f"(exact 95 % interval {low:.1%}-{high:.1%}); survivors: "
          f"{', '.join(n for n, (f, _) in results.items() if not f) or 'none'}")
    print(f"median seconds per misbehaviour: {sorted(s for _, s in results.values())[len(results) // 2]:.1f}")


if __name__ == "__main__":
    main()
