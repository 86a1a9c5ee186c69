"""Run directories under reports/ (one per run), and which platform is up: a pointer in the user's state
directory, found from any working directory as kubectl finds its config (and which platform it is, so every later
command attaches to it through the registry)."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import platformdirs
from filelock import FileLock, Timeout

from meshconform.errors import MeshconformError

STATE_DIR_ENV = "MESHCONFORM_STATE_DIR"  # tests set it: they never read or write the user's own pointer
POINTER_LOCK_TIMEOUT_S = 30.0


def reports_root() -> Path:
    return Path(os.environ.get("MESHCONFORM_REPORTS", "reports")).resolve()


def new_run_dir(kind: str = "run", create: bool = True) -> Path:
    run_id = time.strftime("%Y%m%d-%H%M%S") + f"-{kind}-{secrets.token_hex(3)}"
    path = reports_root() / run_id
    if create:
        path.mkdir(parents=True, exist_ok=False)
    return path


def discard(run_dir: Path) -> None:
    """Remove a run's folder that holds nothing worth keeping (an `up` interrupted before it was up)."""
    shutil.rmtree(run_dir, ignore_errors=True)


@dataclass(frozen=True)
class ActivePlatform:
    platform: str  # the registered platform's name
    folder: Path  # its folder (holding the registry's owner record)


def state_dir() -> Path:
    """The user's meshconform state (~/.local/state/meshconform on Linux, per platformdirs), or the folder
    $MESHCONFORM_STATE_DIR names."""
    chosen = os.environ.get(STATE_DIR_ENV)
    return Path(chosen).resolve() if chosen else Path(platformdirs.user_state_dir("meshconform"))


def active_pointer() -> Path:
    return state_dir() / "active-platform.json"


def _legacy_pointer() -> Path:
    """Where meshconform kept the pointer before, beside the reports (only found from the same directory)."""
    return reports_root() / ".active-platform.json"


class UnreadablePointer(MeshconformError):
    """The pointer to the platform that is up cannot be read (cut short, edited by hand): `down` forgets it."""

    def __init__(self, pointer: Path, why: str) -> None:
        super().__init__(f"{pointer} does not say which platform is up ({why}): run 'meshconform down' to forget it")
        self.pointer = pointer


def read_active() -> ActivePlatform | None:
    """The platform that is up, from any directory; a pointer an earlier version left in ./reports still counts,
    so a platform it brought up can be found and taken down."""
    for pointer in (active_pointer(), _legacy_pointer()):
        if pointer.exists():
            try:
                data = json.loads(pointer.read_text())
                return ActivePlatform(str(data.get("platform", "local")), Path(data["platform_dir"]))
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                why = f"no {exc}" if isinstance(exc, KeyError) else f"{type(exc).__name__}: {exc}"
                raise UnreadablePointer(pointer, why) from None
    return None


def write_active(platform: str, platform_dir: Path) -> None:
    pointer = active_pointer()
    pointer.parent.mkdir(parents=True, exist_ok=True)
    tmp = pointer.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"platform": platform, "platform_dir": str(Path(platform_dir).resolve())}))
    tmp.replace(pointer)


def clear_active() -> None:
    active_pointer().unlink(missing_ok=True)
    _legacy_pointer().unlink(missing_ok=True)


@contextmanager
def pointer_lock() -> Iterator[None]:
    """Held from looking for a platform that is up to recording a new one: two `up`s at once, from anywhere,
    start one platform; the other finds it."""
    folder = state_dir()
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(folder / "active-platform.lock")
    try:
        lock.acquire(timeout=POINTER_LOCK_TIMEOUT_S)
    except Timeout:
        raise MeshconformError(f"another 'meshconform up' has held {lock.lock_file} for {POINTER_LOCK_TIMEOUT_S:.0f}s; "
                               "wait for it, or run 'meshconform status'") from None
    try:
        yield
    finally:
        lock.release()
