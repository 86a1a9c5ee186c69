"""What a load-generator process records: per result key (target/request) HDR histograms of the
corrected and the service latency, counts and errors inside the measurement window, the corrected
latencies of every second of the window apart (by intended send time: the comparison with a baseline
needs the run's second-to-second spread, see baseline.py), a per-second timeline, and the generator's
own health (CPU, late sends). With a load shape, each series is also recorded per step
(`<key>@step<n>`), so a regression at one load level is not averaged away by the others.
No Locust import: tests drive it directly.

Raw values wait in lists and go into the histograms once a second, vectorised (see
`histograms.record_many`); the timeline's per-second figures come from those raw values."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from hdrh.histogram import HdrHistogram

from meshconform.perf import histograms
from meshconform.perf.schedule import Timing
from meshconform.perf.spec import INTERVAL_S, LATE_SEND_US


@dataclass
class _Series:
    corrected: HdrHistogram = field(default_factory=histograms.new)
    service: HdrHistogram = field(default_factory=histograms.new)
    pending_corrected: list[int] = field(default_factory=list)  # this second, not yet in the histograms
    pending_service: list[int] = field(default_factory=list)
    requests: int = 0
    errors: int = 0
    interval_errors: int = 0
    error_kinds: dict[str, int] = field(default_factory=dict)
    intervals: dict[int, list[int]] = field(default_factory=dict)  # second of the window -> corrected latencies

    def add(self, corrected_us: int, service_us: int | None, ok: bool, error: str, interval: int) -> None:
        self.intervals.setdefault(interval, []).append(corrected_us)
        self.pending_corrected.append(corrected_us)
        if service_us is not None:
            self.pending_service.append(service_us)
        self.requests += 1
        if not ok:
            self.errors += 1
            self.interval_errors += 1
            self.error_kinds[error] = self.error_kinds.get(error, 0) + 1

    def to_json(self) -> dict[str, Any]:
        return {"requests": self.requests, "errors": self.errors, "error_kinds": self.error_kinds,
                "corrected": histograms.encode(self.corrected), "service": histograms.encode(self.service),
                "intervals": {str(i): histograms.encode_values(v) for i, v in sorted(self.intervals.items())}}

    def flush(self) -> None:
        histograms.record_many(self.corrected, self.pending_corrected)
        histograms.record_many(self.service, self.pending_service)
        self.pending_corrected, self.pending_service = [], []
        self.interval_errors = 0


class Recorder:
    """Counts only requests whose intended send time falls in [window_start, window_end)."""

    def __init__(self, window_start: float, window_end: float,
                 step_of: Callable[[float], int] | None = None) -> None:
        self.window_start = window_start
        self.window_end = window_end
        self.series: dict[str, _Series] = {}
        self.step_of = step_of  # intended send time -> index of the load shape's step
        self.step_series: dict[str, _Series] = {}  # "<key>@step<n>", n from 1
        self.lateness = histograms.new()
        self._pending_lateness: list[int] = []
        self.late_sends = 0
        self.sends = 0
        self.timeline: list[dict[str, Any]] = []
        self.cpu_samples: list[float] = []  # percent of one core, one per second in the window
        self.warmup_requests = 0

    def in_window(self, t: float) -> bool:
        return self.window_start <= t < self.window_end

    def _series(self, key: str) -> _Series:
        series = self.series.get(key)
        if series is None:
            series = self.series[key] = _Series()
        return series

    def _add(self, key: str, intended: float, corrected_us: int, service_us: int | None, ok: bool,
             error: str) -> None:
        interval = int((intended - self.window_start) / INTERVAL_S)
        self._series(key).add(corrected_us, service_us, ok, error, interval)
        if self.step_of is not None:
            step_key = f"{key}@step{self.step_of(intended) + 1}"
            step = self.step_series.get(step_key)
            if step is None:
                step = self.step_series[step_key] = _Series()
            step.add(corrected_us, service_us, ok, error, interval)

    def record(self, key: str, timing: Timing, ok: bool, error: str = "") -> None:
        if not self.in_window(timing.intended):
            self.warmup_requests += timing.intended < self.window_start
            return
        self._add(key, timing.intended, timing.corrected_us, timing.service_us, ok, error[:120] or "error")
        self.sends += 1
        late_us = round(timing.lateness * 1e6)
        self._pending_lateness.append(late_us)
        if late_us > LATE_SEND_US:
            self.late_sends += 1

    def abandon(self, key: str, intended: float, now: float) -> None:
        """A request still without reply when the process ends: an error, timed to now."""
        if not self.in_window(intended):
            return
        self._add(key, intended, round((now - intended) * 1e6), None, False, "no reply by the end of the run")

    def flush(self) -> None:
        for series in (*self.series.values(), *self.step_series.values()):
            series.flush()
        histograms.record_many(self.lateness, self._pending_lateness)
        self._pending_lateness = []

    def tick(self, now: float, cpu_percent: float) -> dict[str, Any] | None:
        """Close one second of the timeline (call once a second); None outside the window."""
        measuring = self.in_window(now) or (bool(self.timeline) and now < self.window_end + 1.0)
        point: dict[str, Any] = {"t": round(now - self.window_start, 3), "cpu_percent": cpu_percent, "series": {}}
        for key, series in self.series.items():
            entry: dict[str, Any] = {"requests": len(series.pending_corrected), "errors": series.interval_errors}
            if series.pending_corrected:
                # What the second's replies were, for progress and the timeline: its median and slowest. Too
                # few for percentiles of the run (those come from the histograms, see histograms.supported).
                raw = np.asarray(series.pending_corrected)
                entry["median_us"] = int(np.median(raw))
                entry["max_us"] = int(raw.max())
            point["series"][key] = entry
        self.flush()
        if not measuring:
            return None
        self.cpu_samples.append(cpu_percent)
        self.timeline.append(point)
        return point

    def to_json(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        self.flush()
        return {
            "pid": os.getpid(),
            "window_s": self.window_end - self.window_start,
            "series": {key: s.to_json() for key, s in self.series.items()},
            "step_series": {key: s.to_json() for key, s in self.step_series.items()},
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
