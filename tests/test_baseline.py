"""Baselines record kinds and counts per cell: a known cell that gets worse fails, one that stays the same is
known, an id-only line (the old format) is known whatever fails there, and says so."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from chat_template_harness import cli
from chat_template_harness.checking import baseline

NAIVE = "chat_template_harness.examples.naive:preprocess"
TRAIN_ALL = """
from chat_template_harness.examples import naive

def preprocess(request):
    sample = naive.preprocess(request)
    return {**sample, "loss_mask": [1] * len(sample["input_ids"])}  # trains every token
"""


@pytest.fixture
def worse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "train_all.py").write_text(TRAIN_ALL, "utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "train_all:preprocess"
    sys.modules.pop("train_all", None)


def _check(capsys, spec: str, *args: str) -> tuple[int, str]:
    code = cli.main(["check", spec, "--model", "qwen3-8b", "--think", "off", "--fixture", "single_turn", *args])
    return code, capsys.readouterr().out


def test_a_known_cell_that_gets_worse_fails(capsys, tmp_path, worse):
    file = tmp_path / "baseline.txt"
    assert _check(capsys, NAIVE, "--baseline", str(file), "--update-baseline")[0] == 0
    assert file.read_text("utf-8").splitlines()[2] == "qwen3-8b/think-off/single_turn  E×1"
    code, out = _check(capsys, NAIVE, "--baseline", str(file))
    assert code == 0 and "KNOWN" in out and "1 known failure(s), 0 new, 0 stale, 0 worse" in out  # negative control
    code, out = _check(capsys, worse, "--baseline", str(file))
    assert code == 1 and "0 known failure(s), 0 new, 0 stale, 1 worse" in out
    assert "worse: qwen3-8b/think-off/single_turn: P×0→1, N×0→1, H×0→1, T×0→1" in out and "KNOWN" not in out


def test_an_id_only_line_is_known_and_says_it_records_no_counts(capsys, tmp_path, worse):
    file = tmp_path / "baseline.txt"
    file.write_text("qwen3-8b/think-off/single_turn\n", "utf-8")
    code, out = _check(capsys, worse, "--baseline", str(file))
    assert code == 0 and "no counts recorded for qwen3-8b/think-off/single_turn" in out


def test_counts_compare_kind_by_kind():
    assert baseline.worse_than({"E": 1}, {"E": 1}) == "" and baseline.worse_than({"E": 1}, {"E": 2, "P": 1}) == ""
    assert baseline.worse_than({"E": 2, "P": 1}, {"E": 1}) == "E×1→2, P×0→1"
    assert baseline.worse_than({"E": 9}, None) == ""


@pytest.mark.parametrize("line", ["qwen3-8b/think-off/single_turn E×x", "qwen3-8b/think-off/single_turn Z×1"])
def test_a_bad_line_is_one_error(tmp_path, line):
    file = tmp_path / "b.txt"
    file.write_text(line + "\n", "utf-8")
    with pytest.raises(baseline.HarnessError, match="line 1"):
        baseline.read(file)
