"""verl 0.9.1's MultiTurnSFTDataset, through chat_template_harness.frameworks.verl.

Installed with --no-deps by scripts/setup. Every claim is read off its own output (decoded trained tokens) or its
own error.
"""

from __future__ import annotations

import pytest

from chat_template_harness.contract import kinds
from chat_template_harness.frameworks import verl
from chat_template_harness.models.rules import Think
from tests.frameworks.common import assert_installed, checker
from tests.helpers import assert_report_current

pytestmark = [pytest.mark.verl, pytest.mark.frameworks]  # run by `pytest -m frameworks` (a CI step), beside the report
_check = checker(verl.preprocess)


def test_the_installed_verl_is_the_reported_version():
    assert_installed("verl", verl.VERSION)


def test_it_passes_llama_conversations_it_renders_turn_by_turn():
    """The negative control: per-message renders that join into the whole render are right."""
    assert _check("llama-3.1-8b", Think.OFF, "multi_turn").status.name == "PASS"


def test_its_own_sanity_check_rejects_qwen3_multi_turn_conversations():
    result = _check("qwen3-8b", Think.OFF, "multi_turn")
    assert result.status.name == "FAIL" and "apply_chat_template to each turn separately" in result.reason


def test_it_passes_tool_arguments_as_strings_which_llama_double_encodes():
    """Servers parse JSON-string arguments into objects; verl passes the string, and Llama's template quotes it."""
    result = _check("llama-3.1-8b", Think.OFF, "tool_call")
    assert result.status.name == "FAIL" and kinds.kind_of(result.violations[0]) == "P"
    assert '"parameters": "{\\"city\\": \\"Paris\\"}"}<|eot_id|>' in result.extra[0]


@pytest.mark.frameworks
def test_the_committed_verl_report_is_current():
    assert_report_current("chat_template_harness.frameworks.verl:preprocess", "verl.md")
