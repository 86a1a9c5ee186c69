"""Offline validation of manifests, as a cluster's API server would do it: Kubernetes objects against Kubernetes'
own OpenAPI schemas (PyPI `kubernetes-validate`, strict: unknown fields are errors), Istio resources against the
CRD schemas of the pinned Istio release (schemas/istio-1.30.3, vendored with licence and provenance) and Gateway API
resources against the vendored Gateway API CRDs (schemas/gateway-api-v1.6.1, `gateway_api_crds`), including their
`x-kubernetes-validations` CEL rules, evaluated with `cel-python` plus the few Kubernetes CEL extensions Istio's
rules use (substring, url().getScheme()). Needs the `validate` extra."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import yaml

from meshconform.meshapi.gateway_api import GROUP as GATEWAY_API_GROUP
from meshconform.platform.kube import gateway_api_crds

ISTIO_SCHEMAS = "schemas/istio-1.30.3/crd-all.gen.yaml"
KUBERNETES_VERSION = "1.36"  # the pinned kind node image's minor (kindest/node:v1.36.4), Istio 1.30/1.31's newest


@dataclass(frozen=True)
class Finding:
    source: str
    resource: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.source}: {self.resource}: {self.field or '(object)'}: {self.message}"


@cache
def istio_crds() -> dict[tuple[str, str], dict[str, Any]]:
    """(group, kind) -> {version name: openAPIV3Schema} for every served version."""
    text = resources.files("meshconform.platform.kube").joinpath(ISTIO_SCHEMAS).read_text()
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for crd in yaml.safe_load_all(text):
        if not crd:
            continue
        spec = crd["spec"]
        found[(spec["group"], spec["names"]["kind"])] = {
            v["name"]: v["schema"]["openAPIV3Schema"] for v in spec["versions"] if v.get("served")}
    return found


def _json_schema(schema: Any) -> Any:
    """OpenAPI v3 structural schema -> JSON Schema: unknown fields refused (where the schema does not preserve
    them), `nullable`, `x-kubernetes-int-or-string`."""
    if isinstance(schema, list):
        return [_json_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _json_schema(v) if k in ("items", "additionalProperties", "not") or k.endswith("Of") else v
           for k, v in schema.items() if not k.startswith("x-kubernetes-validations")}
    if "properties" in schema:
        out["properties"] = {k: _json_schema(v) for k, v in schema["properties"].items()}
        # Only a structural node (typed object) prunes unknown fields; a oneOf/anyOf branch that merely constrains
        # some properties (the Gateway API's address types) must not refuse the others.
        if "additionalProperties" not in schema and not schema.get("x-kubernetes-preserve-unknown-fields") \
                and schema.get("type", "object") == "object" and "type" in schema:
            out["additionalProperties"] = False
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if schema.get("nullable") and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


def _path(parts: Iterable[Any]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


class _Url:
    def __init__(self, text: str) -> None:
        self.parts = urlsplit(text)


def _cel_functions() -> dict[str, Any]:
    import celpy.celtypes as ct

    def substring(value: Any, start: Any, end: Any = None) -> Any:
        text = str(value)
        return ct.StringType(text[int(start):] if end is None else text[int(start):int(end)])

    def url(value: Any) -> Any:
        return _Url(str(value))

    def get_scheme(value: Any) -> Any:
        return ct.StringType(value.parts.scheme)
    return {"substring": substring, "url": url, "getScheme": get_scheme}


# CEL's reserved words: a property with such a name is `__{name}__` in rules (Kubernetes' CEL escaping).
_CEL_RESERVED = frozenset({"true", "false", "null", "in", "as", "break", "const", "continue", "else", "for",
                           "function", "if", "import", "let", "loop", "package", "namespace", "return", "var",
                           "void", "while"})


def _cel_escaped(value: Any) -> Any:
    if isinstance(value, dict):
        return {(f"__{k}__" if k in _CEL_RESERVED else k): _cel_escaped(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_cel_escaped(v) for v in value]
    return value


def with_defaults(schema: Mapping[str, Any], value: Any) -> Any:
    """`value` with the schema's `default`s filled in where a field is absent, as the API server defaults an
    object before it validates it (structural schemas; CEL rules see the defaulted object)."""
    if isinstance(value, dict):
        out = dict(value)
        properties = schema.get("properties") or {}
        for name, sub in properties.items():
            if name not in out and "default" in sub:
                out[name] = copy.deepcopy(sub["default"])
            if name in out:
                out[name] = with_defaults(sub, out[name])
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            out = {k: (v if k in properties else with_defaults(extra, v)) for k, v in out.items()}
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [with_defaults(schema["items"], item) for item in value]
    return value


@cache
def _compiled(rule: str) -> Any:
    import celpy
    environment = celpy.Environment()
    return environment.program(environment.compile(rule), functions=_cel_functions())


def cel_findings(schema: Mapping[str, Any], value: Any, path: list[Any]) -> list[tuple[str, str]]:
    """(field, message) for every `x-kubernetes-validations` rule that does not hold on `value`, walking the schema
    along the value as the API server does (a rule sees its own node as `self`)."""
    import celpy.adapter
    out: list[tuple[str, str]] = []
    for rule in schema.get("x-kubernetes-validations") or []:
        try:
            result = _compiled(rule["rule"]).evaluate({"self": celpy.adapter.json_to_cel(_cel_escaped(value))})
        except Exception as exc:  # noqa: BLE001 (an evaluation error fails validation, as on the server)
            out.append((_path(path), f"rule {rule['rule']!r} could not be evaluated: {exc}"))
            continue
        if isinstance(result, Exception) or not bool(result):
            out.append((_path(path), rule.get("message") or f"failed rule: {rule['rule']}"))
    for key in ("allOf", "anyOf", "oneOf"):
        for sub in schema.get(key) or []:
            out += cel_findings(sub, value, path)
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        for name, item in value.items():
            sub = properties.get(name, extra if isinstance(extra, dict) else None)
            if sub is not None:
                out += cel_findings(sub, item, [*path, name])
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            out += cel_findings(schema["items"], item, [*path, index])
    return out


def validate_istio(doc: Mapping[str, Any], schemas: Mapping[tuple[str, str], dict[str, Any]] | None = None,
                   api: str = "Istio") -> list[tuple[str, str]]:
    """(field, message) findings for an Istio resource (or, with `schemas`, another API's CRD-backed one); a kind
    or version the CRDs do not serve is a finding."""
    import jsonschema
    group, _, version = str(doc.get("apiVersion", "")).partition("/")
    crd = (istio_crds() if schemas is None else schemas).get((group, str(doc.get("kind"))))
    if crd is None:
        return [("kind", f"no {api} CRD serves {doc.get('kind')} in {group}")]
    if version not in crd:
        return [("apiVersion", f"{doc.get('kind')} is served in versions {', '.join(sorted(crd))}, not {version}")]
    schema = copy.deepcopy(crd[version])
    schema.setdefault("properties", {}).update({"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                                                "metadata": {"type": "object"}})
    defaulted = with_defaults(crd[version], dict(doc))
    validator = jsonschema.Draft202012Validator(_json_schema(schema))
    findings = [(_path(e.absolute_path), e.message) for e in sorted(validator.iter_errors(defaulted), key=str)]
    return findings + cel_findings(crd[version], defaulted, [])


def validate_kubernetes(doc: Mapping[str, Any], version: str = KUBERNETES_VERSION) -> list[tuple[str, str]]:
    import kubernetes_validate
    try:
        kubernetes_validate.validate(dict(doc), version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [(_path(exc.path), exc.message)]
    except kubernetes_validate.SchemaNotFoundError as exc:
        return [("kind", f"Kubernetes {version} has no schema for {doc.get('kind')} {doc.get('apiVersion')}: {exc}")]
    return []


def validate(items: Iterable[tuple[str, Mapping[str, Any]]]) -> list[Finding]:
    """Every finding for (source, document) pairs: Istio groups against the CRDs, the rest against Kubernetes."""
    findings = []
    for source, doc in items:
        meta = doc.get("metadata") or {}
        resource = f"{doc.get('kind')} {meta.get('namespace', '')}/{meta.get('name')}".replace(" /", " ")
        if ".istio.io/" in str(doc.get("apiVersion", "")):
            found = validate_istio(doc)
        elif str(doc.get("apiVersion", "")).startswith(f"{GATEWAY_API_GROUP}/"):
            found = validate_istio(doc, gateway_api_crds.crds(), f"Gateway API {gateway_api_crds.VERSION}")
        else:
            found = validate_kubernetes(doc)
        findings += [Finding(source, resource, field, message) for field, message in found]
    return findings
