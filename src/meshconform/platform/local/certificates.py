"""Certificates for the local platform's proxies, from the run-local CA.

Paths are pure lookups (the translator only references files); issuing is a separate step the platform
takes once a configuration has been accepted, so a refused configuration writes nothing."""

from __future__ import annotations

import hashlib
from pathlib import Path

from meshconform.platform.local.ca import CertificateAuthority, write_private
from meshconform.platform.local.state import RunFiles
from meshconform.platform.local.translator.model import MeshSnapshot, Pod


class Certificates:
    """CertificatePaths for the translator, backed by the run-local CA."""

    def __init__(self, files: RunFiles, snapshot: MeshSnapshot | None = None) -> None:
        self.files = files
        self._authority: CertificateAuthority | None = None
        # A credential's files are named by its content, so a changed Secret is new config for the gateway
        # (Envoy reloads certificates when the listener changes; Istio pushes them by SDS).
        self._credential_digest = {(s.metadata.namespace, s.metadata.name): _digest(s.value("tls.crt") or b"",
                                                                                    s.value("tls.key") or b"")
                                   for s in (snapshot.secrets if snapshot else [])}

    @property
    def authority(self) -> CertificateAuthority:
        if self._authority is None:
            self._authority = CertificateAuthority(self.files.certs)
        return self._authority

    @property
    def ca(self) -> Path:
        return self.files.certs / "ca.pem"

    def workload(self, pod: Pod) -> tuple[Path, Path]:
        folder = self.files.certs / f"{pod.namespace}.{pod.name}"
        return folder / "cert.pem", folder / "key.pem"

    def gateway_credential(self, namespace: str, name: str) -> tuple[Path, Path]:
        folder = self.files.certs / "credentials"
        stem = f"{namespace}.{name}.{self._credential_digest.get((namespace, name), 'none')}"
        return folder / f"{stem}.crt", folder / f"{stem}.key"

    def issue(self, snapshot: MeshSnapshot) -> None:
        """A SPIFFE certificate for every proxy (sidecars and the gateway), and the gateway's
        credentials from kubernetes.io/tls Secrets (keys mode 0600)."""
        for pod in snapshot.pods:
            if pod.injected or pod.is_gateway:
                cert, key = self.workload(pod)
                self.authority.issue(cert, key, uri=pod.identity)
        for secret in snapshot.secrets:
            cert_pem = secret.value("tls.crt") or secret.value("cert")
            key_pem = secret.value("tls.key") or secret.value("key")
            if cert_pem and key_pem:
                cert_path, key_path = self.gateway_credential(secret.metadata.namespace, secret.metadata.name)
                cert_path.parent.mkdir(parents=True, exist_ok=True)
                cert_path.write_bytes(cert_pem)
                write_private(key_path, key_pem)


def _digest(*parts: bytes) -> str:
    return hashlib.sha256(b"\0".join(parts)).hexdigest()[:12]
