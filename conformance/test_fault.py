"""Fault injection: abort and delay, with percentages, scoped by match."""

from __future__ import annotations

from collections import Counter

from meshconform.stats.proportions import judge, sample_size
from meshconform.suite.checks import marker_headers, new_marker, wait_for_marker
from meshconform.suite.unit import conformance_test
from meshconform.traffic.model import Request

ALPHA = 1e-4


def _vs(marker: str, fault: str) -> str:
    return f"""apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: echo}}
spec:
  hosts: [echo]
  http:
  - match: [{{uri: {{prefix: /fault}}}}]
    headers: {marker_headers(marker)}
    fault: {fault}
    route: [{{destination: {{host: echo}}}}]
  - headers: {marker_headers(marker)}
    route: [{{destination: {{host: echo}}}}]
"""


@conformance_test("fault-abort", "Abort with status 418 on 100% and on 30% of matching requests; "
                  "other paths are untouched.", features={"FaultAbort"})
def test_fault_abort(mesh_config, mesh_meshed_client, mesh_timeouts, mesh_result) -> None:  # type: ignore[no-untyped-def]
    marker = new_marker("abort")
    mesh_config.apply_yaml(_vs(marker, "{abort: {httpStatus: 418, percentage: {value: 100}}}"))
    wait_for_marker(mesh_meshed_client, Request("/other", host="echo:8080"), marker, mesh_timeouts)
    n_all = sample_size(1.0, 0.05, ALPHA)
    replies = mesh_meshed_client.send([Request(f"/fault/{i}", host="echo:8080") for i in range(n_all)], concurrency=20)
    untouched = mesh_meshed_client.send([Request(f"/other/{i}", host="echo:8080") for i in range(20)])
    mesh_result.figure("full_abort_statuses", dict(Counter(r.status for r in replies)))
    assert {r.status for r in replies} == {418}, Counter(r.status for r in replies)
    assert {r.status for r in untouched} == {200}
    marker = new_marker("abort30")
    mesh_config.apply_yaml(_vs(marker, "{abort: {httpStatus: 418, percentage: {value: 30}}}"))
    wait_for_marker(mesh_meshed_client, Request("/other", host="echo:8080"), marker, mesh_timeouts)
    n = sample_size(0.3, 0.05, ALPHA)
    replies = mesh_meshed_client.send([Request(f"/fault/{i}", host="echo:8080") for i in range(n)], concurrency=20)
    verdict = judge("aborted", sum(r.status == 418 for r in replies), n, 0.3, ALPHA, 0.05)
    mesh_result.figure("partial_abort", verdict.to_json())
    assert {r.status for r in replies} <= {200, 418}
    assert verdict.passed, verdict.describe()


@conformance_test("fault-delay", "A 1 s delay on 50% of matching requests: delayed replies take at least the "
                  "delay and at most delay + the platform's measured base latency p99 + 1 s.", features={"FaultDelay"})
def test_fault_delay(mesh_config, mesh_meshed_client, mesh_timeouts, mesh_result) -> None:  # type: ignore[no-untyped-def]
    delay = 1.0
    marker = new_marker("delay")
    base = mesh_meshed_client.send([Request(f"/base/{i}", host="echo:8080") for i in range(100)], concurrency=10)
    base_p99 = sorted(r.latency for r in base)[98]
    mesh_config.apply_yaml(_vs(marker, f"{{delay: {{fixedDelay: {delay}s, percentage: {{value: 50}}}}}}"))
    wait_for_marker(mesh_meshed_client, Request("/other", host="echo:8080"), marker, mesh_timeouts)
    n = sample_size(0.5, 0.1, ALPHA)
    replies = mesh_meshed_client.send([Request(f"/fault/{i}", host="echo:8080") for i in range(n)], concurrency=200)
    assert all(r.status == 200 for r in replies)
    delayed = [r for r in replies if r.latency >= delay]
    undelayed = [r for r in replies if r.latency < delay]
    verdict = judge("delayed", len(delayed), n, 0.5, ALPHA, 0.1)
    upper = delay + base_p99 + 1.0
    mesh_result.figure("base_p99_ms", round(base_p99 * 1000, 2))
    mesh_result.figure("delayed", verdict.to_json())
    mesh_result.figure("max_delayed_latency_s", max((r.latency for r in delayed), default=None))
    assert verdict.passed, verdict.describe()
    assert all(r.latency <= upper for r in delayed), f"a delayed reply took more than {upper:.2f}s"
    assert all(r.latency < delay for r in undelayed)
