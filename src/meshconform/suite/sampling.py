"""Measuring shares of traffic (weights, fault and mirror percentages) against declared statistics.

The sample size follows from the false-failure probability and the tolerance (stats.proportions).
Requests go out in chunks; after each chunk, sampling stops if the verdict of the full sample is
already certain (curtailed sampling), which makes a broken mesh fail fast at no cost in rigour."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from meshconform.platform.api import Vantage
from meshconform.stats.proportions import (
    ProportionVerdict,
    early_decision,
    judge,
    judge_split,
    sample_size,
    split_alpha,
    split_sample_size,
)
from meshconform.traffic.model import Request, Response


@dataclass
class ShareSample:
    planned: int
    replies: list[Response]
    counts: Counter[str]
    verdicts: list[ProportionVerdict]
    passed: bool
    alpha: float
    tolerance: float

    @property
    def stopped_early(self) -> bool:
        return len(self.replies) < self.planned

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
        head = (f"{len(self.replies)} of {self.planned} planned requests"
                + (" (stopped early: the verdict was certain)" if self.stopped_early else ""))
        return "\n".join([*([self.reason] if self.reason else []), head, *(v.describe() for v in self.verdicts)])

    def to_json(self) -> dict[str, Any]:
        return {"planned": self.planned, "sent": len(self.replies), "counts": dict(self.counts),
                "false_failure_rate": self.alpha, "tolerance": self.tolerance, "passed": self.passed,
                "verdicts": [v.to_json() for v in self.verdicts]}


def measure_shares(vantage: Vantage, make_request: Callable[[int], Request], classify: Callable[[Response], str],
                   expected: dict[str, float], alpha: float, tolerance: float, exclusive: bool = True,
                   concurrency: int = 20, chunks: int = 4) -> ShareSample:
    """Send requests until the verdict on `expected` shares is known.

    exclusive=True: a split; every outcome must be one of `expected`, whose shares sum to 1
    (with three or more, Bonferroni shares alpha among them). exclusive=False: each named share is judged on its own
    against all other outcomes, e.g. {"aborted": 0.3}."""
    if exclusive:
        planned, alpha_each = split_sample_size(expected, tolerance, alpha), split_alpha(expected, alpha)
    else:
        planned, alpha_each = max(sample_size(p, tolerance, alpha) for p in expected.values()), alpha
    replies: list[Response] = []
    counts: Counter[str] = Counter()
    step = -(-planned // chunks)
    decision: bool | None = None
    while len(replies) < planned and decision is None:
        batch = [make_request(i) for i in range(len(replies), min(planned, len(replies) + step))]
        got = vantage.send(batch, concurrency=concurrency)
        replies.extend(got)
        counts.update(classify(reply) for reply in got)
        decision = early_decision(dict(counts), planned, expected, alpha_each, exclusive)
    total = len(replies)
    if exclusive:
        verdicts = judge_split(dict(counts), expected, alpha, tolerance)
    else:
        verdicts = [judge(name, counts.get(name, 0), total, p, alpha, tolerance) for name, p in expected.items()]
    passed = decision if decision is not None else all(v.passed for v in verdicts)
    return ShareSample(planned, replies, counts, verdicts, passed, alpha, tolerance)
