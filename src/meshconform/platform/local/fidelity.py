"""The committed fidelity figure (fidelity.json beside this module) as every report's underTest block shows it.

The figure is written by `python -m meshconform.fidelity --update`; this module only reads it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FIGURE = Path(__file__).resolve().with_name("fidelity.json")


def under_test_block(path: Path = FIGURE) -> dict[str, Any]:
    """How far the local platform agrees with istiod, and where it knowingly does not."""
    if not path.exists():
        return {"statement": "no fidelity figure committed"}
    data = json.loads(path.read_text())
    return {"statement": data["statement"], "istioVersion": data["istio"]["version"],
            "istioCommit": data["istio"]["commit"], "inScope": data["in_scope"], "agreed": data["agreed"],
            "outOfScope": data["out_of_scope"], "notPorted": data.get("not_ported", 0),
            "knownDivergences": [{"case": d["case"], "reason": d["reason"]} for d in data["divergences"]],
            "cases": "tests/fidelity/cases (run: python -m meshconform.fidelity)"}
