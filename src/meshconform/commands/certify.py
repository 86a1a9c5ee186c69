"""`meshconform certify`: the whole suite of the claimed profiles on a platform, in certification mode (nothing that
weakens a check; meshconform.certify.plan says what is refused), written as a sealed submission folder
(reports/<run>/submission/: the report, JUnit, HTML, the Gateway API ConformanceReport, a README with who, what,
when, the platform's facts and the commands to reproduce it, the suite digest, SHA256SUMS and optionally the
vendor's signature), which `meshconform verify` then checks."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from meshconform.platform.cli_options import given_options, platform_choice, platform_options
from meshconform.platform.session import PlatformSession


@click.command()
@platform_choice("local")
@platform_options
@click.option("--profile", "profiles", multiple=True, help="A profile claimed (repeatable; default: every profile). "
              "Every check of a claimed profile runs.")
@click.option("--unsupported-feature", "unsupported", multiple=True, metavar="FEATURE",
              help="An extended feature of a claimed profile the mesh does not support (repeatable or "
                   "comma-separated); its checks are reported as skipped. A core feature is refused.")
@click.option("--implementation", default="", metavar="organization=..,project=..,url=..,version=..,contact=a;b",
              help="Who made the mesh under test (required on every platform but meshconform's own reference one).")
@click.option("--timeout", "timeouts", multiple=True, metavar="NAME=SECONDS",
              help="Lengthen a wait (max_time_to_consistency, request_timeout, turn_wait); others are refused.")
@click.option("-n", "--workers", default="0", show_default=True, help="pytest-xdist workers (0: serial, 'auto')")
@click.option("--sign-key", type=click.Path(dir_okay=False, path_type=Path),
              help="The vendor's Ed25519 private key (PEM): signs SHA256SUMS (SHA256SUMS.sig), checked by "
                   "'meshconform verify --key PUBLIC-KEY'.")
def certify(platform_name: str, profiles: tuple[str, ...], unsupported: tuple[str, ...], implementation: str,
            timeouts: tuple[str, ...], workers: str, sign_key: Path | None, **given: Any) -> None:
    """Certify a mesh: run every check of the claimed profiles and write a sealed submission folder."""
    # Imported here, as `run` does: they bring pytest (~0.2 s), which no other command needs.
    import pytest

    from meshconform.certify import digest, verify
    from meshconform.certify.plan import CertificationPlan
    from meshconform.fixtures.certification import CertificationRun
    from meshconform.fixtures.session import MeshSession
    from meshconform.report import submission

    plan = CertificationPlan.of(platform_name, given_options(given), profiles, unsupported, implementation, timeouts,
                                workers, sign_key)
    session = PlatformSession(plan.choice)
    session.preflight()  # one clear error now, before any test
    handed = MeshSession(session)
    code = pytest.main(plan.pytest_args(), plugins=[handed, CertificationRun(plan.certification(digest.installed()))])
    folder = CertificationRun.folder(handed.run_dir) if handed.run_dir is not None else None
    if folder is None or not (folder / submission.REPORT).is_file():
        raise click.ClickException(f"no submission was written (pytest exit {int(code)}): see the output above")
    submission.seal(folder, sign_key)
    click.echo(f"submission: {folder}")
    checked = verify.verify(folder, key=sign_key)  # the public half is read from the private key's file
    click.echo(verify.render(checked))
    sys.exit(int(code) or (verify.REJECTED if checked.findings else 0))
