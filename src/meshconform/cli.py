"""The meshconform command line: up, apply, delete, get, status, down, run, certify, verify, platforms, perf.

Every command reaches its platform through the registry (meshconform.platform.registry): `up` creates
one of the chosen kind, the others attach to the one that is up."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from meshconform import runs
from meshconform.commands.active import attached as _attached
from meshconform.commands.certify import certify
from meshconform.commands.get import get
from meshconform.commands.verify import verify
from meshconform.console import caused_by_interrupt, interrupted
from meshconform.errors import ConfigError, MeshconformError, PlatformError
from meshconform.meshapi.analyze import analyze
from meshconform.meshapi.loader import Sourced, line_of, load_bytes, load_files
from meshconform.perf.cli import perf
from meshconform.platform import registry
from meshconform.platform.api import Platform, everything_applied
from meshconform.platform.cli_options import platform_choice as _platform_choice
from meshconform.platform.cli_options import platform_options as _platform_options
from meshconform.platform.session import PlatformChoice, PlatformSession, attach_recorded, take_down_recorded
from meshconform.report.redact import redact_text

# What -f takes, as kubectl reads it: a file, a folder (its manifests, not its subfolders'), or - for standard input.
MANIFESTS = click.Path(exists=True, allow_dash=True, path_type=Path)
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


def manifests(given: Sequence[Path]) -> list[Sourced]:
    """The resources of every -f: a file's, a folder's manifests in name order, standard input's for -."""
    loaded: list[Sourced] = []
    for path in given:
        if str(path) == "-":
            loaded += load_bytes(sys.stdin.buffer.read(), "<stdin>")
        elif path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix in MANIFEST_SUFFIXES and p.is_file())
            if not found:
                raise ConfigError(f"no {', '.join(MANIFEST_SUFFIXES)} file in this folder", source=str(path))
            loaded += load_files(found)
        else:
            loaded += load_files([path])
    return loaded


@click.group()
@click.version_option(package_name="meshconform")
def cli() -> None:
    """Conformance suite and test harness for service meshes (Istio first)."""


@cli.command()
@_platform_choice("local")
@_platform_options
@click.option("-f", "--filename", "files", multiple=True, type=MANIFESTS,
              help="Istio/Kubernetes YAML to apply once up (repeatable; a folder: its .yaml, .yml and .json files; "
                   "-: standard input).")
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--dry-run", is_flag=True, help="Print the whole plan and touch nothing.")
def up(platform_name: str, files: tuple[Path, ...], output: str, dry_run: bool, **given: Any) -> None:
    """Bring the platform up (mesh, Bookinfo, testbed, ingress gateway) and wait until ready."""
    choice = PlatformChoice.of(platform_name, given)
    extra = manifests(files)  # validate before starting anything
    if dry_run:
        click.echo(choice.plan())
        return
    with runs.pointer_lock():  # from any directory, one platform: a second `up` finds the first
        existing = runs.read_active()
        if existing is not None and registry.owner_of(existing.folder) is not None:
            try:
                attach_recorded(existing.folder, expect=existing.platform).close()  # detach: it is only asked
            except registry.NotRunning:
                pass  # recorded, but no longer running: a new one may start
            except PlatformError as exc:  # it may be running (a cluster out of reach): never forget it silently
                raise MeshconformError(f"a {existing.platform} platform is recorded as up (in {existing.folder}) and "
                                       f"could not be reached: {exc}; run 'meshconform down' to take it down first"
                                       ) from None
            else:
                raise MeshconformError(f"a {existing.platform} platform is already up (in {existing.folder}); "
                                       "run 'meshconform down' first")
        session = PlatformSession(choice)
        session.preflight()
        run_dir = runs.new_run_dir("platform")
        try:
            platform = session.create(run_dir / "platform", run_dir)
            runs.write_active(choice.name, platform.folder)
        except KeyboardInterrupt:
            runs.discard(run_dir)  # nothing was started yet
            raise
    try:
        platform.up()
        if extra:
            _warn(extra, platform)
            platform.apply(extra)
    except BaseException as failure:
        session.close()
        runs.clear_active()
        if isinstance(failure, KeyboardInterrupt | ConfigError):
            # Interrupted, or a file of -f refused (named in the one error line): everything it started is stopped,
            # and its folder holds nothing of use.
            runs.discard(run_dir)
        raise
    _print_endpoint(platform, output)


def _warn(resources: list[Sourced], platform: Platform) -> None:
    """References Istio accepts but that cannot work, on stderr, as `istioctl analyze` warns."""
    holds = everything_applied(platform)
    for warning in analyze(resources, holds or [], registry_known=holds is not None):
        line = line_of(warning.source, warning.kind, warning.namespace, warning.resource, warning.field)
        click.echo(redact_text(str(dataclasses.replace(warning, line=line))), err=True)


def _print_endpoint(platform: Platform, output: str) -> None:
    endpoint = platform.endpoint
    if output == "json":
        data = {"platform": platform.name, "ingress": endpoint.http, "run_dir": str(platform.folder.parent)}
        if endpoint.https:
            data["ingress_https"] = endpoint.https
            data.update({k: v for k, v in endpoint.extra.items() if isinstance(v, str)})
        click.echo(json.dumps(data))
        return
    click.echo(f"platform: {platform.name}")
    click.echo(f"ingress: {endpoint.http}")
    if endpoint.https:
        click.echo(f"ingress-https: {endpoint.https}")
    click.echo(f"run directory: {platform.folder.parent}")


@cli.command()
@click.option("-f", "--filename", "files", multiple=True, required=True, type=MANIFESTS,
              help="YAML file (repeatable; a folder: its .yaml, .yml and .json files; -: standard input).")
@_platform_choice(None)
def apply(files: tuple[Path, ...], platform_name: str | None) -> None:
    """Apply Istio/Kubernetes resources; returns when every proxy runs the new configuration."""
    resources = manifests(files)
    platform = _attached(platform_name)
    _warn(resources, platform)
    platform.apply(resources)
    for item in resources:
        click.echo(f"{item.resource.ref} applied")


@cli.command()
@click.option("-f", "--filename", "files", multiple=True, required=True, type=MANIFESTS,
              help="YAML file (repeatable; a folder: its .yaml, .yml and .json files; -: standard input).")
@click.option("--ignore-not-found", is_flag=True, help="Do not fail on resources that are not applied.")
@_platform_choice(None)
def delete(files: tuple[Path, ...], ignore_not_found: bool, platform_name: str | None) -> None:
    """Delete the resources named in the files."""
    resources = manifests(files)
    platform = _attached(platform_name)
    missing = {item.key for item in platform.delete(resources, ignore_missing=ignore_not_found)}
    for item in resources:
        click.echo(f"{item.resource.ref} {'not found' if item.key in missing else 'deleted'}")


@cli.command()
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
@_platform_choice(None)
def status(output: str, platform_name: str | None) -> None:
    """Show the running platform and its workloads."""
    platform = _attached(platform_name)
    if output == "json":
        click.echo(json.dumps({"describe": platform.describe(), "ingress": platform.endpoint.http,
                               "workloads": [dataclasses.asdict(w) for w in platform.workloads()]}))
        return
    _print_endpoint(platform, "text")
    rows = [("NAMESPACE/POD", "READY", "STATUS", "RESTARTS", "SIDECAR", "LAST EXIT")]
    for w in platform.workloads():
        running = sum(c.state == "running" for c in w.containers)
        state = "Running" if w.ready else next((c.state.capitalize() for c in w.containers if c.state != "running"),
                                               "Unknown")
        last = "; ".join(f"{c.name}: {c.last_exit}" for c in w.containers if c.last_exit)
        rows.append((f"{w.namespace}/{w.name}", f"{running}/{len(w.containers)}", state, str(w.restarts),
                     "yes" if w.sidecar else "no", last or "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        padded = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        click.echo("  " + "  ".join([*padded, row[-1]]))


@cli.command()
@_platform_choice(None)
def down(platform_name: str | None) -> None:
    """Take down what 'up' created (and nothing else)."""
    try:
        active = runs.read_active()
    except runs.UnreadablePointer as exc:
        exc.pointer.unlink(missing_ok=True)
        click.echo(f"forgot {exc.pointer}: it did not say which platform is up; nothing was stopped")
        return
    if active is None:
        click.echo("nothing is up")
        return
    if platform_name is not None and platform_name != active.platform:
        raise MeshconformError(f"the platform that is up is {active.platform!r}, not {platform_name!r}")
    if not take_down_recorded(active.folder):
        runs.clear_active()
        click.echo(f"nothing to stop: {active.folder} holds no platform any more (removed?); forgot it")
        return
    runs.clear_active()
    click.echo(f"stopped; logs and config stay in {active.folder.parent}")


@cli.command()
def platforms() -> None:
    """List the registered platforms and their options."""
    for kind in registry.kinds().values():
        click.echo(f"{kind.name}: {kind.summary}")
        for option in kind.options:
            click.echo(f"    --{option.name}: {option.help}")


class _RunCommand(click.Command):
    """`run`, whose help ends with the suite's pytest options: read from the plugin when the help is shown, so that
    no other command imports pytest (~0.18 s of the command line's ~0.7 s import)."""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        from meshconform.fixtures.options import suite_options_help
        listed: str = suite_options_help()
        # \b before each paragraph: click keeps its lines as they are (the example must stay one line to copy).
        self.epilog = ("\b\nAfter '--', pytest's arguments; the suite's own (the platform's are the options above):\n"
                       + listed + "\n\n\b\nExample:\n  meshconform run -n 2 -- --mesh-run-test=mirror-full "
                       "--mesh-timeout=max_time_to_consistency=60")
        super().format_epilog(ctx, formatter)


@cli.command(cls=_RunCommand, context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@_platform_choice("local")
@_platform_options
@click.option("-n", "--workers", default="0", show_default=True, help="pytest-xdist workers (0: serial, 'auto')")
@click.option("--dry-run", is_flag=True, help="Print the platform's plan and touch nothing.")
@click.pass_context
def run(ctx: click.Context, /, platform_name: str, workers: str, dry_run: bool, **given: Any) -> None:
    """Run the conformance suite (and every installed check package's); reports go to reports/<run-id>/. Extra
    arguments go to pytest."""
    import pytest

    from meshconform.certify.plan import suite_folders
    from meshconform.fixtures.session import MeshSession

    choice = PlatformChoice.of(platform_name, given)
    if dry_run:
        click.echo(choice.plan())
        return
    session = PlatformSession(choice)
    session.preflight()  # one clear error now, rather than thirty failed tests; pytest does not run it again
    args = [*suite_folders(), "-p", "no:cacheprovider", "--import-mode=importlib", "-q"]
    if workers != "0":
        args += ["-n", workers]
    # The validated, preflighted session goes to the plugin as it is, not as option text.
    handed = MeshSession(session)
    code = pytest.main([*args, *ctx.args], plugins=[handed])
    if handed.run_dir is not None:  # named by the plugin (--mesh-report-dir, or a new folder under reports/)
        click.echo(f"reports: {handed.run_dir}")
    sys.exit(int(code))


cli.add_command(get)
cli.add_command(certify)
cli.add_command(verify)
cli.add_command(perf)


def main() -> None:
    try:
        cli(standalone_mode=False)
    except (click.exceptions.Abort, KeyboardInterrupt):
        interrupted()
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except MeshconformError as exc:
        click.echo(f"error: {redact_text(str(exc))}", err=True)  # a log tail or quoted value may hold a secret
        sys.exit(1)
    except Exception as exc:
        if caused_by_interrupt(exc):  # Ctrl-C during a command's own late import, wrapped by Python
            interrupted()
        raise


if __name__ == "__main__":
    main()
