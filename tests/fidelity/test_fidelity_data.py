"""Fast checks of the fidelity data and of the translator rules Istio's cases led to (no platform needed)."""

from __future__ import annotations

import itertools
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshconform.errors import ConfigError
from meshconform.fidelity import routes, scope, upstream
from meshconform.fidelity.cases import ISTIO_COMMIT, ISTIO_FILES, ISTIO_VERSION, load_cases, load_file
from meshconform.fidelity.runner import CASES_DIR, OUT_OF_SCOPE, SUMMARY, accounting, load_divergences
from meshconform.meshapi.istio import MutualTLSMode
from meshconform.meshapi.loader import load_text
from meshconform.platform.local import topology
from meshconform.platform.local.fidelity import under_test_block
from meshconform.platform.local.platform import LocalPlatform
from meshconform.platform.local.translator import listeners, mtls
from meshconform.platform.local.translator.model import GatewayPorts, MeshSnapshot, Pod
from meshconform.suite.unit import REGISTRY

HERE = Path(__file__).parent
COVERAGE = HERE / "coverage.yaml"


# ---------------------------------------------------------------- the case data and the figure

def test_every_istio_expectation_is_ported_refused_or_listed_as_not_ported() -> None:
    """The committed index of Istio's expectations (recounted from Istio's sources by fidelity/upstream.py) splits
    exactly into ported cases, out of scope and not yet ported; the figure counts that split (cheap staleness
    guard; the platform test compares the whole figure with a fresh run)."""
    cases = load_cases(CASES_DIR)
    split = accounting([c.id for c in cases.calls])
    assert not split.problems, "\n".join(split.problems)
    figure = json.loads(SUMMARY.read_text())
    assert figure["ported"] == len(cases.calls) == len(split.ported)
    assert figure["out_of_scope"] == len(split.out_of_scope)
    assert figure["not_ported"] == len(split.not_ported)
    assert figure["in_scope"] == figure["ported"] + figure["not_ported"]
    assert figure["istio_expectations"] == len(upstream.load_index())
    divergent = {d["case"] for d in figure["divergences"]}
    assert divergent == set(load_divergences()), "divergences.yaml and the committed figure disagree"
    assert all(d["reason"] != "UNEXPLAINED" for d in figure["divergences"])
    assert figure["statement"].startswith(f"agrees with {figure['agreed']} of {figure['in_scope']} ")


@pytest.mark.parametrize("entry", scope.load_entries(OUT_OF_SCOPE, refusals=True), ids=lambda e: e.where)
def test_an_expectation_is_out_of_scope_only_for_the_platforms_refusal(entry: scope.Entry) -> None:
    """Each out-of-scope entry's resources are refused by the platform's own checks, naming what the entry says."""
    refused = entry.refusal()
    assert refused is not None, f"{entry.where}: the local platform accepts these resources: port them"
    assert (refused.resource, refused.field) == (entry.refused_resource, entry.refused_field), refused.detail
    assert entry.reason


def test_patterns_name_ids_exactly_by_prefix_or_by_segments() -> None:
    assert scope.expand(["T", ["a", "b, c"], "*"]) == ["T/a/*", "T/b, c/*"]
    assert scope.covers(["T/x"], "T/x") and not scope.covers(["T/x"], "T/x/y")
    assert scope.covers([["T", ["a", "b"], "*"]], "T/b/call") and not scope.covers([["T", ["a"], "*"]], "T/ab/call")
    entry = scope.Entry([["T", "a", "*"]], 2, "r", where="e")
    split = scope.account(["T/a/1", "T/a/2", "T/b/1", "T/c/1"], ["T/b/1", "T/x"], [entry], [])
    assert split.ported == ["T/b/1"] and split.out_of_scope == ["T/a/1", "T/a/2"]
    assert split.problems == ["ported case 'T/x' is not an expectation of the index",
                              "'T/c/1' is accounted for nowhere (ported, out_of_scope.yaml, not_ported.yaml)"]


def test_the_index_matches_its_own_counts_and_sources() -> None:
    data = yaml.safe_load(upstream.INDEX.read_text())
    ids = [e.id for e in upstream.load_index()]  # also checks each file's per-test counts
    assert len(ids) == len(set(ids)), "an expectation id appears twice"
    assert data["istio"] == {"version": ISTIO_VERSION, "commit": ISTIO_COMMIT}
    assert sorted(f["path"] for f in data["files"]) == sorted(ISTIO_FILES.values())
    assert all(re.fullmatch(r"[0-9a-f]{64}", f["sha256"]) for f in data["files"])


GO_SAMPLE = """package core_test

// A comment with a brace { and a string "x".
func helper() {}

func TestTable(t *testing.T) {
	config := `kind: VirtualService
spec: {hosts: ["{not code}"]}`
	runSimulationTest(t, nil, xds.FakeOptions{}, simulationTest{
		name:   "first case",
		config: config,
		calls: []simulation.Expect{
			{Name: "call", Call: simulation.Call{Port: 80}, Result: simulation.Result{ClusterMatched: "a"}},
			{Name: "call", Result: simulation.Result{Error: simulation.ErrNoRoute}},
			{Call: simulation.Call{Port: 81}},
		},
	})
	t.Run("nested", func(t *testing.T) {
		sim.RunExpectations([]simulation.Expect{{Name: "inner /* not a comment */"}})
	})
}

func TestEmpty(t *testing.T) {
	calls := []simulation.Expect{}
	_ = calls
}
"""


def test_the_index_reader_counts_expect_literals_as_go_test_names_them() -> None:
    found = upstream.expectations_of(GO_SAMPLE)
    assert found == {"TestTable": ["first case/call", "first case/call#01", "first case/#02",
                                   "nested/inner /* not a comment */"], "TestEmpty": []}


def test_the_index_reader_follows_the_loops_of_tests_that_generate_calls() -> None:
    source = """package core_test
func TestPassthroughTraffic(t *testing.T) {
	calls := map[string]simulation.Call{}
	for port := 80; port < 82; port++ {
		for _, call := range []simulation.Call{
			{Port: port, Protocol: simulation.HTTP, TLS: simulation.TLS, Alpn: "h2"},
			{Port: port, Protocol: simulation.TCP},
		} {
			calls[name] = call
		}
	}
	for _, tp := range []meshconfig.MeshConfig_OutboundTrafficPolicy_Mode{
		meshconfig.MeshConfig_OutboundTrafficPolicy_ALLOW_ANY,
	} {
		t.Run(tp.String(), func(t *testing.T) {
			t.Run("with VIP", func(t *testing.T) {})
		})
	}
}
"""
    assert upstream.expectations_of(source)["TestPassthroughTraffic"] == [
        "ALLOW_ANY/with VIP/http-tls-80-h2", "ALLOW_ANY/with VIP/http-tls-81-h2", "ALLOW_ANY/with VIP/tcp-plaintext-80",
        "ALLOW_ANY/with VIP/tcp-plaintext-81"]


@pytest.mark.skipif(not os.environ.get("MESHCONFORM_ISTIO_SOURCES"),
                    reason="set MESHCONFORM_ISTIO_SOURCES to a checkout of Istio 1.30.3 to recount the index")
def test_the_committed_index_is_what_istios_sources_give() -> None:
    assert upstream.main(["--istio", os.environ["MESHCONFORM_ISTIO_SOURCES"]]) == 0


def test_every_case_cites_an_istio_file_and_case_name() -> None:
    for scenario in load_cases(CASES_DIR).scenarios:
        assert scenario.istio_file.startswith("pilot/pkg/networking/core/")
        assert scenario.test.startswith("Test")
        assert all(call.id.startswith(f"{scenario.id}/") for call in scenario.calls)


def test_a_bad_case_names_file_case_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"file": "gateway", "scenarios": [{"test": "TestX", "subtest": "s", "calls": [
        {"name": "c", "from": "ingress", "port": 80, "host": "h", "expect": {"error": "teapot"}}]}]}))
    with pytest.raises(ConfigError) as caught:
        load_file(bad)
    assert caught.value.source == str(bad) and caught.value.resource == "TestX/s/c"
    assert caught.value.field == "expect.error"


def test_describe_carries_the_committed_figure(tmp_path: Path) -> None:
    block = LocalPlatform(tmp_path).describe()["fidelity"]
    figure = json.loads(SUMMARY.read_text())
    assert block["statement"] == figure["statement"] and block["istioVersion"] == "1.30.3"
    assert [d["case"] for d in block["knownDivergences"]] == [d["case"] for d in figure["divergences"]]
    assert under_test_block(tmp_path / "missing.json") == {"statement": "no fidelity figure committed"}


def test_every_conformance_check_names_its_backing() -> None:
    import meshconform.conformance  # noqa: F401  (registers nothing by itself: the test modules do)
    for module in ("test_authorization", "test_egress", "test_fault", "test_jwt", "test_gateway", "test_identity",
                   "test_injection", "test_mirroring", "test_mtls", "test_outlier", "test_resilience", "test_routing",
                   "test_tracing", "test_gateway_api", "test_interactions"):
        __import__(f"meshconform.conformance.{module}")
    entries = yaml.safe_load(COVERAGE.read_text())
    assert sorted(e["check"] for e in entries) == sorted(REGISTRY)
    ids = [c.id for c in load_cases(CASES_DIR).calls]
    for entry in entries:
        for pattern in entry["istio_cases"]:
            prefix = pattern[:-1] if pattern.endswith("/*") else None
            hits = [i for i in ids if i.startswith(prefix)] if prefix else [i for i in ids if i == pattern]
            assert hits, f"{entry['check']}: {pattern!r} names no ported case"
        assert entry["backed"] == bool(entry["istio_cases"] or entry["istio_io"]), entry["check"]


# ---------------------------------------------------------------- reading route configuration as Envoy does

def test_virtual_host_choice_follows_envoy_order() -> None:
    config = {"virtual_hosts": [{"name": "any", "domains": ["*"]}, {"name": "wide", "domains": ["*.com"]},
                                {"name": "narrow", "domains": ["*.example.com"]}, {"name": "exact",
                                                                                    "domains": ["a.example.com"]}]}
    assert routes.virtual_host_for(config, "a.example.com")["name"] == "exact"
    assert routes.virtual_host_for(config, "b.example.com")["name"] == "narrow"
    assert routes.virtual_host_for(config, "b.org")["name"] == "any"
    assert routes.virtual_host_for({"virtual_hosts": []}, "x") is None
    vhost = {"routes": [{"match": {"path": "/exact"}, "route": {"cluster": "a"}},
                        {"match": {"prefix": "/"}, "route": {"cluster": "b"}}]}
    assert routes.routed_cluster(routes.route_for(vhost, "/exact?q=1")) == "a"
    assert routes.routed_cluster(routes.route_for(vhost, "/other")) == "b"


# ---------------------------------------------------------------- translator rules from Istio's cases

SERVICES = """
apiVersion: v1
kind: Service
metadata: {name: known, namespace: default}
spec: {selector: {app: known}, ports: [{name: http, port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: alt-known, namespace: default}
spec: {selector: {app: alt-known}, ports: [{name: http, port: 80}]}
"""


def _snapshot(text: str) -> MeshSnapshot:
    counter = itertools.count(2)
    snapshot, _ = topology.build(load_text(SERVICES + "---\n" + text, "<test>"), lambda key: f"127.0.9.{next(counter)}")
    return snapshot


def _vhost(config: dict[str, Any], authority: str) -> dict[str, Any]:
    found = routes.virtual_host_for(config, authority)
    assert found is not None, authority
    return found


def _vs(name: str, host: str, dest: str) -> str:
    return (f"apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
            f"metadata: {{name: {name}, namespace: default}}\n"
            f"spec: {{hosts: ['{host}'], http: [{{route: [{{destination: {{host: {dest}}}}}]}}]}}\n---\n")


def test_exact_virtual_service_host_beats_an_older_wildcard() -> None:
    mesh = _snapshot(_vs("wild", "*.cluster.local", "wild.example.com")
                     + _vs("exact", "known.default.svc.cluster.local", "explicit.example.com"))
    config = listeners.outbound_routes(mesh, "default", frozenset())
    assert _vhost(config, "known.default.svc.cluster.local")["routes"][0]["route"]["cluster"] == \
        "outbound|80||explicit.example.com"
    assert _vhost(config, "alt-known.default.svc.cluster.local")["routes"][0]["route"]["cluster"] == \
        "outbound|80||wild.example.com"
    assert routes.has_domain(config, "*.cluster.local") is None  # it matched services: no as-is host


def test_virtual_service_host_naming_no_service_is_routed_on_port_80() -> None:
    config = listeners.outbound_routes(_snapshot(_vs("w", "*.unknown.example.com", "arbitrary.example.com")),
                                       "default", frozenset())
    assert _vhost(config, "x.unknown.example.com")["routes"][0]["route"]["cluster"] == \
        "outbound|80||arbitrary.example.com"
    assert routes.has_domain(config, "*.unknown.example.com:8080") is None


class _Certs:
    ca = Path("/nonexistent/ca.pem")

    def workload(self, pod: Pod) -> tuple[Path, Path]:
        return Path("/nonexistent/cert.pem"), Path("/nonexistent/key.pem")

    def gateway_credential(self, namespace: str, name: str) -> tuple[Path, Path]:
        return self.workload(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(("mode", "alpn"), [(MutualTLSMode.STRICT, None),
                                            (MutualTLSMode.PERMISSIVE, mtls.ALPN_MESH_MATCH)])
def test_inbound_mtls_chain_matches_as_istiod(mode: MutualTLSMode, alpn: list[str] | None) -> None:
    text = (f"apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {{name: default, namespace: "
            f"istio-system}}\nspec: {{mtls: {{mode: {mode.value}}}}}\n---\n")
    deployment = ("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: known, namespace: default}\nspec:\n"
                  "  selector: {matchLabels: {app: known}}\n  template:\n    metadata:\n      labels: {app: known}\n"
                  "      annotations: {meshconform.io/local-app: echo}\n    spec:\n      containers: [{name: e, "
                  "image: x, ports: [{containerPort: 80}]}]\n")
    namespace = "apiVersion: v1\nkind: Namespace\nmetadata: {name: default, labels: {istio-injection: enabled}}\n---\n"
    mesh = _snapshot(namespace + text + deployment)
    pod = next(p for p in mesh.pods if p.deployment == "known")
    chains = listeners.inbound_listeners(mesh, pod, _Certs(), Path("/dev/null"), frozenset())[0]["filter_chains"]
    match = chains[0]["filter_chain_match"]
    assert match["transport_protocol"] == "tls"
    assert match.get("application_protocols") == alpn
    assert "istio-http/1.1" in mtls.ALPN_MESH_MATCH


def _gateway(server: str) -> str:
    return ("apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: gw, namespace: default}\n"
            f"spec: {{selector: {{istio: ingressgateway}}, servers: [{server}]}}\n")


def test_gateway_http_server_without_routes_listens_and_answers_404() -> None:
    mesh = _snapshot(_gateway("{port: {number: 80, name: http, protocol: HTTP}, hosts: [foo.bar]}"))
    gateway = next(p for p in mesh.pods if p.is_gateway)
    found, route_configs = listeners.gateway_config(mesh, gateway, GatewayPorts(1, 2), _Certs(), Path("/x"),
                                                    Path("/dev/null"), frozenset())
    assert [item["name"] for item in found] == ["0.0.0.0_8080"]
    vhost = _vhost(route_configs["http.8080"], "foo.bar")
    assert vhost["name"] == "blackhole:80" and vhost["routes"] == []


def test_redirecting_gateway_server_redirects_hosts_without_routes() -> None:
    mesh = _snapshot(_gateway("{port: {number: 80, name: http, protocol: HTTP}, hosts: [example.com], "
                              "tls: {httpsRedirect: true}}"))
    gateway = next(p for p in mesh.pods if p.is_gateway)
    _, route_configs = listeners.gateway_config(mesh, gateway, GatewayPorts(1, 2), _Certs(), Path("/x"),
                                                Path("/dev/null"), frozenset())
    assert _vhost(route_configs["http.8080"], "example.com")["require_tls"] == "ALL"


def test_readme_states_the_committed_figure_and_unbacked_checks() -> None:
    readme = " ".join((HERE.parents[1] / "README.md").read_text().split())  # as rendered: line breaks are spaces
    figure = json.loads(SUMMARY.read_text())
    assert figure["statement"] in readme
    assert f"Of Istio's {figure['istio_expectations']} expectations" in readme
    assert f"{figure['in_scope']} are in scope" in readme and f"{figure['out_of_scope']} are out of scope" in readme
    for entry in yaml.safe_load(COVERAGE.read_text()):
        if not entry["backed"]:
            assert f"| `{entry['check']}` |" in readme, entry["check"]
    for divergence in figure["divergences"]:
        assert divergence["case"] in readme, divergence["case"]


# ---------------------------------------------------------------- judging: a different outcome is a failure

def _call(**overrides: Any) -> Any:
    from meshconform.fidelity.cases import Call, Expect
    fields: dict[str, Any] = {"id": "T/s/c", "name": "c", "source": "inbound", "port": 80,
                              "expect": Expect(cluster="inbound|80||"), "workload": "ns/foo"}
    return Call(**(fields | overrides))


POD = Pod("foo-abc", "ns", "foo", {}, "foo", "127.0.9.9", (80,), True)


def test_inbound_refusals_are_told_apart_by_the_proxy_counters() -> None:
    from meshconform.fidelity.observe import _classify_inbound
    listener = "listener.127.0.9.9_80."
    assert _classify_inbound(_call(), POD, None, b"", "reset", {listener + "no_filter_chain_match": 1}).error == \
        "no_filter_chain"
    assert _classify_inbound(_call(), POD, None, b"", "ssl", {listener + "ssl.connection_error": 1}).error == \
        "mtls_error"
    assert _classify_inbound(_call(), POD, 400, b"", "", {"http.inbound_80.downstream_cx_protocol_error": 1}).error \
        == "protocol_error"
    served = _classify_inbound(_call(), POD, 200, b'{"pod": "foo-abc"}', "",
                               {"cluster.inbound|80||.upstream_rq_total": 1})
    assert served.cluster == "inbound|80||"
    from meshconform.fidelity.observe import CALLER_IDENTITY
    mtls_body = json.dumps({"pod": "foo-abc", "headers": {"x-forwarded-client-cert": f"URI={CALLER_IDENTITY}"}})
    counted = {"cluster.inbound|80||.upstream_rq_total": 1}
    assert _classify_inbound(_call(tls="mtls"), POD, 200, mtls_body.encode(), "", counted).cluster == "inbound|80||"
    # mTLS the proxy did not terminate (no identity reached the app) is not Istio's outcome.
    assert _classify_inbound(_call(tls="mtls"), POD, 200, b'{"pod": "foo-abc"}', "", counted).cluster is None
    # Another pod answering, or nothing the proxy counted, is no outcome Istio names: the case fails.
    other = _classify_inbound(_call(), POD, 200, b'{"pod": "bar-xyz"}', "",
                              {"cluster.inbound|80||.upstream_rq_total": 1})
    assert other.cluster is None and other.error is None
    assert _classify_inbound(_call(), POD, None, b"", "timeout", {}).describe() == "nothing Istio would name"


def test_a_call_proxied_as_tcp_is_judged_by_the_bytes_its_cluster_carried() -> None:
    from meshconform.fidelity.observe import _classify_inbound
    tcp = {"tcp.inbound_82.downstream_cx_total": 1, "cluster.InboundPassthroughCluster.upstream_cx_total": 1,
           "cluster.InboundPassthroughCluster.upstream_cx_tx_bytes_total": 517}
    assert _classify_inbound(_call(port=82), POD, None, b"", "ssl", tcp).cluster == "InboundPassthroughCluster"
    # A connection opened to the app but nothing sent (a TLS handshake the proxy refused) is not proxied.
    opened = {"tcp.inbound_82.downstream_cx_total": 1, "cluster.InboundPassthroughCluster.upstream_cx_total": 1,
              "listener.127.0.9.9_82.ssl.connection_error": 1}
    assert _classify_inbound(_call(port=82), POD, None, b"", "ssl", opened).error == "mtls_error"
    # Another pod's answer is no outcome Istio names, whichever way it came.
    assert _classify_inbound(_call(port=82), POD, 200, b'{"pod": "bar-xyz"}', "", tcp).cluster is None
    refused = _classify_inbound(_call(port=15006), POD, None, b"", "connect: [Errno 111] Connection refused", {})
    assert refused.error == "no_listener"


def test_a_proxied_call_is_judged_by_the_counter_and_the_echo_that_answered() -> None:
    from meshconform.fidelity.observe import Observer
    from meshconform.traffic.model import Response
    observer = Observer.__new__(Observer)
    observer._route_config = lambda pod, name: {"virtual_hosts": [  # type: ignore[method-assign]
        {"name": "a", "domains": ["a.example.com"],
         "routes": [{"match": {"path": "/x"}, "route": {"cluster": "outbound|80||gone.example.com"}}]}]}
    observer._cluster_names = lambda pod: set()  # type: ignore[method-assign]
    call = _call(source="ingress", host="a.example.com", path="/x")
    moved = {"cluster.outbound|80||a.default.svc.cluster.local.upstream_rq_total": 1}
    good = Response("r", 200, None, 0.01, body='{"service": "a", "namespace": "default"}')
    served = observer._judge_proxied(call, good, moved, POD, "http.8080")
    assert served.cluster == "outbound|80||a.default.svc.cluster.local"
    wrong = Response("r", 200, None, 0.01, body='{"service": "b", "namespace": "default"}')
    assert observer._judge_proxied(call, wrong, moved, POD, "http.8080").cluster is None
    no_cluster = Response("r", 503, None, 0.01)
    assert observer._judge_proxied(call, no_cluster, {}, POD, "http.8080").cluster == "outbound|80||gone.example.com"
    assert observer._judge_proxied(_call(source="ingress", host="b.example.com"), Response("r", 404, None, 0.01), {},
                                   POD, "http.8080").error == "no_virtual_host"
    assert observer._judge_proxied(_call(source="ingress", host="a.example.com", path="/y"),
                                   Response("r", 404, None, 0.01), {}, POD, "http.8080").error == "no_route"
    redirect = Response("r", 301, None, 0.01, headers={"location": "https://a.example.com/"})
    assert observer._judge_proxied(call, redirect, {}, POD, "http.8080").error == "tls_redirect"


def test_a_known_divergence_must_keep_its_recorded_outcome() -> None:
    from meshconform.fidelity.cases import Expect, Scenario
    from meshconform.fidelity.observe import Outcome
    from meshconform.fidelity.runner import Divergence, Result, summary
    call = _call(expect=Expect(error="no_filter_chain"))
    scenario = Scenario("sidecar", "T", "s", "<test>", [], [], [call])
    recorded = Divergence(call.id, {"error": "protocol_error"}, "deliberately different, for the test")
    kept = Result(scenario, call, Outcome(error="protocol_error"), recorded)
    assert not kept.agrees and kept.as_recorded
    drifted = Result(scenario, call, Outcome(cluster="inbound|80||"), recorded)
    assert not drifted.as_recorded
    from meshconform.fidelity.cases import CaseSet
    figure = summary(CaseSet([scenario], set()), [kept], out_of_scope=2, not_ported=0)
    assert figure["agreed"] == 0 and figure["divergences"][0]["reason"] == "deliberately different, for the test"
    assert figure["statement"].endswith("1 known divergence, listed") and figure["istio_expectations"] == 3
    pending = summary(CaseSet([scenario], set()), [kept], out_of_scope=2, not_ported=4)
    assert pending["in_scope"] == 5 and pending["istio_expectations"] == 7
    assert "(4 not yet ported, counted as not agreeing)" in pending["statement"]


def test_a_scenario_the_platform_refuses_fails_its_calls_and_the_run_goes_on(tmp_path: Path) -> None:
    from meshconform.fidelity.cases import CaseSet, Expect, Scenario
    from meshconform.fidelity.runner import FidelityRun

    class Refusing:
        def apply(self, items: Any) -> None:
            raise ConfigError("not supported", source="<case>", resource="Gateway/x", field="spec.servers")

    gateway = {"apiVersion": "networking.istio.io/v1", "kind": "Gateway", "metadata": {"name": "x"},
               "spec": {"servers": [{"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]}]}}
    scenario = Scenario("gateway", "T", "s", "<case>", [gateway], [], [_call(expect=Expect(error="no_route"))])
    run = FidelityRun(CaseSet([scenario], set()), tmp_path, divergences={})
    run.platform, run.observer = Refusing(), object()  # type: ignore[assignment]
    [result] = run.run_scenario(scenario)
    assert not result.agrees and not result.as_recorded
    assert "refused the scenario" in result.explain() and "spec.servers" in result.explain()


def test_the_http2_call_reads_status_and_body_from_frames() -> None:
    import socket

    from meshconform.fidelity.observe import H2_PREFACE, _h2_frame, _http2_get
    client, server = socket.socketpair()
    with client, server:
        server.sendall(_h2_frame(0x4, 0, 0) + _h2_frame(0x1, 0x4, 1, bytes([0x88]))
                       + _h2_frame(0x0, 0x1, 1, b'{"pod": "p"}'))
        assert _http2_get(client, "/", "fidelity") == (200, b'{"pod": "p"}', "")
        sent = server.recv(65536)
        assert sent.startswith(H2_PREFACE) and bytes([0x82, 0x86]) in sent  # GET over http, static table


def test_the_fidelity_commands_help_keeps_its_examples_one_a_line(capsys: pytest.CaptureFixture[str]) -> None:
    """argparse reflowed the module docstring's two example commands into one paragraph ("... fidelity # run and
    report (exit 1 ...) python -m meshconform.fidelity --update # also ...")."""
    from meshconform.fidelity.__main__ import main
    with pytest.raises(SystemExit):
        main(["--help"])
    lines = [line.strip() for line in capsys.readouterr().out.splitlines()]
    assert any(line.startswith("python -m meshconform.fidelity --update") for line in lines), lines
