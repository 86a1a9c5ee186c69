"""Egress: traffic from a meshed client to a server outside the mesh, under the outbound traffic policy.

Istio's documented semantics this module relies on:
- istio.io, Tasks > Traffic Management > Egress > "Accessing External Services": `ALLOW_ANY` is the default
  outbound traffic policy and lets calls to services absent from the registry pass through; `REGISTRY_ONLY`
  "blocks any host without an HTTP service or service entry defined within the mesh"; a ServiceEntry
  (location MESH_EXTERNAL) makes an outside host reachable again; routing rules apply to a ServiceEntry host
  as to any other ("a 3s timeout ... 504 (Gateway Timeout) appears after 3 seconds").
- istio.io blog "Monitoring blocked and passthrough external service traffic" (2019, Istio 1.3; the names are
  still istiod's constants, pilot/pkg/networking/util: BlackHoleRouteName "block_all", PassthroughRouteName
  "allow_any", PassthroughCluster "PassthroughCluster"): on an HTTP port every route configuration ends in a
  `*` virtual host, `block_all` (a direct response 502) under REGISTRY_ONLY, `allow_any` (to the ORIGINAL_DST
  PassthroughCluster) under ALLOW_ANY. So a blocked request is 502 with Envoy's details `direct_response` on
  route `block_all` at the caller's proxy (istiod's default access-log format ends in %ROUTE_NAME%), and a
  passed-through one names upstream cluster `PassthroughCluster`.
- istio.io Sidecar reference: `outboundTrafficPolicy` sets the mode for the workloads a Sidecar applies to; a
  Sidecar with a workloadSelector applies to those workloads only (preferred over a selector-less one), so
  the check changes nothing mesh-wide and stays in its own namespaces.
- ServiceEntry reference: resolution STATIC sends to the given endpoint addresses; resolution DNS with endpoints
  resolves the endpoints' addresses and sends there, wherever the client connected (unlike NONE, which forwards to
  the address the client connected to); exportTo "." keeps the entry in its own namespace.

"Outside" is an echo server the test deploys in the namespace without injection and without a Service, so no
registry knows it (on the local platform a process on its own 127.x address; on a cluster a pod reached by
its IP, Workload.address). The registered host is a made-up name: the client opens its connection to the
server's address and names the host in the Host header (Request.connect_to, curl's --connect-to), which is
all a sidecar routes HTTP by. Each outcome is a deterministic rule checked on every request (no share)."""

from __future__ import annotations

import time

from meshconform.platform.api import Platform, Workload
from meshconform.suite.checks import outcomes, wait_for, wait_for_all
from meshconform.suite.failures import failed_as, log_outcomes, records_for
from meshconform.suite.manifests import MARKER_HEADER
from meshconform.suite.timeouts import Timeouts
from meshconform.suite.unit import conformance_test, deferred
from meshconform.traffic.model import Request, Response

OUTSIDE = "egress/outside-server.yaml"
REGISTRY_ONLY = "egress/registry-only.yaml"
PORT = 8080  # where the outside server listens
ENTRY_PORT = 80  # the ServiceEntry's port for it (targetPort: PORT)
HOST = "outside.egress.meshconform.test"
MAPPED_HOST = "mapped.egress.meshconform.test"  # two ports, the endpoint's own ports map, a VS naming no port
ALT_PORT = 8081  # its second port
HIDDEN_HOST = "hidden.egress.meshconform.test"  # registered in legacy, exported there only
# Resolution DNS, its endpoint the server's address; in a domain of its own, which a wildcard VirtualService names.
DNS_DOMAIN = "wildcard-egress.meshconform.test"
DNS_HOST = f"dns.{DNS_DOMAIN}"
CLIENT = ("default", "client")
PER_CASE = 20
TIMEOUT = 0.5  # the VirtualService's route timeout on the external host, seconds (as request-timeout's)
DELAY_MS = 1500  # what the outside server is asked to wait: well past TIMEOUT


def _outside(mesh_manifests, mesh_platform: Platform, mesh_unmeshed_client, timeouts: Timeouts) -> Workload:
    """The outside server (deployed by the unit's manifests): its workload once it has an address and answers there
    directly."""
    deployment = mesh_manifests.name_of("Deployment", "outside")
    deadline = time.monotonic() + timeouts.max_time_to_consistency
    pause = timeouts.poll_interval
    seen = "no pod"
    while True:
        pods = [w for w in mesh_platform.workloads() if w.namespace == "legacy" and w.deployment == deployment]
        if pods and pods[0].address and not pods[0].sidecar:
            reply = mesh_unmeshed_client.send([Request("/ready", host=f"{pods[0].address}:{PORT}",
                                                       timeout=timeouts.request_timeout)])[0]
            if reply.status == 200 and reply.answered_by == pods[0].name:
                return pods[0]
            seen = reply.summary()
        elif pods:
            seen = f"pod {pods[0].name}: address {pods[0].address}, sidecar {pods[0].sidecar}"
        assert time.monotonic() < deadline, (
            f"the outside server legacy/{deployment} never answered on its address within "
            f"{timeouts.max_time_to_consistency:g}s (last: {seen})")
        time.sleep(pause)
        pause = min(pause * 2, 1.0)


def _by(replies: list[Response], pod: str) -> str:
    return outcomes(replies, lambda r: f"answered {r.status} by {r.answered_by or '?'}" if r.status else
                    f"got no answer ({r.error})") + f" (expected 200 by {pod})"


@conformance_test("egress-passthrough", "With Istio's default outbound policy (ALLOW_ANY), a meshed client reaches a "
                  "server outside the mesh that no Service or ServiceEntry registers, by its address: all "
                  f"{PER_CASE} requests answered 200 by that server, each logged at the client's proxy as "
                  "passed through (upstream cluster PassthroughCluster).",
                  features={"EgressPassthrough"}, manifests=(OUTSIDE,), parallel=False)
def test_egress_passthrough(mesh_manifests, mesh_platform, mesh_meshed_client, mesh_unmeshed_client,
                            mesh_timeouts, mesh_result) -> None:
    outside = _outside(mesh_manifests, mesh_platform, mesh_unmeshed_client, mesh_timeouts)
    address = f"{outside.address}:{PORT}"
    replies = mesh_meshed_client.send([Request(f"/passthrough/{i}", host=address) for i in range(PER_CASE)])
    mesh_result.figure("passthrough", outcomes(replies))
    assert all(r.status == 200 and r.answered_by == outside.name for r in replies), _by(replies, outside.name)
    records = records_for(mesh_platform, [CLIENT], replies, mesh_timeouts, direction="outbound")
    clusters = sorted({str(rec.get("upstream_cluster")) for rec in records.values()})
    mesh_result.figure("client_proxy_log", dict(log_outcomes(records)))
    assert clusters == ["PassthroughCluster"], f"the client's proxy sent them to {clusters}, not PassthroughCluster"


@conformance_test("egress-sidecar-precedence", "A Sidecar in the root namespace (no workloadSelector) sets "
                  "REGISTRY_ONLY for every namespace without one of its own: the meshed client's proxy turns away an "
                  "unregistered server's bare address (502). Then the client's namespace gets its own Sidecar with "
                  "ALLOW_ANY, which wins there over the root namespace's: the same address is reached, all "
                  f"{PER_CASE} requests answered 200 by the server and logged at the client's proxy as passed "
                  "through (PassthroughCluster).", features={"EgressRegistryOnly", "EgressPassthrough"},
                  manifests=(OUTSIDE, "egress/root-and-namespace-sidecars.yaml"), parallel=False,
                  values={"namespace_sidecar": False})
def test_egress_sidecar_precedence(mesh_manifests, mesh_platform, mesh_meshed_client, mesh_unmeshed_client,
                                   mesh_timeouts, mesh_result) -> None:
    outside = _outside(mesh_manifests, mesh_platform, mesh_unmeshed_client, mesh_timeouts)
    address = f"{outside.address}:{PORT}"
    wait_for(mesh_meshed_client, Request("/probe-root", host=address), lambda r: r.status == 502, mesh_timeouts,
             "the root namespace's Sidecar (REGISTRY_ONLY) in force for the client's namespace, which has none")
    mesh_manifests.update(namespace_sidecar=True)
    wait_for(mesh_meshed_client, Request("/probe-namespace", host=address), lambda r: r.status == 200,
             mesh_timeouts, "the client's namespace's own Sidecar (ALLOW_ANY) in force over the root namespace's "
             "REGISTRY_ONLY (still turned away: the root namespace's Sidecar wins)")
    replies = mesh_meshed_client.send([Request(f"/passthrough/{i}", host=address) for i in range(PER_CASE)])
    mesh_result.figure("passthrough", outcomes(replies))
    assert all(r.status == 200 and r.answered_by == outside.name for r in replies), _by(replies, outside.name)
    records = records_for(mesh_platform, [CLIENT], replies, mesh_timeouts, direction="outbound")
    clusters = sorted({str(rec.get("upstream_cluster")) for rec in records.values()})
    mesh_result.figure("client_proxy_log", dict(log_outcomes(records)))
    assert clusters == ["PassthroughCluster"], f"the client's proxy sent them to {clusters}, not PassthroughCluster"


@conformance_test("egress-registry-only", "A Sidecar sets REGISTRY_ONLY for the meshed client, a ServiceEntry "
                  f"(MESH_EXTERNAL, STATIC, port {ENTRY_PORT} to targetPort {PORT}) registers the outside server as "
                  f"{HOST}, and a VirtualService gives that host a {TIMEOUT:g}s timeout. The server's bare address "
                  "(unregistered) gets 502 from the client's proxy (direct_response on route block_all) and never "
                  "reaches it; the registered host "
                  "answers 200 from the server through its ServiceEntry cluster; an in-mesh Service still answers; "
                  f"a request the server holds {DELAY_MS} ms gets 504 UT after the route timeout; a host with "
                  f"resolution DNS ({DNS_HOST}, its endpoint the server's address) reaches the server through its "
                  "ServiceEntry cluster although the client connected to another workload's address, and a "
                  f"VirtualService for *.{DNS_DOMAIN} (a wildcard) applies to it: its header match sends requests "
                  f"to in-mesh echo ({PER_CASE} requests per case, every one must agree).",
                  features={"EgressRegistryOnly"}, manifests=(OUTSIDE, deferred(REGISTRY_ONLY)), parallel=False,
                  values={"host": HOST, "port": ENTRY_PORT, "target_port": PORT, "timeout": f"{TIMEOUT:g}s",
                          "alt_port": ALT_PORT, "mapped_host": MAPPED_HOST, "hidden_host": HIDDEN_HOST,
                          "dns_host": DNS_HOST, "dns_domain": DNS_DOMAIN})
def test_egress_registry_only(mesh_manifests, mesh_platform, mesh_meshed_client, mesh_unmeshed_client,
                              mesh_timeouts, mesh_result) -> None:
    outside = _outside(mesh_manifests, mesh_platform, mesh_unmeshed_client, mesh_timeouts)
    address = f"{outside.address}:{PORT}"
    # The ServiceEntry's endpoint is the server's address, known only once it runs.
    marker = mesh_manifests.apply_deferred(address=outside.address)

    def registered(path: str, host: str = HOST, port: int = ENTRY_PORT, connect_to: str | None = None,
                   **headers: str) -> Request:
        # To the entry's port (a sidecar captures it and routes by Host); the entry sends on to the server's port.
        return Request(path, host=host if port == 80 else f"{host}:{port}",
                       connect_to=f"{connect_to or outside.address}:{port}", headers=headers)

    # Converged when this test's policy and entry are both in force: only they make the registered host
    # answer with this config's marker while the bare address is turned away.
    wait_for_all(mesh_meshed_client, [
        (registered("/probe"), lambda r: r.status == 200 and r.headers.get(MARKER_HEADER) == marker),
        (Request("/probe-blocked", host=address), lambda r: r.status == 502)],
        mesh_timeouts, "REGISTRY_ONLY and the ServiceEntry in force")
    blocked = mesh_meshed_client.send([Request(f"/blocked/{i}", host=address) for i in range(PER_CASE)])
    allowed = mesh_meshed_client.send([registered(f"/registered/{i}") for i in range(PER_CASE)])
    in_mesh = mesh_meshed_client.send([Request(f"/in-mesh/{i}", host=f"echo:{PORT}") for i in range(PER_CASE)])
    # The endpoint's ports map carries both of MAPPED_HOST's ports to the server; its VirtualService names no port,
    # so each request stays on the port it came in on, and its route to echo (one port) lands on echo's 8080.
    mapped = mesh_meshed_client.send([registered(f"/mapped/{i}", MAPPED_HOST) for i in range(PER_CASE // 2)])
    mapped_alt = mesh_meshed_client.send([registered(f"/mapped-alt/{i}", MAPPED_HOST, ALT_PORT)
                                          for i in range(PER_CASE // 2)])
    to_echo = mesh_meshed_client.send([registered(f"/to-echo/{i}", MAPPED_HOST, ALT_PORT, **{"x-to": "echo"})
                                       for i in range(PER_CASE // 2)])
    # Exported to `legacy` only: for the client in `default` that host is unregistered.
    hidden = mesh_meshed_client.send([registered(f"/hidden/{i}", HIDDEN_HOST) for i in range(PER_CASE // 2)])
    # Resolution DNS: the client connects to echo's pod (nothing of the server's there), the endpoint decides.
    elsewhere = next(w for w in mesh_platform.workloads() if w.namespace == "default" and w.deployment == "echo-v1")
    by_dns = mesh_meshed_client.send([registered(f"/dns/{i}", DNS_HOST, connect_to=elsewhere.address)
                                      for i in range(PER_CASE // 2)])
    # A VirtualService naming *.<DNS_DOMAIN> routes the entry's host: its header match goes to echo.
    wildcard_to_echo = mesh_meshed_client.send([
        registered(f"/wildcard/{i}", DNS_HOST, ENTRY_PORT, elsewhere.address, **{"x-to": "echo"})
        for i in range(PER_CASE // 2)])
    # The VirtualService applies to the external host: its timeout cuts requests the server holds longer.
    held = mesh_meshed_client.send([registered(f"/held/{i}/delay/{DELAY_MS}") for i in range(PER_CASE)],
                                   concurrency=PER_CASE)
    mesh_result.figure("statuses", {"unregistered": outcomes(blocked), "registered": outcomes(allowed),
                                    "in-mesh": outcomes(in_mesh), "held": outcomes(held),
                                    "mapped": outcomes(mapped), "mapped-alt-port": outcomes(mapped_alt),
                                    "mapped-to-echo": outcomes(to_echo), "exported-elsewhere": outcomes(hidden),
                                    "resolution-dns": outcomes(by_dns),
                                    "wildcard-vs-to-echo": outcomes(wildcard_to_echo)})
    assert all(r.status == 502 for r in blocked), (
        f"unregistered address under REGISTRY_ONLY: {outcomes(blocked)} (expected 502 from the client's proxy)")
    assert not any(r.answered_by == outside.name for r in blocked), "a blocked request reached the outside server"
    assert all(r.status == 200 and r.answered_by == outside.name for r in allowed), _by(allowed, outside.name)
    assert all(r.status == 200 for r in in_mesh), f"in-mesh echo under REGISTRY_ONLY: {outcomes(in_mesh)}"
    for name, replies in (("port", mapped), ("second port", mapped_alt)):
        assert all(r.status == 200 and r.answered_by == outside.name for r in replies), (
            f"{MAPPED_HOST}'s {name}, sent on by the endpoint's ports map: {_by(replies, outside.name)}")
    assert all(r.status == 200 and r.json() and r.json().get("service") == "echo" for r in to_echo), (
        f"a route naming no port to echo (one port) must reach echo's port: {outcomes(to_echo)}")
    assert all(r.status == 502 for r in hidden), (
        f"{HIDDEN_HOST} is exported to legacy only; from default: {outcomes(hidden)} (expected 502)")
    assert not any(r.answered_by == outside.name for r in hidden), "a host not exported here reached the server"
    assert all(r.status == 200 and r.answered_by == outside.name for r in by_dns), (
        f"{DNS_HOST} (resolution DNS) must reach its endpoint, the server, although the client connected to "
        f"{elsewhere.name}'s address: {_by(by_dns, outside.name)}")
    assert all(r.status == 200 and r.json() and r.json().get("service") == "echo" for r in wildcard_to_echo), (
        f"a VirtualService for *.{DNS_DOMAIN} applies to the ServiceEntry host {DNS_HOST}: its match on x-to: echo "
        f"must reach echo: {_by(wildcard_to_echo, 'echo')}")
    assert all(r.status == 504 for r in held), f"held requests with a {TIMEOUT:g}s route timeout: {outcomes(held)}"
    assert all(r.latency < DELAY_MS / 1000 for r in held), "a held request was not cut before the server answered"
    # The mechanism, from the client's proxy (one read of its log): Istio's block_all route answered the
    # unregistered ones, the entry's cluster carried the registered ones, the route timeout (UT) cut the held ones.
    records = records_for(mesh_platform, [CLIENT], [*blocked, *allowed, *held, *mapped, *mapped_alt, *hidden,
                                                    *by_dns], mesh_timeouts, direction="outbound")
    mesh_result.figure("client_proxy_log", dict(log_outcomes(records)))

    def of(replies: list[Response]) -> dict[str, dict[str, object]]:
        return {r.request_id: records[r.request_id] for r in replies}
    wrong = failed_as(of(blocked), 502, details_prefix="direct_response")
    assert not wrong, f"unregistered: {len(wrong)} not logged as 502 direct_response: {dict(log_outcomes(of(blocked)))}"
    routes = sorted({str(rec.get("route_name")) for rec in of(blocked).values()})
    assert routes == ["block_all"], f"blocked requests were answered by routes {routes}, not Istio's block_all"
    clusters = sorted({str(rec.get("upstream_cluster")) for rec in of(allowed).values()})
    assert clusters == [f"outbound|{ENTRY_PORT}||{HOST}"], f"registered requests went to {clusters}"
    for replies, port in ((mapped, ENTRY_PORT), (mapped_alt, ALT_PORT)):
        clusters = sorted({str(rec.get("upstream_cluster")) for rec in of(replies).values()})
        assert clusters == [f"outbound|{port}||{MAPPED_HOST}"], (
            f"a destination naming no port on a host of several ports keeps the request's port {port}: {clusters}")
    clusters = sorted({str(rec.get("upstream_cluster")) for rec in of(by_dns).values()})
    assert clusters == [f"outbound|{ENTRY_PORT}||{DNS_HOST}"], f"resolution DNS requests went to {clusters}"
    routes = sorted({str(rec.get("route_name")) for rec in of(hidden).values()})
    assert routes == ["block_all"], f"the host exported elsewhere was answered by routes {routes}, not block_all"
    wrong = failed_as(of(held), 504, "UT")
    assert not wrong, f"held: {len(wrong)} not logged as 504 UT: {dict(log_outcomes(of(held)))}"
