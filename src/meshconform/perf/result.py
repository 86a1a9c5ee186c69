"""The versioned JSON result of one perf run (shaped after the Service Mesh Performance result:
configuration, start/end, requested and actual rate, latencies, errors, resource use, mesh,
proxy and platform versions, machine) and its JSON schema."""

from __future__ import annotations

import json
import os
import platform as host
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import jsonschema

from meshconform import __version__
from meshconform.errors import ConfigError
from meshconform.perf import histograms
from meshconform.perf.runner import PhaseOutcome, Series
from meshconform.perf.spec import HISTOGRAM_DIGITS, HISTOGRAM_MAX_US, INTERVAL_S

API_VERSION = "meshconform.io/perf/v1"
KIND = "PerformanceResult"
SMP_VERSION = "v0.6.1"  # the Service Mesh Performance spec release whose result this follows
SCHEMA_PATH = Path(__file__).parent / "schema" / "perf-result-v1.schema.json"
RESULT_NAME = "perf-result.json"


def _time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def machine() -> dict[str, Any]:
    import psutil
    model = ""
    try:
        model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("model name")), "")
    except OSError:
        pass
    return {"hostname": host.node(), "os": f"{host.system()} {host.release()}", "arch": host.machine(),
            "cpu_model": model, "cpus": os.cpu_count() or 0, "memory_mib": psutil.virtual_memory().total // 2**20,
            "python": sys.version.split()[0], "load_average": list(os.getloadavg())}


def _versions() -> dict[str, str]:
    out = {"meshconform": __version__}
    for name in ("locust", "hdrhistogram", "gevent", "geventhttpclient"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def _series(outcome: PhaseOutcome) -> list[dict[str, Any]]:
    """One entry per series of the phase, then (with a load shape) one per series and step, named
    `<target>/<request>@step<n>` so a baseline compares each load level with the same level."""
    out = []
    targets = max(1, len(outcome.spec.targets))
    for key, series in sorted(outcome.series.items()):
        out.append(_entry(outcome, key, series, outcome.window_s / targets))
    steps = outcome.spec.steps
    for key, series in sorted(outcome.step_series.items(), key=lambda kv: _step_order(kv[0])):
        base, _, number = key.partition("@step")
        step = steps[int(number) - 1]
        out.append({**_entry(outcome, key, series, step.duration_s / targets, request_key=base),
                    "step": int(number), "step_users": step.users, "step_rate": step.rate})
    return out


def _step_order(key: str) -> tuple[int, str]:
    base, _, number = key.partition("@step")
    return int(number), base


def _entry(outcome: PhaseOutcome, key: str, series: Series, active_s: float,
           request_key: str = "") -> dict[str, Any]:
    target, _, request = (request_key or key).partition("/")
    return {
        "name": key, "phase": outcome.spec.name, "target": target, "request": request,
        "requests": series.requests, "errors": series.errors,
        "error_rate": series.errors / series.requests if series.requests else 0.0,
        "error_kinds": series.error_kinds, "active_s": active_s,
        "actual_rps": round(series.requests / active_s, 2) if active_s else 0.0,
        "latencies_us": histograms.summary(series.corrected),
        "latency_intervals_us": histograms.intervals(series.corrected),
        "percentiles_not_reported": histograms.not_reported(series.requests),
        "service_latencies_us": histograms.summary(series.service),
        "histogram": histograms.encode(series.corrected),
        "service_histogram": histograms.encode(series.service),
        "intervals": {"seconds": INTERVAL_S, "first": min(series.intervals, default=0),
                      "histograms": _interval_list(series.intervals)},
    }


def _interval_list(intervals: dict[int, str]) -> list[str]:
    """One encoded histogram per second from the first recorded one, "" for a second without requests."""
    if not intervals:
        return []
    first, last = min(intervals), max(intervals)
    return [intervals.get(i, "") for i in range(first, last + 1)]


def _phase(outcome: PhaseOutcome) -> dict[str, Any]:
    spec = outcome.spec
    requests = sum(s.requests for s in outcome.series.values())
    lateness = histograms.summary(outcome.lateness)
    return {
        "name": spec.name, "model": spec.mode, "user_classes": spec.user_classes,
        "targets": [{"name": t.name, "url": t.base_url, "host": t.host} for t in spec.targets],
        "requested_rps": spec.rate if spec.mode == "open" or spec.rate > 0 else None,
        "actual_rps": round(requests / outcome.window_s, 2) if outcome.window_s else 0.0,
        "connections": spec.users, "processes": spec.processes, "warmup_s": spec.warmup_s,
        "duration_s": outcome.window_s, "block_s": spec.block_s,
        "steps": [{"users": s.users, "rate": s.rate, "duration_s": s.duration_s} for s in spec.steps],
        "start_time": _time(outcome.start_epoch), "end_time": _time(outcome.end_epoch),
        "warmup_requests_excluded": outcome.warmup_requests,
        "valid": not outcome.invalid_reasons, "invalid_reasons": outcome.invalid_reasons,
        "generator": {
            "processes": [{"name": h.process, "cpu_percent_mean": round(sum(h.cpu_samples) / len(h.cpu_samples), 1)
                           if h.cpu_samples else None, "cpu_percent_max": max(h.cpu_samples, default=None),
                           "sends": h.lateness.get_total_count(),
                           "send_lateness_us": histograms.summary(h.lateness)} for h in outcome.health],
            "send_lateness_us": lateness,
            # what the guard judged and the comparison reads: a percentile with fewer than twice this share of
            # requests beyond it may be set by the generator's own delays (baseline.py: "disturbed")
            "late_share": round(outcome.late_share, 5), "late_limit_us": round(outcome.late_limit_us, 1),
        },
        "timeline": [{"t": p["t"], "cpu_percent": max(p["cpu_percent"]), "series": p["series"]}
                     for p in outcome.timeline],
    }


def build(run_id: str, outcomes: list[PhaseOutcome], platform: dict[str, Any], mesh_cost: dict[str, Any] | None,
          options: dict[str, Any]) -> dict[str, Any]:
    reasons = [r for o in outcomes for r in o.invalid_reasons]
    mesh = platform.get("mesh", {})
    return {
        "apiVersion": API_VERSION, "kind": KIND, "smp_version": SMP_VERSION, "id": run_id,
        "start_time": _time(min(o.start_epoch for o in outcomes)),
        "end_time": _time(max(o.end_epoch for o in outcomes)),
        "valid": not reasons, "invalid_reasons": reasons,
        "config": {"options": options, "load_generator": "locust (meshconform scenarios; open model = fixed rate, "
                                                         "latency from the intended send time)",
                   "protocol": "HTTP/1.1", "latency_unit": "us",
                   "histogram": {"lowest_us": 1, "highest_us": HISTOGRAM_MAX_US,
                                 "significant_digits": HISTOGRAM_DIGITS,
                                 "encoding": "HdrHistogram V2 base64"}},
        "mesh_config": {"mesh": mesh, "proxy": platform.get("proxy", {}),
                        "mtls_enabled": True, "proxy_concurrency": 1, "platform": platform.get("platform", "")},
        "environment": {"platform": platform, "machine": machine(), "software": _versions()},
        "phases": [_phase(o) for o in outcomes],
        "results": [entry for o in outcomes for entry in _series(o)],
        "mesh_cost": mesh_cost,
    }


def schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())
    return loaded


def validate(document: dict[str, Any], source: str = "<result>") -> None:
    """Raise ConfigError naming the file and the field when `document` is not a v1 result."""
    try:
        jsonschema.validate(document, schema())
    except jsonschema.ValidationError as exc:
        field = ".".join(str(p) for p in exc.absolute_path) or "(document)"
        raise ConfigError(exc.message, source=source, resource=KIND, field=field) from None


def write(document: dict[str, Any], run_dir: Path) -> Path:
    validate(document)
    path = run_dir / RESULT_NAME
    path.write_text(json.dumps(document, indent=1))
    return path


def read(path: Path) -> dict[str, Any]:
    try:
        document: dict[str, Any] = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read a perf result: {exc}", source=str(path)) from None
    validate(document, str(path))
    return document
