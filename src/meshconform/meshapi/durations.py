"""Protobuf JSON durations as Istio accepts them ("7s", "0.5s")."""

from __future__ import annotations

import re

_DURATION = re.compile(r"^(\d+(?:\.\d{1,9})?)s$")


def parse_duration(text: str) -> float:
    """Seconds from a protobuf duration string; raises ValueError with the accepted form."""
    match = _DURATION.match(text.strip()) if isinstance(text, str) else None
    if not match:
        raise ValueError(f"{text!r} is not a duration: use seconds with an 's' suffix, e.g. '7s' or '0.5s'")
    return float(match.group(1))


def envoy_duration(seconds: float) -> str:
    """Envoy's own duration string for a number of seconds."""
    return f"{seconds:.9f}".rstrip("0").rstrip(".") + "s" if seconds else "0s"
