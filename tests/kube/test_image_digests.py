"""`--image-digests FILE`: digests for the images the manifests name by tag. The file is validated before any
cluster exists (a malformed digest, an image the manifests do not name: the file and line named), applied to the
Deployments before they are checked (`--require-pinned-images` then passes) and applied, and compared after the run
with what the pods ran (`images.ran`): a mismatch named in the report."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from meshconform.errors import ConfigError
from meshconform.platform.kube import images
from meshconform.platform.local.platform import base_manifests

from .test_platform import make

DETAILS = "docker.io/istio/examples-bookinfo-details-v1:1.20.3"
RATINGS = "docker.io/istio/examples-bookinfo-ratings-v1:1.20.3"
D1, D2 = "sha256:" + "1" * 64, "sha256:" + "2" * 64


def tagged() -> set[str]:
    return {use.image for use in images.uses_in_files(base_manifests()) if not use.pinned}


def all_pinned(tmp_path: Path) -> Path:
    path = tmp_path / "pins.yaml"
    path.write_text("".join(f"{image}: sha256:{n:064x}\n" for n, image in enumerate(sorted(tagged()), 1)))
    return path


@pytest.mark.parametrize(("text", "line", "said"), [
    (f"{DETAILS}: {D1}\n{RATINGS}: sha256:abc\n", 2, f"image {RATINGS!r}: digest 'sha256:abc' is not sha256:<64"),
    (f"{DETAILS}: {D1}\n\ndocker.io/istio/examples-bookinfo-nope:1.20.3: {D2}\n", 3,
     "image 'docker.io/istio/examples-bookinfo-nope:1.20.3' is not one the manifests name by tag (they name: "),
    (f"{DETAILS}: docker.io/istio/other@{D1}\n", 1, "the digest is of docker.io/istio/other, not "
                                                    "docker.io/istio/examples-bookinfo-details-v1"),
    (f"{DETAILS}: {D1}\n{DETAILS}: {D2}\n", 2, "is given twice"),
    (f"{DETAILS}@{D1}: {D1}\n", 1, "already pinned by digest"),
    (f"- {DETAILS}\n", 1, "a mapping of image -> digest expected"),
    (f"{DETAILS}: [{D1}]\n", 1, "each entry is `image: digest`"),
    (f"{DETAILS}: {D1}\n  bad: [\n", 2, "not YAML"),
])
def test_a_bad_pins_file_is_named_with_its_line(tmp_path: Path, text: str, line: int, said: str) -> None:
    path = tmp_path / "pins.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        images.load_pins(path, tagged())
    assert caught.value.source == f"{path}:{line}" and said in str(caught.value), str(caught.value)


def test_pins_are_applied_to_deployments_only_and_the_runs_digest_form_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "pins.yaml"
    # as a previous run's images.ran gives them: repository@digest (docker-pullable:// as some runtimes say it)
    path.write_text(f"{DETAILS}: docker.io/istio/examples-bookinfo-details-v1@{D1}\n"
                    f"{RATINGS}: docker-pullable://docker.io/istio/examples-bookinfo-ratings-v1@{D2}\n")
    pins = images.load_pins(path, tagged())
    assert pins.digests == {DETAILS: D1, RATINGS: D2}
    deployment = {"kind": "Deployment", "spec": {"template": {"spec": {
        "initContainers": [{"name": "init", "image": RATINGS}],
        "containers": [{"name": "app", "image": DETAILS}, {"name": "other", "image": "python:3.13-slim"}]}}}}
    pinned = pins.apply(deployment)
    spec = pinned["spec"]["template"]["spec"]
    assert [c["image"] for c in (*spec["initContainers"], *spec["containers"])] == [
        f"{RATINGS}@{D2}", f"{DETAILS}@{D1}", "python:3.13-slim"]
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == DETAILS  # a copy: the source unchanged
    assert pins.apply({"kind": "ConfigMap", "data": {"image": DETAILS}}) == {"kind": "ConfigMap",
                                                                            "data": {"image": DETAILS}}
    (tmp_path / "empty.yaml").write_text("")
    assert images.load_pins(tmp_path / "empty.yaml", tagged()).digests == {}


def test_pins_compared_with_what_ran() -> None:
    pins = images.Pins("pins.yaml", {DETAILS: D1, RATINGS: D2})
    ran = {f"{DETAILS}@{D1}": f"docker.io/istio/examples-bookinfo-details-v1@{D1}",
           f"{RATINGS}@{D2}": f"docker.io/istio/examples-bookinfo-ratings-v1@{D1}"}
    assert pins.mismatches(ran) == [f"{RATINGS}: pinned {D2} (pins.yaml), the pod ran "
                                    f"docker.io/istio/examples-bookinfo-ratings-v1@{D1}"]
    assert pins.mismatches({}) == [f"{DETAILS}: pinned {D1} (pins.yaml), but no pod reported running it",
                                   f"{RATINGS}: pinned {D2} (pins.yaml), but no pod reported running it"]


def test_the_platform_applies_the_pins_and_reports_a_mismatch(fake_api, tmp_path: Path) -> None:
    """Every tagged image pinned, with --require-pinned-images: the run is not refused, the Deployments go to the
    API server pinned, and the report names the one image whose pods ran another digest."""
    fake, _ = fake_api
    pins = images.load_pins(all_pinned(tmp_path), tagged())
    platform, _, _ = make(fake_api, tmp_path)
    platform.require_pinned_images, platform.image_pins = True, pins
    fake.ran_instead[pins.pinned(RATINGS)] = f"docker.io/istio/examples-bookinfo-ratings-v1@{D2}"
    platform.up()
    try:
        deployments = [o for o in fake.objects.values() if o.get("kind") == "Deployment"]
        applied = {c["image"] for d in deployments for c in d["spec"]["template"]["spec"]["containers"]}
        assert pins.pinned(DETAILS) in applied and DETAILS not in applied
        assert all(images.is_pinned(image) for image in applied)
        described = platform.describe()["images"]
        assert described["pinned_by"] == str(tmp_path / "pins.yaml") and described["pins"] == pins.digests
        assert described["pin_mismatches"] == [f"{RATINGS}: pinned {pins.digests[RATINGS]} ({tmp_path / 'pins.yaml'}"
                                               f"), the pod ran docker.io/istio/examples-bookinfo-ratings-v1@{D2}"]
    finally:
        platform.down()


def test_the_readmes_recipe_makes_a_pins_file_from_a_previous_runs_report(tmp_path: Path) -> None:
    """The README's command, run as written on a report: the images named by tag, each with the digest it ran (the
    control plane's images, also in images.ran, left out: the manifests do not name them)."""
    import re
    import subprocess
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    recipe = re.search(r"```bash\n(python3 - reports/<run>/conformance\.yaml > image-digests\.yaml.*?\nEOF\n)```",
                       readme, re.S)
    assert recipe, "the README's recipe for the pins file"
    report = {"underTest": {"images": {"named_by_tag": [DETAILS, RATINGS], "ran": {
        DETAILS: f"docker.io/istio/examples-bookinfo-details-v1@{D1}", "docker.io/istio/proxyv2:1.31.1": f"x@{D2}"}}}}
    (tmp_path / "conformance.yaml").write_text(yaml.safe_dump(report))
    script = recipe.group(1).replace("reports/<run>/conformance.yaml", str(tmp_path / "conformance.yaml"))
    done = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert images.load_pins(tmp_path / "image-digests.yaml", tagged()).digests == {DETAILS: D1}
