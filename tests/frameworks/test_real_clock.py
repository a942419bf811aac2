"""Frameworks run under the real clock: a date a framework writes that is not the served prompt's date is D.

The framework here is a tiny module written by the test: like ms-swift's Llama 3.2 template, it computes "Today
Date" once, at import, and writes it into every sample. Imported under two clocks, it is checked each time (under
the real clock, as `external.real_clock` marks it) and reported D with the date of its import; imported under the
pinned clock it writes the served date and passes (the negative control: the D comes from the date alone).
"""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine

from chat_template_harness.cells.model import Cell
from chat_template_harness.contract import kinds
from chat_template_harness.models.rules import Think
from chat_template_harness.models.rules.pinned import PINNED_CLOCK
from tests.frameworks.common import shown
from tests.helpers import check_cell

FRAMEWORK = """
import datetime

from chat_template_harness.external import real_clock

TODAY = datetime.datetime.now().strftime("%d %b %Y")  # once, at import


@real_clock
def preprocess(request):
    tokenizer = request.tokenizer
    kwargs = {**request.chat_template_kwargs, "date_string": TODAY}
    prompt = tokenizer.apply_chat_template(request.messages[:-1], add_generation_prompt=True, tokenize=False, **kwargs)
    prompt_ids = tokenizer.encode(prompt, add_special_tokens=False)
    reply_ids = tokenizer.encode(request.messages[-1]["content"] + "<|eot_id|>", add_special_tokens=False)
    return {"input_ids": prompt_ids + reply_ids, "loss_mask": [0] * len(prompt_ids) + [1] * len(reply_ids)}
"""
CELL = Cell("llama-3.2-3b", Think.OFF, "single_turn")


def _imported_at(clock: datetime, folder: Path, name: str):
    path = folder / f"{name}.py"
    path.write_text(FRAMEWORK, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    with time_machine.travel(clock, tick=False):
        spec.loader.exec_module(module)
    return module.preprocess


@pytest.mark.parametrize(
    "clock",
    [datetime(2030, 1, 2, 9, tzinfo=UTC), datetime(2031, 6, 30, 23, tzinfo=UTC)],
    ids=["2030-01-02", "2031-06-30"],
)
def test_a_date_computed_at_import_is_d(tmp_path: Path, clock: datetime):
    result = check_cell(_imported_at(clock, tmp_path, f"dated_{clock:%Y%m%d}"), CELL)
    assert result.status.name == "FAIL" and kinds.of_result(result) == ["D"], shown(result)
    assert (
        f"writes the date '{clock:%d %b %Y}' where the served prompt has '26 Jul 2024'" in result.violations[0].detail
    )


def test_the_served_date_passes(tmp_path: Path):
    """Negative control: the same framework imported on the served prompt's day writes its date, and passes."""
    result = check_cell(_imported_at(PINNED_CLOCK, tmp_path, "dated_pinned"), CELL)
    assert result.status.name == "PASS", shown(result)


@pytest.mark.parametrize("days_ago", [0, 1], ids=["today", "yesterday-across-midnight"])
def test_the_day_of_the_run_is_named_not_written(tmp_path: Path, days_ago: int):
    """A framework dated on the day it runs gets a finding without that day's value: a committed report stays the same.

    The control is the test above: a date that is not the run's (2030, 2031) is written out as it is.
    """
    clock = datetime.now(UTC) - timedelta(days=days_ago)
    result = check_cell(_imported_at(clock, tmp_path, f"dated_run_{days_ago}"), CELL)
    detail = result.violations[0].detail
    assert kinds.of_result(result) == ["D"], shown(result)
    assert "writes the day it runs (as '%d %b %Y') where the served prompt has '26 Jul 2024'" in detail
    assert f"{clock:%d %b %Y}" not in detail
