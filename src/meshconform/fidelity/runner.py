"""Running Istio's cases on ONE local platform: bring-up once, then per scenario apply its Services and
Istio resources, make its calls, compare with istiod's outcome, and delete what it applied.

Known divergences (tests/fidelity/divergences.yaml) are cases where the local platform deliberately does
not do what istiod does; they must still produce the recorded local outcome, so a change either way shows."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from meshconform.errors import ConfigError, PlatformError
from meshconform.fidelity import cases as case_data
from meshconform.fidelity import scope, upstream
from meshconform.fidelity.cases import Call, CaseSet, Scenario
from meshconform.fidelity.manifests import base_manifests, scenario_secrets, scenario_services
from meshconform.fidelity.observe import Observer, Outcome
from meshconform.meshapi.loader import load_text
from meshconform.platform.local.platform import LocalPlatform

REPO = Path(__file__).resolve().parents[3]
CASES_DIR = REPO / "tests" / "fidelity" / "cases"
DIVERGENCES = REPO / "tests" / "fidelity" / "divergences.yaml"
OUT_OF_SCOPE = REPO / "tests" / "fidelity" / "out_of_scope.yaml"
NOT_PORTED = REPO / "tests" / "fidelity" / "not_ported.yaml"
SUMMARY = Path(__file__).resolve().parents[1] / "platform" / "local" / "fidelity.json"


@dataclass(frozen=True)
class Divergence:
    case: str
    local: dict[str, str]  # the outcome the local platform gives instead (cluster/error/...)
    reason: str


@dataclass(frozen=True)
class Result:
    scenario: Scenario
    call: Call
    outcome: Outcome
    divergence: Divergence | None

    @property
    def agrees(self) -> bool:
        return _matches(self.outcome, self.call.expect.__dict__)

    @property
    def as_recorded(self) -> bool:
        """Agrees with istiod, or (a known divergence) gives exactly the recorded local outcome."""
        if self.divergence is not None:
            return _matches(self.outcome, self.divergence.local)
        return self.agrees

    def explain(self) -> str:
        want = self.call.expect.describe()
        return (f"{self.call.id} ({self.scenario.istio_file}): istiod gives {want}; local platform gave "
                f"{self.outcome.describe()} [{self.outcome.evidence}]")


def _matches(outcome: Outcome, expected: dict[str, Any]) -> bool:
    return all(getattr(outcome, key) == expected.get(key) for key in ("cluster", "error", "absent_virtual_host"))


def load_divergences(path: Path = DIVERGENCES) -> dict[str, Divergence]:
    entries = yaml.safe_load(path.read_text()) or [] if path.exists() else []
    found = {}
    for index, entry in enumerate(entries):
        for key in ("case", "local", "reason"):
            if key not in entry:
                raise ConfigError(f"missing {key!r}", source=str(path), resource=f"[{index}]", field=key)
        found[entry["case"]] = Divergence(entry["case"], dict(entry["local"]), str(entry["reason"]).strip())
    return found


def checked_divergences(cases: CaseSet) -> dict[str, Divergence]:
    found = load_divergences()
    unknown = set(found) - {c.id for c in cases.calls}
    if unknown:
        raise ConfigError(f"divergences name cases that do not exist: {sorted(unknown)}", source=str(DIVERGENCES))
    return found


def accounting(ported: list[str]) -> scope.Accounting:
    """The committed index of Istio's expectations split into ported, out of scope and not yet ported."""
    return scope.account([e.id for e in upstream.load_index()], ported, scope.load_entries(OUT_OF_SCOPE, True),
                         scope.load_entries(NOT_PORTED, False))


class FidelityRun:
    """One platform for every scenario."""

    def __init__(self, cases: CaseSet, run_dir: Path, divergences: dict[str, Divergence] | None = None) -> None:
        self.cases = cases
        self.run_dir = run_dir
        self.divergences = checked_divergences(cases) if divergences is None else divergences
        self.platform: LocalPlatform | None = None
        self.observer: Observer | None = None

    def start(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        base = self.run_dir / "fidelity-base.yaml"
        base.write_text(yaml.safe_dump_all(base_manifests(self.cases), sort_keys=False))
        self.platform = LocalPlatform(self.run_dir / "platform", manifests=[base])
        self.platform.up()
        self.observer = Observer(self.platform, self.run_dir)

    def stop(self) -> None:
        if self.platform is not None:
            self.platform.down()

    @contextmanager
    def applied(self, scenario: Scenario) -> Iterator[dict[str, Any]]:
        assert self.platform is not None
        secrets, credentials = scenario_secrets(scenario)
        documents = [*scenario_services(scenario), *secrets, *scenario.resources]
        if not documents:  # a case without resources (TestLoop) runs against the base workloads alone
            yield credentials
            return
        items = load_text(yaml.safe_dump_all(documents, sort_keys=False), scenario.source)
        self.platform.apply(items)
        try:
            yield credentials
        finally:
            self.platform.delete(items, ignore_missing=True)

    def run_scenario(self, scenario: Scenario) -> list[Result]:
        """Every call's outcome; a scenario the platform refuses gives each of its calls a failed outcome
        naming the refusal (the platform leaves nothing half-applied), and the run goes on."""
        assert self.observer is not None
        results = []
        try:
            with self.applied(scenario) as credentials:
                for call in scenario.calls:
                    outcome = self.observer.observe(call, credentials)
                    results.append(Result(scenario, call, outcome, self.divergences.get(call.id)))
        except (ConfigError, PlatformError) as exc:
            done = {r.call.id for r in results}
            refused = Outcome(evidence=f"the local platform refused the scenario: {exc}")
            results += [Result(scenario, c, refused, self.divergences.get(c.id)) for c in scenario.calls
                        if c.id not in done]
        return results

    def run_all(self) -> list[Result]:
        """Every scenario in turn; each case's verdict and evidence also go to results.json in the run folder."""
        results = [r for scenario in self.cases.scenarios for r in self.run_scenario(scenario)]
        (self.run_dir / "results.json").write_text(json.dumps([{
            "case": r.call.id, "istio_file": r.scenario.istio_file, "istio": r.call.expect.describe(),
            "local": r.outcome.describe(), "agrees": r.agrees, "as_recorded": r.as_recorded,
            "evidence": r.outcome.evidence} for r in results], indent=1))
        return results


def summary(cases: CaseSet, results: list[Result], out_of_scope: int | None = None,
            not_ported: int | None = None) -> dict[str, Any]:
    """The committed figure: how many of Istio's in-scope expectations the local platform agrees with. In scope is
    every expectation whose resources the platform accepts: the ported ones and those not ported yet (counted as
    not agreeing); the counts default to the committed index's accounting."""
    if out_of_scope is None or not_ported is None:
        split = accounting([c.id for c in cases.calls])
        out_of_scope, not_ported = len(split.out_of_scope), len(split.not_ported)
    by_id = {r.call.id: r for r in results}
    missing = [c.id for c in cases.calls if c.id not in by_id]
    if missing:
        raise ValueError(f"no result for {len(missing)} case(s), e.g. {missing[:3]}")
    agreed = sum(1 for r in results if r.agrees)
    files: dict[str, dict[str, int]] = {}
    for r in results:
        entry = files.setdefault(r.scenario.istio_file, {"ported": 0, "agreed": 0})
        entry["ported"] += 1
        entry["agreed"] += int(r.agrees)
    in_scope = len(results) + not_ported
    divergent = len(results) - agreed
    pending = f" ({not_ported} not yet ported, counted as not agreeing)" if not_ported else ""
    return {
        "istio": {"version": case_data.ISTIO_VERSION, "commit": case_data.ISTIO_COMMIT,
                  "files": sorted(case_data.ISTIO_FILES.values())},
        "unit": "one Istio simulation expectation (a call and the outcome istiod's config gives)",
        "in_scope": in_scope,
        "ported": len(results),
        "not_ported": not_ported,
        "agreed": agreed,
        "out_of_scope": out_of_scope,
        "istio_expectations": in_scope + out_of_scope,
        "by_file": dict(sorted(files.items())),
        "divergences": [{"case": r.call.id, "istio": r.call.expect.describe(), "local": r.outcome.describe(),
                         "reason": r.divergence.reason if r.divergence else "UNEXPLAINED"}
                        for r in results if not r.agrees],
        "statement": f"agrees with {agreed} of {in_scope} in-scope Istio simulation cases at "
                     f"{case_data.ISTIO_VERSION}{pending}; {divergent} known "
                     f"divergence{'' if divergent == 1 else 's'}, listed",
    }


def write_summary(data: dict[str, Any], path: Path = SUMMARY) -> None:
    path.write_text(json.dumps(data, indent=1) + "\n")
