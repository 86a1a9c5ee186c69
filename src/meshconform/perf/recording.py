"""What a load-generator process records: per result key (target/request) HDR histograms of the
corrected and the service latency, counts and errors inside the measurement window, a per-second
timeline, and the generator's own health (CPU, late sends). No Locust import: tests drive it directly."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram

from meshconform.perf import histograms
from meshconform.perf.schedule import Timing
from meshconform.perf.spec import LATE_SEND_US


@dataclass
class _Series:
    corrected: HdrHistogram = field(default_factory=histograms.new)
    service: HdrHistogram = field(default_factory=histograms.new)
    interval: HdrHistogram = field(default_factory=histograms.new)  # this second only, for the timeline
    requests: int = 0
    errors: int = 0
    interval_requests: int = 0
    interval_errors: int = 0
    error_kinds: dict[str, int] = field(default_factory=dict)


class Recorder:
    """Counts only requests whose intended send time falls in [window_start, window_end)."""

    def __init__(self, window_start: float, window_end: float) -> None:
        self.window_start = window_start
        self.window_end = window_end
        self.series: dict[str, _Series] = {}
        self.lateness = histograms.new()
        self.late_sends = 0
        self.sends = 0
        self.timeline: list[dict[str, Any]] = []
        self.cpu_samples: list[float] = []  # percent of one core, one per second in the window
        self.warmup_requests = 0

    def in_window(self, t: float) -> bool:
        return self.window_start <= t < self.window_end

    def record(self, key: str, timing: Timing, ok: bool, error: str = "") -> None:
        if not self.in_window(timing.intended):
            self.warmup_requests += timing.intended < self.window_start
            return
        series = self.series.get(key)
        if series is None:
            series = self.series[key] = _Series()
        histograms.record(series.corrected, timing.corrected_us)
        histograms.record(series.service, timing.service_us)
        histograms.record(series.interval, timing.corrected_us)
        series.requests += 1
        series.interval_requests += 1
        if not ok:
            series.errors += 1
            series.interval_errors += 1
            kind = error[:120] or "error"
            series.error_kinds[kind] = series.error_kinds.get(kind, 0) + 1
        self.sends += 1
        late_us = round(timing.lateness * 1e6)
        histograms.record(self.lateness, late_us)
        if late_us > LATE_SEND_US:
            self.late_sends += 1

    def abandon(self, key: str, intended: float, now: float) -> None:
        """A request still without reply when the process ends: an error, timed to now."""
        if not self.in_window(intended):
            return
        series = self.series.setdefault(key, _Series())
        histograms.record(series.corrected, round((now - intended) * 1e6))
        series.requests += 1
        series.errors += 1
        kind = "no reply by the end of the run"
        series.error_kinds[kind] = series.error_kinds.get(kind, 0) + 1

    def tick(self, now: float, cpu_percent: float) -> dict[str, Any] | None:
        """Close one second of the timeline (call once a second); None outside the window."""
        if not self.in_window(now) and not (self.timeline and now < self.window_end + 1.0):
            for series in self.series.values():
                series.interval.reset()
                series.interval_requests = series.interval_errors = 0
            return None
        point: dict[str, Any] = {"t": round(now - self.window_start, 3), "cpu_percent": cpu_percent, "series": {}}
        self.cpu_samples.append(cpu_percent)
        for key, series in self.series.items():
            entry: dict[str, Any] = {"requests": series.interval_requests, "errors": series.interval_errors}
            if series.interval_requests:
                entry["p50_us"] = series.interval.get_value_at_percentile(50)
                entry["p99_us"] = series.interval.get_value_at_percentile(99)
            point["series"][key] = entry
            series.interval.reset()
            series.interval_requests = series.interval_errors = 0
        self.timeline.append(point)
        return point

    def to_json(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "window_s": self.window_end - self.window_start,
            "series": {key: {"requests": s.requests, "errors": s.errors, "error_kinds": s.error_kinds,
                             "corrected": histograms.encode(s.corrected), "service": histograms.encode(s.service)}
                       for key, s in self.series.items()},
            "generator": {"sends": self.sends, "late_sends": self.late_sends,
                          "lateness": histograms.encode(self.lateness), "cpu_samples": self.cpu_samples,
                          "warmup_requests": self.warmup_requests},
            "timeline": self.timeline,
            **(extra or {}),
        }

    def write(self, path: Path, extra: dict[str, Any] | None = None) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_json(extra)))
        tmp.replace(path)
