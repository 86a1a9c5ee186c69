"""A submission's seal (report/submission.py): SHA256SUMS in `sha256sum`'s format over every file, and the vendor's
detached Ed25519 signature over it, checked offline with the public key alone. A changed byte, a missing or an added
file is named; a signature made by another key, or over another SHA256SUMS, does not verify."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from meshconform.report import submission


def write_key(folder: Path, name: str = "vendor") -> tuple[Path, Path]:
    """An Ed25519 key pair as `openssl genpkey -algorithm ed25519` and `openssl pkey -pubout` write them."""
    key = Ed25519PrivateKey.generate()
    private = folder / f"{name}.pem"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    private.chmod(0o600)
    public = folder / f"{name}.pub"
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    return private, public


@pytest.fixture
def sealed(tmp_path: Path) -> tuple[Path, Path, Path]:
    folder = tmp_path / "submission"
    folder.mkdir()
    (folder / "conformance.yaml").write_text("kind: ConformanceReport\n")
    (folder / "README.md").write_text("# a submission\n")
    (folder / "deeper").mkdir()
    (folder / "deeper" / "x.txt").write_text("x\n")
    private, public = write_key(tmp_path)
    written = submission.seal(folder, private)
    assert [p.name for p in written] == ["SHA256SUMS", "SHA256SUMS.sig"]
    return folder, private, public


def test_a_sealed_folder_checks_and_its_signature_verifies(sealed: tuple[Path, Path, Path]) -> None:
    folder, _, public = sealed
    assert submission.checksum_problems(folder) == []
    assert submission.signature_problem(folder, public) == ""
    listed = (folder / "SHA256SUMS").read_text().splitlines()
    assert [line.split("  ")[1] for line in listed] == ["README.md", "conformance.yaml", "deeper/x.txt"]
    if shutil.which("sha256sum"):  # the standard tool reads it as it is
        checked = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=folder, capture_output=True, text=True,
                                 check=False)
        assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_changed_missing_or_added_file_is_named(sealed: tuple[Path, Path, Path]) -> None:
    folder, _, _ = sealed
    data = bytearray((folder / "conformance.yaml").read_bytes())
    data[0] ^= 0x01  # one bit of one byte
    (folder / "conformance.yaml").write_bytes(bytes(data))
    (folder / "README.md").unlink()
    (folder / "extra.txt").write_text("added later\n")
    found = dict(submission.checksum_problems(folder))
    assert found["conformance.yaml"].startswith("changed: SHA-256 ")
    assert found["README.md"] == "listed in SHA256SUMS but missing"
    assert found["extra.txt"] == "not listed in SHA256SUMS (added after the seal)"


def test_another_key_or_another_manifest_does_not_verify(sealed: tuple[Path, Path, Path], tmp_path: Path) -> None:
    folder, private, public = sealed
    _, stranger = write_key(tmp_path, "stranger")
    assert "does not verify SHA256SUMS" in submission.signature_problem(folder, stranger)
    sums = folder / "SHA256SUMS"
    sums.write_text(sums.read_text().replace("README.md", "README.MD"))
    assert "does not verify SHA256SUMS" in submission.signature_problem(folder, public)
    assert submission.signature_problem(folder, private) != ""  # the private key's file gives its public half
    (folder / "SHA256SUMS.sig").unlink()
    assert submission.signature_problem(folder, public) == "SHA256SUMS.sig missing: the folder is not signed"


def test_a_key_that_is_not_ed25519_is_refused_by_name(tmp_path: Path) -> None:
    ec = tmp_path / "ec.pem"
    ec.write_bytes(generate_private_key(SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    with pytest.raises(submission.SealError, match=r"ec.pem: not an Ed25519 private key; the signature needs one"):
        submission.private_key(ec)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a key\n")
    with pytest.raises(submission.SealError, match="garbage.pem: not a readable unencrypted PEM private key"):
        submission.private_key(garbage)
