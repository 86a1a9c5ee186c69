"""trace-context where the apps keep no request records (a cluster running Istio's own Bookinfo images): reported
not applicable, with the platform's reason, never failed. The platform here is the minimal one
(tests/platforms/minimal_platform.py) saying so from `request_log`, as the Kubernetes platform does for any
workload that does not run meshconform's agent."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from meshconform import conformance

PLATFORM = '''
from minimal_platform import MinimalPlatform, PLATFORM
from dataclasses import replace
from meshconform.platform.api import RequestsNotRecorded


class IstiosImages(MinimalPlatform):
    def request_log(self, namespace, deployment):
        raise RequestsNotRecorded(f"the app of {namespace}/{deployment} (docker.io/istio/examples-bookinfo-"
                                  "productpage-v1:1.20.3) keeps no request records")


NO_RECORDS = replace(PLATFORM, name="no-records", create=lambda c: IstiosImages(c.folder, "hi"),
                     attach=lambda f, s: IstiosImages(f, "hi"))
'''


def test_trace_context_is_not_applicable_without_request_records(tmp_path: Path) -> None:
    (tmp_path / "no_records_platform.py").write_text(PLATFORM)
    path = os.pathsep.join(filter(None, [str(tmp_path), str(Path(__file__).parent / "platforms"),
                                         os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "MESHCONFORM_PLATFORMS": "no_records_platform:NO_RECORDS", "PYTHONPATH": path}
    run = subprocess.run([sys.executable, "-m", "pytest", str(Path(conformance.__file__).parent / "test_tracing.py"),
                          "-q", "-p", "no:cacheprovider", "--import-mode=importlib", "--mesh-platform=no-records",
                          f"--mesh-report-dir={tmp_path / 'run'}"], env=env, capture_output=True, text=True,
                         timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "4 skipped" in run.stdout and "failed" not in run.stdout
    tests = yaml.safe_load((tmp_path / "run" / "conformance.yaml").read_text())["tests"]
    assert [t["result"] for t in tests] == ["skipped"] * 4
    assert all("not applicable on this platform: the app of default/productpage-v1 (docker.io/istio/examples-"
               "bookinfo-productpage-v1:1.20.3) keeps no request records" in str(t) for t in tests)
