"""The meshconform command line: up, apply, delete, status, down, run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from meshconform import runs
from meshconform.errors import MeshconformError
from meshconform.meshapi.loader import load_files
from meshconform.platform.local.platform import LocalPlatform


def _attached() -> LocalPlatform:
    platform_dir = runs.read_active()
    if platform_dir is None:
        raise MeshconformError(f"no platform is up (no {runs.active_pointer()}): run 'meshconform up' first")
    platform = LocalPlatform(platform_dir)
    if not platform.is_up():
        raise MeshconformError(f"the platform in {platform_dir} is not running any more: run 'meshconform down' "
                               "to clear it, then 'meshconform up'")
    return platform


@click.group()
@click.version_option(package_name="meshconform")
def cli() -> None:
    """Conformance suite and test harness for service meshes (Istio first)."""


@cli.command()
@click.option("--platform", "platform_name", type=click.Choice(["local"]), default="local", show_default=True,
              help="Where the mesh runs. 'local' is meshconform's reference data plane (Envoy, not Istio).")
@click.option("-f", "--filename", "files", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Istio/Kubernetes YAML to apply once up (repeatable).")
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def up(platform_name: str, files: tuple[Path, ...], output: str) -> None:
    """Start the platform (Bookinfo + testbed behind sidecars, ingress gateway) and wait until ready."""
    existing = runs.read_active()
    if existing is not None and LocalPlatform(existing).is_up():
        raise MeshconformError(f"a platform is already up (run directory {existing}); "
                               "run 'meshconform down' first")
    extra = load_files(list(files))  # validate before starting anything
    run_dir = runs.new_run_dir("platform")
    platform = LocalPlatform(run_dir / "platform")
    runs.write_active(platform.files.root)
    try:
        platform.up()
        if extra:
            platform.apply(extra)
    except BaseException:
        platform.down()
        runs.clear_active()
        raise
    _print_endpoint(platform, output)


def _print_endpoint(platform: LocalPlatform, output: str) -> None:
    endpoint = platform.endpoint
    if output == "json":
        data = {"platform": platform.name, "ingress": endpoint.http, "run_dir": str(platform.files.root.parent)}
        if endpoint.https:
            data["ingress_https"] = endpoint.https
            data["ca_cert"] = str(platform.files.certs / "ca.pem")
        click.echo(json.dumps(data))
        return
    click.echo(f"ingress: {endpoint.http}")
    if endpoint.https:
        click.echo(f"ingress-https: {endpoint.https}")
    click.echo(f"run directory: {platform.files.root.parent}")


@cli.command()
@click.option("-f", "--filename", "files", multiple=True, required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path), help="YAML file (repeatable).")
def apply(files: tuple[Path, ...]) -> None:
    """Apply Istio/Kubernetes resources; returns when every proxy runs the new configuration."""
    resources = load_files(list(files))
    platform = _attached()
    platform.apply(resources)
    for item in resources:
        click.echo(f"{item.resource.ref} applied")


@cli.command()
@click.option("-f", "--filename", "files", multiple=True, required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path), help="YAML file (repeatable).")
@click.option("--ignore-not-found", is_flag=True, help="Do not fail on resources that are not applied.")
def delete(files: tuple[Path, ...], ignore_not_found: bool) -> None:
    """Delete the resources named in the files."""
    resources = load_files(list(files))
    platform = _attached()
    platform.delete(resources, ignore_missing=ignore_not_found)
    for item in resources:
        click.echo(f"{item.resource.ref} deleted")


@cli.command()
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def status(output: str) -> None:
    """Show the running platform and its workloads."""
    platform = _attached()
    if output == "json":
        click.echo(json.dumps({"describe": platform.describe(), "ingress": platform.endpoint.http,
                               "workloads": [w.__dict__ for w in platform.workloads()]}))
        return
    _print_endpoint(platform, "text")
    for workload in platform.workloads():
        click.echo(f"  {workload.namespace}/{workload.name}  sidecar={'yes' if workload.sidecar else 'no'}")


@cli.command()
def down() -> None:
    """Stop every process the platform started."""
    platform_dir = runs.read_active()
    if platform_dir is None:
        click.echo("nothing is up")
        return
    LocalPlatform(platform_dir).down()
    runs.clear_active()
    click.echo(f"stopped; logs and config stay in {platform_dir.parent}")


@cli.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("--platform", "platform_name", type=click.Choice(["local"]), default="local", show_default=True)
@click.option("-n", "--workers", default="0", show_default=True, help="pytest-xdist workers (0: serial, 'auto')")
@click.option("--misbehave", default="", help="local platform self-test: comma-separated misbehaviours")
@click.pass_context
def run(ctx: click.Context, platform_name: str, workers: str, misbehave: str) -> None:
    """Run the conformance suite; reports go to reports/<run-id>/. Extra arguments go to pytest."""
    import pytest

    from meshconform import conformance  # type: ignore[attr-defined]  # mapped from conformance/ at install

    run_dir = runs.new_run_dir("conformance")
    args = [str(Path(conformance.__file__).parent), "-p", "no:cacheprovider", "--import-mode=importlib",
            f"--mesh-platform={platform_name}", f"--mesh-report-dir={run_dir}",
            "-q"]
    if misbehave:
        args.append(f"--mesh-misbehave={misbehave}")
    if workers != "0":
        args += ["-n", workers]
    code = pytest.main([*args, *ctx.args])
    click.echo(f"reports: {run_dir}")
    sys.exit(int(code))


cli.add_command(__import__("meshconform.perf.cli", fromlist=["perf"]).perf)


def main() -> None:
    try:
        cli(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("interrupted: everything started was stopped", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        click.echo("interrupted: everything started was stopped", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except MeshconformError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
