"""`meshconform perf` end to end on the local platform (opt-in: MESHCONFORM_PERF_E2E=1, ~1 min):
brings a platform up, runs all three phases briefly, writes result, pictures, page and mesh cost,
leaves no process behind, and says "no regression" when the result is compared with itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from meshconform.perf import histograms, result
from meshconform.platform.local.supervisor import Supervisor

pytestmark = pytest.mark.skipif(os.environ.get("MESHCONFORM_PERF_E2E") != "1",
                                reason="end-to-end perf run: set MESHCONFORM_PERF_E2E=1")
EXIT_INVALID = 4


def _perf(reports: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MESHCONFORM_REPORTS": str(reports)}
    return subprocess.run([sys.executable, "-m", "meshconform.cli", "perf", *args], env=env, text=True,
                          capture_output=True, timeout=300, check=False)


def test_perf_end_to_end(tmp_path: Path) -> None:
    run = _perf(tmp_path, "--duration", "4", "--warmup", "1", "--rate", "20", "--users", "4")
    assert run.returncode in (0, EXIT_INVALID), run.stdout + run.stderr
    [path] = list(tmp_path.glob("*-perf-*/perf-result.json"))
    document = result.read(path)  # schema-checked
    assert (run.returncode == EXIT_INVALID) == (not document["valid"])
    names = {s["name"] for s in document["results"]}
    assert {"ingress/page", "ingress/page-signed-in", "ingress/api", "in-mesh/page", "mesh/page",
            "no-mesh/page"} <= names
    assert all(s["requests"] > 0 and s["errors"] == 0 for s in document["results"]), document["results"]
    cost = document["mesh_cost"]
    # only the percentiles both sides' requests support are reported; the others say what they need
    fewest = min(cost["requests"]["mesh"], cost["requests"]["no_mesh"])
    assert set(cost["percentiles"]) == {histograms.key_name(p) for p in histograms.PERCENTILES
                                        if histograms.supported(fewest, p)} and "p50" in cost["percentiles"]
    assert set(cost["percentiles"]) | set(cost["percentiles_not_reported"]) == {"p50", "p90", "p99", "p99_9"}
    assert cost["proxy"]["cpu_vcpu_per_1000rps"] > 0 and len(cost["proxy"]["proxies"]) == 6
    for name in ("perf.html", "latency-percentiles.png", "over-time.png"):
        assert (path.parent / name).stat().st_size > 1000, name
    platform = Supervisor(path.parent / "platform" / "processes.json")
    assert not [r for r in platform.records() if platform.is_alive(r)], "platform processes left running"

    # compared with itself: no regression; a run that was invalid stays invalid (exit 4), and is a baseline only
    # when that is asked for
    again = _perf(tmp_path, "--from-result", str(path), "--baseline", str(path),
                  *([] if document["valid"] else ["--allow-invalid-baseline"]))
    assert "no regression" in again.stdout, again.stdout + again.stderr
    assert again.returncode == (0 if document["valid"] else EXIT_INVALID)
    comparison = json.loads(next(tmp_path.glob("*/comparison.json")).read_text())
    assert not comparison["regression"] and {v["outcome"] for v in comparison["verdicts"]} <= {"same", "too few"}


@pytest.mark.mesh_perf
def test_the_mesh_perf_fixture_measures_the_platform(mesh_perf) -> None:  # type: ignore[no-untyped-def]
    """A user's performance test: load on the product page through its sidecar, thresholds on figures."""
    figures = mesh_perf.run(target="mesh", path="/productpage", rate=10, users=2, duration_s=4, warmup_s=1)
    assert figures.requests >= 35 and figures.errors == 0, figures  # 10 rps for 4 s
    assert figures.p50_us is not None and 0 < figures.p50_us <= figures.max_us < 10_000_000, figures
    assert figures.p99_us is None  # 40 requests do not support a p99
