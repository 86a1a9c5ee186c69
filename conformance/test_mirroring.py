"""Mirroring: the mirror receives copies; the caller sees only the primary's answers."""

from __future__ import annotations

import time

from meshconform.suite.checks import marker_headers, new_marker, wait_for_marker
from meshconform.suite.unit import conformance_test
from meshconform.traffic.model import Request


@conformance_test("mirror-full", "With mirror and no mirrorPercentage (100%), every request id reaches the mirror "
                  "backend, and callers see only the primary's replies.", features={"Mirroring"})
def test_mirror_full(mesh_platform, mesh_config, mesh_meshed_client, mesh_timeouts, mesh_result) -> None:  # type: ignore[no-untyped-def]
    marker = new_marker("mirror")
    mesh_config.apply_yaml(f"""apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: echo}}
spec:
  hosts: [echo]
  http:
  - headers: {marker_headers(marker)}
    route: [{{destination: {{host: echo}}}}]
    mirror: {{host: echo-mirror}}
""")
    wait_for_marker(mesh_meshed_client, Request("/probe", host="echo:8080"), marker, mesh_timeouts)
    path = f"/mirror-{marker}"  # a path of its own: no other test's traffic can be counted
    replies = mesh_meshed_client.send([Request(f"{path}/{i}", host="echo:8080") for i in range(100)])
    assert all(r.status == 200 and r.json()["service"] == "echo" for r in replies)
    wanted = {r.request_id for r in replies}
    deadline = time.monotonic() + mesh_timeouts.max_time_to_consistency
    seen: set[str] = set()
    while time.monotonic() < deadline and not wanted <= seen:
        seen = {rec["request_id"] for rec in mesh_platform.request_log("default", "echo-mirror")
                if rec["path"].startswith(path)}
        time.sleep(0.05)
    mesh_result.figure("mirrored", f"{len(wanted & seen)}/{len(wanted)}")
    assert wanted <= seen, f"the mirror saw {len(wanted & seen)} of {len(wanted)} request ids"


@conformance_test("mirror-errors-hidden", "A mirror that answers 500 does not change what callers get.",
                  features={"Mirroring"})
def test_mirror_errors_hidden(mesh_config, mesh_meshed_client, mesh_timeouts, mesh_result) -> None:  # type: ignore[no-untyped-def]
    marker = new_marker("mirror-err")
    mesh_config.apply_yaml(f"""apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: echo}}
spec:
  hosts: [echo]
  http:
  - headers: {marker_headers(marker)}
    route: [{{destination: {{host: echo}}}}]
    mirror: {{host: echo-mirror}}
    fault: {{abort: {{httpStatus: 200, percentage: {{value: 0}}}}}}
""")
    wait_for_marker(mesh_meshed_client, Request("/probe", host="echo:8080"), marker, mesh_timeouts)
    replies = mesh_meshed_client.send([Request("/status/200", host="echo:8080") for _ in range(50)])
    mesh_result.figure("statuses", sorted({r.status for r in replies}))
    assert {r.status for r in replies} == {200}
    assert {r.json()["service"] for r in replies} == {"echo"}
