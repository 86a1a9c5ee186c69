"""Checks that read the proxies' access log, on a mesh that writes none the platform can read (a vendor's mesh
installed without access logging): reported not applicable with the platform's reason, never failed and never a
wait for lines that cannot come. The platform is the local one with its access log withheld, as the Kubernetes
platform withholds it when the mesh config decides so (tests/kube/test_access_logging.py); whichever check reads the
log, the plugin turns the platform's AccessLogNotRecorded into a not-applicable result."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from meshconform import conformance

PLATFORM = '''
from dataclasses import replace

from meshconform.platform.api import AccessLogNotRecorded
from meshconform.platform.local.entry import PLATFORM
from meshconform.platform.local.platform import LocalPlatform

REASON = "the mesh writes no access log: MeshConfig accessLogFile is empty (ConfigMap istio-system/istio)"


class WithoutAccessLog(LocalPlatform):
    def access_log(self, namespace, deployment):
        raise AccessLogNotRecorded(f"{namespace}/{deployment}: {REASON}")

    def describe(self):
        return {**super().describe(), "access_log": {"readable": False, "decided_by": "test", "reason": REASON}}


NO_ACCESS_LOG = replace(PLATFORM, name="no-access-log", create=lambda c: WithoutAccessLog(c.folder),
                        attach=lambda f, s: WithoutAccessLog(f))
'''
# Every check that reads the access log (README names them). Those that need the log itself (the upstream cluster,
# Istio's block_all route, whether a try reached echo's proxy, what the gateway's or the mirror's proxy logged):
# not applicable.
NOT_APPLICABLE = {"fault-abort-not-retried": "test_interactions.py", "egress-registry-only": "test_egress.py",
                  "egress-passthrough": "test_egress.py", "egress-sidecar-precedence": "test_egress.py",
                  "gateway-host-path": "test_gateway.py",
                  "gateway-api-http-paths": "test_gateway_api.py", "mirror-full": "test_mirroring.py"}
# Those that read only how a request failed: judged from Envoy's local reply marks on the replies instead.
FROM_REPLIES = {"authz-allow-nothing": "test_authorization.py", "authz-allow-rules": "test_authorization.py",
                "authz-negated-fields": "test_authorization.py", "authz-root-namespace": "test_authorization.py",
                "authz-principal-from-certificate": "test_identity.py", "fault-abort": "test_fault.py",
                "request-timeout": "test_resilience.py", "circuit-breaking": "test_resilience.py",
                "circuit-breaking-retries": "test_resilience.py", "subset-traffic-policy": "test_resilience.py",
                "retries-within-route-timeout": "test_interactions.py", "subset-multi-label": "test_interactions.py"}


def test_checks_reading_the_access_log_are_not_applicable_or_judged_from_the_replies(tmp_path: Path) -> None:
    """Never a timeout: the checks that need the log are not applicable with the platform's reason; those that only
    ask how a request failed (RBAC's 403, FI, UT, UO, UH) pass on the marks Envoy's local replies carry (real Envoy
    here), and their figures say the replies, not the log, were read."""
    (tmp_path / "no_access_log_platform.py").write_text(PLATFORM)
    env = {**os.environ, "MESHCONFORM_PLATFORMS": "no_access_log_platform:NO_ACCESS_LOG",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))}
    suite = Path(conformance.__file__).parent
    checks = {**NOT_APPLICABLE, **FROM_REPLIES}
    chosen = [arg for check in checks for arg in ("--mesh-run-test", check)]
    run = subprocess.run([sys.executable, "-m", "pytest", *sorted({str(suite / f) for f in checks.values()}), "-q",
                          "-p", "no:cacheprovider", "--import-mode=importlib", "--mesh-platform=no-access-log",
                          f"--mesh-report-dir={tmp_path / 'run'}", *chosen],
                         env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    report = yaml.safe_load((tmp_path / "run" / "conformance.yaml").read_text())
    tests: dict[str, list[dict]] = {}
    for result in report["tests"]:
        tests.setdefault(result["unit"], []).append(result)
    assert set(tests) == set(checks), sorted(tests)
    for check in NOT_APPLICABLE:
        for result in tests[check]:
            assert result["result"] == "skipped", (check, result)
            assert "not applicable on this platform: " in str(result) and "the mesh writes no access log: " \
                "MeshConfig accessLogFile is empty" in str(result), (check, result)
    for check in FROM_REPLIES:
        for result in tests[check]:
            assert result["result"] == "passed", (check, result)
    for check in ("authz-allow-nothing", "fault-abort", "request-timeout", "circuit-breaking", "subset-multi-label"):
        for result in tests[check]:  # those that keep the mechanism as a figure say what was read
            assert "from the replies, not the access log: " in str(result["figures"]), (check, result["figures"])
    print({check: [r.get("durationSeconds") for r in results] for check, results in tests.items()})


def test_without_the_log_a_failure_is_judged_by_envoys_local_reply_mark() -> None:
    """The fallback's own edges: every reply must carry the status and the mark; a flag with no mark of its own on
    the reply (NR: an empty 404) leaves the check not applicable."""
    import pytest

    from meshconform.platform.api import AccessLogNotRecorded
    from meshconform.suite.failures import assert_failed_as
    from meshconform.suite.timeouts import Timeouts
    from meshconform.traffic.model import Response

    class NoLog:
        def access_log(self, namespace: str, deployment: str) -> list[dict[str, object]]:
            raise AccessLogNotRecorded(f"{namespace}/{deployment}: no access log")

    def reply(i: int, status: int, body: str = "", headers: dict[str, str] | None = None) -> Response:
        return Response(f"r{i}", status, None, 0.01, headers or {}, body)
    platform, timeouts, caller = NoLog(), Timeouts(), [("default", "client")]
    timed_out = [reply(i, 504, "upstream request timeout") for i in range(3)]
    figure = assert_failed_as(platform, caller, timed_out, timeouts, 504, "UT")
    assert figure == {"from the replies, not the access log: 504 with body 'upstream request timeout'": 3}
    overflow = [reply(0, 503, "x", {"x-envoy-overloaded": "true"}), reply(1, 503, "from echo")]
    with pytest.raises(AssertionError, match=r"1 of 2 did not fail as 503 with Envoy's local reply "
                                             r"\(x-envoy-overloaded 'true'\)"):
        assert_failed_as(platform, caller, overflow, timeouts, 503, "UO")
    denied = [reply(0, 403, "RBAC: access denied"), reply(1, 200, "RBAC: access denied")]
    with pytest.raises(AssertionError, match="1 of 2 did not fail as 403"):
        assert_failed_as(platform, caller, denied, timeouts, 403,
                         details_prefix="rbac_access_denied")
    with pytest.raises(AccessLogNotRecorded):
        assert_failed_as(platform, caller, [reply(0, 404)], timeouts, 404, "NR")
