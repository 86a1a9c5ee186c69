"""The container images a run deploys: read from the manifests (each with its file, Deployment and field), checked
before any cluster exists (a well-formed reference; with `--require-pinned-images`, pinned by digest), and the
digest each pod actually ran, read back from the pods' status (`status.containerStatuses[].imageID`) for the report.

Bookinfo is referenced by the tags Istio publishes (as Istio's own samples do): its digests could not be confirmed
offline, and an invented digest would fail every pull. What ran is recorded instead, so a report says exactly which
image bytes were tested, and a user who wants refusal of anything not pinned asks for it. Digests of one's own come
from a pins file (`--image-digests`: image as the manifests name it -> digest, e.g. from a previous run's
`images.ran`): validated before any cluster exists, applied to the manifests (`repo:tag@sha256:...`, which the
runtime pulls by digest), and compared after the run with what the pods ran (`Pins.mismatches`)."""

from __future__ import annotations

import copy
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
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


# A digest as a pins file may give it: bare, or as images.ran records it (the runtime's imageID).
_PIN = re.compile(r"^(?:docker-pullable://)?(?:(?P<repository>[^@\s]+)@)?(?P<digest>sha256:[0-9a-f]{64})$")


@dataclass(frozen=True)
class Pins:
    """Digests for images the manifests name by tag, from a pins file (`--image-digests`)."""

    source: str  # the file, as given
    digests: dict[str, str] = field(default_factory=dict)  # image as named -> sha256:<64 hex>

    def pinned(self, image: str) -> str:
        digest = self.digests.get(image)
        return f"{image}@{digest}" if digest and not is_pinned(image) else image

    def apply(self, document: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of `document` with the images of a Deployment's containers pinned (the rest unchanged)."""
        pinned = copy.deepcopy(dict(document))
        if pinned.get("kind") == "Deployment":
            spec = ((pinned.get("spec") or {}).get("template") or {}).get("spec") or {}
            for group in ("initContainers", "containers"):
                for container in spec.get(group) or []:
                    container["image"] = self.pinned(str(container.get("image", "")))
        return pinned

    def mismatches(self, ran: Mapping[str, str]) -> list[str]:
        """Each pin the pods did not run as pinned (from `ran`: image -> imageID), named with both values."""
        found = []
        for image, digest in sorted(self.digests.items()):
            pinned = self.pinned(image)
            # as the kubelet names it: as the spec wrote it, or normalised to repository@digest
            ids = [image_id for name, image_id in ran.items() if name in (image, pinned,
                                                                          f"{_repository(image)}@{digest}")]
            if not ids:
                found.append(f"{image}: pinned {digest} ({self.source}), but no pod reported running it")
            for image_id in ids:
                if image_id.rpartition("@")[2] != digest:
                    found.append(f"{image}: pinned {digest} ({self.source}), the pod ran {image_id}")
        return found


def load_pins(path: Path, named: Collection[str]) -> Pins:
    """The pins file: a YAML mapping of image (as the manifests name it, by tag: one of `named`) to its digest
    (`sha256:<64 hex>`, or `<repository>@sha256:<64 hex>` as `images.ran` records it). Every problem is a ConfigError
    naming the file and line."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read the image digests file: {exc.strerror}", source=str(path)) from None
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise ConfigError(f"not YAML: {getattr(exc, 'problem', None) or exc}", source=where) from None
    if root is None:
        return Pins(str(path))
    if not isinstance(root, yaml.MappingNode):
        raise ConfigError("a mapping of image -> digest expected (e.g. docker.io/istio/examples-bookinfo-details-v1:"
                          "1.20.3: sha256:<64 hex>)", source=f"{path}:{root.start_mark.line + 1}")
    digests: dict[str, str] = {}
    for key, value in root.value:
        where = f"{path}:{key.start_mark.line + 1}"
        image = str(key.value)
        if not isinstance(key, yaml.ScalarNode) or not isinstance(value, yaml.ScalarNode):
            raise ConfigError("each entry is `image: digest`, both plain text", source=where)
        if image in digests:
            raise ConfigError(f"image {image!r} is given twice", source=where)
        if is_pinned(image):
            raise ConfigError(f"image {image!r} is already pinned by digest: name it as the manifests do, by tag",
                              source=where)
        if image not in named:
            raise ConfigError(f"image {image!r} is not one the manifests name by tag (they name: "
                              f"{', '.join(sorted(named))})", source=where)
        match = _PIN.match(str(value.value).strip())
        if match is None:
            raise ConfigError(f"image {image!r}: digest {value.value!r} is not sha256:<64 lower-case hex> (nor "
                              "<repository>@sha256:<64 hex>, as images.ran records it)", source=where)
        repository = match.group("repository")
        if repository and repository != _repository(image):
            raise ConfigError(f"image {image!r}: the digest is of {repository}, not {_repository(image)}",
                              source=where)
        digests[image] = match.group("digest")
    return Pins(str(path), digests)


def pins_for(path: str, manifests: Sequence[Path]) -> Pins | None:
    """The pins file `path` (None when not given), checked against the images `manifests` name by tag."""
    if not path:
        return None
    return load_pins(Path(path), {use.image for use in uses_in_files(manifests) if not use.pinned})


def _repository(image: str) -> str:
    """The image without tag and digest (docker.io/istio/x:1 -> docker.io/istio/x)."""
    name = image.split("@", 1)[0]
    head, _, last = name.rpartition("/")
    return f"{head}/{last.split(':', 1)[0]}" if head else last.split(":", 1)[0]


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
