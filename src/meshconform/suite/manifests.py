"""The Istio config a conformance test applies: declared files, rendered and tagged.

A test declares its manifests by name (like the Gateway API suite's per-test YAML). Names starting
with `bookinfo/` are Bookinfo's own scenario configs; others live in `conformance/manifests/`.
Files are Jinja2 templates (for weights, percentages, hosts) rendered with StrictUndefined, so a
missing value is an error rather than an empty string.

Tagging: every HTTP route of every VirtualService gets a response header carrying a marker unique
to this apply. A convergence probe that sees the marker knows the *new* config answered, which a
previous test's config never can.

Naming: every object a test applies is named after the test (`<test id>-<name>`, as the Gateway API
suite does), references between them (a VirtualService's gateways, a Gateway's credentialName)
follow, so no two tests ever write the same object on a shared cluster."""

from __future__ import annotations

import copy
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

from meshconform.errors import ConfigError
from meshconform.meshapi.gateway_api import GROUP as GATEWAY_API_GROUP
from meshconform.meshapi.loader import Sourced, load_text, parse_document

MARKER_HEADER = "x-meshconform-config"


def manifest_path(name: str) -> Path:
    """The file a manifest name stands for: `bookinfo/...` in Bookinfo's own files, `<package>/...` in an installed
    check package's manifests (suite/extensions.py), anything else in ours (`conformance/manifests/`)."""
    from meshconform.suite.extensions import packages
    prefix, _, rest = name.partition("/")
    if prefix == "bookinfo":
        path = Path(str(resources.files("meshconform.bookinfo"))) / rest
    elif rest and prefix in packages():
        path = packages()[prefix].manifest_root() / rest
    else:
        path = Path(str(resources.files("meshconform.conformance"))) / "manifests" / name
    if not path.is_file():
        raise ConfigError("no such manifest", source=name)
    return path


def render(name: str, values: dict[str, Any]) -> str:
    path = manifest_path(name)
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                                     autoescape=False)  # noqa: S701 (YAML, not HTML)
    try:
        return environment.from_string(path.read_text()).render(**values)
    except jinja2.UndefinedError as exc:
        raise ConfigError(f"template value missing: {exc.message}", source=str(path)) from None
    except jinja2.TemplateSyntaxError as exc:
        raise ConfigError(f"line {exc.lineno}: template syntax: {exc.message}", source=str(path)) from None


def load_manifest(name: str, marker: str | None = None, **values: Any) -> list[Sourced]:
    items = load_text(render(name, values), str(manifest_path(name)))
    return tag_routes(items, marker) if marker else items


# Kinds whose objects are shared infrastructure, never renamed (a test declares, the base manifests own them).
_NEVER_RENAMED = frozenset({"Namespace"})


def owned_name(owner: str, name: str) -> str:
    """`<owner>-<name>`, kept a valid object name (DNS-1123 subdomain, at most 253 characters)."""
    return f"{owner}-{name}"[:253].rstrip("-.")


def name_after(items: list[Sourced], owner: str, renamed: dict[tuple[str, str], str]) -> list[Sourced]:
    """Copies of `items` named after `owner`; `renamed` maps (kind, original name) to the new name and
    grows with each call, so references to objects the same test applied earlier follow too."""
    for item in items:  # keyed by the key's kind, which tells a Gateway API Gateway from Istio's
        if item.resource.kind not in _NEVER_RENAMED:
            renamed[(item.key[0], item.resource.metadata.name)] = owned_name(owner, item.resource.metadata.name)
    result = []
    for item in items:
        if item.resource.kind in _NEVER_RENAMED:
            result.append(item)
            continue
        document = copy.deepcopy(item.document)
        document["metadata"]["name"] = renamed[(item.key[0], item.resource.metadata.name)]
        spec = document.get("spec") or {}
        if item.resource.kind in ("VirtualService", "DestinationRule"):
            _rename_service_hosts(spec, renamed)
        if item.resource.kind == "VirtualService":
            spec["gateways"] = [_gateway_reference(ref, renamed) for ref in spec.get("gateways") or []] or None
            if spec["gateways"] is None:
                del spec["gateways"]
        if item.resource.kind == "Gateway":
            for server in spec.get("servers") or []:
                tls = server.get("tls") or {}
                if tls.get("credentialName") and ("Secret", tls["credentialName"]) in renamed:
                    tls["credentialName"] = renamed[("Secret", tls["credentialName"])]
        if item.key[0] == f"HTTPRoute.{GATEWAY_API_GROUP}":
            _rename_route_references(spec, renamed)
        result.append(Sourced(parse_document(document, item.source), item.source, document))
    return result


def _rename_service_hosts(spec: dict[str, Any], renamed: dict[tuple[str, str], str]) -> None:
    """A VirtualService's or DestinationRule's short host names (hosts, destinations, mirrors, host) follow a
    Service the same test applied; other hosts (the testbed's, qualified names) stay as they are."""
    def follow(host: Any) -> Any:
        return renamed.get(("Service", host), host) if isinstance(host, str) and "." not in host else host
    if "host" in spec:
        spec["host"] = follow(spec["host"])
    if isinstance(spec.get("hosts"), list):
        spec["hosts"] = [follow(host) for host in spec["hosts"]]
    for rule in spec.get("http") or []:
        for destination in [*(route.get("destination") for route in rule.get("route") or []), rule.get("mirror")]:
            if isinstance(destination, dict) and "host" in destination:
                destination["host"] = follow(destination["host"])


def _rename_route_references(spec: dict[str, Any], renamed: dict[tuple[str, str], str]) -> None:
    """An HTTPRoute's parents (Gateways, Services), backends and mirror backends follow their renamed objects."""
    def follow(ref: dict[str, Any], default_kind: str, default_group: str) -> None:
        kind, group = ref.get("kind", default_kind), ref.get("group", default_group)
        key = f"{kind}.{group}" if group == GATEWAY_API_GROUP else kind
        if (key, ref.get("name")) in renamed:
            ref["name"] = renamed[(key, ref["name"])]
    for parent in spec.get("parentRefs") or []:
        follow(parent, "Gateway", GATEWAY_API_GROUP)
    for rule in spec.get("rules") or []:
        for backend in rule.get("backendRefs") or []:
            follow(backend, "Service", "")
        for item in rule.get("filters") or []:
            if isinstance((item.get("requestMirror") or {}).get("backendRef"), dict):
                follow(item["requestMirror"]["backendRef"], "Service", "")


def _gateway_reference(reference: str, renamed: dict[tuple[str, str], str]) -> str:
    """'name' or 'namespace/name' of a Gateway; 'mesh' and gateways this test did not apply stay as they are."""
    namespace, _, name = reference.rpartition("/")
    new = renamed.get(("Gateway", name))
    if reference == "mesh" or new is None:
        return reference
    return f"{namespace}/{new}" if namespace else new


def tag_routes(items: list[Sourced], marker: str) -> list[Sourced]:
    """A copy of `items` whose VirtualService HTTP routes all set the marker response header, as do the rules
    of HTTPRoutes (through a ResponseHeaderModifier filter, the Gateway API's way to set one)."""
    tagged = []
    for item in items:
        if item.key[0] == f"HTTPRoute.{GATEWAY_API_GROUP}":
            tagged.append(_tag_http_route(item, marker))
            continue
        if item.resource.kind != "VirtualService":
            tagged.append(item)
            continue
        document = copy.deepcopy(item.document)
        for route in document.get("spec", {}).get("http", []) or []:
            response = route.setdefault("headers", {}).setdefault("response", {})
            response.setdefault("set", {})[MARKER_HEADER] = marker
        tagged.append(Sourced(parse_document(document, item.source), item.source, document))
    return tagged


def _tag_http_route(item: Sourced, marker: str) -> Sourced:
    document = copy.deepcopy(item.document)
    spec = document.setdefault("spec", {})
    for rule in spec.setdefault("rules", [{}]) or []:
        filters = rule.setdefault("filters", [])
        modifier = next((f for f in filters if f.get("type") == "ResponseHeaderModifier"), None)
        if modifier is None:
            modifier = {"type": "ResponseHeaderModifier", "responseHeaderModifier": {}}
            filters.append(modifier)
        body = modifier.setdefault("responseHeaderModifier", {})
        body["set"] = [h for h in body.get("set") or [] if h.get("name", "").lower() != MARKER_HEADER]
        body["set"].append({"name": MARKER_HEADER, "value": marker})
    return Sourced(parse_document(document, item.source), item.source, document)
