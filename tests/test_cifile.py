"""`cth check --json FILE` and `--junit FILE`: every cell with its status and kinds, as CI systems read them."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from chat_template_harness import cli

NAIVE = "chat_template_harness.examples.naive:preprocess"
REFERENCE = "chat_template_harness.examples.reference:preprocess"


def _check(capsys, tmp_path, spec):
    args = [
        "check",
        spec,
        "--model",
        "qwen3-8b",
        "--model",
        "qwq-32b",
        "--think",
        "off",
        "--fixture",
        "single_turn",
        "--json",
        str(tmp_path / "c.json"),
        "--junit",
        str(tmp_path / "c.xml"),
    ]
    code = cli.main(args)
    capsys.readouterr()
    return code, json.loads((tmp_path / "c.json").read_text("utf-8")), ET.parse(tmp_path / "c.xml").getroot()


def test_json_and_junit_name_each_cell_with_its_kinds(capsys, tmp_path):
    code, report, suite = _check(capsys, tmp_path, NAIVE)
    assert code == 1
    cells = {c["id"]: c for c in report["cells"]}
    assert cells["qwen3-8b/think-off/single_turn"]["status"] == "fail"
    assert cells["qwen3-8b/think-off/single_turn"]["kinds"] == {"E": 1}
    assert cells["qwq-32b/think-off/single_turn"]["status"] == "n/a"  # QwQ has no off switch: declared, not dropped
    assert report["counts"] == {"fail": 1, "n/a": 1}
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert suite.get("tests") == "2" and suite.get("failures") == "1" and suite.get("skipped") == "1"
    failure = cases["qwen3-8b/think-off/single_turn"].find("failure")
    assert failure is not None and failure.get("message") == "E×1" and "empty" in failure.text
    assert cases["qwq-32b/think-off/single_turn"].find("skipped") is not None


def test_negative_control_the_reference_has_no_failure(capsys, tmp_path):
    code, report, suite = _check(capsys, tmp_path, REFERENCE)
    assert code == 0 and report["counts"] == {"pass": 1, "n/a": 1}
    assert suite.get("failures") == "0" and not list(suite.iter("failure"))


def test_every_kind_has_its_fix_and_the_report_ends_with_it(capsys):
    from chat_template_harness.contract import kinds

    assert set(kinds._fixes()["fixes"]) == set(kinds.ORDER)  # every kind, no stray letter
    assert (
        kinds.fix("P")
        == "render one sample per assistant turn: the served prompt is messages[:k] with add_generation_prompt"
    )
    assert "build_samples" in kinds.fix_lines(["P"])[-1] and kinds.fix_lines([]) == []
    code = cli.main(["check", NAIVE, "--model", "qwen3-8b", "--think", "off", "--fixture", "single_turn"])
    out = capsys.readouterr().out
    assert code == 1 and f"fix E: {kinds.fix('E')}" in out and "fix P:" not in out  # only the kinds the cell shows
