"""The report's published JSON Schema (report/schema/, one per apiVersion): it accepts every shape of report the
suite writes (the writers check each report on its way out, so every run in the test suite checks it too) and
refuses one that could not be verified: a share check without its design or observations, a failure without its
reason, a certification block without its suite digest, an unknown field."""

from __future__ import annotations

import copy
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from meshconform.report import schema, writers
from meshconform.report.certification import Certification, SuiteDigest
from meshconform.report.model import PlatformEvent, build
from meshconform.stats.proportions import judge_split
from meshconform.suite.features import profiles
from meshconform.suite.sampling import ShareSample
from meshconform.suite.timing import LatencyBounds
from tests.test_report import result


def _every_shape() -> dict[str, Any]:
    """A report with every verdict, both recorded kinds (one nested), evidence, platform events, an unsupported
    extended feature and a certification block."""
    sample = ShareSample(100, 100, Counter({"v1": 80, "v2": 20}), judge_split({"v1": 80, "v2": 20},
                         {"v1": 0.8, "v2": 0.2}), True, 1e-4, 0.05, 1e-3, 50, "accepted",
                         expected={"v1": 0.8, "v2": 0.2}, looks=[{"v1": 40, "v2": 10}, {"v1": 80, "v2": 20}])
    latency = LatencyBounds.of("timed-out requests", [0.51], 0.48, 1.0, "0.5 s timeout").to_json()
    event = PlatformEvent("default/echo-v1-x", "istio-proxy", 1, "killed by signal 9 at 10:00:00", "running",
                          "mirror-full")
    results = [
        result("weighted-split-echo[80-20]", "split", ["WeightedRouting"], "passed", 1.0,
               figures={"shares": sample.to_json(), "nested": [{"latency": latency}], "count": 3}),
        result("mirror-full", "mirror", ["Mirroring"], "failed", 2.0, "AssertionError: 0 copies",
               reason="no copies", evidence={"traffic": {"default/client": {"requests": 10}}}, events=[event]),
        result("gateway-tls-simple", "tls", ["GatewayTLS"], "skipped", 0.0, "not supported: GatewayTLS"),
    ]
    report = build(results, {"organization": "acme", "project": "mesh", "url": "https://acme.example",
                             "version": "1.2", "contact": ["@acme"]}, {"platform": "local", "description": "x"},
                   {"max_time_to_consistency": 60.0}, {"max_time_to_consistency": 60.0},
                   supported={"WeightedRouting", "Mirroring"}, profiles=list(profiles().values()),
                   platform_events=[event])
    report.certification = Certification(
        ("MESH-HTTP",), ("GatewayTLS",), "local", {}, "0", {}, "meshconform certify --profile MESH-HTTP",
        ("meshconform certify --profile MESH-HTTP",), SuiteDigest("0.1.0", {"meshconform/x.py": "0" * 64}))
    return report.to_json()


def test_every_shape_of_report_the_suite_writes_is_valid() -> None:
    assert schema.problems(_every_shape()) == []


@pytest.mark.parametrize(("change", "where"), [
    (lambda r: r["tests"][2]["figures"]["shares"].pop("observations"), "figures.shares: 'observations' is a"),
    (lambda r: r["tests"][2]["figures"]["shares"]["design"].pop("batch"), "figures.shares.design: 'batch'"),
    (lambda r: r["tests"][2]["figures"]["nested"][0]["latency"]["design"].pop("upper_s"), "latency.design"),
    (lambda r: r["tests"][1].pop("reason"), "tests[1]: 'reason' is a required property"),
    (lambda r: r["certification"].pop("suite"), "certification: 'suite' is a required property"),
    (lambda r: r["certification"]["suite"]["files"].update({"x": "not a digest"}), "certification.suite.files.x"),
    (lambda r: r.update({"extra": 1}), "Additional properties are not allowed ('extra'"),
    (lambda r: r["profiles"][0]["core"]["statistics"].update({"Passed": -1}), "statistics.Passed"),
    (lambda r: r.update({"apiVersion": "meshconform.io/v9"}), "apiVersion: 'meshconform.io/v9' is not one"),
])
def test_a_report_that_could_not_be_verified_is_refused(change: Any, where: str) -> None:
    report = copy.deepcopy(_every_shape())
    report["tests"].sort(key=lambda t: t["id"] != "gateway-tls-simple")  # skipped, failed, passed: fixed order
    report["tests"][1:] = sorted(report["tests"][1:], key=lambda t: t["result"])
    change(report)
    found = schema.problems(report)
    assert any(where in problem for problem in found), found


def test_the_writers_refuse_a_report_that_breaks_its_schema_after_writing_it(tmp_path: Path) -> None:
    broken = ShareSample(100, 100, Counter({"v1": 100}), judge_split({"v1": 100}, {"v1": 1.0}), True, 1e-4, 0.05,
                         1e-3, 50, "accepted")  # no design, no looks: nothing to recompute it from
    report = build([result("weighted-split-echo[100-0]", "split", ["WeightedRouting"], "passed", 1.0,
                           figures={"shares": broken.to_json()})],
                   {"organization": "o", "project": "p", "url": "u", "version": "1", "contact": ["c"]},
                   {"platform": "local"}, {}, {},
                   supported=set(), profiles=list(profiles().values()))
    with pytest.raises(writers.ReportSchemaError) as refused:
        writers.write(report, tmp_path)
    assert "conformance.yaml: the report breaks its schema" in str(refused.value)
    assert "figures.shares.design.expected" in str(refused.value)
    assert (tmp_path / "conformance.yaml").is_file()  # kept for reading
