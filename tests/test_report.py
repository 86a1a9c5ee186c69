"""The conformance report: YAML shaped after the Gateway API ConformanceReport, JUnit, and HTML.

The HTML is checked for structure with the standard library's parser: a profile summary table, each
failure leading with its one-sentence reason, traceback and evidence behind closed toggles, and a
chart per proportion check. One slow test does it on a real run with failures made on purpose."""

from __future__ import annotations

import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from meshconform import conformance
from meshconform.fixtures.reporting import failure_reason
from meshconform.platform.local.platform import LocalPlatform
from meshconform.report import writers
from meshconform.report.model import ConformanceReport, TestResult, UnitInfo, Verdict, build
from meshconform.stats.proportions import judge_split
from meshconform.suite.convergence import NeverConverged
from meshconform.suite.features import profiles
from meshconform.suite.sampling import ShareSample

# HTML void elements (no end tag)
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    content: list[Element | str] = field(default_factory=list)  # in document order

    @property
    def children(self) -> list[Element]:
        return [c for c in self.content if isinstance(c, Element)]

    @property
    def parts(self) -> list[str]:
        return [c for c in self.content if isinstance(c, str)]

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    @property
    def text(self) -> str:
        return " ".join(" ".join(c if isinstance(c, str) else c.text for c in self.content).split())

    def iter(self) -> Iterator[Element]:
        yield self
        for child in self.children:
            yield from child.iter()

    def find_all(self, tag: str, cls: str | None = None, **attrs: str) -> list[Element]:
        return [e for e in self.iter() if e.tag == tag and (cls is None or cls in e.classes)
                and all(e.attrs.get(k) == v for k, v in attrs.items())]

    def find(self, tag: str, cls: str | None = None, **attrs: str) -> Element:
        found = self.find_all(tag, cls, **attrs)
        assert found, f"no <{tag} class={cls} {attrs}>"
        return found[0]


class _Tree(HTMLParser):
    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("document", {})
        self.stack = [self.root]
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].content.append(element)
        if tag not in VOID:
            self.stack.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].content.append(Element(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        assert tag not in VOID and self.stack[-1].tag == tag, f"</{tag}> closes <{self.stack[-1].tag}>"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.stack[-1].content.append(data)


def parse_html(html: str) -> Element:
    tree = _Tree(html)
    assert len(tree.stack) == 1, f"unclosed <{tree.stack[-1].tag}>"
    return tree.root


def check_failure_cards(page: Element, reasons: dict[str, str]) -> dict[str, Element]:
    """Each failed test has a card whose first line after its title is the reason; its traceback
    and evidence are behind closed toggles. Returns the cards by test id."""
    cards = {card.attrs["id"].removeprefix("test-"): card for card in page.find_all("section", "failure-card")}
    assert set(cards) == set(reasons)
    for test_id, card in cards.items():
        title, first = card.children[0], card.children[1]
        assert title.tag == "h3" and test_id in title.text
        assert first.tag == "p" and "reason" in first.classes and first.text == reasons[test_id]
        toggles = {d.find("summary").text: d for d in card.find_all("details")}
        assert "traceback" in toggles and all("open" not in d.attrs for d in toggles.values())
        assert any(name.startswith("evidence:") for name in toggles)
        assert card.children.index(toggles["traceback"]) > 1  # after the reason, never before it
    return cards


def result(test_id: str, description: str, features: list[str], verdict: str, duration: float, message: str = "",
           **extra: object) -> TestResult:
    unit_id, _, variant = test_id.partition("[")
    return TestResult(UnitInfo(unit_id, description, tuple(features)), variant.rstrip("]"), Verdict(verdict),
                      duration, message=message, **extra)  # type: ignore[arg-type]


def write(report: ConformanceReport, folder: Path) -> None:
    writers.write(report, folder)


def _report(tmp_path: Path) -> ConformanceReport:
    results = [
        result("weighted-split-echo[50-50]", "split", ["WeightedRouting"], "passed", 1.5,
               figures={"shares": {"planned": 1640}}),
        result("mirror-full", "mirror <b>", ["Mirroring"], "failed", 2.0, "AssertionError: mirror saw 0 of 100",
               evidence={"traffic": {"default/client": {"requests": 100}}}),
        result("gateway-tls-simple", "tls", ["GatewayTLS"], "skipped", 0.0, "not supported: GatewayTLS"),
    ]
    report = build(results, {"organization": "acme", "project": "mesh", "url": "https://acme.example",
                             "version": "1.2", "contact": ["@acme"]},
                   {"platform": "local", "description": "reference data plane. Not Istio."},
                   {"max_time_to_consistency": 60.0}, {"max_time_to_consistency": 60.0},
                   supported={"WeightedRouting", "Mirroring"}, profiles=list(profiles().values()))
    write(report, tmp_path)
    return report


def test_yaml_report_has_profiles_results_and_evidence(tmp_path: Path) -> None:
    _report(tmp_path)
    report = yaml.safe_load((tmp_path / "conformance.yaml").read_text())
    assert report["kind"] == "ConformanceReport" and report["implementation"]["organization"] == "acme"
    assert report["timeoutOverrides"] == {"max_time_to_consistency": 60.0}
    [profile] = report["profiles"]
    assert profile["core"]["result"] == "failure" and profile["core"]["failedTests"] == ["mirror-full"]
    assert profile["extended"]["skippedTests"] == ["gateway-tls-simple"]
    assert "GatewayTLS" in profile["extended"]["unsupportedFeatures"]
    failed = next(t for t in report["tests"] if t["id"] == "mirror-full")
    assert failed["evidence"]["traffic"]["default/client"]["requests"] == 100
    passed = next(t for t in report["tests"] if t["id"].startswith("weighted"))
    assert "evidence" not in passed and passed["figures"]["shares"]["planned"] == 1640


def test_junit_and_html_agree_with_the_yaml(tmp_path: Path) -> None:
    _report(tmp_path)
    suite = ET.parse(tmp_path / "junit.xml").getroot().find("testsuite")
    assert suite is not None and suite.get("tests") == "3" and suite.get("failures") == "1"
    assert suite.get("skipped") == "1"
    failure = suite.find("testcase[@name='mirror-full']/failure")
    assert failure is not None and "mirror saw 0 of 100" in (failure.get("message") or "")
    page = (tmp_path / "report.html").read_text()
    assert "mirror &lt;b&gt;" in page and "mirror <b>" not in page  # escaped
    assert "Not Istio." in page and "weighted-split-echo[50-50]" in page


def test_html_structure_leads_with_reasons_and_summarises_profiles(tmp_path: Path) -> None:
    # As measure_counted records it (the report's schema wants the design and the counts at each look).
    sample = ShareSample(1500, 1500, Counter({"v1": 900, "v2": 600}), judge_split({"v1": 900, "v2": 600},
                         {"v1": 0.5, "v2": 0.5}), False, 1e-4, 0.05, 1e-3, 50, "rejected",
                         expected={"v1": 0.5, "v2": 0.5}, looks=[{"v1": 900, "v2": 600}])
    traceback = ("conformance/test_routing.py:32: in test\n    assert sample.passed\nE   AssertionError: "
                 + sample.reason)
    results = [
        result("weighted-split-echo[50-50]", "split", ["WeightedRouting"], "failed", 1.5, traceback,
               figures={"shares": sample.to_json()}, reason=sample.reason,
               evidence={"traffic": {"default/client": {"requests": 1500}}, "applied_config": [{"kind": "X"}]}),
        result("mirror-full", "mirror", ["Mirroring"], "passed", 2.0),
        result("gateway-tls-simple", "tls", ["GatewayTLS"], "skipped", 0.0, "not supported: GatewayTLS"),
    ]
    report = build(results, {"organization": "acme", "project": "mesh", "url": "u", "version": "1", "contact": []},
                   {"platform": "local"}, {}, {}, supported={"WeightedRouting", "Mirroring"},
                   profiles=list(profiles().values()))
    write(report, tmp_path)
    page = parse_html((tmp_path / "report.html").read_text())

    # Profile summary: one row per part with a result badge and counts, failed tests linked.
    table = page.find("table", "profiles")
    rows = {row.attrs["class"]: row for row in table.find_all("tr") if row.attrs.get("class") in ("core", "extended")}
    cells = [c.text for c in rows["core"].find_all("td")]
    assert cells[1:6] == ["core", "failure", "1", "1", "0"] and cells[6] == "weighted-split-echo[50-50]"
    assert rows["core"].find("a").attrs["href"] == "#test-weighted-split-echo[50-50]"
    assert [c.text for c in rows["extended"].find_all("td")][1:6] == ["extended", "partial", "0", "0", "1"]
    assert page.find("p", id="overall").text.startswith("failure 1 passed, 1 failed, 1 skipped of 3 tests")

    # Failures first, each leading with its reason; the reason says what was expected and observed.
    cards = check_failure_cards(page, {"weighted-split-echo[50-50]": sample.reason})
    assert sample.reason.startswith("shares outside their acceptance bands: v1 got 900 of 1500 (60.0%) where 50% "
                                    "was expected (accepted ")
    assert "v2 got" not in sample.reason  # a two-way split: the complement says nothing new
    svg = cards["weighted-split-echo[50-50]"].find("svg", "share-chart")
    dots = svg.find_all("circle", "observed")
    assert len(dots) == 2 and {d.attrs["fill"] for d in dots} == {"#cf222e"}  # both outside their bands
    assert len(svg.find_all("rect", "band")) == 2 and len(svg.find_all("line", "expected")) == 2
    # The band is drawn where the acceptance region is: x of 50% lies inside it, x of 60% (the dot) not.
    band = svg.find_all("rect", "band")[0]
    low, width = float(band.attrs["x"]), float(band.attrs["width"])
    assert low < float(svg.find("line", "expected").attrs["x1"]) < low + width < float(dots[0].attrs["cx"])
    evidence = [d.find("summary").text for d in cards["weighted-split-echo[50-50]"].find_all("details", "evidence")]
    assert evidence == ["evidence: applied config (1)", "evidence: traffic"]  # the config first

    # The test table: a skipped test says why; the traceback text is not on the page outside its toggle.
    tests = page.find("table", "tests")
    skipped = tests.find("tr", id="row-gateway-tls-simple")
    assert skipped.find("p", "skipped-reason").text == "not supported: GatewayTLS"
    outside = [e for e in page.iter() if "conformance/test_routing.py:32" in " ".join(e.parts)]
    assert all(e.tag == "pre" for e in outside) and len(outside) == 1


def test_failure_reasons_from_exceptions() -> None:
    never = NeverConverged("https through the gateway", 30.0, 3, 34, Counter({"failed the TLS handshake": 34}),
                           ["/ -> no response (tls)"])
    assert failure_reason(never) == "https through the gateway never converged within 30 s: 34 of 34 attempts " \
                                    "failed the TLS handshake"
    mixed = NeverConverged("config x", 2.0, 3, 10, Counter({"answered 404": 6, "answered 200 without this "
                                                            "config's marker": 2}), [])
    assert failure_reason(mixed) == ("config x did not hold 3 times in a row within 2 s: 2 of 10 attempts succeeded, "
                                     "6 answered 404, 2 answered 200 without this config's marker")
    assert failure_reason(AssertionError("mirror saw 0 of 100 copies\nassert 0 == 100")) == "mirror saw 0 of 100 copies"
    assert failure_reason(AssertionError("assert {'v1'} == {'v2'}\n  Extra items in the left set:")) == \
        "check failed: {'v1'} == {'v2'} (Extra items in the left set:)"
    assert failure_reason(RuntimeError("proxy exited\nlog tail")) == "error, not a verdict: RuntimeError: proxy exited"


DEMO_TEST = '''
from meshconform.suite.unit import conformance_test
from meshconform.traffic.model import Request

CONFIG = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: echo-demo}
spec:
  hosts: [echo]
  gateways: [mesh, no-such-gateway]
  http:
  - route:
    - destination: {host: echo, subset: v9}
"""


@conformance_test("analysis-demo", "Routes to a subset and a gateway that do not exist (fails on purpose).",
                  features={"WeightedRouting"})
def test_demo(mesh_config, mesh_meshed_client):
    mesh_config.apply_yaml(CONFIG, "demo.yaml")
    reply = mesh_meshed_client.send([Request("/", host="echo:8080")])[0]
    assert False, f"fails on purpose; echo answered {reply.status}"
'''


@pytest.mark.slow
def test_report_of_a_run_with_failures(platform: LocalPlatform, tmp_path: Path) -> None:
    """Weights skewed on purpose fail the 50/50 split with a chart; a test applying broken references
    carries istioctl-style warnings in its evidence; the HTML has the structure checked above."""
    (tmp_path / "suite").mkdir()
    (tmp_path / "suite" / "test_demo.py").write_text(DEMO_TEST)
    run = subprocess.run([sys.executable, "-m", "pytest", str(Path(conformance.__file__).parent),
                          str(tmp_path / "suite"), "-q", "-p", "no:cacheprovider", "--import-mode=importlib",
                          f"--mesh-platform-dir={platform.files.root}", "--mesh-misbehave=weights-skewed",
                          "--mesh-run-test=weighted-split-echo", "--mesh-run-test=analysis-demo",
                          "--mesh-timeout=max_time_to_consistency=5", f"--mesh-report-dir={tmp_path / 'run'}"],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    output = run.stdout[-3000:] + run.stderr[-2000:]
    assert run.returncode == 1, output
    report = yaml.safe_load((tmp_path / "run" / "conformance.yaml").read_text())
    tests = {t["id"]: t for t in report["tests"]}
    demo = tests["analysis-demo"]
    assert demo["result"] == "failed" and demo["reason"].startswith("fails on purpose; echo answered")
    warnings = {(w["code"], w["field"]) for w in demo["evidence"]["config_warnings"]}
    assert warnings == {("IST0101", "spec.gateways[1]"), ("IST0101", "spec.http[0].route[0].destination.subset")}
    assert all(w["resource"] == "VirtualService default/echo-demo" and w["source"] == "demo.yaml"
               for w in demo["evidence"]["config_warnings"])
    split = tests["weighted-split-echo[50-50]"]
    assert split["result"] == "failed"
    assert re.fullmatch(r"shares outside their acceptance bands: v1 got \d+ of \d+ \(\d+\.\d%\) where 50% was expected "
                        r"\(accepted \d+\.\.\d+\).*", split["reason"]), split["reason"]
    failed = {t["id"]: t["reason"] for t in report["tests"] if t["result"] == "failed"}
    page = parse_html((tmp_path / "run" / "report.html").read_text())
    cards = check_failure_cards(page, failed)
    assert cards["weighted-split-echo[50-50]"].find_all("svg", "share-chart")
    suite = ET.parse(tmp_path / "run" / "junit.xml").getroot()
    for case in suite.iter("testcase"):
        failure = case.find("failure")
        if failure is not None:
            assert failure.get("message") == failed[case.get("name")][:500]


def test_a_profile_part_no_test_ran_in_is_left_out_not_partial() -> None:
    """GATEWAY-HTTP's extended part has a feature no test of that profile exercises: as the Gateway API report, a
    part with no result is left out (it said 'partial' with 0 passed, 0 failed, 0 skipped before); one whose
    features are declared unsupported says partial, naming them; a core part no test ran in is never a success."""
    gateway = result("gateway-api-http-paths", "paths", ["Gateway", "HTTPRoute"], "passed", 1.0)
    all_supported = set(profiles()["GATEWAY-HTTP"].core | profiles()["GATEWAY-HTTP"].extended)
    [report] = [p.to_json() for p in build([gateway], {}, {"platform": "local"}, {}, {}, all_supported,
                                           [profiles()["GATEWAY-HTTP"]]).profiles]
    assert report["core"]["result"] == "success" and "extended" not in report
    assert report["summary"] == "Core tests succeeded (1 passed)."
    unsupported = all_supported - {"HTTPRouteResponseHeaderModification"}
    [report] = [p.to_json() for p in build([gateway], {}, {"platform": "local"}, {}, {}, unsupported,
                                           [profiles()["GATEWAY-HTTP"]]).profiles]
    assert report["extended"]["result"] == "partial"
    assert report["extended"]["unsupportedFeatures"] == ["HTTPRouteResponseHeaderModification"]
    mesh = result("mesh-only", "x", ["HTTPRouteResponseHeaderModification"], "passed", 1.0)
    [report] = [p.to_json() for p in build([mesh], {}, {"platform": "local"}, {}, {}, all_supported,
                                           [profiles()["GATEWAY-HTTP"]]).profiles]
    assert report["core"]["result"] == "partial" and report["extended"]["result"] == "success"


def test_chart_labels_have_room_for_their_names() -> None:
    """Each row's name is drawn right-aligned before the track; at 12 px a character takes at least 6.6 px (0.55 em,
    a narrow system font's average), so the label's right edge must leave that much for every character of the
    longest name ("not_mirrored" was clipped to "ot_mirrored" in a 70 px margin)."""
    from meshconform.report.charts import share_chart
    sample = judge_split({"mirrored": 48, "not_mirrored": 52}, {"mirrored": 0.5, "not_mirrored": 0.5})
    svg = parse_html(str(share_chart([v.to_json() for v in sample])))
    labels = [t for t in svg.find_all("text") if t.attrs.get("text-anchor") == "end"]
    assert {t.text for t in labels} == {"mirrored", "not_mirrored"}
    for label in labels:
        assert float(label.attrs["x"]) >= 6.6 * len(label.text), (label.text, label.attrs["x"])


def test_a_registered_writer_writes_beside_ours(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another format is a writer registered under the entry-point group meshconform.report_writers: it gets the
    same redacted data and writes its own file, with no edit to ours."""
    from types import SimpleNamespace

    class CountWriter:
        name = "counts"

        def write(self, report: dict, folder: Path) -> Path:
            path = folder / "counts.txt"
            path.write_text(f"{report['summary']['passed']} passed, {report['summary']['failed']} failed\n")
            return path

    monkeypatch.setattr(writers, "entry_points", lambda group: [SimpleNamespace(load=lambda: CountWriter)]
                        if group == writers.ENTRY_POINT_GROUP else [])
    written = writers.write(_report(tmp_path / "first"), tmp_path / "run")
    assert [p.name for p in written] == ["conformance.yaml", "junit.xml", "report.html", "counts.txt"]
    assert (tmp_path / "run" / "counts.txt").read_text() == "1 passed, 1 failed\n"
