"""The platform that is up, attached for a command that works on it (apply, delete, status, get): found through
the user's state directory (meshconform.runs) and the registry, whatever directory the command runs in."""

from __future__ import annotations

from meshconform import runs
from meshconform.errors import MeshconformError
from meshconform.platform import registry
from meshconform.platform.api import Platform
from meshconform.platform.session import attach_recorded


def attached(platform_name: str | None) -> Platform:
    """The platform that is up; `platform_name`, if given, must be it."""
    active = runs.read_active()
    if active is None:
        raise MeshconformError(f"no platform is up (no {runs.active_pointer()}): run 'meshconform up' first")
    if platform_name is not None and platform_name != active.platform:
        raise MeshconformError(f"the platform that is up is {active.platform!r} (in {active.folder}), "
                               f"not {platform_name!r}")
    if registry.owner_of(active.folder) is None:
        raise MeshconformError(f"the platform recorded as up ({runs.active_pointer()}) is gone: {active.folder} holds "
                               "none any more; run 'meshconform down' to forget it, then 'meshconform up'")
    return attach_recorded(active.folder, expect=active.platform).platform_attached()
