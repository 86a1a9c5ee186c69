"""ACME's conformance units (collected by `meshconform run` beside meshconform's own)."""
