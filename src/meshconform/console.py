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


def caused_by_interrupt(error: BaseException) -> bool:
    """Whether Ctrl-C is behind `error`: Python wraps what a class's __set_name__ raises (pydantic's model classes,
    while they are defined at import) in a RuntimeError, so the KeyboardInterrupt is found in its cause."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, KeyboardInterrupt):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def main() -> None:
    try:
        from meshconform.cli import main as run
    except BaseException as failure:
        if caused_by_interrupt(failure):
            interrupted()
        raise
    run()
