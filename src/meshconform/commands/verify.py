"""`meshconform verify DIR`: a submission folder checked offline against the installed suite (checksums, signature,
schema, suite digest, completeness, verdicts recomputed); see meshconform.certify.verify for the checks and the exit
codes (0 accepted, 1 rejected, 2 not a submission, 3 genuine but not conformant, 4 made by another suite)."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command()
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--no-checksums", is_flag=True, help="Check the content alone (the report, its completeness, the "
                                                   "suite, the verdicts), not SHA256SUMS.")
@click.option("--key", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The vendor's Ed25519 public key (PEM): the signature over SHA256SUMS must verify with it.")
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def verify(folder: Path, no_checksums: bool, key: Path | None, output: str) -> None:
    """Verify a submission folder written by 'meshconform certify'. Exit 0: accepted; 1: rejected (each finding
    names the file or the test); 2: not a submission folder; 3: genuine and complete, but a claimed profile's core
    did not pass; 4: not judged, made by another suite than the installed one (both digests and the files that
    differ are named; verify it with that suite)."""
    from meshconform.certify import verify as checks  # here: it brings pytest (~0.2 s), which no other command needs
    try:
        result = checks.verify(folder, checksums=not no_checksums, key=key)
    except checks.NotASubmission as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(checks.NOT_A_SUBMISSION)
    click.echo(checks.render_json(result) if output == "json" else checks.render(result))
    sys.exit(result.exit_code)
