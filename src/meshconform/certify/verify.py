"""`meshconform verify DIR`: a submission folder checked against the installed suite, offline. Each check gives
findings that name the file or the test; the verdict and the exit code follow from them:

    0  accepted: every check holds, and every claimed profile's core passed
    1  rejected: a check failed (the findings say which file or test)
    2  not a submission folder (no conformance.yaml), or a usage error
    3  accepted as genuine and complete, but a claimed profile's core did not pass (the report records failures)
    4  not judged here: the seal holds, but the submission was made by another suite than the installed one (its
       version and digest, the installed ones, and each file that differs are named); verify it with that suite

The checks, in order: checksums (SHA256SUMS over every file; skipped with --no-checksums), signature (with --key,
the vendor's Ed25519 signature over SHA256SUMS), schema (the report against the JSON Schema of its apiVersion, the
Gateway API report against that project's v1 types), suite (the recorded suite digest against the installed
suite's, naming each file that differs), completeness (every check of each claimed profile present as the
installed suite collects it, no core check skipped, an extended one skipped only for a feature declared
unsupported), verdicts (each verdict recomputed from the recorded observations and design; the profile parts and the
summary from the tests' results) and gateway-api (its report is what the main report gives).

Why exit 4 rather than 1 for another suite: every check after the seal judges with the installed suite (its schema,
its checks and profiles, its statistics, its Gateway API mapping), and only the suite that made a submission can say
whether it is complete and its verdicts follow. Against another one, verify still runs them and lists what they find,
marked as judged by a suite that did not make the submission, but it neither accepts nor rejects on them: a
submission made by meshconform 0.1.0 is not "tampered with" because a check changed since. The seal is judged
either way (checksums and signature depend on no suite), so a changed byte is exit 1 whatever suite is installed."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from meshconform.certify import digest, inventory, recompute
from meshconform.certify.plan import suite_folders
from meshconform.errors import MeshconformError
from meshconform.report import gateway_api, schema, submission
from meshconform.report.certification import SuiteDigest
from meshconform.suite.features import profiles

ACCEPTED, REJECTED, NOT_A_SUBMISSION, NOT_CONFORMANT, OTHER_SUITE = 0, 1, 2, 3, 4
CHECKS = ("checksums", "signature", "schema", "suite", "completeness", "verdicts", "gateway-api")
SEAL = frozenset({"checksums", "signature"})  # checks that judge alike whatever suite is installed


@dataclass(frozen=True)
class Finding:
    check: str  # one of CHECKS
    subject: str  # the file or the test it is about
    message: str
    anywhere: bool = False  # it holds whatever suite is installed (the seal; the folder disagreeing with itself)

    def line(self) -> str:
        return f"FAIL {self.check}: {self.subject}: {self.message}"


@dataclass
class Verification:
    folder: Path
    findings: list[Finding] = field(default_factory=list)
    ran: dict[str, str] = field(default_factory=dict)  # check -> "ok" | "failed" | why it was skipped
    notes: list[str] = field(default_factory=list)
    conformant: dict[str, bool] = field(default_factory=dict)  # claimed profile -> its core passed
    other_suite: bool = False  # the recorded suite digest is not the installed suite's

    def add(self, check: str, subject: str, message: str, anywhere: bool = False) -> None:
        self.findings.append(Finding(check, subject, message, anywhere or check in SEAL))

    def judged_by_another_suite(self, finding: Finding) -> bool:
        """A finding the installed suite made about a submission another suite made (it may follow from that)."""
        return self.other_suite and not finding.anywhere and finding.check != "suite"

    def done(self, check: str, why_skipped: str = "") -> None:
        self.ran[check] = why_skipped or ("failed" if any(f.check == check for f in self.findings) else "ok")

    @property
    def exit_code(self) -> int:
        if any(f.anywhere for f in self.findings):
            return REJECTED
        if self.other_suite:
            return OTHER_SUITE
        if self.findings:
            return REJECTED
        return ACCEPTED if all(self.conformant.values()) else NOT_CONFORMANT

    def to_json(self) -> dict[str, Any]:
        return {"folder": str(self.folder), "accepted": self.exit_code in (ACCEPTED, NOT_CONFORMANT),
                "exitCode": self.exit_code, "otherSuite": self.other_suite, "checks": dict(self.ran),
                "conformant": dict(self.conformant), "notes": list(self.notes),
                "findings": [{"check": f.check, "subject": f.subject, "message": f.message,
                              "judgedByAnotherSuite": self.judged_by_another_suite(f)}
                             for f in self.findings]}


class NotASubmission(MeshconformError):
    """The folder holds no report to verify."""


def verify(folder: Path, checksums: bool = True, key: Path | None = None) -> Verification:
    """Every check of a submission folder (see the module doc)."""
    report_path = folder / submission.REPORT
    if not report_path.is_file():
        raise NotASubmission(f"{folder}: not a submission folder (no {submission.REPORT}; 'meshconform certify' "
                             "writes one under reports/<run>/submission)")
    result = Verification(folder)
    _checksums(result, checksums, key)
    try:
        report = yaml.safe_load(report_path.read_text())
    except yaml.YAMLError as exc:
        result.add("schema", submission.REPORT, f"not YAML: {exc}")
        for check in CHECKS[2:]:
            result.done(check, "not run: the report does not load")
        return result
    if not _schema(result, report):
        # Still say whether another suite made it (its schema may be the one that changed), when the report says.
        try:
            _suite(result, report)
        except (KeyError, TypeError, AttributeError, ValueError):
            result.done("suite", "not run: the report breaks its schema")
        for check in CHECKS[4:]:
            result.done(check, "not run: the report breaks its schema")
        return result
    _suite(result, report)
    _completeness(result, report)
    _verdicts(result, report)
    _gateway_api(result, report)
    return result


def _checksums(result: Verification, checksums: bool, key: Path | None) -> None:
    if checksums:
        for name, problem in submission.checksum_problems(result.folder):
            result.add("checksums", name, problem)
        result.done("checksums")
    else:
        result.done("checksums", "skipped (--no-checksums)")
    if key is not None:
        try:
            problem = submission.signature_problem(result.folder, key)
        except submission.SealError as exc:
            problem = str(exc)
        if problem:
            result.add("signature", submission.SIGNATURE, problem)
        result.done("signature")
    elif (result.folder / submission.SIGNATURE).is_file():
        result.done("signature", "not checked: signed, but no --key given")
    else:
        result.done("signature", "not signed")


def _schema(result: Verification, report: Any) -> bool:
    """The report against its schema (and a certification report's block); the Gateway API report against that
    project's types. Whether the report itself holds (the later checks read it)."""
    broken = schema.problems(report)
    for problem in broken:
        result.add("schema", submission.REPORT, problem)
    certified = isinstance(report, Mapping) and "certification" in report
    if not broken and not certified:
        result.add("schema", submission.REPORT, "no certification block: not made by 'meshconform certify'")
    gateway = result.folder / submission.GATEWAY_API_REPORT
    if gateway.is_file():
        try:
            loaded = yaml.safe_load(gateway.read_text())
        except yaml.YAMLError as exc:
            result.add("schema", submission.GATEWAY_API_REPORT, f"not YAML: {exc}")
        else:
            for problem in schema.problems_against(loaded, schema.GATEWAY_API_SCHEMA):
                result.add("schema", submission.GATEWAY_API_REPORT, problem)
    result.done("schema")
    return not broken and certified


def _suite(result: Verification, report: Mapping[str, Any]) -> None:
    recorded = SuiteDigest.from_json(report["certification"]["suite"])
    if recorded.sha256 != report["certification"]["suite"]["sha256"]:
        result.add("suite", submission.REPORT, "the recorded suite digest is not the SHA-256 of its own file list",
                   anywhere=True)
    listing = result.folder / submission.SUITE_DIGEST
    if listing.is_file() and listing.read_text() != recorded.listing():
        result.add("suite", submission.SUITE_DIGEST, "differs from the file list the report records", anywhere=True)
    here = digest.installed()
    if recorded.version != here.version:
        result.other_suite = True
        result.add("suite", "meshconform", f"the submission was made with meshconform {recorded.version}; "
                                           f"{here.version} is installed here")
    if recorded.sha256 != here.sha256:
        result.other_suite = True
        differences = recorded.differences(here)
        result.add("suite", submission.SUITE_DIGEST,
                   f"made by another suite: meshconform {recorded.version} sha256:{recorded.sha256}; installed here: "
                   f"meshconform {here.version} sha256:{here.sha256}; {len(differences)} files differ: "
                   + "; ".join(differences[:20]) + (f"; and {len(differences) - 20} more" if len(differences) > 20
                                                    else ""))
    if result.other_suite:
        result.notes.append("the checks after 'suite' judged with the installed suite, which did not make this "
                            "submission: their findings may follow from the files named there; verify it with "
                            f"meshconform {recorded.version} whose suite digest is sha256:{recorded.sha256}")
    inconsistent = any(f.check == "suite" and f.anywhere for f in result.findings)
    result.done("suite", "another suite" if result.other_suite and not inconsistent else "")


def _completeness(result: Verification, report: Mapping[str, Any]) -> None:
    known = profiles()
    claimed = [str(p) for p in report["certification"]["profiles"]]
    unsupported = set(report["certification"].get("unsupportedFeatures") or ())
    recorded = {str(t["id"]): t for t in report["tests"]}
    collected = inventory.installed(tuple(suite_folders()))
    for name in claimed:
        if name not in known:
            result.add("completeness", name, f"claimed profile {name} is not one of the installed suite's "
                                             f"({', '.join(known)})")
            continue
        profile = known[name]
        for test_id, (test, is_core) in sorted(inventory.by_profile(collected, profile.core, profile.extended).items()):
            entry = recorded.get(test_id)
            part = "core" if is_core else "extended"
            if entry is None:
                result.add("completeness", test_id, f"a {part} check of claimed profile {name} is missing from the "
                                                    "report")
            elif entry["result"] == "skipped":
                if is_core:
                    result.add("completeness", test_id, f"a core check of claimed profile {name} was skipped "
                                                        f"({entry.get('reason', '')})")
                elif not test.features & unsupported:
                    result.add("completeness", test_id, f"an extended check of {name} was skipped although none "
                                                        f"of its features ({', '.join(sorted(test.features))}) was "
                                                        "declared unsupported")
    ids = {t.id for t in collected}
    for test_id in sorted(recorded.keys() - ids):
        result.add("completeness", test_id, "not a test of the installed suite")
    result.done("completeness")


def _verdicts(result: Verification, report: Mapping[str, Any]) -> None:
    judged = {str(test["id"]): recompute.recompute(test) for test in report["tests"]}
    for test in report["tests"]:
        for problem in recompute.verdict_problems(test, judged[str(test["id"])]):
            result.add("verdicts", str(test["id"]), problem)
    for subject, problem in recompute.status_problems(report, profiles()):
        result.add("verdicts", subject, problem)
    samples, tests = sum(map(len, judged.values())), sum(bool(found) for found in judged.values())
    result.notes.append(f"verdicts: {samples} recorded share and latency samples of {tests} tests judged again; the "
                        f"other {len(judged) - tests} tests' verdicts rest on assertions whose observations the report "
                        "lists without a design to recompute")
    for name in report["certification"]["profiles"]:
        part = next((p["core"] for p in report["profiles"] if p["name"] == name), None)
        result.conformant[str(name)] = part is not None and part["result"] == "success"
    result.done("verdicts")


def _gateway_api(result: Verification, report: Mapping[str, Any]) -> None:
    path = result.folder / submission.GATEWAY_API_REPORT
    expected = gateway_api.build(report)
    if expected is None:
        if path.is_file():
            result.add("gateway-api", submission.GATEWAY_API_REPORT, "present, but no test of the report counts "
                                                                      "in a Gateway API profile")
        result.done("gateway-api", "" if path.is_file() else "no Gateway API test in the report")
        return
    if not path.is_file():
        result.add("gateway-api", submission.GATEWAY_API_REPORT, "missing, though the report has Gateway API tests")
    elif (found := yaml.safe_load(path.read_text())) != expected:
        differing = sorted(k for k in expected.keys() | (found.keys() if isinstance(found, dict) else set())
                           if not isinstance(found, dict) or found.get(k) != expected.get(k))
        result.add("gateway-api", submission.GATEWAY_API_REPORT,
                   f"not what conformance.yaml gives (fields {', '.join(differing)} differ)")
    result.done("gateway-api")


def render(result: Verification) -> str:
    """The lines a person or a review bot reads: each check's state, each finding, the verdict."""
    lines = [f"verify {result.folder}"]
    lines += [f"  {check}: {state}" for check, state in result.ran.items()]
    lines += [f"  {f.line()}" + (" [judged by another suite]" if result.judged_by_another_suite(f) else "")
              for f in result.findings]
    lines += [f"  note: {note}" for note in result.notes]
    for profile, passed in result.conformant.items():
        lines.append(f"  profile {profile}: core {'passed' if passed else 'did not pass'}")
    verdict = {ACCEPTED: "ACCEPTED", REJECTED: f"REJECTED ({len(result.findings)} findings)",
               NOT_CONFORMANT: "ACCEPTED as genuine and complete; NOT CONFORMANT: a claimed profile's core did not "
                               "pass",
               OTHER_SUITE: "NOT JUDGED: made by another suite than the installed one (the seal holds); verify it "
                            "with the suite it names"}[result.exit_code]
    lines.append(f"verify: {verdict} (exit {result.exit_code})")
    return "\n".join(lines)


def render_json(result: Verification) -> str:
    return json.dumps(result.to_json(), indent=2)
