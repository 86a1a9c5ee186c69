"""The local platform with real requests through real Envoy proxies.

Proportion checks use exact binomial acceptance regions at a false-failure rate of 1e-4 per
assertion; sample sizes follow from the stated tolerance (meshconform.stats.proportions)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from meshconform import bookinfo
from meshconform.bookinfo import pages as pages_of_bookinfo
from meshconform.errors import ConfigError
from meshconform.meshapi.analyze import analyze
from meshconform.meshapi.loader import load_files
from meshconform.platform.local.ca import CertificateAuthority
from meshconform.platform.local.platform import LocalPlatform
from meshconform.stats.proportions import judge, judge_split, sample_size, split_sample_size
from meshconform.suite.timeouts import TIMER_EARLINESS_S
from meshconform.traffic.model import Request
from tests.conftest import resources

NETWORKING = Path(bookinfo.__file__).parent / "networking"
README = Path(__file__).parents[1] / "README.md"
ALPHA = 1e-4

DR_ECHO = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: echo}
spec: {host: echo, subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]}
"""


def vs_echo(http: str) -> str:
    return f"""
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: echo}}
spec:
  hosts: [echo]
  http:
{http}
"""


@pytest.fixture
def cleanup(platform: LocalPlatform):  # type: ignore[no-untyped-def]
    applied = []

    def apply(text: str) -> None:
        items = resources(text)
        platform.apply(items)
        applied.extend(items)
    yield apply
    platform.delete(applied, ignore_missing=True)


def test_bookinfo_through_the_gateway(platform: LocalPlatform, cleanup) -> None:  # type: ignore[no-untyped-def]
    cleanup((NETWORKING / "bookinfo-gateway.yaml").read_text())
    ingress = platform.vantage("ingress")
    page, health, index = ingress.send([Request("/productpage"), Request("/health"), Request("/")])
    assert page.status == 200 and "<title>Simple Bookstore App</title>" in page.body
    assert "Book Details" in page.body and "Book Reviews" in page.body
    assert health.status == 404 and index.status == 404  # not exposed by the gateway VirtualService
    assert page.headers.get("server") == "envoy"



def test_the_readmes_walk_by_hand_serves_reviews_v3_on_every_page(platform: LocalPlatform, cleanup) -> None:  # type: ignore[no-untyped-def]
    """The README's "Using the local platform by hand" applies these files in this order. It once applied
    virtual-service-reviews-v3.yaml before any DestinationRule: IST0101 (no subset v3), and every page said
    "Error fetching product reviews". Each step must apply without a finding, and then every page is v3's."""
    block = README.read_text().split("## Using the local platform by hand", 1)[1].split("```bash", 1)[1]
    steps = re.findall(r"meshconform apply -f (\S+)", block.split("```", 1)[0])
    assert steps and steps[-1].endswith("virtual-service-reviews-v3.yaml")
    for step in steps:
        items = load_files([README.parent / step])
        assert analyze(items, platform.resources(), registry_known=True) == [], step
        cleanup((README.parent / step).read_text())
    pages = platform.vantage("ingress").send([Request("/productpage")] * 10)
    assert [(r.status, pages_of_bookinfo.version(r)) for r in pages] == [(200, "v3")] * 10


def test_ctrl_c_half_way_through_an_apply_leaves_no_proxy_with_its_config(
        platform: LocalPlatform, cleanup, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """Ctrl-C while an apply was writing the proxies' config: the proxies written so far kept the new config, the
    others the old, and the state said everything was applied and delivered. Now the apply is undone: the next
    command that observes the platform delivers the previous config to every proxy."""
    cleanup(DR_ECHO)
    from meshconform.platform.local import envoy
    real, written = envoy.write_xds, []

    def second_is_interrupted(folder: Path, config: object) -> object:
        written.append(folder)
        if len(written) == 5:  # the gateway's and three sidecars' written
            raise KeyboardInterrupt
        return real(folder, config)  # type: ignore[arg-type]
    monkeypatch.setattr(envoy, "write_xds", second_is_interrupted)
    marked = vs_echo("""
  - route: [{destination: {host: echo, subset: v2}}]
    headers: {response: {set: {x-interrupted-apply: "yes"}}}""")
    with pytest.raises(KeyboardInterrupt):
        platform.apply(resources(marked))
    monkeypatch.setattr(envoy, "write_xds", real)
    assert any("x-interrupted-apply" in p.read_text() for folder in written[:4] for p in folder.glob("*"))
    assert not [item for item in platform.resources() if item.resource.kind == "VirtualService"]
    assert not [a for a in platform.applied() if a.item.resource.kind == "VirtualService"]
    platform.workloads()  # an observation delivers what is pending (status, apply, a send)
    holding = [p for p in platform.files.root.rglob("xds/*") if p.is_file() and "x-interrupted-apply" in p.read_text()]
    assert holding == []

def test_weighted_split_within_tolerance(platform: LocalPlatform, cleanup) -> None:  # type: ignore[no-untyped-def]
    cleanup(DR_ECHO + "---" + vs_echo("""
  - route:
    - {destination: {host: echo, subset: v1}, weight: 80}
    - {destination: {host: echo, subset: v2}, weight: 20}"""))
    expected = {"v1": 0.8, "v2": 0.2}
    n = split_sample_size(expected, tolerance=0.05, alpha=ALPHA)
    replies = platform.vantage("default/client").send(
        [Request(f"/split?i={i}", host="echo:8080") for i in range(n)], concurrency=20)
    counts = Counter(r.version for r in replies)
    verdicts = judge_split(counts, expected, alpha=ALPHA, tolerance=0.05)
    assert all(v.passed for v in verdicts), [v.describe() for v in verdicts]


def test_abort_and_delay_rates(platform: LocalPlatform, cleanup) -> None:  # type: ignore[no-untyped-def]
    cleanup(vs_echo("""
  - match: [{uri: {prefix: /abort}}]
    fault: {abort: {httpStatus: 418, percentage: {value: 50}}}
    route: [{destination: {host: echo}}]
  - match: [{uri: {prefix: /delay}}]
    fault: {delay: {fixedDelay: 1s, percentage: {value: 50}}}
    route: [{destination: {host: echo}}]
  - route: [{destination: {host: echo}}]"""))
    client = platform.vantage("default/client")
    n = sample_size(0.5, tolerance=0.1, alpha=ALPHA)
    aborted = client.send([Request(f"/abort/{i}", host="echo:8080") for i in range(n)], concurrency=20)
    assert {r.status for r in aborted} <= {200, 418}
    assert all(r.body == "fault filter abort" for r in aborted if r.status == 418)
    verdict = judge("aborted", sum(r.status == 418 for r in aborted), n, 0.5, ALPHA, 0.1)
    assert verdict.passed, verdict.describe()
    delayed = client.send([Request(f"/delay/{i}", host="echo:8080") for i in range(n)], concurrency=100)
    assert all(r.status == 200 for r in delayed)
    # A delayed reply takes at least the delay (less a timer firing early); 1 s keeps undelayed replies far below
    # it even under load.
    verdict = judge("delayed", sum(r.latency >= 1.0 - TIMER_EARLINESS_S for r in delayed), n, 0.5, ALPHA, 0.1)
    assert verdict.passed, verdict.describe()


def test_mirror_receives_a_copy_with_the_request_id(platform: LocalPlatform, cleanup) -> None:  # type: ignore[no-untyped-def]
    cleanup(vs_echo("""
  - route: [{destination: {host: echo}}]
    mirror: {host: echo-mirror}"""))
    replies = platform.vantage("default/client").send([Request(f"/mirror/{i}", host="echo:8080") for i in range(20)])
    assert all(r.status == 200 and r.json()["service"] == "echo" for r in replies)
    import time
    deadline = time.monotonic() + 10
    wanted = {r.request_id for r in replies}
    seen: set[str] = set()
    while time.monotonic() < deadline and not wanted <= seen:
        seen = {rec["request_id"] for rec in platform.request_log("default", "echo-mirror")}
        time.sleep(0.05)
    assert wanted <= seen, f"mirror saw {len(wanted & seen)} of {len(wanted)} request ids"
    mirrored = [rec for rec in platform.request_log("default", "echo-mirror") if rec["request_id"] in wanted]
    assert all(not rec["host"].endswith("-shadow:8080") for rec in mirrored)  # Istio >= 1.28: no suffix


def test_in_flight_shows_a_held_request_where_it_is_until_it_is_answered(platform: LocalPlatform) -> None:
    """SupportsInFlight: a request echo holds is under way at the client's proxy and at echo (its proxy and the
    app, under its request id), nowhere else; once answered, nowhere, and echo's request log has it."""
    import threading
    import time

    echo = [("default", "echo-v1"), ("default", "echo-v2")]
    watched = [("default", "client"), *echo]
    held = Request("/delay/1500?held", host="echo:8080", request_id="in-flight-test-held")
    replies: list[object] = []
    sender = threading.Thread(target=lambda: replies.extend(platform.vantage("default/client").send([held])))
    sender.start()
    try:
        deadline = time.monotonic() + 10
        seen: dict[str, int] = {}
        while time.monotonic() < deadline and len(seen) < 2:
            seen = platform.in_flight(watched, {held.request_id})
            time.sleep(0.02)
        client = platform.pods_of("default", "client")[0]
        holder = [key for key in seen if key != f"default/{client.name}"]
        assert f"default/{client.name}" in seen and len(holder) == 1, seen
        assert holder[0] in {f"default/{p.name}" for ns, d in echo for p in platform.pods_of(ns, d)}
        holder_only = platform.in_flight(watched, {held.request_id})[holder[0]]
        # The holder counts its proxy's two gauges and its app; for other ids only the proxy's remain.
        assert platform.in_flight(watched, {"some-other-id"})[holder[0]] < holder_only
        assert list(platform.in_flight([("default", "client")])) == [f"default/{client.name}"]  # scoped
    finally:
        sender.join(timeout=15)
    assert len(replies) == 1
    deadline = time.monotonic() + 5
    while platform.in_flight(watched) and time.monotonic() < deadline:
        time.sleep(0.02)  # Envoy drops its gauges as the stream completes, a moment after the reply's last byte
    assert platform.in_flight(watched) == {}
    logged = [rec for ns, d in echo for rec in platform.request_log(ns, d) if rec["request_id"] == held.request_id]
    assert len(logged) == 1


def test_strict_and_permissive_mtls(platform: LocalPlatform, cleanup) -> None:  # type: ignore[no-untyped-def]
    meshed, unmeshed = platform.vantage("default/client"), platform.vantage("legacy/client")
    probe = Request("/mtls", host="echo.default:8080")
    before = unmeshed.send([probe])[0]
    assert before.status == 200 and "x-forwarded-client-cert" not in before.json()["headers"]  # PERMISSIVE
    cleanup("""
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: default}
spec: {mtls: {mode: STRICT}}
""")
    rejected = unmeshed.send([Request("/mtls", host="echo.default:8080") for _ in range(5)])
    assert all(r.status is None and r.error == "reset" for r in rejected), [r.summary() for r in rejected]
    accepted = meshed.send([Request("/mtls", host="echo:8080")])[0]
    assert accepted.status == 200
    xfcc = accepted.json()["headers"]["x-forwarded-client-cert"]
    assert "URI=spiffe://cluster.local/ns/default/sa/client" in xfcc
    assert "By=spiffe://cluster.local/ns/default/sa/echo" in xfcc


def test_gateway_host_path_and_tls(platform: LocalPlatform, cleanup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    authority = CertificateAuthority(tmp_path / "ca", "test CA")
    authority.issue(tmp_path / "tls.crt", tmp_path / "tls.key", dns_names=("echo.example.com",))
    import base64
    crt = base64.b64encode((tmp_path / "tls.crt").read_bytes()).decode()
    key = base64.b64encode((tmp_path / "tls.key").read_bytes()).decode()
    cleanup(f"""
apiVersion: v1
kind: Secret
metadata: {{name: echo-credential, namespace: istio-system}}
type: kubernetes.io/tls
data: {{tls.crt: {crt}, tls.key: {key}}}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: echo-gateway}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: 80, name: http, protocol: HTTP}}
    hosts: [echo.example.com]
  - port: {{number: 443, name: https, protocol: HTTPS}}
    tls: {{mode: SIMPLE, credentialName: echo-credential}}
    hosts: [echo.example.com]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: echo-ingress}}
spec:
  hosts: [echo.example.com]
  gateways: [echo-gateway]
  http:
  - match: [{{uri: {{prefix: /status}}}}]
    route: [{{destination: {{host: echo}}}}]
""")
    assert platform.endpoint.https is not None
    ca = authority.pem.decode()
    ok, wrong_path, wrong_host, secure = platform.vantage("ingress").send([
        Request("/status/200", host="echo.example.com"), Request("/headers", host="echo.example.com"),
        Request("/status/200", host="other.example.com"),
        Request("/status/418", host="echo.example.com", scheme="https", ca_pem=ca)])
    assert ok.status == 200 and ok.json()["service"] == "echo"
    assert wrong_path.status == 404 and wrong_host.status == 404
    assert secure.status == 418, secure.summary()


def test_header_match_for_jason(platform: LocalPlatform, cleanup) -> None:  # type: ignore[no-untyped-def]
    cleanup("\n---\n".join((NETWORKING / f).read_text() for f in (
        "bookinfo-gateway.yaml", "destination-rule-all.yaml", "virtual-service-reviews-test-v2.yaml")))
    client = platform.vantage("default/client")
    as_jason = client.send([Request("/reviews/0", host="reviews:9080", headers={"end-user": "jason"})] * 20)
    others = client.send([Request("/reviews/0", host="reviews:9080", headers={"end-user": "Jason"})] * 20)
    assert {r.version for r in as_jason} == {"v2"}
    assert {r.version for r in others} == {"v1"}  # matching is case-sensitive


def test_injection_follows_labels(platform: LocalPlatform) -> None:
    sidecars = {(w.namespace, w.deployment): w.sidecar for w in platform.workloads()}
    assert sidecars[("default", "echo-v1")] is True          # istio-injection=enabled
    assert sidecars[("default", "echo-optout")] is False     # pod label opt-out wins
    assert sidecars[("legacy", "echo-v1")] is False          # unlabelled namespace
    assert sidecars[("optin", "echo-v1")] is True            # pod label opt-in
    through_proxy = platform.vantage("default/client").send([
        Request("/", host="echo-optout:8080"), Request("/", host="echo:8080")])
    assert "x-forwarded-client-cert" not in through_proxy[0].json()["headers"]  # plaintext: no sidecar there
    assert "x-forwarded-client-cert" in through_proxy[1].json()["headers"]


def test_bad_config_is_refused_and_nothing_changes(platform: LocalPlatform, cleanup) -> None:  # type: ignore[no-untyped-def]
    cleanup(DR_ECHO + "---" + vs_echo("  - route: [{destination: {host: echo, subset: v2}}]"))
    bad = DR_ECHO.replace("spec: {host: echo,", "spec: {host: echo, trafficPolicy: {tls: {mode: SIMPLE}},")
    with pytest.raises(ConfigError) as caught:
        platform.apply(resources(bad))
    assert caught.value.resource == "DestinationRule default/echo" and caught.value.field.endswith("tls.mode")
    replies = platform.vantage("default/client").send([Request("/", host="echo:8080")] * 5)
    assert {r.version for r in replies} == {"v2"}  # previous config still in force


def test_delete_later_is_delivered_before_the_next_send(platform: LocalPlatform) -> None:
    """The conformance fixture's cleanup defers delivery (one reconciliation between tests instead of two):
    the resources leave the desired state at once, and no traffic can see the old config afterwards."""
    items = resources(DR_ECHO + "---" + vs_echo("  - route: [{destination: {host: echo, subset: v2}}]"))
    platform.apply(items)
    client = platform.vantage("default/client")
    assert {r.version for r in client.send([Request("/", host="echo:8080")] * 5)} == {"v2"}
    platform.delete_later(items)
    assert platform.state.undelivered
    assert not {i.key for i in items} & {i.key for i in platform.resources()}
    # Without the VirtualService echo's two versions share the traffic: 20 replies all from v2 would happen
    # with probability 2^-20 under random or round-robin balancing.
    replies = client.send([Request("/", host="echo:8080")] * 20)
    assert not platform.state.undelivered
    assert {r.version for r in replies} == {"v1", "v2"}, [r.version for r in replies]


@pytest.mark.slow
def test_bookinfo_delay_for_jason_gives_the_documented_error_after_6s(platform: LocalPlatform, cleanup) -> None:  # type: ignore[no-untyped-def]
    cleanup("\n---\n".join((NETWORKING / f).read_text() for f in (
        "bookinfo-gateway.yaml", "destination-rule-all.yaml", "virtual-service-all-v1.yaml")))
    platform.apply(load_files([NETWORKING / "virtual-service-reviews-test-v2.yaml",
                               NETWORKING / "virtual-service-ratings-test-delay.yaml"]))
    try:
        page = platform.vantage("default/client").send(
            [Request("/productpage", host="productpage:9080", headers={"cookie": _jason_cookie(platform)})])[0]
    finally:
        platform.delete(load_files([NETWORKING / "virtual-service-ratings-test-delay.yaml"]), ignore_missing=True)
    assert page.status == 200
    assert "Sorry, product reviews are currently unavailable for this book." in page.body
    assert 5.8 <= page.latency <= 7.0, page.latency  # 2 tries x 3 s app timeout, before the 7 s delay ends


def _jason_cookie(platform: LocalPlatform) -> str:
    reply = platform.vantage("default/client").send([Request(
        "/login", host="productpage:9080", method="POST", body="username=jason&passwd=pw",
        headers={"content-type": "application/x-www-form-urlencoded", "referer": "/productpage"})])[0]
    assert reply.status == 302, reply.summary()
    return reply.headers["set-cookie"].split(";")[0]


def test_down_leaves_no_process(run_root: Path) -> None:
    local = LocalPlatform(run_root / "lifecycle")
    local.up()
    pids = [r.pid for r in local.supervisor.records()]
    assert len(pids) >= 20
    local.down()
    assert not [pid for pid in pids if _running(pid)]


def test_failed_up_leaves_no_process(run_root: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("""
apiVersion: apps/v1
kind: Deployment
metadata: {name: crasher}
spec:
  selector: {matchLabels: {app: crasher}}
  template:
    metadata: {labels: {app: crasher}, annotations: {meshconform.io/local-app: echo}}
    spec:
      containers: [{name: c, image: x, ports: [{containerPort: 99999}]}]
""")
    with pytest.raises(ConfigError):
        LocalPlatform(run_root / "broken", manifests=[broken]).up()
    crash = tmp_path / "crash.yaml"  # behind a sidecar the app moves to port + 10000: 70000 cannot bind
    crash.write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: default, labels: {istio-injection: enabled}}\n"
                     "---\n" + broken.read_text().replace("99999", "60000"))
    local = LocalPlatform(run_root / "crash", manifests=[crash])
    try:
        with pytest.raises(Exception, match="exited during start-up|not ready"):
            local.up()
        assert not [r.pid for r in local.supervisor.records()]
    finally:
        local.down()  # whatever the outcome (an up that wrongly succeeded), nothing this test started outlives it


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_tests_config_warnings_leave_its_deferred_cleanup_for_the_next_apply(platform: LocalPlatform) -> None:
    """The cleanup after each test is delivered with the next test's apply (one reconciliation between two tests). The
    config warnings gathered after each test listed what the platform holds through applied(), which for a while
    delivered what was pending first: a reconciliation after every test again."""
    from meshconform.fixtures.evidence import config_warnings
    from meshconform.suite.config import MeshConfig
    config = MeshConfig(platform, owner="warnings-deferred")
    config.apply_yaml(DR_ECHO, "dr.yaml")
    config.cleanup()  # deferred: out of the desired state now, off the proxies with the next apply
    assert platform.state.undelivered
    assert config_warnings(platform, config.history) == []
    assert platform.state.undelivered
    platform.workloads()  # delivered by an observation, as before
    assert not platform.state.undelivered
