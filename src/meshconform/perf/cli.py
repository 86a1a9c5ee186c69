"""`meshconform perf`: run the load phases on the platform, write the result, pictures and page
into a run folder, and compare with a baseline (non-zero exit on a regression)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from meshconform import runs
from meshconform.errors import ConfigError
from meshconform.interrupts import sigterm_as_interrupt
from meshconform.perf.phases import PHASES
from meshconform.perf.spec import (
    CPU_SATURATED_PERCENT,
    LATE_FRACTION_INVALID,
    MIN_HISTORY,
    RUN_SPREAD,
    PhaseSpec,
    Step,
)
from meshconform.platform.cli_options import given_options, platform_choice, platform_options

if TYPE_CHECKING:
    from meshconform.perf.baseline import Comparison, Policy

EXIT_REGRESSION = 3
EXIT_INVALID = 4
EXIT_INVALID_AND_REGRESSION = 5


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


PRESETS: dict[str, dict[str, float]] = {
    # ~2 min on 2 cores: p50 and p90 of every series; p99 only where a series reaches 1000 requests.
    "quick": {"rate": 30.0, "duration": 25.0, "warmup": 4.0},
    # For a nightly job: >= 1000 requests per series in every phase (p99 reported and judged), ~7 min of load.
    "nightly": {"rate": 50.0, "duration": 100.0, "warmup": 5.0},
}


@click.command()
@platform_choice(None, "The platform that is up, else this one, brought up and taken down (default: the one up, "
                       "else local). ")
@platform_options
@click.option("--preset", type=click.Choice(list(PRESETS)), default="quick", show_default=True,
              help="Rate, duration and warm-up together: " + "; ".join(
                  f"{name}: {v['rate']:g} rps, {v['duration']:g} s, {v['warmup']:g} s warm-up"
                  for name, v in PRESETS.items()) + ". --rate, --duration, --warmup override it.")
@click.option("--mode", type=click.Choice(["open", "closed"]), default="open", show_default=True,
              help="open: a fixed rate, latency from the intended send time (coordinated omission corrected); "
                   "closed: Locust's users (each waits for its reply; --rate paces them, 0 = no pause).")
@click.option("--rate", type=click.FloatRange(min=0), default=None,
              help="Requests/s per phase (default: the preset's).")
@click.option("--users", type=click.IntRange(min=1), default=8, show_default=True,
              help="Users = connections; each is one stream.")
@click.option("--duration", type=click.FloatRange(min=1), default=None,
              help="Measured seconds per phase (in-mesh: half, mesh-cost: twice, split between its two targets; "
                   "default: the preset's).")
@click.option("--warmup", type=click.FloatRange(min=0), default=None,
              help="Seconds of load before measuring, excluded (default: the preset's).")
@click.option("--steps", default="", help="A load shape instead of one rate: 'users:rate:seconds,...'.")
@click.option("--phases", default=None,
              help=f"Which phases, comma-separated, of {', '.join(PHASES)}. Default: every phase the platform can run "
                   "(the others are listed with why, in the output and the result); a named phase the platform cannot "
                   "run is refused.")
@click.option("--processes", type=click.IntRange(min=1), default=1, show_default=True,
              help="Locust worker processes (>1: Locust's distributed mode) when one core is not enough.")
@click.option("-f", "--filename", "files", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Istio YAML applied for this run only (e.g. a fault), deleted afterwards.")
@click.option("--baseline", "baseline_files", multiple=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Compare with this perf-result.json (repeat for several runs: with --min-history or more, their "
                   "own run-to-run spread is used). Exit 3 on a regression, 4 if this run is invalid, 5 both.")
@click.option("--history", "history_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Compare with the valid runs of the same configuration under this folder (unless --baseline is "
                   "given) and draw the trend of all of them.")
@click.option("--allow-invalid-baseline", is_flag=True,
              help="Compare with a --baseline that was marked invalid (refused otherwise); the comparison says so.")
@click.option("--alpha", type=click.FloatRange(min=1e-6, max=0.5), default=0.05, show_default=True,
              help="Family-wise false-alarm rate of one comparison (all its metrics together).")
@click.option("--run-spread", type=click.FloatRange(min=0), default=RUN_SPREAD * 100, show_default=True,
              help="Run-to-run spread assumed while there is not enough history: percent (SD of log latency).")
@click.option("--min-history", type=click.IntRange(min=2), default=MIN_HISTORY, show_default=True,
              help="Earlier valid runs needed to use their own run-to-run spread.")
@click.option("--threshold-floor-us", type=click.FloatRange(min=0), default=100.0, show_default=True,
              help="A latency change below this many microseconds is never a regression.")
@click.option("--from-result", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Do not run: analyse this existing result (compare, plot).")
@click.option("--csv", is_flag=True, help="Also write Locust's own CSV statistics.")
@click.option("--html", is_flag=True, help="Also write Locust's own HTML report.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the bootstrap.")
def perf(platform_name: str | None, preset: str, mode: str, rate: float | None, users: int, duration: float | None,
         warmup: float | None, steps: str, phases: str | None, processes: int, files: tuple[Path, ...],
         baseline_files: tuple[Path, ...], history_dir: Path | None, allow_invalid_baseline: bool, alpha: float,
         run_spread: float, min_history: int, threshold_floor_us: float, from_result: Path | None, csv: bool,
         html: bool, seed: int, **platform_values: Any) -> None:
    """Performance baseline: Bookinfo load through the ingress, from the meshed client, and the mesh cost."""
    from meshconform.perf import baseline, page, plots, result  # numpy, scipy, matplotlib: only when used
    requested = None if phases is None else [p.strip() for p in phases.split(",") if p.strip()]
    unknown = [p for p in requested or [] if p not in PHASES]
    if unknown or requested == []:
        raise click.BadParameter(f"unknown phase(s) {unknown}; known: {', '.join(PHASES)}", param_hint="--phases")
    chosen = PRESETS[preset]
    rate = chosen["rate"] if rate is None else rate
    duration = chosen["duration"] if duration is None else duration
    warmup = chosen["warmup"] if warmup is None else warmup
    shape = parse_steps(steps)
    references = [result.read(f) for f in baseline_files]  # a bad or invalid baseline fails before any load
    for path, document in zip(baseline_files, references, strict=True):
        if not document["valid"] and not allow_invalid_baseline:
            raise ConfigError(f"this run was marked invalid ({'; '.join(document['invalid_reasons'])}), so it is "
                              "not used as a baseline: pick a valid run, or --allow-invalid-baseline to compare "
                              "anyway", source=str(path), resource=result.KIND, field="valid")
    policy = baseline.Policy(alpha=alpha, run_spread=run_spread / 100.0, min_history=min_history,
                             floor_us=threshold_floor_us)
    run_dir = runs.new_run_dir("perf")
    options: dict[str, Any] = {"preset": preset, "mode": mode, "rate": rate, "users": users, "duration_s": duration,
                               "warmup_s": warmup, "steps": steps, "phases": requested, "processes": processes,
                               "files": [str(f) for f in files]}
    with sigterm_as_interrupt():
        if from_result is not None:
            document = result.read(from_result)
        else:
            document = _run(run_dir, requested, options, shape, files, csv, html, seed, platform_name,
                            given_options(platform_values))
            changes = baseline.detectable(document, policy, seed)
            for entry in document["results"]:
                entry["detectable_change"] = changes.get(entry["name"], {})
            result.write(document, run_dir)
    click.echo(f"result: {run_dir / result.RESULT_NAME}" if from_result is None else f"result: {from_result}")
    _print_result(document)
    comparison, compared_with = _compare(document, references, history_dir, policy, seed)
    if comparison is not None:
        (run_dir / "comparison.json").write_text(json.dumps(comparison.to_json(), indent=1))
        _print_comparison(comparison, references, allow_invalid_baseline)
    images: dict[str, str | None] = {
        "percentiles": plots.percentile_curve(document, run_dir / "latency-percentiles.png").name,
        "timeline": plots.over_time(document, run_dir / "over-time.png").name, "trend": None, "steps": None,
        "comparison": None}
    stepped = plots.by_step(document, run_dir / "steps.png")
    if stepped is not None:
        images["steps"] = stepped.name
    if comparison is not None:
        images["comparison"] = plots.comparison(document, compared_with, comparison, run_dir / "comparison.png").name
    if history_dir is not None:
        documents = baseline.all_results(history_dir)
        if document["id"] not in {d["id"] for d in documents}:
            documents.append(document)
        images["trend"] = plots.trend(documents, run_dir / "trend.png").name
    code, line = outcome(document, comparison)
    meaning = explain(document, comparison)
    page.write(document, comparison.to_json() if comparison else None, images, run_dir / "perf.html",
               verdict={"line": line, "meaning": meaning, "code": code})
    click.echo(f"page: {run_dir / 'perf.html'}")
    if not document["valid"]:
        click.echo("INVALID: " + "; ".join(document["invalid_reasons"]), err=True)
    click.echo(meaning)
    click.echo(line)
    if code:
        sys.exit(code)


def outcome(document: dict[str, Any], comparison: Comparison | None) -> tuple[int, str]:
    """The exit code and the summary line: an invalid run and a regression are both said, neither hides the other
    (also for a re-analysed result: it was invalid when it ran, and stays so)."""
    invalid = not document["valid"]
    regression = comparison is not None and comparison.regression
    judged = ("no baseline to compare with" if comparison is None
              else "REGRESSION: " + ", ".join(f"{v.series} {v.metric}" for v in comparison.verdicts
                                             if v.outcome == "worse") if regression else "no regression")
    if invalid and regression:
        return EXIT_INVALID_AND_REGRESSION, f"verdict: INVALID and {judged} (exit {EXIT_INVALID_AND_REGRESSION})"
    if regression:
        return EXIT_REGRESSION, f"verdict: {judged} (exit {EXIT_REGRESSION})"
    if invalid:
        return EXIT_INVALID, f"verdict: INVALID, {judged} (exit {EXIT_INVALID})"
    return 0, f"verdict: valid, {judged}"


def explain(document: dict[str, Any], comparison: Comparison | None) -> str:
    """The summary line's meaning in one sentence (printed above it and atop the page)."""
    if document["valid"]:
        run = (f"valid: the load generator kept up (at most {LATE_FRACTION_INVALID:.0%} of sends late, under "
               f"{CPU_SATURATED_PERCENT:g} % of a core)")
    else:
        run = ("INVALID: the load generator fell behind (the reasons are listed), so its figures may hold its own "
               "delays, and it is no baseline unless asked for")
    if comparison is None:
        judged = "not compared: --baseline or --history judges it against earlier runs"
    elif comparison.regression:
        judged = ("REGRESSION: a judged metric rose beyond what runs of this configuration differ by at the stated "
                  "false-alarm rate (the worse lines say which and by how much)")
    else:
        judged = ("no regression: no judged metric rose beyond what runs of this configuration differ by (each line "
                  "states the smallest rise it would have seen)")
    return f"what it means: {run}; {judged}."


def _compare(document: dict[str, Any], references: list[dict[str, Any]], history_dir: Path | None,
             policy: Policy, seed: int) -> tuple[Comparison | None, list[dict[str, Any]]]:
    """Against the --baseline runs, else the history's valid runs of this configuration (the comparison, and the
    runs it used); None without either, said when a history had none."""
    from meshconform.perf import baseline
    skipped: list[str] = []
    if not references and history_dir is not None:
        references, skipped = baseline.history(history_dir, document)
        if not references:
            click.echo(f"\nnot compared: no valid run of this configuration under {history_dir} yet"
                       + "".join(f"\n  left out: {s}" for s in skipped))
            return None, []
    if not references:
        return None, []
    references = sorted(references, key=lambda d: d["start_time"])
    comparison = baseline.compare(document, references, policy, seed=seed, skipped=skipped)
    return comparison, [d for d in references if d["id"] in comparison.references]


def _print_comparison(comparison: Comparison, given: list[dict[str, Any]], allow_invalid: bool) -> None:
    from meshconform.perf import histograms
    click.echo(f"\ncompared with {', '.join(comparison.references)}: {comparison.note}")
    for skipped in comparison.skipped:
        click.echo(f"  left out: {skipped}")
    click.echo(f"  {'series':24s} {'metric':10s} {'baseline -> now':>24s} {'change':>9s}  {'smallest detectable':18s} "
               "verdict")
    few: dict[str, list[str]] = {}
    for verdict in comparison.verdicts:
        if verdict.outcome == "too few":
            few.setdefault(verdict.metric, []).append(verdict.series)
        elif verdict.outcome == "disturbed":
            click.echo(f"  {verdict.series:24s} {verdict.metric:10s} disturbed: {verdict.why}")
        else:
            click.echo("  " + verdict.line())
    for outcome_name in ("worse", "better", "same"):
        example = next((v for v in comparison.verdicts if v.outcome == outcome_name), None)
        if example is not None:
            click.echo(f"  {outcome_name}: e.g. {example.series} {example.why}")
    for metric, names in few.items():
        needs = histograms.needed(float(metric[1:].replace("_", ".")))
        click.echo(f"  too few: {metric} not judged for {', '.join(names)}: it needs {needs} requests in every run "
                   f"({histograms.MIN_TAIL} beyond it), so that it is not one of the last few values")
    if comparison.not_in_both:  # e.g. a phase one platform cannot run: never compared, said so
        click.echo("  not compared (not in every result): " + ", ".join(comparison.not_in_both))
    if allow_invalid:
        for doc in given:
            if not doc["valid"]:
                click.echo(f"  note: baseline {doc['id']} was marked invalid and is used only because "
                           "--allow-invalid-baseline was given")


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
    from meshconform.perf import histograms
    for phase, why in (document["config"]["options"].get("phases_not_run") or {}).items():
        click.echo(f"not run: phase {phase} ({why})")
    click.echo(f"{'series':28s} {'requests':>8s} {'errors':>6s} {'rps':>7s} {'p50':>9s} {'p90':>9s} {'p99':>9s} "
               f"{'p99.9':>9s}   (ms, from intended send)")
    dashes = False
    for s in document["results"]:
        lat = s["latencies_us"]
        cells = [f"{lat[m] / 1000:9.3f}" if m in lat else f"{'-':>9s}" for m in ("p50", "p90", "p99", "p99_9")]
        dashes = dashes or any(m not in lat for m in ("p50", "p90", "p99", "p99_9"))
        click.echo(f"{s['name']:28s} {s['requests']:8d} {s['errors']:6d} {s['actual_rps']:7.1f} " + " ".join(cells))
    if dashes:
        click.echo(f"  -: too few requests for that percentile (at least {histograms.MIN_TAIL} must lie beyond it: "
                   + ", ".join(f"p{p:g} needs {histograms.needed(p)}" for p in histograms.PERCENTILES)
                   + "); --preset nightly has enough for p99")
    detect = [f"{s['name']} " + " ".join(f"{m} {v:+.0%}" for m, v in s["detectable_change"].items())
              for s in document["results"] if s.get("detectable_change")]
    if detect:
        click.echo("smallest rise a comparison with a run like this one detects (80 % of the time; no history, the "
                   "assumed run-to-run spread): " + "; ".join(detect))
    mesh_cost = document.get("mesh_cost") or {}
    if mesh_cost.get("percentiles"):
        click.echo(f"mesh cost ({mesh_cost['confidence']:.0%} intervals), latency added by the sidecars:")
        for name, p in mesh_cost["percentiles"].items():
            click.echo(f"  {name:6s} {p['added_us'] / 1000:+8.3f} ms  [{p['ci_low_us'] / 1000:+.3f}, "
                       f"{p['ci_high_us'] / 1000:+.3f}]   mesh {p['mesh_us'] / 1000:.3f} ms, "
                       f"no mesh {p['no_mesh_us'] / 1000:.3f} ms")
        for name, needs in (mesh_cost.get("percentiles_not_reported") or {}).items():
            click.echo(f"  {name:6s} not reported: needs {needs} requests on each side")
        proxy = mesh_cost.get("proxy", {})
        if "cpu_vcpu_per_1000rps" in proxy:
            metric = proxy.get("memory_metric", "resident set size")
            click.echo(f"  proxies on the path: {len(proxy['proxies'])}, {proxy['cpu_vcpu_per_1000rps']} vCPU per "
                       f"1000 rps, {proxy['memory_mib']} MiB {metric} ({proxy['memory_mib_per_proxy']} MiB each; "
                       f"{proxy.get('source', 'process accounting')})")
        elif proxy.get("note"):
            click.echo(f"  proxies: {proxy['note']}")
