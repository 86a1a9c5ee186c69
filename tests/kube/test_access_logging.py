"""Whether the mesh writes an access log meshconform can read (platform/kube/access_logging.py): decided once, from
the mesh config and the root namespace's Telemetry, as Istio decides it; recorded in the platform's description; and
on a mesh without one, every read of the access log is refused at once (AccessLogNotRecorded: the checks built on it
are reported not applicable), never a wait for lines that cannot come."""

from __future__ import annotations

import time
from typing import Any

import pytest
import yaml

from meshconform.platform.api import AccessLogNotRecorded
from meshconform.platform.kube.access_logging import from_mesh_config, from_telemetry

from .test_platform import make

WHERE = "ConfigMap istio-system/istio"
OTEL = {"name": "otel", "opentelemetry": {"service": "collector.observability.svc.cluster.local", "port": 4317}}
STDOUT_JSON = {"name": "stdout-json", "envoyFileAccessLog": {"path": "/dev/stdout"}}
CUSTOM = {"name": "custom", "envoyFileAccessLog": {"path": "/dev/stdout", "logFormat": {"text": "%REQ(:PATH)%\n"}}}


def _telemetry(*entries: dict[str, Any], name: str = "mesh-default") -> dict[str, Any]:
    return {"apiVersion": "telemetry.istio.io/v1", "kind": "Telemetry",
            "metadata": {"name": name, "namespace": "istio-system"}, "spec": {"accessLogging": list(entries)}}


@pytest.mark.parametrize(("mesh", "readable", "said"), [
    ({}, False, "MeshConfig accessLogFile is empty (ConfigMap istio-system/istio) and no Telemetry in istio-system"),
    ({"accessLogFile": "/dev/stdout"}, True, ""),
    ({"accessLogFile": "/dev/stdout", "accessLogEncoding": "JSON"}, True, ""),
    ({"accessLogFile": "/var/log/envoy.log"}, False, "to /var/log/envoy.log inside each proxy container"),
    ({"accessLogFile": "/dev/stdout", "accessLogFormat": "[%START_TIME%] %REQ(:PATH)%\n"}, False,
     "custom format (MeshConfig accessLogFormat)"),
])
def test_the_mesh_config_decides_without_a_mesh_wide_telemetry(mesh: dict[str, Any], readable: bool,
                                                                said: str) -> None:
    fact = from_mesh_config(mesh, WHERE, "istio-system")
    assert fact.readable is readable and said in fact.reason
    assert fact.decided_by == "MeshConfig accessLogFile (ConfigMap istio-system/istio)"


@pytest.mark.parametrize(("telemetry", "mesh", "readable", "said"), [
    (_telemetry({"providers": [{"name": "envoy"}]}), {}, True, ""),
    (_telemetry({"providers": [{"name": "envoy"}], "disabled": True}), {"accessLogFile": "/dev/stdout"}, False,
     "Telemetry istio-system/mesh-default disables access logging mesh-wide"),
    (_telemetry({"providers": [{"name": "otel"}]}), {"extensionProviders": [OTEL]}, False,
     "provider otel is opentelemetry, which does not write to the proxy's stdout"),
    (_telemetry({"providers": [{"name": "otel"}, {"name": "stdout-json"}]}),
     {"extensionProviders": [OTEL, STDOUT_JSON]}, True, ""),
    (_telemetry({"providers": [{"name": "custom"}]}), {"extensionProviders": [CUSTOM]}, False,
     "provider custom sets a logFormat of its own"),
    (_telemetry({}), {"defaultProviders": {"accessLogging": ["envoy"]}}, True, ""),
    (_telemetry({}), {}, False, "names no provider and MeshConfig defaultProviders.accessLogging is empty"),
    (_telemetry({"providers": [{"name": "envoy"}], "filter": {"expression": "response.code >= 400"}}), {}, False,
     "logs only requests matching 'response.code >= 400'"),
    (_telemetry({"providers": [{"name": "envoy"}], "match": {"mode": "SERVER"}}), {}, False,
     "logs SERVER traffic only"),
    (_telemetry({"providers": [{"name": "nowhere"}]}), {}, False, "provider nowhere is not among MeshConfig"),
])
def test_a_mesh_wide_telemetry_decides_when_it_sets_access_logging(telemetry: dict[str, Any], mesh: dict[str, Any],
                                                                   readable: bool, said: str) -> None:
    fact = from_telemetry(telemetry, mesh, WHERE)
    assert fact.readable is readable and said in fact.reason, fact
    assert fact.decided_by == "Telemetry istio-system/mesh-default (mesh-wide accessLogging)"


def _mesh_configmap(fake: Any, mesh: dict[str, Any], name: str = "istio") -> None:
    fake.put("v1", "configmaps", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
        "name": name, "namespace": "istio-system"}, "data": {"mesh": yaml.safe_dump(mesh)}})


def test_a_mesh_without_access_logging_refuses_every_read_at_once_and_says_why(fake_api, tmp_path) -> None:
    """A vendor's mesh as found (Istio's default profile: accessLogFile empty), with a Telemetry that only sets
    metrics: decided once in `up`, in the description, and each access-log read refused without reading a log."""
    fake, _ = fake_api
    _mesh_configmap(fake, {"accessLogFile": "", "defaultConfig": {"discoveryAddress": "istiod.istio-system.svc:15012"}})
    fake.put("telemetry.istio.io/v1", "telemetries", {
        "apiVersion": "telemetry.istio.io/v1", "kind": "Telemetry", "metadata": {"name": "metrics-only",
                                                                                 "namespace": "istio-system"},
        "spec": {"metrics": [{"providers": [{"name": "prometheus"}]}]}})
    platform, _, _ = make(fake_api, tmp_path)
    platform.up()
    try:
        fact = platform.describe()["access_log"]
        assert fact["readable"] is False and fact["decided_by"] == "MeshConfig accessLogFile (ConfigMap istio-system/" \
                                                                   "istio)"
        assert "the mesh writes no access log: MeshConfig accessLogFile is empty" in fact["reason"]
        fake.calls.clear()
        started = time.monotonic()
        for workload in (("default", "echo-v1"), ("istio-system", "istio-ingressgateway")):
            with pytest.raises(AccessLogNotRecorded, match=rf"{workload[0]}/{workload[1]}: the mesh writes no access "
                                                           "log"):
                platform.access_log(*workload)
        assert time.monotonic() - started < 1.0
        assert not [c for c in fake.calls if c.path.endswith("/log")]  # not read: nothing to wait for
    finally:
        platform.down()


def test_a_mesh_wide_telemetry_turning_the_log_on_is_read(fake_api, tmp_path) -> None:
    fake, _ = fake_api
    _mesh_configmap(fake, {})
    fake.put("telemetry.istio.io/v1", "telemetries", _telemetry({"providers": [{"name": "envoy"}]}))
    platform, _, _ = make(fake_api, tmp_path)
    platform.up()
    try:
        fact = platform.describe()["access_log"]
        assert fact == {"readable": True, "decided_by": "Telemetry istio-system/mesh-default (mesh-wide "
                                                        "accessLogging)"}
        pod = next(p for p in fake.objects.values() if p.get("kind") == "Pod"
                   and p["metadata"]["name"].startswith("echo-v1-"))
        line = ('{"response_code": 200, "response_flags": "-", "request_id": "rid-1", "upstream_cluster": '
                '"inbound|8080||"}\n')
        fake.logs[(pod["metadata"]["namespace"], pod["metadata"]["name"], "istio-proxy")] = line
        assert [r["request_id"] for r in platform.access_log("default", "echo-v1")] == ["rid-1"]
    finally:
        platform.down()
