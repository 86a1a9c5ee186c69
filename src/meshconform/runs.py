"""Run directories under reports/: one per run, plus a pointer to the platform that is up."""

from __future__ import annotations

import json
import os
import secrets
import time
from pathlib import Path


def reports_root() -> Path:
    return Path(os.environ.get("MESHCONFORM_REPORTS", "reports")).resolve()


def new_run_dir(kind: str = "run", create: bool = True) -> Path:
    run_id = time.strftime("%Y%m%d-%H%M%S") + f"-{kind}-{secrets.token_hex(3)}"
    path = reports_root() / run_id
    if create:
        path.mkdir(parents=True, exist_ok=False)
    return path


def active_pointer() -> Path:
    return reports_root() / ".active-platform.json"


def read_active() -> Path | None:
    pointer = active_pointer()
    if not pointer.exists():
        return None
    return Path(json.loads(pointer.read_text())["platform_dir"])


def write_active(platform_dir: Path) -> None:
    pointer = active_pointer()
    pointer.parent.mkdir(parents=True, exist_ok=True)
    pointer.write_text(json.dumps({"platform_dir": str(platform_dir)}))


def clear_active() -> None:
    active_pointer().unlink(missing_ok=True)
