"""`meshconform get`: what is applied on the local platform, listed as `kubectl get` lists it (kinds by kubectl's
names, namespaces, ages kept across updates, -o yaml/json/name, Secret data masked)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from meshconform import cli
from meshconform.commands import get
from meshconform.errors import ConfigError
from meshconform.meshapi import resource_names
from meshconform.meshapi.loader import GROUPED_KINDS, KINDS, load_text
from meshconform.platform.api import Platform
from meshconform.platform.local.platform import LocalPlatform


@pytest.mark.parametrize(("seconds", "shown"), [
    (0, "0s"), (59, "59s"), (119, "119s"), (120, "2m"), (325, "5m25s"), (599, "9m59s"), (600, "10m"),
    (10_799, "179m"), (10_800, "3h"), (19_800, "5h30m"), (28_799, "7h59m"), (28_800, "8h"), (111_600, "31h"),
    (172_800, "2d"), (421_200, "4d21h"), (691_200, "8d"), (63_072_000, "2y"), (64_000_000, "2y10d"),
    (252_288_000, "8y"), (-5, "0s"),
])
def test_ages_read_as_kubectl_prints_them(seconds: int, shown: str) -> None:
    assert get.age(seconds) == shown


def test_every_kind_the_loader_knows_has_kubectls_names() -> None:
    keys = {*KINDS, *(f"{kind}.{group}" for group, kinds in GROUPED_KINDS.items() for kind in kinds)}
    assert {r.key for r in resource_names.RESOURCES} == keys
    for word, key in [("vs", "VirtualService"), ("virtualservices", "VirtualService"),
                      ("VirtualService", "VirtualService"), ("virtualservice.networking.istio.io", "VirtualService"),
                      ("dr", "DestinationRule"), ("gw", "Gateway"), ("gateways", "Gateway"),
                      ("gtw", "Gateway.gateway.networking.k8s.io"),
                      ("gateways.gateway.networking.k8s.io", "Gateway.gateway.networking.k8s.io"),
                      ("httproute", "HTTPRoute.gateway.networking.k8s.io"), ("svc", "Service"),
                      ("deploy", "Deployment"), ("ns", "Namespace"), ("pa", "PeerAuthentication"),
                      ("ap", "AuthorizationPolicy"), ("se", "ServiceEntry"), ("sa", "ServiceAccount")]:
        assert resource_names.lookup(word).key == key, word
    with pytest.raises(KeyError):
        resource_names.lookup("pods")


CONFIG = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews-get}
spec:
  hosts: [reviews]
  http: [{route: [{destination: {host: reviews}}]}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews-get, namespace: optin}
spec: {host: reviews.default.svc.cluster.local}
---
apiVersion: v1
kind: Secret
metadata: {name: token-get, namespace: optin}
stringData: {token: not-for-the-terminal}
"""


def _get(platform: Platform, monkeypatch: pytest.MonkeyPatch, *args: str) -> Result:
    monkeypatch.setattr(get, "attached", lambda name: platform)
    return CliRunner().invoke(cli.cli, ["get", *args])


@pytest.mark.slow
def test_get_lists_what_is_applied_as_kubectl_would(platform: LocalPlatform, monkeypatch: pytest.MonkeyPatch) -> None:
    platform.apply(load_text(CONFIG, "config.yaml"))
    try:
        listed = _get(platform, monkeypatch, "vs")
        assert listed.exit_code == 0, listed.output
        assert re.fullmatch(r"NAME +AGE\nreviews-get +\d+s\n", listed.stdout), listed.stdout
        # -A: every namespace, with the NAMESPACE column; several kinds: qualified names, one table per kind.
        both = _get(platform, monkeypatch, "vs,dr", "-A").stdout.split("\n\n")
        assert re.match(r"NAMESPACE +NAME +AGE\ndefault +virtualservice.networking.istio.io/reviews-get +\d+s",
                        both[0]), both
        assert re.match(r"NAMESPACE +NAME +AGE\noptin +destinationrule.networking.istio.io/reviews-get +\d+s",
                        both[1]), both
        # Without a kind: every kind (namespaces are cluster-scoped, listed whatever -n says).
        everything = _get(platform, monkeypatch).stdout
        assert "namespace/optin" in everything and "deployment.apps/reviews-v1" in everything
        assert "virtualservice.networking.istio.io/reviews-get" in everything
        assert "destinationrule.networking.istio.io/reviews-get" not in everything  # in optin, not default
        assert _get(platform, monkeypatch, "dr", "-n", "optin", "-o", "name").stdout == \
            "destinationrule.networking.istio.io/reviews-get\n"
        # The objects themselves: one by name is the object, with the namespace and creationTimestamp added.
        document: dict[str, Any] = yaml.safe_load(_get(platform, monkeypatch, "vs", "reviews-get", "-o", "yaml").stdout)
        assert document["kind"] == "VirtualService" and document["metadata"]["namespace"] == "default"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", document["metadata"]["creationTimestamp"])
        # What get prints applies again, as with kubectl: a List's items (it was refused: "kind 'List' is not
        # supported"), creationTimestamp and all.
        listed = load_text(_get(platform, monkeypatch, "vs,dr", "-A", "-o", "yaml").stdout, "listed.yaml")
        assert [item.resource.ref for item in listed] == ["VirtualService default/reviews-get",
                                                          "DestinationRule optin/reviews-get"]
        platform.apply(listed)
        secrets = json.loads(_get(platform, monkeypatch, "secrets", "-A", "-o", "json").stdout)
        assert secrets["kind"] == "List" and [s["metadata"]["name"] for s in secrets["items"]] == ["token-get"]
        assert "not-for-the-terminal" not in json.dumps(secrets)  # masked, as every printout of a Secret
        # ... so a Secret as listed cannot be applied back: its masked data is refused by name (it was decoded
        # leniently into bytes no one wrote), and so is any data that is not base64, as the API server does.
        with pytest.raises(ConfigError, match=r"Secret optin/token-get: stringData: token: <redacted: \d+ bytes> is "
                                              r"how meshconform prints Secret data"):
            load_text(json.dumps(secrets), "secrets.json")
        with pytest.raises(ConfigError, match="token: not base64"):
            load_text("apiVersion: v1\nkind: Secret\nmetadata: {name: t}\ndata: {token: not-for-the-terminal}\n",
                      "plain.yaml")
        # A name that is not there: what is found is printed, the rest named, exit status 1 (as kubectl).
        missing = _get(platform, monkeypatch, "vs", "reviews-get", "nothing-here")
        assert missing.exit_code == 1 and "reviews-get" in missing.stdout
        assert 'virtualservice.networking.istio.io "nothing-here" not found in namespace default' in str(
            missing.exception)
        none = _get(platform, monkeypatch, "se")
        assert none.exit_code == 0 and none.stdout == "" and "No resources found in default namespace." in none.stderr
    finally:
        platform.delete(load_text(CONFIG, "config.yaml"), ignore_missing=True)


@pytest.mark.slow
def test_an_update_keeps_the_creation_time_as_creation_timestamp_does(platform: LocalPlatform) -> None:
    first = load_text(CONFIG, "config.yaml")[:1]
    platform.apply(first)
    try:
        created = next(a.created for a in platform.applied() if a.item.key == first[0].key)
        updated = load_text(CONFIG.replace("host: reviews}", "host: reviews, port: {number: 9080}}"), "v2.yaml")[:1]
        platform.apply(updated)
        [entry] = [a for a in platform.applied() if a.item.key == first[0].key]
        assert entry.created == created and entry.item.source == "v2.yaml"
    finally:
        platform.delete(first)


class _Unlisted:
    name = "elsewhere"


def test_a_platform_that_cannot_list_says_to_use_kubectl(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    result = _get(_Unlisted(), monkeypatch, "vs")  # type: ignore[arg-type]
    assert result.exit_code == 1 and "on a cluster, use kubectl get" in str(result.exception)
    assert _get(_Unlisted(), monkeypatch, "pods").exit_code == 2  # a usage error names the kinds it knows
