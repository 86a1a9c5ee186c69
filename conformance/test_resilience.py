"""Request timeouts, retries and circuit breaking: the resilience settings of routes and destinations."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from meshconform.suite.checks import new_marker, outcomes, wait_for, wait_for_marker
from meshconform.suite.convergence import await_settled, under_way
from meshconform.suite.failures import assert_failed_as
from meshconform.suite.timeouts import TIMER_EARLINESS_S
from meshconform.suite.timing import LatencyBounds
from meshconform.suite.unit import conformance_test
from meshconform.traffic.model import Request

CALLER = [("default", "client")]  # the meshed client's own proxy, where timeouts and circuit breakers act


ROUTE_TIMEOUT = 0.5  # request-timeout's, seconds


@conformance_test("request-timeout", "A 0.5 s route timeout turns a 1.5 s reply into a 504 after 0.5 s (plus at "
                  "most the measured base latency p99 + 0.5 s), logged by the caller's proxy as a route timeout "
                  "(UT); fast replies pass.", features={"RequestTimeout"},
                  manifests=("resilience/echo-timeout.yaml",), values={"timeout": f"{ROUTE_TIMEOUT:g}s"})
def test_request_timeout(mesh_platform, mesh_manifests, mesh_meshed_client, mesh_timeouts, mesh_result) -> None:
    timeout = ROUTE_TIMEOUT
    wait_for_marker(mesh_meshed_client, Request("/probe", host="echo:8080"), mesh_manifests.marker, mesh_timeouts)
    base = mesh_meshed_client.send([Request(f"/base/{i}", host="echo:8080") for i in range(100)])  # prompt replies
    base_p99 = sorted(r.latency for r in base)[98]
    slow = mesh_meshed_client.send([Request(f"/delay/1500?i={i}", host="echo:8080") for i in range(20)],
                                   concurrency=20)
    fast = mesh_meshed_client.send([Request(f"/delay/0?i={i}", host="echo:8080") for i in range(20)])
    bounds = LatencyBounds.of("timed-out requests", [r.latency for r in slow], timeout - TIMER_EARLINESS_S,
                              timeout + base_p99 + 0.5, f"the {timeout:g} s route timeout less {TIMER_EARLINESS_S:g} s "
                              f"timer earliness .. plus base p99 {base_p99:.3f} s + 0.5 s")
    mesh_result.figure("slow", {"statuses": dict(Counter(r.status for r in slow)), "latency_s": bounds.to_json()})
    assert all(r.status == 504 for r in slow), [r.summary() for r in slow if r.status != 504][:3]
    assert bounds.passed, bounds.describe()
    mesh_result.figure("caller_proxy_log", assert_failed_as(
        mesh_platform, CALLER, slow, mesh_timeouts, 504, "UT", direction="outbound", what="slow requests"))
    assert all(r.status == 200 for r in fast), f"requests faster than the timeout must succeed: {outcomes(fast)} of 20"


def _tries_per_request(platform, vantage, timeouts) -> Counter[int]:
    """Send 10 requests that always fail; how many tries of each reached echo (by request id)."""
    path = f"/{new_marker('retries')}/status/503"
    replies = vantage.send([Request(path, host="echo:8080") for _ in range(10)])
    assert all(r.status == 503 for r in replies), [r.summary() for r in replies[:3]]
    ids = {r.request_id for r in replies}

    def tries() -> Counter[str]:
        return Counter(rec["request_id"] for deployment in ("echo-v1", "echo-v2")
                       for rec in platform.request_log("default", deployment)
                       if rec["path"] == path and rec["request_id"] in ids)

    # The last tries may land a moment after the caller got its answer: wait until nothing is under way.
    await_settled(lambda: sum(tries().values()), timeouts, "the backend's request log to settle",
                  watch=under_way(platform, [*CALLER, ("default", "echo-v1"), ("default", "echo-v2")], ids),
                  at_least=len(ids))
    return Counter(tries().values())


@conformance_test("retries", "retries.attempts: 2 on 5xx makes 3 tries of a request that keeps failing (counted "
                  "by request id at the backend), attempts: 1 makes 2 (one retry, not none); with attempts: 0 there is "
                  "exactly 1.", features={"Retries"},
                  manifests=("resilience/echo-retries.yaml",), values={"attempts": 2})
def test_retries(mesh_platform, mesh_manifests, mesh_meshed_client, mesh_timeouts, mesh_result) -> None:
    observed: dict[str, dict[int, int]] = {}
    for attempts in (2, 1, 0):
        marker = mesh_manifests.marker if attempts == 2 else mesh_manifests.update(attempts=attempts)
        wait_for_marker(mesh_meshed_client, Request("/probe", host="echo:8080"), marker, mesh_timeouts)
        per_request = _tries_per_request(mesh_platform, mesh_meshed_client, mesh_timeouts)
        observed[f"attempts={attempts}"] = dict(per_request)
        mesh_result.figure("tries_per_request", observed)
        assert per_request == Counter({1 + attempts: 10}), f"attempts={attempts}: tries per request {observed}"


LIMITED, UNLIMITED = {"connections": 1, "pending": 1}, {"connections": 1000, "pending": 1000}


def _limits(level: str) -> dict[str, object]:
    """The manifest's values: one connection and one pending request at the rule or in the routed subset."""
    rule, subset = (LIMITED, UNLIMITED) if level == "rule" else (UNLIMITED, LIMITED)
    return {**subset, **{f"rule_{k}": v for k, v in rule.items()}, "subset": "all" if level == "subset" else None}


@pytest.mark.parametrize("level", ["rule", "subset"])
@conformance_test("circuit-breaking", "With one connection and one pending request allowed, a burst of 40 slow "
                  "requests gets both 200s and 503s; the 503s come from the caller's proxy as overflow (UO, "
                  "x-envoy-overloaded), not from echo. The limits are the rule's, or the routed subset's under "
                  "rule-level limits too large to matter (a subset's connectionPool replaces the rule's).",
                  features={"CircuitBreaking"}, manifests=("resilience/echo-circuit-breaker.yaml",),
                  values=_limits)
def test_circuit_breaking(level, mesh_platform, mesh_manifests, mesh_meshed_client, mesh_timeouts, mesh_result) -> None:
    wait_for_marker(mesh_meshed_client, Request("/probe", host="echo:8080"), mesh_manifests.marker, mesh_timeouts)
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


SUBSETS = "resilience/echo-subset-policies.yaml"
# Requests not judged after an answer that ejects a host: Envoy ejects on its main thread, told by the worker that
# saw the answer, and the workers learn of it by a second post back, so the next request or two may still be
# routed as before (conformance/test_outlier.py's EJECTION_SLACK).
SETTLE = 2


def _lane(lane: str | None, path: str) -> Request:
    return Request(path, host="echo:8080", headers={"x-lane": lane} if lane else {})


def _burst(vantage, lane: str) -> list:
    return vantage.send([_lane(lane, f"/delay/300?burst={lane}&i={i}") for i in range(20)], concurrency=20,
                        reuse_connections=False)


def _in_turn(vantage, lane: str | None, path: str, count: int) -> list:
    """`count` requests one at a time, so the caller's proxy sees each answer before the next request."""
    return vantage.send([_lane(lane, f"{path}?i={i}") for i in range(count)], concurrency=1)


def _after_errors(vantage, lane: str, errors_path: str, errors: int, probe_path: str, probes: int) -> list:
    """`errors` failing requests in turn, SETTLE more left unjudged (an ejection may still be on its way), then
    `probes` requests in turn, whose answers are returned for judging."""
    _in_turn(vantage, lane, errors_path, errors)
    _in_turn(vantage, lane, "/settle", SETTLE)
    return _in_turn(vantage, lane, probe_path, probes)


def _from_echo(reply) -> bool:
    return bool((reply.json() or {}).get("service"))


@conformance_test("subset-traffic-policy", "A DestinationRule subset's trafficPolicy overrides the rule's, each "
                  "field whole: v1's own connectionPool lifts the rule's one-connection limit (20 concurrent slow "
                  "requests all answered) while v2 inherits it (503 UO overflow); ISTIO_MUTUAL in both subsets "
                  "reaches echo's STRICT pods while the rule's DISABLE (no subset) is refused; the rule's ROUND_ROBIN "
                  "alternates strictly over both pods (20 requests, one at a time) where a subset's own RANDOM does "
                  "not (false failure 2^-19). outlierDetection: pair inherits the rule's consecutiveGatewayErrors 1 "
                  "(one 503 ejects the pod that answered it, the other answers alone) and minHealthPercent 30 "
                  "(once both are ejected, both answer again: panic; every answer meanwhile is echo's 200); v1's own "
                  "consecutive5xxErrors 1 ejects its only host after one 500 (503 UH, no panic: its policy replaces "
                  "the rule's whole); subset gateway-errors' own consecutiveGatewayErrors 2 with consecutive5xxErrors "
                  "0 keeps echo-v1 after six 500s and one 503, ejects it after two 503s in a row; v2's own "
                  "minHealthPercent 50 keeps routing to its ejected only host (panic). After an ejecting answer, the "
                  f"next {SETTLE} requests are not judged (Envoy's workers learn of an ejection a moment later).",
                  features={"CircuitBreaking", "OutlierDetection", "MTLSStrict"}, manifests=(SUBSETS,),
                  parallel=False)
def test_subset_traffic_policy(mesh_platform, mesh_manifests, mesh_meshed_client, mesh_timeouts, mesh_result) -> None:
    marker = mesh_manifests.marker
    wait_for_marker(mesh_meshed_client, _lane("v1", "/probe"), marker, mesh_timeouts)
    wait_for_marker(mesh_meshed_client, _lane("v2", "/probe"), marker, mesh_timeouts)

    # One connection, one request at a time: round robin over two pods alternates strictly; a random pick does so
    # for 20 requests with probability 2^-19 (the check's false-failure rate for the `shuffled` subset).
    turns = _in_turn(mesh_meshed_client, "pair", "/round-robin", 20)
    order = "".join((r.version or "?")[-1] for r in turns)
    mesh_result.figure("round_robin_order", order)
    assert all(r.status == 200 for r in turns) and all(a != b for a, b in zip(order, order[1:], strict=False)), (
        f"ROUND_ROBIN (inherited by subset pair) over v1 and v2 must alternate: {order} ({outcomes(turns)})")
    shuffled = _in_turn(mesh_meshed_client, "shuffled", "/random", 20)
    picks = "".join((r.version or "?")[-1] for r in shuffled)
    mesh_result.figure("random_order", picks)
    assert all(r.status == 200 for r in shuffled) and any(a == b for a, b in zip(picks, picks[1:], strict=False)), (
        f"subset shuffled's own loadBalancer RANDOM replaces the rule's ROUND_ROBIN: {picks} alternated strictly")

    # pair inherits the rule's outlierDetection: one 503 ejects the pod that answered it; 1 of 2 healthy (50 %)
    # is not below minHealthPercent 30, so the other answers alone. (Its second ejection comes last: Envoy delivers
    # a cluster's health change within a second of the previous one only when its update_merge_window, 1 s by
    # default, has passed; the bursts in between usually take that long.)
    first = _in_turn(mesh_meshed_client, "pair", "/status/503", 1)[0]
    assert first.status == 503 and _from_echo(first) and first.version in ("v1", "v2"), first.summary()
    other = {"v1": "v2", "v2": "v1"}[str(first.version)]
    _in_turn(mesh_meshed_client, "pair", "/settle", SETTLE)
    alone = _in_turn(mesh_meshed_client, "pair", "/after-one-503", 4)
    mesh_result.figure("pair_after_503", {"ejected": first.version, "answers": outcomes(alone, _status_version)})
    assert all(r.status == 200 and r.version == other for r in alone), (
        f"pair inherits consecutiveGatewayErrors 1: the {first.version} pod that answered 503 is ejected and "
        f"{other} answers alone: {outcomes(alone, _status_version)} of 4")

    v1 = _burst(mesh_meshed_client, "v1")
    mesh_result.figure("v1_burst", dict(Counter(r.status for r in v1)))
    assert all(r.status == 200 and r.version == "v1" for r in v1), (
        f"subset v1's own connectionPool replaces the rule's one-connection pool: {outcomes(v1)} of 20")

    v2 = _burst(mesh_meshed_client, "v2")
    mesh_result.figure("v2_burst", dict(Counter(r.status for r in v2)))
    rejected = [r for r in v2 if r.status == 503]
    assert any(r.status == 200 and r.version == "v2" for r in v2) and rejected, (
        f"subset v2 inherits the rule's one-connection pool, so a burst overflows: {outcomes(v2)} of 20")
    assert not [r for r in rejected if r.headers.get("x-envoy-overloaded") != "true" or _from_echo(r)], (
        "v2's 503s must be the caller proxy's overflow (x-envoy-overloaded), not echo's")
    mesh_result.figure("v2_overflow_log", assert_failed_as(
        mesh_platform, CALLER, rejected, mesh_timeouts, 503, "UO", direction="outbound", what="v2's rejected requests"))

    plain = _in_turn(mesh_meshed_client, None, "/no-subset", 5)
    mesh_result.figure("no_subset", outcomes(plain))
    assert all(r.status != 200 and not _from_echo(r) for r in plain), (
        f"the rule's tls DISABLE (no subset) must not reach echo's STRICT pods: {outcomes(plain)} of 5")

    # v2: the default 5 consecutive 5xx eject its only host, but minHealthPercent 50 puts the pool in panic.
    after = _after_errors(mesh_meshed_client, "v2", "/status/503", 5, "/after-503s", 5)
    mesh_result.figure("v2_after_5_503s", outcomes(after))
    assert all(r.status == 200 and r.version == "v2" for r in after), (
        f"v2 (minHealthPercent 50): its ejected only host must still be routed to: {outcomes(after)} of 5")

    # gateway-errors: 500s are no gateway errors (and its consecutive5xxErrors 0 counts none), and one 503 is
    # fewer than its consecutiveGatewayErrors 2: echo-v1 stays; two 503s in a row eject it.
    _in_turn(mesh_meshed_client, "gateway-errors", "/status/500", 6)
    _in_turn(mesh_meshed_client, "gateway-errors", "/status/503", 1)
    kept = _in_turn(mesh_meshed_client, "gateway-errors", "/after-one-503", 3)
    mesh_result.figure("gateway_errors_after_6_500s_1_503", outcomes(kept))
    assert all(r.status == 200 and r.version == "v1" for r in kept), (
        f"gateway-errors (consecutiveGatewayErrors 2, consecutive5xxErrors 0): six 500s and one 503 must not "
        f"eject echo-v1: {outcomes(kept)} of 3")
    out = _after_errors(mesh_meshed_client, "gateway-errors", "/status/503", 2, "/after-two-503s", 5)
    mesh_result.figure("gateway_errors_after_2_503s", outcomes(out))
    assert all(r.status == 503 and not _from_echo(r) for r in out), (
        f"gateway-errors: two 503s in a row eject its only host: {outcomes(out)} of 5")

    # v1's own outlierDetection: consecutive5xxErrors 1, so a single 500 ejects its only host, and nothing routes
    # to it (its policy replaces the rule's whole, minHealthPercent 30 included).
    ejected = _after_errors(mesh_meshed_client, "v1", "/status/500", 1, "/after-500", 5)
    mesh_result.figure("v1_after_500", outcomes(ejected))
    assert all(r.status == 503 and not _from_echo(r) for r in ejected), (
        f"v1's consecutive5xxErrors 1: one 500 ejects its only host: {outcomes(ejected)} of 5")

    # pair again: the other pod's 503 ejects it too. None healthy is below minHealthPercent 30: the pool is in
    # panic and routes to both again. Every answer is echo's 200 meanwhile; both pods answer once the change is
    # delivered (at once, or when the merge window ends).
    second = _in_turn(mesh_meshed_client, "pair", "/status/503", 1)[0]
    assert second.status == 503 and second.version == other, second.summary()
    panic = _until_both_answer(mesh_meshed_client, "pair", "/after-two-503s", mesh_timeouts)
    mesh_result.figure("pair_both_ejected", outcomes(panic, _status_version))
    assert all(r.status == 200 and _from_echo(r) for r in panic) and {r.version for r in panic} == {"v1", "v2"}, (
        f"pair inherits minHealthPercent 30: with both pods ejected the pool is in panic and routes to both: "
        f"{outcomes(panic, _status_version)}")
    mesh_result.figure("v1_ejected_log", assert_failed_as(
        mesh_platform, CALLER, ejected, mesh_timeouts, 503, "UH", direction="outbound", what="requests to ejected v1"))


def _status_version(reply) -> str:
    return f"{reply.status} {reply.version}"


def _until_both_answer(vantage, lane: str, path: str, timeouts) -> list:
    """Requests one at a time, 4 per batch, until both echo pods have answered, anything but echo's 200 came
    back, or max_time_to_consistency passed; every reply."""
    seen: list = []
    deadline = time.monotonic() + timeouts.max_time_to_consistency
    while True:
        seen += _in_turn(vantage, lane, path, 4)
        if (not all(r.status == 200 and _from_echo(r) for r in seen) or {r.version for r in seen} == {"v1", "v2"}
                or time.monotonic() > deadline):
            return seen


RETRY_BUDGET = "resilience/echo-retry-budget.yaml"


def _tries_at_v1(platform, timeouts, path: str, replies: list) -> Counter[int]:
    """How many tries of each reply's request reached echo-v1 (its request log, by request id)."""
    ids = {r.request_id for r in replies}

    def tries() -> Counter[str]:
        return Counter(rec["request_id"] for rec in platform.request_log("default", "echo-v1")
                       if rec["path"] == path and rec["request_id"] in ids)
    await_settled(lambda: sum(tries().values()), timeouts, "echo-v1's request log to settle",
                  watch=under_way(platform, [*CALLER, ("default", "echo-v1")], ids),
                  at_least=len(ids))
    return Counter(tries().values())


@conformance_test("circuit-breaking-retries", "Circuit breaking with retries: the rule's http2MaxRequests 4 "
                  "(inherited by subset v1) lets 4 of 12 concurrent slow requests through and refuses the rest at the "
                  "caller (503 UO); subset budget's own maxRetries 1 (its connectionPool replaces the rule's, whose "
                  "maxRetries 1000 would allow every retry) allows one retry outstanding at a time, so of 4 "
                  "concurrent requests failing slowly (500 after 0.3 s, retries.attempts 2 on 5xx) one is retried "
                  "and the others' retries overflow: tried once.",
                  features={"CircuitBreaking", "Retries"}, manifests=(RETRY_BUDGET,))
def test_circuit_breaking_retries(mesh_platform, mesh_manifests, mesh_meshed_client, mesh_timeouts,
                                  mesh_result) -> None:
    marker = mesh_manifests.marker
    wait_for_marker(mesh_meshed_client, Request("/probe", host="echo:8080"), marker, mesh_timeouts)

    burst = mesh_meshed_client.send([Request(f"/delay/300?i={i}", host="echo:8080") for i in range(12)],
                                    concurrency=12, reuse_connections=False)
    mesh_result.figure("active_limit_burst", dict(Counter(r.status for r in burst)))
    rejected = [r for r in burst if r.status == 503]
    assert any(r.status == 200 for r in burst) and rejected, (
        f"http2MaxRequests 4 must refuse some of 12 concurrent slow requests and pass others: {outcomes(burst)}")
    assert set(Counter(r.status for r in burst)) <= {200, 503}, outcomes(burst)
    assert not [r for r in rejected if r.headers.get("x-envoy-overloaded") != "true" or _from_echo(r)], (
        "the 503s must be the caller proxy's overflow (x-envoy-overloaded), not echo's")
    mesh_result.figure("overflow_log", assert_failed_as(
        mesh_platform, CALLER, rejected, mesh_timeouts, 503, "UO", direction="outbound",
        what="requests over http2MaxRequests"))

    # echo-v1 answers 500 to everything for 1.5 s: each try below fails 0.3 s after it arrives.
    control = mesh_meshed_client.send([Request("/meshconform/fail-for/1500", host="echo:8080", method="POST")])[0]
    assert control.status == 200, control.summary()
    path = f"/{new_marker('retry-budget')}/delay/300"
    failing = mesh_meshed_client.send([Request(path, host="echo:8080", headers={"x-retry": "yes"})
                                       for _ in range(4)], concurrency=4)
    assert all(r.status == 500 and _from_echo(r) for r in failing), (
        f"each request ends with echo's own 500 (a retry that overflows is not made): {outcomes(failing)}")
    per_request = _tries_at_v1(mesh_platform, mesh_timeouts, path, failing)
    mesh_result.figure("tries_per_request", dict(per_request))
    assert max(per_request) <= 3 and per_request[1] >= 2, (
        f"with at most 1 retry outstanding (subset budget's maxRetries 1), the retries of at least 2 of 4 "
        f"concurrent failing requests overflow "
        f"(tried once): tries per request {dict(per_request)}")
    # Leave echo-v1 healthy for the next check: told to stop failing now rather than waited out.
    healed = mesh_meshed_client.send([Request("/meshconform/fail-for/0", host="echo:8080", method="POST")])[0]
    assert healed.status == 200, healed.summary()
    wait_for(mesh_meshed_client, Request("/healed", host="echo:8080"), lambda r: r.status == 200, mesh_timeouts,
             "echo-v1 to stop failing")
