"""Latency checks as records: every latency of a set must lie within bounds (a timeout's, a delay's), and the
figures say which bounds, how they were derived and every latency observed, so the verdict can be recomputed
from the report (`kind: latency-bounds`), as a share check's can (suite/sampling.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class LatencyBounds:
    what: str  # what was timed ("delayed replies")
    lower_s: float | None  # None: no lower bound
    upper_s: float | None  # None: no upper bound
    derivation: str  # how the bounds follow from the config and the measured base latency
    latencies_s: tuple[float, ...] = field(default=())

    @classmethod
    def of(cls, what: str, latencies_s: Sequence[float], lower_s: float | None, upper_s: float | None,
           derivation: str) -> LatencyBounds:
        return cls(what, None if lower_s is None else round(lower_s, 3), None if upper_s is None else round(upper_s, 3),
                   derivation, tuple(sorted(round(latency, 3) for latency in latencies_s)))

    def outside(self) -> list[float]:
        return [latency for latency in self.latencies_s
                if (self.lower_s is not None and latency < self.lower_s)
                or (self.upper_s is not None and latency > self.upper_s)]

    @property
    def passed(self) -> bool:
        return not self.outside()

    def bounds(self) -> str:
        low = "" if self.lower_s is None else f"{self.lower_s:g}"
        high = "" if self.upper_s is None else f"{self.upper_s:g}"
        return f"{low}..{high} s"

    def describe(self) -> str:
        """One sentence with counts: how many fell outside the bounds, and which."""
        outside = self.outside()
        if not outside:
            return f"all {len(self.latencies_s)} {self.what} within {self.bounds()}"
        return (f"{len(outside)} of {len(self.latencies_s)} {self.what} outside {self.bounds()} "
                f"({self.derivation}): {outside[:8]}")

    def to_json(self) -> dict[str, Any]:
        return {"kind": "latency-bounds",
                "design": {"lower_s": self.lower_s, "upper_s": self.upper_s, "derivation": self.derivation},
                "observations": {"latencies_s": list(self.latencies_s)}, "passed": self.passed}
