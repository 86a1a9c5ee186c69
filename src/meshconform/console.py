"""The `meshconform` command's entry point. The command line's modules take about half a second to import;
Ctrl-C then must end the command as it does later (one line, exit status 130), not with a traceback from
inside an import."""

from __future__ import annotations

import sys
from typing import NoReturn

INTERRUPTED = "interrupted: everything started was stopped"


def interrupted() -> NoReturn:
    """How every command ends on Ctrl-C or SIGTERM, once what it started is stopped."""
    print(INTERRUPTED, file=sys.stderr)
    sys.exit(130)


def main() -> None:
    try:
        from meshconform.cli import main as run
    except KeyboardInterrupt:
        interrupted()
    run()
