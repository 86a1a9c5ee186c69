"""Run every ported Istio case on one local platform; print each verdict and the figure.

    python -m meshconform.fidelity            # run and report (exit 1 if a case is off its record)
    python -m meshconform.fidelity --update   # also rewrite src/meshconform/platform/local/fidelity.json"""

from __future__ import annotations

import argparse
import json
import sys
import time

from meshconform import runs
from meshconform.fidelity.cases import load_cases
from meshconform.fidelity.runner import (
    CASES_DIR,
    SUMMARY,
    FidelityRun,
    checked_divergences,
    summary,
    write_summary,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m meshconform.fidelity", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # the examples as lines
    parser.add_argument("--update", action="store_true", help=f"write the figure to {SUMMARY}")
    parser.add_argument("-k", dest="only", default="", help="run only scenarios whose id contains this")
    args = parser.parse_args(argv)
    cases = load_cases(CASES_DIR)
    divergences = checked_divergences(cases)  # against every case, then narrowed to those run
    if args.only:
        cases.scenarios = [s for s in cases.scenarios if args.only in s.id]
        divergences = {k: v for k, v in divergences.items() if k in {c.id for c in cases.calls}}
    run = FidelityRun(cases, runs.new_run_dir("fidelity"), divergences)
    started = time.monotonic()
    try:
        run.start()
        up = time.monotonic() - started
        results = run.run_all()
    finally:
        run.stop()
    for result in results:
        mark = "ok  " if result.agrees else ("KNOWN" if result.as_recorded else "FAIL")
        print(f"{mark} {result.explain() if not result.agrees else result.call.id}")
    figure = summary(cases, results)
    print(json.dumps({k: figure[k] for k in ("in_scope", "agreed", "statement")}, indent=1))
    print(f"platform up in {up:.1f} s; {len(results)} cases in {time.monotonic() - started:.1f} s; "
          f"verdicts and evidence in {run.run_dir / 'results.json'}")
    if args.update:
        if args.only:
            print("--update needs the full set of cases (no -k)", file=sys.stderr)
            return 2
        write_summary(figure)
        print(f"wrote {SUMMARY}")
    return 0 if all(r.as_recorded for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
