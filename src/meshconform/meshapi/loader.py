"""Reading resources from YAML: every error names the file, the resource and the field."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from meshconform.errors import ConfigError
from meshconform.meshapi.base import Resource
from meshconform.meshapi.gateway_api import GATEWAY_API_KINDS
from meshconform.meshapi.gateway_api import GROUP as GATEWAY_API_GROUP
from meshconform.meshapi.istio import ISTIO_KINDS
from meshconform.meshapi.kube import KUBE_KINDS

KINDS: dict[str, type[Resource]] = {**ISTIO_KINDS, **KUBE_KINDS}
# Kinds of gateway.networking.k8s.io, chosen by apiVersion (its Gateway shares a kind name with Istio's).
GROUPED_KINDS: dict[str, dict[str, type[Resource]]] = {GATEWAY_API_GROUP: GATEWAY_API_KINDS}


@dataclass(frozen=True)
class Sourced:
    """A parsed resource and where it came from (for error messages and reports)."""

    resource: Resource
    source: str
    document: dict[str, Any]

    @property
    def key(self) -> tuple[str, str, str]:
        return self.resource.key


def load_files(paths: list[Path]) -> list[Sourced]:
    """All documents of all files, parsed; raises ConfigError on the first bad file."""
    loaded: list[Sourced] = []
    for path in paths:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read: {exc.strerror}", source=str(path)) from exc
        loaded.extend(load_bytes(data, str(path)))
    return loaded


def load_bytes(data: bytes, source: str) -> list[Sourced]:
    """The documents of a manifest read as bytes (a file, standard input), refused by name if it is not text."""
    return load_text(_decoded(data, source), source)


# The binary files most likely given to -f by mistake, told by their first bytes.
_MAGIC = ((b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"GIF8", "a GIF image"),
          (b"%PDF", "a PDF document"), (b"PK\x03\x04", "a zip archive"), (b"\x1f\x8b", "a gzip archive"),
          (b"\x7fELF", "an executable"))


def _decoded(data: bytes, source: str) -> str:
    """A manifest's text. YAML is text: a picture or an archive given by mistake is named, not a traceback."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        kind = next((f" ({name})" for magic, name in _MAGIC if data.startswith(magic)), "")
        raise ConfigError(f"not a text file{kind}: byte 0x{data[exc.start]:02x} at offset {exc.start} is not UTF-8; "
                          "give a YAML manifest", source=source) from None


class _UniqueKeys(yaml.SafeLoader):
    """YAML as kubectl reads it: a key written twice in one mapping is an error (its YAML decoder says "mapping key
    already defined"), where PyYAML keeps the last one and a VirtualService's first `http:` list vanished unseen."""


def _mapping_with_unique_keys(loader: yaml.SafeLoader, node: yaml.MappingNode) -> Any:
    first: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor` may be overridden, as YAML's merge allows
            continue
        key = loader.construct_object(key_node)
        if isinstance(key, str | int | float | bool) and key in first:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} written twice in one mapping (first on line {first[key]})",
                key_node.start_mark)
        if isinstance(key, str | int | float | bool):
            first[key] = key_node.start_mark.line + 1
    return loader.construct_yaml_map(node)


_UniqueKeys.add_constructor("tag:yaml.org,2002:map", _mapping_with_unique_keys)


def load_text(text: str, source: str = "<input>") -> list[Sourced]:
    try:
        documents = list(yaml.load_all(text, Loader=_UniqueKeys))  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}malformed YAML: {problem}", source=source) from exc
    result = []
    for index, document in enumerate(documents, start=1):
        for item in _listed(document):
            result.append(Sourced(parse_document(item, source, index), source, item))
    if not result:  # kubectl refuses an empty file too ("no objects passed to apply")
        error = ConfigError(f"no resources in {source}")
        error.source = source
        raise error
    return result


def _listed(document: Any) -> list[Any]:
    """A document's objects: a `kind: List` (what `kubectl get -o yaml`, and `meshconform get`, print for several)
    holds them in `items`, as kubectl reads it; none for an empty document."""
    if document is None:
        return []
    if isinstance(document, dict) and document.get("kind") == "List" and document.get("apiVersion") == "v1":
        return [item for item in document.get("items") or [] if item is not None]
    return [document]


def parse_document(document: Any, source: str, index: int = 1) -> Resource:
    label = f"document {index}"
    if not isinstance(document, dict):
        raise ConfigError("expected a mapping with apiVersion and kind", source=source, resource=label)
    kind = document.get("kind")
    name = (document.get("metadata") or {}).get("name", "?") if isinstance(document.get("metadata"), dict) else "?"
    namespace = (document.get("metadata") or {}).get("namespace", "default") if isinstance(
        document.get("metadata"), dict) else "default"
    resource = f"{kind or label} {namespace}/{name}"
    api_version = document.get("apiVersion")
    group = str(api_version).rpartition("/")[0]
    kinds = GROUPED_KINDS.get(group, KINDS)
    model = kinds.get(kind) if isinstance(kind, str) else None
    served_in = [g for g, grouped in GROUPED_KINDS.items() if kind in grouped and g != group]
    if model is None and served_in:
        raise ConfigError(f"apiVersion {api_version!r} does not serve {kind} (use one of "
                          f"{', '.join(GROUPED_KINDS[served_in[0]][str(kind)].api_versions)})",
                          source=source, resource=resource, field="apiVersion")
    if model is None:
        known = sorted({*KINDS, *(f"{k}.{g}" for g, grouped in GROUPED_KINDS.items() for k in grouped)})
        raise ConfigError(
            f"kind {kind!r} is not supported (supported: {', '.join(known)})",
            source=source, resource=label, field="kind")
    if api_version not in model.api_versions:
        raise ConfigError(
            f"apiVersion {api_version!r} is not served for {kind} (use one of {', '.join(model.api_versions)})",
            source=source, resource=resource, field="apiVersion")
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = _field_path(first["loc"])
        api = "Gateway API" if group in GROUPED_KINDS else "Istio API"
        message = _explain(first, api)
        more = len(exc.errors()) - 1
        if more:
            others = "; ".join(f"{_field_path(e['loc'])}: {_explain(e, api)}" for e in exc.errors()[1:4])
            message += f" (and {more} more: {others})"
        raise ConfigError(message, source=source, resource=resource, field=field) from None


def _field_path(loc: tuple[Any, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in ("function-after", "function-before") or str(part).startswith(("function-", "lax-", "json-")):
            continue
        else:
            path += f".{part}" if path else str(part)
    return path


def _explain(error: Any, api: str = "Istio API") -> str:
    if error["type"] == "extra_forbidden":
        return f"unknown field '{error['loc'][-1]}' (not part of the {api})"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")



def line_of(source: str, kind: str, namespace: str, name: str, field: str) -> int | None:
    """The line (1-based) where `field` ("spec.http[0].route[0].destination.host") of the resource is written in
    the file `source`, as `istioctl analyze` points at it; the resource's first line if the field is not written
    there, None if the file or the resource cannot be found (a source that is not a file, a file changed since)."""
    try:
        documents = list(yaml.compose_all(Path(source).read_text(), Loader=yaml.SafeLoader))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    for document in documents:
        if isinstance(document, yaml.MappingNode) and _identity(document) == (kind, namespace, name):
            found = _node_at(document, field)
            return (found or document).start_mark.line + 1
    return None


def _entry(node: yaml.Node, key: str) -> tuple[yaml.Node, yaml.Node] | None:
    if isinstance(node, yaml.MappingNode):
        return next(((k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == key), None)
    return None


def _identity(document: yaml.MappingNode) -> tuple[str, str, str]:
    def scalar(node: yaml.Node | None, key: str) -> str:
        entry = _entry(node, key) if node is not None else None
        return str(entry[1].value) if entry is not None and isinstance(entry[1], yaml.ScalarNode) else ""
    metadata = _entry(document, "metadata")
    meta = metadata[1] if metadata is not None else None
    return scalar(document, "kind"), scalar(meta, "namespace") or "default", scalar(meta, "name")


def _node_at(document: yaml.Node, field: str) -> yaml.Node | None:
    """The node that writes `field`: the key of a mapping entry (its line is the field's), or a list item."""
    node, written = document, None
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", field):
        if part.startswith("["):
            index = int(part[1:-1])
            if not isinstance(node, yaml.SequenceNode) or index >= len(node.value):
                return None
            node = written = node.value[index]
        else:
            entry = _entry(node, part)
            if entry is None:
                return None
            written, node = entry
    return written
