"""Run directories under reports/: one per run, plus a pointer to the platform that is up (and which
platform it is, so every later command attaches to it through the registry)."""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path


def reports_root() -> Path:
    return Path(os.environ.get("MESHCONFORM_REPORTS", "reports")).resolve()


def new_run_dir(kind: str = "run", create: bool = True) -> Path:
    run_id = time.strftime("%Y%m%d-%H%M%S") + f"-{kind}-{secrets.token_hex(3)}"
    path = reports_root() / run_id
    if create:
        path.mkdir(parents=True, exist_ok=False)
    return path


@dataclass(frozen=True)
class ActivePlatform:
    platform: str  # the registered platform's name
    folder: Path  # its folder (holding the registry's owner record)


def active_pointer() -> Path:
    return reports_root() / ".active-platform.json"


def read_active() -> ActivePlatform | None:
    pointer = active_pointer()
    if not pointer.exists():
        return None
    data = json.loads(pointer.read_text())
    return ActivePlatform(data.get("platform", "local"), Path(data["platform_dir"]))


def write_active(platform: str, platform_dir: Path) -> None:
    pointer = active_pointer()
    pointer.parent.mkdir(parents=True, exist_ok=True)
    pointer.write_text(json.dumps({"platform": platform, "platform_dir": str(platform_dir)}))


def clear_active() -> None:
    active_pointer().unlink(missing_ok=True)
