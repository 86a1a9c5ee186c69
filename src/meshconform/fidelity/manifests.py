"""Kubernetes objects that stand in for a case's world on the local platform.

Workloads are shared by every scenario (started once: an echo Deployment per backend service, a meshed
client per calling namespace); Services, Secrets and the case's Istio resources are applied per scenario,
so each scenario sees exactly the services Istio's case declares."""

from __future__ import annotations

from typing import Any

from meshconform.fidelity.cases import CaseSet, Scenario
from meshconform.suite.tls import ServerCredential, issue_server_credential

LOCAL_APP = "meshconform.io/local-app"


def _namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": {"istio-injection": "enabled"}}}


def _deployment(name: str, namespace: str, app: str, ports: list[int], service: str | None) -> dict[str, Any]:
    container: dict[str, Any] = {"name": name, "image": f"ghcr.io/meshconform/{app}:0.1.0"}
    if ports:
        container["ports"] = [{"containerPort": port} for port in ports]
    if service is not None:
        container["env"] = [{"name": "MESHCONFORM_SERVICE", "value": service}]
    labels = {"app": name, "version": "v1"}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels, "annotations": {LOCAL_APP: app}},
                                  "spec": {"serviceAccountName": name, "containers": [container]}}}}


def calling_namespaces(cases: CaseSet) -> set[str]:
    return {c.source.split("/", 1)[0] for c in cases.calls if c.source.endswith("/client")}


def base_manifests(cases: CaseSet) -> list[dict[str, Any]]:
    """Namespaces, echo Deployments (one per backend service) and meshed clients, for the whole run."""
    namespaces = set(cases.namespaces) | calling_namespaces(cases) | {"default"}
    ports: dict[tuple[str, str], set[int]] = {}
    for scenario in cases.scenarios:
        namespaces.update(d.get("metadata", {}).get("namespace", "default") for d in scenario.resources)
        for backend in scenario.backends:
            ports.setdefault((backend.namespace, backend.deployment), set()).update(backend.declared)
            namespaces.add(backend.namespace)
    namespaces.discard("istio-system")  # the platform's own
    docs = [_namespace(n) for n in sorted(namespaces)]
    for (namespace, service), declared in sorted(ports.items()):
        docs.append(_deployment(service, namespace, "echo", sorted(declared), service))
    for namespace in sorted(calling_namespaces(cases)):
        docs.append(_deployment("client", namespace, "client", [], None))
    return docs


def scenario_services(scenario: Scenario) -> list[dict[str, Any]]:
    """The Services of one scenario: each selects its backend's echo pod, each port to the pod port it targets."""
    docs = []
    for backend in (b for b in scenario.backends if b.ports):
        ports = [{"name": backend.port_names.get(p, f"http-{p}"), "port": p, "targetPort": backend.target_of(p),
                  **({"appProtocol": backend.app_protocols[p]} if p in backend.app_protocols else {})}
                 for p in backend.ports]
        docs.append({"apiVersion": "v1", "kind": "Service",
                     "metadata": {"name": backend.service, "namespace": backend.namespace},
                     "spec": {"selector": {"app": backend.deployment}, "ports": ports}})
    return docs


def scenario_secrets(scenario: Scenario) -> tuple[list[dict[str, Any]], dict[str, ServerCredential]]:
    """kubernetes.io/tls Secrets for the gateway (certificates made for this run), and what clients trust."""
    docs, credentials = [], {}
    for entry in scenario.tls_credentials:
        credential = issue_server_credential(entry["host"])
        data = credential.secret_data()
        docs.append({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                     "metadata": {"name": entry["name"], "namespace": "istio-system"},
                     "data": {"tls.crt": data["crt"], "tls.key": data["key"]}})
        credentials[entry["host"]] = credential
    return docs, credentials
