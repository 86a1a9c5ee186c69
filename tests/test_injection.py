"""Sidecar injection rules, as Istio's webhook and injector apply them."""

from __future__ import annotations

import pytest

from meshconform.meshapi.injection import should_inject

ENABLED = {"istio-injection": "enabled"}
OPT_OUT = {"sidecar.istio.io/inject": "false"}
OPT_IN = {"sidecar.istio.io/inject": "true"}


@pytest.mark.parametrize(("namespace", "labels", "annotations", "expected"), [
    (ENABLED, {}, {}, True),
    (ENABLED, OPT_OUT, {}, False),                      # pod label opt-out wins
    (ENABLED, {}, OPT_OUT, False),                      # deprecated annotation still opts out
    ({"istio-injection": "disabled"}, OPT_IN, {}, False),  # any value but enabled: no
    ({}, {}, {}, False),                                 # unlabelled namespace
    ({}, OPT_IN, {}, True),                              # pod label opts in
    ({}, {}, OPT_IN, False),                             # the annotation cannot opt in
    ({"istio.io/rev": "default"}, {}, {}, True),
    ({"istio.io/rev": "canary"}, {}, {}, False),         # no such revision here
    ({"istio.io/rev": "default"}, OPT_OUT, {}, False),
    ({"istio-injection": "enabled", "istio.io/rev": "canary"}, {}, {}, True),  # legacy label takes precedence
    ({}, {"istio.io/rev": "default"}, {}, True),
])
def test_injection_rules(namespace: dict, labels: dict, annotations: dict, expected: bool) -> None:
    assert should_inject(namespace, labels, annotations) is expected
