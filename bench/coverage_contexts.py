"""A pytest plugin for bench/translator_mutants.py: labels the coverage data of a run with the test that ran each
line (coverage.py's dynamic contexts, set to the test's node id from its setup to its teardown), so the audit runs a
mutant only against the checks that execute its line.

Loaded with `-p coverage_contexts` (bench/ on PYTHONPATH) inside `coverage run`; without a running coverage.py it
does nothing. Work done before the first test (collection) is labelled "" and lines run only there reach no check;
the platform's bring-up is a session fixture, so it is labelled with the first test, whose setup runs it."""

from __future__ import annotations

from collections.abc import Generator

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, None, None]:
    import coverage

    running = coverage.Coverage.current()
    if running is not None:
        running.switch_context(item.nodeid)
    yield
    if running is not None:
        running.switch_context("")
