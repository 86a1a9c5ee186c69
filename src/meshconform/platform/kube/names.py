"""Namespace mapping: the suite's logical namespaces (`default`, `legacy`, `optin`, ...) become namespaces of
this run on the cluster (`mc-<run>-default`, ...), so a run never touches `default` or a user's namespace.

Applied at the platform boundary in both directions: documents going to the cluster (metadata.namespace,
Namespace names, and the namespace parts of Istio host names, gateway references and principals, and the
`namespace` of Gateway API references), and what
the suite reads back (workload namespaces, identities, bodies of replies that echo a namespace).
Mesh namespaces (the Istio root namespace, the gateway's) are shared by the whole mesh and never mapped."""

from __future__ import annotations

import copy
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

# Kubernetes namespace names are DNS labels (RFC 1123), at most 63 characters.
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# Keys whose string values are (lists of) service host names: VirtualService hosts and destination hosts,
# DestinationRule host, ServiceEntry hosts, Gateway servers' hosts ("ns/host" form), Sidecar egress hosts,
# AuthorizationPolicy operation hosts and notHosts.
_HOST_KEYS = frozenset({"host", "hosts", "notHosts"})
_GATEWAY_KEYS = frozenset({"gateways"})  # VirtualService gateways: "<ns>/<name>" or "<name>" or "mesh"
_PRINCIPAL_KEYS = frozenset({"principals", "notPrincipals"})  # "cluster.local/ns/<ns>/sa/<sa>"
_NAMESPACE_KEYS = frozenset({"namespaces", "notNamespaces"})  # AuthorizationPolicy sources
ISTIO_GROUPS = ("networking.istio.io/", "security.istio.io/", "telemetry.istio.io/", "extensions.istio.io/")
# Gateway API references name their namespace in a `namespace` field (parentRefs, backendRefs, a mirror's backendRef).
GATEWAY_API_GROUPS = ("gateway.networking.k8s.io/",)
_REFERENCE_NAMESPACE_KEYS = frozenset({"namespace"})


@dataclass(frozen=True)
class NamespaceMap:
    """`prefix` is unique to the run (e.g. "mc-3fa2c1"); `shared` namespaces keep their names."""

    prefix: str
    shared: frozenset[str] = frozenset({"istio-system"})

    def __post_init__(self) -> None:
        if not _LABEL.match(self.prefix) or len(self.prefix) > 40:
            raise ValueError(f"namespace prefix {self.prefix!r} is not a DNS label of at most 40 characters")

    def real(self, logical: str) -> str:
        if logical in self.shared:
            return logical
        name = f"{self.prefix}-{logical}"
        if len(name) > 63:
            raise ValueError(f"namespace {logical!r} mapped to {name!r}: longer than 63 characters")
        return name

    def logical(self, real: str) -> str:
        return real.removeprefix(f"{self.prefix}-") if real.startswith(f"{self.prefix}-") else real

    def is_ours(self, real: str) -> bool:
        return real.startswith(f"{self.prefix}-")

    # ------------------------------------------------------------------ documents to the cluster

    def document(self, doc: dict[str, Any], logical_namespaces: Collection[str]) -> dict[str, Any]:
        """A copy of `doc` as it goes to the cluster. `logical_namespaces`: the suite's namespaces that may
        appear inside host names and principals (only these are rewritten there)."""
        out = copy.deepcopy(doc)
        meta = out.setdefault("metadata", {})
        if out.get("kind") == "Namespace" and out.get("apiVersion") == "v1":
            meta["name"] = self.real(meta["name"])
            meta.pop("namespace", None)
            return out
        meta["namespace"] = self.real(meta.get("namespace") or "default")
        if str(out.get("apiVersion", "")).startswith((*ISTIO_GROUPS, *GATEWAY_API_GROUPS)):
            known = frozenset(logical_namespaces) - self.shared
            out["spec"] = self._walk(out.get("spec"), None, known)
        return out

    def _walk(self, value: Any, key: str | None, known: frozenset[str]) -> Any:
        if isinstance(value, dict):
            return {k: self._walk(v, k, known) for k, v in value.items()}
        if isinstance(value, list):
            return [self._walk(v, key, known) for v in value]
        if isinstance(value, str) and key is not None:
            return self._string(value, key, known)
        return value

    def _string(self, value: str, key: str, known: frozenset[str]) -> str:
        if key in _HOST_KEYS:
            return self.host(value, known, allow_namespace_slash=True)
        if key in _GATEWAY_KEYS:
            ns, slash, rest = value.partition("/")
            return f"{self.real(ns)}/{rest}" if slash and ns in known else value
        if key in _PRINCIPAL_KEYS:
            match = re.match(r"^(.*/ns/)([^/]+)(/sa/.*)$", value)
            if match and match.group(2) in known:
                return f"{match.group(1)}{self.real(match.group(2))}{match.group(3)}"
            return value
        if key in _NAMESPACE_KEYS | _REFERENCE_NAMESPACE_KEYS and value in known:
            return self.real(value)
        return value

    def host(self, value: str, known: Collection[str], allow_namespace_slash: bool = False) -> str:
        """`svc.<ns>[.svc[.cluster.local]][*][:port]` with a known logical ns (in any case): the ns part mapped.
        With `allow_namespace_slash`, also `<ns>/<host>` (Gateway and Sidecar host form)."""
        if allow_namespace_slash and "/" in value:
            ns, _, rest = value.partition("/")
            mapped_ns = self.real(ns) if ns in known and ns not in self.shared else ns
            return f"{mapped_ns}/{self.host(rest, known)}"
        name, colon, port = value.partition(":")
        # An AuthorizationPolicy host may end in "*" ("echo.default.svc*"): the name before it is mapped.
        star = "*" if name.endswith("*") and not name.startswith("*") else ""
        parts = name.removesuffix(star).split(".")
        # Host names are case-insensitive (a check may send "Echo.Default:8080"); the rest keeps its case.
        folded = [p.lower() for p in parts]
        if len(parts) >= 2 and folded[1] in known and folded[1] not in self.shared and (
                len(parts) == 2 or folded[2:] in (["svc"], ["svc", "cluster", "local"])):
            parts[1] = self.real(folded[1])
        return ".".join(parts) + star + colon + port

    # ------------------------------------------------------------------ what the suite reads back

    def unmap_text(self, text: str) -> str:
        """Real namespace names in a reply (echo's JSON, XFCC identities) back to logical ones. The prefix is
        unique to the run, so this never touches anything else."""
        return re.sub(re.escape(self.prefix) + r"-([a-z0-9]([-a-z0-9]*[a-z0-9])?)", r"\1", text)


def run_prefix(run_id: str) -> str:
    """A short, DNS-safe prefix from a run id ("20261122-061017-run-3fa2c1" -> "mc-3fa2c1")."""
    tail = re.sub(r"[^a-z0-9]", "", run_id.lower().rsplit("-", 1)[-1])[:12] or "run"
    return f"mc-{tail}"
