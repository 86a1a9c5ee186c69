"""The perf harness against wrk (Debian's wrk 4.1, `apt-get install -y wrk`) on the same targets of the
local platform, in one run:

1. Ceiling: requests/s per core of one Locust process (closed model, no pause, 32 connections)
   and of wrk (1 thread, 32 connections) against the ingress gateway Envoy's own /ready (200, no
   app behind it: the generator is the bottleneck). Per core = requests/s over the generator's own
   CPU time (process accounting), so a machine shared with other work still gives a fair figure.
2. Latency at a fixed rate: Debian's wrk has no -R (that is wrk2), so wrk runs closed-loop with a
   Lua delay() between requests on each connection, which keeps the load light and steady; its
   achieved rate (a 3 s calibration) is given to our open model with the same number of
   connections, on the same target (a Bookinfo path through the ingress), and both then run AT THE
   SAME TIME, so they see the same machine. Under light load neither tool queues, so both measure
   the same service time; the ratios show how far the Python/gevent generator's own overhead moves
   p50 and p99. This is NOT a comparison of coordinated-omission behaviour (wrk would hide a stall;
   the open model would not). Medians of the pairs are quoted.

Run: .venv/bin/python bench/bench_perf.py [--pairs 3] [--seconds 10]"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from meshconform import bookinfo, runs  # type: ignore[attr-defined]
from meshconform.meshapi.loader import load_files
from meshconform.perf import histograms
from meshconform.perf.runner import run_phase
from meshconform.perf.spec import PhaseSpec, Target
from meshconform.platform.local import envoy
from meshconform.platform.local.platform import LocalPlatform

GATEWAY = Path(bookinfo.__file__).parent / "networking" / "bookinfo-gateway.yaml"
UNITS = {"us": 1.0, "ms": 1000.0, "s": 1e6}


def wrk(url: str, connections: int, seconds: float, delay_ms: int | None = None) -> dict[str, float]:
    """Run wrk; returns rps, p50_us, p99_us and rps per core (wrk's own CPU time, from /proc)."""
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency"]
    script = None
    if delay_ms is not None:
        script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)  # noqa: SIM115
        script.write(f"function delay()\n  return {delay_ms}\nend\n")
        script.close()
        argv += ["-s", script.name]
    try:
        proc = psutil.Popen([*argv, url], stdout=subprocess.PIPE, text=True)
        cpu = 0.0
        while proc.poll() is None:
            try:
                times = proc.cpu_times()
                cpu = times.user + times.system
            except psutil.Error:
                pass
            time.sleep(0.2)
        out = proc.stdout.read() if proc.stdout else ""
    finally:
        if script is not None:
            Path(script.name).unlink(missing_ok=True)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def pct(label: str) -> float:
        value, unit = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()  # type: ignore[union-attr]
        return float(value) * UNITS[unit]
    return {"rps": rps, "p50_us": pct("50"), "p99_us": pct("99"), "rps_per_core": rps / max(cpu / seconds, 1e-9)}


def ours(run_dir: Path, name: str, target: Target, path: str, mode: str, rate: float, users: int,
         seconds: float) -> dict[str, float]:
    spec = PhaseSpec(name, ["Get"], [target], mode=mode, rate=rate, users=users, warmup_s=2.0,  # type: ignore[arg-type]
                     duration_s=seconds, path=path)
    outcome = run_phase(spec, run_dir, progress=None)
    series = next(iter(outcome.series.values()))
    cpu = [s for h in outcome.health for s in h.cpu_samples]
    rps = series.requests / outcome.window_s
    p50, p99 = histograms.percentiles(series.corrected, [50.0, 99.0])
    return {"rps": rps, "p50_us": p50, "p99_us": p99, "rps_per_core": rps / max(statistics.mean(cpu) / 100, 1e-9),
            "cpu_percent": statistics.mean(cpu), "errors": series.errors, "valid": not outcome.invalid_reasons}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--delay-ms", type=int, default=50, help="wrk's pause between requests per connection "
                        "(both tools run at once: keep their sum light)")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--path", default="/api/v1/products", help="fixed-rate target path (through the ingress)")
    parser.add_argument("--skip-ceiling", action="store_true")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get update && apt-get install -y wrk")
    run_dir = runs.new_run_dir("bench-perf")
    platform = LocalPlatform(run_dir / "platform")
    try:
        endpoint = platform.up()
        platform.apply(load_files([GATEWAY]))
        gateway = Target("ingress", endpoint.http)
        print(f"machine: {psutil.cpu_count()} cores, load average {psutil.getloadavg()}")
        # The gateway Envoy's admin /ready: a 200 that Envoy answers itself (bench only reads the platform state).
        ready = Target("gateway-admin", f"http://{platform.state.pod_ips['istio-system/istio-ingressgateway']}"
                                        f":{envoy.ADMIN_PORT}")
        print("\n1. ceiling (closed loop, no pause, 32 connections; Envoy's /ready)")
        ceiling_wrk: list[dict[str, float]] = []
        ceiling_ours: list[dict[str, float]] = []
        for i in range(0 if args.skip_ceiling else args.pairs):
            ceiling_wrk.append(wrk(f"{ready.base_url}/ready", 32, args.seconds))
            ceiling_ours.append(ours(run_dir / "bench", f"ceiling{i}", ready, "/ready", "closed", 0.0, 32,
                                     args.seconds))
            print(f"  pair {i + 1}: wrk {ceiling_wrk[-1]['rps']:.0f} rps ({ceiling_wrk[-1]['rps_per_core']:.0f}/core)"
                  f"  locust {ceiling_ours[-1]['rps']:.0f} rps ({ceiling_ours[-1]['rps_per_core']:.0f}/core, "
                  f"cpu {ceiling_ours[-1]['cpu_percent']:.0f}%)")
        if ceiling_wrk:
            w = statistics.median(r["rps_per_core"] for r in ceiling_wrk)
            o = statistics.median(r["rps_per_core"] for r in ceiling_ours)
            print(f"  median requests/s per core: wrk {w:.0f}, locust (meshconform) {o:.0f}, ratio {o / w:.3f}")
        print(f"\n2. latency at a fixed rate: {args.path} via the ingress, {args.connections} connections")
        ratios50, ratios99 = [], []
        url = f"{endpoint.http}{args.path}"
        for i in range(args.pairs):
            # wrk's rate at this delay, then both at once: the same machine conditions for both tools
            # (on a shared machine, load swings between two runs a minute apart dwarf a 5 % difference).
            rate = wrk(url, args.connections, 3.0, args.delay_ms)["rps"]
            box: dict[str, dict[str, float]] = {}

            def run_wrk(into: dict[str, dict[str, float]] = box) -> None:
                into["wrk"] = wrk(url, args.connections, args.seconds + 5.0, args.delay_ms)
            worker = threading.Thread(target=run_wrk)
            worker.start()
            mine = ours(run_dir / "bench", f"fixed{i}", gateway, args.path, "open", rate, args.connections,
                        args.seconds)
            worker.join()
            theirs = box["wrk"]
            ratios50.append(mine["p50_us"] / theirs["p50_us"])
            ratios99.append(mine["p99_us"] / theirs["p99_us"])
            print(f"  pair {i + 1}: wrk {theirs['rps']:.0f} rps p50 {theirs['p50_us']:.0f} us "
                  f"p99 {theirs['p99_us']:.0f} us"
                  f" | open model {mine['rps']:.0f} rps p50 {mine['p50_us']:.0f} us p99 {mine['p99_us']:.0f} us"
                  f" (valid {mine['valid']}) | ratios p50 {ratios50[-1]:.3f} p99 {ratios99[-1]:.3f}")
        print(f"  median ratio ours/wrk: p50 {statistics.median(ratios50):.3f}, p99 {statistics.median(ratios99):.3f}")
    finally:
        platform.down()


if __name__ == "__main__":
    main()
