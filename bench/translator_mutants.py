"""Mutation audit of the conformance suite (outside CI): automatically generated mutants of the local
platform's translator, the suite run against a random sample of them, the kill rate with an exact interval.

Mutants are single AST edits of one translator module (src/meshconform/platform/local/translator/*.py):
a comparison flipped (== / !=, < / >=, <= / >, in / not in, is / is not), `and` / `or` swapped, a boolean
constant negated, an integer constant moved by one, an `if` condition negated. Each mutant is written into a
separate working copy (a git worktree with its own venv, so the repository you work in is never touched),
the conformance suite runs there (`-x`: the first failing check kills it), and the file is restored.

With `--reached-only`, the unmutated suite first runs once under coverage.py, and mutants on translator lines it
never executes are set apart as *unreached* and not sampled: no check can kill them, whatever the checks assert.
They are either code only a misbehaviour runs (equivalent for the real translator) or translator behaviour no check
sends an input to (a gap in what the suite exercises); the audit lists those lines for that triage.

A mutant is *killed* when the suite fails, *stillborn* when its module no longer imports or the platform
cannot start (counted apart: killing those proves nothing about the checks), *survived* when every check
passes. Survivors are printed with their edit, for triage: a new check, or a note that the mutant is
equivalent (it changes nothing Istio's API can observe).

    .venv/bin/python bench/translator_mutants.py --workdir /tmp/mc-mutants --sample 12 --seed 1
    .venv/bin/python bench/translator_mutants.py --workdir /tmp/mc-mutants --sample 24 --seed 6 --reached-only
    .venv/bin/python bench/translator_mutants.py --workdir /tmp/mc-mutants \
        --again bench/translator_mutants-20261122.json

(bench/mutation_audit.py is the other audit: the suite against each hand-written misbehaviour. Results kept:
bench/translator_mutants-20261122.json (a sample of 12, seed 1, before the checks its survivors asked for),
bench/translator_mutants-again-20261122.json (those survivors re-run after), and
bench/translator_mutants-after-20261122.json (a fresh sample of 10, seed 2, after);
bench/translator_mutants-again-20261205.json (those survivors re-run, each edit of an ambiguous line apart) and
bench/translator_mutants-seed3-20261205.json (a fresh sample of 10, seed 3);
bench/translator_mutants-seed4-20261206.json (a fresh sample of 24, seed 4: 13 of 23 killed; the default retry
count it found surviving is checked since, by `default-retry-policy`) and
bench/translator_mutants-again-20261206.json (its 10 survivors re-run after: that one killed, 9 survive);
bench/translator_mutants-seed4-again2-20261206.json (the same, after the checks the other gaps asked for);
bench/translator_mutants-seed5-20261206.json and -seed5-again-20261206.json (a fresh sample of 24 and its
survivors re-run after two new checks); bench/translator_mutants-seed6-reached-20261206.json (24 with
--reached-only, and the 34 unreached mutants).)

The working copy must exist: `git worktree add /tmp/mc-mutants` and `python3 -m venv .venv &&
.venv/bin/pip install -e '.[dev]'` inside it."""

from __future__ import annotations

import argparse
import ast
import json
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

TRANSLATOR = Path("src/meshconform/platform/local/translator")
FLIPS: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Lt: ast.GtE, ast.GtE: ast.Lt, ast.Gt: ast.LtE, ast.LtE: ast.Gt,
    ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is}
SUITE_TIMEOUT_S = 900
STILLBORN_MARKERS = ("ImportError", "SyntaxError", "NameError", "error during collection", "ERROR at setup")


@dataclass(frozen=True)
class Mutant:
    module: Path  # relative to the repository
    index: int  # which candidate site of the module, in ast.walk order
    line: int
    description: str
    source: str = ""  # the mutated expression or statement head, to find the same mutant after code moved
    column: int = 0  # where on its line: one line may hold the same edit twice (`100 if n > 0 else 0`)


def _sites(tree: ast.Module) -> Iterator[tuple[ast.AST, str]]:
    """Every node a mutation applies to, with what the mutation does. Docstrings and type hints are left alone."""
    annotations = {id(n) for node in ast.walk(tree) for n in ast.walk(getattr(node, "annotation", None) or ast.Pass())
                   if getattr(node, "annotation", None) is not None}
    for node in ast.walk(tree):
        if id(node) in annotations:
            continue
        if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in FLIPS:
            yield node, f"{type(node.ops[0]).__name__} -> {FLIPS[type(node.ops[0])].__name__}"
        elif isinstance(node, ast.BoolOp):
            yield node, f"{type(node.op).__name__} -> {'Or' if isinstance(node.op, ast.And) else 'And'}"
        elif isinstance(node, ast.Constant) and isinstance(node.value, bool):
            yield node, f"{node.value} -> {not node.value}"
        elif isinstance(node, ast.Constant) and type(node.value) is int:
            yield node, f"{node.value} -> {node.value + 1}"
        elif isinstance(node, ast.If):
            yield node, "if condition negated"


def candidates(root: Path) -> list[Mutant]:
    found = []
    for path in sorted((root / TRANSLATOR).glob("*.py")):
        tree = ast.parse(path.read_text())
        for index, (node, description) in enumerate(_sites(tree)):
            found.append(Mutant(path.relative_to(root), index, getattr(node, "lineno", 0), description,
                                _source_of(node), getattr(node, "col_offset", 0)))
    return found


def _source_of(node: ast.AST) -> str:
    return ast.unparse(node.test if isinstance(node, ast.If) else node)[:200]


def mutated_source(root: Path, mutant: Mutant) -> str:
    tree = ast.parse((root / mutant.module).read_text())
    node, _ = list(_sites(tree))[mutant.index]
    if isinstance(node, ast.Compare):
        node.ops = [FLIPS[type(node.ops[0])]()]
    elif isinstance(node, ast.BoolOp):
        node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
    elif isinstance(node, ast.Constant) and isinstance(node.value, bool):
        node.value = not node.value
    elif isinstance(node, ast.Constant):
        node.value = node.value + 1
    elif isinstance(node, ast.If):
        node.test = ast.UnaryOp(ast.Not(), node.test)
    return ast.unparse(tree) + "\n"


def _same_mutants(every: list[Mutant], earlier: dict[str, object]) -> list[Mutant]:
    """The mutant an earlier result names, in today's code (modules change, so lines and indices move): the
    same module, edit and mutated source, the nearest line among those, and the same column. A result written
    before columns were recorded may name several edits on one line (both 0s of `100 if n > 0 else 0`): then
    every one of them, so that none is silently taken for another."""
    alike = [m for m in every if str(m.module) == earlier["module"] and m.description == earlier["edit"]
             and (not earlier.get("source") or m.source == earlier["source"])]
    if not alike:
        return []
    line = int(str(earlier["line"]))
    nearest = min(abs(m.line - line) for m in alike)
    on_line = [m for m in alike if abs(m.line - line) == nearest]
    if "column" in earlier:
        return [m for m in on_line if m.column == earlier["column"]][:1]
    return on_line


def reached_lines(workdir: Path) -> dict[str, set[int]]:
    """The translator's lines the unmutated suite executes, by module path relative to `workdir`: one serial run
    under coverage.py (the local platform translates in the test process)."""
    from coverage import CoverageData

    data_file = workdir / ".translator-mutants.coverage"
    done = subprocess.run([str(workdir / ".venv/bin/python"), "-m", "coverage", "run", f"--data-file={data_file}",
                           f"--source={workdir / TRANSLATOR}", "-m", "pytest", "conformance", "-q",
                           "-p", "no:cacheprovider"], cwd=workdir, capture_output=True, text=True,
                          timeout=SUITE_TIMEOUT_S, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the unmutated suite failed under coverage:\n{(done.stdout + done.stderr)[-2000:]}")
    data = CoverageData(basename=str(data_file))
    data.read()
    reached = {str(Path(name).resolve().relative_to(workdir.resolve())): set(data.lines(name) or ())
               for name in data.measured_files()}
    data_file.unlink(missing_ok=True)
    if not any(reached.values()):
        raise SystemExit("coverage saw no translator line run: is the translator running in another process?")
    return reached


def _line_ranges(lines: list[int]) -> str:
    """[3, 4, 5, 9] -> '3-5, 9'."""
    spans: list[list[int]] = []
    for line in sorted(set(lines)):
        if spans and line == spans[-1][1] + 1:
            spans[-1][1] = line
        else:
            spans.append([line, line])
    return ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in spans)


def run_suite(workdir: Path) -> tuple[str, float, str]:
    """'killed' | 'survived' | 'stillborn' | 'timeout', seconds, the last lines of the output."""
    started = time.monotonic()
    try:
        done = subprocess.run([str(workdir / ".venv/bin/python"), "-m", "pytest", "conformance", "-x", "-q",
                               "-p", "no:cacheprovider", "-n", "2"], cwd=workdir, capture_output=True, text=True,
                              timeout=SUITE_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        return "timeout", time.monotonic() - started, ""
    out = done.stdout + done.stderr
    tail = "\n".join(out.strip().splitlines()[-3:])
    if done.returncode == 0:
        return "survived", time.monotonic() - started, tail
    return ("stillborn" if any(m in out for m in STILLBORN_MARKERS) else "killed"), time.monotonic() - started, tail


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, required=True, help="a git worktree of this repository with .venv")
    parser.add_argument("--sample", type=int, default=15)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    parser.add_argument("--again", type=Path, default=None,
                        help="re-run the survivors of an earlier result file (matched by module, edit, mutated "
                             "source and column, at the nearest line; a result without columns: every such edit "
                             "on that line)")
    parser.add_argument("--reached-only", action="store_true",
                        help="sample only mutants on lines the unmutated suite executes (one run under coverage.py "
                             "first); list the unreached lines")
    args = parser.parse_args()
    root = args.workdir.resolve()
    every = candidates(root)
    unreached: list[Mutant] = []
    if args.reached_only:
        reached = reached_lines(root)
        kept: list[Mutant] = []
        for m in every:  # each mutant's line looked up once
            (kept if m.line in reached.get(str(m.module), set()) else unreached).append(m)
        every = kept
        print(f"{len(unreached)} of {len(unreached) + len(every)} mutants sit on translator lines the unmutated suite "
              f"never runs (set apart, not sampled); their lines, for triage:")
        by_module: dict[str, list[int]] = {}
        for m in unreached:
            by_module.setdefault(m.module.name, []).append(m.line)
        for name, lines in sorted(by_module.items()):
            print(f"  {name}: {_line_ranges(lines)}")
    if args.again:
        chosen = [m for r in json.loads(args.again.read_text())["results"] if r["outcome"] == "survived"
                  for m in _same_mutants(every, r)]
        print(f"{len(every)} mutants of {TRANSLATOR}; running the suite against the {len(chosen)} survivors of "
              f"{args.again}")
    else:
        chosen = random.Random(args.seed).sample(every, min(args.sample, len(every)))
        print(f"{len(every)} mutants of {TRANSLATOR}; running the suite against {len(chosen)} (seed {args.seed})")
    results = []
    for number, mutant in enumerate(chosen, 1):
        target = root / mutant.module
        original = target.read_text()
        try:
            target.write_text(mutated_source(root, mutant))
            outcome, seconds, tail = run_suite(root)
        finally:
            target.write_text(original)
        results.append({"module": str(mutant.module), "line": mutant.line, "column": mutant.column,
                        "edit": mutant.description, "source": mutant.source, "outcome": outcome,
                        "seconds": round(seconds, 1), "tail": tail})
        print(f"  {number:2d}. {mutant.module.name}:{mutant.line}:{mutant.column} {mutant.description}: {outcome} "
              f"({seconds:.0f} s)",
              flush=True)
    from meshconform.stats.proportions import clopper_pearson
    judged = [r for r in results if r["outcome"] != "stillborn"]
    killed = sum(r["outcome"] in ("killed", "timeout") for r in judged)
    low, high = clopper_pearson(killed, len(judged), 0.95) if judged else (0.0, 1.0)
    print(f"kill rate {killed}/{len(judged)} = {killed / max(1, len(judged)):.0%} (95 % exact interval "
          f"{low:.0%}-{high:.0%}); stillborn (not counted): {len(results) - len(judged)}")
    for r in results:
        if r["outcome"] == "survived":
            print(f"  survived: {r['module']}:{r['line']}:{r['column']} {r['edit']} ({r['source']})")
    if args.out:
        args.out.write_text(json.dumps({"results": results, "killed": killed, "judged": len(judged),
                                        "interval95": [low, high], "reached_only": args.reached_only,
                                        "unreached": [{"module": str(m.module), "line": m.line, "column": m.column,
                                                       "edit": m.description, "source": m.source}
                                                      for m in unreached]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
