"""Click options for choosing a platform through the registry and setting its own options: shared by the
commands of the `meshconform` CLI (up, run, ...) and by `meshconform perf`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from meshconform.platform import registry

F = TypeVar("F", bound=Callable[..., Any])


def platform_choice(default: str | None, extra_help: str = "") -> Callable[[F], F]:
    """`--platform NAME` among the registered platforms."""
    return click.option("--platform", "platform_name", type=click.Choice(list(registry.kinds())), default=default,
                        show_default=default is not None,
                        help=f"{extra_help}Where the mesh runs: {registry.summaries()}.")


def platform_options(function: F) -> F:
    """Every registered platform's own options (only the chosen platform's may be set)."""
    for _kind, option in reversed(registry.all_options()):
        if option.flag:
            function = click.option(f"--{option.name}", option.dest, is_flag=True, default=None,
                                    help=f"[{'/'.join(registry.declared_by(option))}] {option.help}")(function)
        else:
            function = click.option(f"--{option.name}", option.dest, default=None,
                                    help=f"[{'/'.join(registry.declared_by(option))}] {option.help}")(function)
    return function


def given_options(values: dict[str, Any]) -> dict[str, Any]:
    """The platform options set on the command line (click passes None for the others)."""
    dests = {option.dest for _kind, option in registry.all_options()}
    return {k: v for k, v in values.items() if k in dests and v is not None}
