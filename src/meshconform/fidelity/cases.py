"""Istio's simulation cases as meshconform data: load and check the case files (tests/fidelity/cases/).

A case file holds scenarios (one Istio subtest: backends, Istio resources) and their calls (one Istio
expectation each: where the call comes from, what it sends, and the outcome istiod's config gives)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from meshconform.errors import ConfigError

ISTIO_VERSION = "1.30.3"
ISTIO_COMMIT = "56df41f63e513f834c9a3af33d8aed82d1d961f2"
ISTIO_FILES = {
    "gateway": "pilot/pkg/networking/core/gateway_simulation_test.go",
    "sidecar": "pilot/pkg/networking/core/sidecar_simulation_test.go",
    "peer_authentication": "pilot/pkg/networking/core/peer_authentication_simulation_test.go",
    "serviceentry": "pilot/pkg/networking/core/serviceentry_simulation_test.go",
}
ERRORS = ("no_route", "no_virtual_host", "tls_redirect", "no_listener", "no_filter_chain", "mtls_error",
          "protocol_error")
TLS_MODES = ("plaintext", "tls", "mtls")
PROTOCOLS = ("http", "http2", "tcp")
DEFAULT_TARGET_PORT = 8080  # where a backend's app listens when the case does not care


@dataclass(frozen=True)
class Backend:
    """A Service `service` in `namespace` selecting the echo workload `workload` (by default its own name), which
    answers as the service. The Service (its `ports`, each to `target_ports[port]`, else `target_port`) is applied
    per scenario, none when `ports` is empty. The workload's Deployment declares every port its Services target
    and `other_ports` (ports no Service targets: inbound passthrough), in every scenario."""

    service: str
    namespace: str
    ports: tuple[int, ...]
    target_port: int = DEFAULT_TARGET_PORT
    port_names: dict[int, str] = field(default_factory=dict)
    other_ports: tuple[int, ...] = ()
    target_ports: dict[int, int] = field(default_factory=dict)
    workload: str = ""
    app_protocols: dict[int, str] = field(default_factory=dict)

    @property
    def deployment(self) -> str:
        return self.workload or self.service

    def target_of(self, port: int) -> int:
        return self.target_ports.get(port, self.target_port)

    @property
    def declared(self) -> set[int]:
        return {self.target_port, *(self.target_of(p) for p in self.ports), *self.other_ports}

    @property
    def key(self) -> tuple[str, str]:
        return self.namespace, self.service


@dataclass(frozen=True)
class Expect:
    cluster: str | None = None
    error: str | None = None
    absent_virtual_host: str | None = None

    def describe(self) -> str:
        if self.cluster:
            return f"cluster {self.cluster}"
        if self.error:
            return f"error {self.error}"
        return f"no virtual host {self.absent_virtual_host}"


@dataclass(frozen=True)
class Call:
    id: str
    name: str
    source: str  # ingress | <namespace>/client | inbound
    port: int
    expect: Expect
    host: str = ""
    path: str = "/"
    workload: str = ""  # inbound calls: <namespace>/<service> of the backend called
    protocol: str = "http"
    tls: str = "plaintext"
    alpn: str | None = None


@dataclass
class Scenario:
    """One Istio subtest: what is applied, and the calls made against it."""

    file: str
    test: str
    subtest: str
    source: str  # the case file
    resources: list[dict[str, Any]]
    backends: list[Backend]
    calls: list[Call]
    tls_credentials: list[dict[str, str]] = field(default_factory=list)

    @property
    def istio_file(self) -> str:
        return ISTIO_FILES[self.file]

    @property
    def id(self) -> str:
        """Istio's test path: Test/subtest, or just Test where the test runs its calls directly (TestLoop)."""
        return f"{self.test}/{self.subtest}" if self.subtest else self.test


@dataclass
class CaseSet:
    scenarios: list[Scenario]
    namespaces: set[str]

    @property
    def calls(self) -> list[Call]:
        return [c for s in self.scenarios for c in s.calls]


def _need(data: dict[str, Any], key: str, kind: type, source: str, where: str) -> Any:
    if key not in data:
        raise ConfigError(f"missing {key!r}", source=source, resource=where, field=key)
    value = data[key]
    if not isinstance(value, kind):
        raise ConfigError(f"{key!r} must be a {kind.__name__}", source=source, resource=where, field=key)
    return value


def _backend(data: dict[str, Any], source: str, where: str) -> Backend:
    return Backend(service=_need(data, "service", str, source, where), namespace=_need(data, "namespace", str, source,
                   where), ports=tuple(_need(data, "ports", list, source, where)),
                   target_port=int(data.get("target_port", DEFAULT_TARGET_PORT)),
                   port_names={int(k): str(v) for k, v in (data.get("port_names") or {}).items()},
                   other_ports=tuple(int(p) for p in data.get("other_ports") or ()),
                   target_ports={int(k): int(v) for k, v in (data.get("target_ports") or {}).items()},
                   workload=str(data.get("workload", "")),
                   app_protocols={int(k): str(v) for k, v in (data.get("app_protocols") or {}).items()})


def _call(data: dict[str, Any], scenario_id: str, source: str) -> Call:
    name = _need(data, "name", str, source, scenario_id)
    where = f"{scenario_id}/{name}"
    expect_data = _need(data, "expect", dict, source, where)
    expect = Expect(**{k: expect_data.get(k) for k in ("cluster", "error", "absent_virtual_host")})
    if sum(v is not None for v in (expect.cluster, expect.error, expect.absent_virtual_host)) != 1:
        raise ConfigError("expect names exactly one of cluster, error, absent_virtual_host", source=source,
                          resource=where, field="expect")
    if expect.error is not None and expect.error not in ERRORS:
        raise ConfigError(f"unknown error {expect.error!r}; known: {', '.join(ERRORS)}", source=source,
                          resource=where, field="expect.error")
    origin = _need(data, "from", str, source, where)
    call = Call(id=where, name=name, source=origin, port=_need(data, "port", int, source, where), expect=expect,
                host=str(data.get("host", "")), path=str(data.get("path", "/")), workload=str(data.get("workload", "")),
                protocol=str(data.get("protocol", "http")), tls=str(data.get("tls", "plaintext")),
                alpn=data.get("alpn"))
    if call.protocol not in PROTOCOLS:
        raise ConfigError(f"protocol must be one of {PROTOCOLS}", source=source, resource=where, field="protocol")
    if call.tls not in TLS_MODES:
        raise ConfigError(f"tls must be one of {TLS_MODES}", source=source, resource=where, field="tls")
    if origin == "inbound" and "/" not in call.workload:
        raise ConfigError("an inbound call names its workload as <namespace>/<service>", source=source,
                          resource=where, field="workload")
    if origin != "inbound" and not call.host:
        raise ConfigError("a call through a proxy names its host", source=source, resource=where, field="host")
    return call


def load_file(path: Path) -> list[Scenario]:
    source = str(path)
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict):
        raise ConfigError("a case file is a mapping", source=source)
    file_key = _need(data, "file", str, source, "<file>")
    if file_key not in ISTIO_FILES:
        raise ConfigError(f"unknown Istio file key {file_key!r}; known: {sorted(ISTIO_FILES)}", source=source,
                          field="file")
    shared = [_backend(b, source, "backends") for b in data.get("backends") or []]
    scenarios = []
    for index, entry in enumerate(_need(data, "scenarios", list, source, "<file>")):
        where = f"scenarios[{index}]"
        test = _need(entry, "test", str, source, where)
        subtest = _need(entry, "subtest", str, source, where)
        scenario_id = f"{test}/{subtest}" if subtest else test
        resources = entry.get("resources") or []
        if isinstance(resources, str):
            resources = [d for d in yaml.safe_load_all(resources) if d]
        scenarios.append(Scenario(
            file=file_key, test=test, subtest=subtest, source=source, resources=resources,
            backends=shared + [_backend(b, source, scenario_id) for b in entry.get("backends") or []],
            calls=[_call(c, scenario_id, source) for c in _need(entry, "calls", list, source, scenario_id)],
            tls_credentials=list(entry.get("tls_credentials") or [])))
    return scenarios


def load_cases(folder: Path) -> CaseSet:
    scenarios: list[Scenario] = []
    namespaces: set[str] = set()
    for path in sorted(folder.glob("*.yaml")):
        scenarios.extend(load_file(path))
        extra = (yaml.safe_load(path.read_text()) or {}).get("namespaces") or []
        namespaces.update(extra)
    seen: dict[str, str] = {}
    for call in (c for s in scenarios for c in s.calls):
        if call.id in seen:
            raise ConfigError(f"case id {call.id!r} appears twice", source=seen[call.id], resource=call.id)
        seen[call.id] = call.id
    _check_backends(scenarios)
    return CaseSet(scenarios, namespaces)


def _check_backends(scenarios: list[Scenario]) -> None:
    """One Deployment per (namespace, workload) serves every scenario: its first container port must agree."""
    ports: dict[tuple[str, str], tuple[int, str]] = {}
    for scenario in scenarios:
        for backend in scenario.backends:
            known = ports.setdefault((backend.namespace, backend.deployment), (backend.target_port, scenario.id))
            if known[0] != backend.target_port:
                raise ConfigError(f"backend {backend.namespace}/{backend.service} listens on {known[0]} in "
                                  f"{known[1]} but on {backend.target_port} here", source=scenario.source,
                                  resource=scenario.id, field="backends.target_port")
