"""The kube platform reads Istio's access log (default TEXT format and JSON encoding) as Platform.access_log records."""

from __future__ import annotations

from meshconform.platform.kube.evidence import access_records

TEXT = ('[2026-11-22T07:00:00.000Z] "GET /x HTTP/1.1" 503 UO upstream_reset_before_response_started{overflow} - '
        '"-" 0 81 0 - "-" "python" "rid-1" "echo:8080" "-" outbound|8080||echo.default.svc.cluster.local - '
        '10.0.0.1:8080 10.0.0.2:4000 - default')
JSON = ('{"response_code": 403, "response_flags": "-", "request_id": "rid-2", "upstream_cluster": "inbound|8080||",'
        ' "response_code_details": "rbac_access_denied_matched_policy[none]"}')


def test_text_and_json_lines_become_records() -> None:
    first, second = access_records(f"{TEXT}\nsome proxy log line\n{JSON}\n")
    assert (first["status"], first["flags"], first["request_id"]) == (503, "UO", "rid-1")
    assert first["direction"] == "outbound" and first["details"].startswith("upstream_reset")
    assert (second["status"], second["direction"]) == (403, "inbound")
    assert second["details"] == "rbac_access_denied_matched_policy[none]"


def test_gateway_records_say_so() -> None:
    assert [r["direction"] for r in access_records(TEXT, gateway=True)] == ["gateway"]
