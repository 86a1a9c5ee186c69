"""Certification: `meshconform certify` (the whole suite of the claimed profiles, nothing that weakens a check, a
sealed submission folder) and `meshconform verify` (that folder checked against the installed suite)."""
