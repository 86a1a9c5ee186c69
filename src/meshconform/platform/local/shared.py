"""The local platform shared by every xdist worker of a run, as a cluster is (`--mesh-platform local-shared`).

Why: on kind and cluster the run's workers share one mesh and take turns by what each test claims
(suite/claims.py). Here that path runs with real Envoys and real traffic, so a test whose traffic reaches beyond
its claims fails on this machine rather than on a user's cluster. It is not a faster way to run the suite: with
a platform per worker (`local`), every test is isolated.

The first worker brings the platform up in the run folder while the others wait, each worker registers as a
user, and the last one out takes it down (platform/sharing.py's SharedResource, as the kind cluster is shared)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

from meshconform.meshapi.loader import Sourced
from meshconform.platform.api import Endpoint
from meshconform.platform.local.platform import LocalPlatform
from meshconform.platform.local.state import RunState
from meshconform.platform.sharing import SharedResource

SHARED_FOLDER = "platform-shared"
BRING_UP_WAIT_S = 300.0  # a worker waits this long for another to bring the shared platform up


class SharedLocalPlatform(LocalPlatform):
    """Processes, config and logs live in the run's shared folder; `folder` is this worker's own, where the registry
    records the platform, so `meshconform status` and `down` find it as they find any other."""

    def __init__(self, own_folder: Path, worker: str, misbehave: Collection[str] = frozenset()) -> None:
        super().__init__(own_folder.parent / SHARED_FOLDER, misbehave=misbehave)
        self.own_folder, self.worker = own_folder, worker
        self.shared = SharedResource(own_folder.parent, "local-shared", BRING_UP_WAIT_S)

    @property
    def folder(self) -> Path:
        return self.own_folder

    def up(self) -> Endpoint:
        self._brought_up = True  # by this run (this worker or another): it holds nothing the run did not make
        self.shared.acquire(self.worker, self._bring_up)
        self._state = RunState.load(self.files.state)  # brought up by this worker or by another
        return self.endpoint

    def _bring_up(self) -> dict[str, Any]:
        super().up()
        return {"folder": str(self.files.root), "made_by": self.worker}

    def down(self) -> None:
        self.shared.release(self.worker, lambda _record: super(SharedLocalPlatform, self).down())

    def delete_later(self, resources: Sequence[Sourced], ignore_missing: bool = False) -> None:
        """Delivered at once: a test's turn ends with its cleanup, so the next holder of its claims (on another
        worker, which may only send) must find the config gone from the proxies, not just from the state."""
        self.delete(resources, ignore_missing=ignore_missing)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "shared_by_workers": True}
