"""SpecForge 0.2.0's real preprocessing, through the adapters in chat_template_harness.frameworks.specforge.

SpecForge is installed with --no-deps by scripts/setup (its declared dependencies pull sglang and a
CUDA torch); its data preprocessing needs torch, so these run with the train extra.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from chat_template_harness import cli
from chat_template_harness.cells.model import Cell, Status
from chat_template_harness.contract import kinds
from chat_template_harness.contract.invariants import Invariant
from chat_template_harness.frameworks import specforge
from chat_template_harness.models.rules import Think
from tests.frameworks.common import assert_installed
from tests.helpers import assert_report_current, check_cell

pytestmark = [pytest.mark.specforge, pytest.mark.torch]
DEFAULT_SYSTEM = "You are a helpful assistant."
QWEN3_OFF = Cell("qwen3-8b", Think.OFF, "single_turn")


def test_the_installed_specforge_is_the_reported_version():
    assert_installed("specforge", specforge.VERSION)


def test_qwen3_thinking_trains_the_empty_think_block_in_think_off():
    result = check_cell(specforge.qwen3_thinking, QWEN3_OFF)
    assert result.status is Status.FAIL
    empty = [v for v in result.violations if v.invariant is Invariant.NO_INJECTED_LOSS and "empty think" in v.detail]
    assert [v.tokens for v in empty] == [("<think>", "\n\n", "</think>", "\n\n")]


def test_every_qwen_template_trains_after_a_default_system_prompt_the_server_does_not_send():
    for adapter in (specforge.qwen, specforge.qwen3_thinking, specforge.qwen3_instruct):
        result = check_cell(adapter, QWEN3_OFF)
        replay = [v for v in result.violations if v.invariant is Invariant.REPLAY]
        assert replay and "'system\\nYou'" in replay[0].detail, adapter.__name__


def test_qwen3_instruct_passes_with_the_servers_system_prompt_and_the_trailer_allowed():
    result = check_cell(specforge.qwen3_instruct, QWEN3_OFF, system_prompt=DEFAULT_SYSTEM, allow=frozenset({"trailer"}))
    assert result.status is Status.PASS
    assert [v.tokens for v in result.allowed] == [("\n",)]  # the `\n` after <|im_end|>: reported as allowed


def test_without_the_allowance_the_trailer_fails_the_cell():
    result = check_cell(specforge.qwen3_instruct, QWEN3_OFF, system_prompt=DEFAULT_SYSTEM)
    assert result.status is Status.FAIL
    assert ["the template's text after the stop token" in v.detail for v in result.violations] == [True]


def test_an_allowance_never_covers_an_empty_think_block():
    result = check_cell(specforge.qwen3_thinking, QWEN3_OFF, system_prompt=DEFAULT_SYSTEM, allow=frozenset({"trailer"}))
    assert result.status is Status.FAIL
    assert any("empty think" in v.detail for v in result.violations)


def test_a_template_is_na_outside_the_models_it_was_written_for():
    result = check_cell(specforge.llama3, QWEN3_OFF)
    assert result.status is Status.NA and "`llama3` template is for llama3, nemotron-v1.5 models" in result.reason


def test_r1_distill_cannot_preprocess_any_conversation():
    """SpecForge 0.2.0's deepseek-r1-distill template has no end-of-turn token; its parser raises building a regex."""
    result = check_cell(specforge.deepseek_r1_distill, Cell("deepseek-r1", Think.ON, "single_turn"))
    assert result.status is Status.FAIL and result.error.startswith("TypeError")


def test_gpt_oss_writes_its_own_date_and_ends_replies_with_end_not_return():
    result = check_cell(specforge.gpt_oss, Cell("gpt-oss-20b", Think.ON, "single_turn"))
    assert result.status is Status.FAIL
    # its own fixed date, not the served one: D, the same way as any framework's date (contract/dates.py)
    assert any(
        kinds.kind_of(v) == "D" and "'2025-06-28' where the served prompt has '2024-07-26'" in v.detail
        for v in result.violations
    )
    assert any(run.endswith("<|end|>") for run in result.extra)


@pytest.mark.parametrize("template", list(specforge.TEMPLATES))
def test_the_committed_specforge_report_is_current(template: str):
    assert_report_current(
        f"chat_template_harness.frameworks.specforge:{template.replace('-', '_')}", f"specforge-{template}.md"
    )


# --- baselines through the CLI -------------------------------------------------------------------------------------


def _check(capsys, *args: str) -> tuple[int, str]:
    code = cli.main(
        [
            "check",
            "chat_template_harness.frameworks.specforge:qwen3_thinking",
            "--model",
            "qwen3-8b",
            "--think",
            "off",
            "--fixture",
            "single_turn",
            "--fixture",
            "multi_turn",
            *args,
        ]
    )
    return code, capsys.readouterr().out


def test_a_baseline_turns_known_failures_into_a_green_run_and_catches_new_ones(capsys, tmp_path: Path):
    baseline = tmp_path / "baseline.txt"
    assert _check(capsys, "--baseline", str(baseline), "--update-baseline")[0] == 0
    assert [line.split()[0] for line in baseline.read_text().splitlines()[2:]] == [
        "qwen3-8b/think-off/multi_turn",
        "qwen3-8b/think-off/single_turn",
    ]
    code, out = _check(capsys, "--baseline", str(baseline))
    assert code == 0 and "2 known failure(s), 0 new, 0 stale" in out and "KNOWN" in out
    baseline.write_text("qwen3-8b/think-off/single_turn\n")  # multi_turn is now a new failure
    code, out = _check(capsys, "--baseline", str(baseline))
    assert code == 1 and "new failure: qwen3-8b/think-off/multi_turn" in out


def test_a_baseline_entry_that_passes_now_is_stale(capsys, tmp_path: Path):
    baseline = tmp_path / "baseline.txt"
    baseline.write_text("qwen3-8b/think-off/single_turn\n")
    code = cli.main(
        [
            "check",
            "chat_template_harness.examples.reference:preprocess",
            "--model",
            "qwen3-8b",
            "--think",
            "off",
            "--fixture",
            "single_turn",
            "--baseline",
            str(baseline),
        ]
    )
    out = capsys.readouterr().out
    assert code == 1 and "stale: qwen3-8b/think-off/single_turn passes now" in out


def test_an_unknown_allowance_is_one_error(capsys):
    assert cli.main(["check", "chat_template_harness.examples.reference:preprocess", "--allow", "empty_think"]) == 2
    assert "unknown allowance 'empty_think'" in capsys.readouterr().err


def test_long_trained_runs_are_cut_with_the_count_left_out(capsys):
    code = cli.main(
        [
            "check",
            "chat_template_harness.frameworks.specforge:qwen3_thinking",
            "--model",
            "qwen3-8b",
            "--think",
            "on",
            "--fixture",
            "long_conversation",
        ]
    )
    out = capsys.readouterr().out
    assert code == 1 and "characters; --verbose shows all)" in out
    cli.main(
        [
            "check",
            "chat_template_harness.frameworks.specforge:qwen3_thinking",
            "--model",
            "qwen3-8b",
            "--think",
            "on",
            "--fixture",
            "long_conversation",
            "--verbose",
        ]
    )
    assert "--verbose shows all" not in capsys.readouterr().out


def test_the_plugin_takes_the_system_prompt_the_allowance_and_the_baseline(pytester: pytest.Pytester):
    pytester.makeini("[pytest]\ncth_preprocessor = chat_template_harness.frameworks.specforge:qwen3_instruct\n")
    (pytester.path / "baseline.txt").write_text("qwen3-8b/think-off/multi_turn\nqwen3-8b/think-off/with_system\n")
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "-m",
        "cth",
        "--cth-model",
        "qwen3-8b",
        "--cth-think",
        "off",
        "--cth-fixture",
        "single_turn",
        "--cth-fixture",
        "multi_turn",
        "--cth-fixture",
        "with_system",
        "--cth-system-prompt",
        DEFAULT_SYSTEM,
        "--cth-allow",
        "trailer",
        "--cth-baseline",
        "baseline.txt",
    )
    # single_turn passes (trailer allowed); multi_turn fails and is listed (xfail); with_system passes but is
    # listed, so its baseline entry is stale and fails
    result.assert_outcomes(passed=1, xfailed=1, failed=1)
    result.stdout.fnmatch_lines(["*stale baseline entry: qwen3-8b/think-off/with_system passes now*"])
