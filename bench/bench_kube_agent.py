"""Benchmark: the cluster testbed's standard-library agent (meshconform.platform.kube.agent) on loopback: one
batch of 1500 requests (the suite's largest sample, 50/50 at +-0.05) from the client agent to an echo agent, as a
client pod sends it on a cluster (minus the mesh). Prints the median of 5 runs."""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import time

import requests

from meshconform.platform.kube import agent

N, CONCURRENCY, RUNS = 1500, 10, 5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(role: str, env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-I", agent.__file__, role], env={"PATH": os.environ["PATH"], **env},
                            stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"agent {role} did not listen on {port}")


def main() -> None:
    echo, control = free_port(), free_port()
    procs = [start("echo", {"MESHCONFORM_BIND": f"127.0.0.1:{echo}"}, echo),
             start("client", {"MESHCONFORM_CONTROL": f"127.0.0.1:{control}"}, control)]
    try:
        times = []
        for run in range(RUNS):
            batch = [{"path": f"/b/{run}/{i}", "host": f"127.0.0.1:{echo}", "method": "GET", "headers": {},
                      "body": None, "scheme": "http", "timeout": 15.0, "ca_pem": None, "request_id": f"{run}-{i}"}
                     for i in range(N)]
            started = time.perf_counter()
            reply = requests.post(f"http://127.0.0.1:{control}/batch", timeout=120,
                                  json={"requests": batch, "concurrency": CONCURRENCY, "reuse_connections": True})
            times.append(time.perf_counter() - started)
            assert sum(r["status"] == 200 for r in reply.json()["responses"]) == N
        median = statistics.median(times)
        print(f"kube agent: {N} requests, concurrency {CONCURRENCY}: median {median:.2f} s per batch "
              f"({N / median:.0f} req/s) over {RUNS} runs; all: {', '.join(f'{t:.2f}' for t in times)}")
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=10)


if __name__ == "__main__":
    main()
