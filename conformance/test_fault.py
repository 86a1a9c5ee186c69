"""Fault injection: abort and delay, with percentages, scoped by a match; and Bookinfo's fault scenarios."""

from __future__ import annotations

from meshconform.bookinfo import pages
from meshconform.stats.proportions import DEFAULT_ALPHA
from meshconform.suite.checks import bookinfo_login, outcomes, wait_for_marker
from meshconform.suite.failures import assert_failed_as
from meshconform.suite.sampling import measure_shares
from meshconform.suite.timeouts import TIMER_EARLINESS_S
from meshconform.suite.timing import LatencyBounds
from meshconform.suite.unit import conformance_test
from meshconform.traffic.model import Request, Response

ABORT = {"x-fault": "abort"}
BOOKINFO = tuple(f"bookinfo/networking/{name}.yaml" for name in (
    "bookinfo-gateway", "destination-rule-all", "virtual-service-all-v1", "virtual-service-reviews-test-v2"))


# Long enough that load on a small machine cannot push a prompt reply past it (prompt replies take milliseconds on
# loopback and tens of them on a cluster). Every batch waits one delay, so the sample is sent in batches of 200 all
# at once: one batch decides on a conforming mesh (mean 202 requests).
DELAY = 0.5


def _abort_outcome(reply: Response) -> str:
    return {418: "aborted", 200: "passed"}.get(reply.status or 0, f"other:{reply.status or reply.error}")


@conformance_test("fault-abort", "Abort with 418 for requests matching a header, on 100% and on 30% of them "
                  "(tolerance 0.05, false-failure 1e-4); requests without the header are untouched.",
                  features={"FaultAbort"}, manifests=("fault/echo-abort.yaml",), values={"status": 418, "percent": 100})
def test_fault_abort(mesh_platform, mesh_manifests, mesh_meshed_client, mesh_timeouts, mesh_result) -> None:
    for percent in (100, 30):
        marker = mesh_manifests.marker if percent == 100 else mesh_manifests.update(percent=percent)
        wait_for_marker(mesh_meshed_client, Request("/probe", host="echo:8080"), marker, mesh_timeouts)
        sample = measure_shares(mesh_meshed_client, lambda i: Request(f"/fault/{i}", host="echo:8080", headers=ABORT),
                                _abort_outcome,
                                {"aborted": percent / 100, "passed": 1 - percent / 100} if percent < 100
                                else {"aborted": 1.0}, DEFAULT_ALPHA, 0.05)
        untouched = mesh_meshed_client.send([Request(f"/plain/{i}", host="echo:8080") for i in range(20)])
        mesh_result.figure(f"abort_{percent}", sample.to_json())
        assert sample.passed, sample.describe()
        assert {r.status for r in untouched} == {200}, [r.summary() for r in untouched[:3]]
        if percent == 100:  # the 418s are the caller's proxy injecting the fault (FI), not echo answering 418
            aborted = [r for r in sample.replies if r.status == 418][:20]
            mesh_result.figure("caller_proxy_log", assert_failed_as(
                mesh_platform, [("default", "client")], aborted, mesh_timeouts, 418, "FI", direction="outbound",
                what="aborted requests"))


@conformance_test("fault-delay", "A 0.5 s delay on 50% of requests under /fault (tolerance 0.1, false-failure 1e-4): "
                  "delayed replies take at least the delay and at most delay + the platform's measured base latency "
                  "p99 + 1 s; the deprecated integer `percent: 100` delays every request; other paths are not "
                  "delayed.", features={"FaultDelay"},
                  manifests=("fault/echo-delay.yaml",), values={"delay": f"{DELAY:g}s", "percent": 50})
def test_fault_delay(mesh_manifests, mesh_meshed_client, mesh_timeouts, mesh_result) -> None:
    delay = DELAY
    at_least = delay - TIMER_EARLINESS_S  # what a delayed reply takes at the least
    wait_for_marker(mesh_meshed_client, Request("/other", host="echo:8080"), mesh_manifests.marker, mesh_timeouts)
    # The base latency on paths the config leaves undelayed (its last route, as before it was applied).
    base = mesh_meshed_client.send([Request(f"/base/{i}", host="echo:8080") for i in range(100)], concurrency=10)
    base_p99 = sorted(r.latency for r in base)[98]
    # Other paths, and the deprecated integer `percent: 100` (which delays every request), go with the sample's
    # first batch, all at once: one delay's wait for all of them.
    others = ([Request(f"/other/{i}", host="echo:8080") for i in range(20)]
              + [Request(f"/deprecated-percent/{i}", host="echo:8080") for i in range(10)])
    sample = measure_shares(mesh_meshed_client, lambda i: Request(f"/fault/{i}", host="echo:8080"),
                            lambda r: "failed" if r.status != 200 else "delayed" if r.latency >= at_least else "prompt",
                            {"delayed": 0.5, "prompt": 0.5}, DEFAULT_ALPHA, 0.1, concurrency=400, batch=200,
                            alongside=others)
    upper = delay + base_p99 + 1.0
    derivation = f"the {delay:g} s delay less {TIMER_EARLINESS_S:g} s timer earliness .. plus base p99 " \
                 f"{base_p99:.3f} s + 1 s"
    delayed = LatencyBounds.of("delayed replies", [r.latency for r in sample.replies if r.latency >= at_least],
                               at_least, upper, derivation)
    untouched, integer = sample.alongside[:20], sample.alongside[20:]
    integer_bounds = LatencyBounds.of("replies under the integer percent: 100", [r.latency for r in integer],
                                      at_least, upper, derivation)
    mesh_result.figure("delayed", sample.to_json())
    mesh_result.figure("delayed_latency_s", delayed.to_json())
    mesh_result.figure("integer_percent_latency_s", integer_bounds.to_json())
    assert sample.passed, sample.describe()
    assert delayed.passed, delayed.describe()
    assert all(r.status == 200 and r.latency < at_least for r in untouched), [r.summary() for r in untouched[:3]]
    assert all(r.status == 200 for r in integer) and integer_bounds.passed, \
        f"the deprecated `percent: 100` must delay every request by {delay:g}s: {integer_bounds.describe()}"


@conformance_test("bookinfo-ratings-delay", "Bookinfo: a 7 s ratings delay for jason with reviews v2 makes the "
                  "product page show 'Sorry, product reviews are currently unavailable' after about 6 s "
                  "(productpage's 3 s timeout, tried twice); other users are unaffected.",
                  features={"FaultDelay", "BookinfoScenarios"},
                  manifests=(*BOOKINFO, "bookinfo/networking/virtual-service-ratings-test-delay.yaml"))
def test_bookinfo_ratings_delay(mesh_manifests, mesh_ingress, mesh_timeouts, mesh_result) -> None:
    cookie = _bookinfo_as_jason(mesh_manifests, mesh_ingress, mesh_timeouts)
    base = mesh_ingress.send([Request("/productpage") for _ in range(20)])
    jason = mesh_ingress.send([Request("/productpage", headers={"cookie": cookie}, timeout=20) for _ in range(8)])
    base_max = max(r.latency for r in base)
    # 2 tries x 3 s: at least 6 s (less a scheduling margin), and ended by productpage, not by the 7 s delay.
    bounds = LatencyBounds.of("jason's product pages", [r.latency for r in jason], 5.9, 6.0 + base_max + 1.0,
                              f"productpage's 2 tries x 3 s less 0.1 s .. plus anonymous max {base_max:.3f} s + 1 s")
    mesh_result.figure("jason_latencies_s", bounds.to_json())
    mesh_result.figure("anonymous_max_latency_s", round(base_max, 3))
    assert all(r.status == 200 for r in base + jason), [r.summary() for r in base + jason if r.status != 200][:3]
    assert all("Sorry, product reviews are currently unavailable for this book." in r.body for r in jason), \
        f"jason's page must say reviews are unavailable: {sum('currently unavailable' in r.body for r in jason)} " \
        f"of {len(jason)} did"
    assert bounds.passed, bounds.describe()
    assert all("Sorry" not in r.body for r in base), \
        f"other users' pages must show reviews: {sum('Sorry' in r.body for r in base)} of {len(base)} said 'Sorry'"


@conformance_test("bookinfo-ratings-abort", "Bookinfo: an HTTP 500 abort on ratings for jason makes the product page "
                  "say 'Ratings service is currently unavailable'; other users see reviews v1 without ratings.",
                  features={"FaultAbort", "BookinfoScenarios"},
                  manifests=(*BOOKINFO, "bookinfo/networking/virtual-service-ratings-test-abort.yaml"))
def test_bookinfo_ratings_abort(mesh_manifests, mesh_ingress, mesh_timeouts, mesh_result) -> None:
    cookie = _bookinfo_as_jason(mesh_manifests, mesh_ingress, mesh_timeouts)
    jason = mesh_ingress.send([Request("/productpage", headers={"cookie": cookie})] * 180, concurrency=20)
    anonymous = mesh_ingress.send([Request("/productpage")] * 20)
    unavailable = sum("Ratings service is currently unavailable" in r.body for r in jason)
    mesh_result.figure("jason_unavailable", f"{unavailable}/{len(jason)}")
    assert unavailable == len(jason), [r.summary() for r in jason if "currently unavailable" not in r.body][:3]
    assert all(pages.version(r) == "v2" for r in jason), \
        f"jason must see reviews v2: {outcomes(jason, lambda r: f'showed {pages.version(r)}')} of {len(jason)}"
    assert all(r.status == 200 and pages.version(r) == "v1" and "unavailable" not in r.body for r in anonymous), \
        "other users must see reviews v1 with ratings: " + outcomes(anonymous, lambda r: (
            f"answered {r.status} with {pages.version(r)}" + (", unavailable" if "unavailable" in r.body else "")))



def _bookinfo_as_jason(mesh_manifests, mesh_ingress, mesh_timeouts) -> str:
    """Once Bookinfo routed to v1 (reviews v2 for jason) plus the scenario's VirtualService is in force: jason's
    cookie."""
    wait_for_marker(mesh_ingress, Request("/productpage"), mesh_manifests.marker, mesh_timeouts)
    return bookinfo_login(mesh_ingress, "jason")
