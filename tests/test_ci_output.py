"""What CI logs show: a progress line to stderr at regular intervals outside a terminal (matrix, check, audit,
gallery), and token text such as `</think>` kept visible in the terminal and in Markdown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chat_template_harness import cli
from chat_template_harness.audit.summary import code_span, tags_as_code

NAIVE = "chat_template_harness.examples.naive:preprocess"


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (
            [
                "check",
                NAIVE,
                "--model",
                "qwen3-8b",
                "--think",
                "off",
                "--fixture",
                "single_turn",
                "--fixture",
                "multi_turn",
            ],
            "cth check: 1/2 cells, ",
        ),
        (
            ["matrix", "--model", "qwen3-8b", "--think", "off", "--fixture", "single_turn", "--fixture", "multi_turn"],
            "cth matrix: 1/2 cells, ",
        ),
    ],
    ids=["check", "matrix"],
)
def test_a_progress_line_outside_a_terminal(capsys, monkeypatch, argv, line):
    monkeypatch.setenv("CTH_PROGRESS_SECONDS", "0")
    cli.main(argv)
    err = capsys.readouterr().err
    assert line in err and "cth " + argv[0] + ": 2/2 cells" in err


def test_negative_control_no_progress_line_before_the_interval(capsys, monkeypatch):
    monkeypatch.setenv("CTH_PROGRESS_SECONDS", "3600")
    cli.main(["matrix", "--model", "qwen3-8b", "--think", "off", "--fixture", "single_turn"])
    assert "cth matrix:" not in capsys.readouterr().err


def test_audit_keeps_think_tags_visible(capsys, monkeypatch, tmp_path: Path):
    monkeypatch.setenv("CTH_PROGRESS_SECONDS", "0")
    good = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}
    unclosed = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "<think>hmm"}]}
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps(good) + "\n" + json.dumps(unclosed) + "\n", "utf-8")
    md = tmp_path / "a.md"
    code = cli.main(
        [
            "audit",
            str(data),
            "--model",
            "qwen3-8b",
            "--think",
            "off",
            "--workers",
            "1",
            "--preprocessor",
            NAIVE,
            "--markdown",
            str(md),
        ]
    )
    out, err = capsys.readouterr()
    assert code == 1 and "cth audit: 2 rows" in err
    assert "| unclosed `<think>` in a reply | 1 | 2 |" in md.read_text("utf-8")  # a code span: Markdown keeps it
    assert "unclosed <think> in a reply" in out  # and the terminal shows it


def test_code_span_fences_backticks():
    assert tags_as_code("a <think> and <|im_end|>") == "a `<think>` and `<|im_end|>`"
    assert code_span("a</think>b") == "`a</think>b`"
    assert code_span("x `y` z") == "``x `y` z``" and code_span("`y`") == "`` `y` ``"
