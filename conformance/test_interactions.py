"""Interactions and defaults of the resilience fields: a route timeout with retries and a per-try timeout, retryOn
conditions (and none), Istio's default retry policy, an injected abort on a route that retries, subsets of two labels.

What each check expects, and where it is documented:
- Envoy's router (envoyproxy.io, router filter, "A few notes on how Envoy does retries"): the route timeout
  **includes** all retries ("if the request timeout is set to 3s, and the first request attempt takes 2.7s, the
  retry has .3s to complete"); `x-envoy-upstream-rq-per-try-timeout-ms` / the retry policy's per-try timeout
  "allows for retries while maintaining a reasonable overall timeout". retry_on `5xx` retries any 5xx and a try
  that "does not respond at all (disconnect/reset/read timeout)"; `gateway-error` only 502, 503 and 504;
  `connect-failure` only a failed TCP connection ("not the request level"); `retriable-status-codes` the codes listed.
- istio.io VirtualService reference, HTTPRetry: `attempts` is the number of retries, "the maximum possible number of
  requests made will be 1 + attempts", and "when request timeout of the HTTP route or per_try_timeout is configured,
  the actual number of retries attempted also depends on" them; `perTryTimeout` is per try, "including the initial
  call and any retries"; a status code in `retryOn` joins `retriable_status_codes`. istiod's `retry.ConvertPolicy`
  starts from the default policy and replaces its conditions only when `retryOn` is given: retries without retryOn
  keep the default conditions.
- The default retry policy (facts/bookinfo-istio.md §0.8, Istio >= 1.28, the version under test is 1.31): 2 retries on
  `connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes` with no status codes, so a 503 from
  the app is not retried (up to 1.23 it was).
- istio.io VirtualService reference, HTTPRoute.fault: "timeouts or retries will not be enabled when faults are
  enabled on the client side"; the abort is the caller's proxy's local reply, flag FI (facts §3.2).
- istio.io DestinationRule reference, Subset.labels: "Labels apply a filter over the endpoints of a service in the
  service registry" (every label must match, as a Kubernetes selector); a subset no endpoint matches leaves its
  cluster empty, and Envoy answers 503 with flag UH ("no healthy upstream").

Tries are counted where they arrive: echo-v1's request log, by request id (the checks route to subset v1, so every
try lands on one instance, where echo's `/first/<n>/` limits a status or delay to a request's first n tries).
Timing bounds: a lower bound is the configured duration less TIMER_EARLINESS_S (Envoy's timers count from libevent's
cached loop time, so they may fire a little early); an upper bound adds the platform's measured base latency p99 and
0.5 s for a loaded 2-core machine."""

from __future__ import annotations

from collections import Counter

from meshconform.suite.checks import outcomes, wait_for_marker
from meshconform.suite.convergence import NeverConverged, await_settled, under_way
from meshconform.suite.failures import assert_failed_as, records_for
from meshconform.suite.timeouts import TIMER_EARLINESS_S
from meshconform.suite.timing import LatencyBounds
from meshconform.suite.unit import conformance_test
from meshconform.traffic.model import Request, Response

CALLER = [("default", "client")]
ECHO_V1 = ("default", "echo-v1")
SLACK = 0.5  # added to the measured base latency p99 in every upper time bound
SUBSET = "interactions/echo-v1-subset.yaml"
CAP_TIMEOUT = 0.5  # retries-within-route-timeout's route timeout, seconds (5 retries of 0.2 s each)
PER_TRY = 0.25  # per-try-timeout-retried's perTryTimeout, seconds


def _base_p99(vantage) -> float:
    replies = vantage.send([Request(f"/base/{i}", host="echo:8080") for i in range(50)], concurrency=10)
    return sorted(r.latency for r in replies)[int(len(replies) * 0.99) - 1]


def _bounds(what: str, replies: list[Response], timer: float, base_p99: float, name: str) -> LatencyBounds:
    """A timer's bounds on the replies: its duration less TIMER_EARLINESS_S .. plus the base p99 and SLACK."""
    return LatencyBounds.of(what, [r.latency for r in replies], timer - TIMER_EARLINESS_S, timer + base_p99 + SLACK,
                            f"the {timer:g} s {name} less {TIMER_EARLINESS_S:g} s timer earliness .. plus base p99 "
                            f"{base_p99:.3f} s + {SLACK:g} s")


def _tries(platform, replies: list[Response], timeouts, at_least: int | None = None) -> dict[str, list[float]]:
    """Arrival times at echo-v1 of every try of each reply's request, by request id. Tries the caller gave up
    on are logged when echo finishes them, so this waits until nothing is under way (see await_settled)."""
    ids = {r.request_id for r in replies}

    def arrivals() -> dict[str, list[float]]:
        found: dict[str, list[float]] = {i: [] for i in ids}
        for rec in platform.request_log(*ECHO_V1):
            if rec.get("request_id") in found:
                found[rec["request_id"]].append(float(rec["time"]))
        return {i: sorted(times) for i, times in found.items()}
    try:
        await_settled(lambda: sum(len(t) for t in arrivals().values()), timeouts, "echo-v1's request log to settle",
                      watch=under_way(platform, [*CALLER, ECHO_V1], ids),
                      at_least=len(ids) if at_least is None else at_least)
    except NeverConverged:
        pass  # fewer tries than expected ever arrived: the caller's assertion says which, with the counts
    return arrivals()


def _tries_counted(tries: dict[str, list[float]]) -> dict[int, int]:
    return dict(sorted(Counter(len(t) for t in tries.values()).items()))


@conformance_test("retries-within-route-timeout", "A 0.5 s route timeout with 5 retries of 0.2 s each (retryOn 5xx) on "
                  "a reply that always takes 0.6 s: every request ends as 504 after 0.5 s (not 6 x 0.2 s), logged "
                  "by the caller's proxy as UT, after 2 or 3 tries at echo (no try starts after the route timeout).",
                  features={"RequestTimeout", "Retries"}, manifests=(SUBSET, "interactions/echo-timeout-retries.yaml"),
                  values={"cap_timeout": f"{CAP_TIMEOUT:g}s", "cap_attempts": 5, "cap_per_try": "0.2s",
                          "per_try_route_timeout": "4s", "per_try": "0.5s"})
def test_retries_in_route_timeout(mesh_platform, mesh_manifests, mesh_meshed_client, mesh_timeouts,
                                  mesh_result) -> None:
    timeout = CAP_TIMEOUT
    wait_for_marker(mesh_meshed_client, Request("/probe", host="echo:8080"), mesh_manifests.marker, mesh_timeouts)
    base_p99 = _base_p99(mesh_meshed_client)
    replies = mesh_meshed_client.send([Request(f"/cap/delay/600?i={i}", host="echo:8080") for i in range(10)],
                                      concurrency=10)
    bounds = _bounds("requests ended by the route timeout", replies, timeout, base_p99, "route timeout")
    tries = _tries(mesh_platform, replies, mesh_timeouts)
    mesh_result.figure("replies", {"statuses": outcomes(replies), "latency_s": bounds.to_json(),
                                   "tries_per_request": _tries_counted(tries)})
    assert all(r.status == 504 for r in replies), f"expected 10 x 504 (route timeout): {outcomes(replies)}"
    assert bounds.passed, f"the route timeout must end the request, retries included: {bounds.describe()}"
    # Tries start at 0, ~0.2 and ~0.4 s (plus a back-off of at most 25 and 75 ms); a fourth would start after 0.5 s.
    assert all(2 <= len(t) <= 3 for t in tries.values()), (
        f"each request should be tried 2 or 3 times within the route timeout: {_tries_counted(tries)}")
    mesh_result.figure("caller_proxy_log", assert_failed_as(
        mesh_platform, CALLER, replies, mesh_timeouts, 504, "UT", direction="outbound", what="timed-out requests"))


@conformance_test("per-try-timeout-retried", "With perTryTimeout 0.25 s, 2 retries on 5xx and a 4 s route timeout, a "
                  "request whose first try would take 1 s is cut after 0.25 s and answered 200 by its second try "
                  "(exactly 2 tries at echo, the second arriving >= 0.15 s after the first), well within the route "
                  "timeout.", features={"RequestTimeout", "Retries"},
                  manifests=(SUBSET, "interactions/echo-timeout-retries.yaml"),
                  values={"cap_timeout": "1s", "cap_attempts": 5, "cap_per_try": "0.4s", "per_try_route_timeout": "4s",
                          "per_try": f"{PER_TRY:g}s"})
def test_per_try_timeout_retried(mesh_platform, mesh_manifests, mesh_meshed_client, mesh_timeouts, mesh_result) -> None:
    per_try = PER_TRY
    wait_for_marker(mesh_meshed_client, Request("/probe", host="echo:8080"), mesh_manifests.marker, mesh_timeouts)
    base_p99 = _base_p99(mesh_meshed_client)
    replies = mesh_meshed_client.send(
        [Request(f"/per-try/first/1/delay/1000?i={i}", host="echo:8080") for i in range(10)], concurrency=10)
    bounds = _bounds("requests retried after a per-try timeout", replies, per_try, base_p99, "perTryTimeout")
    tries = _tries(mesh_platform, replies, mesh_timeouts, at_least=2 * len(replies))
    gaps = sorted(round(t[1] - t[0], 3) for t in tries.values() if len(t) >= 2)
    mesh_result.figure("replies", {"statuses": outcomes(replies), "latency_s": bounds.to_json(),
                                   "tries_per_request": _tries_counted(tries), "second_try_after_s": gaps})
    assert all(r.status == 200 for r in replies), f"the retried try should answer: {outcomes(replies)}"
    assert all(len(t) == 2 for t in tries.values()), f"expected 2 tries per request: {_tries_counted(tries)}"
    # The app stamps both arrivals; the first reached it a forwarding delay after the caller's proxy started the
    # per-try timer, so allow 0.1 s for that (a mesh retrying at once shows gaps near 0).
    assert all(gap >= per_try - 0.1 for gap in gaps), f"a retry started well before perTryTimeout: {gaps}"
    assert bounds.passed, f"the slow first try should be cut and the retry answer promptly: {bounds.describe()}"


RETRY_ON = {  # path prefix -> {status echo answers: tries expected}
    "connect-failure": {503: 1, 500: 1},  # the app answered: no connection failed
    "gateway-error": {503: 3, 500: 1},
    "code-503": {503: 3, 500: 1},
    "no-retry-on": {503: 1, 500: 1},  # attempts without retryOn keep the default conditions: no status codes
}


@conformance_test("retry-on-conditions", "Two retries under retryOn connect-failure, gateway-error, '503' and none: "
                  "echo's 503 is tried 1, 3, 3 and 1 times, its 500 once under each (counted at echo by request id).",
                  features={"Retries"}, manifests=(SUBSET, "interactions/echo-retry-on.yaml"))
def test_retry_on_conditions(mesh_platform, mesh_manifests, mesh_meshed_client, mesh_timeouts, mesh_result) -> None:
    marker = mesh_manifests.marker
    wait_for_marker(mesh_meshed_client, Request("/probe", host="echo:8080"), marker, mesh_timeouts)
    cases = [(prefix, status) for prefix, expected in RETRY_ON.items() for status in expected]
    requests = [Request(f"/{prefix}/status/{status}?i={i}", host="echo:8080") for prefix, status in cases
                for i in range(5)]
    replies = mesh_meshed_client.send(requests)
    tries = _tries(mesh_platform, replies, mesh_timeouts)
    observed: dict[str, dict[int, int]] = {}
    wrong = []
    for (prefix, status), batch in zip(cases, (replies[i:i + 5] for i in range(0, len(replies), 5)), strict=True):
        counted = Counter(len(tries[r.request_id]) for r in batch)
        observed[f"{prefix} {status}"] = dict(counted)
        if counted != Counter({RETRY_ON[prefix][status]: 5}) or any(r.status != status for r in batch):
            wrong.append(f"retryOn {prefix}, echo answering {status}: expected {RETRY_ON[prefix][status]} "
                         f"tries each, saw {dict(counted)} ({outcomes(batch)})")
    mesh_result.figure("tries_per_request", observed)
    assert not wrong, "; ".join(wrong)


@conformance_test("default-retry-policy", "A route without `retries` follows Istio's default retry policy (1.28 and "
                  "later: 2 retries on connect-failure, refused-stream, unavailable, cancelled): a 503 from the app "
                  "is not retried (10 of 10 requests reach echo exactly once); an answer carrying gRPC status 14 "
                  "(unavailable) is tried 3 times, one carrying 13 (internal, not a default condition) once.",
                  features={"Retries"}, manifests=(SUBSET, "interactions/echo-retry-on.yaml"))
def test_default_retry_policy(mesh_platform, mesh_manifests, mesh_meshed_client, mesh_timeouts, mesh_result) -> None:
    marker = mesh_manifests.marker
    wait_for_marker(mesh_meshed_client, Request("/probe", host="echo:8080"), marker, mesh_timeouts)
    # One batch, three kinds of 10: echo answers each with what its path asks (a status, or a gRPC status header).
    kinds = {  # kind: (path, tries each request must take, why)
        "503": ("/default/status/503", 1, "the default retry policy does not retry a 503 from the app"),
        "unavailable": ("/default/grpc-status/14", 3,
                        "the default retry policy retries gRPC status 14 (unavailable) twice, 3 tries"),
        "internal": ("/default/grpc-status/13", 1, "gRPC status 13 (internal) is not a default retry condition")}
    per_kind = 10
    replies = mesh_meshed_client.send([Request(f"{path}?i={i}", host="echo:8080")
                                       for path, _, _ in kinds.values() for i in range(per_kind)])
    tries = _tries(mesh_platform, replies, mesh_timeouts)
    replies_of = {kind: replies[n * per_kind:(n + 1) * per_kind] for n, kind in enumerate(kinds)}
    tries_of = {kind: {r.request_id: tries.get(r.request_id, []) for r in sent} for kind, sent in replies_of.items()}
    mesh_result.figure("tries_per_request", {kind: _tries_counted(t) for kind, t in tries_of.items()})
    assert all(r.status == 503 for r in replies_of["503"]), outcomes(replies_of["503"])
    for kind, (_, expected, why) in kinds.items():
        assert all(len(t) == expected for t in tries_of[kind].values()), (
            f"{why}: tries per request {_tries_counted(tries_of[kind])}")


@conformance_test("fault-abort-not-retried", "An injected 503 abort on a route that retries 5xx twice: the caller's "
                  "proxy answers 503 itself (FI) and no try reaches echo, neither its proxy nor the app; requests on "
                  "another path reach echo once each.", features={"FaultAbort", "Retries"},
                  manifests=(SUBSET, "interactions/echo-abort-retries.yaml"))
def test_fault_abort_not_retried(mesh_platform, mesh_manifests, mesh_meshed_client, mesh_timeouts, mesh_result) -> None:
    marker = mesh_manifests.marker
    wait_for_marker(mesh_meshed_client, Request("/probe", host="echo:8080"), marker, mesh_timeouts)
    aborted = mesh_meshed_client.send([Request(f"/abort/{i}", host="echo:8080") for i in range(20)])
    assert all(r.status == 503 for r in aborted), f"expected 20 x 503 (the abort): {outcomes(aborted)}"
    mesh_result.figure("caller_proxy_log", assert_failed_as(
        mesh_platform, CALLER, aborted, mesh_timeouts, 503, "FI", direction="outbound", what="aborted requests"))
    # Absence needs a witness: requests sent after the aborts, which do reach echo. Once echo's proxy has logged
    # them (and the app too), any try of an aborted request would have been logged before them.
    after = mesh_meshed_client.send([Request(f"/after/{i}", host="echo:8080") for i in range(10)])
    assert all(r.status == 200 for r in after), outcomes(after)
    records_for(mesh_platform, [ECHO_V1], after, mesh_timeouts, direction="inbound")
    aborted_ids = {r.request_id for r in aborted}
    at_proxy = [rec for rec in mesh_platform.access_log(*ECHO_V1) if rec.get("request_id") in aborted_ids]
    tries = _tries(mesh_platform, aborted + after, mesh_timeouts, at_least=len(after))
    at_app = sum(len(tries[i]) for i in aborted_ids)
    mesh_result.figure("aborted_tries", {"echo_proxy": len(at_proxy), "echo_app": at_app})
    assert not at_proxy and not at_app, (
        f"an aborted request must not be tried: echo's proxy logged {len(at_proxy)} tries "
        f"({Counter(str(rec.get('status')) + ' ' + str(rec.get('flags')) for rec in at_proxy)}), the app {at_app}")


@conformance_test("subset-multi-label", "Subsets of two labels select pods carrying both: {lane: blue, version: v1} "
                  "is echo-v1 only although echo-v2 is in lane blue too (50 of 50 replies from v1), and "
                  "{version: v2, lane: green} is no pod: 20 of 20 requests get 503 from the caller's proxy (UH), none "
                  "from echo-v2.", features={"WeightedRouting"},
                  manifests=("interactions/echo-multi-label-subsets.yaml",))
def test_subset_multi_label(mesh_platform, mesh_manifests, mesh_meshed_client, mesh_timeouts, mesh_result) -> None:
    marker = mesh_manifests.marker
    wait_for_marker(mesh_meshed_client, Request("/probe", host="echo:8080"), marker, mesh_timeouts)
    blue = mesh_meshed_client.send([Request(f"/blue/{i}", host="echo:8080") for i in range(50)])
    green = mesh_meshed_client.send([Request(f"/green/{i}", host="echo:8080", headers={"x-lane": "green"})
                                     for i in range(20)])

    def who(reply: Response) -> str:
        return f"{reply.status} from {(reply.json() or {}).get('version', 'the proxy')}"
    mesh_result.figure("replies", {"blue-v1": outcomes(blue, who), "green-v2": outcomes(green, who)})
    assert all(r.status == 200 and (r.json() or {}).get("version") == "v1" for r in blue), (
        f"subset {{lane: blue, version: v1}} must reach echo-v1 only: {outcomes(blue, who)}")
    assert all(r.status == 503 and not (r.json() or {}).get("service") for r in green), (
        f"subset {{version: v2, lane: green}} selects no pod: expected 503 from the caller's proxy, saw "
        f"{outcomes(green, who)}")
    mesh_result.figure("caller_proxy_log", assert_failed_as(
        mesh_platform, CALLER, green, mesh_timeouts, 503, "UH", direction="outbound", what="requests to green-v2"))
