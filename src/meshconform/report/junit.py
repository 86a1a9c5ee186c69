"""JUnit XML from the conformance report, for CI systems (one testcase per conformance test)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any


def render(report: dict[str, Any]) -> str:
    tests = report["tests"]
    suite = ET.Element("testsuite", name="meshconform", tests=str(len(tests)),
                       failures=str(sum(t["result"] == "failed" for t in tests)),
                       skipped=str(sum(t["result"] == "skipped" for t in tests)),
                       time=f"{sum(t['durationSeconds'] for t in tests):.3f}", timestamp=report["date"])
    for test in tests:
        case = ET.SubElement(suite, "testcase", classname=f"meshconform.{'.'.join(test['features'])}",
                             name=test["id"], time=str(test["durationSeconds"]))
        if test["result"] == "failed":  # CI shows the message first: the one-sentence reason
            ET.SubElement(case, "failure", message=(test.get("reason") or "failed")[:500]).text = test["message"]
        elif test["result"] == "skipped":
            ET.SubElement(case, "skipped", message=(test.get("reason") or test["message"])[:500])
    root = ET.Element("testsuites")
    root.append(suite)
    encoded: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return encoded.decode()
