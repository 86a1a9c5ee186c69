"""Istio's sidecar injection rules (mutating webhook selectors + injector policy), as a pure function:
documented Istio behaviour, shared by the local platform (which injects) and the Kubernetes platform
(which checks that Istio did)."""

from __future__ import annotations

from collections.abc import Collection, Mapping

INJECT = "sidecar.istio.io/inject"
DEFAULT_REVISIONS = frozenset({"default"})  # one control-plane revision, as a default install has


def should_inject(namespace_labels: Mapping[str, str], pod_labels: Mapping[str, str],
                  pod_annotations: Mapping[str, str] | None = None,
                  revisions: Collection[str] = DEFAULT_REVISIONS) -> bool:
    """Whether a pod gets a sidecar.

    - namespace `istio-injection=enabled`: yes, unless the pod opts out (label, or the deprecated
      annotation) with "false"; any other value of `istio-injection` means no;
    - else namespace `istio.io/rev=<rev>`: yes for a revision that exists, unless the pod opts out;
    - else neither: only a pod label `sidecar.istio.io/inject: "true"` (or `istio.io/rev`) opts in.
      The annotation cannot opt in: the webhook selects on labels before the injector reads it."""
    opt_out = pod_labels.get(INJECT) == "false" or (pod_annotations or {}).get(INJECT) == "false"
    legacy = namespace_labels.get("istio-injection")
    if legacy is not None:
        return legacy == "enabled" and not opt_out
    revision = namespace_labels.get("istio.io/rev")
    if revision is not None:
        return revision in revisions and not opt_out
    if opt_out:
        return False
    return pod_labels.get(INJECT) == "true" or pod_labels.get("istio.io/rev") in revisions
