"""What a certification run refuses, before any platform starts (meshconform.certify.plan, commands/certify.py):
anything that would weaken a check (a misbehaviour, a core feature declared unsupported, a timeout shortened or one
that shapes what a check observes, pytest options from the environment, pytest arguments at all), and behind it,
in pytest itself, a selection or deselection from an ini file. The command it records reproduces the same plan."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from meshconform.certify.plan import CertificationPlan, CertificationRefused
from meshconform.commands.certify import certify
from meshconform.fixtures.certification import CertificationRun
from meshconform.platform.cli_options import given_options
from meshconform.report.certification import SuiteDigest


def plan(*args: str) -> CertificationPlan:
    """The plan certify makes of these arguments (parsed by the command's own options)."""
    params = certify.make_context("certify", list(args)).params
    return CertificationPlan.of(params.pop("platform_name"), given_options(params), params["profiles"],
                                params["unsupported"], params["implementation"], params["timeouts"], params["workers"],
                                params["sign_key"])


@pytest.mark.parametrize(("args", "refusal"), [
    (("--misbehave", "weights-skewed"), "--misbehave: comma-separated deliberate misbehaviours"),
    (("--unsupported-feature", "FaultAbort"), "--unsupported-feature FaultAbort: a core feature of MESH-HTTP"),
    (("--profile", "GATEWAY-HTTP", "--unsupported-feature", "Mesh"), "not an extended feature of the claimed"),
    (("--profile", "MESH-HTTPS"), "--profile: unknown MESH-HTTPS"),
    (("--timeout", "max_time_to_consistency=5"), "shorter than the suite's 30 s"),
    (("--timeout", "required_consecutive_successes=1"), "--timeout required_consecutive_successes: refused"),
    (("--timeout", "settle_quiet=2"), "--timeout settle_quiet: refused"),
    (("--platform", "cluster", "--install", "none"), "--implementation: a submission names who made the mesh"),
    (("--implementation", "organization=acme,colour=blue"), "--implementation: give organization=..."),
])
def test_what_would_weaken_a_check_is_refused(args: tuple[str, ...], refusal: str) -> None:
    with pytest.raises(CertificationRefused, match=refusal.replace("(", r"\(").replace(".", r"\.")):
        plan(*args)


def test_pytest_options_from_the_environment_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_ADDOPTS", "-k weights")
    with pytest.raises(CertificationRefused, match="PYTEST_ADDOPTS is set"):
        plan()


def test_pytest_arguments_are_not_taken_and_a_refusal_is_one_line() -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    extra = subprocess.run([sys.executable, "-m", "meshconform.cli", "certify", "--", "-k", "weights"], env=env,
                           capture_output=True, text=True, timeout=120, check=False)
    assert extra.returncode == 2 and "Got unexpected extra arguments (-k weights)" in extra.stderr
    refused = subprocess.run([sys.executable, "-m", "meshconform.cli", "certify", "--misbehave", "weights-skewed"],
                             env=env, capture_output=True, text=True, timeout=120, check=False)
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1
    assert refused.stderr.startswith("error: --misbehave: ") and "refused in a certification run" in refused.stderr


def test_an_accepted_plan_runs_everything_claimed_and_its_command_reproduces_it() -> None:
    accepted = plan("--profile", "MESH-HTTP", "--unsupported-feature", "TraceContext,OutlierDetection",
                    "--timeout", "max_time_to_consistency=60", "-n", "2",
                    "--implementation", "organization=acme,project=mesh,url=https://acme.example,version=1,contact=a")
    args = accepted.pytest_args()
    assert args[-10:] == ["-n", "2", "--mesh-profile", "MESH-HTTP", "--mesh-exempt-features",
                          "OutlierDetection,TraceContext", "--mesh-implementation",
                          "organization=acme,project=mesh,url=https://acme.example,version=1,contact=a",
                          "--mesh-timeout", "max_time_to_consistency=60"]
    assert not {"-k", "-m", "--deselect", "-x", "--mesh-run-test", "--mesh-skip-test"} & set(args)
    command = accepted.command()
    assert plan(*command[2:]) == accepted  # the recorded command makes the same plan again
    certification = accepted.certification(SuiteDigest("0.1.0", {"meshconform/x.py": "0" * 64}))
    assert certification.command.startswith("meshconform certify --platform local --profile MESH-HTTP")
    assert certification.reproduce[1] == f".venv/bin/{certification.command}"


def test_pytest_refuses_a_narrowed_certification_run(tmp_path: Path) -> None:
    """Behind the command: `-k` from an ini file (here given directly) stops the run before any test."""
    (tmp_path / "test_one.py").write_text("def test_one():\n    pass\n")
    digest = SuiteDigest("0.1.0", {"meshconform/x.py": "0" * 64})
    run = CertificationRun(plan().certification(digest))
    code = pytest.main([str(tmp_path), "-k", "one", "-p", "no:cacheprovider", "-q", "--collect-only"],
                       plugins=[run])
    assert code == pytest.ExitCode.USAGE_ERROR
