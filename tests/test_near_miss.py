"""suite/near_miss.py states Istio's documented match semantics; these pin them, independent of any mesh."""

from __future__ import annotations

from meshconform.meshapi.istio import HTTPMatchRequest, StringMatch
from meshconform.suite.near_miss import host_matches, match_applies, near_misses, string_matches
from meshconform.traffic.model import Request


def test_string_match_semantics() -> None:
    assert string_matches(StringMatch(exact="a"), "a") and not string_matches(StringMatch(exact="a"), "ab")
    assert not string_matches(StringMatch(exact="a"), "A") and string_matches(StringMatch(exact="a"), "A", True)
    assert string_matches(StringMatch(prefix="/static"), "/staticfoo")  # plain string prefix, no segment boundary
    assert not string_matches(StringMatch(regex="b+"), "abb") and string_matches(StringMatch(regex="b+"), "bb")
    assert not string_matches(StringMatch(exact="a"), None)
    assert string_matches(StringMatch(), "anything")  # an empty StringMatch on a header: presence


def test_uri_ignores_query_and_case_flag_skips_regex() -> None:
    exact = HTTPMatchRequest(uri=StringMatch(exact="/p"))
    assert match_applies(exact, Request("/p?u=1"), "h")
    regex = HTTPMatchRequest.model_validate({"uri": {"regex": "/p[0-9]"}, "ignoreUriCase": True})
    assert not match_applies(regex, Request("/P1"), "h")


def test_wildcard_host_needs_dot_boundary() -> None:
    assert host_matches("*.example.com", "a.b.example.com") and host_matches("*.example.com", "a.example.com:80")
    assert not host_matches("*.example.com", "example.com") and not host_matches("*.example.com", "badexample.com")


def test_near_misses_cover_each_field_and_keep_the_rest_satisfied() -> None:
    match = HTTPMatchRequest.model_validate({"uri": {"prefix": "/q"}, "queryParams": {"k": {"exact": "v"}},
                                             "headers": {"h": {"regex": "a+"}}})
    probes = near_misses(match, Request("/none"), {"a+": "aa"})
    labels = " | ".join(p.label for p in probes)
    for expected in ("uri the prefix and more", "query k starts with the exact value", "header h missing",
                     "contains a full match, with a character in front", "a case variant"):
        assert expected in labels
    assert all(p.request.headers.get("h") == "aa" for p in probes if p.label.startswith("query"))
    assert sum(match_applies(match, p.request, "") for p in probes) >= 3  # matching inputs are there too

