"""The mesh as found: configuration a platform holds that this run did not create (a user's VirtualService for
`echo`, a vendor's mesh-wide PeerAuthentication), and which checks it can change.

Why: a check applies its own config and waits for its own marker; another VirtualService for the same host, or a
mesh-wide policy, makes that wait fail after its whole deadline with "never converged", which names nothing (40 of
64 checks failed that way, 20 minutes, on a local platform holding a user's VirtualServices for echo and reviews).
Named up front, the user can remove them, or run the checks they cannot touch and report the others as not run.

Which checks an object affects is read the way the run's workers decide whom a check may run beside
(suite/claims.py): the services its config touches by short name, the ingress for what binds to a gateway; a
policy or any other kind, and anything mesh-wide (the root namespace), touches everything. A check is affected
when those claims overlap its manifests' claims; a check without manifests sends where nothing names, so any
found object may affect it. Three kinds of object change nothing and are only listed: a root-namespace
PeerAuthentication that spells out Istio's default (PERMISSIVE, no selector, no port-level setting), a Telemetry
that sets only metrics, or access logging for the whole mesh: neither changes a reply, and whether the checks can
read the access log is the platform's fact, decided once from the same objects (kube/access_logging.py); and a
ServiceAccount (an identity: the workloads running as it, listed on their own, and the policies naming it are what
change traffic). A Telemetry for some workloads' access logging, or one setting tracing (sampling), counts as a
policy."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from meshconform.platform.api import FoundObject
from meshconform.suite.claims import Claims, derive, manifest_claims
from meshconform.suite.unit import ConformanceTest

REFUSE = "refuse"
SKIP_AFFECTED = "skip-affected"
MODES = (REFUSE, SKIP_AFFECTED)
_MESH_WIDE_KINDS = frozenset({"PeerAuthentication", "AuthorizationPolicy", "RequestAuthentication", "Sidecar",
                              "EnvoyFilter", "Telemetry", "WasmPlugin"})


@dataclass(frozen=True)
class Finding:
    """One found object, what it touches, and why it changes nothing if it does not (`harmless`)."""

    found: FoundObject
    claims: Claims
    harmless: str = ""

    @property
    def ref(self) -> str:
        return self.found.ref

    def describe(self) -> str:
        touches = "nothing a check sees" if self.harmless else self.claims.describe()
        return f"{self.ref} ({self.found.scope}): touches {touches}" + (f": {self.harmless}" if self.harmless else "")


def _default_peer_authentication(found: FoundObject) -> bool:
    spec = found.document.get("spec") or {}
    mode = str((spec.get("mtls") or {}).get("mode") or "UNSET").upper()
    return (found.kind == "PeerAuthentication" and found.scope.startswith("mesh-wide") and mode in ("UNSET",
            "PERMISSIVE") and not spec.get("selector") and not spec.get("portLevelMtls"))


def _telemetry_without_effect(found: FoundObject) -> bool:
    spec = found.document.get("spec") or {}
    targeted = any(spec.get(key) for key in ("selector", "targetRef", "targetRefs"))
    allowed = {"selector", "targetRef", "targetRefs", "metrics"} | (set() if targeted else {"accessLogging"})
    return found.kind == "Telemetry" and not set(spec) - allowed


def survey(objects: Iterable[FoundObject]) -> list[Finding]:
    """What each found object touches, in the order found."""
    findings = []
    for found in objects:
        if _default_peer_authentication(found):
            findings.append(Finding(found, Claims(frozenset()), "Istio's default (PERMISSIVE) written out"))
        elif _telemetry_without_effect(found):
            findings.append(Finding(found, Claims(frozenset()), "metrics or mesh-wide access logging only, which "
                                                                "change no reply (access logging: the platform's "
                                                                "access_log fact)"))
        elif found.kind == "ServiceAccount" and found.api_version == "v1":
            # An identity changes no traffic by itself: the workloads running as it (their Deployments, listed on
            # their own) and the policies naming it do. Istio's Bookinfo sample brings four.
            findings.append(Finding(found, Claims(frozenset()), "an identity, used by the workloads that run as it"))
        elif found.scope.startswith("mesh-wide") and found.kind in _MESH_WIDE_KINDS:
            findings.append(Finding(found, Claims(frozenset(), True, f"a mesh-wide {found.kind}")))
        else:
            findings.append(Finding(found, derive([found.document])))
    return findings


def affecting(unit: ConformanceTest, findings: Sequence[Finding]) -> list[Finding]:
    """The findings that can change what `unit` sees."""
    mine = manifest_claims(unit)
    return [f for f in findings if not f.harmless and mine.overlaps(f.claims)]


def refusal(findings: Sequence[Finding], affected: dict[str, list[Finding]], selected: int) -> str:
    """The one message a run stops with when found config affects selected checks (mode `refuse`)."""
    hit = {f.ref for found in affected.values() for f in found}
    lines = [f"the mesh holds configuration this run did not create, which can change what {len(affected)} of the "
             f"{selected} selected checks see:"]
    for finding in findings:
        if finding.ref in hit:
            units = sorted(uid for uid, found in affected.items() if any(f.ref == finding.ref for f in found))
            shown = ", ".join(units[:6]) + (f" and {len(units) - 6} more" if len(units) > 6 else "")
            lines.append(f"  {finding.describe()}; affects {len(units)}: {shown}")
    lines.append("Remove them (they were left exactly as they are), run on a mesh without them, or pass "
                 f"--mesh-found-config={SKIP_AFFECTED} to run the other checks and report these as not run.")
    return "\n".join(lines)


def not_run_reason(found: Sequence[Finding]) -> str:
    """The reason an affected check reports (mode `skip-affected`)."""
    return ("not run: configuration this run did not create can change what it sees: "
            + "; ".join(f.describe() for f in found))


__all__ = ["MODES", "REFUSE", "SKIP_AFFECTED", "Finding", "affecting", "not_run_reason", "refusal", "survey"]
