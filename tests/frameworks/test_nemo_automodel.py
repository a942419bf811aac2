"""NeMo Automodel 0.7.0's ChatDataset, through chat_template_harness.frameworks.nemo_automodel.

Installed with --no-deps by scripts/setup. Every claim is read off the decoded trained tokens of its own output.
"""

from __future__ import annotations

import pytest

from chat_template_harness.cells.model import Cell
from chat_template_harness.contract import kinds
from chat_template_harness.frameworks import nemo_automodel
from chat_template_harness.models.rules import Think
from tests.frameworks.common import assert_installed, shown
from tests.helpers import check_cell

HEADER = "<|start_header_id|>assistant<|end_header_id|>\n\n"  # CellResult.extra holds raw text


def test_its_shifted_labels_are_read_aligned_with_the_ids():
    """Fast, no framework: NeMo's pair (labels[i] is the id at i + 1) becomes the ids and labels aligned to them."""
    assert nemo_automodel.aligned([1, 2, 3], [-100, 3, 4]) == {"input_ids": [1, 2, 3, 4], "labels": [-100, -100, 3, 4]}
    assert nemo_automodel.aligned([1, 2, 3], [2, 3, -100]) == {"input_ids": [1, 2, 3], "labels": [-100, 2, 3]}


@pytest.mark.nemo
@pytest.mark.frameworks
def test_the_installed_nemo_automodel_is_the_reported_version():
    assert_installed("nemo-automodel", nemo_automodel.VERSION)


@pytest.mark.nemo
@pytest.mark.frameworks
def test_its_defaults_train_the_assistant_header():
    result = check_cell(nemo_automodel.preprocess, Cell("llama-3.1-8b", Think.OFF, "single_turn"))
    assert kinds.of_result(result) == ["H"] and result.extra == (f"{HEADER}The capital of France is Paris.<|eot_id|>",)


@pytest.mark.nemo
@pytest.mark.frameworks
def test_its_mask_generation_prompt_option_trains_the_reply_alone():
    """Negative control: the same cell with its documented option passes, so the H above is the default's."""
    result = check_cell(nemo_automodel.mask_generation_prompt, Cell("llama-3.1-8b", Think.OFF, "single_turn"))
    assert result.status.name == "PASS", shown(result)


@pytest.mark.frameworks
@pytest.mark.parametrize(
    ("adapter", "name"),
    [
        ("preprocess", "nemo-automodel.md"),
        ("mask_generation_prompt", "nemo-automodel-mask-generation-prompt.md"),
    ],
)
def test_the_committed_nemo_automodel_reports_are_current(adapter: str, name: str):
    from tests.helpers import assert_report_current

    assert_report_current(f"chat_template_harness.frameworks.nemo_automodel:{adapter}", name)
