"""Runs one load phase in Locust processes of its own (one, or a master and N workers in Locust's
distributed mode), shows their progress, samples proxy resource use meanwhile, stops every process
it started on any exit, and merges what the processes recorded."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from hdrh.histogram import HdrHistogram

from meshconform.errors import PlatformError
from meshconform.interrupts import deferred_interrupts
from meshconform.perf import guard, histograms
from meshconform.perf.spec import PROCESS_EXIT_GRACE_S, PhaseSpec
from meshconform.platform.api import ProxyUsage

STARTUP_ALLOWANCE_S = 30.0  # importing Locust and connecting workers, on a busy machine
POLL_S = 0.5
Sampler = Callable[[], dict[str, ProxyUsage]]


@dataclass
class Series:
    key: str  # "<target>/<request>"
    requests: int = 0
    errors: int = 0
    error_kinds: dict[str, int] = field(default_factory=dict)
    corrected: HdrHistogram = field(default_factory=histograms.new)
    service: HdrHistogram = field(default_factory=histograms.new)
    intervals: dict[int, str] = field(default_factory=dict)  # second of the window -> encoded histogram


@dataclass
class PhaseOutcome:
    spec: PhaseSpec
    series: dict[str, Series]
    health: list[guard.GeneratorHealth]
    lateness: HdrHistogram
    timeline: list[dict[str, Any]]  # per second: requests/errors summed, median/max the highest of the processes
    window_s: float
    start_epoch: float
    end_epoch: float
    invalid_reasons: list[str]
    proxy_samples: list[tuple[float, dict[str, ProxyUsage]]]  # (epoch, usage) during the phase
    warmup_requests: int = 0
    step_series: dict[str, Series] = field(default_factory=dict)  # "<key>@step<n>" with a load shape
    late_share: float = 0.0  # the share of the phase's sends later than late_limit_us (guard.py)
    late_limit_us: float = 0.0


class _Processes:
    """The phase's Locust processes: each in its own process group, all stopped on any exit."""

    def __init__(self) -> None:
        self.children: list[subprocess.Popen[bytes]] = []

    def start(self, argv: list[str], log: Path) -> None:
        with deferred_interrupts(), open(log, "ab") as out:  # a started process is always recorded
            self.children.append(subprocess.Popen(argv, env=_env(), stdout=out, stderr=subprocess.STDOUT,
                                                   stdin=subprocess.DEVNULL, start_new_session=True))

    def running(self) -> bool:
        return any(child.poll() is None for child in self.children)

    def stop(self, grace: float = 5.0) -> None:
        with deferred_interrupts():
            for sig in (signal.SIGTERM, signal.SIGKILL):
                for child in self.children:
                    if child.poll() is None:
                        try:
                            os.killpg(child.pid, sig)
                        except ProcessLookupError:
                            pass
                deadline = time.monotonic() + grace
                while self.running() and time.monotonic() < deadline:
                    time.sleep(0.02)
                if not self.running():
                    return


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _argv(spec_path: Path, role: str, index: int = 0, port: int = 0) -> list[str]:
    return [sys.executable, "-m", "meshconform.perf.engine", str(spec_path), role, str(index), str(port)]


def run_phase(spec: PhaseSpec, out_dir: Path, sampler: Sampler | None = None,
              progress: TextIO | None = sys.stderr) -> PhaseOutcome:
    out_dir.mkdir(parents=True, exist_ok=True)
    spec.out_dir = str(out_dir)
    spec_path = out_dir / f"{spec.name}-spec.json"
    spec.write(spec_path)
    processes = _Processes()
    logs: list[list[Any]] = []  # [log path, bytes already shown]
    samples: list[tuple[float, dict[str, ProxyUsage]]] = []
    try:
        if spec.processes <= 1:
            names = [("local", 0)]
            port = 0
        else:
            port = _free_port()
            names = [("master", 0)] + [("worker", i) for i in range(1, spec.processes + 1)]
        for role, index in names:
            log = out_dir / f"{spec.name}-{role}{index}.log"
            processes.start(_argv(spec_path, role, index, port), log)
            logs.append([log, 0])
        deadline = time.monotonic() + spec.total_s + STARTUP_ALLOWANCE_S + PROCESS_EXIT_GRACE_S
        last_sample = 0.0
        while processes.running():
            if time.monotonic() > deadline:
                raise PlatformError(f"perf phase {spec.name!r} did not finish within its planned "
                                    f"{spec.total_s:.0f}s plus allowances; logs: {out_dir}")
            if sampler is not None and time.monotonic() - last_sample >= 1.0:
                last_sample = time.monotonic()
                samples.append((time.time(), sampler()))
            _relay(logs, progress)
            time.sleep(POLL_S)
        _relay(logs, progress)
    finally:
        processes.stop()
    outputs = sorted(out_dir.glob(f"{spec.name}-local*.json")) + sorted(out_dir.glob(f"{spec.name}-worker*.json"))
    if not outputs:
        tails = "\n".join(Path(str(log)).read_text(errors="replace")[-2000:] for log, _ in logs)
        raise PlatformError(f"perf phase {spec.name!r}: no load-generator output in {out_dir}; logs end:\n{tails}")
    outcome = merge(spec, [json.loads(p.read_text()) for p in outputs])
    outcome.proxy_samples = samples
    return outcome


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}


def _relay(logs: list[list[Any]], progress: TextIO | None) -> None:
    """Show the processes' progress lines (and any error lines) as they appear in their logs."""
    for entry in logs:
        path, offset = entry
        if not path.exists():
            continue
        with open(path, "rb") as handle:
            handle.seek(offset)
            chunk = handle.read()
        complete = chunk.rsplit(b"\n", 1)[0] + b"\n" if b"\n" in chunk else b""
        entry[1] = offset + len(complete)
        if progress is not None:
            for line in complete.decode(errors="replace").splitlines():
                if line.startswith("[") or "Error" in line or "Traceback" in line:
                    print(line, file=progress, flush=True)


def merge(spec: PhaseSpec, outputs: list[dict[str, Any]]) -> PhaseOutcome:
    """One outcome from the recordings of every process that ran users."""
    series: dict[str, Series] = {}
    step_series: dict[str, Series] = {}
    health = []
    lateness = histograms.new()
    timeline: dict[int, dict[str, Any]] = {}
    starts, ends, warmup = [], [], 0
    for output in outputs:
        _fold(series, output["series"])
        _fold(step_series, output.get("step_series", {}))
        generator = output["generator"]
        own_lateness = histograms.decode(generator["lateness"])
        lateness.add(own_lateness)
        warmup += generator.get("warmup_requests", 0)
        health.append(guard.GeneratorHealth(f"{output['role']}{output['index']}", generator["cpu_samples"],
                                            own_lateness))
        origin = output["origin_epoch"]
        starts.append(origin + spec.warmup_s)
        ends.append(origin + spec.total_s)
        for point in output["timeline"]:
            second = int(point["t"])
            merged = timeline.setdefault(second, {"t": second, "cpu_percent": [], "series": {}})
            merged["cpu_percent"].append(point["cpu_percent"])
            for key, values in point["series"].items():
                into = merged["series"].setdefault(key, {"requests": 0, "errors": 0})
                into["requests"] += values["requests"]
                into["errors"] += values["errors"]
                for name in ("median_us", "max_us"):
                    if name in values:
                        into[name] = max(into.get(name, 0), values[name])
    service = histograms.new()
    for entry in series.values():
        service.add(entry.service)
    median = histograms.percentile(service, 50.0)
    reasons = guard.verdict(spec.name, health, spec.mode == "open", median)
    limit = guard.late_limit_us(median)
    late = guard.late_share(lateness, limit) if spec.mode == "open" else 0.0
    return PhaseOutcome(spec, series, health, lateness, [timeline[k] for k in sorted(timeline)],
                        window_s=spec.total_s - spec.warmup_s, start_epoch=min(starts), end_epoch=max(ends),
                        invalid_reasons=reasons, proxy_samples=[], warmup_requests=warmup, step_series=step_series,
                        late_share=late, late_limit_us=limit)


def _fold(into: dict[str, Series], recorded: dict[str, Any]) -> None:
    """Add one process's recorded series to the phase's."""
    for key, data in recorded.items():
        entry = into.setdefault(key, Series(key))
        entry.requests += data["requests"]
        entry.errors += data["errors"]
        for kind, count in data["error_kinds"].items():
            entry.error_kinds[kind] = entry.error_kinds.get(kind, 0) + count
        entry.corrected.add(histograms.decode(data["corrected"]))
        entry.service.add(histograms.decode(data["service"]))
        for index, blob in data.get("intervals", {}).items():
            earlier = entry.intervals.get(int(index))
            entry.intervals[int(index)] = (blob if earlier is None
                                           else histograms.encode(histograms.merged([earlier, blob])))
