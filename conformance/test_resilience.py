"""Request timeouts, retries and circuit breaking: the resilience settings of routes and destinations."""

from __future__ import annotations

from collections import Counter

from meshconform.suite.checks import new_marker, outcomes, wait_for_marker
from meshconform.suite.convergence import await_settled
from meshconform.suite.failures import assert_failed_as
from meshconform.suite.unit import conformance_test
from meshconform.traffic.model import Request

CALLER = [("default", "client")]  # the meshed client's own proxy, where timeouts and circuit breakers act


@conformance_test("request-timeout", "A 0.5 s route timeout turns a 1.5 s reply into a 504 after 0.5 s (plus at "
                  "most the measured base latency p99 + 0.5 s), logged by the caller's proxy as a route timeout "
                  "(UT); fast replies pass.", features={"RequestTimeout"},
                  manifests=("resilience/echo-timeout.yaml",))
def test_request_timeout(mesh_platform, mesh_config, mesh_meshed_client, mesh_timeouts, mesh_result) -> None:  # type: ignore[no-untyped-def]
    timeout = 0.5
    base = mesh_meshed_client.send([Request(f"/base/{i}", host="echo:8080") for i in range(100)])
    base_p99 = sorted(r.latency for r in base)[98]
    marker = mesh_config.apply_manifest("resilience/echo-timeout.yaml", timeout=f"{timeout}s")
    wait_for_marker(mesh_meshed_client, Request("/probe", host="echo:8080"), marker, mesh_timeouts)
    slow = mesh_meshed_client.send([Request(f"/delay/1500?i={i}", host="echo:8080") for i in range(20)],
                                   concurrency=20)
    fast = mesh_meshed_client.send([Request(f"/delay/0?i={i}", host="echo:8080") for i in range(20)])
    upper = timeout + base_p99 + 0.5
    mesh_result.figure("slow", {"statuses": dict(Counter(r.status for r in slow)),
                                "latency_s": [round(min(r.latency for r in slow), 3),
                                              round(max(r.latency for r in slow), 3)], "upper_bound_s": upper})
    assert all(r.status == 504 for r in slow), [r.summary() for r in slow if r.status != 504][:3]
    assert all(timeout <= r.latency <= upper for r in slow), sorted(round(r.latency, 3) for r in slow)
    mesh_result.figure("caller_proxy_log", assert_failed_as(
        mesh_platform, CALLER, slow, mesh_timeouts, 504, "UT", direction="outbound", what="slow requests"))
    assert all(r.status == 200 for r in fast), f"requests faster than the timeout must succeed: {outcomes(fast)} of 20"


def _tries_per_request(platform, vantage, timeouts) -> Counter[int]:  # type: ignore[no-untyped-def]
    """Send 10 requests that always fail; how many tries of each reached echo (by request id)."""
    path = f"/{new_marker('retries')}/status/503"
    replies = vantage.send([Request(path, host="echo:8080") for _ in range(10)])
    assert all(r.status == 503 for r in replies), [r.summary() for r in replies[:3]]
    ids = {r.request_id for r in replies}

    def tries() -> Counter[str]:
        return Counter(rec["request_id"] for deployment in ("echo-v1", "echo-v2")
                       for rec in platform.request_log("default", deployment)
                       if rec["path"] == path and rec["request_id"] in ids)

    # Every try is logged on arrival; the last ones may land a moment after the caller got its answer,
    # so wait until the log stops growing.
    await_settled(lambda: sum(tries().values()), timeouts, "the backend's request log to settle", at_least=len(ids))
    return Counter(tries().values())


@conformance_test("retries", "retries.attempts: 2 on 5xx makes 3 tries of a request that keeps failing (counted "
                  "by request id at the backend); with attempts: 0 there is exactly 1.", features={"Retries"},
                  manifests=("resilience/echo-retries.yaml",))
def test_retries(mesh_platform, mesh_config, mesh_meshed_client, mesh_timeouts, mesh_result) -> None:  # type: ignore[no-untyped-def]
    observed: dict[str, dict[int, int]] = {}
    for attempts in (2, 0):
        marker = mesh_config.apply_manifest("resilience/echo-retries.yaml", attempts=attempts)
        wait_for_marker(mesh_meshed_client, Request("/probe", host="echo:8080"), marker, mesh_timeouts)
        per_request = _tries_per_request(mesh_platform, mesh_meshed_client, mesh_timeouts)
        observed[f"attempts={attempts}"] = dict(per_request)
        mesh_result.figure("tries_per_request", observed)
        assert per_request == Counter({1 + attempts: 10}), f"attempts={attempts}: tries per request {observed}"


@conformance_test("circuit-breaking", "With one connection and one pending request allowed, a burst of 40 slow "
                  "requests gets both 200s and 503s; the 503s come from the caller's proxy as overflow (UO, "
                  "x-envoy-overloaded), not from echo.",
                  features={"CircuitBreaking"}, manifests=("resilience/echo-circuit-breaker.yaml",))
def test_circuit_breaking(mesh_platform, mesh_config, mesh_meshed_client, mesh_timeouts, mesh_result) -> None:  # type: ignore[no-untyped-def]
    marker = mesh_config.apply_manifest("resilience/echo-circuit-breaker.yaml")
    wait_for_marker(mesh_meshed_client, Request("/probe", host="echo:8080"), marker, mesh_timeouts)
    burst = mesh_meshed_client.send([Request(f"/delay/300?i={i}", host="echo:8080") for i in range(40)],
                                    concurrency=40, reuse_connections=False)
    statuses = Counter(r.status for r in burst)
    mesh_result.figure("statuses", dict(statuses))
    rejected = [r for r in burst if r.status == 503]
    assert statuses[200] >= 1 and rejected, dict(statuses)
    assert set(statuses) <= {200, 503}, dict(statuses)
    assert all(not (r.json() or {}).get("service") for r in rejected), "a 503 came from echo itself"
    overloaded = [r for r in rejected if r.headers.get("x-envoy-overloaded") != "true"]
    assert not overloaded, f"{len(overloaded)} of {len(rejected)} 503s lack x-envoy-overloaded: true"
    mesh_result.figure("caller_proxy_log", assert_failed_as(
        mesh_platform, CALLER, rejected, mesh_timeouts, 503, "UO", direction="outbound", what="rejected requests"))
