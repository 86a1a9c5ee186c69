"""Errors a user can act on: each names where the problem is (file, resource, field)."""

from __future__ import annotations


class MeshconformError(Exception):
    """Base class; the CLI prints these without a traceback."""


class ConfigError(MeshconformError):
    """A resource is malformed, unknown, or outside what the platform supports."""

    def __init__(self, message: str, *, source: str = "", resource: str = "", field: str = "") -> None:
        self.source = source
        self.resource = resource
        self.field = field
        self.detail = message
        where = ": ".join(part for part in (source, resource, field) if part)
        super().__init__(f"{where}: {message}" if where else message)


class PlatformError(MeshconformError):
    """The platform could not do what was asked (start, converge, stop)."""


class ConvergenceError(PlatformError):
    """The data plane did not accept a configuration within the deadline, or rejected it."""
