"""AuthorizationPolicy -> RBAC filters on a sidecar's inbound listener, judged by Envoy's RBAC evaluation of a
request from a given caller: DENY before ALLOW, no ALLOW policy allows all, an ALLOW policy without rules
allows nothing, rule/source/operation semantics (istio.io AuthorizationPolicy reference; facts §4.5)."""

from __future__ import annotations

import pytest

from meshconform.platform.local.translator.model import ProxyConfig
from tests.translator import envoy_view as ev
from tests.translator.meshes import Mesh, pod, service

CLIENT = "spiffe://cluster.local/ns/default/sa/client"
OTHER = "spiffe://cluster.local/ns/default/sa/other"
FOREIGN = "spiffe://cluster.local/ns/far/sa/client"
MUTUAL_TLS = ev.Connection(tls=True, client_certificate=True, alpn=("istio",))
PLAINTEXT = ev.Connection()


def policy(spec: str, name: str = "p", namespace: str = "default") -> str:
    return f"""
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: {name}, namespace: {namespace}}}
spec: {spec}
---
"""


def echo_config(*policies: str, misbehave: tuple[str, ...] = ()) -> dict[str, ProxyConfig]:
    mesh = Mesh().add(service("echo"), service("other"), *policies).with_pods(
        pod("echo-0", labels={"app": "echo"}), pod("other-0", labels={"app": "other"}))
    configs = mesh.translate(misbehave)
    return {"echo": configs["default/echo-0"], "other": configs["default/other-0"]}


def allowed(config: ProxyConfig, request: ev.Request, principal: str | None = CLIENT, port: int = 8080) -> bool:
    """Whether the request gets through RBAC on the chain a caller with that identity lands on."""
    inbound = ev.inbound_listener(config, 8080)
    chain = ev.filter_chain(inbound, MUTUAL_TLS if principal else PLAINTEXT)
    assert chain is not None
    names = ev.http_filter_names(chain)
    assert names[-1] == "envoy.filters.http.router"
    return ev.rbac_allows(chain, request, ev.Caller(principal, port))


GET = ev.Request("echo", "/public/x")


def test_no_policy_allows_everything() -> None:
    config = echo_config()["echo"]
    assert allowed(config, GET) and allowed(config, GET, principal=None)
    assert allowed(config, ev.Request("echo", "/admin", method="DELETE"), OTHER)


def test_allow_nothing_denies_every_request_even_from_verified_callers() -> None:
    configs = echo_config(policy("{selector: {matchLabels: {app: echo}}}"))
    assert not allowed(configs["echo"], GET, CLIENT)
    assert not allowed(configs["echo"], GET, principal=None)
    assert allowed(configs["other"], GET), "a policy selecting echo leaves other workloads alone"


def test_allow_with_an_empty_rule_allows_everything() -> None:
    config = echo_config(policy("{action: ALLOW, rules: [{}]}"))["echo"]
    assert allowed(config, GET, None) and allowed(config, ev.Request("echo", "/x", method="POST"), OTHER)


ALLOW_CLIENT_GET = policy("""
  selector: {matchLabels: {app: echo}}
  action: ALLOW
  rules:
  - from: [{source: {principals: ["cluster.local/ns/default/sa/client"]}}]
    to: [{operation: {methods: ["GET"], paths: ["/public*"]}}]""")


@pytest.mark.parametrize(("request_", "principal", "expected"), [
    (GET, CLIENT, True),
    (ev.Request("echo", "/public"), CLIENT, True),
    (ev.Request("echo", "/public/x?y=1"), CLIENT, True),
    (ev.Request("echo", "/public/x", method="POST"), CLIENT, False),
    (ev.Request("echo", "/private"), CLIENT, False),
    (GET, OTHER, False),
    (GET, FOREIGN, False),
    (GET, None, False),
], ids=["get-public", "exact-prefix", "query-ignored", "wrong-method", "wrong-path", "other-sa", "other-ns",
        "plaintext-has-no-principal"])
def test_allow_rule_needs_source_and_operation(request_: ev.Request, principal: str | None, expected: bool) -> None:
    assert allowed(echo_config(ALLOW_CLIENT_GET)["echo"], request_, principal) is expected


DENY_ADMIN_ALLOW_ALL = policy("""
  action: DENY
  rules: [{to: [{operation: {paths: ["/admin*"]}}]}]""", "deny") + policy("{rules: [{}]}", "allow")


def test_deny_is_evaluated_before_allow() -> None:
    config = echo_config(DENY_ADMIN_ALLOW_ALL)["echo"]
    assert not allowed(config, ev.Request("echo", "/admin/users"))
    assert not allowed(config, ev.Request("echo", "/admin"), None)
    assert allowed(config, ev.Request("echo", "/status"))


def test_deny_filter_comes_before_allow_filter() -> None:
    """Istio evaluates DENY before ALLOW (AuthorizationPolicy reference, 'Authorization Policy' evaluation order);
    with one RBAC filter per action both orders reach the same verdicts, so the order itself is checked."""
    config = echo_config(DENY_ADMIN_ALLOW_ALL)["echo"]
    chain = ev.filter_chain(ev.inbound_listener(config, 8080), MUTUAL_TLS)
    assert chain is not None
    actions = [f["rules"]["action"] for f in ev.rbac_filters(chain)]
    assert actions == ["DENY", "ALLOW"]


def test_deny_without_allow_lets_everything_else_through() -> None:
    config = echo_config(policy("{action: DENY, rules: [{from: [{source: {notNamespaces: [default]}}]}]}"))["echo"]
    assert allowed(config, GET, CLIENT)
    assert not allowed(config, GET, FOREIGN)
    assert not allowed(config, GET, None), "plaintext has no namespace, so it is 'not in default'"


@pytest.mark.parametrize(("source", "allowed_callers", "denied_callers"), [
    ('{principals: ["cluster.local/ns/default/sa/*"]}', [CLIENT, OTHER], [FOREIGN, None]),
    ('{principals: ["*/sa/client"]}', [CLIENT, FOREIGN], [OTHER, None]),
    ('{principals: ["*"]}', [CLIENT, FOREIGN], [None]),
    ("{namespaces: [default]}", [CLIENT, OTHER], [FOREIGN, None]),
    ('{namespaces: ["f*"]}', [FOREIGN], [CLIENT, None]),
    ('{notPrincipals: ["cluster.local/ns/default/sa/other"]}', [CLIENT, FOREIGN, None], [OTHER]),
    ('{principals: ["cluster.local/ns/default/sa/client"], namespaces: [far]}', [], [CLIENT, FOREIGN]),
], ids=["principal-prefix", "principal-suffix", "any-principal", "namespace", "namespace-prefix", "not-principal",
        "fields-of-a-source-are-anded"])
def test_source_matching(source: str, allowed_callers: list[str | None], denied_callers: list[str | None]) -> None:
    config = echo_config(policy(f"{{rules: [{{from: [{{source: {source}}}]}}]}}"))["echo"]
    for caller in allowed_callers:
        assert allowed(config, GET, caller), caller
    for caller in denied_callers:
        assert not allowed(config, GET, caller), caller


@pytest.mark.parametrize(("operation", "allowed_requests", "denied_requests"), [
    ('{paths: ["/exact"]}', ["/exact"], ["/exact/x", "/other"]),
    ('{paths: ["*.png"]}', ["/img/a.png"], ["/img/a.jpg"]),
    ('{notPaths: ["/admin*"]}', ["/public"], ["/admin/x"]),
    ('{methods: ["GET", "HEAD"]}', ["GET /x", "HEAD /x"], ["POST /x"]),
    ('{notMethods: ["DELETE"]}', ["GET /x"], ["DELETE /x"]),
    ('{ports: ["8080"]}', ["GET /x"], []),
    ('{ports: ["9090"]}', [], ["GET /x"]),
    ('{hosts: ["echo.default.svc.cluster.local"]}', ["GET echo.default.svc.cluster.local /x"], ["GET echo /x"]),
    ('{hosts: ["*.svc.cluster.local"]}', ["GET echo.default.svc.cluster.local /x"], ["GET example.com /x"]),
], ids=["exact-path", "suffix-path", "not-paths", "methods", "not-methods", "port-match", "port-mismatch",
        "host", "host-suffix"])
def test_operation_matching(operation: str, allowed_requests: list[str], denied_requests: list[str]) -> None:
    config = echo_config(policy(f"{{rules: [{{to: [{{operation: {operation}}}]}}]}}"))["echo"]

    def request(text: str) -> ev.Request:
        parts = text.split()
        if len(parts) == 1:
            return ev.Request("echo", parts[0])
        if len(parts) == 2:
            return ev.Request("echo", parts[1], method=parts[0])
        return ev.Request(parts[1], parts[2], method=parts[0])

    for text in allowed_requests:
        assert allowed(config, request(text)), text
    for text in denied_requests:
        assert not allowed(config, request(text)), text


def test_operation_hosts_match_case_insensitively() -> None:
    """istio.io AuthorizationPolicy reference, Operation.hosts: 'The match is case-insensitive'; istiod builds the
    :authority matcher with ignore_case (pilot/pkg/security/authz/matcher/header.go HostMatcher), port included."""
    config = echo_config(policy('{rules: [{to: [{operation: {hosts: ["Echo.Example.COM", "*.Test:8080"], '
                                'notHosts: ["Bad.Test*"]}}]}]}'))["echo"]
    assert allowed(config, ev.Request("echo.example.com", "/x"))
    assert allowed(config, ev.Request("api.test:8080", "/x"))
    assert not allowed(config, ev.Request("api.test", "/x")), "the port is part of the Host matched"
    assert not allowed(config, ev.Request("bad.test:8080", "/x")), "notHosts ignore case too"


def test_rules_are_alternatives_and_a_rule_needs_every_part() -> None:
    config = echo_config(policy("""
  rules:
  - to: [{operation: {paths: ["/a"]}}]
  - from: [{source: {principals: ["cluster.local/ns/default/sa/other"]}}]
    to: [{operation: {paths: ["/b"]}}]"""))["echo"]
    assert allowed(config, ev.Request("echo", "/a"), CLIENT)
    assert allowed(config, ev.Request("echo", "/b"), OTHER)
    assert not allowed(config, ev.Request("echo", "/b"), CLIENT)


def test_root_namespace_policies_apply_mesh_wide_and_other_namespaces_do_not() -> None:
    mesh_wide = echo_config(policy("{}", namespace="istio-system"))
    assert not allowed(mesh_wide["echo"], GET) and not allowed(mesh_wide["other"], GET)
    elsewhere = echo_config(policy("{}", namespace="far"))
    assert allowed(elsewhere["echo"], GET)


def test_rbac_guards_both_the_mutual_tls_and_the_plaintext_chain() -> None:
    config = echo_config(policy("{selector: {matchLabels: {app: echo}}}"))["echo"]
    inbound = ev.inbound_listener(config, 8080)
    for connection in (MUTUAL_TLS, PLAINTEXT):
        chain = ev.filter_chain(inbound, connection)
        assert chain is not None
        names = ev.http_filter_names(chain)
        assert any("rbac" in n for n in names)
        assert max(i for i, n in enumerate(names) if "rbac" in n) < names.index("envoy.filters.http.router")


# ---------------------------------------------------------------- RequestAuthentication and requestPrincipals

REQUEST_AUTHENTICATION = """
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: default}
spec:
  selector: {matchLabels: {app: echo}}
  jwtRules: [{issuer: "https://issuer.test", jwks: '{"keys": []}'}]
---
"""


def _http_filters(config: ProxyConfig) -> list[dict]:
    chain = ev.filter_chain(ev.inbound_listener(config, 8080), MUTUAL_TLS)
    assert chain is not None
    return list(chain["filters"][0]["typed_config"]["http_filters"])


def test_jwt_verification_comes_before_rbac_and_lets_a_missing_token_through() -> None:
    configs = echo_config(REQUEST_AUTHENTICATION, policy("{rules: [{from: [{source: {requestPrincipals: ['*']}}]}]}"))
    names = [f["name"] for f in _http_filters(configs["echo"])]
    assert names.index("envoy.filters.http.jwt_authn") < names.index("envoy.filters.http.rbac.allow")
    jwt = _http_filters(configs["echo"])[0]["typed_config"]
    [provider] = jwt["providers"].values()
    assert provider["issuer"] == "https://issuer.test" and provider["forward"] is False
    assert provider["payload_in_metadata"] == "https://issuer.test"
    assert {"allow_missing": {}} in jwt["rules"][0]["requires"]["requires_any"]["requirements"]
    assert "envoy.filters.http.jwt_authn" not in [f["name"] for f in _http_filters(configs["other"])]


def test_request_principal_is_issuer_and_subject_of_the_verified_token() -> None:
    configs = echo_config(REQUEST_AUTHENTICATION,
                          policy("{rules: [{from: [{source: {requestPrincipals: ['https://issuer.test/alice']}}]}]}"))
    rbac = next(f for f in _http_filters(configs["echo"]) if f["name"] == "envoy.filters.http.rbac.allow")
    [rule] = rbac["typed_config"]["rules"]["policies"].values()
    matcher = rule["principals"][0]["or_ids"]["ids"][0]["and_ids"]["ids"][0]["or_ids"]["ids"][0]["or_ids"]["ids"][0]
    assert matcher == {"metadata": {"filter": "envoy.filters.http.jwt_authn",
                                    "path": [{"key": "https://issuer.test"}, {"key": "sub"}],
                                    "value": {"string_match": {"exact": "alice"}}}}
