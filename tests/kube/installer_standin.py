"""A mesh installer that installs nothing: for platform tests whose mesh is the fake API server's objects."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meshconform.platform.kube.contracts import ClusterAccess


@dataclass
class InstallsNothing:
    """Satisfies MeshInstaller; `name` is the install method the platform reports ("none", "istioctl", ...)."""

    name: str = "none"
    istio_version: str = "1.31.1"

    def plan(self) -> list[str]:
        return []

    def install(self, access: ClusterAccess) -> None:
        pass

    def uninstall(self, access: ClusterAccess) -> None:
        pass

    def describe(self) -> dict[str, Any]:
        return {"method": self.name, "istio_version": self.istio_version}

    def proxy_status(self, access: ClusterAccess) -> str | None:
        return None

    def diagnostics(self, access: ClusterAccess, folder: Path) -> list[Path]:
        return []
