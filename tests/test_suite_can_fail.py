"""The suite must be able to fail: each conformance test fails against a realistic misbehaviour
of the local platform (and passes on the correct one, see the conformance run itself)."""

from __future__ import annotations

import subprocess
import sys

import pytest

CASES = [
    ("weights-skewed", "weighted-split-echo"),
    ("faults-ignored", "fault-abort"),
    ("mirror-dropped", "mirror-full"),
    ("strict-as-permissive", "mtls-strict"),
    ("mtls-plaintext", "mtls-strict"),
    ("gateway-host-ignored", "gateway-host-path"),
    ("header-match-ignored", "header-routing-jason"),
    ("no-injection", "injection-rules"),
]


@pytest.mark.parametrize(("misbehaviour", "test_id"), CASES, ids=[f"{m}->{t}" for m, t in CASES])
def test_conformance_test_catches_misbehaviour(misbehaviour: str, test_id: str) -> None:
    from meshconform import conformance
    folder = conformance.__file__.rsplit("/", 1)[0]
    run = subprocess.run([sys.executable, "-m", "pytest", folder, "-q", "-p", "no:cacheprovider",
                          "--import-mode=importlib", f"--mesh-misbehave={misbehaviour}",
                          f"--mesh-run-test={test_id}", "--mesh-timeout=max_time_to_consistency=5"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 1, run.stdout[-2000:] + run.stderr[-2000:]
    assert " failed" in run.stdout and "error" not in run.stdout.splitlines()[-1], run.stdout[-1500:]
