"""The pytest entry for users' own performance tests: the `mesh_perf` fixture runs a short Locust
load (in processes of its own: Locust never enters the pytest process) against the session's platform
and returns the figures to assert thresholds on; the `mesh_perf` marker tags such tests.

    @pytest.mark.mesh_perf
    def test_productpage_is_fast_enough(mesh_perf):
        figures = mesh_perf.run(target="ingress", path="/productpage", rate=20, duration_s=10)
        assert figures.valid, figures.invalid_reasons
        assert figures.p90_us is not None and figures.p90_us < 250_000 and figures.errors == 0
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from meshconform.errors import PlatformError
from meshconform.platform.api import Platform, SupportsLoad


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "mesh_perf: a performance test (runs Locust load; deselect with "
                                       "-m 'not mesh_perf')")


@dataclass(frozen=True)
class Figures:
    """One load run's figures, latencies in microseconds from the intended send time (open model). A percentile
    is None when the run has too few requests for it (at least 10 beyond it: p50 needs 20, p90 100, p99 1000,
    p99.9 10 000); `max_us` is always there."""

    requests: int
    errors: int
    p50_us: float | None
    p90_us: float | None
    p99_us: float | None
    p99_9_us: float | None
    max_us: float
    valid: bool
    invalid_reasons: list[str] = field(default_factory=list)


class PerfProbe:
    def __init__(self, platform: Platform, folder: Path) -> None:
        self.platform = platform
        self.folder = folder
        self._runs = 0

    def run(self, target: str = "ingress", path: str = "/productpage", rate: float = 20.0, users: int = 4,
            duration_s: float = 10.0, warmup_s: float = 2.0) -> Figures:
        """`target`: 'ingress', 'in-mesh', 'mesh' or 'no-mesh' (see SupportsLoad.load_targets)."""
        from meshconform.perf import histograms
        from meshconform.perf.runner import run_phase
        from meshconform.perf.spec import PhaseSpec, Target
        if not isinstance(self.platform, SupportsLoad):
            raise PlatformError(f"the {self.platform.name} platform does not offer load targets yet")
        found = self.platform.load_targets()
        if target not in found:
            why = self.platform.unavailable_load_targets().get(target, "not offered")
            raise PlatformError(f"no load target {target!r} on {self.platform.name} ({why}); it offers "
                                f"{', '.join(sorted(found))}")
        chosen = found[target]
        self._runs += 1
        spec = PhaseSpec(f"probe{self._runs}", ["Get"], [Target(chosen.name, chosen.base_url, chosen.host)],
                         rate=rate, users=users, warmup_s=warmup_s, duration_s=duration_s, path=path)
        outcome = run_phase(spec, self.folder, progress=None)
        total = histograms.new()
        for series in outcome.series.values():
            total.add(series.corrected)
        count = total.get_total_count()
        p50, p90, p99, p999 = (value if histograms.supported(count, p) else None
                               for p, value in zip(histograms.PERCENTILES,
                                                   histograms.percentiles(total, histograms.PERCENTILES), strict=True))
        return Figures(sum(s.requests for s in outcome.series.values()), sum(s.errors for s in outcome.series.values()),
                       p50, p90, p99, p999, float(total.get_max_value()), not outcome.invalid_reasons,
                       outcome.invalid_reasons)


@pytest.fixture()
def mesh_perf(mesh_platform: Platform, tmp_path: Path) -> PerfProbe:
    """Runs load against the session's platform: `mesh_perf.run(...)` returns `Figures`."""
    return PerfProbe(mesh_platform, tmp_path)
