"""What a certification run adds to its report: the profiles claimed, how the run was made (the exact command to run
it again, the options, the platform), and the digest of the suite that ran (its version and a SHA-256 over every
check module, manifest and judging module, so that a modified suite shows).

`meshconform certify` makes one (meshconform.certify), the report carries it under `certification`, and
`meshconform verify` reads it back (`Certification.from_json`) to check a submission against the installed suite."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

MODE = "certification"


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class SuiteDigest:
    """The suite's version and a SHA-256 over its files: one line `<sha256>  <path>` per file, sorted by path, each
    path as installed (meshconform/conformance/test_routing.py). That listing is `sha256sum`'s output format: written
    as suite-digest.txt, its own SHA-256 is the digest, and `sha256sum -c suite-digest.txt` in the folder holding
    the installed package checks every file."""

    version: str
    files: Mapping[str, str]  # path (package/relative path) -> SHA-256 of its bytes

    @property
    def sha256(self) -> str:
        return sha256_of(self.listing().encode())

    def listing(self) -> str:
        return "".join(f"{digest}  {path}\n" for path, digest in sorted(self.files.items()))

    def differences(self, other: SuiteDigest) -> list[str]:
        """Each file that differs from `other`'s, said in a few words ("changed", "missing", "added")."""
        out = [f"{path}: changed" for path in sorted(self.files.keys() & other.files.keys())
               if self.files[path] != other.files[path]]
        out += [f"{path}: not in the installed suite" for path in sorted(self.files.keys() - other.files.keys())]
        out += [f"{path}: in the installed suite only" for path in sorted(other.files.keys() - self.files.keys())]
        return out

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "sha256": self.sha256, "files": dict(sorted(self.files.items()))}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SuiteDigest:
        return cls(str(data["version"]), {str(k): str(v) for k, v in dict(data["files"]).items()})


@dataclass(frozen=True)
class Certification:
    """How a certification run was made, as its report records it."""

    profiles: tuple[str, ...]  # the profiles claimed: every one of their checks ran
    unsupported_features: tuple[str, ...]  # extended features declared unsupported (never a core one)
    platform: str
    options: Mapping[str, Any]  # the platform's options as given
    workers: str  # pytest-xdist workers ("0": serial)
    timeout_overrides: Mapping[str, float]  # only waits lengthened (meshconform.certify refuses the rest)
    command: str  # the exact command that made this run
    reproduce: tuple[str, ...]  # the commands that make it again, in order
    suite: SuiteDigest
    signed: bool = False  # the seal will carry the vendor's signature (SHA256SUMS.sig)
    environment: Mapping[str, str] = field(default_factory=dict)  # Python, operating system, machine

    def to_json(self) -> dict[str, Any]:
        return {"mode": MODE, "profiles": list(self.profiles), "unsupportedFeatures": list(self.unsupported_features),
                "platform": self.platform, "options": dict(self.options), "workers": self.workers,
                "timeoutOverrides": dict(self.timeout_overrides), "command": self.command,
                "reproduce": list(self.reproduce), "suite": self.suite.to_json(),
                "signed": self.signed, "environment": dict(self.environment)}

    @staticmethod
    def claimed(report: Mapping[str, Any]) -> tuple[str, ...]:
        """The profiles a plain report claims (none: not a certification report)."""
        block = report.get("certification") or {}
        return tuple(str(p) for p in block.get("profiles") or ())
