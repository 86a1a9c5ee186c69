"""A latency check records its bounds, how they were derived and every latency, so its verdict can be recomputed
from the report; its failure says how many fell outside, and which."""

from __future__ import annotations

from meshconform.suite.timing import LatencyBounds


def test_latency_bounds_record_what_the_verdict_follows_from() -> None:
    bounds = LatencyBounds.of("timed-out requests", [0.52, 0.4999, 1.3, 0.61], 0.45, 1.0021, "0.5 s .. + 0.5 s")
    data = bounds.to_json()
    assert data == {"kind": "latency-bounds", "design": {"lower_s": 0.45, "upper_s": 1.002,
                                                         "derivation": "0.5 s .. + 0.5 s"},
                    "observations": {"latencies_s": [0.5, 0.52, 0.61, 1.3]}, "passed": False}
    recomputed = all(data["design"]["lower_s"] <= x <= data["design"]["upper_s"]
                     for x in data["observations"]["latencies_s"])
    assert recomputed == data["passed"]
    assert bounds.describe() == "1 of 4 timed-out requests outside 0.45..1.002 s (0.5 s .. + 0.5 s): [1.3]"
    open_above = LatencyBounds.of("replies", [0.1, 9.0], 0.05, None, "no upper bound")
    assert open_above.passed and open_above.describe() == "all 2 replies within 0.05.. s"
