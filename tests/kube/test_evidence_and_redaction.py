"""Evidence extraction from Envoy's and istioctl's own output formats, and redaction of Secrets.

The route/proxy-status shapes are Istio's own test data (istio/istio at tag 1.30.3:
istioctl/pkg/writer/envoy/configdump/testdata/routes/istio-gateway-http-route-prefix/configdump.json and
istioctl/pkg/writer/pilot/testdata/multiXdsStatusSinglePilot.json). Those files are read from a local mirror of
istio/istio when one is present (MESHCONFORM_ISTIO_MIRROR, a bare git directory), else the tests use a reduced
document of the same shape, written here."""

from __future__ import annotations

import copy
import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from meshconform.platform.kube import evidence
from meshconform.platform.kube.redact import redact

MIRROR = Path(os.environ.get("MESHCONFORM_ISTIO_MIRROR", "/work/.mirror/istio+istio/repo"))
TAG = "1.30.3"

ROUTES_DUMP = {"configs": [
    {"@type": "type.googleapis.com/envoy.admin.v3.BootstrapConfigDump", "bootstrap": {"node": {"id": "x"}}},
    {"@type": "type.googleapis.com/envoy.admin.v3.RoutesConfigDump",
     "static_route_configs": [{"route_config": {"virtual_hosts": [{"name": "backend", "domains": ["*"]}]}}],
     "dynamic_route_configs": [{"version_info": "2026-11-22T06:00:00Z/12", "route_config": {
         "name": "http.8080", "virtual_hosts": [
             {"name": "httpbin.example.com:80", "domains": ["httpbin.example.com"], "routes": [
                 {"match": {"prefix": "/get"}, "route": {"cluster": "outbound|8000||httpbin.default.svc.cluster.local"},
                  "metadata": {"filter_metadata": {"istio": {"config": "/apis/networking.istio.io/v1/namespaces/"
                                                                       "default/virtual-service/httpbin"}}}}]}]},
         "last_updated": "2026-11-22T06:00:01Z"}]}]}
STATUS_JSON = {"versionInfo": "1.1", "resources": [{
    "@type": "type.googleapis.com/envoy.service.status.v3.ClientConfig",
    "node": {"id": "proxy1", "metadata": {"CLUSTER_ID": "cluster1", "ISTIO_VERSION": "1.20"}},
    "genericXdsConfigs": [
        {"typeUrl": "type.googleapis.com/envoy.config.cluster.v3.Cluster", "configStatus": "STALE"},
        {"typeUrl": "type.googleapis.com/envoy.config.listener.v3.Listener", "configStatus": "SYNCED"},
        {"typeUrl": "type.googleapis.com/envoy.config.route.v3.RouteConfiguration", "configStatus": "NOT_SENT"}]}],
    "typeUrl": "type.googleapis.com/envoy.service.status.v3.ClientConfig"}


def istio_file(path: str) -> str | None:
    if not MIRROR.exists():
        return None
    shown = subprocess.run(["git", "-C", str(MIRROR), "show", f"{TAG}:{path}"], capture_output=True, text=True)
    return shown.stdout if shown.returncode == 0 else None


def route_dumps() -> list[dict]:
    real = istio_file("istioctl/pkg/writer/envoy/configdump/testdata/routes/istio-gateway-http-route-prefix/"
                      "configdump.json")
    return [ROUTES_DUMP] + ([json.loads(real)] if real else [])


@pytest.mark.parametrize("dump", route_dumps(), ids=lambda d: "istio-testdata" if d is not ROUTES_DUMP else "reduced")
def test_route_excerpt_keeps_the_virtual_hosts_of_the_hosts_asked(dump):
    excerpt = evidence.route_excerpt(dump, ["httpbin"])
    assert [e["name"] for e in excerpt] == ["http.8080"]
    assert [v["name"] for v in excerpt[0]["virtual_hosts"]] == ["httpbin.example.com:80"]
    assert evidence.route_excerpt(dump, ["reviews"]) == []
    # No hosts: every dynamic route config (the static admin ones are not the mesh's config).
    assert [e["name"] for e in evidence.route_excerpt(dump, [])] == ["http.8080"]


def test_proxy_status_json():
    texts = [json.dumps(STATUS_JSON, indent=4)]
    real = istio_file("istioctl/pkg/writer/pilot/testdata/multiXdsStatusSinglePilot.json")
    if real:
        texts.append(real)
    for text in texts:
        sync = evidence.proxy_sync(text + "\n" + text.replace("proxy1", "proxy9"))  # one document per istiod
        assert sync["proxy1"]["Cluster"] == "STALE" and sync["proxy1"]["Listener"] == "SYNCED"
        assert set(sync) >= {"proxy1", "proxy9"}
        assert set(evidence.unsynced(sync)) >= {"proxy1", "proxy9"}
    settled = {"sidecar~10.244.0.7~echo-v1-7f9c8d6b5-x2k9p.mc-3fa2c1-default~mc-3fa2c1-default.svc.cluster.local":
               {"Cluster": "SYNCED", "RouteConfiguration": "NOT_SENT"},
               "sidecar~10.244.0.9~client-5b6d7c8f9-abcde.other~other.svc.cluster.local": {"Cluster": "STALE"}}
    assert evidence.unsynced(settled, ["mc-3fa2c1-default"]) == {}
    assert list(evidence.unsynced(settled)) == [
        "sidecar~10.244.0.9~client-5b6d7c8f9-abcde.other~other.svc.cluster.local"]


def test_access_lines_and_request_records_from_container_logs():
    # Istio's default TEXT access-log format (istio.io "Envoy Access Logs" task sample line), between proxy logs.
    log = "\n".join([
        "2026-11-22T06:00:00.000000Z\tinfo\tEnvoy proxy is ready",
        '[2026-11-22T06:00:05.123Z] "GET /status/418 HTTP/1.1" 418 - via_upstream - "-" 0 135 4 4 "-" '
        '"curl/8.16.0" "d6bc1a4b-1b32-9e3d-b26f-a7c6b2c1f6e2" "httpbin:8000" "10.244.0.12:8080" '
        'outbound|8000||httpbin.default.svc.cluster.local 10.244.0.11:39658 10.96.183.81:8000 10.244.0.11:48242 - '
        'default',
        '{"response_code": 200, "method": "GET", "path": "/x"}'])
    lines = evidence.access_lines(log)
    assert len(lines) == 2 and lines[0].startswith('[2026-11-22T06:00:05.123Z] "GET /status/418')
    records = evidence.request_records('{"time": 1, "request_id": "r1", "path": "/a"}\nnot json\n{"other": 1}\n')
    assert records == [{"time": 1, "request_id": "r1", "path": "/a"}]


def test_secrets_keep_names_and_sizes_only():
    secret = yaml.safe_load((Path(__file__).parent / "data" / "objects.yaml").read_text())["secret_tls"]
    secret["metadata"]["managedFields"] = [{"manager": "meshconform"}]
    before = copy.deepcopy(secret)
    out = redact(secret)
    assert out["data"] == {"tls.crt": "<redacted: 28 bytes>", "tls.key": "<redacted: 19 bytes>"}
    assert out["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] == "<redacted>"
    assert "managedFields" not in out["metadata"]
    dumped = json.dumps(out)
    assert "c2VjcmV0" not in dumped and "LS0t" not in dumped
    assert secret == before  # the input is not changed
    assert redact({"kind": "Secret", "metadata": {"name": "s"}, "stringData": {"password": "hunter2"}})["data"] == \
        {"password": "<redacted: 7 bytes>"}


def test_configmaps_keep_names_and_sizes_only():
    out = redact({"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"agent.py": "print('hi')\n"}})
    assert out == {"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"agent.py": "<redacted: 12 bytes>"}}
