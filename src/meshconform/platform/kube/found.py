"""The mesh as found on a cluster (api.SupportsFoundConfig): Istio configuration this run did not create that can
change what a check sees. Read-only; nothing found is ever changed.

What is listed, and why (Istio's scoping rules, istio.io "Configuration scoping", the policies' reference pages):
- in the mesh's root namespace (istio-system), every PeerAuthentication, AuthorizationPolicy,
  RequestAuthentication, Sidecar, EnvoyFilter and Telemetry: there they apply to the whole mesh; and the
  VirtualServices, DestinationRules and ServiceEntries there;
- in any namespace, a VirtualService, DestinationRule or ServiceEntry exported to every namespace (`exportTo`
  absent or `*`) whose hosts can name the suite's services (a wildcard such as `*.svc.cluster.local`) or sit in
  the run's namespaces;
- in any namespace, a Gateway whose selector picks the ingress gateway's pods: its servers meet the suite's in the
  same proxy;
- anything in the run's own namespaces without the run's label.
Policies elsewhere apply only to their own namespace, which the run never uses. Kinds the cluster does not serve
(Telemetry without its CRD, say) are skipped."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, Protocol

from meshconform.errors import PlatformError
from meshconform.platform.api import FoundObject
from meshconform.platform.kube.names import NamespaceMap
from meshconform.platform.kube.ownership import RUN_LABEL

ROOT_NAMESPACE = "istio-system"  # meshConfig.rootNamespace's default
MESH_WIDE = (("security.istio.io/v1", "PeerAuthentication"), ("security.istio.io/v1", "AuthorizationPolicy"),
             ("security.istio.io/v1", "RequestAuthentication"), ("networking.istio.io/v1", "Sidecar"),
             ("networking.istio.io/v1alpha3", "EnvoyFilter"), ("telemetry.istio.io/v1", "Telemetry"))
ROUTING = (("networking.istio.io/v1", "VirtualService"), ("networking.istio.io/v1", "DestinationRule"),
           ("networking.istio.io/v1", "ServiceEntry"))
GATEWAY = ("networking.istio.io/v1", "Gateway")
# Hosts that can name a Service of any namespace (a `*` prefix wildcard covering the cluster's service domain).
_WIDE_HOSTS = ("*", "*.local", "*.cluster.local", "*.svc.cluster.local")


class Lister(Protocol):
    def list(self, api_version: str, kind: str, namespace: str | None = None, label_selector: str | None = None,
             field_selector: str | None = None) -> Any: ...


def _hosts(kind: str, spec: Mapping[str, Any]) -> list[str]:
    if kind == "DestinationRule":
        return [str(spec.get("host") or "")]
    return [str(h) for h in spec.get("hosts") or []]


def _reaches_suite(host: str, names: NamespaceMap) -> bool:
    bare = host.split("/", 1)[-1].lower()
    if bare in _WIDE_HOSTS:
        return True
    return any(part.startswith(f"{names.prefix}-") for part in bare.split("."))


def _exported_everywhere(spec: Mapping[str, Any]) -> bool:
    return not spec.get("exportTo") or "*" in spec["exportTo"]


def _listed(cluster: Lister, api_version: str, kind: str, namespace: str | None) -> list[dict[str, Any]]:
    try:
        return list(cluster.list(api_version, kind, namespace).items)
    except PlatformError as exc:
        if "does not serve" in str(exc):
            return []  # the kind's CRD is not installed: nothing of it can exist
        raise


def found_config(cluster: Lister, names: NamespaceMap, run_id: str, gateway_labels: Mapping[str, str],
                 run_namespaces: Collection[str]) -> list[FoundObject]:
    """The configuration described in the module docstring, as it is now (namespaces as the suite names them)."""
    found: list[FoundObject] = []
    seen: set[tuple[str, str, str]] = set()

    def add(api_version: str, kind: str, item: dict[str, Any], scope: str) -> None:
        meta = item.get("metadata") or {}
        if (meta.get("labels") or {}).get(RUN_LABEL) == run_id:
            return  # this run's own
        namespace = names.logical(str(meta.get("namespace") or ""))
        key = (kind, namespace, str(meta.get("name")))
        if key not in seen:
            seen.add(key)
            found.append(FoundObject(api_version, kind, namespace, key[2], {**item, "apiVersion": api_version,
                                                                          "kind": kind}, scope))

    for api_version, kind in (*MESH_WIDE, *ROUTING):
        for item in _listed(cluster, api_version, kind, ROOT_NAMESPACE):
            add(api_version, kind, item, f"mesh-wide: root namespace {ROOT_NAMESPACE}")
    for api_version, kind in ROUTING:
        for item in _listed(cluster, api_version, kind, None):
            namespace = str((item.get("metadata") or {}).get("namespace") or "")
            spec = item.get("spec") or {}
            if namespace in run_namespaces:
                add(api_version, kind, item, f"namespace {names.logical(namespace)} (one of the run's), not the "
                                             "run's own")
            elif _exported_everywhere(spec) and any(_reaches_suite(h, names) for h in _hosts(kind, spec)):
                add(api_version, kind, item, f"namespace {namespace}, exported to every namespace, for hosts "
                                             f"{', '.join(_hosts(kind, spec))}")
    for item in _listed(cluster, *GATEWAY, None):
        selector = (item.get("spec") or {}).get("selector") or {}
        if selector and all(gateway_labels.get(k) == v for k, v in selector.items()):
            namespace = str((item.get("metadata") or {}).get("namespace") or "")
            add(*GATEWAY, item, f"namespace {names.logical(namespace)}, served by the ingress gateway the suite uses")
    return found
