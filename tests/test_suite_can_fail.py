"""The suite must be able to fail: every conformance test fails against at least one realistic
misbehaviour of the local platform (and passes on the correct one: see the conformance run itself).

Each misbehaviour gets one pytest run of exactly the tests it should break; the run's own
conformance report must list each of them as failed."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from importlib import import_module
from pathlib import Path

import pytest
import yaml

from meshconform import conformance
from meshconform.platform.local.platform import LocalPlatform
from meshconform.platform.local.translator import MISBEHAVIOURS
from meshconform.suite.unit import REGISTRY

CATCHES = {
    "weights-skewed": ["weighted-split-echo", "bookinfo-traffic-shifting", "gateway-api-mesh-weights"],
    "header-match-ignored": ["header-routing-jason", "fault-abort", "gateway-api-mesh-header-matches"],
    "faults-ignored": ["fault-abort", "fault-delay", "bookinfo-ratings-delay", "bookinfo-ratings-abort"],
    "mirror-dropped": ["mirror-full", "mirror-fraction", "gateway-api-mesh-request-mirror"],
    "mirror-percentage-ignored": ["mirror-fraction", "gateway-api-mesh-request-mirror"],
    "strict-as-permissive": ["mtls-strict", "mtls-workload-precedence", "mtls-namespace-precedence",
                             "mtls-port-level"],
    "permissive-as-strict": ["mtls-permissive"],
    "mtls-plaintext": ["mtls-strict", "mtls-permissive", "injection-rules", "identity-by-service-account"],
    "auto-mtls-ignores-disable": ["mtls-disable"],
    "precedence-reversed": ["mtls-workload-precedence", "mtls-namespace-precedence"],
    "unset-not-inherited": ["mtls-namespace-precedence"],
    "gateway-host-ignored": ["gateway-host-path", "gateway-host-routing", "gateway-tls-simple"],
    "gateway-host-port-kept": ["gateway-host-path"],
    "gateway-xff-not-appended": ["gateway-host-path"],
    "xfcc-subject-dropped": ["identity-by-service-account"],
    "gateway-credential-ignored": ["gateway-tls-simple", "gateway-https-redirect"],
    "gateway-first-server-hosts": ["gateway-host-routing"],
    "timeouts-ignored": ["request-timeout"],
    "retries-ignored": ["retries", "retry-other-host"],
    "retry-once-as-none": ["retries"],
    "retry-same-host": ["retry-other-host"],
    "circuit-breakers-ignored": ["circuit-breaking", "subset-traffic-policy", "circuit-breaking-retries"],
    "no-injection": ["injection-rules"],
    "authz-ignored": ["authz-allow-nothing", "authz-allow-rules", "authz-principal-from-certificate"],
    "exact-as-prefix": ["match-near-misses", "gateway-api-mesh-header-matches"],
    "regex-as-partial-match": ["match-near-misses", "gateway-wildcard-near-misses", "gateway-api-mesh-header-matches"],
    "authz-negations-ignored": ["authz-negated-fields", "jwt-request-authentication"],
    "authz-hosts-case-sensitive": ["authz-negated-fields"],
    "authz-not-namespaces-of-workload": ["authz-negated-fields"],
    "authz-path-with-query": ["authz-allow-rules"],
    "unverified-request-principal": ["authz-allow-rules"],
    "root-namespace-policies-ignored": ["authz-root-namespace"],
    "wildcard-without-dot-boundary": ["gateway-wildcard-near-misses"],
    "xfcc-forwarded-from-untrusted": ["xfcc-forged-untrusted"],
    "port-level-mtls-ignored": ["mtls-port-level"],
    "strict-client-certificate-optional": ["mtls-strict"],
    "namespace-policy-everywhere": ["mtls-strict"],
    "https-redirect-ignored": ["gateway-https-redirect"],
    "request-header-operations-ignored": ["header-operations", "gateway-api-mesh-request-header-modifier"],
    "path-prefix-as-string-prefix": ["gateway-api-http-paths"],
    "gateway-api-precedence-ignored": ["gateway-api-http-paths"],
    "identity-from-deployment-name": ["identity-by-service-account", "authz-principal-from-certificate"],
    "trace-headers-dropped": ["trace-context"],
    "jwt-ignored": ["jwt-request-authentication"],
    "jwt-rule-options-ignored": ["jwt-request-authentication"],
    "jwt-expiry-unchecked": ["jwt-request-authentication"],
    "outlier-detection-ignored": ["outlier-ejection", "outlier-max-ejection-percent", "subset-traffic-policy"],
    "outlier-consecutive-off-by-one": ["outlier-ejection", "subset-traffic-policy"],
    "route-timeout-per-try": ["retries-within-route-timeout", "per-try-timeout-retried"],
    "per-try-timeout-ignored": ["retries-within-route-timeout", "per-try-timeout-retried"],
    "retry-on-ignored": ["retry-on-conditions"],
    "default-retries-503": ["default-retry-policy"],
    "faults-at-destination": ["fault-abort-not-retried"],
    "subset-first-label-only": ["subset-multi-label"],
    "subset-policy-ignored": ["subset-traffic-policy", "outlier-ejection", "circuit-breaking",
                              "circuit-breaking-retries"],
    "load-balancer-ignored": ["subset-traffic-policy"],
    "registry-only-ignored": ["egress-registry-only"],
    "service-entries-ignored": ["egress-registry-only"],
    "dns-as-passthrough": ["egress-registry-only"],
    "passthrough-blocked": ["egress-passthrough", "egress-sidecar-precedence"],
    "root-sidecar-over-namespace": ["egress-sidecar-precedence"],
    "response-header-operations-ignored": ["header-operations", "gateway-api-mesh-request-header-modifier"],
    "delay-percent-ignored": ["fault-delay"],
    "header-add-replaces": ["header-operations", "gateway-api-mesh-request-header-modifier"],
    "header-set-appends": ["header-operations", "gateway-api-mesh-request-header-modifier"],
    "method-match-ignored": ["match-near-misses", "gateway-api-mesh-header-matches"],
    "query-match-ignored": ["match-near-misses", "gateway-api-mesh-header-matches"],
    "match-port-ignored": ["match-near-misses"],
    "route-names-generated": ["match-near-misses"],
    "mirror-subset-ignored": ["mirror-full"],
    "mirror-port-ignored": ["mirror-full"],
    "mirror-shadow-host": ["mirror-full", "gateway-api-mesh-request-mirror"],
    "backend-kind-ignored": ["gateway-api-http-paths"],
    "parent-namespace-ignored": ["gateway-api-http-paths"],
    "allowed-routes-same-ignored": ["gateway-api-http-paths"],
    "invalid-backend-share-dropped": ["gateway-api-http-paths"],
    "parent-port-ignored": ["gateway-api-http-paths"],
    "egress-wildcard-vs-ignored": ["egress-registry-only"],
    "reference-grant-ignored": ["gateway-api-http-paths"],
    "zero-weight-backends-used": ["gateway-api-http-paths"],
}
FOLDER = Path(conformance.__file__).parent


def test_every_conformance_test_and_misbehaviour_is_covered() -> None:
    for module in pkgutil.iter_modules([str(FOLDER)]):
        import_module(f"meshconform.conformance.{module.name}")
    caught = {test_id for ids in CATCHES.values() for test_id in ids}
    assert set(REGISTRY) - caught == set(), "conformance tests no misbehaviour is shown to break"
    assert set(MISBEHAVIOURS) == set(CATCHES), "misbehaviours without a conformance test that catches them"


@pytest.mark.slow
@pytest.mark.parametrize("misbehaviour", list(CATCHES))
def test_conformance_tests_catch_misbehaviour(misbehaviour: str, platform: LocalPlatform, tmp_path: Path) -> None:
    # One platform per worker serves every case: each run switches the misbehaviour on and back off.
    selection = [f"--mesh-run-test={test_id}" for test_id in CATCHES[misbehaviour]]
    run = subprocess.run([sys.executable, "-m", "pytest", str(FOLDER), "-q", "-p", "no:cacheprovider",
                          "--import-mode=importlib", f"--mesh-platform-dir={platform.folder}",
                          f"--mesh-misbehave={misbehaviour}", *selection,
                          "--mesh-timeout=max_time_to_consistency=2", f"--mesh-report-dir={tmp_path}"],
                         capture_output=True, text=True, timeout=300)
    output = run.stdout[-3000:] + run.stderr[-2000:]
    assert run.returncode == 1, output
    report = yaml.safe_load((tmp_path / "conformance.yaml").read_text())
    assert report["underTest"]["misbehave"] == [misbehaviour]
    failed = {test.partition("[")[0] for profile in report["profiles"] for part in ("core", "extended")
              if part in profile for test in profile[part]["failedTests"]}  # a part no test ran in is left out
    assert failed == set(CATCHES[misbehaviour]), output
    # A failure carries its evidence: what was applied and the traffic that was seen.
    for result in report["tests"]:
        if result["result"] == "failed" and result["id"].partition("[")[0] != "injection-rules":
            assert result["evidence"].get("applied_config") and result["evidence"].get("traffic"), result["id"]
        if result["result"] == "failed":  # and the platform's diagnostics, linked from the report
            files = result["evidence"].get("diagnostics")
            assert files and all((tmp_path / f).exists() or Path(f).exists() for f in files), result["id"]
    assert LocalPlatform(platform.folder).misbehave == frozenset(), "the misbehaviour was not switched off"
