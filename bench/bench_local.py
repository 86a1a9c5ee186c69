"""Local platform figures: time to ready, apply convergence, productpage throughput via the ingress.

Run: .venv/bin/python bench/bench_local.py   (prints medians of repeated runs in one process)"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from meshconform import bookinfo, runs
from meshconform.meshapi.loader import load_files, load_text
from meshconform.platform.local.platform import LocalPlatform
from meshconform.traffic.model import Request

GATEWAY = Path(bookinfo.__file__).parent / "networking" / "bookinfo-gateway.yaml"
VS = """apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: echo}}
spec: {{hosts: [echo], http: [{{route: [{{destination: {{host: echo}}}}], timeout: {t}s}}]}}
"""
PEER_AUTHENTICATION = """apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {{name: default, namespace: default}}
spec: {{mtls: {{mode: {mode}}}}}
"""


def throughput(platform: LocalPlatform, requests: int = 3000, concurrency: int = 32) -> float:
    ingress = platform.vantage("ingress")
    ingress.send([Request("/productpage")] * 50, concurrency=8)  # warm-up
    started = time.perf_counter()
    replies = ingress.send([Request("/productpage")] * requests, concurrency=concurrency)
    elapsed = time.perf_counter() - started
    bad = sum(r.status != 200 for r in replies)
    assert bad == 0, f"{bad} non-200 replies"
    return requests / elapsed


def main() -> None:
    root = runs.new_run_dir("bench")
    ups, applies, listener_applies = [], [], []
    for attempt in range(3):
        platform = LocalPlatform(root / f"up-{attempt}")
        try:
            started = time.perf_counter()
            platform.up()
            ups.append(time.perf_counter() - started)
            if attempt == 0:
                for i in range(15):
                    started = time.perf_counter()
                    platform.apply(load_text(VS.format(t=i + 1)))
                    applies.append(time.perf_counter() - started)
                # A listener change: returns once no replaced listener is still draining (1 s drain time).
                for mode in ["STRICT", "PERMISSIVE"] * 3:
                    started = time.perf_counter()
                    platform.apply(load_text(PEER_AUTHENTICATION.format(mode=mode)))
                    listener_applies.append(time.perf_counter() - started)
                platform.apply(load_files([GATEWAY]))
                meshed = throughput(platform)
        finally:
            platform.down()
    plain = LocalPlatform(root / "no-sidecars", misbehave=frozenset({"no-injection"}))
    plain.up()
    try:
        plain.apply(load_files([GATEWAY]))
        unmeshed = throughput(plain)
    finally:
        plain.down()
    each = ", ".join(f"{u:.2f}" for u in ups)
    print(f"up -> ready: median {statistics.median(ups):.2f} s over {len(ups)} runs ({each})")
    print(f"apply -> converged (one VirtualService, 11 sidecars + gateway): median "
          f"{statistics.median(applies) * 1000:.0f} ms over {len(applies)} applies")
    print(f"apply -> converged (namespace PeerAuthentication, listener change incl. drain): median "
          f"{statistics.median(listener_applies) * 1000:.0f} ms over {len(listener_applies)} applies")
    print(f"productpage via ingress, 32 concurrent: {meshed:.0f} req/s with sidecars, "
          f"{unmeshed:.0f} req/s without (ratio {meshed / unmeshed:.2f})")


if __name__ == "__main__":
    main()
