"""The mesh cost: the same load through the sidecars and without them (alternating blocks of one
phase, so both see the same machine), as the latency added at each percentile with a bootstrap
confidence interval, and the proxies' CPU and memory from process accounting."""

from __future__ import annotations

from typing import Any

from meshconform.perf import bootstrap, histograms
from meshconform.perf.runner import PhaseOutcome
from meshconform.platform.api import ProxyUsage

BOOKINFO_APPS = ("productpage", "details", "reviews", "ratings")


def _on_path(name: str) -> bool:
    """The sidecars the mesh run's requests pass: Bookinfo's pods in `default`."""
    namespace, _, pod = name.partition("/")
    return namespace == "default" and pod.split("-")[0] in BOOKINFO_APPS


def _window_samples(outcome: PhaseOutcome) -> list[tuple[float, dict[str, ProxyUsage]]]:
    return [(t, u) for t, u in outcome.proxy_samples if outcome.start_epoch - 1.0 <= t <= outcome.end_epoch + 1.0]


def proxy_cost(outcome: PhaseOutcome, mesh_requests: int) -> dict[str, Any]:
    samples = _window_samples(outcome)
    if len(samples) < 2 or mesh_requests == 0:
        return {"note": "not enough proxy samples in the window"}
    (t0, first), (t1, last) = samples[0], samples[-1]
    names = sorted(n for n in last if _on_path(n) and n in first)
    cpu = sum(last[n].cpu_seconds - first[n].cpu_seconds for n in names)
    rss = [sum(u[n].rss_bytes for n in names if n in u) for _, u in samples]
    memory_mib = sum(rss) / len(rss) / 2**20
    mesh_rps = mesh_requests / (outcome.window_s / max(1, len(outcome.spec.targets)))
    return {
        "proxies": names,
        "sampled_s": round(t1 - t0, 1),
        "cpu_seconds": round(cpu, 3),
        # CPU-seconds per request x 1000 requests/s = cores busy per 1000 rps; counts only mesh blocks' work
        "cpu_vcpu_per_1000rps": round(cpu / mesh_requests * 1000, 4),
        "memory_mib": round(memory_mib, 1),
        "memory_mib_per_proxy": round(memory_mib / max(1, len(names)), 1),
        "memory_mib_per_1000rps": round(memory_mib / (mesh_rps / 1000), 1),
        "mesh_rps_during_its_blocks": round(mesh_rps, 1),
        "note": "process accounting of the sidecars on the path (psutil); memory is resident set size, "
                "which does not scale with load: the per-1000-rps figure is for comparison with Istio's only",
    }


def mesh_cost(outcome: PhaseOutcome, confidence: float = 0.95, seed: int | None = None) -> dict[str, Any]:
    meshed = [s for k, s in outcome.series.items() if k.startswith("mesh/")]
    plain = [s for k, s in outcome.series.items() if k.startswith("no-mesh/")]
    if not meshed or not plain or meshed[0].corrected.get_total_count() == 0 \
            or plain[0].corrected.get_total_count() == 0:
        return {"note": "no mesh / no-mesh samples to compare"}
    mesh, none = meshed[0], plain[0]
    intervals = bootstrap.percentile_differences(mesh.corrected, none.corrected, histograms.PERCENTILES,
                                                 confidence, seed=seed)
    percentiles = {}
    for p, interval in intervals.items():
        name = histograms.key_name(p)
        percentiles[name] = {"mesh_us": histograms.percentile(mesh.corrected, p),
                             "no_mesh_us": histograms.percentile(none.corrected, p),
                             "added_us": interval.estimate, "ci_low_us": interval.low, "ci_high_us": interval.high,
                             # fewer than 10 values beyond the percentile: its interval is not to be trusted
                             "enough_samples": min(mesh.requests, none.requests) * (1 - p / 100) >= 10}
    return {"request": "GET /productpage (productpage -> details, reviews -> ratings)",
            "mesh_target": "productpage pod through its sidecar, Bookinfo calls through sidecars (mTLS)",
            "no_mesh_target": "the same Bookinfo in a namespace without injection",
            "requests": {"mesh": mesh.requests, "no_mesh": none.requests},
            "errors": {"mesh": mesh.errors, "no_mesh": none.errors},
            "confidence": confidence, "percentiles": percentiles,
            "proxy": proxy_cost(outcome, mesh.requests)}
