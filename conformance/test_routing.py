"""Weighted routing (traffic shifting) and header-based routing, through echo and through Bookinfo."""

from __future__ import annotations

import pytest

from meshconform.bookinfo import pages
from meshconform.stats.proportions import DEFAULT_ALPHA
from meshconform.suite.checks import bookinfo_login, outcomes, wait_for_marker
from meshconform.suite.sampling import measure_shares
from meshconform.suite.unit import conformance_test
from meshconform.traffic.model import Request, Response

TOLERANCE = 0.05  # a share is accepted within ±5 points; false-failure probability DEFAULT_ALPHA (1e-4)
BOOKINFO_BASE = ("bookinfo/networking/bookinfo-gateway.yaml", "bookinfo/networking/destination-rule-all.yaml")


def _reached(reply: Response) -> str:
    return f"reached {_version(reply)}"


def _version(reply: Response) -> str:
    return pages.version(reply) or f"error:{reply.status or reply.error}"


@pytest.mark.parametrize("weights", [(100, 0), (80, 20), (50, 50), (10, 90)], ids=lambda w: f"{w[0]}-{w[1]}")
@conformance_test("weighted-split-echo", "A VirtualService splits echo traffic between subsets by weight; only "
                  "the weighted subsets answer (sequential binomial test, false-failure 1e-4, tolerance 0.05).",
                  features={"WeightedRouting"}, manifests=("routing/echo-weighted.yaml",))
def test_weighted_split(weights, mesh_config, mesh_meshed_client, mesh_timeouts, mesh_result) -> None:  # type: ignore[no-untyped-def]
    marker = mesh_config.apply_manifest("routing/echo-weighted.yaml", v1=weights[0], v2=weights[1])
    wait_for_marker(mesh_meshed_client, Request("/probe", host="echo:8080"), marker, mesh_timeouts)
    expected = {v: w / sum(weights) for v, w in zip(("v1", "v2"), weights, strict=True) if w}
    sample = measure_shares(mesh_meshed_client, lambda i: Request(f"/split/{i}", host="echo:8080"), _version,
                            expected, DEFAULT_ALPHA, TOLERANCE)
    mesh_result.figure("shares", sample.to_json())
    assert sample.passed, sample.describe()


BOOKINFO_SHIFTS = {
    "all-v1": ("bookinfo/networking/virtual-service-all-v1.yaml", {"v1": 1.0}),
    "reviews-50-v3": ("bookinfo/networking/virtual-service-reviews-50-v3.yaml", {"v1": 0.5, "v3": 0.5}),
    "reviews-80-20": ("bookinfo/networking/virtual-service-reviews-80-20.yaml", {"v1": 0.8, "v2": 0.2}),
    "reviews-90-10": ("bookinfo/networking/virtual-service-reviews-90-10.yaml", {"v1": 0.9, "v2": 0.1}),
    "reviews-v3": ("bookinfo/networking/virtual-service-reviews-v3.yaml", {"v3": 1.0}),
}


@pytest.mark.parametrize("scenario", list(BOOKINFO_SHIFTS))
@conformance_test("bookinfo-traffic-shifting", "Istio's Bookinfo traffic-shifting configs, judged on the reviews "
                  "version named by the product page fetched through the ingress gateway.",
                  features={"WeightedRouting", "GatewayHTTP"}, parallel=False,
                  manifests=(*BOOKINFO_BASE, *(manifest for manifest, _ in BOOKINFO_SHIFTS.values())))
def test_bookinfo_traffic_shifting(scenario, mesh_config, mesh_ingress, mesh_timeouts, mesh_result) -> None:  # type: ignore[no-untyped-def]
    manifest, expected = BOOKINFO_SHIFTS[scenario]
    marker = mesh_config.apply_manifest(*BOOKINFO_BASE, manifest)
    wait_for_marker(mesh_ingress, Request("/productpage"), marker, mesh_timeouts)
    sample = measure_shares(mesh_ingress, lambda i: Request("/productpage"), _version, expected, DEFAULT_ALPHA,
                            TOLERANCE, concurrency=32)
    mesh_result.figure("shares", sample.to_json())
    assert sample.passed, sample.describe()


@conformance_test("header-routing-jason", "end-user: jason goes to reviews v2, everyone else (including 'Jason') "
                  "to v1: directly from a meshed client, and for a user logged in to the product page.",
                  features={"HeaderRouting"}, parallel=False,
                  manifests=(*BOOKINFO_BASE, "bookinfo/networking/virtual-service-all-v1.yaml",
                             "bookinfo/networking/virtual-service-reviews-test-v2.yaml"))
def test_header_routing(mesh_config, mesh_meshed_client, mesh_ingress, mesh_timeouts, mesh_result) -> None:  # type: ignore[no-untyped-def]
    marker = mesh_config.apply_manifest(*BOOKINFO_BASE, "bookinfo/networking/virtual-service-all-v1.yaml",
                                        "bookinfo/networking/virtual-service-reviews-test-v2.yaml")
    wait_for_marker(mesh_meshed_client, Request("/reviews/0", host="reviews:9080"), marker, mesh_timeouts)
    wait_for_marker(mesh_ingress, Request("/productpage"), marker, mesh_timeouts)
    # Every request must agree: 180 requests see a 5% misrouting with probability 1 - 1e-4.
    n = 180
    jason = mesh_meshed_client.send([Request("/reviews/0", host="reviews:9080", headers={"end-user": "jason"})] * n,
                                    concurrency=20)
    others = mesh_meshed_client.send([Request("/reviews/0", host="reviews:9080", headers={"end-user": "Jason"})] * n,
                                     concurrency=20)
    cookie = bookinfo_login(mesh_ingress, "jason")
    page_jason = mesh_ingress.send([Request("/productpage", headers={"cookie": cookie})] * 20)
    page_anonymous = mesh_ingress.send([Request("/productpage")] * 20)
    for name, replies in {"direct_jason": jason, "direct_other": others, "page_jason": page_jason,
                          "page_anonymous": page_anonymous}.items():
        mesh_result.figure(name, {v: sum(_version(r) == v for r in replies) for v in {_version(r) for r in replies}})
    assert {_version(r) for r in jason} == {"v2"}, \
        f"end-user jason must reach reviews v2 only: {outcomes(jason, _reached)} of {n}"
    assert {_version(r) for r in others} == {"v1"}, \
        f"end-user Jason (not an exact match) must reach reviews v1 only: {outcomes(others, _reached)} of {n}"
    assert {_version(r) for r in page_jason} == {"v2"}, \
        f"jason's product page must show reviews v2 only: {outcomes(page_jason, _reached)} of 20"
    assert {_version(r) for r in page_anonymous} == {"v1"}, \
        f"an anonymous product page must show reviews v1 only: {outcomes(page_anonymous, _reached)} of 20"
