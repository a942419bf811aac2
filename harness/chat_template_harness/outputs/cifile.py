"""`cth check` results as the files CI systems read: JSON (`--json FILE`) and JUnit XML (`--junit FILE`).

JSON: {"preprocessor", "policy", "counts": {status: cells}, "cells": [{"id", "model", "think", "fixture",
"status", "reason", "kinds": {letter: violations}, "error", "known", "fix": {letter: what to change}}]}. JUnit: one testsuite `cth`, one
testcase per cell named by its id (classname the model); a failing cell is a <failure> whose message is the
kinds and whose text is the report, an N/A cell is <skipped> with its reason.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Collection, Sequence
from typing import Any

from chat_template_harness.checking import baseline
from chat_template_harness.contract import kinds
from chat_template_harness.outputs.view import report_lines


def check_json(preprocessor: str, policy: str, results: Sequence[Any], known: Collection[str] = ()) -> str:
    cells = [
        {
            "id": r.cell.id,
            "model": r.cell.model,
            "think": str(r.cell.think),
            "fixture": r.cell.fixture,
            "status": r.status.value,
            "reason": r.reason,
            "kinds": baseline.counts_of(r),
            "error": r.error,
            "known": r.cell.id in known,
            "fix": {k: kinds.fix(k) for k in kinds.of_result(r)},
        }
        for r in results
    ]
    counts = Counter(r.status.value for r in results)
    return (
        json.dumps(
            {"preprocessor": preprocessor, "policy": policy, "counts": dict(counts), "cells": cells},
            ensure_ascii=False,
            indent=2,
        )
        + "\n"
    )


def check_junit(preprocessor: str, results: Sequence[Any]) -> str:
    failing = [r for r in results if r.status.failing]
    skipped = [r for r in results if r.status.value == "n/a"]
    suite = ET.Element(
        "testsuite",
        name="cth",
        tests=str(len(results)),
        failures=str(len(failing)),
        skipped=str(len(skipped)),
        errors="0",
    )
    ET.SubElement(ET.SubElement(suite, "properties"), "property", name="preprocessor", value=preprocessor)
    for r in results:
        case = ET.SubElement(suite, "testcase", classname=r.cell.model, name=r.cell.id)
        if r.status.failing:
            message = kinds.summary(r.violations) or r.reason
            ET.SubElement(case, "failure", message=message).text = "\n".join(
                [*report_lines(r), *kinds.fix_lines(kinds.of_result(r))]
            )
        elif r in skipped:
            ET.SubElement(case, "skipped", message=f"N/A: {r.reason}")
    ET.indent(suite)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"
