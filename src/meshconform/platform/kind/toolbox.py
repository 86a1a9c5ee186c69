"""Which kind, istioctl and helm a platform uses, resolved once and only when first needed: the user's own
binary (version-checked) if named, else the pinned download (checksum-verified). Also what the plan and
the report say about each."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from meshconform.platform.kind import binaries
from meshconform.platform.kind.settings import KindSettings, MeshSettings


class Toolbox:
    def __init__(self, mesh: MeshSettings, kind: KindSettings | None = None) -> None:
        self.mesh = mesh
        self.kind = kind
        self._paths: dict[str, Path] = {}

    def choice(self, tool: str) -> tuple[str, str, str]:
        """(version, sha256 override, user binary) for `tool`."""
        if tool == "kind":
            assert self.kind is not None, "kind is only used by the kind platform"
            return self.kind.kind_version, self.kind.kind_sha256, self.kind.kind_binary
        if tool == "istioctl":
            return self.mesh.istio_version, self.mesh.istioctl_sha256, self.mesh.istioctl_binary
        return self.mesh.helm_version, self.mesh.helm_sha256, self.mesh.helm_binary

    def artifact(self, tool: str) -> binaries.Artifact:
        version, sha256, _ = self.choice(tool)
        return binaries.artifact(tool, version, sha256=sha256, mirror=self.mesh.download_mirror)

    def path(self, tool: str) -> Path:
        if tool not in self._paths:
            version, _, given = self.choice(tool)
            self._paths[tool] = (binaries.user_binary(tool, given, version) if given
                                 else binaries.ensure(self.artifact(tool)))
        return self._paths[tool]

    def describe(self, tool: str) -> dict[str, Any]:
        version, _, given = self.choice(tool)
        if given:
            return {"version": version, "source": f"user-provided ({given}), version checked, not checksummed",
                    **({"path": str(self._paths[tool])} if tool in self._paths else {})}
        art = self.artifact(tool)
        return {"version": art.version, "source": "downloaded, SHA-256 verified before use", "url": art.url,
                "checksum_file": art.checksum_url,
                "sha256": art.sha256 or "(read from the checksum file at download)",
                "sha256_source": (f"{art.sha_source}; cross-checked against the checksum file at download"
                                  if art.sha256 else "the release's checksum file, beside the asset"),
                **({"path": str(self._paths[tool])} if tool in self._paths else {})}
