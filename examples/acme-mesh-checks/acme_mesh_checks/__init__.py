"""ACME's checks for meshconform: what the package adds (its tests, its manifests, its profile and features)."""

from meshconform.testing import CheckPackage, Profile

CHECKS = CheckPackage(
    "acme",  # its manifests are named acme/<file>
    tests="acme_mesh_checks.checks",
    manifests="acme_mesh_checks",
    profiles=(Profile("ACME-MESH", core=frozenset({"AcmeTenantRouting"}), extended=frozenset()),),
)
