"""The `meshconform` command's entry point. The command line's modules take about half a second to import;
Ctrl-C then must end the command as it does later (one line, exit status 130), not with a traceback from
inside an import."""

from __future__ import annotations

import sys

INTERRUPTED = "interrupted: everything started was stopped"


def interrupted() -> None:
    """How every command ends on Ctrl-C or SIGTERM, once what it started is stopped (exit status 130). It
    imports nothing beyond sys (not even typing) so that the moments before it can catch Ctrl-C stay short."""
    print(INTERRUPTED, file=sys.stderr)
    raise SystemExit(130)


def main() -> None:
    try:
        from meshconform.cli import main as run
    except KeyboardInterrupt:
        interrupted()
    run()
