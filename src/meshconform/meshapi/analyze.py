"""References Istio accepts but that cannot work, found before traffic shows them (resources in,
warnings out; pure: no platform, no I/O).

The codes, levels and details are those `istioctl analyze` gives for the same findings
(istio.io/latest/docs/reference/config/analysis/; its analyzers in istio/istio
pkg/config/analysis/analyzers/virtualservice): IST0101 ReferencedResourceNotFound for a route or
mirror to a host no Service or ServiceEntry visible to the VirtualService's namespace provides
("Referenced host not found: \"httpbin\""), or to a port that host does not have, for a
VirtualService bound to a Gateway that does not exist and for a route to a subset no
DestinationRule defines for that host; IST0173 DestinationRuleSubsetNotSelectPods for a subset
whose labels select no pod of its service. The line follows istioctl's
"<level> [<code>] (<kind> <namespace>/<name> <file>:<line>) <details>" (pkg/config/analysis/diag/message.go;
the caller that read the file adds the line, `loader.line_of`), naming the field before the details where no line
is known.
Istio applies all of these; requests routed through them fail (404 at a gateway, 503 NR/UH in a
sidecar), so they are reported, never refused."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from meshconform.meshapi.istio import Destination, DestinationRule, Gateway, ServiceEntry, VirtualService
from meshconform.meshapi.kube import Deployment, Service
from meshconform.meshapi.loader import Sourced

CLUSTER_DOMAIN = "svc.cluster.local"
LEVELS = {"IST0101": "Error", "IST0173": "Error"}  # istioctl's level for each code (its messages.yaml)
EXPORT_TO = "networking.istio.io/exportTo"  # a Service's visibility, as a ServiceEntry's spec.exportTo


@dataclass(frozen=True)
class AnalysisWarning:
    code: str  # IST0101
    name: str  # ReferencedResourceNotFound
    kind: str
    namespace: str
    resource: str
    field: str  # where the reference is, e.g. spec.http[0].route[1].destination.subset
    message: str
    source: str = ""
    line: int | None = None  # where `field` is written in `source`, when a reader of the file found it

    @property
    def level(self) -> str:
        return LEVELS.get(self.code, "Warning")

    def __str__(self) -> str:
        """istioctl's line; it points at the field by its line in the file, and where no line is known (a manifest
        not read from a file) the field is named before the details instead."""
        if self.line is not None:
            return (f"{self.level} [{self.code}] ({self.kind} {self.namespace}/{self.resource} {self.source}:"
                    f"{self.line}) {self.message}")
        origin = f" {self.source}" if self.source else ""
        return (f"{self.level} [{self.code}] ({self.kind} {self.namespace}/{self.resource}{origin}) "
                f"{self.field}: {self.message}")

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "level": self.level, "name": self.name,
                "resource": f"{self.kind} {self.namespace}/{self.resource}", "field": self.field,
                "message": self.message, "source": self.source}


def fqdn(host: str, namespace: str) -> str:
    """A service host as Istio resolves it in `namespace`: short names get the namespace and the
    cluster domain ("reviews" in default: reviews.default.svc.cluster.local)."""
    if "*" in host or host.endswith(CLUSTER_DOMAIN) or host.count(".") > 1:
        return host
    return f"{host}.{namespace}.{CLUSTER_DOMAIN}" if "." not in host else f"{host}.{CLUSTER_DOMAIN}"


def _host_covers(pattern: str, host: str) -> bool:
    return pattern == host or (pattern.startswith("*") and host.endswith(pattern[1:]))


def analyze(resources: Sequence[Sourced], context: Iterable[Sourced] = (), *,
            registry_known: bool = False) -> list[AnalysisWarning]:
    """Warnings about applying `resources` on top of `context` (what the platform already holds; a
    resource in both counts as the new version): every finding on the applied resources, and the
    findings this apply newly causes on the others (a subset removed that a route still names).

    `registry_known`: `context` is everything the platform holds, so a host no Service or
    ServiceEntry there provides does not exist (on a cluster, whose Services are not in `context`,
    destination hosts are not judged)."""
    before = {item.key: item for item in context}
    after = {**before, **{item.key: item for item in resources}}
    applied = {item.key for item in resources}
    earlier = {(w.kind, w.namespace, w.resource, w.field, w.message)
               for w in _findings(list(before.values()), registry_known)}
    return [w for w in _findings(list(after.values()), registry_known)
            if (w.kind, w.namespace, w.resource) in applied
            or (w.kind, w.namespace, w.resource, w.field, w.message) not in earlier]


def _findings(everything: list[Sourced], registry_known: bool) -> list[AnalysisWarning]:
    warnings: list[AnalysisWarning] = []
    registry = _registry(everything) if registry_known else None
    for item in everything:
        resource = item.resource
        if isinstance(resource, VirtualService):
            if registry is not None:
                warnings += _hosts_exist(item, resource, registry)
            warnings += _gateways_exist(item, resource, everything)
            warnings += _subsets_exist(item, resource, everything)
        elif isinstance(resource, DestinationRule):
            warnings += _subsets_select_pods(item, resource, everything)
    return warnings


def _warning(item: Sourced, code: str, name: str, field: str, message: str) -> AnalysisWarning:
    meta = item.resource.metadata
    return AnalysisWarning(code, name, item.resource.kind, meta.namespace, meta.name, field, message, item.source)


def _gateway_ref(ref: str, namespace: str) -> tuple[str, str]:
    """(namespace, name) of a VirtualService's gateway reference: "ns/name", "name" (own
    namespace), or the older "name.ns.svc.cluster.local"."""
    if "/" in ref:
        ns, _, name = ref.partition("/")
        return ns, name
    if "." in ref:
        name, ns = ref.split(".")[:2]
        return ns, name
    return namespace, ref


def _gateways_exist(item: Sourced, vs: VirtualService, everything: list[Sourced]) -> list[AnalysisWarning]:
    gateways = {(i.resource.metadata.namespace, i.resource.metadata.name) for i in everything
                if isinstance(i.resource, Gateway)}
    found = []
    for index, ref in enumerate(vs.spec.gateways):
        if ref == "mesh":
            continue
        namespace, name = _gateway_ref(ref, vs.metadata.namespace)
        if (namespace, name) not in gateways:
            found.append(_warning(item, "IST0101", "ReferencedResourceNotFound", f"spec.gateways[{index}]",
                                  f'gateway "{namespace}/{name}" does not exist: the VirtualService is bound to '
                                  "no server"))
    return found


@dataclass(frozen=True)
class _Registered:
    """A host the mesh knows (a Service's or a ServiceEntry's), where it is visible, and its ports."""

    host: str  # a fully qualified name, or a wildcard ("*.example.com")
    scope: str  # "*" (every namespace) or the one namespace that sees it
    ports: frozenset[int]


def _scopes(export_to: Sequence[str], namespace: str) -> set[str]:
    """Where an exportTo list makes something visible: nothing listed or "*" is everywhere, "." its own namespace."""
    if not export_to or "*" in export_to:
        return {"*"}
    return {namespace if entry == "." else entry for entry in export_to}


def _registry(everything: list[Sourced]) -> list[_Registered]:
    registered = []
    for item in everything:
        resource, namespace = item.resource, item.resource.metadata.namespace
        if isinstance(resource, Service):
            exported = [e.strip() for e in resource.metadata.annotations.get(EXPORT_TO, "").split(",") if e.strip()]
            ports = frozenset(p.port for p in resource.spec.ports)
            registered += [_Registered(resource.fqdn, scope, ports) for scope in _scopes(exported, namespace)]
        elif isinstance(resource, ServiceEntry):
            ports = frozenset(p.number for p in resource.spec.ports)
            registered += [_Registered(fqdn(host, namespace), scope, ports) for host in resource.spec.hosts
                           for scope in _scopes(resource.spec.export_to, namespace)]
    return registered


def _lookup(registry: list[_Registered], host: str, namespace: str, export_to: Sequence[str]) -> _Registered | None:
    """The registered host a VirtualService in `namespace` reaches by `host`, as istioctl looks it up: what is
    visible everywhere or where the VirtualService is exported to (its own namespace by default), then a
    wildcard entry visible everywhere or in its namespace."""
    wanted = fqdn(host, namespace)
    scopes = {"*"} | ({namespace} if not export_to else {namespace if e == "." else e for e in export_to})
    exact = next((r for r in registry if r.host == wanted and r.scope in scopes), None)
    return exact or next((r for r in registry if r.host.startswith("*") and r.scope in ("*", namespace)
                          and wanted.removeprefix("*").endswith(r.host[1:])), None)


def _hosts_exist(item: Sourced, vs: VirtualService, registry: list[_Registered]) -> list[AnalysisWarning]:
    export_to = vs.spec.unmodelled_fields.get("exportTo") or []
    found = []
    for where, destination in _destinations(vs):
        what = "mirror host" if where.endswith(".mirror") else "host"
        entry = _lookup(registry, destination.host, vs.metadata.namespace, export_to)
        if entry is None:
            found.append(_warning(item, "IST0101", "ReferencedResourceNotFound", f"{where}.host",
                                  f'Referenced {what} not found: "{destination.host}"'))
        elif destination.port is not None and destination.port.number not in entry.ports:
            found.append(_warning(item, "IST0101", "ReferencedResourceNotFound", f"{where}.port.number",
                                  f'Referenced host:port not found: "{destination.host}:{destination.port.number}"'))
    return found


def _destinations(vs: VirtualService) -> Iterable[tuple[str, Destination]]:
    for r, rule in enumerate(vs.spec.http):
        for d, route in enumerate(rule.route):
            yield f"spec.http[{r}].route[{d}].destination", route.destination
        if rule.mirror is not None:
            yield f"spec.http[{r}].mirror", rule.mirror


def _subsets_exist(item: Sourced, vs: VirtualService, everything: list[Sourced]) -> list[AnalysisWarning]:
    rules = [(fqdn(i.resource.spec.host, i.resource.metadata.namespace), i.resource) for i in everything
             if isinstance(i.resource, DestinationRule)]
    found = []
    for where, destination in _destinations(vs):
        if destination.subset is None:
            continue
        host = fqdn(destination.host, vs.metadata.namespace)
        if not any(_host_covers(rule_host, host) and any(s.name == destination.subset for s in rule.spec.subsets)
                   for rule_host, rule in rules):
            found.append(_warning(item, "IST0101", "ReferencedResourceNotFound", f"{where}.subset",
                                  f'no DestinationRule defines subset "{destination.subset}" for host {host} '
                                  f'("{destination.host}+{destination.subset}"): requests routed there fail'))
    return found


def _subsets_select_pods(item: Sourced, rule: DestinationRule,
                         everything: list[Sourced]) -> list[AnalysisWarning]:
    """Only when the service and its Deployments are known (a host outside them is not judged)."""
    host = fqdn(rule.spec.host, rule.metadata.namespace)
    service = next((i.resource for i in everything if isinstance(i.resource, Service)
                    and f"{i.resource.metadata.name}.{i.resource.metadata.namespace}.{CLUSTER_DOMAIN}" == host), None)
    if service is None or not rule.spec.subsets:
        return []
    pods = [i.resource.spec.template.metadata.labels for i in everything if isinstance(i.resource, Deployment)
            and i.resource.metadata.namespace == service.metadata.namespace and i.resource.spec.replicas > 0
            and service.spec.selector.items() <= i.resource.spec.template.metadata.labels.items()]
    found = []
    for index, subset in enumerate(rule.spec.subsets):
        if not any(subset.labels.items() <= labels.items() for labels in pods):
            labels = ",".join(f"{k}={v}" for k, v in subset.labels.items()) or "none"
            found.append(_warning(item, "IST0173", "DestinationRuleSubsetNotSelectPods",
                                  f"spec.subsets[{index}].labels",
                                  f'subset "{subset.name}" (labels {labels}) selects no pod of service {host}: '
                                  "requests routed to it fail with 503 (no healthy upstream)"))
    return found
