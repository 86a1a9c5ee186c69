"""A certification run's submission folder: the writers it adds to the report's (README.md, the Gateway API
ConformanceReport, suite-digest.txt), and its seal: SHA256SUMS over every file (`sha256sum`'s format, so standard
tools check it too) and, when the vendor gives a key, a detached Ed25519 signature over SHA256SUMS.

Ed25519 through `cryptography` (already a dependency, for the test CA): a signature is checked offline with the
vendor's public key alone, no certificate chain, keyserver or network, and keys come from `openssl genpkey
-algorithm ed25519`."""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import yaml
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from meshconform.report import gateway_api

SUMS = "SHA256SUMS"
SIGNATURE = "SHA256SUMS.sig"
REPORT = "conformance.yaml"
GATEWAY_API_REPORT = "gateway-api-report.yaml"
SUITE_DIGEST = "suite-digest.txt"
README = "README.md"
# Platforms that are meshconform's own reference data plane: their submissions certify no mesh, and say so.
REFERENCE_PLATFORMS = frozenset({"local", "local-shared"})


class SealError(Exception):
    """A key that cannot sign or verify (its file and why)."""


@dataclass(frozen=True)
class TextWriter:
    """One file of the submission rendered from the report's data; nothing is written when it renders to ""."""

    name: str
    filename: str

    def write(self, report: dict[str, Any], folder: Path) -> Path | None:
        text = RENDER[self.filename](report)
        if not text:
            return None
        path = folder / self.filename
        path.write_text(text)
        return path


def _readme(report: dict[str, Any]) -> str:
    environment = jinja2.Environment(loader=jinja2.PackageLoader("meshconform.report", "templates"),
                                     autoescape=False, undefined=jinja2.StrictUndefined,  # noqa: S701 (Markdown)
                                     keep_trailing_newline=True)
    environment.filters["toyaml"] = lambda value: yaml.safe_dump(value, sort_keys=False, width=120)
    return environment.get_template("submission-README.md.j2").render(
        report=report, reference=report["underTest"].get("platform") in REFERENCE_PLATFORMS,
        signed=bool(report["certification"].get("signed")), gateway_api=bool(gateway_api.build(report)),
        duration=sum(float(t["durationSeconds"]) for t in report["tests"]))


def _suite_digest(report: dict[str, Any]) -> str:
    files = report["certification"]["suite"]["files"]
    return "".join(f"{digest}  {path}\n" for path, digest in sorted(files.items()))


RENDER = {README: _readme, GATEWAY_API_REPORT: gateway_api.render, SUITE_DIGEST: _suite_digest}
WRITERS = (TextWriter("gateway-api", GATEWAY_API_REPORT), TextWriter("suite-digest", SUITE_DIGEST),
           TextWriter("readme", README))


# ------------------------------------------------------------------------------------------------ the seal

def _sealed_files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                  if p.is_file() and p.relative_to(folder).as_posix() not in (SUMS, SIGNATURE))


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()  # a submission's files are small


def seal(folder: Path, key: Path | None = None) -> list[Path]:
    """SHA256SUMS over every file in `folder` (sorted; `sha256sum -c` reads it), then its signature with the
    Ed25519 private key in `key` (PEM), if given. The files written."""
    sums = folder / SUMS
    sums.write_text("".join(f"{file_sha256(folder / name)}  {name}\n" for name in _sealed_files(folder)))
    written = [sums]
    if key is not None:
        signature = private_key(key).sign(sums.read_bytes())
        (folder / SIGNATURE).write_text(base64.b64encode(signature).decode() + "\n")
        written.append(folder / SIGNATURE)
    return written


def private_key(path: Path) -> Ed25519PrivateKey:
    try:
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise SealError(f"{path}: not a readable unencrypted PEM private key ({type(exc).__name__})") from None
    if not isinstance(loaded, Ed25519PrivateKey):
        raise SealError(f"{path}: not an Ed25519 private key; the signature needs one (openssl genpkey -algorithm "
                        "ed25519 -out vendor.pem)")
    return loaded


def public_key(path: Path) -> Ed25519PublicKey:
    try:
        data = path.read_bytes()
        loaded = (serialization.load_pem_public_key(data) if b"PUBLIC KEY" in data
                  else serialization.load_pem_private_key(data, password=None).public_key())
    except (OSError, ValueError, TypeError) as exc:
        raise SealError(f"{path}: not a readable PEM public key ({type(exc).__name__})") from None
    if not isinstance(loaded, Ed25519PublicKey):
        raise SealError(f"{path}: not an Ed25519 public key (openssl pkey -in vendor.pem -pubout -out vendor.pub)")
    return loaded


def checksum_problems(folder: Path) -> list[tuple[str, str]]:
    """(file, what is wrong) for every file SHA256SUMS does not vouch for: changed, missing, or not listed."""
    sums = folder / SUMS
    if not sums.is_file():
        return [(SUMS, "missing: the folder is not sealed")]
    listed: dict[str, str] = {}
    found: list[tuple[str, str]] = []
    for number, line in enumerate(sums.read_text().splitlines(), 1):
        digest, _, name = line.partition("  ")
        if len(digest) != 64 or not name:
            found.append((SUMS, f"line {number} is not '<sha256>  <file>'"))
            continue
        listed[name] = digest
    for name, digest in sorted(listed.items()):
        path = folder / name
        if not path.is_file():
            found.append((name, "listed in SHA256SUMS but missing"))
        elif (actual := file_sha256(path)) != digest:
            found.append((name, f"changed: SHA-256 {actual[:16]}... where SHA256SUMS records {digest[:16]}..."))
    found += [(name, "not listed in SHA256SUMS (added after the seal)")
              for name in _sealed_files(folder) if name not in listed]
    return found


def signature_problem(folder: Path, key: Path) -> str:
    """Why the signature over SHA256SUMS does not hold for the public key in `key` ("" when it holds)."""
    signature = folder / SIGNATURE
    if not signature.is_file():
        return f"{SIGNATURE} missing: the folder is not signed"
    try:
        public_key(key).verify(base64.b64decode(signature.read_text().strip(), validate=True),
                               (folder / SUMS).read_bytes())
    except (InvalidSignature, binascii.Error, ValueError):
        return f"{SIGNATURE} does not verify {SUMS} with the key in {key}"
    except OSError as exc:
        return f"{SUMS} unreadable: {exc}"
    return ""
