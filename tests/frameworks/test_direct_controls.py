"""An independent control per framework: its own API called directly (tests/frameworks/direct.py, no adapter code
of the harness), the decoded trained text checked byte for byte, for three cells its report says fail and one it
says pass; then the harness's verdict on the same cell, through the adapter, must agree: the same status, and every
run the report lists as "trained here, not by the reference" is one the framework itself trains. An artefact of an
adapter cannot hide behind the adapter.

    pytest -m frameworks tests/frameworks/test_direct_controls.py
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest

from chat_template_harness.cells.model import Cell
from chat_template_harness.contract import kinds
from chat_template_harness.frameworks import axolotl, llamafactory, ms_swift, nemo_automodel, openrlhf, verl
from chat_template_harness.models.rules import Think
from tests.frameworks import direct
from tests.frameworks.common import shown
from tests.helpers import check_cell

pytestmark = pytest.mark.frameworks
ANSWER = "The capital of France is Paris."
REASONING = direct.REASONING


def _case(
    name: str, call: Callable[[], list[str]], adapter, cell: str, trained: list[str], status: str, kind: str = ""
):
    model, think, fixture = cell.split("/")
    return pytest.param(call, adapter, Cell(model, Think(think), fixture), trained, status, kind, id=f"{name}/{cell}")


CASES = [
    # LLaMA-Factory 0.9.5, ShareGPT rows
    _case(
        "llamafactory",
        lambda: direct.llamafactory("qwen3-8b", "qwen3", "single_turn", True),
        llamafactory.qwen3,
        "qwen3-8b/on/single_turn",
        [f"<think>\n\n</think>\n\n{ANSWER}<|im_end|>\n"],
        "FAIL",
        "E",
    ),
    _case(
        "llamafactory",
        lambda: direct.llamafactory("gpt-oss-20b", "gpt_oss", "multi_turn", True),
        llamafactory.gpt_oss,
        "gpt-oss-20b/on/multi_turn",
        [
            f"<|channel|>analysis<|message|><|end|><|start|>assistant<|channel|>final<|message|>{r}"
            for r in (
                "12 times 7 is 84.<|start|>",
                "84 divided by 4 is 21.<|start|>",
                "No. 21 = 3 × 7, so it is not prime.<|return|>",
            )
        ],
        "FAIL",
        "E",
    ),
    _case(
        "llamafactory",
        lambda: direct.llamafactory("qwq-32b", "qwen", "reasoning_last_turn", True),
        llamafactory.qwen,
        "qwq-32b/on/reasoning_last_turn",
        [
            "Red is a primary colour.<|im_end|>\n",
            f"<think>\n{REASONING}\n</think>\n\nBlue and yellow make green.<|im_end|>\n",
        ],
        "FAIL",
    ),
    _case(
        "llamafactory",
        lambda: direct.llamafactory("deepseek-v3", "deepseek3", "single_turn", False),
        llamafactory.deepseek3,
        "deepseek-v3/off/single_turn",
        [f"{ANSWER}<｜end▁of▁sentence｜>"],
        "PASS",
    ),
    # ms-swift 4.6.0, `messages` rows
    _case(
        "ms-swift",
        lambda: direct.ms_swift("qwen3-8b", "single_turn", False)[0],
        ms_swift.preprocess,
        "qwen3-8b/off/single_turn",
        [f"<think>\n\n</think>\n\n{ANSWER}<|im_end|>\n"],
        "FAIL",
        "E",
    ),
    _case(
        "ms-swift",
        lambda: direct.ms_swift("qwen2.5-7b", "single_turn", None)[0],
        ms_swift.preprocess,
        "qwen2.5-7b/off/single_turn",
        [f"{ANSWER}<|im_end|>\n"],
        "FAIL",
        "T",
    ),
    _case(
        "ms-swift",
        lambda: direct.ms_swift("qwq-32b", "reasoning_last_turn", None)[0],
        ms_swift.preprocess,
        "qwq-32b/on/reasoning_last_turn",
        [
            "Red is a primary colour.<|im_end|>\n",
            f"<think>\n{REASONING}\n</think>\n\nBlue and yellow make green.<|im_end|>\n",
        ],
        "FAIL",
    ),
    _case(
        "ms-swift",
        lambda: direct.ms_swift("deepseek-v3", "single_turn", None)[0],
        ms_swift.preprocess,
        "deepseek-v3/off/single_turn",
        [f"{ANSWER}<｜end▁of▁sentence｜>"],
        "PASS",
    ),
    # axolotl 0.21.0, chat_template strategy, train_on_eos: turn
    _case(
        "axolotl",
        lambda: direct.axolotl("qwen3-8b", "reasoning_last_turn", {"enable_thinking": True}),
        axolotl.turn,
        "qwen3-8b/on/reasoning_last_turn",
        ["Red is a primary colour.<|im_end|>", f"{REASONING}\n</think>\n\nBlue and yellow make green.<|im_end|>"],
        "FAIL",
    ),
    _case(
        "axolotl",
        lambda: direct.axolotl("qwq-32b", "single_turn", {}),
        axolotl.turn,
        "qwq-32b/on/single_turn",
        [f"{ANSWER}<|im_end|>"],
        "FAIL",
    ),
    _case(
        "axolotl",
        lambda: direct.axolotl("qwen3-8b", "single_turn", {"enable_thinking": False}),
        axolotl.turn,
        "qwen3-8b/off/single_turn",
        [f"{ANSWER}<|im_end|>"],
        "PASS",
    ),
    # OpenRLHF 0.11.2, SFTDataset (token j trained where its loss_mask is 1 at j - 1)
    _case(
        "openrlhf",
        lambda: direct.openrlhf("qwen3-8b", "multi_turn", True),
        openrlhf.multiturn,
        "qwen3-8b/on/multi_turn",
        [
            "12 times 7 is 84.<|im_end|>\n<|im_start|>user\nAnd",
            "84 divided by 4 is 21.<|im_end|>\n<|im_start|>user\nIs",
            "<think>\n\n</think>\n\nNo. 21 = 3 × 7, so it is not prime.<|im_end|>",
        ],
        "FAIL",
        "N",
    ),
    _case(
        "openrlhf",
        lambda: direct.openrlhf("qwen3-8b", "single_turn", False),
        openrlhf.sft,
        "qwen3-8b/on/single_turn",
        [f"<think>\n\n</think>\n\n{ANSWER}<|im_end|>"],
        "FAIL",
        "E",
    ),
    _case(
        "openrlhf",
        lambda: direct.openrlhf("qwq-32b", "single_turn", False),
        openrlhf.sft,
        "qwq-32b/on/single_turn",
        ["tal of France is Paris.<|im_end|>"],
        "FAIL",
    ),
    _case(
        "openrlhf",
        lambda: direct.openrlhf("llama-3.1-8b", "multi_turn", True),
        openrlhf.multiturn,
        "llama-3.1-8b/off/multi_turn",
        [
            "12 times 7 is 84.<|eot_id|>",
            "84 divided by 4 is 21.<|eot_id|>",
            "No. 21 = 3 × 7, so it is not prime.<|eot_id|>",
        ],
        "PASS",
    ),
    # verl 0.9.1, MultiTurnSFTDataset
    _case(
        "verl",
        lambda: direct.verl("qwen2.5-7b", "single_turn"),
        verl.preprocess,
        "qwen2.5-7b/off/single_turn",
        [f"{ANSWER}<|im_end|>\n"],
        "FAIL",
        "T",
    ),
    _case(
        "verl",
        lambda: direct.verl("qwq-32b", "single_turn"),
        verl.preprocess,
        "qwq-32b/on/single_turn",
        [" of France is Paris.<|im_end|>\n"],
        "FAIL",
    ),
    _case(
        "verl",
        lambda: direct.verl("llama-3.1-8b", "multi_turn"),
        verl.preprocess,
        "llama-3.1-8b/off/multi_turn",
        [
            "12 times 7 is 84.<|eot_id|>",
            "84 divided by 4 is 21.<|eot_id|>",
            "No. 21 = 3 × 7, so it is not prime.<|eot_id|>",
        ],
        "PASS",
    ),
    # NeMo Automodel 0.7.0, ChatDataset (its labels shifted by one)
    _case(
        "nemo-automodel",
        lambda: direct.nemo_automodel("llama-3.1-8b", "single_turn"),
        nemo_automodel.preprocess,
        "llama-3.1-8b/off/single_turn",
        [f"<|start_header_id|>assistant<|end_header_id|>\n\n{ANSWER}<|eot_id|>"],
        "FAIL",
        "H",
    ),
    _case(
        "nemo-automodel",
        lambda: direct.nemo_automodel("qwen3-8b", "single_turn"),
        nemo_automodel.preprocess,
        "qwen3-8b/on/single_turn",
        [f"<|im_start|>assistant\n<think>\n\n</think>\n\n{ANSWER}<|im_end|>\n"],
        "FAIL",
        "E",
    ),
    _case(
        "nemo-automodel",
        lambda: direct.nemo_automodel("qwen2.5-7b", "single_turn"),
        nemo_automodel.preprocess,
        "qwen2.5-7b/off/single_turn",
        [f"<|im_start|>assistant\n{ANSWER}<|im_end|>\n"],
        "FAIL",
        "H",
    ),
    _case(
        "nemo-automodel",
        lambda: direct.nemo_automodel("llama-3.1-8b", "single_turn", mask_generation_prompt=True),
        nemo_automodel.mask_generation_prompt,
        "llama-3.1-8b/off/single_turn",
        [f"{ANSWER}<|eot_id|>"],
        "PASS",
    ),
]


@pytest.mark.parametrize(("call", "adapter", "cell", "trained", "status", "kind"), CASES)
def test_the_framework_itself_trains_what_its_report_says(
    call, adapter, cell: Cell, trained: list[str], status: str, kind: str
):
    assert call() == trained  # the framework alone, byte for byte
    result = check_cell(adapter, cell)
    assert result.status.name == status, shown(result)
    assert set(result.extra) <= set(trained), (result.extra, trained)
    assert not kind or kind in kinds.of_result(result), shown(result)


def test_ms_swift_itself_dates_llama_3_2_with_the_day_it_was_imported():
    """ms-swift's own encode writes the import day's "Today Date"; the harness reports that cell D, naming the day of
    the run and its format (not its value, so the committed report is the same on any day)."""
    _, sample = direct.ms_swift("llama-3.2-3b", "single_turn", None)
    today = f"{datetime.now():%d %b %Y}"
    assert f"Today Date: {today}\n" in sample
    result = check_cell(ms_swift.preprocess, Cell("llama-3.2-3b", Think.OFF, "single_turn"))
    detail = result.violations[0].detail
    assert kinds.of_result(result) == ["D"] and "writes the day it runs (as '%d %b %Y')" in detail, detail


def test_verl_itself_refuses_qwen3s_per_turn_join():
    """verl's third reported failure has no trained text: its own sanity check raises on Qwen3 (each turn rendered
    alone and joined is not the whole render), directly as through the adapter (kind X)."""
    with pytest.raises(AssertionError, match="apply_chat_template to each turn separately"):
        direct.verl("qwen3-8b", "single_turn")
    result = check_cell(verl.preprocess, Cell("qwen3-8b", Think.OFF, "single_turn"))
    assert kinds.of_result(result) == ["X"] and "apply_chat_template to each turn separately" in result.error
