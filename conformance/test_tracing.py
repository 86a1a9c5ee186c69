"""Trace context: one request entering at the gateway keeps one trace across every Bookinfo hop.

Bookinfo's apps copy the trace headers onto their calls (productpage -> details, reviews -> ratings); the
proxies must not break that: they make an x-request-id when none came in, and keep the incoming trace
ids whether or not they trace themselves (a tracing proxy may start a child span, so span ids may change
from hop to hop, but never the trace id or the sampling decision). Judged from the apps' request logs,
which record each request's trace headers; the hops of one request are tied by its user-agent, which
Bookinfo's apps forward unchanged. Where the apps keep no such records (on a cluster, Istio's own Bookinfo
images log plain text; a proxy's default access log names no trace header) the check is reported not applicable,
with that reason: it cannot see a trace there, so it does not judge one."""

from __future__ import annotations

import re
import secrets
from typing import Any

import pytest

from meshconform.platform.api import RequestsNotRecorded
from meshconform.suite.checks import new_marker, wait_for_marker
from meshconform.suite.convergence import await_convergence
from meshconform.suite.unit import conformance_test
from meshconform.traffic.model import Request

BOOKINFO = ("bookinfo/networking/bookinfo-gateway.yaml", "bookinfo/networking/destination-rule-all.yaml",
            "bookinfo/networking/virtual-service-reviews-v3.yaml")
# Every request must keep its trace: 180 requests see a 5 % breakage with probability 1 - 1e-4.
SAMPLE = 180
HOPS = {"productpage": ("productpage-v1",), "details": ("details-v1",), "reviews": ("reviews-v3",),
        "ratings": ("ratings-v1",)}
TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
B3_ID = re.compile(r"^[0-9a-f]{16}([0-9a-f]{16})?$")
# What the client sends: W3C trace context, B3 (multi-header), both with an x-request-id, or nothing at all.
VARIANTS = {"none": (False, False, False), "w3c": (True, False, False), "b3": (False, True, True),
            "all": (True, True, True)}


def _context(w3c: bool, b3: bool) -> tuple[dict[str, str], dict[str, str]]:
    """(headers to send, what each hop must then carry): fresh ids per request."""
    headers: dict[str, str] = {}
    expect: dict[str, str] = {}
    if w3c:
        trace = secrets.token_hex(16)
        headers |= {"traceparent": f"00-{trace}-{secrets.token_hex(8)}-01", "tracestate": "meshconform=1"}
        expect["w3c_trace"] = trace
    if b3:
        trace = secrets.token_hex(16)
        headers |= {"x-b3-traceid": trace, "x-b3-spanid": secrets.token_hex(8), "x-b3-sampled": "1"}
        expect |= {"b3_trace": trace, "b3_sampled": "1"}
    return headers, expect


def _hop_problems(hops: dict[str, dict[str, Any]], expect: dict[str, str]) -> list[str]:
    """What breaks one trace across the hops of one request (an empty list: one consistent trace)."""
    problems = []
    missing = sorted(set(HOPS) - set(hops))
    if missing:
        return [f"no request at {', '.join(missing)}"]
    ids = {name: rec.get("request_id") for name, rec in hops.items()}
    if not all(ids.values()) or len(set(ids.values())) != 1:
        problems.append(f"x-request-id differs or is missing across hops: {ids}")
    traces = {name: rec.get("trace") or {} for name, rec in hops.items()}
    w3c = {name: TRACEPARENT.match(t.get("traceparent", "")) for name, t in traces.items()}
    b3 = {name: t.get("x-b3-traceid") for name, t in traces.items()}
    if "w3c_trace" in expect:
        seen = {name: m.group(1) if m else traces[name].get("traceparent") for name, m in w3c.items()}
        if set(seen.values()) != {expect["w3c_trace"]}:
            problems.append(f"traceparent trace id {expect['w3c_trace']} not kept at every hop: {seen}")
    elif any(w3c.values()) and len({m.group(1) if m else None for m in w3c.values()}) != 1:
        problems.append(f"a traceparent made on the way is not the same trace at every hop: {traces}")
    if "b3_trace" in expect:
        if set(b3.values()) != {expect["b3_trace"]}:
            problems.append(f"x-b3-traceid {expect['b3_trace']} not kept at every hop: {b3}")
        sampled = {name: t.get("x-b3-sampled") for name, t in traces.items()}
        if set(sampled.values()) != {expect["b3_sampled"]}:
            problems.append(f"x-b3-sampled {expect['b3_sampled']} not kept at every hop: {sampled}")
        spans = {name: t.get("x-b3-spanid", "") for name, t in traces.items()}
        if not all(B3_ID.match(s) for s in spans.values()):
            problems.append(f"x-b3-spanid missing or malformed at a hop: {spans}")
    elif any(b3.values()) and len(set(b3.values())) != 1:
        problems.append(f"a B3 trace made on the way is not the same trace at every hop: {b3}")
    return problems


@pytest.mark.parametrize("variant", list(VARIANTS))
@conformance_test("trace-context", "A request entering at the gateway with W3C traceparent, B3 headers, both, or "
                  "no trace context reaches productpage, details, reviews and ratings with one x-request-id "
                  "(made by the proxy when absent) and the incoming trace ids and sampling flag at every hop "
                  f"({SAMPLE} requests each: a 5 % breakage is seen with probability 1 - 1e-4).",
                  features={"TraceContext"}, manifests=BOOKINFO)
def test_trace_context(variant, mesh_platform, mesh_manifests, mesh_ingress, mesh_timeouts, mesh_result) -> None:
    w3c, b3, with_request_id = VARIANTS[variant]
    try:
        for deployments in HOPS.values():
            for deployment in deployments:
                mesh_platform.request_log("default", deployment)
    except RequestsNotRecorded as exc:
        pytest.skip(f"not applicable on this platform: {exc}")
    wait_for_marker(mesh_ingress, Request("/productpage"), mesh_manifests.marker, mesh_timeouts)
    agent = new_marker(f"trace-{variant}")  # user-agent prefix: ties each request's hops, and only this test's
    plans = []
    for i in range(SAMPLE):
        headers, expect = _context(w3c, b3)
        plans.append((Request("/productpage", headers={**headers, "user-agent": f"{agent}/{i}"},
                              send_request_id=with_request_id), expect))
    replies = mesh_ingress.send([request for request, _ in plans], concurrency=16)
    assert all(r.status == 200 for r in replies), [r.summary() for r in replies if r.status != 200][:3]
    hops: dict[str, dict[str, dict[str, Any]]] = {}

    def all_logged() -> tuple[bool, str]:
        hops.clear()
        for hop, deployments in HOPS.items():
            for deployment in deployments:
                for rec in mesh_platform.request_log("default", deployment):
                    if (rec.get("user_agent") or "").startswith(f"{agent}/"):
                        hops.setdefault(rec["user_agent"], {})[hop] = rec
        complete = sum(len(h) == len(HOPS) for h in hops.values())
        return complete == SAMPLE, f"{complete} of {SAMPLE} requests logged at all {len(HOPS)} hops"
    await_convergence(all_logged, mesh_timeouts, "every hop of every request in the request logs", consecutive=1,
                      pause=mesh_timeouts.log_poll_interval)
    broken = {}
    for request, expect in plans:
        problems = _hop_problems(hops.get(request.headers["user-agent"], {}), expect)
        if problems:
            broken[request.headers["user-agent"]] = problems
    mesh_result.figure("trace", {"requests": SAMPLE, "hops": list(HOPS), "broken": len(broken),
                                 "examples": dict(list(broken.items())[:3])})
    assert not broken, f"{len(broken)} of {SAMPLE} requests lost their trace: {dict(list(broken.items())[:3])}"
