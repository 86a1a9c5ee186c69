"""Which proxies get config: injected pods and the ingress gateway, never pods without a sidecar, and
what callers see of a pod without a sidecar (plaintext, no tlsMode). Pods come from Deployments through
topology.build, as on the platform (istio.io sidecar injection; facts §5)."""

from __future__ import annotations

from meshconform.platform.local.translator import translate
from meshconform.platform.local.translator.model import MeshSnapshot
from tests.translator import envoy_view as ev
from tests.translator.meshes import GATEWAY_PORTS, FakeCerts, Mesh, build, pod, proxy_paths, service


def proxies(snapshot: MeshSnapshot, misbehave: frozenset[str] = frozenset()) -> set[str]:
    configs = translate(snapshot, FakeCerts(), GATEWAY_PORTS, proxy_paths, misbehave)
    return {key.split("/")[0] + "/" + key.split("/")[1].split("-")[0] for key in configs}


def test_only_injected_pods_and_the_gateway_get_proxy_config() -> None:
    assert proxies(build()) == {"injected/a", "revision/c", "plain/e", "injected/client",
                                "istio-system/istio"}, "b opted out, d has no opt-in, f's namespace says disabled"


def test_a_pod_without_a_sidecar_is_reached_in_plaintext_and_never_gets_listeners() -> None:
    mesh = Mesh().add(service("legacy")).with_pods(pod("legacy-0", labels={"app": "legacy"}, sidecar=False),
                                                  pod("client-0", labels={"app": "client"}))
    configs = mesh.translate()
    assert "default/legacy-0" not in configs
    found = ev.cluster(configs["default/client-0"], "outbound|80||legacy.default.svc.cluster.local")
    [endpoint] = ev.endpoints(found)
    assert endpoint.metadata == {} and not ev.upstream(found, endpoint).tls


def test_injected_pods_carry_the_tls_mode_label_that_auto_mtls_keys_on() -> None:
    snapshot = build()
    labels = {p.name.split("-")[0]: p.labels for p in snapshot.pods if not p.is_gateway}
    assert labels["a"].get("security.istio.io/tlsMode") == "istio"
    assert "security.istio.io/tlsMode" not in labels["d"]
    configs = translate(snapshot, FakeCerts(), GATEWAY_PORTS, proxy_paths)
    client = next(c for k, c in configs.items() if k.startswith("injected/client"))
    [to_a] = ev.endpoints(ev.cluster(client, "outbound|80||a.injected.svc.cluster.local"))
    [to_d] = ev.endpoints(ev.cluster(client, "outbound|80||d.plain.svc.cluster.local"))
    assert ev.upstream(ev.cluster(client, "outbound|80||a.injected.svc.cluster.local"), to_a).tls
    assert not ev.upstream(ev.cluster(client, "outbound|80||d.plain.svc.cluster.local"), to_d).tls
