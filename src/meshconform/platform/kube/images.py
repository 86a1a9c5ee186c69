"""The container images a run deploys: read from the manifests (each with its file, Deployment and field), checked
before any cluster exists (a well-formed reference; with `--require-pinned-images`, pinned by digest), and the
digest each pod actually ran, read back from the pods' status (`status.containerStatuses[].imageID`) for the report.

Bookinfo is referenced by the tags Istio publishes (as Istio's own samples do): its digests could not be confirmed
offline, and an invented digest would fail every pull. What ran is recorded instead, so a report says exactly which
image bytes were tested, and a user who wants refusal of anything not pinned asks for it."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from meshconform.errors import ConfigError

# A reference as the container runtimes parse it (distribution/reference grammar, simplified): an optional
# registry host[:port], a lower-case path, an optional tag, an optional sha256 digest.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REFERENCE = re.compile(
    rf"^(?:(?P<registry>[A-Za-z0-9.-]+(?::[0-9]+)?)/)?(?P<path>{_COMPONENT}(?:/{_COMPONENT})*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?$")


@dataclass(frozen=True)
class ImageUse:
    """One container's image, and where it is written."""

    image: str
    source: str  # the manifest file
    resource: str  # "Deployment default/details-v1"
    field: str  # "spec.template.spec.containers[0].image"

    @property
    def pinned(self) -> bool:
        return is_pinned(self.image)


def is_pinned(image: str) -> bool:
    match = _REFERENCE.match(image)
    return bool(match and match.group("digest"))


def reference_problem(image: str) -> str | None:
    """Why `image` is not a reference a runtime can pull (None: it is)."""
    match = _REFERENCE.match(image)
    if match is None:
        return "not a valid image reference ([registry/]path[:tag][@sha256:<64 hex>])"
    if not match.group("tag") and not match.group("digest"):
        return "names neither a tag nor a digest (it would pull :latest, whatever that is that day)"
    if match.group("tag") == "latest" and not match.group("digest"):
        return "the tag :latest moves and is pulled again on every pod start (imagePullPolicy Always)"
    return None


def uses_in(documents: Iterable[tuple[str, Mapping[str, Any]]]) -> list[ImageUse]:
    """Every init and app container image of the Deployments among `documents` (source, document)."""
    found = []
    for source, doc in documents:
        if doc.get("kind") != "Deployment":
            continue
        meta = doc.get("metadata") or {}
        spec = ((doc.get("spec") or {}).get("template") or {}).get("spec") or {}
        for group in ("initContainers", "containers"):
            for index, container in enumerate(spec.get(group) or []):
                found.append(ImageUse(str(container.get("image", "")), source,
                                      f"Deployment {meta.get('namespace', 'default')}/{meta.get('name')}",
                                      f"spec.template.spec.{group}[{index}].image"))
    return found


def uses_in_files(paths: Sequence[Path]) -> list[ImageUse]:
    documents = [(str(path), doc) for path in paths for doc in yaml.safe_load_all(path.read_text())
                 if isinstance(doc, dict)]
    return uses_in(documents)


def check(uses: Iterable[ImageUse], require_pinned: bool) -> None:
    """Each image a well-formed reference; with `require_pinned`, pinned by digest. The first that is not is a
    ConfigError naming the file, the Deployment and the field."""
    for use in uses:
        problem = reference_problem(use.image)
        if problem is None and require_pinned and not use.pinned:
            problem = ("not pinned by digest, and --require-pinned-images refuses anything else: pin it as "
                       f"{use.image}@sha256:<digest> (`crane digest {use.image}`) or run without that option")
        if problem is not None:
            raise ConfigError(f"image {use.image!r}: {problem}", source=use.source, resource=use.resource,
                              field=use.field)


def ran(pods: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """image reference -> the digest the runtime resolved it to and ran, from each pod's container statuses
    (`imageID`, e.g. docker.io/istio/examples-bookinfo-details-v1@sha256:...; kind's containerd may prefix it with
    docker-pullable:// or report the image's own id for a loaded image: kept as the runtime says it)."""
    found: dict[str, str] = {}
    for pod in pods:
        status = pod.get("status") or {}
        for container in [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]:
            image, image_id = str(container.get("image") or ""), str(container.get("imageID") or "")
            if image and image_id:
                found[image] = image_id
    return dict(sorted(found.items()))
