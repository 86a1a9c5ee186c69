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


def test_the_route_name_tells_a_blocked_request_from_a_passed_through_one() -> None:
    # Istio's REGISTRY_ONLY catch-all: a direct 502 on route block_all, no upstream (istio.io blog, "Monitoring
    # blocked and passthrough external service traffic"); ALLOW_ANY: route allow_any to PassthroughCluster.
    blocked = ('[2026-11-22T07:00:00.000Z] "GET /b HTTP/1.1" 502 - direct_response - "-" 0 0 0 - "-" "python" '
               '"rid-3" "10.244.0.17:8080" "-" - - 10.244.0.17:8080 10.244.0.9:4000 - block_all')
    passed = ('[2026-11-22T07:00:00.000Z] "GET /p HTTP/1.1" 200 - via_upstream - "-" 0 90 3 2 "-" "python" '
              '"rid-4" "10.244.0.17:8080" "10.244.0.17:8080" PassthroughCluster 10.244.0.9:5000 10.244.0.17:8080 '
              '10.244.0.9:4000 - allow_any')
    first, second, third = access_records(f"{blocked}\n{passed}\n{TEXT}")
    assert (first["status"], first["details"], first["route_name"]) == (502, "direct_response", "block_all")
    assert (second["upstream_cluster"], second["route_name"]) == ("PassthroughCluster", "allow_any")
    assert third["route_name"] == "default"
    assert access_records('{"response_code": 502, "route_name": "block_all"}')[0]["route_name"] == "block_all"
