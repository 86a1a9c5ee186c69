"""A user's own mesh test, run by tests/test_registry.py with --mesh-platform minimal."""

from meshconform.traffic.model import Request


def test_the_chosen_platform_answers(mesh_platform, mesh_meshed_client) -> None:  # type: ignore[no-untyped-def]
    assert mesh_platform.name == "minimal"
    [reply] = mesh_meshed_client.send([Request("/")])
    assert reply.json()["greeting"] == "bonjour"
