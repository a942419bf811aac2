"""vLLM's speculators 0.9.0 EAGLE-3 data preparation, through chat_template_harness.frameworks.speculators.

Installed with --no-deps by scripts/setup. Its render call (an HTTP POST to a vLLM server) is answered by the
harness's vLLM profile; everything else is speculators' own code. Claims are read off decoded trained tokens.
"""

from __future__ import annotations

import pytest

from chat_template_harness.contract import kinds
from chat_template_harness.frameworks import speculators
from chat_template_harness.models.rules import Think
from tests.frameworks.common import assert_installed, checker
from tests.helpers import assert_report_current

pytestmark = [
    pytest.mark.speculators,
    pytest.mark.frameworks,
]  # run by `pytest -m frameworks` (a CI step), beside the reports
_check = checker(speculators.preprocess)


def test_the_installed_speculators_is_the_reported_version():
    assert_installed("speculators", speculators.VERSION)


def test_it_trains_the_newline_the_template_writes_after_the_stop_token():
    """Everything after the render boundary is trained, ChatML's `<|im_end|>\\n` whole; accepted as an allowance,
    the same cell passes (the negative control: nothing else is wrong there)."""
    result = _check("qwen3-8b", Think.OFF, "single_turn")
    assert result.status.name == "FAIL" and [kinds.kind_of(v) for v in result.violations] == ["T"]
    assert result.violations[0].tokens == ("\n",)
    assert _check("qwen3-8b", Think.OFF, "single_turn", allow=frozenset({"trailer"})).status.name == "PASS"


def test_one_row_per_turn_each_after_the_prompt_the_server_sends():
    """Qwen3 drops history reasoning: speculators re-renders each turn's history as inference sees it."""
    result = _check("qwen3-8b", Think.ON, "reasoning_every_turn", allow=frozenset({"trailer"}))
    assert result.status.name == "PASS"


def test_it_trains_qwen3s_empty_think_block_on_a_reply_without_reasoning():
    """The classic bug: the full render writes `<think>\n\n</think>\n\n` into the final turn, after the boundary."""
    result = _check("qwen3-8b", Think.ON, "single_turn", allow=frozenset({"trailer"}))
    assert result.status.name == "FAIL" and kinds.kind_of(result.violations[0]) == "E"
    assert "".join(result.violations[0].tokens) == "<think>\n\n</think>\n\n"


def test_gpt_oss_is_na_with_the_reason():
    result = _check("gpt-oss-20b", Think.ON, "single_turn")
    assert result.status.name == "NA" and "harmony" in result.reason


@pytest.mark.frameworks
def test_the_committed_speculators_report_is_current():
    assert_report_current("chat_template_harness.frameworks.speculators:preprocess", "speculators.md")
