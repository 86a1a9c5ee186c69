"""Whether the mesh writes an access log meshconform can read: a platform fact, decided once when the run's platform
comes up (a mesh meshconform installed, or a vendor's as found), recorded in the report, and behind every check that
reads the proxies' access log (`access_log` raises AccessLogNotRecorded at once instead of a wait that times out).

How Istio decides it (istio.io "Envoy Access Logs" and the Telemetry API reference):
- a Telemetry in the root namespace without a selector or targetRef is the mesh-wide setting (the oldest one, when
  there are several); where one sets `accessLogging`, it decides: an entry not `disabled`, with a provider that
  writes to the proxy's stdout (the built-in `envoy`, or an extension provider `envoyFileAccessLog` to /dev/stdout),
  turns the log on. An entry without providers uses MeshConfig `defaultProviders.accessLogging`;
- otherwise MeshConfig `accessLogFile` (ConfigMap `istio`, or `istio-<revision>`, in istio-system, key `mesh`):
  empty means no access log (Istio's default profile), /dev/stdout means the proxy's container log.
What the platform reads is the istio-proxy container's log in Istio's default TEXT format or its JSON encoding
(kube/evidence.py), so a log written to a file, in a custom format, filtered, or for one direction only is as good
as none for a check: each is not readable, with the reason. Per-namespace and per-workload Telemetry resources in
the run's own namespaces cannot predate the run; others elsewhere do not reach the run's proxies."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import yaml

from meshconform.errors import PlatformError
from meshconform.platform.kube.ownership import ObjectRef

ROOT_NAMESPACE = "istio-system"  # meshConfig.rootNamespace's default; also where istiod keeps the mesh ConfigMap
STDOUT = "/dev/stdout"
TELEMETRY_VERSIONS = ("telemetry.istio.io/v1", "telemetry.istio.io/v1alpha1")  # v1 from Istio 1.22


class Cluster(Protocol):
    def get(self, ref: ObjectRef) -> dict[str, Any] | None: ...

    def list(self, api_version: str, kind: str, namespace: str | None = None, label_selector: str | None = None,
             field_selector: str | None = None) -> Any: ...


@dataclass(frozen=True)
class AccessLogFact:
    """Whether the run's proxies write an access log meshconform can read, what decided it, and why not."""

    readable: bool
    decided_by: str  # e.g. "MeshConfig accessLogFile (ConfigMap istio-system/istio)"
    reason: str = ""  # when not readable: the sentence a not-applicable check reports

    def to_json(self) -> dict[str, Any]:
        return {"readable": self.readable, "decided_by": self.decided_by, **({"reason": self.reason}
                                                                              if self.reason else {})}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AccessLogFact:
        return cls(bool(data.get("readable")), str(data.get("decided_by", "")), str(data.get("reason", "")))


def decide(cluster: Cluster, revision: str | None = None) -> AccessLogFact:
    """The fact for the mesh as it is now (read-only)."""
    mesh, where = mesh_config(cluster, revision)
    root = str(mesh.get("rootNamespace") or ROOT_NAMESPACE)
    telemetry = _mesh_wide_telemetry(cluster, root)
    if telemetry is not None:
        return from_telemetry(telemetry, mesh, where)
    return from_mesh_config(mesh, where, root)


def mesh_config(cluster: Cluster, revision: str | None) -> tuple[dict[str, Any], str]:
    """MeshConfig as istiod reads it, and where from. No ConfigMap: Istio's defaults (no access log)."""
    name = f"istio-{revision}" if revision else "istio"
    found = cluster.get(ObjectRef("v1", "ConfigMap", ROOT_NAMESPACE, name))
    where = f"ConfigMap {ROOT_NAMESPACE}/{name}"
    if found is None:
        return {}, f"{where} (absent: Istio's defaults)"
    text = (found.get("data") or {}).get("mesh") or ""
    try:
        mesh = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise PlatformError(f"{where}, key mesh: not YAML ({exc})") from None
    if not isinstance(mesh, dict):
        raise PlatformError(f"{where}, key mesh: a mapping expected, not {type(mesh).__name__}")
    return mesh, where


def _mesh_wide_telemetry(cluster: Cluster, root: str) -> dict[str, Any] | None:
    """The root namespace's Telemetry without selector or targetRef that sets accessLogging (the oldest), if any."""
    for api_version in TELEMETRY_VERSIONS:
        try:
            items = list(cluster.list(api_version, "Telemetry", root).items)
        except PlatformError as exc:
            if "does not serve" in str(exc):
                continue  # this version (or the CRD) is not served
            raise
        wide = [t for t in items if not any((t.get("spec") or {}).get(k) for k in ("selector", "targetRef",
                                                                                     "targetRefs"))
                and (t.get("spec") or {}).get("accessLogging")]
        wide.sort(key=lambda t: (str((t.get("metadata") or {}).get("creationTimestamp") or ""),
                                 str((t.get("metadata") or {}).get("name"))))
        return wide[0] if wide else None
    return None


def from_mesh_config(mesh: Mapping[str, Any], where: str, root: str) -> AccessLogFact:
    decided_by = f"MeshConfig accessLogFile ({where})"
    path = str(mesh.get("accessLogFile") or "")
    if not path:
        return AccessLogFact(False, decided_by, f"the mesh writes no access log: MeshConfig accessLogFile is empty "
                                                f"({where}) and no Telemetry in {root} enables access logging")
    if path != STDOUT:
        return AccessLogFact(False, decided_by, f"the mesh writes its access log to {path} inside each proxy "
                                                f"container ({where}), not to its stdout, which meshconform reads")
    custom = _custom_format(mesh)
    if custom:
        return AccessLogFact(False, decided_by, f"{custom} ({where})")
    return AccessLogFact(True, decided_by)


def from_telemetry(telemetry: Mapping[str, Any], mesh: Mapping[str, Any], where: str) -> AccessLogFact:
    meta = telemetry.get("metadata") or {}
    name = f"Telemetry {meta.get('namespace', ROOT_NAMESPACE)}/{meta.get('name')}"
    decided_by = f"{name} (mesh-wide accessLogging)"
    entries: Sequence[Mapping[str, Any]] = (telemetry.get("spec") or {}).get("accessLogging") or []
    enabled = [e for e in entries if not e.get("disabled")]
    if not enabled:
        return AccessLogFact(False, decided_by, f"{name} disables access logging mesh-wide")
    defaults = [str(p) for p in (mesh.get("defaultProviders") or {}).get("accessLogging") or []]
    why_not: list[str] = []
    for entry in enabled:
        providers = [str(p.get("name")) for p in entry.get("providers") or []] or defaults
        if not providers:
            why_not.append("an entry names no provider and MeshConfig defaultProviders.accessLogging is empty")
            continue
        mode = str((entry.get("match") or {}).get("mode") or "CLIENT_AND_SERVER")
        expression = str((entry.get("filter") or {}).get("expression") or "")
        for provider in providers:
            problem = _provider_problem(provider, mesh)
            if problem:
                why_not.append(problem)
            elif mode != "CLIENT_AND_SERVER":
                why_not.append(f"provider {provider} logs {mode} traffic only, not both directions")
            elif expression:
                why_not.append(f"provider {provider} logs only requests matching {expression!r}")
            else:
                return AccessLogFact(True, decided_by)
    return AccessLogFact(False, decided_by, f"{name} sets access logging that meshconform cannot read: "
                                            + "; ".join(why_not) + f" ({where})")


def _provider_problem(provider: str, mesh: Mapping[str, Any]) -> str:
    """'' when `provider` writes Istio's default format (TEXT or JSON) to the proxy's stdout, else why not."""
    if provider == "envoy":  # the built-in provider: stdout, in MeshConfig's accessLogFormat and encoding
        return _custom_format(mesh)
    for extension in mesh.get("extensionProviders") or []:
        if extension.get("name") != provider:
            continue
        file_log = extension.get("envoyFileAccessLog")
        if not isinstance(file_log, dict):
            kind = next((k for k in extension if k != "name"), "unknown")
            return f"provider {provider} is {kind}, which does not write to the proxy's stdout"
        if str(file_log.get("path") or "") != STDOUT:
            return f"provider {provider} writes to {file_log.get('path')!r}, not to the proxy's stdout"
        if file_log.get("logFormat"):
            return f"provider {provider} sets a logFormat of its own (meshconform reads Istio's default format)"
        return ""
    return f"provider {provider} is not among MeshConfig extensionProviders"


def _custom_format(mesh: Mapping[str, Any]) -> str:
    if mesh.get("accessLogFormat"):
        return ("the mesh's access log has a custom format (MeshConfig accessLogFormat); meshconform reads Istio's "
                "default format, as TEXT or JSON")
    return ""


__all__ = ["AccessLogFact", "decide", "from_mesh_config", "from_telemetry", "mesh_config"]
