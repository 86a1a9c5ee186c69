"""The Locust process: `python -m meshconform.perf.engine SPEC ROLE [INDEX MASTER_PORT]`.

ROLE is `local` (one process does everything), `master` (Locust's distributed mode: spawns users
on the workers, keeps Locust's statistics) or `worker`. Every process that runs users writes its
recording to `<out_dir>/<phase>-<role><index>.json`; progress goes to stderr once a second or two.
Locust monkey-patches the standard library with gevent on import, which is why this is a
process of its own and nothing else imports it."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import gevent
import locust  # noqa: I001  (first: gevent must patch the standard library before anything imports ssl)
import psutil
from locust import LoadTestShape
from locust.env import Environment
from locust.runners import MasterRunner, Runner
from locust.stats import PERCENTILES_TO_REPORT, StatsCSVFileWriter

from meshconform.perf import histograms, scenarios
from meshconform.perf.scenarios import Control
from meshconform.perf.spec import PROCESS_EXIT_GRACE_S, WORKER_CONNECT_S, PhaseSpec

PROGRESS_EVERY_S = 2.0
MASTER_LINGER_S = 3.0  # workers start their clocks on the spawn message, up to a moment later


def _shape(spec: PhaseSpec) -> LoadTestShape | None:
    if not spec.steps:
        return None

    class Steps(LoadTestShape):
        def tick(self) -> tuple[int, float] | None:
            elapsed = float(self.get_run_time())  # type: ignore[no-untyped-call]
            if elapsed >= spec.total_s:
                return None
            _, users, _ = spec.rate_at(elapsed)
            return users, float(max(1, users))

    return Steps()  # type: ignore[no-untyped-call]


def _progress(spec: PhaseSpec, role: str, point: dict[str, Any] | None, now: float) -> None:
    """One line: where the phase is, and over the last second the replies, their median and slowest (a
    second holds too few replies for a tail percentile), the generator's CPU, the totals."""
    recorder, origin = Control.recorder, Control.origin
    if recorder is None or origin is None:
        return
    elapsed = now - origin
    stage = "warm-up" if now < recorder.window_start else ("measuring" if now < recorder.window_end else "draining")
    requests = sum(s.requests for s in recorder.series.values())
    errors = sum(s.errors for s in recorder.series.values())
    line = f"[{spec.name}{'' if role == 'local' else ' ' + role}] {elapsed:5.1f}/{spec.total_s:.0f}s {stage:9s}"
    if point:
        entries = [e for e in point["series"].values() if e["requests"]]
        count = sum(e["requests"] for e in entries)
        rate, _, _ = spec.rate_at(elapsed)
        wanted = f" (of {rate / spec.processes:.0f} asked)" if spec.mode == "open" else ""
        if entries:
            median = max(e["median_us"] for e in entries)
            slowest = max(e["max_us"] for e in entries)
            line += f" {count} replies/s{wanted}  median {median / 1000:.2f} ms  slowest {slowest / 1000:.2f} ms"
        else:
            line += f" no replies in the last second{wanted}"
        line += f"  cpu {point['cpu_percent']:.0f}%"
    line += f"  total {requests}  errors {errors}"
    print(line, file=sys.stderr, flush=True)


def _monitor(spec: PhaseSpec, role: str) -> None:
    """Once a second: close a timeline point with this process's CPU; print progress every 2 s."""
    process = psutil.Process()
    process.cpu_percent(None)
    last_print = 0.0
    next_tick = time.perf_counter() + 1.0
    while True:
        scenarios.sleep_until(next_tick)
        next_tick += 1.0
        now = time.perf_counter()
        cpu = process.cpu_percent(None)
        point = Control.recorder.tick(now, cpu) if Control.recorder else None
        if now - last_print >= PROGRESS_EVERY_S:
            _progress(spec, role, point, now)
            last_print = now


def _at(moment: float, *call: object) -> None:
    scenarios.sleep_until(moment)
    call[0](*call[1:])  # type: ignore[operator]


def _drain_then(action: object, deadline_s: float) -> None:
    """Stop scheduling, let replies already on their way arrive (bounded), then run `action`."""
    Control.stopping = True
    deadline = time.perf_counter() + deadline_s
    while Control.in_flight and time.perf_counter() < deadline:
        gevent.sleep(0.01)
    action()  # type: ignore[operator]


def _write(spec: PhaseSpec, role: str, index: int, env: Environment) -> None:
    out = Path(spec.out_dir)
    recorder = Control.recorder
    if recorder is not None and role != "master":
        now = time.perf_counter()
        # Replies still out at the end are errors timed to now: dropping them would hide the slowest.
        for key, intended in Control.in_flight.values():
            recorder.abandon(key, intended, now)
        recorder.write(out / f"{spec.name}-{role}{index}.json",
                       {"role": role, "index": index, "origin_epoch": time.time() - (now - (Control.origin or now))})
    if role in ("local", "master"):
        if spec.html:
            from locust.html import get_html_report
            report = get_html_report(env, show_download_link=False)  # type: ignore[no-untyped-call]
            (out / f"{spec.name}-locust.html").write_text(str(report))


def main(argv: list[str]) -> int:
    spec = PhaseSpec.read(Path(argv[0]))
    role = argv[1]
    index = int(argv[2]) if len(argv) > 2 else 0
    master_port = int(argv[3]) if len(argv) > 3 else 0
    classes = scenarios.configure(spec)
    histograms.warm()  # the bin table, before any load
    env = Environment(user_classes=list(classes), events=locust.events, shape_class=_shape(spec), stop_timeout=1.0)
    env.events.test_start.add_listener(  # type: ignore[no-untyped-call]
        lambda **_: Control.begin(time.perf_counter()))
    runner: Runner
    if role == "worker":
        runner = env.create_worker_runner("127.0.0.1", master_port)
    elif role == "master":
        runner = env.create_master_runner("127.0.0.1", master_port)
    else:
        runner = env.create_local_runner()
    if role != "worker":
        Control.begin(time.perf_counter())  # the master's window marks the phase, not its users
    monitor = gevent.spawn(_monitor, spec, role)
    csv_writer = None
    if spec.csv and role != "worker":
        csv_writer = StatsCSVFileWriter(env, PERCENTILES_TO_REPORT, str(Path(spec.out_dir) / f"{spec.name}-locust"),
                                        full_history=True)
        gevent.spawn(csv_writer)
    if role == "master":
        deadline = time.perf_counter() + WORKER_CONNECT_S
        assert isinstance(runner, MasterRunner)
        while len(runner.clients.ready) < spec.processes:
            if time.perf_counter() > deadline:
                print(f"[{spec.name}] only {len(runner.clients.ready)} of {spec.processes} workers connected "
                      f"within {WORKER_CONNECT_S:.0f}s", file=sys.stderr)
                runner.quit()
                return 3
            gevent.sleep(0.1)
        Control.origin = None
        Control.begin(time.perf_counter())
    if role != "worker":
        if spec.steps:
            runner.start_shape()
        else:
            runner.start(spec.users, spawn_rate=max(1.0, spec.users / max(0.5, spec.warmup_s / 2)))
        # Workers end their own schedules (their clocks start a moment later); the master waits for them.
        end = (Control.origin or 0.0) + spec.total_s + (MASTER_LINGER_S if role == "master" else 0.0)
        gevent.spawn(_at, end, _drain_then, runner.quit, PROCESS_EXIT_GRACE_S / 4)
    else:
        gevent.spawn(_stop_worker_users_at_end, spec)
    runner.greenlet.join()
    monitor.kill()
    if csv_writer is not None:
        csv_writer.stats_history_flush()
        csv_writer.close_files()
    _write(spec, role, index, env)
    return 0


def _stop_worker_users_at_end(spec: PhaseSpec) -> None:
    """A worker stops scheduling at its own window's end (the master quits it a little later)."""
    while Control.origin is None:
        gevent.sleep(0.1)
    scenarios.sleep_until(Control.origin + spec.total_s)
    Control.stopping = True


if __name__ == "__main__":
    result = main(sys.argv[1:])
    print(json.dumps({"exit": result}), file=sys.stderr) if result else None
    sys.exit(result)
