"""Every ported Istio simulation case, on ONE local platform with real traffic (about a minute).

One test item on purpose: the cases share a platform (bring-up ~10 s, a scenario ~1 s), and pytest-xdist
would otherwise start one per worker and run the set twice. The failure message names every case off its
record with what istiod gives, what the local platform gave and the evidence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from meshconform import runs
from meshconform.fidelity.cases import load_cases
from meshconform.fidelity.runner import CASES_DIR, SUMMARY, FidelityRun, summary


@pytest.mark.slow
def test_istio_simulation_cases_on_the_local_platform() -> None:
    cases = load_cases(CASES_DIR)
    run = FidelityRun(cases, runs.new_run_dir("fidelity"))
    try:
        run.start()
        results = run.run_all()
    finally:
        run.stop()
    off_record = [r.explain() for r in results if not r.as_recorded]
    assert not off_record, f"{len(off_record)} Istio case(s) off their record:\n" + "\n".join(off_record)
    figure = summary(cases, results)
    committed = json.loads(Path(SUMMARY).read_text())
    assert figure == committed, (
        "the committed fidelity figure is stale: run `python -m meshconform.fidelity --update` and commit "
        f"{SUMMARY}\nnow: {figure['statement']}\ncommitted: {committed.get('statement')}")
