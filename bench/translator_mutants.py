"""Mutation audit of the conformance suite (outside CI): mutants of the local platform's translator, the suite run
against each, the kill rate per translator module with an exact interval.

Two kinds of mutant, each written into a separate working copy (a git worktree with its own venv, so the repository
you work in is never touched) and the file restored after:
- *syntactic*: single AST edits of one translator module (src/meshconform/platform/local/translator/*.py): a
  comparison flipped (== / !=, < / >=, <= / >, in / not in, is / is not), `and` / `or` swapped, a boolean constant
  negated, an integer constant moved by one, an `if` condition negated;
- *semantic* (bench/semantic_mutants.py): one documented behaviour of Istio or the Gateway API done wrong, as a
  real mesh has shipped such bugs (a header `add` that replaces, a path matched with its query string, a policy in
  the root namespace ignored, ...), each a text edit that must still apply exactly once (else it is reported stale).

What it costs, and how it is kept cheap: the unmutated suite runs once under coverage.py with a context per test
(bench/coverage_contexts.py), so each mutant runs only the checks that execute its line (its `if` test, its
expression), serially, stopping at the first failure (`-x`), the checks that killed most mutants so far first, with
the wait for a new config capped at 10 s (`--consistency`; a conforming local platform shows one in ~0.1 s); a kill
counts once the failing check, run again alone, fails again. Mutants on lines no check executes are *unreached*:
no check can kill them, whatever the checks assert. They are either code only a misbehaviour runs (equivalent for
the real translator) or translator behaviour no check sends an input to (a gap); the audit lists those lines for
that triage. `--all` runs every reached mutant (the whole translator, not a sample); results are written after
each mutant and `--resume` continues an interrupted run; `--module routes.py` audits one module at a time, when the
whole translator does not fit in one sitting. It is CPU-hungry: run it with `nice -n 10`.

A mutant is *killed* when a check fails, *stillborn* when its module no longer imports, the platform cannot start or
the translator itself raises (counted apart: killing those proves nothing about the checks), *inconclusive* when a
check was too slow to judge twice (a loaded machine; not counted), *survived* when every check it reaches passes.
Survivors are printed with their edit, for triage: a new check, or a note that the mutant is equivalent (it changes
nothing Istio's API can observe).

    nice -n 10 .venv/bin/python bench/translator_mutants.py --workdir /tmp/mc-mutants --all --reached-only \
        --out bench/translator_mutants-full-<date>.json --contexts /tmp/mc-contexts.json
    nice -n 10 .venv/bin/python bench/translator_mutants.py --workdir /tmp/mc-mutants --all --reached-only \
        --module routes.py --shared-platform --lock /path/to/queue.lock --resume --out routes-<date>.json
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
--reached-only, and the 34 unreached mutants). Those samples ran the whole suite with `-n 2` per mutant.
The whole-translator audit of 2026-12-07, about half of it: bench/translator_mutants-full-a-20261207.json and
-full-b-20261207.json (two streams, --lock-shared), -again-20261207.json (survivors re-run after their checks),
-unreached-20261207.json (the mutants no check reaches); `--summary` over the four, in that order with the
unreached first, gave that day's table. The whole translator, completed 2026-12-08 at 029a40d:
bench/translator_mutants-full-a-20261208.json and -full-b-20261208.json (the 2026-12-07 verdicts carried where the
line's text was unchanged, the rest run), -again-a/-again-b-20261208.json (the survivors re-run after this session's
checks) and -again-manual-20261208.json (4 edits of lines those checks' misbehaviour switches rewrote, judged by
hand); `--summary` over those five gives the README's table.)

The working copy must exist: `git worktree add /tmp/mc-mutants` and `python3 -m venv .venv &&
.venv/bin/pip install -e '.[dev]'` inside it."""

from __future__ import annotations

import argparse
import ast
import contextlib
import fcntl
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from semantic_mutants import MUTANTS as SEMANTIC_MUTANTS  # noqa: E402 (bench/ is not a package)

TRANSLATOR = Path("src/meshconform/platform/local/translator")
BENCH = Path(__file__).resolve().parent
FLIPS: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Lt: ast.GtE, ast.GtE: ast.Lt, ast.Gt: ast.LtE, ast.LtE: ast.Gt,
    ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is}
SUITE_TIMEOUT_S = 900
STILLBORN_MARKERS = ("ImportError", "SyntaxError", "NameError", "error during collection", "ERROR at setup")
# A check that could not judge (too few requests in a timed window on a loaded machine) says so: that is no kill.
INCONCLUSIVE_MARKERS = ("too slow to judge",)


@dataclass(frozen=True)
class Mutant:
    module: Path  # relative to the repository
    index: int  # which candidate site of the module, in ast.walk order (-1: a semantic mutant)
    line: int
    description: str
    source: str = ""  # the mutated expression or statement head, to find the same mutant after code moved
    column: int = 0  # where on its line: one line may hold the same edit twice (`100 if n > 0 else 0`)
    lines: tuple[int, ...] = ()  # the lines the edit spans (an `if`: its test), for which checks reach it
    edits: tuple[tuple[str, str], ...] = field(default=(), repr=False)  # a semantic mutant's text edits
    kind: str = "syntactic"
    module_level: bool = False  # outside every function: run at import, so every check is a reaching one

    @property
    def key(self) -> tuple[str, str, str, int, int]:
        return str(self.module), self.description, self.source, self.column, self.line


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


def _span(node: ast.AST) -> tuple[int, ...]:
    """The lines the edited code spans: an `if`'s test, not its body."""
    target = node.test if isinstance(node, ast.If) else node
    first = getattr(target, "lineno", 0)
    return tuple(range(first, (getattr(target, "end_lineno", None) or first) + 1))


def candidates(root: Path) -> list[Mutant]:
    found = []
    for path in sorted((root / TRANSLATOR).glob("*.py")):
        tree = ast.parse(path.read_text())
        in_functions = _function_lines(tree)
        for index, (node, description) in enumerate(_sites(tree)):
            line = getattr(node, "lineno", 0)
            found.append(Mutant(path.relative_to(root), index, line, description, _source_of(node),
                                getattr(node, "col_offset", 0), _span(node), module_level=line not in in_functions))
    return found


def _function_lines(tree: ast.Module) -> set[int]:
    """The lines inside a function body. Any other line (a module-level constant, a class's decorator) runs once, at
    import, so coverage credits it to whichever test imported the module first: such a mutant is run against every
    check, not the one that happened to import it."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            lines.update(range(node.body[0].lineno if isinstance(node.body, list) else node.lineno,
                               (node.end_lineno or node.lineno) + 1))
    return lines


def semantic_candidates(root: Path) -> tuple[list[Mutant], list[str]]:
    """The semantic mutants that still apply, and the names of those whose text no longer occurs exactly once."""
    found, stale = [], []
    for spec in SEMANTIC_MUTANTS:
        module = TRANSLATOR / spec.module
        text = (root / module).read_text()
        if any(text.count(find) != 1 for find, _ in spec.edits):
            stale.append(f"{spec.module} {spec.name}")
            continue
        lines: list[int] = []
        for find, _ in spec.edits:
            first = text[:text.index(find)].count("\n") + 1
            lines.extend(range(first, first + find.count("\n") + 1))
        found.append(Mutant(module, -1, min(lines), f"semantic: {spec.name}", spec.behaviour, 0, tuple(sorted(lines)),
                            spec.edits, "semantic"))
    return found, stale


def _source_of(node: ast.AST) -> str:
    return ast.unparse(node.test if isinstance(node, ast.If) else node)[:200]


def mutated_source(root: Path, mutant: Mutant) -> str:
    text = (root / mutant.module).read_text()
    if mutant.kind == "semantic":
        for find, replace in mutant.edits:
            text = text.replace(find, replace, 1)
        return text
    tree = ast.parse(text)
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


def _git(workdir: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(workdir), *args], capture_output=True, text=True, check=True).stdout


Reach = dict[str, dict[int, set[str]]]  # module path -> line -> the test node ids that execute it


def reaching_tests(workdir: Path, cache: Path | None) -> tuple[Reach, list[str]]:
    """Which tests execute each translator line, and every test in the suite's order: one serial run of the
    unmutated suite under coverage.py, a context per test (the local platform translates in the test process).
    Kept in `cache` for the working copy's code and checks, so a resumed or repeated audit of them runs it once."""
    # What the reach depends on: the code and the checks, not the bench (a commit changing only bench/ keeps it).
    commit = " ".join(_git(workdir, "rev-parse", f"HEAD:{tree}").strip()
                      for tree in ("src", "conformance", "fixtures", "bookinfo"))
    if cache is not None and cache.exists():
        kept = json.loads(cache.read_text())
        if kept.get("commit") == commit:
            reach = {module: {int(line): set(tests) for line, tests in lines.items()}
                     for module, lines in kept["reach"].items()}
            return reach, list(kept["order"])
    from coverage import CoverageData

    with tempfile.TemporaryDirectory(prefix="mc-mutants-") as temp:
        data_file = Path(temp) / "contexts.coverage"
        environment = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(BENCH),
                                                                                  os.environ.get("PYTHONPATH")]))}
        with _turn():
            done = subprocess.run([str(workdir / ".venv/bin/python"), "-m", "coverage", "run",
                                   f"--data-file={data_file}", f"--source={workdir / TRANSLATOR}", "-m", "pytest",
                                   "conformance", "-q", "-p", "no:cacheprovider", "-p", "coverage_contexts",
                                   f"--mesh-report-dir={temp}/report"], cwd=workdir, capture_output=True, text=True,
                                  timeout=SUITE_TIMEOUT_S, check=False, env=environment)
        if done.returncode != 0:  # the lines each check ran are known all the same; a failing check kills nothing
            failed = [line for line in (done.stdout + done.stderr).splitlines() if line.startswith("FAILED ")]
            print(f"warning: the unmutated suite failed under coverage ({'; '.join(failed) or done.returncode}); "
                  "a kill by a check that fails without the mutant too is not counted", flush=True)
        data = CoverageData(basename=str(data_file))
        data.read()
        reach: Reach = {}
        for name in data.measured_files():
            module = str(Path(name).resolve().relative_to(workdir.resolve()))
            by_line = data.contexts_by_lineno(name)
            reach[module] = {line: {c for c in contexts if c} for line, contexts in by_line.items()}
        order = sorted({test for lines in reach.values() for tests in lines.values() for test in tests})
    listed = subprocess.run([str(workdir / ".venv/bin/python"), "-m", "pytest", "conformance", "-q", "--collect-only",
                             "-p", "no:cacheprovider"], cwd=workdir, capture_output=True, text=True, check=False)
    order = [line for line in listed.stdout.splitlines() if "::" in line] or order
    if not any(tests for lines in reach.values() for tests in lines.values()):
        raise SystemExit("coverage saw no translator line run by a test: is the translator running in another "
                         "process, or the context plugin not loaded?")
    if cache is not None:
        cache.write_text(json.dumps({"commit": commit, "order": order, "reach": {
            module: {str(line): sorted(tests) for line, tests in lines.items()} for module, lines in reach.items()}}))
    return reach, order


def tests_for(mutant: Mutant, reach: Reach, order: list[str]) -> list[str]:
    """The tests that execute the mutated code, in the suite's order (every test, for module-level code)."""
    if mutant.module_level:
        return list(order)
    lines = reach.get(str(mutant.module), {})
    tests: set[str] = set()
    for line in mutant.lines or (mutant.line,):
        tests |= lines.get(line, set())
    return [test for test in order if test in tests]


def _line_ranges(lines: list[int]) -> str:
    """[3, 4, 5, 9] -> '3-5, 9'."""
    spans: list[list[int]] = []
    for line in sorted(set(lines)):
        if spans and line == spans[-1][1] + 1:
            spans[-1][1] = line
        else:
            spans.append([line, line])
    return ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in spans)


@dataclass(frozen=True)
class Run:
    outcome: str  # killed | survived | stillborn | timeout | inconclusive (a check too slow to judge)
    seconds: float
    tail: str  # the last lines of the output
    failed: str | None = None  # the node id of the check that failed first


class SharedPlatform:
    """One local platform, brought up in the working copy with the unmutated translator, serving every mutant's run
    (`--mesh-platform-dir`, as the can-fail self-tests share one): each run's first apply translates the whole mesh
    with the mutant in place, so nothing of the previous mutant's config survives it, and a run saves the platform's
    bring-up. `restart` brings a new one up when the old one stopped passing unmutated checks. Its record of the
    platform that is up lives in a state folder of its own (MESHCONFORM_STATE_DIR), never the user's."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.folder: Path | None = None
        self.started = False
        self.environment = {**os.environ, "MESHCONFORM_STATE_DIR": str(workdir / ".audit-state")}

    def up(self) -> Path:
        self.started = True  # from here on, down() ends whatever came up, even if up itself fails half-way
        subprocess.run([str(self.workdir / ".venv/bin/meshconform"), "up"], cwd=self.workdir, check=True,
                       capture_output=True, text=True, timeout=SUITE_TIMEOUT_S, env=self.environment)
        pointer = json.loads((self.workdir / ".audit-state/active-platform.json").read_text())
        self.folder = Path(pointer["platform_dir"])
        return self.folder

    def down(self) -> None:
        if self.started:
            subprocess.run([str(self.workdir / ".venv/bin/meshconform"), "down"], cwd=self.workdir,
                           capture_output=True, text=True, timeout=SUITE_TIMEOUT_S, check=False, env=self.environment)
            self.folder, self.started = None, False

    def restart(self) -> None:
        self.down()
        self.up()


LOCK: Path | None = None  # --lock: a file every suite run holds, shared with the other users of the machine
LOCK_SHARED = False  # --lock-shared: audits on separate working copies hold it together; a full run alone
LOCK_PAUSE_S = 3.0  # between releasing the lock and taking it again: flock is not fair, a waiting full run gets in
_released_at: float | None = None


@contextlib.contextmanager
def _turn() -> Iterator[None]:
    """The machine's turn for a suite run (an exclusive flock on LOCK, when given), so a run waits for other full
    runs and they wait at most for one mutant's. Taken again at least LOCK_PAUSE_S after it was released, else the
    audit, always ready for its next run, would take it back before a waiting landing run is woken."""
    global _released_at
    if LOCK is None:
        yield
        return
    if _released_at is not None:
        time.sleep(max(0.0, LOCK_PAUSE_S - (time.monotonic() - _released_at)))
    # A full run that wants the machine says so in LOCK.wanted before it waits: shared holders, taking turns, would
    # otherwise always leave one of them holding the lock.
    wanted = LOCK.with_name(LOCK.name + ".wanted")
    while LOCK_SHARED and wanted.exists():
        time.sleep(1.0)
    with LOCK.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_SH if LOCK_SHARED else fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
            _released_at = time.monotonic()


def run_suite(workdir: Path, tests: list[str] | None, consistency: float, platform: Path | None = None) -> Run:
    """One run of the checks against the mutant in place. `tests`: node ids run serially in this order, stopping at
    the first failure; None: the whole suite with -n 2 (the audit without reach data). `consistency` caps the wait
    for a new config to show (the suite's own cap is 30 s; a conforming local platform shows it in ~0.1 s).
    `platform`: the folder of a platform that is up, used instead of bringing one up."""
    started = time.monotonic()
    selection = tests if tests is not None else ["conformance", "-n", "2"]
    shared = [f"--mesh-platform-dir={platform}"] if platform is not None and tests is not None else []
    with tempfile.TemporaryDirectory(prefix="mc-mutant-report-") as reports, _turn():
        child = subprocess.Popen([str(workdir / ".venv/bin/python"), "-m", "pytest", *selection, "-x", "-q",
                                  "-p", "no:cacheprovider", f"--mesh-report-dir={reports}", *shared,
                                  f"--mesh-timeout=max_time_to_consistency={consistency:g}"], cwd=workdir,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                 env={**os.environ, "COLUMNS": "400"})  # summary lines whole, exception names kept
        try:
            out, _ = child.communicate(timeout=SUITE_TIMEOUT_S)
        except BaseException as exc:
            # Interrupted (Ctrl-C, SIGTERM) or too slow: pytest is told as Ctrl-C tells it, so the platform it
            # brought up is taken down, never killed from under its processes.
            child.send_signal(signal.SIGINT)
            try:
                child.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                child.kill()
                child.communicate()
            if isinstance(exc, subprocess.TimeoutExpired):
                return Run("timeout", time.monotonic() - started, "")
            raise
    tail = "\n".join(out.strip().splitlines()[-3:])
    if child.returncode == 0:
        return Run("survived", time.monotonic() - started, tail)
    summary = next((line for line in out.splitlines() if line.startswith("FAILED ")), "")
    if any(m in out for m in STILLBORN_MARKERS) or _translator_raised(out, summary):
        return Run("stillborn", time.monotonic() - started, tail)
    failed = summary.split()[1] if summary else None
    if any(marker in out for marker in INCONCLUSIVE_MARKERS):
        return Run("inconclusive", time.monotonic() - started, tail, failed)
    return Run("killed", time.monotonic() - started, tail, failed)


def _translator_raised(out: str, summary: str) -> bool:
    """The check failed because the mutated translator raised (a TypeError, a KeyError, ...) rather than because the
    mesh misbehaved: every apply fails then, as a platform that cannot start does, so it proves nothing about the
    checks. pytest names the raising frame's file in the traceback, and the exception in the summary line."""
    error = summary.partition(" - ")[2].partition(":")[0].strip()
    return bool(error) and error not in ("AssertionError", "TooSlowToJudge") and "ConfigError" not in error \
        and "platform/local/translator/" in out


def judged(workdir: Path, tests: list[str] | None, consistency: float, platform: Path | None = None
           ) -> tuple[Run, bool | None]:
    """A run whose kill is confirmed: the check that failed runs again alone, and must fail again (a check that
    fails only once, on a loaded machine, is no kill). Unconfirmed, the whole selection runs once more and that run
    stands. Returns the run and whether a kill was confirmed (None: nothing to confirm)."""
    first = run_suite(workdir, tests, consistency, platform)
    if first.outcome == "inconclusive":  # once more: a loaded machine may have quietened
        first = run_suite(workdir, tests, consistency, platform)
    if first.outcome != "killed" or first.failed is None or tests is None:
        return first, None
    again = run_suite(workdir, [first.failed], consistency, platform)
    if again.outcome == "killed":
        return Run("killed", first.seconds + again.seconds, first.tail, first.failed), True
    second = run_suite(workdir, tests, consistency, platform)
    return Run(second.outcome, first.seconds + again.seconds + second.seconds, second.tail, second.failed), False


def _summary(results: list[dict[str, object]], unreached: list[Mutant]) -> dict[str, dict[str, int]]:
    """Per module (and kind): killed, survived, stillborn, judged, unreached."""
    table: dict[str, dict[str, int]] = {}
    for r in results:
        row = table.setdefault(Path(str(r["module"])).name, {"killed": 0, "survived": 0, "stillborn": 0,
                                                             "unreached": 0, "semantic_killed": 0,
                                                             "semantic_judged": 0})
        outcome = "killed" if r["outcome"] == "timeout" else str(r["outcome"])
        row[outcome] = row.get(outcome, 0) + 1
        if r.get("kind") == "semantic" and outcome in ("killed", "survived"):
            row["semantic_judged"] += 1
            row["semantic_killed"] += outcome == "killed"
    for m in unreached:
        table.setdefault(m.module.name, {"killed": 0, "survived": 0, "stillborn": 0, "unreached": 0,
                                         "semantic_killed": 0, "semantic_judged": 0})["unreached"] += 1
    return table


def summarize(files: list[Path], triage: Path | None) -> str:
    """The kill rate per translator module over result files of one code (a later file's verdict on a mutant replaces
    an earlier one's: an --again run after new checks), with the triage's equivalent mutants set apart: a markdown
    table for the README."""
    results: dict[tuple[str, str, str, int, int], dict[str, object]] = {}
    unreached: dict[tuple[str, str, str, int, int], dict[str, object]] = {}
    for path in files:
        data = json.loads(path.read_text())
        earlier = dict(results)  # a snapshot: this file's own verdicts must not match each other
        own = {_key(r) for r in data["results"]}
        for r in data["results"]:
            results[_earlier_key(earlier, own, r)] = r
        for r in data.get("unreached", []):
            unreached[_key(r)] = r
    verdicts = {_key(t): t for t in (yaml_load(triage) if triage else [])}
    rows: dict[str, Counter[str]] = {}
    for key, r in {**unreached, **results}.items():
        module = Path(key[0]).name
        outcome = "unreached" if key not in results else "killed" if r["outcome"] == "timeout" else str(r["outcome"])
        if outcome == "survived" and verdicts.get(key, {}).get("verdict") == "equivalent":
            outcome = "equivalent"
        rows.setdefault(module, Counter())[outcome] += 1
    total: Counter[str] = Counter()
    lines = ["| module | reached, not equivalent | killed | kill rate | equivalent | stillborn | inconclusive | "
             "unreached |", "|---|---|---|---|---|---|---|---|"]
    for module, row in [*sorted(rows.items()), ("all", total)]:
        if module != "all":
            total.update(row)
        judged = row["killed"] + row["survived"]
        lines.append(f"| {module} | {judged} | {row['killed']} | {row['killed'] / max(1, judged):.0%} | "
                     f"{row['equivalent']} | {row['stillborn']} | {row['inconclusive']} | {row['unreached']} |")
    untriaged = [k for k, r in results.items() if r["outcome"] == "survived" and k not in verdicts]
    if untriaged:
        lines.append(f"\n{len(untriaged)} survivors not triaged yet: " + "; ".join(
            f"{Path(k[0]).name}:{k[4]} {k[1]} ({k[2][:60]})" for k in untriaged))
    return "\n".join(lines)


def _earlier_key(earlier: dict[tuple[str, str, str, int, int], dict[str, object]],
                 own: set[tuple[str, str, str, int, int]], r: dict[str, object]) -> tuple[str, str, str, int, int]:
    """The key under which an earlier file holds this mutant: its own, or, when the code moved in between (an --again
    run after new checks and their misbehaviours), the same module, edit, mutated source and column at the nearest
    line, if exactly one is nearest (never a key this file holds itself: one line may hold the same edit twice)."""
    key = _key(r)
    if key in earlier:
        return key
    alike = [k for k in earlier if k[:4] == key[:4] and k not in own]
    if not alike:
        return key
    nearest = min(abs(k[4] - key[4]) for k in alike)
    on_line = [k for k in alike if abs(k[4] - key[4]) == nearest]
    return on_line[0] if len(on_line) == 1 else key


def _key(r: dict[str, object]) -> tuple[str, str, str, int, int]:
    return str(r["module"]), str(r["edit"]), str(r.get("source", "")), int(str(r.get("column", 0))), int(str(r["line"]))


def yaml_load(path: Path) -> list[dict[str, object]]:
    import yaml
    return list(yaml.safe_load(path.read_text()) or [])


def _write(path: Path, payload: dict[str, object]) -> None:
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(payload, indent=1))
    partial.replace(path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, help="a git worktree of this repository with .venv")
    parser.add_argument("--summary", type=Path, nargs="+", default=None,
                        help="print the kill rate per module of these result files (later ones replace earlier "
                             "verdicts) and exit; --triage names the equivalent survivors")
    parser.add_argument("--triage", type=Path, default=None,
                        help="a triage file (bench/translator_mutants-triage.yaml)")
    parser.add_argument("--sample", type=int, default=15)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--all", action="store_true", help="every mutant (with --reached-only: every reached one)")
    parser.add_argument("--kind", choices=("both", "syntactic", "semantic"), default="both")
    parser.add_argument("--module", action="append", default=None,
                        help="only this translator module's mutants (a file name, e.g. routes.py; repeatable): an "
                             "audit too long for one sitting, module by module")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here (after each mutant)")
    parser.add_argument("--resume", action="store_true", help="keep the results already in --out, run the rest")
    parser.add_argument("--contexts", type=Path, default=None,
                        help="cache of which tests reach which line, for the working copy's commit")
    parser.add_argument("--again", type=Path, default=None,
                        help="re-run the survivors of an earlier result file (matched by module, edit, mutated "
                             "source and column, at the nearest line; a result without columns: every such edit "
                             "on that line)")
    parser.add_argument("--shared-platform", action="store_true",
                        help="one platform for every mutant's run (with --reached-only), brought up first and taken "
                             "down at the end; after each kill the failing check must pass without the mutant, else "
                             "the platform is brought up again and the mutant judged again")
    parser.add_argument("--lock", type=Path, default=None,
                        help="hold an exclusive flock on this file during each suite run (a queue shared with the "
                             "machine's other full runs)")
    parser.add_argument("--lock-shared", action="store_true",
                        help="hold --lock shared, so audits of separate working copies run side by side (one per "
                             "core) and a full run holding it exclusively waits for both; a full run touches "
                             "LOCK.wanted before it waits, and no audit takes the lock again until it is gone")
    parser.add_argument("--consistency", type=float, default=10.0,
                        help="seconds a new config may take to show (--mesh-timeout max_time_to_consistency)")
    parser.add_argument("--reached-only", action="store_true",
                        help="run each mutant against the checks that execute its code only, serially (a run under "
                             "coverage.py first); mutants no check executes are set apart and their lines listed")
    args = parser.parse_args()
    if args.summary:
        print(summarize(args.summary, args.triage))
        return 0
    if args.workdir is None:
        parser.error("--workdir is required to run mutants")
    global LOCK, LOCK_SHARED
    LOCK, LOCK_SHARED = args.lock, args.lock_shared
    root = args.workdir.resolve()
    if _git(root, "status", "--porcelain", "--", str(TRANSLATOR)).strip():
        raise SystemExit(f"{root / TRANSLATOR} has uncommitted changes (an interrupted run leaves its mutant: "
                         f"`git -C {root} checkout -- {TRANSLATOR}`)")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the mutated file is restored on the way out
    every: list[Mutant] = []
    stale: list[str] = []
    if args.kind in ("both", "syntactic"):
        every += candidates(root)
    if args.kind in ("both", "semantic"):
        semantic, stale = semantic_candidates(root)
        every += semantic
        if stale:
            print(f"stale semantic mutants (their text no longer occurs exactly once): {stale}")
    if args.module:
        unknown = set(args.module) - {path.name for path in (root / TRANSLATOR).glob("*.py")}
        if unknown:
            parser.error(f"--module: no translator module {sorted(unknown)} in {root / TRANSLATOR}")
        every = [m for m in every if m.module.name in args.module]
    unreached: list[Mutant] = []
    reach: Reach = {}
    order: list[str] = []
    if args.reached_only:
        reach, order = reaching_tests(root, args.contexts)
        kept = []
        for m in every:
            (kept if tests_for(m, reach, order) else unreached).append(m)
        every = kept
        print(f"{len(unreached)} of {len(unreached) + len(every)} mutants sit on translator lines the unmutated suite "
              f"never runs (set apart, not run); their lines, for triage:")
        by_module: dict[str, list[int]] = {}
        for m in unreached:
            by_module.setdefault(m.module.name, []).append(m.line)
        for name, lines in sorted(by_module.items()):
            print(f"  {name}: {_line_ranges(lines)}")
    if args.again:
        chosen = [m for r in json.loads(args.again.read_text())["results"]
                  if r["outcome"] in ("survived", "inconclusive") for m in _same_mutants(every, r)]
        print(f"{len(every)} mutants of {TRANSLATOR}; running the suite against the {len(chosen)} survivors of "
              f"{args.again}")
    elif args.all:
        chosen = list(every)
        print(f"{len(every)} mutants of {TRANSLATOR}; running every one")
    else:
        chosen = random.Random(args.seed).sample(every, min(args.sample, len(every)))
        print(f"{len(every)} mutants of {TRANSLATOR}; running the suite against {len(chosen)} (seed {args.seed})")
    results: list[dict[str, object]] = []
    if args.resume and args.out and args.out.exists():
        results = json.loads(args.out.read_text())["results"]
        done_keys = {(r["module"], r["edit"], r["source"], r["column"], r["line"]) for r in results}
        chosen = [m for m in chosen if m.key not in done_keys]
        print(f"resuming: {len(results)} done, {len(chosen)} to run")
    commit = _git(root, "rev-parse", "HEAD").strip()

    def payload() -> dict[str, object]:
        from meshconform.stats.proportions import clopper_pearson
        judged = [r for r in results if r["outcome"] not in ("stillborn", "inconclusive")]
        killed = sum(r["outcome"] in ("killed", "timeout") for r in judged)
        low, high = clopper_pearson(killed, len(judged), 0.95) if judged else (0.0, 1.0)
        return {"commit": commit, "results": results, "killed": killed, "judged": len(judged),
                "interval95": [low, high], "reached_only": args.reached_only, "stale": stale,
                "per_module": _summary(results, unreached),
                "unreached": [{"module": str(m.module), "line": m.line, "column": m.column, "edit": m.description,
                               "source": m.source, "kind": m.kind} for m in unreached]}

    # The checks that killed most mutants so far go first (then the suite's order): a mutant on a line every check
    # runs is mostly killed by the same few, and `-x` stops there.
    kills: dict[str, int] = {}
    for r in results:
        if r.get("failed"):
            kills[str(r["failed"])] = kills.get(str(r["failed"]), 0) + 1
    position = {test: i for i, test in enumerate(order)}
    shared = SharedPlatform(root) if args.shared_platform and args.reached_only else None
    started = time.monotonic()
    try:
        if shared is not None:
            shared.up()
        for number, mutant in enumerate(chosen, 1):
            _judge_one(number, mutant, root, args, reach, order, kills, position, shared, results, chosen, started,
                       payload)
    finally:
        if shared is not None:
            shared.down()
    _report(payload(), results, args)
    return 0


def _judge_one(number: int, mutant: Mutant, root: Path, args: argparse.Namespace, reach: Reach, order: list[str],
               kills: dict[str, int], position: dict[str, int], shared: SharedPlatform | None,
               results: list[dict[str, object]], chosen: list[Mutant], started: float,
               payload: Callable[[], dict[str, object]]) -> None:
    tests = tests_for(mutant, reach, order) if args.reached_only else None
    if tests is not None:
        tests.sort(key=lambda test: (-kills.get(test, 0), position.get(test, 0)))
    target = root / mutant.module
    original = target.read_text()
    for attempt in range(2):
        try:
            target.write_text(mutated_source(root, mutant))
            run, confirmed = judged(root, tests, args.consistency, shared.folder if shared else None)
        finally:
            target.write_text(original)
        # On a shared platform a kill counts only if the check that failed passes without the mutant: else the
        # platform itself broke (a process lost on a loaded machine), and the mutant is judged again on a new one;
        # failing without the mutant on the new one too, the check cannot judge it here (inconclusive).
        if shared is None or run.outcome != "killed" or run.failed is None:
            break
        if run_suite(root, [run.failed], args.consistency, shared.folder).outcome == "survived":
            break
        if attempt == 1:
            run = Run("inconclusive", run.seconds, run.tail, run.failed)
            break
        print(f"    {run.failed} fails without the mutant too: the platform is brought up again", flush=True)
        shared.restart()
    if run.failed:
        kills[run.failed] = kills.get(run.failed, 0) + 1
    results.append({"module": str(mutant.module), "line": mutant.line, "column": mutant.column,
                    "edit": mutant.description, "source": mutant.source, "kind": mutant.kind,
                    "outcome": run.outcome, "failed": run.failed, "confirmed": confirmed,
                    "seconds": round(run.seconds, 1),
                    "checks_reaching": len(tests) if tests is not None else None, "tail": run.tail})
    if args.out:
        _write(args.out, payload())
    elapsed = time.monotonic() - started
    print(f"  {number:3d}/{len(chosen)}. {mutant.module.name}:{mutant.line}:{mutant.column} {mutant.description}: "
          f"{run.outcome}{' by ' + run.failed if run.failed else ''} ({run.seconds:.0f} s, "
          f"{len(tests) if tests is not None else 'all'} checks; "
          f"{elapsed / number * (len(chosen) - number) / 60:.0f} min left)", flush=True)


def _report(final: dict[str, object], results: list[dict[str, object]], args: argparse.Namespace) -> None:
    judged_count, killed_count = int(str(final["judged"])), int(str(final["killed"]))
    low, high = final["interval95"]  # type: ignore[misc]
    print(f"kill rate {killed_count}/{judged_count} = {killed_count / max(1, judged_count):.0%} (95 % exact interval "
          f"{low:.0%}-{high:.0%}); stillborn or inconclusive (not counted): {len(results) - judged_count}; "
          f"unreached: {len(list(final['unreached']))}")  # type: ignore[call-overload]
    for module, row in sorted(final["per_module"].items()):  # type: ignore[attr-defined]
        judged_here = row["killed"] + row.get("survived", 0)
        print(f"  {module:16s} killed {row['killed']:3d} of {judged_here:3d} reached "
              f"({row['killed'] / max(1, judged_here):.0%}); semantic {row['semantic_killed']} of "
              f"{row['semantic_judged']}; stillborn {row['stillborn']}; unreached {row['unreached']}")
    for r in results:
        if r["outcome"] in ("survived", "inconclusive"):
            print(f"  {r['outcome']}: {r['module']}:{r['line']}:{r['column']} {r['edit']} ({r['source']})")
    if args.out:
        _write(args.out, final)


if __name__ == "__main__":
    sys.exit(main())
