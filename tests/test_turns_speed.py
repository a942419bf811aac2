"""The plan's shortcuts give exactly the plans the full renders give, on every cell."""

from __future__ import annotations

import pytest

from chat_template_harness.cells import model as cellmodel
from chat_template_harness.contract import conversation, turns
from chat_template_harness.contract.sample import CellNotApplicable, resolve_mode
from chat_template_harness.models import source
from chat_template_harness.models.rules.registry import family_for


@pytest.mark.parametrize("model", list(source.builtin_registry()))
def test_the_header_start_shortcut_equals_the_rendered_history(model, monkeypatch):
    loaded = source.load(model)
    fam = family_for(loaded.spec, loaded.tokenizer)
    compared = 0
    for cell in cellmodel.cells([model]):
        conv = conversation.load(cell.fixture)
        try:
            mode = resolve_mode(fam, cell.think, conv)
        except CellNotApplicable:
            continue
        monkeypatch.setattr(turns, "EXACT_HEADER_START", False)
        fast = turns.plan_turns(loaded.tokenizer, conv, fam, mode)
        monkeypatch.setattr(turns, "EXACT_HEADER_START", True)
        exact = turns.plan_turns(loaded.tokenizer, conv, fam, mode)
        assert fast == exact, cell.id
        compared += 1
    assert compared > 0


def test_the_shortcut_is_not_taken_where_the_prompt_has_no_generation_prompt():
    """Negative control: DeepSeek-V3 writes no generation prompt after a tool result; the history is rendered."""
    loaded = source.load("deepseek-v3.1")
    fam = family_for(loaded.spec, loaded.tokenizer)
    conv = conversation.load("tool_call")
    plans = turns.plan_turns(loaded.tokenizer, conv, fam, fam.off)
    suffix = turns._generation_suffix(loaded.tokenizer, fam, fam.off)
    assert suffix and any(not p.prompt.endswith(suffix) for p in plans)
