"""Weighted routing and header-based routing."""

from __future__ import annotations

from collections import Counter

import pytest

from meshconform.stats.proportions import judge_split, split_sample_size
from meshconform.suite.checks import marker_headers, new_marker, wait_for_marker
from meshconform.suite.unit import conformance_test
from meshconform.traffic.model import Request

ALPHA, TOLERANCE = 1e-4, 0.05
DR = """apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: echo}
spec: {host: echo, subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]}
"""


@pytest.mark.parametrize("weights", [(100, 0), (80, 20), (50, 50), (10, 90)], ids=lambda w: f"{w[0]}-{w[1]}")
@conformance_test("weighted-split-echo", "A VirtualService splits echo traffic between subsets by weight "
                  "(exact binomial bands, false-failure 1e-4, tolerance 0.05); only expected subsets answer.",
                  features={"WeightedRouting"})
def test_weighted_split(weights, mesh_config, mesh_meshed_client, mesh_timeouts, mesh_result) -> None:  # type: ignore[no-untyped-def]
    marker = new_marker("split")
    mesh_config.apply_yaml(DR + f"""---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: echo}}
spec:
  hosts: [echo]
  http:
  - headers: {marker_headers(marker)}
    route:
    - {{destination: {{host: echo, subset: v1}}, weight: {weights[0]}}}
    - {{destination: {{host: echo, subset: v2}}, weight: {weights[1]}}}
""")
    wait_for_marker(mesh_meshed_client, Request("/probe", host="echo:8080"), marker, mesh_timeouts)
    expected = {v: w / sum(weights) for v, w in zip(("v1", "v2"), weights, strict=True) if w}
    n = split_sample_size(expected, TOLERANCE, ALPHA)
    replies = mesh_meshed_client.send([Request(f"/split/{i}", host="echo:8080") for i in range(n)], concurrency=20)
    counts = Counter(r.version or f"error:{r.status or r.error}" for r in replies)
    verdicts = judge_split(counts, expected, ALPHA, TOLERANCE)
    mesh_result.figure("requests", n)
    mesh_result.figure("counts", dict(counts))
    mesh_result.figure("verdicts", [v.to_json() for v in verdicts])
    mesh_result.attach("examples", [r.summary() for r in replies[:5]])
    assert all(v.passed for v in verdicts), "\n".join(v.describe() for v in verdicts)


@conformance_test("header-routing-jason", "end-user: jason goes to reviews v2, everyone else to v1 "
                  "(exact, case-sensitive header match).", features={"HeaderRouting"}, parallel=False)
def test_header_routing(mesh_config, mesh_meshed_client, mesh_timeouts, mesh_result) -> None:  # type: ignore[no-untyped-def]
    marker = new_marker("jason")
    mesh_config.apply_yaml(f"""apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: reviews}}
spec: {{host: reviews, subsets: [{{name: v1, labels: {{version: v1}}}}, {{name: v2, labels: {{version: v2}}}}]}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: reviews}}
spec:
  hosts: [reviews]
  http:
  - match: [{{headers: {{end-user: {{exact: jason}}}}}}]
    headers: {marker_headers(marker)}
    route: [{{destination: {{host: reviews, subset: v2}}}}]
  - headers: {marker_headers(marker)}
    route: [{{destination: {{host: reviews, subset: v1}}}}]
""")
    wait_for_marker(mesh_meshed_client, Request("/reviews/0", host="reviews:9080"), marker, mesh_timeouts)
    n = 180  # p = 1 exactly: 180 requests see a 5% misrouting with probability 1 - 1e-4
    jason = mesh_meshed_client.send([Request("/reviews/0", host="reviews:9080", headers={"end-user": "jason"})] * n,
                                    concurrency=20)
    others = mesh_meshed_client.send([Request("/reviews/0", host="reviews:9080", headers={"end-user": "Jason"})] * n,
                                     concurrency=20)
    mesh_result.figure("jason_versions", dict(Counter(r.version for r in jason)))
    mesh_result.figure("other_versions", dict(Counter(r.version for r in others)))
    assert {r.version for r in jason} == {"v2"}
    assert {r.version for r in others} == {"v1"}
