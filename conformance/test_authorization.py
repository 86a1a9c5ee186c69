"""AuthorizationPolicy: ALLOW and DENY rules on sidecars, judged from both kinds of caller."""

from __future__ import annotations

import secrets
from collections import Counter

import pytest

from meshconform.suite.checks import wait_for, wait_for_all
from meshconform.suite.failures import assert_failed_as
from meshconform.suite.jwt import JwtIssuer, unverifiable_token
from meshconform.suite.unit import conformance_test, deferred
from meshconform.traffic.model import Request, Response

DENIED_BODY = "RBAC: access denied"
ECHO = [("default", "echo-v1"), ("default", "echo-v2")]
OUTSIDE_DEFAULT = "optin/client"  # a meshed caller outside namespace default (bookinfo/manifests/testbed.yaml)
MIXED_CASE_HOST = "Echo:8080"  # sent exactly so (Request.host keeps its case on every platform)


def _rbac_denied(platform, replies, timeouts, what: str) -> dict[str, int]:
    """The 403s were RBAC's own, at echo's inbound proxy (details rbac_access_denied...)."""
    return assert_failed_as(platform, ECHO, replies, timeouts, 403, details_prefix="rbac_access_denied",
                            direction="inbound", what=what)


def _denied(reply) -> bool:
    return reply.status == 403 and DENIED_BODY in reply.body


@conformance_test("authz-allow-nothing", "An ALLOW policy with no rules on echo denies every request to echo with "
                  "403 'RBAC: access denied'; other workloads are unaffected.", features={"Authorization"},
                  parallel=False, manifests=("authorization/allow-nothing.yaml",))
def test_allow_nothing(mesh_platform, mesh_meshed_client, mesh_timeouts, mesh_result) -> None:
    wait_for(mesh_meshed_client, Request("/probe", host="echo:8080"), _denied, mesh_timeouts, "allow-nothing denies")
    to_echo = mesh_meshed_client.send([Request(f"/any/{i}", host="echo:8080") for i in range(20)])
    elsewhere = mesh_meshed_client.send([Request("/details/0", host="details:9080")] * 5)
    mesh_result.figure("echo_statuses", sorted({str(r.status) for r in to_echo}))
    assert all(_denied(r) for r in to_echo), [r.summary() for r in to_echo if not _denied(r)][:3]
    mesh_result.figure("echo_proxy_log", _rbac_denied(mesh_platform, to_echo, mesh_timeouts, "requests to echo"))
    assert all(r.status == 200 for r in elsewhere), [r.summary() for r in elsewhere][:3]


@conformance_test("authz-allow-rules", "ALLOW GET /public* and the exact /status-page from the meshed client's "
                  "principal: those pass, /status-page with a query string too; another method, another path, or a "
                  "caller without a sidecar (no mTLS identity) is denied. A DENY policy (paths '/admin*', the suffix "
                  "'*.secret' and the exact '/files/report') wins over an ALLOW that matches everything, with a "
                  "query string or without: '/files/key.secret?download=1' and '/files/report?format=pdf' are "
                  "denied; '/admi', '/files/key.secretx', '/files/secret' and '/files/open?name=.secret' (the "
                  "suffix only in the query) pass: paths are matched without the query. A DENY of any request "
                  "principal ('*') matches nothing where no RequestAuthentication validates tokens: a request with a "
                  "bearer token passes.", features={"Authorization"},
                  parallel=False,
                  manifests=("authorization/allow-client-get.yaml", deferred("authorization/deny-admin.yaml")))
def test_allow_and_deny_rules(mesh_platform, mesh_config, mesh_manifests, mesh_meshed_client,
                              mesh_unmeshed_client, mesh_timeouts, mesh_result) -> None:
    wait_for_all(mesh_meshed_client, [(Request("/public/probe", host="echo:8080"), lambda r: r.status == 200),
                                      (Request("/private/probe", host="echo:8080"), _denied)],
                 mesh_timeouts, "ALLOW rules apply")
    allowed, exact_with_query, wrong_method, wrong_path = mesh_meshed_client.send([
        Request("/public/1", host="echo:8080"), Request("/status-page?verbose=1", host="echo:8080"),
        Request("/public/1", host="echo:8080", method="POST", body="x"), Request("/private/1", host="echo:8080")])
    anonymous = mesh_unmeshed_client.send([Request("/public/1", host="echo.default:8080")])[0]
    mesh_result.figure("allow_rules", {"allowed": allowed.status, "exact_with_query": exact_with_query.status,
                                       "post": wrong_method.status, "other_path": wrong_path.status,
                                       "no_identity": anonymous.status})
    assert allowed.status == 200, allowed.summary()
    # Paths are matched without the query (istiod's RBAC url_path): the exact /status-page allows it with one.
    assert exact_with_query.status == 200, \
        f"ALLOW paths '/status-page' must allow /status-page?verbose=1: {exact_with_query.summary()}"
    _query_arrived(exact_with_query, "verbose=1")
    assert _denied(wrong_method) and _denied(wrong_path), (wrong_method.summary(), wrong_path.summary())
    assert _denied(anonymous), anonymous.summary()
    _rbac_denied(mesh_platform, [wrong_method, wrong_path, anonymous], mesh_timeouts, "requests ALLOW does not match")

    mesh_config.cleanup()  # the DENY policy comes with an ALLOW of everything, in place of the first one
    mesh_manifests.apply_deferred()
    wait_for_all(mesh_meshed_client, [(Request("/admin/probe", host="echo:8080"), _denied),
                                      (Request("/private/probe", host="echo:8080"), lambda r: r.status == 200)],
                 mesh_timeouts, "DENY applies, ALLOW-all elsewhere")
    admin, near_admin, other, secret, near_secret, bare_secret, secret_query, report_query, query_only = \
        mesh_meshed_client.send([
            Request("/admin/users", host="echo:8080"), Request("/admi", host="echo:8080"),  # '/admin*' and its miss
            Request("/private/1", host="echo:8080"),
            Request("/files/key.secret", host="echo:8080"),  # the suffix *.secret
            Request("/files/key.secretx", host="echo:8080"), Request("/files/secret", host="echo:8080"),  # near misses
            # Paths are matched without the query: a query string neither hides a denied path nor makes one.
            Request("/files/key.secret?download=1", host="echo:8080"),
            Request("/files/report?format=pdf", host="echo:8080"),
            Request("/files/open?name=.secret", host="echo:8080")])
    token_holder = mesh_meshed_client.send([Request("/token-holders/1", host="echo:8080",
                                                    headers={"authorization": f"Bearer {UNVERIFIED_TOKEN}"})])[0]
    mesh_result.figure("deny_rules", {"admin": admin.status, "prefix_near_miss": near_admin.status,
                                      "other": other.status, "suffix": secret.status,
                                      "suffix_near_misses": [near_secret.status, bare_secret.status],
                                      "with_query": {"suffix": secret_query.status, "exact": report_query.status,
                                                     "suffix_in_query_only": query_only.status},
                                      "request_principal_without_request_authentication": token_holder.status})
    assert _denied(admin), admin.summary()
    # Paths match exact, prefix `abc*`, suffix `*abc` or presence `*` (AuthorizationPolicy reference).
    assert _denied(secret), f"DENY paths '*.secret' must deny /files/key.secret: {secret.summary()}"
    not_denied = {r.path: r.summary() for r in (secret_query, report_query) if not _denied(r)}
    assert not not_denied, f"DENY paths ('*.secret', '/files/report') are matched without the query string, so " \
                           f"these must be denied: {not_denied}"
    _rbac_denied(mesh_platform, [admin, secret, secret_query, report_query], mesh_timeouts, "a request DENY matches")
    assert other.status == 200, other.summary()
    assert near_admin.status == 200, f"DENY paths '/admin*' is a prefix match: /admi must pass: {near_admin.summary()}"
    assert near_secret.status == 200 and bare_secret.status == 200, \
        f"'*.secret' is a suffix: /files/key.secretx and /files/secret must pass: " \
        f"{near_secret.summary()}; {bare_secret.summary()}"
    assert query_only.status == 200, \
        f"the path /files/open does not end in '.secret' (its query does): it must pass: {query_only.summary()}"
    _query_arrived(query_only, "name=.secret")
    assert token_holder.status == 200, (
        "DENY requestPrincipals ['*'] matches requests with a request principal, which only a token validated by a "
        "RequestAuthentication gives; echo has none, so a request with a bearer token must pass: "
        f"{token_holder.summary()}")


# A well-formed JWT that no RequestAuthentication on echo validates: it must give the request no request principal.
UNVERIFIED_TOKEN = unverifiable_token("https://unverified.meshconform.test", "someone")


def _query_arrived(reply: Response, query: str) -> None:
    """The query string reached the app as sent: the request the policy judged carried it."""
    seen = reply.echoed
    assert seen is not None and seen.query == query, \
        f"the app saw query {seen.query if seen else None!r}, not {query!r} as sent: {reply.summary()}"


@conformance_test("authz-negated-fields", "ALLOW from namespaces default and the suffix '*tin' (optin) but "
                  "notPrincipals '*/sa/ledger-reader' (a suffix), to port 8080 with notMethods DELETE and notPaths "
                  "/private*, hosts echo:8080 and echo.default.svc* but "
                  "notHosts echo.default.svc.cluster.local*; DENY /public/* from notNamespaces default and anything "
                  "to notPorts 8080: the meshed client's GET and POST pass, also to echo.default.svc:8080 and with "
                  "the Host in mixed case (Echo:8080, Echo.Default.Svc:8080: hosts match ignoring case); its DELETE, "
                  "its GET under /private, echo.default:8080 (not in hosts), echo.default.svc.cluster.local:8080 and "
                  "echo.default.svc.Cluster.Local:8080 (notHosts, ignoring case), the ledger-reader caller, the "
                  "meshed caller in optin to /public/* (notNamespaces) and a caller without a sidecar (no namespace "
                  "without mTLS) are denied by RBAC; optin's caller passes outside /public/*. A DENY of near misses, "
                  "each one character away: namespaces '*n' and principals '*n/sa/client' (suffixes) deny optin's "
                  "caller and spare default's; the exact namespaces 'opt' and 'xoptin' (near misses of optin) deny "
                  "no one.",
                  features={"Authorization"}, parallel=False, manifests=("authorization/allow-negated-fields.yaml",))
def test_negated_fields(mesh_platform, mesh_meshed_client, mesh_vantage, mesh_unmeshed_client,
                        mesh_timeouts, mesh_result) -> None:
    """Istio's AuthorizationPolicy reference: a rule matches when a source and an operation match; fields
    within one are ANDed, a not* field matches a value outside its list, `namespaces` is read from the peer
    certificate (so it needs mTLS), `ports` is the workload's port (facts/bookinfo-istio.md 4.5), `hosts`
    match the request's Host as sent (port included), ignoring case (RFC 4343; Istio's advisory
    GHSA-7774-7vr3-cc8j made case-sensitive host matching a policy bypass, fixed in 1.9.8/1.10.4/1.11.1; istiod's
    authz HostMatcher sets ignore_case). Any DENY that matches wins over ALLOW, so the DENY rules' not* fields
    decide whether the allowed requests pass, and the caller in optin, whom the ALLOW admits, meets
    notNamespaces from outside: denied on /public/*, allowed elsewhere."""
    wait_for_all(mesh_meshed_client, [(Request("/public/probe", host="echo:8080"), lambda r: r.status == 200),
                                      (Request("/private/probe", host="echo:8080"), _denied)],
                 mesh_timeouts, "the negated ALLOW applies")
    get, post, svc, mixed, mixed_svc, delete, private, short, fqdn, mixed_fqdn = mesh_meshed_client.send([
        Request("/public/1", host="echo:8080"), Request("/public/1", host="echo:8080", method="POST", body="x"),
        Request("/public/1", host="echo.default.svc:8080"),
        Request("/public/1", host=MIXED_CASE_HOST), Request("/public/1", host="Echo.Default.Svc:8080"),
        Request("/public/1", host="echo:8080", method="DELETE"), Request("/private/1", host="echo:8080"),
        Request("/public/1", host="echo.default:8080"),
        Request("/public/1", host="echo.default.svc.cluster.local:8080"),
        Request("/public/1", host="echo.default.svc.Cluster.Local:8080")])
    excluded = mesh_vantage("default/caller").send([Request("/public/1", host="echo:8080")])[0]
    outside, outside_open = mesh_vantage(OUTSIDE_DEFAULT).send([
        Request("/public/1", host="echo.default.svc:8080"), Request("/open/1", host="echo.default.svc:8080")])
    near = ("/near/namespace-suffix", "/near/namespace-exact", "/near/principal-suffix")
    near_default = mesh_meshed_client.send([Request(path, host="echo:8080") for path in near])
    near_optin = mesh_vantage(OUTSIDE_DEFAULT).send([Request(path, host="echo.default.svc:8080") for path in near])
    # A path outside the DENY's /public/* and a host inside `hosts`: only `namespaces` can deny it.
    anonymous = mesh_unmeshed_client.send([Request("/anon/1", host="echo.default.svc:8080")])[0]
    passing = {"GET": get, "POST": post, "echo.default.svc:8080 (hosts prefix)": svc,
               f"{MIXED_CASE_HOST} (hosts, ignoring case)": mixed,
               "Echo.Default.Svc:8080 (hosts prefix, ignoring case)": mixed_svc,
               f"{OUTSIDE_DEFAULT} to /open (namespaces; outside the DENY's paths)": outside_open,
               "default/client to /near/namespace-suffix (DENY namespaces '*n': default ends in t)": near_default[0],
               "default/client to /near/namespace-exact (DENY namespaces 'opt', 'xoptin')": near_default[1],
               "default/client to /near/principal-suffix (DENY principals '*n/sa/client')": near_default[2],
               f"{OUTSIDE_DEFAULT} to /near/namespace-exact (DENY namespaces 'opt', 'xoptin' are exact: not optin)":
                   near_optin[1]}
    refused = {"DELETE (notMethods)": delete, "/private (notPaths)": private,
               "echo.default:8080 (not in hosts)": short, "echo.default.svc.cluster.local:8080 (notHosts)": fqdn,
               "echo.default.svc.Cluster.Local:8080 (notHosts, ignoring case)": mixed_fqdn,
               "ledger-reader (notPrincipals)": excluded,
               f"{OUTSIDE_DEFAULT} to /public (DENY notNamespaces default)": outside,
               f"{OUTSIDE_DEFAULT} to /near/namespace-suffix (DENY namespaces '*n')": near_optin[0],
               f"{OUTSIDE_DEFAULT} to /near/principal-suffix (DENY principals '*n/sa/client')": near_optin[2],
               "no sidecar (namespaces needs mTLS)": anonymous}
    mesh_result.figure("statuses", {name: reply.status for name, reply in {**passing, **refused}.items()})
    not_passed = {name: reply.summary() for name, reply in passing.items() if reply.status != 200}
    assert not not_passed, f"not allowed (a DENY's not* fields or near misses, or hosts): {not_passed}"
    # The case-insensitive match was exercised only if the Host reached echo's proxy as sent.
    seen = (mixed.json() or {}).get("host")
    mesh_result.figure("mixed_case_host_at_echo", seen)
    assert seen == MIXED_CASE_HOST, f"echo saw Host {seen!r}, not {MIXED_CASE_HOST!r} as sent"
    wrong = {name: reply.summary() for name, reply in refused.items() if not _denied(reply)}
    assert not wrong, f"not denied: {wrong}"
    mesh_result.figure("echo_proxy_log", _rbac_denied(mesh_platform, list(refused.values()), mesh_timeouts,
                                                      "requests the negated ALLOW excludes"))


ROOT_MANIFEST = "authorization/root-namespace-policies.yaml"
ROOT_PER_CASE = 10


@pytest.fixture
def root_issuer() -> JwtIssuer:
    """The root namespace's RequestAuthentication issuer: a fresh name and key (in memory only)."""
    return JwtIssuer(f"https://root-issuer-{secrets.token_hex(4)}.meshconform.test")


@conformance_test("authz-root-namespace", "Policies in the root namespace (istio-system) whose selector names echo's "
                  "labels apply to echo in every namespace: the AuthorizationPolicy's DENY of /root-denied/* denies "
                  "it at echo in default and in optin (RBAC's 403), and the RequestAuthentication's issuer is "
                  "verified at echo in default (a token its keys did not sign gets 401, a signed one and no token "
                  "pass). A DENY in namespace optin with the same selector denies /optin-denied/* at optin's echo "
                  f"only; default's echo serves it ({ROOT_PER_CASE} requests a case, every one must agree).",
                  features={"Authorization", "JWTAuthentication"}, parallel=False, manifests=(ROOT_MANIFEST,),
                  values=lambda root_issuer: {"issuer": root_issuer.issuer, "jwks": root_issuer.jwks()})
def test_root_namespace_policies(mesh_platform, root_issuer, mesh_meshed_client, mesh_timeouts, mesh_result) -> None:
    """AuthorizationPolicy and RequestAuthentication references, `selector`: "If the policy is in the root
    namespace, the selector will additionally apply to the matching workloads in all namespaces". Only the root
    namespace's policies reach across: the one in optin stays there. The convergence probes are this config's own
    policies in default and optin, which a mesh ignoring the root namespace applies too, so such a mesh is judged on
    what it answers, not reported as never converging."""
    issuer = root_issuer
    wait_for_all(mesh_meshed_client, [(Request("/canary/probe", host="echo:8080"), _denied),
                                      (Request("/optin-denied/probe", host="echo.optin:8080"), _denied)],
                 mesh_timeouts, "this test's policies in force at echo in default and in optin")
    forged = {"authorization": f"Bearer {issuer.forger().token('alice')}"}
    signed = {"authorization": f"Bearer {issuer.token('alice')}"}
    cases = {  # name -> (request, expected status)
        "root DENY at echo in default": (Request("/root-denied/x", host="echo:8080"), 403),
        "root DENY at echo in optin": (Request("/root-denied/x", host="echo.optin:8080"), 403),
        "root jwtRules at echo in default, a token its keys did not sign": (
            Request("/open/forged", host="echo:8080", headers=forged), 401),
        "root jwtRules at echo in default, a signed token": (Request("/open/signed", host="echo:8080",
                                                                      headers=signed), 200),
        "root jwtRules at echo in default, no token": (Request("/open/none", host="echo:8080"), 200),
        "optin's DENY at echo in default": (Request("/optin-denied/x", host="echo:8080"), 200),
        "optin's DENY at echo in optin": (Request("/optin-denied/x", host="echo.optin:8080"), 403),
    }
    plan = [(name, request) for name, (request, _) in cases.items() for _ in range(ROOT_PER_CASE)]
    replies = mesh_meshed_client.send([request for _, request in plan], concurrency=10)
    by_case: dict[str, list[Response]] = {}
    for (name, _), reply in zip(plan, replies, strict=True):
        by_case.setdefault(name, []).append(reply)
    observed = {name: dict(Counter(str(r.status) for r in answers)) for name, answers in by_case.items()}
    mesh_result.figure("statuses", observed)  # statuses only: tokens never go into the report
    wrong = [f"{name}: expected {status}, got {observed[name]}" for name, (_, status) in cases.items()
             if observed[name] != {str(status): ROOT_PER_CASE}]
    assert not wrong, f"answers other than expected: {'; '.join(wrong)}"
    denied = [r for name, (_, status) in cases.items() if status == 403 for r in by_case[name]]
    assert all(_denied(r) for r in denied), [r.summary() for r in denied if not _denied(r)][:3]
    _rbac_denied(mesh_platform, by_case["root DENY at echo in default"], mesh_timeouts,
                 "requests the root namespace's DENY matches")
