"""Seconds each test file took in a run, from pytest's JUnit XML, as JSON for
tests/file_seconds.json (the order in which parallel runs hand out files).

    bash scripts/test.sh -q --junitxml=run.xml
    .venv/bin/python scripts/test_file_seconds.py run.xml > tests/file_seconds.json
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict


def file_seconds(xml_path: str) -> dict[str, float]:
    """Every test file's total (setup, call and teardown of its tests), slowest first."""
    totals: dict[str, float] = defaultdict(float)
    for case in ET.parse(xml_path).iter("testcase"):
        module = case.get("classname", "").split("::")[0]
        # classname is a dotted module path (tests.engine.test_spark, and .Class for a class's tests)
        parts = module.split(".")
        while parts and not parts[-1].startswith("test_"):
            parts.pop()
        if parts:
            totals["/".join(parts) + ".py"] += float(case.get("time", 0))
    return dict(sorted(((f, round(s, 1)) for f, s in totals.items()), key=lambda kv: -kv[1]))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    json.dump(file_seconds(sys.argv[1]), sys.stdout, indent=1)
    sys.stdout.write("\n")
