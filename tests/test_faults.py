"""Faults seen and survived: a sidecar, an app or the gateway killed with SIGKILL is restarted with
back-off (as a kubelet restarts a container), `status` shows the exit and the restart, traffic recovers,
a test that ran while a workload was down says so, a process that cannot come back is named by the next
apply, and `down` leaves nothing behind. Processes are killed by the PIDs the platform recorded."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from meshconform import conformance, runs
from meshconform.errors import PlatformError
from meshconform.meshapi.loader import load_text
from meshconform.platform import registry
from meshconform.platform.api import Workload
from meshconform.platform.local.platform import LocalPlatform
from meshconform.traffic.model import Request

RECOVERY_DEADLINE_S = 30.0  # back-off starts at 0.25 s; an Envoy or an app is up again in about a second


def _wait_for(condition: Callable[[], bool], what: str, deadline_s: float = RECOVERY_DEADLINE_S) -> None:
    deadline = time.monotonic() + deadline_s
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def local(run_root: Path) -> Iterator[LocalPlatform]:
    platform = registry.create(registry.get("local"), registry.PlatformContext(run_root / "faults", run_root, "main"))
    assert isinstance(platform, LocalPlatform)
    platform.up()
    try:
        yield platform
    finally:
        platform.down()


def _workload(platform: LocalPlatform, deployment: str, namespace: str = "default") -> Workload:
    return next(w for w in platform.workloads() if w.namespace == namespace and w.deployment == deployment)


def _kill(platform: LocalPlatform, process: str) -> int:
    """SIGKILL the running child of a recorded process (not its keeper); returns the PID."""
    record = next(r for r in platform.supervisor.records() if r.name == process)
    pid = platform.supervisor.status(record).pid
    assert pid is not None, f"{process} is not running"
    os.kill(pid, signal.SIGKILL)
    return pid


def _restarted(platform: LocalPlatform, deployment: str, container: str, namespace: str = "default") -> bool:
    state = next(c for c in _workload(platform, deployment, namespace).containers if c.name == container)
    return state.restarts >= 1 and state.state == "running"


def _pod(platform: LocalPlatform, deployment: str) -> str:
    return f"default/{_workload(platform, deployment).name}"


def test_a_killed_sidecar_is_restarted_shown_and_traffic_recovers(local: LocalPlatform, tmp_path: Path) -> None:
    _kill(local, f"envoy:{_pod(local, 'details-v1')}")
    _wait_for(lambda: _restarted(local, "details-v1", "istio-proxy"), "details' sidecar to be restarted")
    proxy = next(c for c in _workload(local, "details-v1").containers if c.name == "istio-proxy")
    assert proxy.last_exit is not None and proxy.last_exit.startswith("killed by signal 9"), proxy
    client = local.vantage("default/client")
    _wait_for(lambda: client.send([Request("/details/0", host="details:9080")])[0].status == 200,
              "details to answer through its restarted sidecar")
    # `meshconform status`, pointed at this platform as `up` would have left it
    runs.write_active("local", local.folder)  # in this test's own state folder (tests/conftest.py)
    status = subprocess.run([sys.executable, "-m", "meshconform.cli", "status"], capture_output=True, text=True,
                            timeout=60, env={**os.environ, "MESHCONFORM_REPORTS": str(tmp_path)})
    line = next(line for line in status.stdout.splitlines() if "details-v1" in line)
    assert "Running" in line and "istio-proxy: killed by signal 9" in line and " 1 " in line, status.stdout


def test_a_killed_app_and_gateway_are_restarted(local: LocalPlatform) -> None:
    _kill(local, f"app:{_pod(local, 'ratings-v1')}")
    _kill(local, "envoy:gateway")
    _wait_for(lambda: _restarted(local, "ratings-v1", "app"), "ratings to be restarted")
    _wait_for(lambda: _restarted(local, "istio-ingressgateway", "istio-proxy", "istio-system"),
              "the gateway to be restarted")
    client = local.vantage("default/client")
    _wait_for(lambda: client.send([Request("/ratings/0", host="ratings:9080")])[0].status == 200,
              "ratings to answer again")
    evidence = local.evidence("default", "ratings-v1")
    [pod] = evidence.values()
    app = next(c for c in pod["containers"] if c["name"] == "app")
    assert app["restarts"] >= 1 and app["last_exit"].startswith("killed by signal 9")


def test_a_process_that_cannot_come_back_is_named_by_the_next_apply(run_root: Path) -> None:
    platform = LocalPlatform(run_root / "gone")
    platform.up()
    try:
        record = next(r for r in platform.supervisor.records() if r.name.startswith("envoy:default/reviews-v2"))
        os.killpg(record.pid, signal.SIGKILL)  # keeper and child: nothing will restart it
        _wait_for(lambda: platform.supervisor.status(record).state == "stopped", "the sidecar's group to be gone")
        with pytest.raises(PlatformError, match=r"envoy:default/reviews-v2.* is not running and will not restart"):
            platform.apply(load_text("apiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
                                     "metadata: {name: echo}\nspec: {host: echo}\n", "dr.yaml"))
    finally:
        platform.down()
    assert not [r for r in platform.supervisor.records()]


def test_a_run_with_a_sidecar_killed_mid_test_completes_or_names_the_cause(local: LocalPlatform,
                                                                           tmp_path: Path) -> None:
    run = subprocess.Popen([sys.executable, "-m", "pytest", str(Path(conformance.__file__).parent), "-q",
                            "-p", "no:cacheprovider", "--import-mode=importlib", f"--mesh-platform-dir={local.folder}",
                            "--mesh-run-test=weighted-split-echo", f"--mesh-report-dir={tmp_path}"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        # Once echo-v1 has served the test's traffic, its sidecar is killed in the middle of the run.
        _wait_for(lambda: len(local.request_log("default", "echo-v1")) > 200 or run.poll() is not None,
                  "the run's traffic to reach echo v1", deadline_s=240)
        _kill(local, f"envoy:{_pod(local, 'echo-v1')}")
        output, _ = run.communicate(timeout=600)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    report = yaml.safe_load((tmp_path / "conformance.yaml").read_text())
    failed = [t for t in report["tests"] if t["result"] == "failed"]
    if run.returncode == 0:
        assert not failed
    else:  # a failure must carry the cause: the killed sidecar, in the evidence of the test that met it
        assert failed, output[-3000:]
        for test in failed:
            assert "killed by signal 9" in yaml.safe_dump(test["evidence"]), test["id"]
    # Passed or failed, the run says what happened to the platform while it went on: in its summary, and as the
    # platform event of the test it happened in (or after the last one).
    killed = [e for e in report.get("platformEvents", []) if e["workload"].startswith("default/echo-v1-")
              and e["container"] == "istio-proxy" and e["lastExit"].startswith("killed by signal 9")]
    assert len(killed) == 1, report.get("platformEvents")
    assert any("echo-v1" in line and "istio-proxy" in line for line in report["summary"]["platformEvents"])
    if killed[0]["during"].startswith("weighted-split-echo"):
        [test] = [t for t in report["tests"] if t["id"] == killed[0]["during"]]
        assert test["platformEvents"] == [killed[0]]
    _wait_for(lambda: _restarted(local, "echo-v1", "istio-proxy"), "echo v1's sidecar to be restarted")
