"""Istio's simulation expectations, counted from its own test sources, so the fidelity figure's totals cannot drift.

The committed index (tests/fidelity/istio_expectations.yaml) lists every expectation of the four
`*_simulation_test.go` files at the pinned tag, one id each (`Test/subtest/.../call`, duplicate names numbered
`#01`, `#02` as `go test` does), with each file's SHA-256. The fidelity data test checks that every id is either
ported (tests/fidelity/cases) or out of scope for a refusal (tests/fidelity/out_of_scope.yaml), without a
checkout. With one, this tool recounts the index from the sources:

    python -m meshconform.fidelity.upstream --istio PATH/TO/istio            # check the committed index
    python -m meshconform.fidelity.upstream --istio PATH/TO/istio --write    # rewrite it

PATH/TO/istio is a checkout of the pinned tag (`git checkout 1.30.3`); a file whose SHA-256 differs is named
and nothing is written, as the counting rules below were read against those exact files.

Unit: one expectation is one simulated call and the outcome Istio asserts for it (`simulation.Expect`), one
virtual host asserted in a TestSidecarRoutes route table, one inbound cluster asserted by TestInboundClusters
(its call, endpoints and telemetry), or one whole test that asserts generated config without any call.

Most expectations are literals (`[]simulation.Expect{...}`) and are read generically; the tests that build
their calls in loops (TestInbound, TestPassthroughTraffic, TestHeadlessServices, TestExternalNameServices,
TestSidecarRoutes, TestInboundClusters) have a reader each that takes the loop's data from the source and
applies the loop's rule as the test does."""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from meshconform.fidelity.cases import ISTIO_COMMIT, ISTIO_FILES, ISTIO_VERSION

REPO = Path(__file__).resolve().parents[3]
INDEX = REPO / "tests" / "fidelity" / "istio_expectations.yaml"

# ---------------------------------------------------------------- a Go tokenizer, enough for test tables

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<comment>//[^\n]*|/\*.*?\*/)
  | (?P<raw>`[^`]*`)
  | (?P<string>"(?:\\.|[^"\\\n])*")
  | (?P<rune>'(?:\\.|[^'\\\n])+')
  | (?P<number>\d[\w.]*)
  | (?P<ident>[A-Za-z_]\w*)
  | (?P<op>:=|\+\+|--|&&|\|\||==|!=|<=|>=|\.\.\.|[-+*/%&|^<>=!:;,.(){}\[\]])
""", re.VERBOSE | re.DOTALL)
_OPENERS = {"{": "}", "(": ")", "[": "]"}


@dataclass(frozen=True)
class Token:
    kind: str
    text: str

    @property
    def value(self) -> str:
        """A string literal's value (raw or interpreted); other tokens as written."""
        if self.kind == "raw":
            return self.text[1:-1]
        if self.kind == "string":
            return str(yaml.safe_load(self.text))  # Go's escapes in "..." are JSON's for these files
        return self.text


class GoSource:
    """Tokens of one Go file, with each bracket's partner, and the few structural queries the readers need."""

    def __init__(self, text: str) -> None:
        self.tokens: list[Token] = []
        position = 0
        while position < len(text):
            match = _TOKEN.match(text, position)
            if match is None:
                raise ValueError(f"cannot read Go source at offset {position}: {text[position:position + 40]!r}")
            position = match.end()
            kind = match.lastgroup or ""
            if kind not in ("space", "comment"):
                self.tokens.append(Token(kind, match.group()))
        self.partner: dict[int, int] = {}
        stack: list[int] = []
        for index, token in enumerate(self.tokens):
            if token.kind == "op" and token.text in _OPENERS:
                stack.append(index)
            elif token.kind == "op" and token.text in _OPENERS.values():
                opened = stack.pop()
                if _OPENERS[self.tokens[opened].text] != token.text:
                    raise ValueError(f"unbalanced {self.tokens[opened].text} at token {opened}")
                self.partner[opened], self.partner[index] = index, opened
        self.enclosing: dict[int, int] = {}  # token -> the innermost bracket opened around it
        stack = []
        for index, token in enumerate(self.tokens):
            if stack:
                self.enclosing[index] = stack[-1]
            if token.kind == "op" and token.text in _OPENERS:
                stack.append(index)
            elif token.kind == "op" and token.text in _OPENERS.values():
                stack.pop()

    def text(self, index: int) -> str:
        return self.tokens[index].text if 0 <= index < len(self.tokens) else ""

    def functions(self) -> dict[str, tuple[int, int]]:
        """Top-level `func TestX(t *testing.T) {...}`: name -> (open brace, close brace)."""
        found = {}
        for index, token in enumerate(self.tokens):
            if token.text == "func" and self.text(index + 1).startswith("Test") and index not in self.enclosing:
                body = self.partner[index + 2] + 1  # after the parameter list
                found[self.text(index + 1)] = (body, self.partner[body])
        return found

    def find(self, pattern: list[str], start: int, end: int) -> Iterator[int]:
        """Indexes where the token texts `pattern` occur in order, within (start, end)."""
        for index in range(start, end - len(pattern) + 1):
            if all(self.text(index + i) == part for i, part in enumerate(pattern)):
                yield index

    def elements(self, opened: int) -> list[tuple[int, int]]:
        """The comma-separated elements of the bracket opened at `opened`, as (first, last) token ranges."""
        closed, found, first = self.partner[opened], [], opened + 1
        index = first
        while index < closed:
            if self.tokens[index].text in _OPENERS and self.tokens[index].kind == "op":
                index = self.partner[index] + 1
                continue
            if self.tokens[index].text == ",":
                if index > first:
                    found.append((first, index - 1))
                first = index + 1
            index += 1
        if first < closed:
            found.append((first, closed - 1))
        return found

    def field(self, element: tuple[int, int], key: str) -> tuple[int, int] | None:
        """In a keyed composite literal element `{Key: value, ...}` (or `T{...}`), the value's token range."""
        first, last = element
        opened = next((i for i in range(first, last + 1) if self.text(i) == "{"), None)
        if opened is None:
            return None
        for start, end in self.elements(opened):
            if self.text(start) == key and self.text(start + 1) == ":":
                return start + 2, end
        return None

    def string_field(self, element: tuple[int, int], key: str) -> str | None:
        found = self.field(element, key)
        if found is None or found[0] != found[1] or self.tokens[found[0]].kind not in ("string", "raw"):
            return None
        return self.tokens[found[0]].value

    def brace_after(self, pattern: list[str], start: int, end: int) -> int:
        """The `{` that opens the literal written right after `pattern` (e.g. `[]simulation.Call{`)."""
        for index in self.find(pattern, start, end):
            return index + len(pattern) - 1
        raise LookupError(f"{' '.join(pattern)} not found")

    def context_names(self, index: int, function_start: int) -> list[str]:
        """Subtest names around token `index`, outermost first: each enclosing `t.Run("name", ...)` and the
        `name:` of each enclosing test-case literal."""
        names: list[str] = []
        opened = self.enclosing.get(index)
        while opened is not None and opened > function_start:
            if self.text(opened) == "(" and self.text(opened - 1) == "Run" and self.text(opened - 2) == ".":
                argument = self.tokens[opened + 1]
                if argument.kind in ("string", "raw"):
                    names.append(argument.value)
            elif self.text(opened) == "{":
                name = self.string_field((opened, self.partner[opened]), "name")
                if name is not None:
                    names.append(name)
            opened = self.enclosing.get(opened)
        return names[::-1]


# ---------------------------------------------------------------- readers: one list of ids per test

Reader = Callable[[GoSource, int, int], list[str]]


def _expect_literals(source: GoSource, start: int, end: int) -> list[str]:
    """Every element of every `[]simulation.Expect{...}` literal, under its subtest names."""
    ids = []
    for at in source.find(["[", "]", "simulation", ".", "Expect", "{"], start, end):
        opened = at + 5
        path = source.context_names(opened, start)
        for number, element in enumerate(source.elements(opened)):
            name = source.string_field(element, "Name")
            ids.append("/".join([*path, name if name else f"#{number:02d}"]))
    return ids


def _range_literal(source: GoSource, start: int, end: int, type_name: list[str]) -> list[tuple[int, int]]:
    """The elements of the first `range []<type_name>{...}` in (start, end)."""
    opened = source.brace_after(["range", "[", "]", *type_name, "{"], start, end)
    return source.elements(opened)


def _simulation_constant(source: GoSource, value: tuple[int, int] | None, default: str) -> str:
    """`simulation.HTTP` -> "http" (the package's string for the constant)."""
    if value is None:
        return default
    name = source.text(value[1])
    return {"HTTP": "http", "HTTP2": "http2", "TCP": "tcp", "Plaintext": "plaintext", "TLS": "tls",
            "MTLS": "mtls"}[name]


def _int_field(source: GoSource, element: tuple[int, int], key: str) -> int:
    value = source.field(element, key)
    assert value is not None and value[0] == value[1], f"{key} is not a number"
    return int(source.text(value[0]))


def _run_names(source: GoSource, start: int, end: int) -> list[str]:
    """Names of the `t.Run("...", ...)` calls directly in the function body (not nested)."""
    return [source.tokens[i + 4].value for i in source.find(["t", ".", "Run", "(", ], start, end)
            if source.enclosing.get(i) == start and source.tokens[i + 4].kind == "string"]


def _case_table(source: GoSource, start: int, end: int) -> int:
    """The `{` of the table literal in `cases := []struct{...}{...}` (past the struct type)."""
    struct = source.brace_after(["cases", ":=", "[", "]", "struct", "{"], start, end)
    return source.partner[struct] + 1


def _inbound(source: GoSource, start: int, end: int) -> list[str]:
    """TestInbound: a table of calls, each with a result per mTLS mode, run once per mode (t.Run)."""
    table = _case_table(source, start, end)  # past the struct type, to the table literal
    names = [source.string_field(e, "Name") for e in source.elements(table)]
    return [f"{mode}/{name}" for mode in _run_names(source, start, end) for name in names]


def _protocol_port_calls(source: GoSource, start: int, end: int) -> list[str]:
    """TestHeadlessServices, TestExternalNameServices (first run): one call per listed Call, named
    fmt.Sprintf("%s-%d", protocol, port); then TestExternalNameServices' literal Expect lists."""
    names = [f"{_simulation_constant(source, source.field(e, 'Protocol'), 'http')}-{_int_field(source, e, 'Port')}"
             for e in _range_literal(source, start, end, ["simulation", ".", "Call"])]
    return [*names, *_expect_literals(source, start, end)]


def _passthrough(source: GoSource, start: int, end: int) -> list[str]:
    """TestPassthroughTraffic: ports from the `for port := A; port < B` loop times the listed calls, named
    "%v-%v-%v%v" (protocol, tls, port, "-" + alpn), once per outbound traffic policy and per VIP variant."""
    loop = next(source.find(["for", "port", ":=", ], start, end))
    first, last = int(source.text(loop + 3)), int(source.text(loop + 7))
    assert source.text(loop + 6) == "<", "the port loop's bound changed"
    calls = []
    for element in _range_literal(source, loop, end, ["simulation", ".", "Call"]):
        protocol = _simulation_constant(source, source.field(element, "Protocol"), "http")
        tls = _simulation_constant(source, source.field(element, "TLS"), "plaintext")
        alpn = source.string_field(element, "Alpn")
        calls.append((protocol, tls, f"-{alpn}" if alpn else ""))
    names = sorted(f"{p}-{t}-{port}{suffix}" for port in range(first, last) for p, t, suffix in calls)
    modes_at = source.brace_after(["range", "[", "]", "meshconfig", ".", "MeshConfig_OutboundTrafficPolicy_Mode", "{"],
                                  start, end)
    modes = [source.text(e[1]).removeprefix("MeshConfig_OutboundTrafficPolicy_") for e in source.elements(modes_at)]
    variants = [source.tokens[i + 4].value for i in source.find(["t", ".", "Run", "("], modes_at, end)
                if source.tokens[i + 4].kind == "string"]
    return [f"{mode}/{variant}/{name}" for mode in modes for variant in variants for name in names]


def _sidecar_routes(source: GoSource, start: int, end: int) -> list[str]:
    """TestSidecarRoutes: per variant, per case, one expectation per virtual host of the expected map
    (expectedGateway for httproute when set); the httproute variant skips a case any of whose vsArgs
    matches is not a plain `name.namespace.svc.cluster.local` (vsArgs.Config: t.Skipf)."""
    table = _case_table(source, start, end)
    variants_at = source.brace_after(["range", "[", "]", "string", "{"], table, end)
    variants = [source.tokens[e[0]].value for e in source.elements(variants_at)]
    ids = []
    for variant in variants:
        for element in source.elements(table):
            name = source.string_field(element, "name")
            route = source.string_field(element, "routeName")
            matches: list[str] = []
            cfg = source.field(element, "cfg")
            assert cfg is not None
            for item in source.elements(source.partner[cfg[1]]):
                if source.text(item[0]) != "vsArgs":
                    continue
                one = source.string_field(item, "Match")
                many = source.field(item, "Matches")
                matches += [one] if one else [source.tokens[i].value for i in range(*many)
                                               if source.tokens[i].kind == "string"] if many else []
            if variant == "httproute" and any(len(m.split(".")) != 5 or m.startswith("*") for m in matches):
                continue
            expected = source.field(element, "expected")
            gateway = source.field(element, "expectedGateway")
            chosen = gateway if variant == "httproute" and gateway is not None else expected
            if chosen is None or source.text(chosen[0]) == "nil":
                continue
            ids += [f"{variant}/{name}/{host}:{route}" for host in _map_keys(source, chosen)]
    return ids


def _map_keys(source: GoSource, value: tuple[int, int]) -> list[str]:
    """The string keys of a `map[string]...{"k": v, ...}` literal."""
    opened = value[1]
    assert source.text(opened) == "}" , "a map literal ends with }"
    opened = source.partner[opened]
    return [source.tokens[first].value for first, _ in source.elements(opened)
            if source.tokens[first].kind == "string" and source.text(first + 1) == ":"]


def _inbound_clusters(source: GoSource, start: int, end: int) -> list[str]:
    """TestInboundClusters: one expectation per cluster of each case's `clusters` map (each is also called);
    a repeated case name is numbered as `go test` does (the second run of a name is name#01)."""
    table = _case_table(source, start, end)
    names = _numbered([source.string_field(e, "name") or "" for e in source.elements(table)])
    ids = []
    for name, element in zip(names, source.elements(table), strict=True):
        clusters = source.field(element, "clusters")
        ids += [f"{name}/{cluster}" for cluster in (_map_keys(source, clusters) if clusters else [])]
    return ids


def _whole_test(source: GoSource, start: int, end: int) -> list[str]:
    """A test that asserts generated config and makes no call: one expectation."""
    return ["config"]


READERS: dict[str, Reader] = {
    "TestInbound": _inbound,
    "TestHeadlessServices": _protocol_port_calls,
    "TestExternalNameServices": _protocol_port_calls,
    "TestPassthroughTraffic": _passthrough,
    "TestSidecarRoutes": _sidecar_routes,
    "TestInboundClusters": _inbound_clusters,
    "TestGatewayExternalSDSProviderSimulation": _whole_test,
}


def _numbered(ids: list[str]) -> list[str]:
    """Duplicate names under one parent numbered as `go test` does: name, name#01, name#02."""
    seen: dict[str, int] = {}
    numbered = []
    for item in ids:
        parent, _, leaf = item.rpartition("/")
        count = seen.get(item, 0)
        seen[item] = count + 1
        numbered.append(item if count == 0 else f"{parent}/{leaf}#{count:02d}".lstrip("/"))
    return numbered


def expectations_of(text: str) -> dict[str, list[str]]:
    """Test name -> expectation ids (without the test name) of one simulation test file."""
    source = GoSource(text)
    found = {}
    for test, (start, end) in source.functions().items():
        reader = READERS.get(test, _expect_literals)
        found[test] = _numbered(reader(source, start, end))
    return found


# ---------------------------------------------------------------- the committed index

def file_sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def build_index(istio: Path) -> dict[str, Any]:
    files = []
    for key, relative in ISTIO_FILES.items():
        text = (istio / relative).read_text()
        tests = expectations_of(text)
        files.append({"key": key, "path": relative, "sha256": file_sha256(text),
                      "tests": {name: len(ids) for name, ids in tests.items()},
                      "expectations": [f"{name}/{i}" for name, ids in tests.items() for i in ids]})
    return {"istio": {"version": ISTIO_VERSION, "commit": ISTIO_COMMIT}, "files": files}


@dataclass(frozen=True)
class Expectation:
    id: str
    file: str  # the ISTIO_FILES key


def load_index(path: Path = INDEX) -> list[Expectation]:
    data = yaml.safe_load(path.read_text())
    found = [Expectation(i, f["key"]) for f in data["files"] for i in f["expectations"]]
    for entry in data["files"]:
        counted: dict[str, int] = {}
        for i in entry["expectations"]:
            counted[i.split("/", 1)[0]] = counted.get(i.split("/", 1)[0], 0) + 1
        if {k: v for k, v in entry["tests"].items() if v} != counted:
            raise ValueError(f"{path}: the per-test counts of {entry['path']} disagree with its expectations")
    return found


HEADER = """\
# Every expectation of Istio's simulation tests at the pinned tag, one id each (Test/subtest/.../call;
# duplicate names numbered #01 as `go test` does). Written by `python -m meshconform.fidelity.upstream
# --istio <checkout> --write` from the sources whose SHA-256 is given; do not edit by hand. The fidelity
# data test checks that each id is ported (tests/fidelity/cases) or out of scope for a refusal
# (tests/fidelity/out_of_scope.yaml), and nothing else.
"""


def write_index(index: dict[str, Any], path: Path = INDEX) -> None:
    path.write_text(HEADER + yaml.safe_dump(index, sort_keys=False, width=120, allow_unicode=True))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m meshconform.fidelity.upstream", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--istio", type=Path, required=True, help=f"a checkout of Istio {ISTIO_VERSION}")
    parser.add_argument("--write", action="store_true", help=f"rewrite {INDEX.relative_to(REPO)}")
    args = parser.parse_args(argv)
    committed = yaml.safe_load(INDEX.read_text()) if INDEX.exists() else {"files": []}
    pinned = {f["path"]: f["sha256"] for f in committed["files"]}
    fresh = build_index(args.istio)
    changed = [f["path"] for f in fresh["files"] if pinned and pinned.get(f["path"]) != f["sha256"]]
    if changed:
        print(f"these files differ from the ones the index was read from (not Istio {ISTIO_VERSION}?): "
              f"{', '.join(changed)}", file=sys.stderr)
        return 2
    for entry in fresh["files"]:
        print(f"{entry['path']}: {len(entry['expectations'])} expectations in {len(entry['tests'])} tests")
    print(f"total: {sum(len(f['expectations']) for f in fresh['files'])}")
    if args.write:
        write_index(fresh)
        print(f"wrote {INDEX.relative_to(REPO)}")
        return 0
    if fresh != committed:
        old = {i for f in committed["files"] for i in f["expectations"]}
        new = {i for f in fresh["files"] for i in f["expectations"]}
        print(f"the committed index differs: {len(new - old)} new, {len(old - new)} gone "
              f"(e.g. {sorted(new ^ old)[:3]}); rerun with --write", file=sys.stderr)
        return 1
    print("the committed index matches the sources")
    return 0


if __name__ == "__main__":
    sys.exit(main())
