"""Istio's own samples on the local platform as they are: Bookinfo's Deployments (Istio's images, no annotation of
ours) are played by our apps, chosen by image, as `kubectl apply -f samples/bookinfo/platform/kube/bookinfo.yaml`
habits expect. tests/samples/bookinfo.yaml has the sample's shape (written from the facts, not copied)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from meshconform.errors import ConfigError
from meshconform.meshapi.loader import load_files, load_text
from meshconform.platform.api import MESHED_CLIENT
from meshconform.platform.local import topology
from meshconform.platform.local.platform import LocalPlatform
from meshconform.traffic.model import Request

SAMPLE = Path(__file__).parent / "samples" / "bookinfo.yaml"


@pytest.mark.parametrize(("image", "name"), [
    ("registry.istio.io/release/examples-bookinfo-reviews-v3:1.20.3", "examples-bookinfo-reviews-v3"),
    ("docker.io/istio/examples-bookinfo-details-v1:1.18.0", "examples-bookinfo-details-v1"),
    ("localhost:5000/mirror/examples-bookinfo-ratings-v1", "examples-bookinfo-ratings-v1"),
    ("docker.io/istio/examples-bookinfo-details-v1:1.20.3@sha256:" + "ab" * 32, "examples-bookinfo-details-v1"),
    ("examples-bookinfo-productpage-v1", "examples-bookinfo-productpage-v1"),
])
def test_an_image_is_known_by_its_name_whatever_the_registry_and_tag(image: str, name: str) -> None:
    assert topology.image_name(image) == name


def test_istios_bookinfo_deployments_are_played_by_image_with_the_images_environment() -> None:
    _, specs = topology.build(load_files([SAMPLE]), lambda key: "127.0.0.9")
    played = {s.pod.deployment: (s.app, s.env.get("ENABLE_RATINGS"), s.env.get("STAR_COLOR")) for s in specs}
    assert played == {"details-v1": ("details", None, None), "ratings-v1": ("ratings", None, None),
                      "reviews-v1": ("reviews", "false", None), "reviews-v2": ("reviews", "true", "black"),
                      "reviews-v3": ("reviews", "true", "red"), "productpage-v1": ("productpage", None, None)}
    assert {s.env["LOG_DIR"] for s in specs if s.app == "reviews"} == {"/tmp/logs"}  # the Deployment's own env too


def test_the_deployments_env_wins_over_the_images() -> None:
    text = SAMPLE.read_text().replace("        - {name: LOG_DIR, value: /tmp/logs}\n",
                                      "        - {name: STAR_COLOR, value: blue}\n", 1)
    _, specs = topology.build(load_text(text, "bookinfo.yaml"), lambda key: "127.0.0.9")
    assert next(s.env for s in specs if s.pod.deployment == "reviews-v1")["STAR_COLOR"] == "blue"


def test_an_image_nothing_plays_is_refused_naming_it() -> None:
    text = SAMPLE.read_text().replace("examples-bookinfo-ratings-v1:1.20.3", "examples-bookinfo-ratings-v2:1.20.3")
    with pytest.raises(ConfigError) as caught:
        topology.build(load_text(text, "bookinfo.yaml"), lambda key: "127.0.0.9")
    error = caught.value
    assert (error.source, error.resource, error.field) == ("bookinfo.yaml", "Deployment default/ratings-v1",
                                                           "spec.template.spec.containers[0].image")
    assert "no app of the local platform plays registry.istio.io/release/examples-bookinfo-ratings-v2:1.20.3" in str(
        error) and "examples-bookinfo-ratings-v1" in str(error) and "meshconform.io/local-app" in str(error)


@pytest.mark.slow
def test_istios_bookinfo_applied_over_the_platforms_own_serves_pages_and_every_reviews_version(
        platform: LocalPlatform) -> None:
    """Applied as `kubectl apply` would (namespace default, the same names as the platform's own Bookinfo, which it
    replaces): the product page is served, and reviews v1, v2 and v3 answer as Istio's images do."""
    platform.apply(load_files([SAMPLE]))
    applied = {item.resource.ref: item for item in platform.resources()}
    assert "meshconform.io/local-app" not in json.dumps(applied["Deployment default/reviews-v3"].document)
    client = platform.vantage(MESHED_CLIENT)
    [page] = client.send([Request("/productpage", host="productpage:9080")])
    assert page.status == 200 and "The Comedy of Errors" in page.body, (page.status, page.body[:300])
    # 60 requests, one at a time, over three pods: a version missing by chance has probability < 3 * (2/3)^60 < 1e-10.
    replies = client.send([Request("/reviews/0", host="reviews:9080") for _ in range(60)], concurrency=1)
    ratings: dict[str, set[str]] = {}
    for reply in replies:
        assert reply.status == 200, reply
        version = reply.version
        assert version is not None, reply.body[:200]
        ratings.setdefault(version, set()).update(
            str(review.get("rating", {}).get("color", "none")) for review in reply.json()["reviews"])
    assert ratings == {"v1": {"none"}, "v2": {"black"}, "v3": {"red"}}
