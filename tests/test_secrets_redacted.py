"""Secrets stay secret, end to end: the gateway TLS check, failed on purpose
(gateway-credential-ignored), applies a Secret with a private key and fails with evidence. No file
the run wrote may hold that key (PEM lines or base64) except the platform's own 0600 key files and
state; the report still names the Secret and its keys with their sizes, as `kubectl describe` does;
and every private key the platform wrote is mode 0600."""

from __future__ import annotations

import base64
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from meshconform import conformance

FOLDER = Path(conformance.__file__).parent
# The platform's copy of the key, as a node holds it (named after the Secret and its content).
CREDENTIAL_KEYS = "platform-*/certs/credentials/istio-system.*echo-tls-credential*.key"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.slow
def test_failed_tls_check_leaves_its_private_key_in_no_written_file(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "pytest", str(FOLDER), "-q", "-p", "no:cacheprovider",
                          "--import-mode=importlib", "--mesh-misbehave=gateway-credential-ignored",
                          "--mesh-run-test=gateway-tls-simple", "--mesh-timeout=max_time_to_consistency=2",
                          f"--mesh-report-dir={tmp_path}"], capture_output=True, text=True, timeout=300)
    output = run.stdout + run.stderr
    assert run.returncode == 1, output[-3000:]
    [key_file] = tmp_path.glob(CREDENTIAL_KEYS)
    assert _mode(key_file) == 0o600
    pem = key_file.read_text()
    assert "PRIVATE KEY" in pem
    # Parts unique to this key: PKCS#8 EC keys share their first ~36 DER bytes (the algorithm
    # header), and base64 of any PEM starts and ends with the BEGIN/END lines, so slices come from within.
    body = pem.strip().splitlines()[1:-1]
    der_b64 = "".join(body)
    encoded = base64.b64encode(pem.encode()).decode()  # how the Secret's data held it
    material = {"base64 of the PEM": encoded[90:130], "base64 of the PEM (later)": encoded[-110:-70],
                "DER base64": der_b64[60:100], **{f"PEM line {i}": line for i, line in enumerate(body)
                                                  if i > 0 and len(line) >= 20}}

    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert {"conformance.yaml", "junit.xml", "report.html"} <= {p.name for p in written}
    holders = {}
    for path in written:
        text = path.read_text(errors="replace")
        found = [name for name, part in material.items() if part in text]
        if found:
            holders[path.relative_to(tmp_path)] = found
    # Only the platform's key file may hold it (its state, platform.json, held it while applied: 0600 too).
    assert set(holders) == {key_file.relative_to(tmp_path)}, holders
    # ... and pytest's own output (a CI log) neither.
    assert not [name for name, part in material.items() if part in output]

    # Every private key the platform wrote, and its state (which holds applied Secrets), is 0600.
    keys = [p for p in written if "PRIVATE KEY" in p.read_text(errors="replace")]
    assert len(keys) > 3 and all(_mode(p) == 0o600 for p in keys), [(str(p), oct(_mode(p))) for p in keys]
    assert all(_mode(p) == 0o600 for p in tmp_path.glob("platform-*/platform.json"))

    # The report still identifies the Secret, as `kubectl describe` does: kind, name, namespace, keys, sizes.
    report = yaml.safe_load((tmp_path / "conformance.yaml").read_text())
    [failed] = [t for t in report["tests"] if t["result"] == "failed"]
    [secret] = [d for d in failed["evidence"]["applied_config"] if d["kind"] == "Secret"]
    assert secret["metadata"]["namespace"] == "istio-system" and secret["metadata"]["name"].endswith(
        "echo-tls-credential")
    assert secret["data"]["tls.key"] == f"<redacted: {len(pem.encode())} bytes>"
    assert re.fullmatch(r"<redacted: \d+ bytes>", secret["data"]["tls.crt"])
    # The failure leads with its reason, in one sentence with counts.
    # The gateway presents its mesh certificate instead of the credential's: the client rejects it.
    assert re.fullmatch(r"https through the gateway never converged within 2 s: (\d+) of \1 attempts rejected the "
                        r"server's certificate", failed["reason"]), failed["reason"]
