"""Container logs read incrementally: a check waiting for a request to show in a log asks again every 50 ms, and a
whole log grows with every test of the run. The first read takes the log whole; each later one only the seconds
since the previous read (`sinceSeconds`, with a margin: measured on this clock, so a skew between this host and the
node's cancels out), with the kubelet's timestamps (`timestamps=true`) telling which lines were already read."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

# The kubelet's RFC 3339 timestamp with nanoseconds, then one space, before each line (timestamps=true).
_STAMPED = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)) (.*)$")
MARGIN_S = 5  # re-read this much before the previous read: lines already read are recognised by their timestamps


class LogReader(Protocol):
    def pod_log(self, namespace: str, pod: str, container: str, tail_lines: int | None = None,
                since_seconds: int | None = None, timestamps: bool = False) -> str: ...


def _ordered(stamp: str) -> str:
    """A timestamp that sorts as a string: RFC3339Nano drops trailing zeros of the fraction, so pad it to 9 digits."""
    head, dot, rest = stamp.partition(".")
    if not dot:
        return f"{head[:19]}.000000000{head[19:]}"
    digits = re.match(r"\d*", rest)
    fraction = digits.group(0) if digits else ""
    return f"{head}.{fraction.ljust(9, '0')}{rest[len(fraction):]}"


@dataclass
class _Followed:
    lines: list[str] = field(default_factory=list)
    last_stamp: str = ""
    at_last_stamp: set[str] = field(default_factory=set)  # lines stamped `last_stamp`, to drop when re-read
    read_at: float = 0.0
    stamped: bool = True  # the server prefixes timestamps (else every read is whole)


class LogCache:
    """Per (namespace, pod, container): the lines read so far, and where the next read starts."""

    def __init__(self, reader: LogReader, clock: Callable[[], float] = time.monotonic) -> None:
        self.reader = reader
        self.clock = clock
        self._followed: dict[tuple[str, str, str], _Followed] = {}

    def text(self, namespace: str, pod: str, container: str) -> str:
        """The container's whole log as read so far, timestamps removed."""
        key = (namespace, pod, container)
        followed = self._followed.get(key)
        now = self.clock()
        if followed is None or not followed.stamped:
            followed = self._followed[key] = _Followed(read_at=now)
            self._take(followed, self.reader.pod_log(namespace, pod, container, timestamps=True), whole=True)
        else:
            since = int(now - followed.read_at) + MARGIN_S
            followed.read_at = now
            self._take(followed, self.reader.pod_log(namespace, pod, container, since_seconds=since,
                                                     timestamps=True), whole=False)
        return "\n".join(followed.lines) + ("\n" if followed.lines else "")

    @staticmethod
    def _take(followed: _Followed, text: str, whole: bool) -> None:
        for raw in text.splitlines():
            match = _STAMPED.match(raw)
            if match is None:
                if whole:  # a server that does not stamp its lines: read it whole every time
                    followed.stamped = False
                    followed.lines.append(raw)
                continue
            stamp, line = _ordered(match.group(1)), match.group(2)
            if stamp < followed.last_stamp or (stamp == followed.last_stamp and line in followed.at_last_stamp):
                continue  # read before
            if stamp > followed.last_stamp:
                followed.last_stamp, followed.at_last_stamp = stamp, set()
            followed.at_last_stamp.add(line)
            followed.lines.append(line)
