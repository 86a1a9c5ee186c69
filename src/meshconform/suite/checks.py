"""Helpers the conformance tests share: unique markers and convergence probes."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import replace

from meshconform.platform.api import Platform, Vantage
from meshconform.suite.convergence import await_rounds
from meshconform.suite.manifests import MARKER_HEADER
from meshconform.suite.timeouts import Timeouts
from meshconform.traffic.model import Request, Response, new_request_id


def new_marker(test_id: str) -> str:
    return f"{test_id}-{uuid.uuid4().hex[:8]}"


# How a reply with no HTTP answer went wrong, for a failure's one-sentence reason.
_NO_ANSWER = {"tls": "failed the TLS handshake", "tls-certificate": "rejected the server's certificate",
              "refused": "were refused", "reset": "were reset", "timeout": "timed out"}


def miss_kind(reply: Response) -> str:
    """A few words on how a reply missed its expectation: "failed the TLS handshake", "answered 404"."""
    if reply.status is None:
        return _NO_ANSWER.get(str(reply.error), f"got no answer ({reply.error})")
    return f"answered {reply.status}"


def outcomes(replies: Sequence[Response], describe: Callable[[Response], str] | None = None) -> str:
    """How a batch went, with counts, most frequent first: "18 answered 200, 2 failed the TLS handshake".
    `describe` names what matters of each reply (default: its status or how it got none)."""
    counts = Counter((describe or miss_kind)(reply) for reply in replies)
    return ", ".join(f"{count} {what}" for what, count in counts.most_common()) or "no replies"


def wait_for_marker(vantage: Vantage, request: Request, marker: str, timeouts: Timeouts) -> float:
    """Converged when the response carries this test's own marker N times in a row."""
    def miss(reply: Response) -> str:
        return miss_kind(reply) + (" without this config's marker" if reply.status is not None else "")
    return wait_for_all(vantage, [(request, lambda reply: reply.headers.get(MARKER_HEADER) == marker)], timeouts,
                        f"config {marker}", miss)


def wait_for(vantage: Vantage, request: Request, predicate: Callable[[Response], bool], timeouts: Timeouts,
             what: str) -> float:
    """Converged when the reply to `request` meets `predicate` N times in a row."""
    return wait_for_all(vantage, [(request, predicate)], timeouts, what)


def wait_for_all(vantage: Vantage, expectations: Sequence[tuple[Request, Callable[[Response], bool]]],
                 timeouts: Timeouts, what: str, miss: Callable[[Response], str] = miss_kind) -> float:
    """Converged when every request of the batch meets its own expectation, N times in a row.
    A batch that only the new config can satisfy (e.g. one path now allowed, another now denied)
    makes the probe specific to it when no marker header is available. A failure's reason counts
    the attempts by how they missed (`miss` of the first reply that did)."""
    last_missed = False

    def probe_rounds(needed: int) -> list[tuple[bool, str, str]]:
        # The rounds still needed, in one batch (each request on its own connection, as separate batches would
        # be); after a miss, one round at a time, so a mesh still converging is not sent rounds it will fail.
        nonlocal last_missed
        rounds = 1 if last_missed else needed
        batch = [replace(request, timeout=timeouts.request_timeout, request_id=new_request_id())
                 for _ in range(rounds) for request, _ in expectations]
        replies = vantage.send(batch, concurrency=len(expectations), reuse_connections=False)
        outcomes = []
        for start in range(0, len(replies), len(expectations)):
            round_replies = replies[start:start + len(expectations)]
            missed = [reply for (_, check), reply in zip(expectations, round_replies, strict=True)
                      if not check(reply)]
            kind = miss(missed[0]) if missed else ""
            if missed and len(expectations) > 1:
                kind = f"{kind} ({missed[0].path})"
            outcomes.append((not missed, "; ".join(reply.summary() for reply in round_replies), kind))
            last_missed = bool(missed)
        return outcomes
    return await_rounds(probe_rounds, timeouts, what)


def bookinfo_login(vantage: Vantage, user: str) -> str:
    """Log in to Bookinfo's product page as `user`; returns the session cookie to send back."""
    reply = vantage.send([Request("/login", method="POST", body=f"username={user}&passwd=password",
                                  headers={"content-type": "application/x-www-form-urlencoded"})])[0]
    cookie = reply.headers.get("set-cookie", "").split(";")[0]
    assert cookie, f"logging in as {user} set no cookie: {reply.summary()}"
    return cookie


def copies_keep_host(platform: Platform, request_ids: Collection[str], host: str, namespace: str = "default",
                     deployment: str = "echo-mirror") -> dict[str, int]:
    """The Host (authority) each mirrored copy of `request_ids` carried at the mirror's app, counted. Istio >= 1.28
    mirrors with the request's own authority (no "-shadow" suffix appended by default): a conforming mesh gives
    {host: copies}. Raises AssertionError naming what arrived otherwise."""
    hosts = Counter(str(record.get("host")) for record in platform.request_log(namespace, deployment)
                    if record.get("request_id") in request_ids)
    assert hosts and set(hosts) == {host}, (
        f"mirrored copies must carry the request's own Host {host!r} (Istio >= 1.28: no '-shadow' suffix); "
        f"{deployment} received {dict(hosts) or 'no copy'}")
    return dict(hosts)
