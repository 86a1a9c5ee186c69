"""The mesh cost: the same load through the sidecars and without them (alternating blocks of one
phase, so both see the same machine), as the latency added at each percentile with a bootstrap
confidence interval, and the proxies' CPU and memory as the platform measures them (local: process
accounting, resident set size; kind: the kubelet's resource metrics, working set), named in the result."""

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
    cpu = 0.0
    for name in names:
        used = last[name].cpu_seconds - first[name].cpu_seconds
        read = (first[name].cpu_read_at, last[name].cpu_read_at)
        if read[0] is not None and read[1] is not None:
            # The counter's own reading times (the kubelet refreshes its stats every few seconds): its rate over
            # them, over the sampled interval, so a stale first or last reading does not shorten the window.
            if read[1] <= read[0]:
                return {"note": f"the CPU counter of {name} was not refreshed within the window (its source, "
                                f"{last[name].source}, updates less often than the phase lasted): run a longer "
                                "mesh-cost phase", "proxies": names}
            used = used / (read[1] - read[0]) * (t1 - t0)
        cpu += used
    memory = [sum(u[n].memory_bytes for n in names if n in u) for _, u in samples]
    memory_mib = sum(memory) / len(memory) / 2**20
    measured = last[names[0]] if names else next(iter(last.values()), None)
    metric = measured.memory_metric if measured else "unknown"
    source = measured.source if measured else "unknown"
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
        "source": source,
        "memory_metric": metric,
        "note": f"the sidecars on the path, measured by {source}; memory is the {metric}, which does not scale "
                "with load: the per-1000-rps figure is for comparison with Istio's only",
    }


def mesh_cost(outcome: PhaseOutcome, confidence: float = 0.95, seed: int | None = None) -> dict[str, Any]:
    meshed = [s for k, s in outcome.series.items() if k.startswith("mesh/")]
    plain = [s for k, s in outcome.series.items() if k.startswith("no-mesh/")]
    if not meshed or not plain or meshed[0].corrected.get_total_count() == 0 \
            or plain[0].corrected.get_total_count() == 0:
        return {"note": "no mesh / no-mesh samples to compare"}
    mesh, none = meshed[0], plain[0]
    fewest = min(mesh.requests, none.requests)
    # Only percentiles both sides support (histograms.supported): beyond them the bootstrap can only return the
    # last few values.
    reported = [p for p in histograms.PERCENTILES if histograms.supported(fewest, p)]
    intervals = bootstrap.percentile_differences(mesh.corrected, none.corrected, reported, confidence, seed=seed)
    percentiles = {}
    for p, interval in intervals.items():
        name = histograms.key_name(p)
        percentiles[name] = {"mesh_us": histograms.percentile(mesh.corrected, p),
                             "no_mesh_us": histograms.percentile(none.corrected, p),
                             "added_us": interval.estimate, "ci_low_us": interval.low, "ci_high_us": interval.high}
    return {"request": "GET /productpage (productpage -> details, reviews -> ratings)",
            "mesh_target": "productpage pod through its sidecar, Bookinfo calls through sidecars (mTLS)",
            "no_mesh_target": "the same Bookinfo in a namespace without injection",
            "requests": {"mesh": mesh.requests, "no_mesh": none.requests},
            "errors": {"mesh": mesh.errors, "no_mesh": none.errors},
            "confidence": confidence, "percentiles": percentiles,
            "percentiles_not_reported": histograms.not_reported(fewest),
            "proxy": proxy_cost(outcome, mesh.requests)}
