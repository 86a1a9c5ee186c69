#!/usr/bin/env bash
# Makes examples/certification-local/ again: a certification of GATEWAY-HTTP on the local platform (meshconform's
# reference data plane, not a mesh), signed with a fresh throwaway key whose private half is deleted at the end.
# Run from the repository's root with meshconform installed (.venv): examples/certification-local/make-example.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(umask 077 && openssl genpkey -algorithm ed25519 -out "$work/example-signing-key.pem")
openssl pkey -in "$work/example-signing-key.pem" -pubout -out "$work/example-signing-key.pub"
MESHCONFORM_REPORTS="$work/reports" .venv/bin/meshconform certify --profile GATEWAY-HTTP \
  --sign-key "$work/example-signing-key.pem"
made=("$work"/reports/*/submission)
rm -rf "$here/submission"
cp -r "${made[0]}" "$here/submission"
cp "$work/example-signing-key.pub" "$here/example-signing-key.pub"
.venv/bin/meshconform verify "$here/submission" --key "$here/example-signing-key.pub"
