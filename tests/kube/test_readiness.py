"""Readiness predicates and the watch loop on real-shaped objects (data/objects.yaml, sources listed there)."""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshconform.errors import PlatformError
from meshconform.platform.kube import readiness
from meshconform.platform.kube.client import Listing
from meshconform.platform.kube.names import NamespaceMap
from meshconform.platform.kube.workloads import app_container, deployment_of, proxy_image, to_workload

OBJECTS: dict[str, Any] = yaml.safe_load((Path(__file__).parent / "data" / "objects.yaml").read_text())


def obj(name: str) -> dict[str, Any]:
    return copy.deepcopy(OBJECTS[name])


def test_deployment_predicates():
    assert readiness.deployment_problem(obj("deployment_ready")) is None
    assert "old replicas pending termination" in readiness.deployment_problem(obj("deployment_rolling"))
    assert "rollout failed" in readiness.deployment_problem(obj("deployment_failed"))
    stale = obj("deployment_ready")
    stale["metadata"]["generation"] = 2
    assert "not observed" in readiness.deployment_problem(stale)


def test_native_sidecar_counts_as_the_proxy_and_a_pull_failure_is_named():
    ready = obj("pod_native_sidecar_ready")
    assert readiness.has_proxy(ready)
    assert readiness.pod_problem(ready, expect_proxy=True) is None
    assert "although injection does not apply" in readiness.pod_problem(ready, expect_proxy=False)
    pulling = obj("pod_image_pull_backoff")
    assert readiness.has_proxy(pulling)  # a classic sidecar container
    assert readiness.pod_problem(pulling, True).startswith("container details: ImagePullBackOff")
    bare = obj("pod_unscheduled")
    assert "no istio-proxy container" in readiness.pod_problem(bare, True)
    assert "not scheduled: 0/1 nodes are available" in readiness.pod_problem(bare, None)
    # istio-init (an init container that exits) is not a sidecar.
    only_init = obj("pod_native_sidecar_ready")
    only_init["spec"]["initContainers"] = only_init["spec"]["initContainers"][:1]
    assert not readiness.has_proxy(only_init)


def test_injection_expectation_follows_the_webhook_selectors():
    assert readiness.injection_expected({"istio-injection": "enabled"}, {})
    assert not readiness.injection_expected({"istio-injection": "enabled"}, {"sidecar.istio.io/inject": "false"})
    assert not readiness.injection_expected({}, {})
    assert readiness.injection_expected({}, {"sidecar.istio.io/inject": "true"})


def test_workload_from_a_real_pod():
    names = NamespaceMap("mc-3fa2c1")
    pod = obj("pod_native_sidecar_ready")
    assert deployment_of(pod) == "echo-v1"
    assert app_container(pod) == "echo"
    assert proxy_image(pod) == "docker.io/istio/proxyv2:1.31.1"
    workload = to_workload(pod, names)
    assert (workload.namespace, workload.deployment, workload.sidecar, workload.ready) == \
        ("default", "echo-v1", True, True)
    assert workload.identity == "spiffe://cluster.local/ns/default/sa/echo"
    assert workload.address == "10.244.0.17"  # an outside server without a Service is reached by its pod IP


class FakeSource:
    """Lists and watch streams as the API server would send them for one collection."""

    def __init__(self, listings: list[list[dict[str, Any]]], watches: list[list[tuple[str, dict[str, Any]]]],
                 events: list[dict[str, Any]] = ()) -> None:
        self.listings, self.watches, self.events = listings, watches, list(events)
        self.calls: list[tuple[str, ...]] = []

    def list(self, api_version, kind, namespace=None, label_selector=None, field_selector=None):
        self.calls.append(("list", kind, namespace, label_selector))
        if kind == "Event":
            return Listing(self.events, "9")
        return Listing(self.listings.pop(0) if len(self.listings) > 1 else self.listings[0], "10")

    def watch(self, api_version, kind, namespace, label_selector, resource_version, timeout_seconds):
        self.calls.append(("watch", kind, namespace, resource_version))
        yield from (self.watches.pop(0) if self.watches else [])


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def test_wait_follows_the_watch_until_ready():
    rolling, ready = obj("deployment_rolling"), obj("deployment_ready")
    source = FakeSource([[rolling]], [[("MODIFIED", ready)]])
    wanted = readiness.Wanted("apps/v1", "Deployment", "ns", "meshconform.io/run=r", readiness.deployment_problem)
    readiness.wait_ready(source, wanted, deadline=100.0, what="Deployments", clock=Clock())
    assert source.calls == [("list", "Deployment", "ns", "meshconform.io/run=r"), ("watch", "Deployment", "ns", "10")]


def test_timeout_names_what_is_not_ready_and_the_events_why():
    pod = obj("pod_image_pull_backoff")
    source = FakeSource([[pod]], [], events=[obj("event_pull_failed")])
    wanted = readiness.Wanted("v1", "Pod", "mc-3fa2c1-default", "x=y", lambda p: readiness.pod_problem(p, True),
                              expected_names=frozenset({"details-v1-6c9f8b7d4-q8wzt", "ratings-v1-0"}))
    with pytest.raises(PlatformError) as caught:
        readiness.wait_ready(source, wanted, deadline=5.0, what="pods of default", clock=Clock())
    message = str(caught.value)
    assert "details-v1-6c9f8b7d4-q8wzt: container details: ImagePullBackOff" in message
    assert "ratings-v1-0: does not exist" in message
    assert 'Pod/details-v1-6c9f8b7d4-q8wzt: Warning Failed: Failed to pull image' in message


# ---------------------------------------------------------------- states a deadline cannot fix, on the real client

PULL_LIMIT = ('Failed to pull image "docker.io/istio/examples-bookinfo-details-v1:1.20.3": failed to pull and unpack '
              'image "docker.io/istio/examples-bookinfo-details-v1:1.20.3": failed to copy: httpReadSeeker: failed '
              'open: unexpected status code https://registry-1.docker.io/v2/istio/examples-bookinfo-details-v1/'
              'manifests/sha256:0000: 429 Too Many Requests - Server message: toomanyrequests: You have reached your '
              'pull rate limit. You may increase the limit by authenticating and upgrading: '
              'https://www.docker.com/increase-rate-limit')


def _event(pod: dict[str, Any], reason: str, message: str, kind: str = "Warning") -> dict[str, Any]:
    meta = pod["metadata"]
    return {"apiVersion": "v1", "kind": "Event", "metadata": {"name": f"{meta['name']}.{reason.lower()}",
            "namespace": meta["namespace"]}, "involvedObject": {"kind": "Pod", "name": meta["name"],
            "namespace": meta["namespace"]}, "reason": reason, "message": message, "type": kind,
            "lastTimestamp": "2026-11-22T06:02:00Z"}


def _crash_looping() -> dict[str, Any]:
    pod = obj("pod_image_pull_backoff")
    pod["metadata"]["name"] = "echo-v1-7f9c8d6b5-x2k9p"
    status = pod["status"]["containerStatuses"][0]
    status.update(name="echo", image="python:3.13-slim", restartCount=4,
                  state={"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 1m20s restarting failed "
                                     "container=echo pod=echo-v1-7f9c8d6b5-x2k9p_mc-3fa2c1-default(0b8e)"}},
                  lastState={"terminated": {"exitCode": 2, "reason": "Error"}})
    pod["status"]["phase"] = "Running"
    return pod


@pytest.mark.parametrize(("name", "event", "expected"), [
    ("pod_image_pull_backoff", ("Failed", PULL_LIMIT), ["container details (docker.io/istio/examples-bookinfo-"
                                                        "details-v1:1.20.3): ImagePullBackOff", "toomanyrequests",
                                                        "`docker login`"]),
    ("pod_unscheduled", ("FailedScheduling", "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are "
                                             "available: 1 No preemption victims found for incoming pod."),
     ["not scheduled: 0/1 nodes are available: 1 Insufficient cpu.", "give the container engine more CPUs"]),
    ("crash_looping", ("BackOff", "Back-off restarting failed container echo in pod echo-v1-7f9c8d6b5-x2k9p"),
     ["CrashLoopBackOff (last exit code 2, Error)", "Back-off restarting failed container echo"])])
def test_states_a_deadline_cannot_fix_stop_the_wait_at_once(fake_api, tmp_path, name, event, expected):
    """Through the real kubernetes client against the fake API server: a 600 s wait stops within seconds, naming the
    pod, the kubelet's reason, the event and what to do."""
    from meshconform.platform.kube.client import KubeClient
    from meshconform.platform.kube.contracts import ClusterAccess
    fake, kubeconfig = fake_api
    pod = _crash_looping() if name == "crash_looping" else obj(name)
    namespace = pod["metadata"]["namespace"]
    fake.put("v1", "pods", pod)
    fake.put("v1", "events", _event(pod, *event))
    client = KubeClient(ClusterAccess(kubeconfig, "fake"), tmp_path / "discovery.json")
    started = time.monotonic()
    with pytest.raises(PlatformError) as caught:
        readiness.wait_ready(client, readiness.Wanted("v1", "Pod", namespace, "", lambda p: readiness.pod_problem(
            p, None), fatal=readiness.pod_fatal), time.monotonic() + 600, "pods of default")
    took = time.monotonic() - started
    message = str(caught.value)
    assert took < 10, took
    assert f"pod {pod['metadata']['name']}:" in message and f"event: Pod/{pod['metadata']['name']}" in message
    for text in expected:
        assert text in message, message
    client.close()


def test_a_pod_an_autoscaler_makes_room_for_is_waited_on(fake_api, tmp_path):
    from meshconform.platform.kube.client import KubeClient
    from meshconform.platform.kube.contracts import ClusterAccess
    fake, kubeconfig = fake_api
    pod = obj("pod_unscheduled")
    fake.put("v1", "pods", pod)
    fake.put("v1", "events", _event(pod, "TriggeredScaleUp", "pod triggered scale-up: [{pool-1 1->2 (max: 5)}]",
                                    "Normal"))
    client = KubeClient(ClusterAccess(kubeconfig, "fake"), tmp_path / "discovery.json")
    with pytest.raises(PlatformError, match="not ready in namespace mc-3fa2c1-legacy by the deadline"):
        readiness.wait_ready(client, readiness.Wanted("v1", "Pod", "mc-3fa2c1-legacy", "", lambda p: readiness.
                                                      pod_problem(p, None), fatal=readiness.pod_fatal),
                             time.monotonic() + 1.5, "pods of legacy")
    client.close()
