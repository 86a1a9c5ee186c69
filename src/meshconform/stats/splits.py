"""Judging a whole split (or several named shares) sequentially: one design per expected outcome.

Each expected outcome's count is judged by its own sequential design (stats.sequential) at the
false-failure probability `split_alpha` gives it (all of alpha for one or two outcomes of a split,
whose counts determine each other; Bonferroni's alpha / k otherwise). The split fails as soon as one
outcome's test rejects, or, for an exclusive split, as soon as an outcome outside `expected` shows
(a conforming mesh never gives one, so this costs no false failures); it passes once every test has
accepted. An outcome whose test accepted keeps that verdict while the others go on, so the split
fails on a conforming mesh only if some outcome's own test would have rejected: probability at most
the sum of their alphas. It passes a mesh with one outcome off by the shift only if that outcome's
test accepted: probability at most beta."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from meshconform.stats.proportions import clopper_pearson, split_alpha
from meshconform.stats.sequential import DEFAULT_BATCH, DEFAULT_BETA, Decision, SequentialDesign, design_for


@dataclass
class ShareVerdict:
    """One outcome's verdict, taken at the look where its test decided (or where the split stopped)."""
    name: str
    expected: float
    observed: int
    total: int
    accept_low: int  # counts not rejected at that look; observed lies inside iff the outcome passed
    accept_high: int
    alpha: float
    tolerance: float
    decision: Decision
    design: SequentialDesign | None  # None: an outcome that must never show

    @property
    def passed(self) -> bool:
        return self.decision == "accept"

    @property
    def share(self) -> float:
        return self.observed / self.total if self.total else 0.0

    def interval(self) -> tuple[float, float]:
        """Clopper-Pearson at 1 - alpha, for reading only: it ignores that sampling stopped early."""
        return clopper_pearson(self.observed, self.total, 1 - self.alpha)

    def describe(self) -> str:
        low, high = self.interval()
        return (f"{self.name}: {self.observed}/{self.total} = {self.share:.3f} (expected {self.expected:.3f}): "
                f"{'passed' if self.passed else 'failed' if self.decision == 'reject' else 'open'} after "
                f"{self.total} replies, {self.accept_low}..{self.accept_high} not rejected there; "
                f"{(1 - self.alpha) * 100:.4g}% CI [{low:.3f}, {high:.3f}], false-failure rate {self.alpha:g}")

    def to_json(self) -> dict[str, Any]:
        low, high = self.interval()
        return {"name": self.name, "expected": self.expected, "observed": self.observed, "total": self.total,
                "accept_low": self.accept_low, "accept_high": self.accept_high, "alpha": self.alpha,
                "tolerance": self.tolerance, "ci_low": low, "ci_high": high, "passed": self.passed,
                "share": round(self.share, 4), "decision": self.decision,
                "design": self.design.to_json(upto=self.total) if self.design else None}


@dataclass
class SplitTest:
    """Feed it the cumulative counts after each batch (`observe`) until `decision` is not "continue";
    `next_look` says how many replies the next look wants."""
    expected: dict[str, float]
    alpha: float
    tolerance: float
    exclusive: bool = True
    beta: float = DEFAULT_BETA
    batch: int = DEFAULT_BATCH
    designs: dict[str, SequentialDesign] = field(init=False)
    verdicts: dict[str, ShareVerdict] = field(init=False, default_factory=dict)
    decision: Decision = field(init=False, default="continue")
    reason: str = field(init=False, default="")

    def __post_init__(self) -> None:
        if not self.expected:
            raise ValueError("no expected outcome to judge")
        if self.exclusive and abs(sum(self.expected.values()) - 1) > 1e-9:
            raise ValueError(f"the shares of a split must sum to 1: {self.expected}")
        self.alpha_each = split_alpha(self.expected, self.alpha) if self.exclusive or len(self.expected) == 1 \
            else self.alpha / len(self.expected)
        self.designs = {name: design_for(p, self.tolerance, self.alpha_each, self.beta, self.batch)
                        for name, p in self.expected.items()}
        self._looks = sorted({look.n for design in self.designs.values() for look in design.looks})

    @property
    def planned(self) -> int:
        """The most replies this test can ask for."""
        return self._looks[-1]

    def next_look(self, sent: int) -> int:
        return next(n for n in self._looks if n > sent)

    def observe(self, counts: Mapping[str, int]) -> Decision:
        total = sum(counts.values())
        if self.exclusive:
            strays = {name: count for name, count in counts.items() if name not in self.expected and count}
            for name, count in strays.items():
                self.verdicts[name] = ShareVerdict(name, 0.0, count, total, 0, 0, self.alpha_each, self.tolerance,
                                                   "reject", None)
            if strays:
                return self._stop("reject", f"outcome(s) outside the split showed: {strays}")
        for name, design in self.designs.items():
            if name in self.verdicts:
                continue  # decided at an earlier look
            look = next((look for look in design.looks if look.n == total), None)
            if look is None:
                continue
            count = counts.get(name, 0)
            decision = look.decide(count)
            if decision != "continue":
                low, high = look.passing_band()
                self.verdicts[name] = ShareVerdict(name, design.expected, count, total, low, high, self.alpha_each,
                                                   self.tolerance, decision, design)
        rejected = [v for v in self.verdicts.values() if v.decision == "reject"]
        if rejected:
            return self._stop("reject", "; ".join(f"{v.name}: {v.observed} of {v.total} outside "
                                                  f"{v.accept_low}..{v.accept_high}" for v in rejected))
        if len(self.verdicts) == len(self.designs):
            return self._stop("accept", f"every share within its acceptance band after {total} replies")
        if total >= self.planned:
            raise AssertionError(f"the designs left {set(self.designs) - set(self.verdicts)} open at their last look")
        return "continue"

    def final_verdicts(self, counts: Mapping[str, int]) -> list[ShareVerdict]:
        """Every expected outcome's verdict; one still open when the split stopped is shown as it stood."""
        total = sum(counts.values())
        out = []
        for name, design in self.designs.items():
            if name in self.verdicts:
                out.append(self.verdicts[name])
                continue
            look = next((look for look in design.looks if look.n >= total), design.looks[-1])
            low, high = look.passing_band()
            out.append(ShareVerdict(name, design.expected, counts.get(name, 0), total, low, high, self.alpha_each,
                                    self.tolerance, "continue", design))
        return out + [v for name, v in self.verdicts.items() if name not in self.designs]

    def _stop(self, decision: Decision, reason: str) -> Decision:
        self.decision, self.reason = decision, reason
        return decision
