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
    api_call: float = 30.0  # one request to the API server (get, list, apply, delete); watches end server-side
    exec_call: float = 60.0  # one exec (config dump) or log read
    port_forward: float = 30.0  # opening one port-forward or exec stream (connect + websocket upgrade: the client
    #                             bounds neither); an exec gets this plus exec_call
    agent_probe: float = 10.0  # deciding once how to reach the testbed agent (pods/proxy, else port-forward)
    ingress_address: float = 120.0  # a LoadBalancer gateway Service getting its address, before port-forward
    crds_established: float = 60.0  # Gateway API CRDs meshconform installed: until the API server serves them
    node_metrics: float = 10.0  # one kubelet /metrics/resource scrape through the API server (perf's proxy use)
    usage_pods_refresh: float = 30.0  # perf's proxy use: how long the list of proxies (and their nodes) is reused
    poll_first: float = 0.2  # first pause between polls of an observable condition; doubles up to poll_max
    poll_max: float = 2.0

    def to_json(self) -> dict[str, float]:
        from dataclasses import asdict
        return asdict(self)
