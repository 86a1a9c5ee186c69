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
CHECKS = {"fault-abort-not-retried": "test_interactions.py", "egress-registry-only": "test_egress.py",
          "authz-allow-nothing": "test_authorization.py"}


def test_checks_reading_the_access_log_are_not_applicable_without_one(tmp_path: Path) -> None:
    (tmp_path / "no_access_log_platform.py").write_text(PLATFORM)
    env = {**os.environ, "MESHCONFORM_PLATFORMS": "no_access_log_platform:NO_ACCESS_LOG",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))}
    suite = Path(conformance.__file__).parent
    chosen = [arg for check in CHECKS for arg in ("--mesh-run-test", check)]
    run = subprocess.run([sys.executable, "-m", "pytest", *sorted({str(suite / f) for f in CHECKS.values()}), "-q",
                          "-p", "no:cacheprovider", "--import-mode=importlib", "--mesh-platform=no-access-log",
                          f"--mesh-report-dir={tmp_path / 'run'}", *chosen],
                         env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    report = yaml.safe_load((tmp_path / "run" / "conformance.yaml").read_text())
    tests = {t["id"]: t for t in report["tests"]}
    assert set(tests) == set(CHECKS), sorted(tests)
    for check, result in tests.items():
        assert result["result"] == "skipped", (check, result)
        assert "not applicable on this platform: " in str(result) and "the mesh writes no access log: MeshConfig " \
            "accessLogFile is empty" in str(result), (check, result)
    print({check: result.get("duration_s", result.get("duration")) for check, result in tests.items()})
