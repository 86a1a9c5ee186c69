"""A run-local certificate authority issuing SPIFFE workload certificates.

Private keys are written with mode 0600 inside the run directory and never leave it."""

from __future__ import annotations

import datetime
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = datetime.timedelta(days=2)


def write_private(path: Path, data: bytes) -> None:
    """Create the file with mode 0600 from the start (no window where it is world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(path, 0o600)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


class CertificateAuthority:
    """Root of trust for one run; `issue` signs a leaf for a SPIFFE URI and/or DNS names."""

    def __init__(self, folder: Path, common_name: str = "meshconform run-local CA") -> None:
        self.folder = folder
        self.cert_path = folder / "ca.pem"
        self.key_path = folder / "ca-key.pem"
        if self.cert_path.exists() and self.key_path.exists():
            self._key = serialization.load_pem_private_key(self.key_path.read_bytes(), None)
            self._cert = x509.load_pem_x509_certificate(self.cert_path.read_bytes())
            return
        now = datetime.datetime.now(datetime.UTC)
        self._key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "meshconform"),
                          x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        self._cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                      .public_key(self._key.public_key()).serial_number(x509.random_serial_number())
                      .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + VALIDITY)
                      .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                      .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                                   content_commitment=False, key_encipherment=False,
                                                   data_encipherment=False, key_agreement=False,
                                                   encipher_only=False, decipher_only=False), critical=True)
                      .sign(self._key, hashes.SHA256()))
        folder.mkdir(parents=True, exist_ok=True)
        write_private(self.key_path, _key_pem(self._key))
        self.cert_path.write_bytes(self._cert.public_bytes(serialization.Encoding.PEM))

    @property
    def pem(self) -> bytes:
        return self._cert.public_bytes(serialization.Encoding.PEM)

    def issue(self, cert_path: Path, key_path: Path, *, uri: str | None = None,
              dns_names: tuple[str, ...] = ()) -> None:
        if cert_path.exists() and key_path.exists():
            return
        now = datetime.datetime.now(datetime.UTC)
        key = ec.generate_private_key(ec.SECP256R1())
        names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns_names]
        if uri:
            names.append(x509.UniformResourceIdentifier(uri))
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_names[0])]) if dns_names else x509.Name([])
        cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(self._cert.subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + VALIDITY)
                .add_extension(x509.SubjectAlternativeName(names), critical=not dns_names)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                      ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
                .sign(self._key, hashes.SHA256()))  # type: ignore[arg-type]
        write_private(key_path, _key_pem(key))
        cert_path.parent.mkdir(parents=True, exist_ok=True)
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
