"""Istio's sidecar injection rules (mutating webhook selectors + injector policy), as a pure function."""

from __future__ import annotations

INJECT = "sidecar.istio.io/inject"
REVISIONS = frozenset({"default"})  # the local platform runs one control-plane revision


def should_inject(namespace_labels: dict[str, str], pod_labels: dict[str, str],
                  pod_annotations: dict[str, str]) -> bool:
    """Whether a pod gets a sidecar.

    - namespace `istio-injection=enabled`: yes, unless the pod opts out (label, or the deprecated
      annotation) with "false"; any other value of `istio-injection` means no;
    - else namespace `istio.io/rev=<rev>`: yes for a revision that exists, unless the pod opts out;
    - else neither: only a pod label `sidecar.istio.io/inject: "true"` (or `istio.io/rev`) opts in.
      The annotation cannot opt in: the webhook selects on labels before the injector reads it."""
    opt_out = pod_labels.get(INJECT) == "false" or pod_annotations.get(INJECT) == "false"
    legacy = namespace_labels.get("istio-injection")
    if legacy is not None:
        return legacy == "enabled" and not opt_out
    revision = namespace_labels.get("istio.io/rev")
    if revision is not None:
        return revision in REVISIONS and not opt_out
    if opt_out:
        return False
    return pod_labels.get(INJECT) == "true" or pod_labels.get("istio.io/rev") in REVISIONS
