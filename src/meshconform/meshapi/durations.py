"""Durations as Istio accepts them: Go duration strings ('7s', '0.5s', '30ms', '15m', '1h30m', '100us'),
the form Istio's own documentation uses (`connectTimeout: 30ms`, `baseEjectionTime: 15m`) and its CRD
validation parses (CEL `duration()`), which includes protobuf JSON's plain seconds ('7s')."""

from __future__ import annotations

import re

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_WHOLE = re.compile(r"^(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+$")


def parse_duration(text: object) -> float:
    """Seconds from a duration string; raises ValueError saying which forms are accepted.
    Negative durations are refused: no Istio duration field takes one."""
    if not isinstance(text, str) or not _WHOLE.match(text.strip()):
        raise ValueError(f"{text!r} is not a duration: use a number with a unit (h, m, s, ms, us, ns), "
                         "e.g. '7s', '0.5s', '30ms', '15m' or '1h30m'")
    return sum(float(number) * _UNITS[unit] for number, unit in _PART.findall(text.strip()))


def envoy_duration(seconds: float) -> str:
    """Envoy's own duration string for a number of seconds."""
    return f"{seconds:.9f}".rstrip("0").rstrip(".") + "s" if seconds else "0s"
