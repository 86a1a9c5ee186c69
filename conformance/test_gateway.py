"""Gateway ingress: hosts and paths bound through a Gateway + VirtualService."""

from __future__ import annotations

from meshconform.suite.checks import wait_for
from meshconform.suite.unit import conformance_test
from meshconform.traffic.model import Request


@conformance_test("gateway-host-path", "Exposed paths of a bound host reach the backend; other paths and "
                  "other hosts get 404.", features={"GatewayHTTP"})
def test_gateway_host_and_path(mesh_config, mesh_ingress, mesh_timeouts, mesh_result) -> None:  # type: ignore[no-untyped-def]
    host = "echo-gw.example.com"
    mesh_config.apply_yaml(f"""apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: echo-gw}}
spec:
  selector: {{istio: ingressgateway}}
  servers: [{{port: {{number: 80, name: http, protocol: HTTP}}, hosts: [{host}]}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: echo-gw}}
spec:
  hosts: [{host}]
  gateways: [echo-gw]
  http:
  - match: [{{uri: {{prefix: /status}}}}, {{uri: {{exact: /exact}}}}]
    route: [{{destination: {{host: echo, port: {{number: 8080}}}}}}]
""")
    wait_for(mesh_ingress, Request("/status/200", host=host), lambda r: r.status == 200, mesh_timeouts, "gateway route")
    ok, exact, other_path, other_host = mesh_ingress.send([
        Request("/status/201", host=host), Request("/exact", host=host), Request("/headers", host=host),
        Request("/status/200", host="not-bound.example.com")])
    mesh_result.figure("statuses", [ok.status, exact.status, other_path.status, other_host.status])
    assert ok.status == 201 and ok.json()["service"] == "echo"
    assert exact.status == 200
    assert other_path.status == 404
    assert other_host.status == 404
