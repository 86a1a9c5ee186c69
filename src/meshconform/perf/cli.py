"""`meshconform perf`: run the load phases on the platform, write the result, pictures and page
into a run folder, and compare with a baseline (non-zero exit on a regression)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from meshconform import runs
from meshconform.errors import ConfigError
from meshconform.interrupts import sigterm_as_interrupt
from meshconform.perf.phases import PHASES
from meshconform.perf.spec import PhaseSpec, Step
from meshconform.platform.cli_options import given_options, platform_choice, platform_options

EXIT_REGRESSION = 3
EXIT_INVALID = 4


def parse_steps(text: str) -> list[Step]:
    """'users:rate:seconds,...' -> steps of a LoadTestShape."""
    steps = []
    for index, part in enumerate(filter(None, (p.strip() for p in text.split(",")))):
        try:
            users, rate, seconds = part.split(":")
            step = Step(int(users), float(rate), float(seconds))
        except ValueError:
            raise ConfigError(f"step {index + 1} {part!r} is not users:rate:seconds", source="--steps",
                              field=f"steps[{index}]") from None
        if step.users < 1 or step.rate < 0 or step.duration_s <= 0:
            raise ConfigError(f"step {index + 1} {part!r} needs users >= 1, rate >= 0, seconds > 0",
                              source="--steps", field=f"steps[{index}]")
        steps.append(step)
    return steps


def plan(phases: list[str], targets: dict[str, Any], mode: str, rate: float, users: int, duration: float,
         warmup: float, steps: list[Step], processes: int, csv: bool, html: bool) -> list[PhaseSpec]:
    common = {"mode": mode, "rate": rate, "users": users, "warmup_s": warmup, "steps": steps,
              "processes": processes, "csv": csv, "html": html}
    specs = []
    for name in phases:
        if name == "scenarios":
            specs.append(PhaseSpec(name, ["PageVisitor", "SignedInReader", "ApiClient"], [targets["ingress"]],
                                   duration_s=duration, **common))  # type: ignore[arg-type]
        elif name == "in-mesh":
            specs.append(PhaseSpec(name, ["PageVisitor"], [targets["in-mesh"]], duration_s=max(5.0, duration / 2),
                                   **common))  # type: ignore[arg-type]
        elif name == "mesh-cost":
            # Both targets alternate second by second in one phase, so both see the same machine.
            specs.append(PhaseSpec(name, ["PageVisitor"], [targets["mesh"], targets["no-mesh"]],
                                   duration_s=2 * duration, **common))  # type: ignore[arg-type]
    return specs


@click.command()
@platform_choice(None, "The platform that is up, else this one, brought up and taken down (default: the one up, "
                       "else local). ")
@platform_options
@click.option("--mode", type=click.Choice(["open", "closed"]), default="open", show_default=True,
              help="open: a fixed rate, latency from the intended send time (coordinated omission corrected); "
                   "closed: Locust's users (each waits for its reply; --rate paces them, 0 = no pause).")
@click.option("--rate", type=click.FloatRange(min=0), default=30.0, show_default=True, help="Requests/s per phase.")
@click.option("--users", type=click.IntRange(min=1), default=8, show_default=True,
              help="Users = connections; each is one stream.")
@click.option("--duration", type=click.FloatRange(min=1), default=25.0, show_default=True,
              help="Measured seconds per phase (in-mesh: half, mesh-cost: twice, split between its two targets).")
@click.option("--warmup", type=click.FloatRange(min=0), default=4.0, show_default=True,
              help="Seconds of load before measuring (excluded).")
@click.option("--steps", default="", help="A load shape instead of one rate: 'users:rate:seconds,...'.")
@click.option("--phases", default=None,
              help=f"Which phases, comma-separated, of {', '.join(PHASES)}. Default: every phase the platform can run "
                   "(the others are listed with why, in the output and the result); a named phase the platform cannot "
                   "run is refused.")
@click.option("--processes", type=click.IntRange(min=1), default=1, show_default=True,
              help="Locust worker processes (>1: Locust's distributed mode) when one core is not enough.")
@click.option("-f", "--filename", "files", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Istio YAML applied for this run only (e.g. a fault), deleted afterwards.")
@click.option("--baseline", "baseline_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Compare with this perf-result.json; exit 3 on a regression (4: the run itself is invalid).")
@click.option("--threshold", type=click.FloatRange(min=0), default=10.0, show_default=True,
              help="Regression threshold: percent of the baseline value.")
@click.option("--threshold-floor-us", type=click.FloatRange(min=0), default=100.0, show_default=True,
              help="Regression threshold floor in microseconds.")
@click.option("--alpha", type=click.FloatRange(min=1e-6, max=0.5), default=0.05, show_default=True,
              help="Family-wise false-alarm rate of the comparison.")
@click.option("--history", "history_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Draw the trend of every perf-result.json under this folder.")
@click.option("--from-result", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Do not run: analyse this existing result (compare, plot).")
@click.option("--csv", is_flag=True, help="Also write Locust's own CSV statistics.")
@click.option("--html", is_flag=True, help="Also write Locust's own HTML report.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the bootstrap.")
def perf(platform_name: str | None, mode: str, rate: float, users: int, duration: float, warmup: float, steps: str,
         phases: str | None, processes: int, files: tuple[Path, ...], baseline_file: Path | None, threshold: float,
         threshold_floor_us: float, alpha: float, history_dir: Path | None, from_result: Path | None,
         csv: bool, html: bool, seed: int, **platform_values: Any) -> None:
    """Performance baseline: Bookinfo load through the ingress, from the meshed client, and the mesh cost."""
    from meshconform.perf import baseline, page, plots, result  # numpy, scipy, matplotlib: only when used
    requested = None if phases is None else [p.strip() for p in phases.split(",") if p.strip()]
    unknown = [p for p in requested or [] if p not in PHASES]
    if unknown or requested == []:
        raise click.BadParameter(f"unknown phase(s) {unknown}; known: {', '.join(PHASES)}", param_hint="--phases")
    shape = parse_steps(steps)
    reference = result.read(baseline_file) if baseline_file else None  # a bad baseline fails before any load
    run_dir = runs.new_run_dir("perf")
    options: dict[str, Any] = {"mode": mode, "rate": rate, "users": users, "duration_s": duration, "warmup_s": warmup,
                               "steps": steps, "phases": requested, "processes": processes,
                               "files": [str(f) for f in files]}
    with sigterm_as_interrupt():
        if from_result is not None:
            document = result.read(from_result)
        else:
            document = _run(run_dir, requested, options, shape, files, csv, html, seed, platform_name,
                            given_options(platform_values))
            result.write(document, run_dir)
    click.echo(f"result: {run_dir / result.RESULT_NAME}" if from_result is None else f"result: {from_result}")
    _print_result(document)
    comparison = None
    if reference is not None:
        thresholds = baseline.Thresholds(threshold / 100.0, threshold_floor_us, alpha=alpha)
        verdicts = baseline.compare(document, reference, thresholds, seed=seed)
        comparison = baseline.summary(verdicts, document, reference)
        (run_dir / "comparison.json").write_text(json.dumps(comparison, indent=1))
        click.echo(f"\ncompared with {baseline_file} (threshold {threshold:g} % or {threshold_floor_us:g} us, "
                   f"family-wise alpha {alpha:g}):")
        for verdict in verdicts:
            click.echo("  " + verdict.line())
        if comparison["not_in_both"]:  # e.g. a phase one platform cannot run: never compared, said so
            click.echo("  not compared (in one result only): " + ", ".join(comparison["not_in_both"]))
        for label, doc in (("the baseline", reference), ("this result", document)):
            if not doc["valid"]:
                click.echo(f"  note: {label} was marked invalid (its load generator did not keep up)")
        click.echo("REGRESSION: " + ", ".join(comparison["worse"]) if comparison["regression"] else "no regression")
    images: dict[str, str | None] = {
        "percentiles": plots.percentile_curve(document, run_dir / "latency-percentiles.png").name,
        "timeline": plots.over_time(document, run_dir / "over-time.png").name, "trend": None, "steps": None}
    stepped = plots.by_step(document, run_dir / "steps.png")
    if stepped is not None:
        images["steps"] = stepped.name
    if history_dir is not None:
        documents = baseline.history(history_dir)
        if document["id"] not in {d["id"] for d in documents}:
            documents.append(document)
        images["trend"] = plots.trend(documents, run_dir / "trend.png").name
    page.write(document, comparison, images, run_dir / "perf.html")
    click.echo(f"page: {run_dir / 'perf.html'}")
    if not document["valid"]:
        click.echo("INVALID: " + "; ".join(document["invalid_reasons"]), err=True)
    # A regression is the headline (both are failures); a re-analysed result (--from-result) was judged
    # valid or not when it ran, so here only the comparison decides.
    if comparison and comparison["regression"]:
        sys.exit(EXIT_REGRESSION)
    if not document["valid"] and from_result is None:
        sys.exit(EXIT_INVALID)


def _run(run_dir: Path, requested: list[str] | None, options: dict[str, Any], shape: list[Step],
         files: tuple[Path, ...], csv: bool, html: bool, seed: int, platform_name: str | None = None,
         settings: dict[str, Any] | None = None) -> dict[str, Any]:
    from meshconform.perf import cost, result, runner, targets
    outcomes = []
    with targets.attached(run_dir, requested, files, platform_name, settings) as platform:
        options["platform"] = platform.platform.name
        options["phases"] = platform.phases.run
        options["phases_not_run"] = platform.phases.not_run
        for phase, why in platform.phases.not_run.items():
            click.echo(f"phase {phase}: not run on the {platform.platform.name} platform ({why})", err=True)
        specs = plan(platform.phases.run, platform.targets, options["mode"], options["rate"], options["users"],
                     options["duration_s"], options["warmup_s"], shape, options["processes"], csv, html)
        for spec in specs:
            click.echo(f"phase {spec.name}: {spec.mode} model, {spec.rate:g} rps, {spec.users} connections, "
                       f"{spec.warmup_s:g}s warm-up + {spec.total_s - spec.warmup_s:g}s -> "
                       + ", ".join(f"{t.name} {t.base_url}" for t in spec.targets), err=True)
            sampler = platform.proxy_usage if spec.name == "mesh-cost" else None
            outcomes.append(runner.run_phase(spec, run_dir / "phases", sampler))
        described = platform.describe()
    mesh = next((o for o in outcomes if o.spec.name == "mesh-cost"), None)
    costs = cost.mesh_cost(mesh, seed=seed) if mesh is not None else None
    return result.build(run_dir.name, outcomes, described, costs, options)


def _print_result(document: dict[str, Any]) -> None:
    """The figures people read first: per series percentiles, then the mesh cost."""
    for phase, why in (document["config"]["options"].get("phases_not_run") or {}).items():
        click.echo(f"not run: phase {phase} ({why})")
    click.echo(f"{'series':28s} {'requests':>8s} {'errors':>6s} {'rps':>7s} {'p50':>9s} {'p90':>9s} {'p99':>9s} "
               f"{'p99.9':>9s}   (ms, from intended send)")
    for s in document["results"]:
        lat = s["latencies_us"]
        click.echo(f"{s['name']:28s} {s['requests']:8d} {s['errors']:6d} {s['actual_rps']:7.1f} "
                   + " ".join(f"{lat.get(m, 0) / 1000:9.3f}" for m in ("p50", "p90", "p99", "p99_9")))
    mesh_cost = document.get("mesh_cost") or {}
    if mesh_cost.get("percentiles"):
        click.echo(f"mesh cost ({mesh_cost['confidence']:.0%} intervals), latency added by the sidecars:")
        for name, p in mesh_cost["percentiles"].items():
            click.echo(f"  {name:6s} {p['added_us'] / 1000:+8.3f} ms  [{p['ci_low_us'] / 1000:+.3f}, "
                       f"{p['ci_high_us'] / 1000:+.3f}]   mesh {p['mesh_us'] / 1000:.3f} ms, "
                       f"no mesh {p['no_mesh_us'] / 1000:.3f} ms")
        proxy = mesh_cost.get("proxy", {})
        if "cpu_vcpu_per_1000rps" in proxy:
            metric = proxy.get("memory_metric", "resident set size")
            click.echo(f"  proxies on the path: {len(proxy['proxies'])}, {proxy['cpu_vcpu_per_1000rps']} vCPU per "
                       f"1000 rps, {proxy['memory_mib']} MiB {metric} ({proxy['memory_mib_per_proxy']} MiB each; "
                       f"{proxy.get('source', 'process accounting')})")
        elif proxy.get("note"):
            click.echo(f"  proxies: {proxy['note']}")
