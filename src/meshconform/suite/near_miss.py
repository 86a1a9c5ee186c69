"""Near misses for VirtualService matches: for each match of a rule, the input that matches and the
closest inputs that do not (or, by Istio's documented rules, surprisingly do), with the route Istio
would pick for each.

The expectation is computed from Istio's documented semantics (facts/bookinfo-istio.md, "HTTPMatchRequest";
istio.io VirtualService reference, StringMatch), never from a translator:
- `exact` is string equality, `prefix` a plain string prefix (a sidecar or Istio-Gateway VirtualService's
  `prefix: /a` also matches `/ab`), `regex` is RE2 and must match the whole value (Envoy safe_regex);
  all are case-sensitive; `ignoreUriCase` relaxes only uri exact and prefix.
- uri is matched against the path without its query string; a header or query parameter that is absent
  does not match; an empty StringMatch on a header is a presence check, as is regex `*`; for `withoutHeaders`
  a missing header counts as "" (istiod sets Envoy's treat_missing_header_as_empty: route_test.go), so a
  request without it matches the block.
- the conditions of one match block are ANDed, the blocks of a rule ORed, and the first rule that
  matches wins; no matching rule (or no virtual host for the Host) is a 404.
- hosts: `*.example.com` matches any name ending in `.example.com` (one or more labels in front) and
  neither `example.com` nor `badexample.com`; the most specific host wins (exact, then the longest
  wildcard), as Envoy's virtual host selection does."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from urllib.parse import parse_qsl, urlencode, urlsplit

from meshconform.meshapi.istio import HTTPMatchRequest, StringMatch, VirtualService
from meshconform.platform.api import Vantage
from meshconform.traffic.model import Request

NO_ROUTE = "404"
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})


@dataclass(frozen=True)
class Probe:
    """One request, why it was chosen, and the route Istio's semantics pick for it (`NO_ROUTE` for none)."""

    label: str
    request: Request
    expected: str = ""


def string_matches(match: StringMatch, value: str | None, ignore_case: bool = False) -> bool:
    """Istio's StringMatch on one value (None: absent)."""
    if value is None:
        return False
    if match.is_presence or match.regex == "*":
        return True
    if match.exact is not None:
        return value.lower() == match.exact.lower() if ignore_case else value == match.exact
    if match.prefix is not None:
        return value.lower().startswith(match.prefix.lower()) if ignore_case else value.startswith(match.prefix)
    assert match.regex is not None
    return re.fullmatch(match.regex, value) is not None  # RE2 and Python agree on the regexes the suite uses


def host_matches(pattern: str, host: str) -> bool:
    """A VirtualService or Gateway host against a request's Host (port stripped): exact, `*`, or a
    left-most wildcard label that needs at least one character and the dot boundary."""
    host = host.rsplit(":", 1)[0] if ":" in host and not host.endswith("]") else host
    if pattern == "*" or pattern.lower() == host.lower():
        return True
    if pattern.startswith("*."):
        suffix = pattern[1:].lower()
        return host.lower().endswith(suffix) and len(host) > len(suffix)
    return False


def _specificity(pattern: str) -> tuple[int, int]:
    """Envoy picks the exact domain first, then the longest suffix wildcard, then `*`."""
    if pattern == "*":
        return (0, 0)
    return (1, len(pattern)) if pattern.startswith("*") else (2, len(pattern))


def match_applies(match: HTTPMatchRequest, request: Request, authority: str) -> bool:
    parts = urlsplit(request.path)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    headers = {k.lower(): v for k, v in request.headers.items()}
    checks = [
        match.uri is None or string_matches(match.uri, parts.path, match.ignore_uri_case),
        match.method is None or string_matches(match.method, request.method),
        match.authority is None or string_matches(match.authority, authority),
        match.scheme is None or string_matches(match.scheme, request.scheme),
        all(string_matches(m, headers.get(name.lower())) for name, m in match.headers.items()),
        not any(string_matches(m, headers.get(name.lower(), None if m.is_presence else ""))
                for name, m in match.without_headers.items()),
        all(string_matches(m, query.get(name)) for name, m in match.query_params.items()),
    ]
    return all(checks)


def route_for(services: Sequence[VirtualService], request: Request, authority: str,
              server_hosts: Sequence[str] = ("*",)) -> str:
    """The name of the rule Istio picks: the most specific VirtualService host, then the first rule
    whose match applies. `server_hosts` are a Gateway's (a Host none of them admits gets 404)."""
    if not any(host_matches(h, authority) for h in server_hosts):
        return NO_ROUTE
    candidates = [(pattern, vs) for vs in services for pattern in vs.spec.hosts if host_matches(pattern, authority)]
    if not candidates:
        return NO_ROUTE
    best = max(_specificity(p) for p, _ in candidates)
    vs = next(vs for p, vs in candidates if _specificity(p) == best)
    for index, rule in enumerate(vs.spec.http):
        if not rule.match or any(match_applies(m, request, authority) for m in rule.match):
            return rule.name or f"{vs.metadata.name}.{index}"
    return NO_ROUTE


def value_variants(match: StringMatch, example: str | None, *, path: bool = False,
                   case_variant: bool = True) -> list[tuple[str, str]]:
    """(label, value): a value that matches `match`, then its closest neighbours. `example` is needed
    for a regex (a value it matches in full). For paths, variants stay paths."""
    front = "/x" if path else "x"
    if match.exact is not None:
        e = match.exact
        out = [("the exact value", e), ("starts with the exact value", e + "x"),
               ("the exact value one character short", e[:-1]), ("ends with the exact value", front + e)]
        if path:
            out += [("the exact path and a trailing slash", e + "/"), ("the exact path and a query", e + "?q=1")]
    elif match.prefix is not None:
        p = match.prefix
        out = [("the prefix itself", p), ("the prefix and more, no boundary", p + "more"),
               ("the prefix one character short", p[:-1]), ("contains the prefix, not at the start", front + p)]
    elif match.regex is not None:
        if example is None or re.fullmatch(match.regex, example) is None:
            raise ValueError(f"regex {match.regex!r} needs an example it matches in full (got {example!r})")
        out = [("a value the regex matches in full", example),
               ("contains a full match, with a character in front", front + example),
               ("a full match and a character after", example + "x")]
        if path:
            out.append(("a full match and a query", example + "?q=1"))
    else:
        return [("any value (presence)", example or "present")]
    if case_variant:
        source = out[0][1]
        out.append(("a case variant", source.swapcase()))
    return [(label, value) for label, value in out if value]


def near_misses(match: HTTPMatchRequest, base: Request,
                examples: Mapping[str, str] | None = None) -> list[Probe]:
    """Probes around one match block: `base` is a request that reaches this VirtualService but none of
    its matching rules; each probe sets one field of `match` to a value from `value_variants`, keeping
    the other fields of the block satisfied. `examples` gives a full match for each regex, by regex.
    Expected routes are not set here: give the probes to `expect`."""
    examples = examples or {}
    satisfied = _satisfy(match, base, examples)
    probes: list[Probe] = []

    def add(label: str, request: Request) -> None:
        probes.append(Probe(label, request))

    if match.uri is not None:
        query = urlsplit(satisfied.path).query
        for label, value in value_variants(match.uri, examples.get(match.uri.regex or ""), path=True):
            add(f"uri {label}: {value}", replace(satisfied, path=value if "?" in value or not query
                                                 else f"{value}?{query}"))
    for name, m in match.headers.items():
        for label, value in value_variants(m, examples.get(m.regex or "")):
            add(f"header {name} {label}: {value}", replace(satisfied, headers={**satisfied.headers, name: value}))
        without = {k: v for k, v in satisfied.headers.items() if k != name}
        add(f"header {name} missing", replace(satisfied, headers=without))
        add(f"the value under another header ({name}-other)",
            replace(satisfied, headers={**without, f"{name}-other": satisfied.headers[name]}))
    for name, m in match.without_headers.items():
        # The block holds while the header is absent; each value near the forbidden one is sent as that header.
        for label, value in value_variants(m, examples.get(m.regex or "")):
            add(f"withoutHeaders {name} {label}: {value}",
                replace(satisfied, headers={**satisfied.headers, name: value}))
    for name, m in match.query_params.items():
        parts = urlsplit(satisfied.path)
        params = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != name]
        for label, value in value_variants(m, examples.get(m.regex or "")):
            add(f"query {name} {label}: {value}",
                replace(satisfied, path=f"{parts.path}?{urlencode([*params, (name, value)])}"))
        add(f"query {name} missing", replace(satisfied, path=f"{parts.path}?{urlencode(params)}" if params
                                             else parts.path))
        add(f"the value under another query parameter ({name}x)",
            replace(satisfied, path=f"{parts.path}?{urlencode([*params, (name + 'x', _value_of(m, examples))])}"))
    if match.authority is not None:
        # No case variant: a Host is a DNS name, and proxies may normalise its case before matching.
        for label, value in value_variants(match.authority, examples.get(match.authority.regex or ""),
                                           case_variant=False):
            # A prefix is put in front of the base host, so the variants stay under the same virtual host.
            host = value + (base.host or "") if match.authority.prefix is not None else value
            add(f"authority {label}: {host}", replace(satisfied, host=host))
    if match.method is not None:
        # Methods are tokens a client library may normalise: no case variants, and only real methods.
        for label, value in value_variants(match.method, examples.get(match.method.regex or ""), case_variant=False):
            if value in HTTP_METHODS:
                add(f"method {label}: {value}", replace(satisfied, method=value))
        for other in sorted(m for m in HTTP_METHODS if not string_matches(match.method, m))[:2]:
            add(f"another method: {other}", replace(satisfied, method=other))
    if match.scheme is not None:
        add(f"scheme {_value_of(match.scheme, examples)}", satisfied)  # a vantage sends one scheme: no variants
    return probes


def _value_of(match: StringMatch, examples: Mapping[str, str]) -> str:
    if match.exact is not None:
        return match.exact
    if match.prefix is not None:
        return match.prefix
    if match.regex is not None and match.regex != "*":
        if match.regex not in examples:
            raise ValueError(f"regex {match.regex!r} needs an example it matches in full")
        return examples[match.regex]
    return "present"


def _method_of(match: StringMatch, examples: Mapping[str, str]) -> str:
    """A real HTTP method the match accepts (a prefix such as 'PO' is not one itself)."""
    value = _value_of(match, examples)
    if value in HTTP_METHODS:
        return value
    accepted = sorted(m for m in HTTP_METHODS if string_matches(match, m))
    if not accepted:
        raise ValueError(f"method match {match} accepts none of {sorted(HTTP_METHODS)}")
    return accepted[0]


def _satisfy(match: HTTPMatchRequest, base: Request, examples: Mapping[str, str]) -> Request:
    """`base` changed so that every field of `match` holds (the matching input)."""
    request = base
    if match.uri is not None:
        request = replace(request, path=_value_of(match.uri, examples))
    if match.headers:
        request = replace(request, headers={**request.headers,
                                            **{n: _value_of(m, examples) for n, m in match.headers.items()}})
    if match.query_params:
        query = urlencode([(n, _value_of(m, examples)) for n, m in match.query_params.items()])
        request = replace(request, path=f"{urlsplit(request.path).path}?{query}")
    if match.method is not None:
        request = replace(request, method=_method_of(match.method, examples))
    if match.authority is not None:
        value = _value_of(match.authority, examples)
        request = replace(request, host=value + (base.host or "") if match.authority.prefix is not None else value)
    return request


def host_variants(pattern: str) -> list[tuple[str, str]]:
    """(label, Host) around a VirtualService or Gateway host: for `*.example.com`, a name under it,
    one two labels deep, the bare domain and names that end like it without the dot boundary."""
    if not pattern.startswith("*."):
        return [("the exact host", pattern), ("starts with the host", pattern + "x"),
                ("ends with the host", "x" + pattern)]
    suffix = pattern[2:]
    return [("one label under the wildcard", f"a.{suffix}"), ("two labels under the wildcard", f"a.b.{suffix}"),
            ("the bare domain of the wildcard", suffix),
            ("ends like the wildcard, no dot boundary", f"bad{suffix}"),
            ("the domain and a character in front, no dot", f"x{suffix}")]


def expect(probes: Sequence[Probe], services: Sequence[VirtualService],
           server_hosts: Sequence[str] = ("*",)) -> list[Probe]:
    """The probes with their expected route (see `route_for`); a probe's authority is its request's host."""
    return [replace(p, expected=route_for(services, p.request, p.request.host or "", server_hosts))
            for p in probes]


ROUTE_HEADER = "x-meshconform-route"  # set by each rule of a near-miss manifest to the rule's name
REPEATS = 3  # a rule is deterministic; repeats catch a proxy that answers one request differently from the next


def wrong_routes(vantage: Vantage, probes: Sequence[Probe]) -> list[str]:
    """Send every probe REPEATS times; one line per probe whose replies did not all take its expected
    route (read from ROUTE_HEADER; a reply without it counts as its status, e.g. "404")."""
    replies = vantage.send([p.request for p in probes for _ in range(REPEATS)], concurrency=10)
    wrong = []
    for index, probe in enumerate(probes):
        seen = {r.headers.get(ROUTE_HEADER) or str(r.status or r.error)
                for r in replies[REPEATS * index:REPEATS * (index + 1)]}
        if seen != {probe.expected}:
            request = probe.request
            wrong.append(f"{probe.label} ({request.method} {request.host} {request.path} {request.headers}): "
                         f"expected {probe.expected}, got {sorted(seen)}")
    return wrong
