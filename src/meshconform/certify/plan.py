"""What a certification run may be asked for, and what it refuses: the claimed profiles run whole (no test selected
or skipped), only extended features may be declared unsupported, no platform option that weakens a check (the
local platform's misbehaviours), timeouts only lengthened where a longer wait cannot change a verdict, no pytest
options from the environment. From the accepted choices: the pytest arguments of the run and the certification
block its report carries (the exact command to reproduce it, the suite's digest)."""

from __future__ import annotations

import os
import platform as host
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meshconform.errors import MeshconformError
from meshconform.fixtures.options import IMPLEMENTATION_KEYS, parse_implementation
from meshconform.platform import registry
from meshconform.platform.session import PlatformChoice
from meshconform.report.certification import Certification, SuiteDigest
from meshconform.report.submission import REFERENCE_PLATFORMS
from meshconform.suite.extensions import packages
from meshconform.suite.features import profiles
from meshconform.suite.timeouts import Timeouts

# Waits a certification may lengthen (a slow cluster converges later): a longer cap on convergence, on one request
# or on a unit's turn changes no verdict. Every other timeout shapes what a check observes (how many successes in a
# row count as converged, how long a count of late arrivals must stay still), so it stays as the suite sets it.
LENGTHENED_ONLY = frozenset({"max_time_to_consistency", "request_timeout", "turn_wait"})


class CertificationRefused(MeshconformError):
    """An option that would weaken a certification run, named with why."""


def suite_folders() -> list[str]:
    """What pytest is given to collect: our suite's folder and every installed check package's."""
    from meshconform import conformance  # type: ignore[attr-defined]  # mapped from conformance/ at install
    return [str(Path(conformance.__file__).parent), *(str(p.tests_path()) for p in packages().values())]


@dataclass(frozen=True)
class CertificationPlan:
    choice: PlatformChoice
    given: Mapping[str, Any]  # the platform options as given (for the command to reproduce the run)
    profiles: tuple[str, ...]
    unsupported: tuple[str, ...]
    implementation: str
    timeouts: Mapping[str, float]
    workers: str
    sign_key: Path | None = None
    environment: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, platform_name: str, given: Mapping[str, Any], claimed: Sequence[str], unsupported: Sequence[str],
           implementation: str, timeouts: Sequence[str], workers: str, sign_key: Path | None = None
           ) -> CertificationPlan:
        """The plan, or CertificationRefused naming the first option that would weaken the run."""
        if os.environ.get("PYTEST_ADDOPTS"):
            raise CertificationRefused(f"PYTEST_ADDOPTS is set ({os.environ['PYTEST_ADDOPTS']!r}): a certification "
                                       "run takes no pytest options; unset it")
        kind = registry.get(platform_name)
        for option in kind.options:
            if option.weakens_checks and given.get(option.dest):
                raise CertificationRefused(f"--{option.name}: {option.help}; refused in a certification run, which "
                                           "must not weaken a check")
        choice = PlatformChoice.of(platform_name, given)
        known = profiles()
        chosen = tuple(dict.fromkeys(claimed)) or tuple(known)
        unknown = [p for p in chosen if p not in known]
        if unknown:
            raise CertificationRefused(f"--profile: unknown {', '.join(unknown)} (known: {', '.join(known)})")
        declared = tuple(sorted({f.strip() for value in unsupported for f in value.split(",") if f.strip()}))
        core = frozenset().union(*(known[p].core for p in chosen))
        extended = frozenset().union(*(known[p].extended for p in chosen))
        for feature in declared:
            if feature in core:
                profile = next(p for p in chosen if feature in known[p].core)
                raise CertificationRefused(f"--unsupported-feature {feature}: a core feature of {profile}; every core "
                                           "check of a claimed profile must run (claim fewer profiles instead)")
            if feature not in extended:
                raise CertificationRefused(f"--unsupported-feature {feature}: not an extended feature of the claimed "
                                           f"profiles ({', '.join(chosen)}; extended: {', '.join(sorted(extended))})")
        overrides = _lengthened(timeouts)
        block = parse_implementation(implementation)
        wrong = sorted(set(block) - set(IMPLEMENTATION_KEYS))
        if wrong or any("=" not in pair for pair in implementation.split(",") if pair.strip()):
            raise CertificationRefused(f"--implementation: give {', '.join(k + '=...' for k in IMPLEMENTATION_KEYS)}"
                                       + (f" (not {', '.join(wrong)})" if wrong else ""))
        missing = [k for k in IMPLEMENTATION_KEYS if not block.get(k)]
        if missing and platform_name not in REFERENCE_PLATFORMS:
            raise CertificationRefused(f"--implementation: a submission names who made the mesh under test; missing "
                                       f"{', '.join(missing)} (organization=..,project=..,url=..,version=..,"
                                       "contact=a;b)")
        if sign_key is not None and not sign_key.is_file():
            raise CertificationRefused(f"--sign-key {sign_key}: no such file")
        return cls(choice, {k: v for k, v in given.items() if v not in (None, False, "")}, chosen, declared,
                   implementation, overrides, workers, sign_key,
                   {"python": host.python_version(), "system": host.platform(), "machine": host.machine()})

    def command(self) -> list[str]:
        """The certify command line that makes this run (option values as given; a signing key by placeholder)."""
        by_dest = {option.dest: option for option in self.choice.kind.options}
        args = ["meshconform", "certify", "--platform", self.choice.name]
        for dest, value in sorted(self.given.items()):
            option = by_dest.get(dest)
            if option is not None:
                args += [f"--{option.name}"] if option.flag else [f"--{option.name}", str(value)]
        for profile in self.profiles:
            args += ["--profile", profile]
        for feature in self.unsupported:
            args += ["--unsupported-feature", feature]
        if self.implementation:
            args += ["--implementation", self.implementation]
        for name, seconds in sorted(self.timeouts.items()):
            args += ["--timeout", f"{name}={seconds:g}"]
        if self.workers != "0":
            args += ["-n", self.workers]
        if self.sign_key is not None:
            args += ["--sign-key", "VENDOR-PRIVATE-KEY.pem"]
        return args

    def certification(self, suite: SuiteDigest) -> Certification:
        command = shlex.join(self.command())
        reproduce = (f"python3 -m venv .venv && .venv/bin/pip install 'meshconform=={suite.version}'  "
                     "# or meshconform from its source at that version: verify compares the suite digest either way",
                     f".venv/bin/{command}",
                     ".venv/bin/meshconform verify reports/<the run's folder>/submission"
                     + (" --key VENDOR-PUBLIC-KEY.pem" if self.sign_key else ""))
        return Certification(self.profiles, self.unsupported, self.choice.name, dict(self.given), self.workers,
                             dict(self.timeouts), command, reproduce, suite, self.sign_key is not None,
                             dict(self.environment))

    def pytest_args(self) -> list[str]:
        """The whole run, as pytest is given it: the suite's folders, the claimed profiles, nothing else chosen."""
        args = [*suite_folders(), "-p", "no:cacheprovider", "--import-mode=importlib", "-q"]
        if self.workers != "0":
            args += ["-n", self.workers]
        for profile in self.profiles:
            args += ["--mesh-profile", profile]
        if self.unsupported:
            args += ["--mesh-exempt-features", ",".join(self.unsupported)]
        if self.implementation:
            args += ["--mesh-implementation", self.implementation]
        for name, seconds in sorted(self.timeouts.items()):
            args += ["--mesh-timeout", f"{name}={seconds:g}"]
        return args


def _lengthened(pairs: Sequence[str]) -> dict[str, float]:
    try:
        _, overrides = Timeouts().with_overrides(list(pairs))
    except ValueError as exc:
        raise CertificationRefused(f"--timeout: {exc}") from None
    defaults = Timeouts().to_json()
    for name, value in overrides.items():
        if name not in LENGTHENED_ONLY:
            raise CertificationRefused(f"--timeout {name}: refused in a certification run: it shapes what a check "
                                       f"observes (only {', '.join(sorted(LENGTHENED_ONLY))} may be lengthened)")
        if value < defaults[name]:
            raise CertificationRefused(f"--timeout {name}={value:g}: shorter than the suite's {defaults[name]:g} s; "
                                       "a certification run may only lengthen it")
    return dict(overrides)
