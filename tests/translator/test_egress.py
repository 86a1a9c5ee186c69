"""Egress: ServiceEntry hosts become clusters and virtual hosts; the outbound traffic policy (Sidecar
outboundTrafficPolicy, MeshConfig default ALLOW_ANY) decides the catch-all, as istiod's allow_any/block_all."""

from __future__ import annotations

import pytest

from meshconform.errors import ConfigError
from meshconform.platform.local.translator.envoy_types import ORIGINAL_DST_HEADER
from meshconform.platform.local.translator.model import ProxyConfig
from tests.translator import envoy_view as ev
from tests.translator.meshes import Mesh, echo_mesh, pod, vs

HOST = "api.outside.test"
CLUSTER = f"outbound|8080||{HOST}"


def entry(name: str = "api", namespace: str = "default", resolution: str = "STATIC", export: str = "",
          endpoints: str = "\n  endpoints: [{address: 127.9.0.1, ports: {http: 18080}}]") -> str:
    return f"""
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  hosts: [{HOST}]
  location: MESH_EXTERNAL
  ports: [{{number: 8080, name: http, protocol: HTTP}}]
  resolution: {resolution}{export}{endpoints if resolution != "NONE" else ""}
---"""


def sidecar(name: str, namespace: str, mode: str, selector: dict[str, str] | None = None) -> str:
    select = f"\n  workloadSelector: {{labels: {selector}}}" if selector else ""
    return f"""
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {{name: {name}, namespace: {namespace}}}
spec:{select}
  outboundTrafficPolicy: {{mode: {mode}}}
---"""


def client(configs: dict[str, ProxyConfig], name: str = "default/client-0") -> ProxyConfig:
    return configs[name]


def unregistered() -> ev.Request:
    return ev.Request("203.0.113.9:8080", headers={ORIGINAL_DST_HEADER: "203.0.113.9:8080"})


def test_a_static_service_entry_is_a_plaintext_cluster_of_its_endpoints_reached_by_its_host() -> None:
    config = client(echo_mesh().add(entry()).translate())
    cluster = ev.cluster(config, CLUSTER)
    assert [(e.address, e.port) for e in ev.endpoints(cluster)] == [("127.9.0.1", 18080)]
    assert "transport_socket" not in cluster  # MESH_EXTERNAL: no mesh mTLS
    route = ev.route_for(ev.sidecar_routes(config), ev.Request(f"{HOST}:8080"))
    assert route is not None and ev.cluster_shares(route) == {CLUSTER: 1.0}
    assert ev.virtual_host(ev.sidecar_routes(config), HOST) is not None  # port 8080: the bare name is not a domain
    assert (ev.virtual_host(ev.sidecar_routes(config), HOST) or {}).get("name") == "allow_any"


def test_resolution_none_forwards_to_where_the_caller_connected() -> None:
    cluster = ev.cluster(client(echo_mesh().add(entry(resolution="NONE")).translate()), CLUSTER)
    assert cluster["type"] == "ORIGINAL_DST"
    assert cluster["original_dst_lb_config"]["http_header_name"] == ORIGINAL_DST_HEADER


def test_a_virtual_service_for_the_external_host_applies_to_it() -> None:
    mesh = echo_mesh().add(entry(), vs(f"  - timeout: 3s\n    route: [{{destination: {{host: {HOST}}}}}]",
                                       name="api", hosts=f"[{HOST}]"))
    route = ev.route_for(ev.sidecar_routes(client(mesh.translate())), ev.Request(f"{HOST}:8080", "/delay/5"))
    assert route is not None and ev.route_timeout(route) == 3.0 and ev.cluster_shares(route) == {CLUSTER: 1.0}


def test_export_to_dot_keeps_the_entry_in_its_namespace() -> None:
    mesh = echo_mesh().add(entry(export="\n  exportTo: ['.']")).with_pods(pod("other-0", namespace="other"))
    mesh.namespaces["other"] = {"istio-injection": "enabled"}
    configs = mesh.translate()
    request = ev.Request(f"{HOST}:8080")
    assert ev.route_named_in(ev.sidecar_routes(configs["default/client-0"]), request) == "default"
    assert ev.route_named_in(ev.sidecar_routes(configs["other/other-0"]), request) is None


def test_allow_any_is_the_default_and_passes_addressed_requests_through() -> None:
    routes = ev.sidecar_routes(client(echo_mesh().translate()))
    route = ev.route_for(routes, unregistered())
    assert route is not None and route["name"] == "allow_any"
    assert ev.cluster_shares(route) == {"PassthroughCluster": 1.0}
    assert ev.cluster(client(echo_mesh().translate()), "PassthroughCluster")["type"] == "ORIGINAL_DST"


@pytest.mark.parametrize(("sidecars", "expected"), [
    ([], "allow_any"),
    ([sidecar("ns", "default", "REGISTRY_ONLY")], "block_all"),
    ([sidecar("root", "istio-system", "REGISTRY_ONLY")], "block_all"),
    ([sidecar("root", "istio-system", "REGISTRY_ONLY"), sidecar("ns", "default", "ALLOW_ANY")], "allow_any"),
    ([sidecar("ns", "default", "ALLOW_ANY"), sidecar("c", "default", "REGISTRY_ONLY", {"app": "client"})],
     "block_all"),
    ([sidecar("ns", "default", "REGISTRY_ONLY"), sidecar("c", "default", "ALLOW_ANY", {"app": "client"})],
     "allow_any"),
    ([sidecar("other", "default", "REGISTRY_ONLY", {"app": "echo"})], "allow_any"),
], ids=["default", "namespace", "root", "namespace-over-root", "selector-over-namespace",
        "selector-allows", "selects-another"])
def test_the_sidecar_that_governs_the_workload_sets_the_policy(sidecars: list[str], expected: str) -> None:
    routes = ev.sidecar_routes(client(echo_mesh().add(*sidecars).translate()))
    assert ev.route_named_in(routes, unregistered()) == expected


def test_registry_only_answers_502_for_unregistered_hosts_and_still_reaches_registered_ones() -> None:
    mesh = echo_mesh().add(entry(), sidecar("ns", "default", "REGISTRY_ONLY"))
    routes = ev.sidecar_routes(client(mesh.translate()))
    blocked = ev.route_for(routes, unregistered())
    assert blocked is not None and blocked["direct_response"] == {"status": 502}
    assert ev.route_for(routes, ev.Request("unknown.example.com")) is not None  # blocked whatever its name
    assert ev.route_named_in(routes, ev.Request(f"{HOST}:8080")) == "default"
    assert ev.route_named_in(routes, ev.Request("echo")) == "default"


def test_a_destination_rule_for_an_entry_host_is_refused_not_ignored() -> None:
    rule = f"""
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: api, namespace: default}}
spec:
  host: {HOST}
  trafficPolicy: {{connectionPool: {{tcp: {{maxConnections: 1}}}}}}
---"""
    with pytest.raises(ConfigError, match="ServiceEntry host") as caught:
        Mesh().add(entry(), rule).with_pods(pod("client-0", labels={"app": "client"})).translate()
    assert caught.value.field == "spec.host"
