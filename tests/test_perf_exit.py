"""`meshconform perf`'s verdict: an invalid run and a regression are both said, in the exit code (3 regression,
4 invalid, 5 both) and in the summary line, also when a stored result is re-analysed; an invalid run is never a
baseline unless asked for, and then the comparison says so."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from meshconform.perf import baseline, cli, result, runner
from meshconform.perf.recording import Recorder
from meshconform.perf.schedule import Timing
from meshconform.perf.spec import PhaseSpec, Target


def _document(run_id: str, scale: float, invalid: list[str] | None = None) -> dict[str, Any]:
    """A schema-valid result of one phase, 30 s of a 40 rps page series (log-normal around 5 ms x scale)."""
    spec = PhaseSpec("scenarios", ["PageVisitor"], [Target("ingress", "http://127.0.0.1:1")], duration_s=30.0)
    rng = np.random.default_rng(int(scale * 100))
    recorder = Recorder(0.0, 30.0)
    for t in np.linspace(0.0, 29.99, 1200):
        service = rng.lognormal(np.log(0.005 * scale), 0.4)
        recorder.record("ingress/page", Timing(t, t, t + service, 0.0), ok=True)
    outcome = runner.merge(spec, [recorder.to_json({"role": "local", "index": 0, "origin_epoch": 1.8e9})])
    outcome.invalid_reasons = invalid or []
    options = {"platform": "local", "mode": "open", "rate": 40.0, "users": 8, "duration_s": 30.0, "warmup_s": 4.0,
               "steps": "", "phases": ["scenarios"], "processes": 1, "files": []}
    document = result.build(run_id, [outcome], {"platform": "local"}, None, options)
    result.validate(document)
    return document


@pytest.fixture()
def stored(tmp_path: Path) -> dict[str, Path]:
    paths = {}
    for name, scale, invalid in (("before", 1.0, None), ("same", 1.0, None), ("slower", 3.0, None),
                                 ("slower-invalid", 3.0, ["phase scenarios, generator local0: 9.0% of sends late"]),
                                 ("same-invalid", 1.0, ["phase scenarios, generator local0: 9.0% of sends late"])):
        folder = tmp_path / "runs" / name
        folder.mkdir(parents=True)
        paths[name] = result.write(_document(name, scale, invalid), folder)
    return paths


def _perf(tmp_path: Path, *args: str) -> Any:
    return CliRunner().invoke(cli.perf, list(args), env={"MESHCONFORM_REPORTS": str(tmp_path / "reports")},
                              catch_exceptions=False)


def test_exit_code_and_summary_say_invalid_and_regression(stored: dict[str, Path], tmp_path: Path) -> None:
    """Re-analysing a stored result with --from-result: it was invalid when it ran and stays so; both are said."""
    run = _perf(tmp_path, "--from-result", str(stored["slower-invalid"]), "--baseline", str(stored["before"]))
    assert run.exit_code == 5, run.output
    assert run.output.rstrip().splitlines()[-1] == ("verdict: INVALID and REGRESSION: ingress/page p50, ingress/page "
                                                    "p90, ingress/page p99 (exit 5)")
    assert "INVALID: phase scenarios, generator local0" in run.output
    [written] = (tmp_path / "reports").glob("*/comparison.json")
    assert json.loads(written.read_text())["regression"]
    assert (written.parent / "comparison.png").stat().st_size > 10_000
    page = (written.parent / "perf.html").read_text()
    assert "REGRESSION (and this run is INVALID)" in page
    # the verdict and its one-sentence meaning, in the output and atop the page alike
    meaning = run.output.rstrip().splitlines()[-2]
    assert meaning.startswith("what it means: INVALID: the load generator fell behind") and "; REGRESSION: " in meaning
    assert "verdict: INVALID and REGRESSION: ingress/page p50" in page and html.escape(meaning) in page


def test_every_combination_has_its_own_exit_code(stored: dict[str, Path]) -> None:
    """The four combinations without the command around them (the two above run it whole)."""
    before = [result.read(stored["before"])]
    codes = {}
    for name in ("same", "slower", "same-invalid", "slower-invalid"):
        document = result.read(stored[name])
        codes[name] = cli.outcome(document, baseline.compare(document, before))
    assert codes == {
        "same": (0, "verdict: valid, no regression"),
        "slower": (3, "verdict: REGRESSION: ingress/page p50, ingress/page p90, ingress/page p99 (exit 3)"),
        "same-invalid": (4, "verdict: INVALID, no regression (exit 4)"),
        "slower-invalid": (5, "verdict: INVALID and REGRESSION: ingress/page p50, ingress/page p90, ingress/page p99 "
                              "(exit 5)")}


def test_an_invalid_baseline_is_refused_unless_asked_for(stored: dict[str, Path], tmp_path: Path) -> None:
    refused = CliRunner().invoke(cli.perf, ["--from-result", str(stored["same"]), "--baseline",
                                            str(stored["same-invalid"])],
                                 env={"MESHCONFORM_REPORTS": str(tmp_path / "reports")})
    assert refused.exit_code != 0
    assert "was marked invalid" in str(refused.exception) and "--allow-invalid-baseline" in str(refused.exception)
    assert not list((tmp_path / "reports").glob("*/comparison.json"))
    allowed = _perf(tmp_path, "--from-result", str(stored["same"]), "--baseline", str(stored["same-invalid"]),
                    "--allow-invalid-baseline")
    assert allowed.exit_code == 0
    assert "note: baseline same-invalid was marked invalid and is used only because --allow-invalid-baseline" \
        in allowed.output


def test_history_leaves_out_the_invalid_run_and_says_not_enough_history(stored: dict[str, Path],
                                                                        tmp_path: Path) -> None:
    """--history: the folder's valid runs of the same configuration are the baseline (here 3 of the 5 needed for
    their own spread: judged against the newest with the assumed spread, said); the invalid ones are named."""
    run = _perf(tmp_path, "--from-result", str(stored["slower"]), "--history", str(tmp_path / "runs"))
    assert run.exit_code == 3, run.output
    assert "not enough history (2 of 5 valid runs of this configuration)" in run.output
    assert "left out: same-invalid: invalid (phase scenarios" in run.output
    assert "left out: slower-invalid: invalid" in run.output
    assert list((tmp_path / "reports").glob("*/trend.png"))


def test_every_verdict_is_explained_in_one_sentence(stored: dict[str, Path]) -> None:
    before = [result.read(stored["before"])]
    said = {}
    for name in ("same", "slower", "same-invalid", "slower-invalid"):
        document = result.read(stored[name])
        said[name] = cli.explain(document, baseline.compare(document, before))
    said["alone"] = cli.explain(result.read(stored["same"]), None)
    for name, sentence in said.items():
        assert sentence.startswith("what it means: ") and sentence.endswith(".") and sentence.count(". ") == 0, name
    assert "valid: the load generator kept up" in said["same"] and "; no regression: " in said["same"]
    assert "; REGRESSION: " in said["slower"] and "INVALID" not in said["slower"]
    assert "INVALID: " in said["same-invalid"] and "; no regression" in said["same-invalid"]
    assert "INVALID: " in said["slower-invalid"] and "; REGRESSION: " in said["slower-invalid"]
    assert "not compared: --baseline or --history" in said["alone"]


def test_outcome_without_a_baseline() -> None:
    assert cli.outcome({"valid": True}, None) == (0, "verdict: valid, no baseline to compare with")
    assert cli.outcome({"valid": False}, None) == (4, "verdict: INVALID, no baseline to compare with (exit 4)")
    empty = baseline.Comparison("pair", ["a"], "", [])
    assert cli.outcome({"valid": False}, empty)[0] == 4
