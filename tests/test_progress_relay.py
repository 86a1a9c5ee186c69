"""Under pytest -n, the progress of a platform's long steps (kind create, istioctl install) reaches the user's
terminal: xdist relays nothing a worker prints to stderr, so the controller follows each worker's progress.log
(fixtures/progress.py). The platform here writes its lines through the kind platform's own progress printer."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from meshconform.fixtures.progress import ProgressRelay

PLATFORM = '''
from dataclasses import replace

from minimal_platform import PLATFORM, MinimalPlatform

from meshconform.platform.api import PROGRESS_LOG
from meshconform.platform.kind.tools import progress_to


class Slow(MinimalPlatform):
    """Prints as kind and istioctl do while it comes up and goes down (to stderr, and to its progress log)."""

    def up(self):
        create = progress_to(self.folder / PROGRESS_LOG, "kind create")
        create("Creating cluster \\"meshconform\\" ...")
        create(" \\u2713 Ensuring node image (kindest/node:v1.36.4)")
        progress_to(self.folder / PROGRESS_LOG, "istioctl")(" \\u2714 Istio core installed")
        return super().up()

    def down(self):
        progress_to(self.folder / PROGRESS_LOG, "kind delete")("Deleting cluster \\"meshconform\\" ...")
        super().down()


SLOW = replace(PLATFORM, name="slow", create=lambda c: Slow(c.folder, "hi"), attach=lambda f, s: Slow(f, "hi"))
'''
TESTS = '''
def test_one(mesh_platform):
    assert mesh_platform.is_up()


def test_two(mesh_platform):
    assert mesh_platform.is_up()
'''


def test_the_relay_prints_whole_new_lines_tagged_with_their_worker(tmp_path: Path) -> None:
    lines: list[str] = []
    relay = ProgressRelay(tmp_path, lines.append)
    relay.poll()  # nothing yet: no error
    (tmp_path / "platform-gw0").mkdir()
    log = tmp_path / "platform-gw0" / "progress.log"
    log.write_text("kind create: Creating cluster\nkind create: Ensuring no")
    relay.poll()
    assert lines == ["[gw0] kind create: Creating cluster"]  # the unfinished line waits for its newline
    with log.open("a") as out:
        out.write("de image\n")
    (tmp_path / "platform-main").mkdir()
    (tmp_path / "platform-main" / "progress.log").write_text("istioctl: done\n")
    relay.poll()
    relay.poll()
    assert lines == ["[gw0] kind create: Creating cluster", "[gw0] kind create: Ensuring node image",
                     "[main] istioctl: done"]


def test_under_xdist_the_workers_progress_reaches_the_terminal(tmp_path: Path) -> None:
    (tmp_path / "slow_platform.py").write_text(PLATFORM)
    (tmp_path / "test_slow.py").write_text(TESTS)
    path = os.pathsep.join(filter(None, [str(tmp_path), str(Path(__file__).parent / "platforms"),
                                         os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "MESHCONFORM_PLATFORMS": "slow_platform:SLOW", "PYTHONPATH": path}
    run = subprocess.run([sys.executable, "-m", "pytest", "test_slow.py", "-n", "2", "-p", "no:cacheprovider",
                          "--import-mode=importlib", "--mesh-platform=slow", f"--mesh-report-dir={tmp_path / 'run'}"],
                         env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    relayed = [line for line in run.stderr.splitlines() if line.startswith("[gw")]
    for worker in ("gw0", "gw1"):  # each worker brought its platform up (a cluster's workers share one)
        assert f'[{worker}] kind create: Creating cluster "meshconform" ...' in relayed, run.stderr[-2000:]
        assert f"[{worker}] istioctl:  \u2714 Istio core installed" in relayed
        assert f'[{worker}] kind delete: Deleting cluster "meshconform" ...' in relayed  # at the very end too
    assert len(relayed) == 8, relayed  # each line once
