"""LLaMA-Factory 0.9.5's real SFT preprocessing, through the adapters in chat_template_harness.frameworks.llamafactory.

Installed with --no-deps by scripts/setup (with peft and omegaconf, what its data path imports). Every claim is
read off the decoded trained tokens of LLaMA-Factory's own output.
"""

from __future__ import annotations

import pytest

from chat_template_harness.cells.model import Cell
from chat_template_harness.frameworks import llamafactory
from chat_template_harness.models.rules import Think
from tests.frameworks.common import assert_installed
from tests.helpers import assert_report_current, check_cell

pytestmark = pytest.mark.torch


def test_the_installed_llamafactory_is_the_reported_version():
    assert_installed("llamafactory", llamafactory.VERSION)


def test_its_qwen3_template_trains_the_empty_think_block_of_a_reply_without_reasoning():
    result = check_cell(llamafactory.qwen3, Cell("qwen3-8b", Think.ON, "single_turn"))
    (empty,) = [v for v in result.violations if "an empty think block" in v.detail]
    assert result.status.name == "FAIL" and "".join(empty.tokens) == "<think>\n\n</think>\n\n"


def test_its_openai_converter_writes_detailed_thinking_off_into_a_system_prompt():
    """Negative control beside it: the same row in ShareGPT format gets no such system prompt."""
    openai = check_cell(llamafactory.qwen_openai, Cell("qwen2.5-7b", Think.OFF, "single_turn"))
    assert openai.status.name == "FAIL" and any(
        "the sample has 'detailed thinking'" in v.detail for v in openai.violations
    )
    sharegpt = check_cell(llamafactory.qwen, Cell("qwen2.5-7b", Think.OFF, "single_turn"))
    assert not any("detailed thinking" in v.detail for v in sharegpt.violations)


def test_a_template_is_only_for_the_models_its_own_table_names_it_for():
    result = check_cell(llamafactory.gemma3, Cell("qwen3-8b", Think.OFF, "single_turn"))
    assert result.status.name == "NA" and "model table names `qwen3` for this model, not `gemma3`" in result.reason


@pytest.mark.parametrize(
    ("repo", "template"),
    [
        ("Qwen/QwQ-32B", "qwen"),
        ("Qwen/Qwen3-4B-Thinking-2507", "qwen3"),
        ("Qwen/Qwen3-4B-Instruct-2507", "qwen3_nothink"),
        (
            "meta-llama/Llama-3.1-8B-Instruct",
            "llama3",
        ),  # by its name: the hub path in its table is the old Meta-Llama-3.1
        ("deepseek-ai/DeepSeek-V3.1", None),
        ("nvidia/Llama-3_3-Nemotron-Super-49B-v1_5", None),  # not in its table
    ],
)
def test_which_template_a_model_gets_is_read_off_its_own_model_table(repo: str, template: str | None):
    """extras/constants.py at 0.9.5, never a list kept by the harness; the repos it does not list are the negative
    control (their cells are N/A, the only "—" of the LLaMA-Factory columns)."""
    assert llamafactory.model_template(repo) == template


@pytest.mark.frameworks
@pytest.mark.parametrize("adapter", sorted(llamafactory.ADAPTERS))
def test_the_committed_llamafactory_report_is_current(adapter: str):
    assert_report_current(
        f"chat_template_harness.frameworks.llamafactory:{adapter}", f"llamafactory-{adapter.replace('_', '-')}.md"
    )
