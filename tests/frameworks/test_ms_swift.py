"""ms-swift 4.6.0's SFT encoding, through chat_template_harness.frameworks.ms_swift.

Installed with --no-deps by scripts/setup. Every claim is read off the decoded trained tokens of its own output.
"""

from __future__ import annotations

import pytest

from chat_template_harness.contract import kinds
from chat_template_harness.frameworks import ms_swift
from chat_template_harness.models.rules import Think
from tests.frameworks.common import assert_installed, checker, shown
from tests.helpers import assert_report_current

pytestmark = [
    pytest.mark.swift,
    pytest.mark.frameworks,
]  # run by `pytest -m frameworks` (a CI step), beside the reports
TRAILER = frozenset({"trailer"})


_check = checker(ms_swift.preprocess)


def test_the_installed_ms_swift_is_the_reported_version():
    assert_installed("ms-swift", ms_swift.VERSION)


def test_it_trains_qwen3s_empty_think_block_in_think_off():
    """Its non-thinking prefix is written into the reply and trained: the classic bug, in think-off."""
    result = _check("qwen3-8b", Think.OFF, "single_turn", allow=TRAILER)
    assert result.status.name == "FAIL" and kinds.kind_of(result.violations[0]) == "E"
    assert "".join(result.violations[0].tokens) == "<think>\n\n</think>\n\n"


def test_qwen25_single_turn_differs_only_by_the_newline_after_the_stop():
    """The negative control: the same encoder on a family without a think block, only the trailer allowed."""
    assert _check("qwen2.5-7b", Think.OFF, "single_turn", allow=TRAILER).status.name == "PASS"
    result = _check("qwen2.5-7b", Think.OFF, "single_turn")
    assert [kinds.kind_of(v) for v in result.violations] == ["T"]


def test_a_hub_id_its_registry_does_not_match_is_na():
    result = _check("llama-3.1-8b", Think.OFF, "single_turn")
    assert result.status.name == "NA" and "does not match meta-llama/Llama-3.1-8B-Instruct" in result.reason


def test_its_llama32_date_computed_at_import_is_d_under_the_real_clock():
    """ms-swift computes Llama 3.2's "Today Date" once, at import: under the real clock it is not the served date.
    The negative control is tests/frameworks/test_real_clock.py (the same date written on the served day passes)."""
    result = _check("llama-3.2-3b", Think.OFF, "single_turn")
    assert result.status.name == "FAIL" and kinds.of_result(result) == ["D"], shown(result)
    assert "where the served prompt has '26 Jul 2024'" in result.violations[0].detail


@pytest.mark.frameworks
def test_the_committed_ms_swift_report_is_current():
    assert_report_current("chat_template_harness.frameworks.ms_swift:preprocess", "ms-swift.md")
