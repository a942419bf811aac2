"""axolotl 0.21.0's chat_template strategy, through the adapters in chat_template_harness.frameworks.axolotl.

Installed with --no-deps by scripts/setup (with addict and colorama, what its data path imports). Every claim is
read off the decoded trained tokens of axolotl's own output.
"""

from __future__ import annotations

import pytest

from chat_template_harness.contract import kinds
from chat_template_harness.frameworks import axolotl
from chat_template_harness.models.rules import Think
from tests.frameworks.common import assert_installed, check
from tests.helpers import assert_report_current

pytestmark = [
    pytest.mark.axolotl,
    pytest.mark.frameworks,
]  # run by `pytest -m frameworks` (a CI step), beside the reports
_check = check


def test_the_installed_axolotl_is_the_reported_version():
    assert_installed("axolotl", axolotl.VERSION)


def test_it_passes_a_single_qwen3_turn():
    """The negative control for the findings below: the same strategy, a conversation it gets right."""
    assert _check(axolotl.turn, "qwen3-8b", Think.OFF, "single_turn").status.name == "PASS"


def test_it_trains_qwen3_history_replies_without_the_think_block_the_model_writes():
    result = _check(axolotl.turn, "qwen3-8b", Think.ON, "multi_turn")
    assert result.status.name == "FAIL" and kinds.kind_of(result.violations[0]) == "P"
    assert "from token 29 the sample has '12 times' where the model generates '<think>\\n\\n</think>'" in result.reason


def test_it_trains_no_stop_token_for_an_empty_reply():
    result = _check(axolotl.turn, "qwen3-8b", Think.ON, "empty_assistant_content")
    assert result.status.name == "FAIL" and result.missing == ("<|im_end|>",)


def test_it_raises_on_deepseek_tool_calls_sent_as_json_strings():
    """axolotl parses the arguments into an object; DeepSeek-R1's template concatenates them as a string."""
    result = _check(axolotl.turn, "deepseek-r1", Think.ON, "tool_call")
    assert result.status.name == "FAIL" and 'can only concatenate str (not "dict") to str' in result.reason


def test_train_on_eos_last_leaves_the_history_stop_tokens_untrained():
    """`last` trains the end token of the final turn only; `turn` (the default) trains every one."""
    last = _check(axolotl.last, "qwen2.5-7b", Think.OFF, "multi_turn")
    assert last.status.name == "FAIL" and {kinds.kind_of(v) for v in last.violations} == {"S"}
    assert _check(axolotl.turn, "qwen2.5-7b", Think.OFF, "multi_turn").status.name == "PASS"


@pytest.mark.frameworks
@pytest.mark.parametrize("adapter", ["turn", "last"])
def test_the_committed_axolotl_report_is_current(adapter: str):
    assert_report_current(f"chat_template_harness.frameworks.axolotl:{adapter}", f"axolotl-{adapter}.md")
