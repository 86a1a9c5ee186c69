"""The evaluator the other tests judge by: its semantics checked against examples from Envoy's API docs
(route_components.proto HeaderMatcher and VirtualHost.domains, listener_components.proto FilterChainMatch,
cluster.proto transport_socket_matches, rbac.proto), so a lenient view cannot hide a broken translator."""

from __future__ import annotations

from tests.translator import envoy_view as ev


def test_header_matcher_invert_and_missing_header() -> None:
    regex = {"name": "x", "string_match": {"safe_regex": {"regex": r"\d{3}"}}}
    assert not ev.header_matches(regex, ev.Request("h", headers={"x": "1234"}))
    assert ev.header_matches({**regex, "invert_match": True}, ev.Request("h", headers={"x": "1234"}))
    assert not ev.header_matches({**regex, "invert_match": True}, ev.Request("h")), \
        "a missing header fails a value match even when inverted"
    assert ev.header_matches({**regex, "invert_match": True, "treat_missing_header_as_empty": True}, ev.Request("h"))
    present = {"name": "x", "present_match": True}
    assert ev.header_matches(present, ev.Request("h", headers={"x": ""}))
    assert not ev.header_matches(present, ev.Request("h"))
    assert ev.header_matches({**present, "invert_match": True}, ev.Request("h"))


def test_route_match_path_specifiers() -> None:
    assert ev.route_matches({"prefix": "/a"}, ev.Request("h", "/ab?x"))
    assert not ev.route_matches({"path": "/a"}, ev.Request("h", "/a/"))
    assert ev.route_matches({"path": "/a", "case_sensitive": False}, ev.Request("h", "/A?q=1"))
    assert not ev.route_matches({"safe_regex": {"regex": "/a+"}}, ev.Request("h", "/aab"))
    assert ev.route_matches({"safe_regex": {"regex": "/a+"}, "case_sensitive": False}, ev.Request("h", "/aa"))
    assert ev.route_matches({"path_separated_prefix": "/api"}, ev.Request("h", "/api/x"))
    assert not ev.route_matches({"path_separated_prefix": "/api"}, ev.Request("h", "/apix"))
    query = {"prefix": "/", "query_parameters": [{"name": "a", "string_match": {"exact": "1"}}]}
    assert ev.route_matches(query, ev.Request("h", "/?a=1&a=2"))
    assert not ev.route_matches(query, ev.Request("h", "/?a=2&a=1")), "the first value counts"


def test_virtual_host_search_order() -> None:
    config = {"virtual_hosts": [{"name": n, "domains": [d]} for n, d in (
        ("any", "*"), ("prefix", "foo.*"), ("suffix", "*.foo.com"), ("longer", "*.bar.foo.com"),
        ("exact", "www.foo.com"))]}

    def pick(host: str) -> str:
        vhost = ev.virtual_host(config, host)
        assert vhost is not None
        return str(vhost["name"])

    assert pick("www.foo.com") == "exact"
    assert pick("WWW.FOO.COM") == "exact"
    assert pick("a.bar.foo.com") == "longer"
    assert pick("a.foo.com") == "suffix"
    assert pick("foo.org") == "prefix"
    assert pick("other") == "any"


def test_weighted_shares_and_timeouts() -> None:
    route = {"route": {"weighted_clusters": {"clusters": [{"name": "a", "weight": 1}, {"name": "b", "weight": 3}]}}}
    assert ev.cluster_shares(route) == {"a": 0.25, "b": 0.75}
    assert ev.route_timeout({"route": {"cluster": "a"}}) == 15.0, "Envoy's default route timeout"
    assert ev.route_timeout({"route": {"cluster": "a", "timeout": "0s"}}) is None
    assert ev.share({"numerator": 25}) == 0.25, "FractionalPercent defaults to HUNDRED"


def test_filter_chain_selection() -> None:
    inspector = [{"name": "envoy.filters.listener.tls_inspector"}]
    tls_chain = {"name": "tls", "filter_chain_match": {"transport_protocol": "tls"}}
    plain_chain = {"name": "plain"}
    both = {"listener_filters": inspector, "filter_chains": [tls_chain, plain_chain]}
    assert ev.filter_chain(both, ev.Connection(tls=True)) is tls_chain
    assert ev.filter_chain(both, ev.Connection()) is plain_chain
    blind = {"filter_chains": [tls_chain, plain_chain]}
    assert ev.filter_chain(blind, ev.Connection(tls=True)) is plain_chain, "TLS is not seen without the inspector"
    only_tls = {"listener_filters": inspector, "filter_chains": [tls_chain]}
    assert ev.filter_chain(only_tls, ev.Connection()) is None
    sni = {"listener_filters": inspector, "filter_chains": [
        {"name": "a", "filter_chain_match": {"server_names": ["a.example.com"]}},
        {"name": "wild", "filter_chain_match": {"server_names": ["*.example.com"]}}]}
    assert ev.filter_chain(sni, ev.Connection(tls=True, sni="a.example.com"))["name"] == "a"  # type: ignore[index]
    assert ev.filter_chain(sni, ev.Connection(tls=True, sni="b.example.com"))["name"] == "wild"  # type: ignore[index]
    assert ev.filter_chain(sni, ev.Connection(tls=True, sni="example.org")) is None


def test_transport_socket_matches() -> None:
    tls = {"name": "tls", "typed_config": {"@type": ev.UPSTREAM_TLS}}
    cluster = {"transport_socket_matches": [{"name": "istio", "match": {"tlsMode": "istio"}, "transport_socket": tls}],
               "transport_socket": {"name": "raw", "typed_config": {"@type": "raw"}}}
    labelled = ev.Endpoint("1.1.1.1", 1, {"filter_metadata": {"envoy.transport_socket_match": {"tlsMode": "istio"}}})
    bare = ev.Endpoint("1.1.1.2", 1, {})
    assert ev.upstream(cluster, labelled).tls
    assert not ev.upstream(cluster, bare).tls, "no match: the cluster's own transport_socket"


def test_rbac_semantics() -> None:
    def chain(*configs: dict) -> dict:
        filters = [{"name": f"rbac{i}", "typed_config": {"@type": "x.envoy.extensions.filters.http.rbac.v3.RBAC", **c}}
                   for i, c in enumerate(configs)]
        return {"filters": [{"name": "envoy.filters.network.http_connection_manager",
                             "typed_config": {"http_filters": filters}}]}

    request, anyone = ev.Request("h", "/x"), ev.Caller(None)
    assert not ev.rbac_allows(chain({"rules": {"action": "ALLOW"}}), request, anyone), "ALLOW without policies"
    assert ev.rbac_allows(chain({"rules": {"action": "DENY"}}), request, anyone)
    assert ev.rbac_allows(chain({}), request, anyone), "no rules: shadow/none, enforces nothing"
    admin = {"permissions": [{"url_path": {"path": {"prefix": "/admin"}}}], "principals": [{"any": True}]}
    deny_admin = {"rules": {"action": "DENY", "policies": {"a": admin}}}
    assert not ev.rbac_allows(chain(deny_admin), ev.Request("h", "/admin/x"), anyone)
    verified = {"permissions": [{"any": True}],
                "principals": [{"authenticated": {"principal_name": {"exact": "spiffe://td/ns/a/sa/b"}}}]}
    allow_b = chain({"rules": {"action": "ALLOW", "policies": {"b": verified}}})
    assert ev.rbac_allows(allow_b, request, ev.Caller("spiffe://td/ns/a/sa/b"))
    assert not ev.rbac_allows(allow_b, request, anyone), "plaintext has no authenticated principal"
