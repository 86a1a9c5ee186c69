"""Finding things among a test's figures, wherever a check put them (`shares`, `replies.latency_s`,
`nested[0].latency`): the charts look for proportion verdicts, `meshconform verify` for recorded designs."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

T = TypeVar("T")


def find(figures: Any, pick: Callable[[Mapping[str, Any]], T | None], path: str = "") -> Iterator[tuple[str, T]]:
    """(path, what `pick` takes) for every mapping among `figures` it takes something from, in document order; a
    mapping it took from is not searched further."""
    if isinstance(figures, Mapping):
        picked = pick(figures)
        if picked is not None:
            yield path, picked
            return
        for key, value in figures.items():
            yield from find(value, pick, f"{path}.{key}" if path else str(key))
    elif isinstance(figures, list):
        for index, value in enumerate(figures):
            yield from find(value, pick, f"{path}[{index}]")
