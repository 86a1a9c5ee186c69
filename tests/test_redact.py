"""Redaction (meshconform.report.redact): Secrets as kubectl describe shows them, private keys and
bearer tokens masked wherever they appear, everything else left as it was (prose included); and its one place of
use, where a test's result is serialised on its way out (to the controller, to the report's files)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from meshconform.fixtures.evidence import VantageTraffic
from meshconform.fixtures.record import ResultRecord
from meshconform.fixtures.reporting import result_of
from meshconform.report import writers
from meshconform.report.model import TestResult, UnitInfo, Verdict, build
from meshconform.report.redact import redact, redact_text
from meshconform.suite.tls import issue_server_credential
from meshconform.traffic.model import Response

CREDENTIAL = issue_server_credential("secure.example.com")
KEY_B64 = CREDENTIAL.secret_data()["key"]
KEY_BODY_LINES = [line for line in CREDENTIAL.key_pem.strip().splitlines()[1:-1] if len(line) > 16]
# A JWT as an identity provider would issue it (header {"alg":"RS256","typ":"JWT"}); the value is made up.
JWT = ("eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJqYXNvbiIsImlzcyI6InRlc3RpbmdAc2VjdXJlLmlzdGlvLmlvIn0."
       "c2lnbmF0dXJlLW5vdC1yZWFsbHktYS1zaWduYXR1cmU")


def secret_document() -> dict:
    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": "echo-tls-credential", "namespace": "istio-system", "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": json.dumps({"data": {"tls.key": KEY_B64}}),
                "team": "mesh"}},
            "data": {"tls.crt": CREDENTIAL.secret_data()["crt"], "tls.key": KEY_B64},
            "stringData": {"password": "hunter22"}}


def leaks(text: str) -> list[str]:
    return [part for part in (KEY_B64[:40], *KEY_BODY_LINES, "hunter22", JWT[:30], "c2lnbmF0dXJl") if part in text]


def test_secret_keeps_identity_and_sizes_like_kubectl_describe() -> None:
    redacted = redact(secret_document())
    assert redacted["kind"] == "Secret" and redacted["type"] == "kubernetes.io/tls"
    assert redacted["metadata"]["name"] == "echo-tls-credential"
    assert redacted["metadata"]["namespace"] == "istio-system"
    assert redacted["metadata"]["annotations"]["team"] == "mesh"
    assert redacted["data"] == {"tls.crt": f"<redacted: {len(CREDENTIAL.cert_pem)} bytes>",
                                "tls.key": f"<redacted: {len(CREDENTIAL.key_pem)} bytes>"}
    assert redacted["stringData"] == {"password": "<redacted: 8 bytes>"}
    assert leaks(json.dumps(redacted)) == []
    assert redact(redacted) == redacted  # redacting twice changes nothing (sizes stay right)


def test_secret_inside_a_list_and_as_yaml_text() -> None:
    applied = [{"kind": "Gateway", "metadata": {"name": "gw"}}, secret_document()]
    assert leaks(json.dumps(redact(applied))) == []
    assert redact(applied)[0] == applied[0]
    as_text = "rendered:\n" + yaml.safe_dump_all(applied)
    out = redact_text(as_text)
    assert leaks(out) == [] and "tls.key" in out and "echo-tls-credential" in out


@pytest.mark.parametrize("wrap", [
    lambda pem: pem,                                   # as is
    lambda pem: repr(pem),                             # a repr in a traceback: "\n" escaped
    lambda pem: json.dumps({"k": pem}),                # JSON-escaped
    lambda pem: "    " + pem.replace("\n", "\n    "),  # indented (a YAML block scalar)
    lambda pem: pem[:150],                             # cut short (a truncated message)
], ids=["plain", "repr", "json", "indented", "truncated"])
def test_pem_private_keys_are_masked_wherever_they_appear(wrap) -> None:  # type: ignore[no-untyped-def]
    text = f"before {wrap(CREDENTIAL.key_pem)} after"
    out = redact_text(text)
    assert leaks(out) == [] and "PRIVATE KEY" in out and out.startswith("before ")
    assert out.rstrip().endswith("after")


def test_base64_private_keys_are_masked_but_certificates_are_not() -> None:
    crt = CREDENTIAL.secret_data()["crt"]
    out = redact_text(f"tls.key: {KEY_B64} tls.crt: {crt}")
    assert KEY_B64[:40] not in out and "redacted base64 private key" in out
    assert crt in out  # a certificate is public: kept outside Secrets
    assert redact_text(CREDENTIAL.cert_pem) == CREDENTIAL.cert_pem


def test_bearer_tokens_in_headers_keep_the_scheme() -> None:
    headers = {"Authorization": f"Bearer {JWT}", "proxy-authorization": "Basic dXNlcjpwYXNzd29yZA==",
               "AUTHORIZATION": "opaque-token-123", "x-request-id": "abc", "end-user": "jason"}
    out = redact({"request": {"headers": headers}})["request"]["headers"]
    assert out == {"Authorization": "Bearer <masked>", "proxy-authorization": "Basic <masked>",
                   "AUTHORIZATION": "<masked>", "x-request-id": "abc", "end-user": "jason"}


@pytest.mark.parametrize("line", [
    f"Authorization: Bearer {JWT}",
    f'{{"authorization": "Bearer {JWT}", "path": "/headers"}}',
    f"curl -H 'authorization: bearer {JWT}' http://x",
    f"/productpage?access_token={JWT}&user=jason",
    f"GET /api?id_token={JWT} 200",
    f"a JWT in a message: {JWT}.",
    "Authorization=Basic dXNlcjpwYXNzd29yZA==",
])
def test_tokens_in_free_text_are_masked(line: str) -> None:
    out = redact_text(line)
    assert JWT[:30] not in out and "c2lnbmF0dXJl" not in out and "dXNlcjpwYXNzd29yZA" not in out, out
    assert "<masked>" in out


def test_ordinary_evidence_is_left_alone() -> None:
    figures = {"shares": {"planned": 1500, "counts": {"v1": 750, "v2": 750}, "verdicts": [
        {"name": "v1", "expected": 0.5, "ci_low": 0.46, "ci_high": 0.54}]},
               "examples": ["/split/1 -> 200 in 2.1 ms by echo-v1-abc", "x-b3-traceid: 463ac35c9f6413ad"],
               "xfcc": "By=spiffe://cluster.local/ns/default/sa/echo;URI=spiffe://cluster.local/ns/default/sa/client",
               "description": "A Basic check of the token bucket", "authorization_policy": "allow-nothing"}
    assert redact(figures) == figures


def test_a_result_leaves_its_test_redacted() -> None:
    """What a test records is kept as it was; its result, serialised once on its way out, holds no secret."""
    from meshconform.suite.unit import ConformanceTest
    traffic = VantageTraffic()
    traffic.record([Response("1", 401, None, 0.01, path=f"/api?access_token={JWT}"),
                    Response("2", None, "tls", 0.01, path="/x")])
    record = ResultRecord()
    record.attach("config", [secret_document()])
    record.attach("traffic", {"default/client": traffic.to_json()})
    record.figure("request", {"headers": {"authorization": f"Bearer {JWT}"}})
    assert leaks(json.dumps([record.evidence, record.figures])) != []  # as recorded
    unit = ConformanceTest("jwt-check", "Authorization: Bearer with audiences", frozenset({"JWTAuthentication"}))
    result = result_of(unit, "", record)
    for serialised in (result.to_transport(), result.to_json()):
        assert leaks(json.dumps(serialised)) == []
    assert TestResult.from_transport(result.to_transport()).figures["request"]["headers"]["authorization"] == \
        "Bearer <masked>"


def test_prose_is_not_masked() -> None:
    """A test's description naming a header is prose, not a credential; redacting twice changes nothing."""
    prose = ("the first read from Authorization: Bearer with audiences [the test's], the second only from "
             "x-jwt-assertion; an Authorization header is required")
    assert redact_text(prose) == prose
    assert redact_text(redact_text(f"Authorization: Bearer {JWT}")) == "Authorization: Bearer <masked>"
    for credential in ("Authorization: Basic dXNlcjpwYXNz", "authorization=xyz123"):
        once = redact_text(credential)
        assert "<masked>" in once and redact_text(once) == once, once
    result = TestResult(UnitInfo("jwt-check", prose, ("JWTAuthentication",)), "", Verdict.PASSED, 1.0)
    assert result.to_json()["description"] == prose


def test_report_files_carry_no_secret(tmp_path: Path) -> None:
    from meshconform.suite.features import profiles
    result = TestResult(UnitInfo("gateway-tls-simple", "tls", ("GatewayTLS",)), "", Verdict.FAILED, 1.0,
                        reason=f"saw Bearer {JWT}",
                        message=f"E   AssertionError: key was {CREDENTIAL.key_pem!r} token {JWT}",
                        figures={"sent": {"authorization": f"Bearer {JWT}"}},
                        evidence={"applied_config": [secret_document()]})
    writers.write(build([result], {"organization": "o", "project": "p", "url": "u", "version": "1", "contact": []},
                        {"platform": "local"}, {}, {}, {"GatewayTLS"}, list(profiles().values())), tmp_path)
    for name in ("conformance.yaml", "junit.xml", "report.html"):
        text = (tmp_path / name).read_text()
        assert leaks(text) == [], name
        if name != "junit.xml":  # the object is still identified (junit carries no evidence)
            assert "echo-tls-credential" in text and "tls.key" in text, name

