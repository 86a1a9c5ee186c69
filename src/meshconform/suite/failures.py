"""How a request failed, from the proxies' access logs: a negative check asserts the mechanism (RBAC's 403,
the circuit breaker's overflow, the route timeout, no route), not merely that something failed.

Envoy's response flags and details (facts/bookinfo-istio.md, "Envoy local replies and response flags"; Istio's
default access log format carries %RESPONSE_FLAGS% and %RESPONSE_CODE_DETAILS% too):
- no route (unbound host or path): 404, flag NR;
- circuit-breaker overflow at the caller's proxy: 503, flag UO (and `x-envoy-overloaded: true` on the reply);
- route timeout: 504, flag UT;
- AuthorizationPolicy denial: 403, details starting `rbac_access_denied`.

Where the mesh writes no access log the platform can read (a vendor's mesh without access logging: the platform
raises AccessLogNotRecorded), `assert_failed_as` judges the mechanism from the replies instead, by the mark each of
these local replies carries (`LOCAL_REPLIES`: Envoy's own bodies and header, the same on any Envoy-based mesh); that
cannot say which proxy made the reply, and the figure says the replies were what was read. A check that needs the log
itself (an upstream cluster, a route name, the absence of a try at a proxy) is reported not applicable there."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Collection, Iterable
from typing import Any

from meshconform.platform.api import AccessLogNotRecorded, Platform
from meshconform.suite.timeouts import Timeouts
from meshconform.traffic.model import Response

GATEWAY = ("istio-system", "istio-ingressgateway")
# What a caller sees of a failure Envoy made itself, by response flag or details prefix: (where, text). Facts:
# bookinfo-istio.md "Envoy local replies and response flags" and the RBAC filter's 403 "RBAC: access denied".
LOCAL_REPLIES: dict[str, tuple[str, str]] = {
    "FI": ("body", "fault filter abort"), "UT": ("body", "upstream request timeout"),
    "UH": ("body", "no healthy upstream"), "UO": ("x-envoy-overloaded", "true"),
    "rbac_access_denied": ("body", "RBAC: access denied")}


def records_for(platform: Platform, workloads: Iterable[tuple[str, str]], replies: Collection[Response],
                timeouts: Timeouts, direction: str | None = None) -> dict[str, dict[str, Any]]:
    """The access-log record of each reply's request at the given workloads' proxies, by request id.
    A proxy writes its log in the background (the local platform's Envoys flush every 50 ms, Envoy's default
    is 10 s; on a cluster the log is read through the API server), so this polls until every request shows or
    `max_time_to_consistency` passes, then fails naming the requests no proxy logged."""
    wanted = {r.request_id for r in replies}
    targets = list(workloads)
    deadline = time.monotonic() + timeouts.max_time_to_consistency
    while True:
        found = {rec["request_id"]: rec for namespace, deployment in targets
                 for rec in platform.access_log(namespace, deployment)
                 if rec.get("request_id") in wanted and (direction is None or rec.get("direction") == direction)}
        if set(found) >= wanted or time.monotonic() >= deadline:
            break
        time.sleep(timeouts.log_poll_interval)
    missing = wanted - set(found)
    assert not missing, (f"{len(missing)} of {len(wanted)} requests never showed in the access log of "
                         f"{['/'.join(t) for t in targets]} within {timeouts.max_time_to_consistency:g}s")
    return found


def log_outcomes(records: dict[str, dict[str, Any]]) -> Counter[str]:
    """'status flags details' per record, counted: what the report shows when a mechanism is wrong."""
    return Counter(f"{rec.get('status')} {rec.get('flags')} {rec.get('details')}" for rec in records.values())


def failed_as(records: dict[str, dict[str, Any]], status: int, flag: str | None = None,
              details_prefix: str | None = None) -> list[str]:
    """Request ids whose record is not `status` with `flag` among its response flags (and, if given,
    details starting with `details_prefix`); [] when every one failed the expected way."""
    wrong = []
    for request_id, rec in records.items():
        flags = str(rec.get("flags", "")).split(",")
        if (str(rec.get("status")) != str(status) or (flag is not None and flag not in flags)
                or (details_prefix is not None and not str(rec.get("details", "")).startswith(details_prefix))):
            wrong.append(request_id)
    return wrong


def assert_failed_as(platform: Platform, workloads: Iterable[tuple[str, str]], replies: Collection[Response],
                     timeouts: Timeouts, status: int, flag: str | None = None, details_prefix: str | None = None,
                     direction: str | None = None, what: str = "requests") -> dict[str, int]:
    """Assert that every reply's request was logged at `workloads`' proxies as `status` with `flag` (and
    details); returns the log_outcomes counted, for the report's figures. Where the access log cannot be read, the
    replies carry Envoy's mark of that local reply instead (module docstring), if it has one."""
    try:
        records = records_for(platform, workloads, replies, timeouts, direction)
    except AccessLogNotRecorded as exc:
        mark = LOCAL_REPLIES.get(flag or "") or next(
            (m for prefix, m in LOCAL_REPLIES.items() if details_prefix and details_prefix.startswith(prefix)), None)
        if mark is None:
            raise
        return _replied_as(replies, status, mark, what, str(exc))
    counted = dict(log_outcomes(records))
    wrong = failed_as(records, status, flag, details_prefix)
    expected = " ".join(str(part) for part in (status, flag, details_prefix) if part)
    assert not wrong, f"{what}: {len(wrong)} of {len(records)} did not fail as {expected}; the proxy logged {counted}"
    return counted


def _replied_as(replies: Collection[Response], status: int, mark: tuple[str, str], what: str,
                why: str) -> dict[str, int]:
    """The fallback of assert_failed_as: every reply `status` with the local reply's mark (body or header)."""
    where, text = mark

    def marked(reply: Response) -> bool:
        return text in reply.body if where == "body" else reply.headers.get(where) == text
    seen = Counter(f"{r.status} {'with' if marked(r) else 'without'} {where} {text!r}" for r in replies)
    wrong = [r for r in replies if r.status != status or not marked(r)]
    assert not wrong, (f"{what}: {len(wrong)} of {len(replies)} did not fail as {status} with Envoy's local reply "
                       f"({where} {text!r}), judged from the replies ({why}): {dict(seen)}")
    return {f"from the replies, not the access log: {reason}": n for reason, n in seen.items()}

