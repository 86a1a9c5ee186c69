"""The example submission in examples/certification-local/ (made by `meshconform certify --profile GATEWAY-HTTP` on the
local platform, signed with a throwaway key) holds as committed, whatever has changed in the suite since.

It records the digest of the suite that made it, and other engineers change checks and manifests all the time; a
test that wanted `verify` to accept it outright would turn red at each such change, or push everyone to regenerate the
example with each one. So it asserts what stays true: the seal (checksums, the signature with the committed public
key) always holds, and `verify` either accepts the folder (the installed suite is the one that made it) or says
plainly it was made by another suite, naming both digests and exactly the files that differ, and judges nothing else
(exit 4). examples/certification-local/README.md gives the commands that make it again; the fresh certification run
in tests/test_certify.py is what checks the installed suite's own submission end to end."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from meshconform.certify import digest, verify
from meshconform.report import submission
from meshconform.report.certification import SuiteDigest

EXAMPLE = Path(__file__).parents[1] / "examples" / "certification-local"
FOLDER = EXAMPLE / "submission"
PUBLIC_KEY = EXAMPLE / "example-signing-key.pub"


def test_the_example_is_sealed_and_signed() -> None:
    assert submission.checksum_problems(FOLDER) == []
    assert submission.signature_problem(FOLDER, PUBLIC_KEY) == ""
    report = yaml.safe_load((FOLDER / "conformance.yaml").read_text())
    assert report["certification"]["profiles"] == ["GATEWAY-HTTP"] and report["underTest"]["platform"] == "local"


def test_verify_accepts_it_or_names_the_suite_difference_alone() -> None:
    found = verify.verify(FOLDER, key=PUBLIC_KEY)
    report = yaml.safe_load((FOLDER / "conformance.yaml").read_text())
    recorded = SuiteDigest.from_json(report["certification"]["suite"])
    here = digest.installed()
    assert found.ran["checksums"] == "ok" and found.ran["signature"] == "ok", verify.render(found)
    if (recorded.version, recorded.sha256) == (here.version, here.sha256):
        assert found.exit_code == verify.ACCEPTED and found.findings == [], verify.render(found)
        return
    assert found.exit_code == verify.OTHER_SUITE, verify.render(found)
    assert not [f for f in found.findings if f.anywhere], verify.render(found)
    if recorded.sha256 != here.sha256:
        named = next(f.message for f in found.findings if (f.check, f.subject) == ("suite", "suite-digest.txt"))
        assert f"sha256:{recorded.sha256}" in named and f"sha256:{here.sha256}" in named
        differences = recorded.differences(here)
        assert all(difference in named for difference in differences[:20]), named


def test_the_example_says_it_certifies_no_mesh() -> None:
    readme = (FOLDER / "README.md").read_text()
    assert "its reference data plane" in readme and "it certifies no mesh" in readme
    text = "".join(p.read_text() for p in FOLDER.iterdir() if p.suffix in (".md", ".yaml", ".txt", ".xml"))
    assert not re.search(r"/[\w.-]+/[\w./-]*reports/\d{8}-\d{6}-", text)  # no absolute path of the run folder
    assert "<run>/platform-main" in text
