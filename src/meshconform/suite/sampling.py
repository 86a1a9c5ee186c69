"""Measuring shares of traffic (weights, fault and mirror percentages) against declared statistics.

Requests go out in batches; after each batch a sequential test (stats.sequential, stats.splits)
says pass, fail or go on, at a false-failure probability `alpha` per assertion and a miss
probability of 1e-3 for a mesh off by twice the tolerance, both exact for this batch schedule.
On a conforming mesh that takes 140 to 476 requests on average per check (the fixed samples were
379 to 1500); a broken one fails after about as many."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from meshconform.platform.api import Vantage
from meshconform.stats.sequential import DEFAULT_BATCH, DEFAULT_BETA
from meshconform.stats.splits import ShareVerdict, SplitTest
from meshconform.traffic.model import Request, Response


@dataclass
class ShareSample:
    planned: int  # the most requests the design could have asked for
    sent: int
    counts: Counter[str]
    verdicts: list[ShareVerdict]
    passed: bool
    alpha: float
    tolerance: float
    beta: float
    batch: int
    stop_reason: str
    replies: list[Response] = field(default_factory=list)
    alongside: list[Response] = field(default_factory=list)  # see measure_shares; never counted
    expected: dict[str, float] = field(default_factory=dict)  # the design: each outcome's expected share
    exclusive: bool = True  # a split (every outcome among `expected`), or each share judged on its own
    looks: list[dict[str, int]] = field(default_factory=list)  # the counts so far at every look, in order

    @property
    def stopped_early(self) -> bool:
        return self.sent < self.planned

    @property
    def reason(self) -> str:
        """One sentence with counts on why the sample failed ("" if it passed)."""
        if self.passed:
            return ""
        off = [v for v in self.verdicts if not v.passed] or self.verdicts
        if len(self.verdicts) == 2 and len(off) == 2:  # a two-way split: the second is the first's complement
            off = off[:1]
        return "shares outside their acceptance bands: " + "; ".join(
            f"{v.name} got {v.observed} of {v.total} ({v.share:.1%}) where {v.expected:.0%} was expected "
            f"(accepted {v.accept_low}..{v.accept_high})" for v in off)

    def describe(self) -> str:
        """The reason first (a failed sample), then the sample and every verdict."""
        head = (f"{'passed' if self.passed else 'failed'} after {self.sent} of at most {self.planned} requests "
                f"(batches of {self.batch}): {self.stop_reason}")
        return "\n".join([*([self.reason] if self.reason else []), head, *(v.describe() for v in self.verdicts)])

    def to_json(self) -> dict[str, Any]:
        """The figures a report records: the design and the observations the verdict follows from (so that it can be
        recomputed: the counts at every look, under the declared shares, alpha, tolerance, miss probability and
        batch), and the verdicts drawn."""
        return {"kind": "sequential-shares",
                "design": {"expected": dict(self.expected), "exclusive": self.exclusive,
                           "false_failure_rate": self.alpha, "tolerance": self.tolerance,
                           "miss_probability": self.beta, "batch": self.batch, "planned_max": self.planned},
                "observations": {"looks": [dict(look) for look in self.looks], "sent": self.sent,
                                 "counts": dict(self.counts)},
                "planned": self.planned, "sent": self.sent, "counts": dict(self.counts),
                "false_failure_rate": self.alpha, "tolerance": self.tolerance, "passed": self.passed,
                "verdicts": [v.to_json() for v in self.verdicts],
                "sequential": {"miss_probability": self.beta, "batch": self.batch, "planned_max": self.planned,
                               "stop_reason": self.stop_reason}}


def measure_counted(send_batch: Callable[[int, int], Mapping[str, int]], expected: dict[str, float], alpha: float,
                    tolerance: float, exclusive: bool = True, batch: int = DEFAULT_BATCH,
                    beta: float = DEFAULT_BETA) -> ShareSample:
    """Run the sequential test on outcomes counted by `send_batch(first, size)`, which sends requests
    number first .. first + size - 1 and returns how many of them had each outcome.

    exclusive=True: a split; every outcome must be one of `expected`, whose shares sum to 1.
    exclusive=False: each named share is judged on its own against all other outcomes, e.g. {"aborted": 0.3}."""
    test = SplitTest(expected, alpha, tolerance, exclusive, beta, batch)
    counts: Counter[str] = Counter()
    looks: list[dict[str, int]] = []
    sent = 0
    while test.decision == "continue":
        size = test.next_look(sent) - sent
        got = send_batch(sent, size)
        if sum(got.values()) != size:
            raise ValueError(f"a batch of {size} requests came back with {sum(got.values())} outcomes")
        counts.update(got)
        sent += size
        looks.append(dict(counts))
        test.observe(counts)
    declared_miss = max(design.beta for design in test.designs.values())  # exact checks declare alpha at t
    return ShareSample(test.planned, sent, counts, test.final_verdicts(counts), test.decision == "accept", alpha,
                       tolerance, declared_miss, batch, test.reason, expected=dict(expected), exclusive=exclusive,
                       looks=looks)


def measure_shares(vantage: Vantage, make_request: Callable[[int], Request], classify: Callable[[Response], str],
                   expected: dict[str, float], alpha: float, tolerance: float, exclusive: bool = True,
                   concurrency: int = 20, batch: int = DEFAULT_BATCH, alongside: Sequence[Request] = ()
                   ) -> ShareSample:
    """Send requests from `vantage` in batches until the sequential test on `expected` decides
    (see measure_counted); the replies are kept on the sample. `alongside`: other requests of the check, sent in
    the first batch's send and never counted, their replies on `sample.alongside` (a check whose every batch
    waits on a timer then waits once, not twice)."""
    replies: list[Response] = []
    others: list[Response] = []

    def send_batch(first: int, size: int) -> Counter[str]:
        extra = list(alongside) if first == 0 else []
        got = vantage.send([make_request(i) for i in range(first, first + size)] + extra, concurrency=concurrency)
        others.extend(got[size:])
        got = got[:size]
        replies.extend(got)
        return Counter(classify(reply) for reply in got)

    sample = measure_counted(send_batch, expected, alpha, tolerance, exclusive, batch)
    sample.replies, sample.alongside = replies, others
    return sample
