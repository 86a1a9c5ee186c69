"""Canonical JSON (sorted keys, compact, UTF-8) for the local platform's digests and change checks.

orjson, not the standard library: every apply encodes each proxy's xDS (a sidecar's clusters are ~33 KB) to
see whether it changed, and orjson does that 12x faster (0.025 against 0.31 ms), the largest CPU cost of an
apply before. YAML's integer keys (portLevelMtls' ports) are written as strings, as `json` does."""

from __future__ import annotations

from typing import Any

import orjson


def canonical_json(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=str)
