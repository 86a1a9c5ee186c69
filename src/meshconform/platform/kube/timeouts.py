"""Every deadline of the Kubernetes platform in one place (the suite's own are in meshconform.suite.timeouts)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KubeTimeouts:
    workloads_ready: float = 600.0  # first pull of Bookinfo's images on a fresh kind node takes minutes
    rollout_after_apply: float = 180.0  # a Deployment changed by a test
    object_gone: float = 120.0  # delete waits until the object is gone
    namespace_gone: float = 300.0  # namespaces finalise their contents first
    proxies_synced: float = 60.0  # `istioctl proxy-status`: no STALE proxy in the run's namespaces
    batch_base: float = 60.0  # a client batch: this plus the requests' own timeouts / concurrency
    exec_call: float = 60.0  # one exec (config dump) or log read
    node_metrics: float = 10.0  # one kubelet /metrics/resource scrape through the API server (perf's proxy use)
    usage_pods_refresh: float = 30.0  # perf's proxy use: how long the list of proxies (and their nodes) is reused
    poll_first: float = 0.2  # first pause between polls of an observable condition; doubles up to poll_max
    poll_max: float = 2.0

    def to_json(self) -> dict[str, float]:
        from dataclasses import asdict
        return asdict(self)
