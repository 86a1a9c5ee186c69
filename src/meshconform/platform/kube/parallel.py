"""One pytest worker per cluster. Decision: `-n` > 1 is refused on cluster platforms, with this message.

Why not one namespace set per worker: the namespace mapping would allow it for workloads, but the mesh is
shared: the ingress gateway (every worker's Gateway binds `*` or the same hosts on the same port),
mesh-wide PeerAuthentication in istio-system, and `istioctl proxy-status`; a worker's test would change
another's verdict. Verdicts must not depend on scheduling, so: one worker."""

from __future__ import annotations

import os

from meshconform.errors import PlatformError

WORKER_COUNT_ENV = "PYTEST_XDIST_WORKER_COUNT"  # set by pytest-xdist in every worker


def check_single_worker(worker: str, environ: dict[str, str] | None = None) -> None:
    env = os.environ if environ is None else environ
    count = env.get(WORKER_COUNT_ENV)
    if count is not None and count.isdigit() and int(count) > 1:
        raise PlatformError(f"pytest-xdist runs {count} workers (this is {worker}): a cluster platform takes one "
                            "worker (the ingress gateway and mesh-wide policies are shared by the whole mesh); "
                            "run with -n 0 or -n 1")
