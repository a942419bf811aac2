"""OpenRLHF 0.11.2's SFTDataset, through chat_template_harness.frameworks.openrlhf.

Installed with --no-deps by scripts/setup. Every claim is read off the decoded trained tokens of its own output.
"""

from __future__ import annotations

import pytest

from chat_template_harness.contract import kinds
from chat_template_harness.contract.sample import Policy
from chat_template_harness.frameworks import openrlhf
from chat_template_harness.models.rules import Think
from tests.frameworks.common import assert_installed, check
from tests.helpers import assert_report_current

pytestmark = [
    pytest.mark.openrlhf,
    pytest.mark.frameworks,
]  # run by `pytest -m frameworks` (a CI step), beside the reports
_check = check


def test_the_installed_openrlhf_is_the_reported_version():
    assert_installed("openrlhf", openrlhf.VERSION)


def test_its_shifted_loss_mask_is_read_as_labels_on_the_predicted_tokens():
    """Negative control for the findings below: a Llama 3.1 conversation it gets right, both modes."""
    for adapter in (openrlhf.sft, openrlhf.multiturn):
        assert _check(adapter, "llama-3.1-8b", Think.OFF, "single_turn").status.name == "PASS"
    assert _check(openrlhf.multiturn, "llama-3.1-8b", Think.OFF, "multi_turn").status.name == "PASS"


def test_multiturn_ranges_run_into_the_next_user_turn_on_qwen3():
    """Each range is measured on a separately rendered prompt; Qwen3's full render differs, so the ranges land
    on the next turn's header."""
    result = _check(openrlhf.multiturn, "qwen3-8b", Think.OFF, "multi_turn", policy=Policy.ALL)
    assert result.status.name == "FAIL"
    assert any("12 times 7 is 84.<|im_end|>\n<|im_start|>user\nAnd" in run for run in result.extra)
    # named as what it is: the next user's header and first word trained (kind N), beside the turn's wrong prompt
    into_next = [v for v in result.violations if kinds.kind_of(v) == "N"]
    assert "N" in kinds.of_result(result) and "".join(into_next[0].tokens) == "<|im_start|>user\nAnd"


def test_the_default_mode_trains_only_the_last_reply():
    result = _check(openrlhf.sft, "llama-3.1-8b", Think.OFF, "multi_turn")
    assert result.status.name == "FAIL" and len(result.missing) == 2
    assert _check(openrlhf.sft, "llama-3.1-8b", Think.OFF, "multi_turn", policy=Policy.LAST).status.name == "PASS"


@pytest.mark.frameworks
@pytest.mark.parametrize("adapter", ["sft", "multiturn"])
def test_the_committed_openrlhf_report_is_current(adapter: str):
    assert_report_current(f"chat_template_harness.frameworks.openrlhf:{adapter}", f"openrlhf-{adapter}.md")
