"""The perf result: built from what load generators recorded, valid against its JSON schema, and a
bad result (file or field) refused with the file and the field named."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pytest

from meshconform.errors import ConfigError
from meshconform.perf import cost, result, runner
from meshconform.perf.recording import Recorder
from meshconform.perf.schedule import Timing
from meshconform.perf.spec import PhaseSpec, Target


def _outcome(name: str = "mesh-cost", seed: int = 1) -> runner.PhaseOutcome:
    spec = PhaseSpec(name, ["PageVisitor"], [Target("mesh", "http://127.0.0.2:9080"),
                                            Target("no-mesh", "http://127.0.0.3:9080")], duration_s=10.0)
    rng = np.random.default_rng(seed)
    outputs = []
    for index in (1, 2):  # two worker processes, merged
        recorder = Recorder(0.0, 10.0)
        for i, t in enumerate(np.linspace(0.0, 9.99, 2000)):
            key = "mesh/page" if i % 2 else "no-mesh/page"
            service = rng.lognormal(np.log(0.004 if i % 2 else 0.003), 0.3)
            recorder.record(key, Timing(t, t, t + service, 0.0), ok=i % 500 != 1, error="HTTP 503")
            if i % 200 == 0:
                recorder.tick(t, 30.0)
        outputs.append(recorder.to_json({"role": "worker", "index": index, "origin_epoch": 1_700_000_000.0}))
    return runner.merge(spec, outputs)


@functools.cache
def _built() -> str:
    outcome = _outcome()
    platform = {"platform": "local", "mesh": {"name": "ref", "version": "0.1.0"}, "proxy": {"name": "envoy"}}
    return json.dumps(result.build("run-1", [outcome], platform, cost.mesh_cost(outcome, seed=1), {"rate": 50}))


def _document() -> dict:
    """A fresh copy of one built result (building takes a moment; every test may change its copy)."""
    return json.loads(_built())  # type: ignore[no-any-return]


def test_a_built_result_is_valid_and_complete() -> None:
    document = _document()
    result.validate(document)
    mesh = next(s for s in document["results"] if s["name"] == "mesh/page")
    assert mesh["requests"] == 2000 and mesh["errors"] == 8  # two processes merged
    assert 3500 < mesh["latencies_us"]["p50"] < 4500  # log-normal around 4 ms, in microseconds
    added = document["mesh_cost"]["percentiles"]["p50"]
    assert 700 < added["added_us"] < 1300 and added["ci_low_us"] < added["added_us"] < added["ci_high_us"]
    assert document["phases"][0]["valid"] and document["valid"]


def test_the_written_file_reads_back(tmp_path: Path) -> None:
    path = result.write(_document(), tmp_path)
    assert result.read(path)["id"] == "run-1"


@pytest.mark.parametrize(("change", "field"), [
    (lambda d: d.pop("phases"), "(document)"),
    (lambda d: d["results"][0]["latencies_us"].update(p50=-1), "results.0.latencies_us.p50"),
    (lambda d: d["phases"][0].update(model="half-open"), "phases.0.model"),
    (lambda d: d.update(apiVersion="meshconform.io/perf/v0"), "apiVersion"),
    (lambda d: d["results"][0].update(histogram="not base64!"), "results.0.histogram"),
])
def test_schema_refuses_bad_results_naming_the_field(change, field: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    document = _document()
    change(document)
    path = tmp_path / "perf-result.json"
    path.write_text(json.dumps(document))
    with pytest.raises(ConfigError) as caught:
        result.read(path)
    assert caught.value.source == str(path) and caught.value.field == field


def test_not_json_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "perf-result.json"
    path.write_text("{ not json")
    with pytest.raises(ConfigError, match="cannot read a perf result"):
        result.read(path)
