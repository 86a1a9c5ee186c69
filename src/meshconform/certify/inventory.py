"""The installed suite's tests, as pytest collects them (every parametrised variant, with its unit's features): what
a complete certification run of a profile must have run. Collected in a process of its own
(`python -m meshconform.certify.inventory FOLDER...`, printing JSON), so `meshconform verify` leaves no pytest state
behind in its own process and a test calling it is not a pytest run inside a pytest run."""

from __future__ import annotations

import contextlib
import functools
import io
import json
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pytest

from meshconform.errors import MeshconformError

COLLECT_TIMEOUT_S = 300.0  # importing the suite and collecting it takes seconds; a hang is said, not waited out


@dataclass(frozen=True)
class CollectedTest:
    unit: str
    id: str  # the report's test id: unit[variant]
    features: frozenset[str]

    def in_profile(self, core: frozenset[str], extended: frozenset[str]) -> tuple[bool, bool]:
        """(counts in the profile, counts in its core): the report's own rule (report.model.profile_reports)."""
        core_test = bool(self.features & core) and self.features <= core
        return core_test or self.features <= core | extended, core_test


class _Collector:
    def __init__(self) -> None:
        self.tests: list[CollectedTest] = []

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        from meshconform.fixtures.record import unit_of
        from meshconform.fixtures.reporting import variant_of
        for item in items:
            unit = unit_of(item)
            if unit is not None:
                variant = variant_of(item)
                self.tests.append(CollectedTest(unit.id, f"{unit.id}[{variant}]" if variant else unit.id,
                                                unit.features))


def collect(folders: Sequence[str]) -> list[CollectedTest]:
    """In this process: every conformance test pytest collects from `folders` (quietly)."""
    collector = _Collector()
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        code = pytest.main([*folders, "--collect-only", "-qq", "-p", "no:cacheprovider", "--import-mode=importlib"],
                           plugins=[collector])
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        raise MeshconformError(f"collecting the installed suite failed (pytest exit {int(code)}):\n"
                               + output.getvalue()[-2000:])
    return collector.tests


@functools.cache
def installed(folders: tuple[str, ...]) -> tuple[CollectedTest, ...]:
    """Every conformance test of the installed suite, collected by a process of its own (once per process: the
    installed suite does not change under a running verify)."""
    try:
        done = subprocess.run([sys.executable, "-m", "meshconform.certify.inventory", *folders],
                              capture_output=True, text=True, timeout=COLLECT_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise MeshconformError(f"collecting the installed suite took over {COLLECT_TIMEOUT_S:g} s") from None
    if done.returncode != 0:
        raise MeshconformError(f"collecting the installed suite failed: {(done.stderr or done.stdout)[-2000:]}")
    return tuple(CollectedTest(str(t["unit"]), str(t["id"]), frozenset(t["features"]))
                 for t in json.loads(done.stdout))


def by_profile(tests: Sequence[CollectedTest], core: frozenset[str], extended: frozenset[str]
               ) -> Mapping[str, tuple[CollectedTest, bool]]:
    """The tests counting in one profile, by id, each with whether it is a core test."""
    found = {}
    for test in tests:
        counts, is_core = test.in_profile(core, extended)
        if counts:
            found[test.id] = (test, is_core)
    return found


def main() -> None:
    tests = collect(sys.argv[1:])
    print(json.dumps([{"unit": t.unit, "id": t.id, "features": sorted(t.features)} for t in tests]))


if __name__ == "__main__":
    main()
