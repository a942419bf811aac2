"""The plan's shortcuts give exactly the plans the full renders give, on every cell."""

from __future__ import annotations

import pytest

from chat_template_harness.cells import model as cellmodel
from chat_template_harness.contract import conversation, turns
from chat_template_harness.contract.sample import CellNotApplicable, resolve_mode
from chat_template_harness.errors import HarnessError
from chat_template_harness.models import source
from chat_template_harness.models.rules.registry import family_for

SHORTCUTS = {
    # where the generation prompt starts: at the mode's usual suffix, without rendering the history
    "EXACT_HEADER_START": "header start",
    # a turn's answer read after the reasoning its finished render shows, without rendering it bare
    "EXACT_ANSWER": "answer after shown reasoning",
}


def _plans_or_error(loaded, conv, fam, mode):
    try:
        return turns.plan_turns(loaded.tokenizer, conv, fam, mode)
    except HarnessError as error:
        return str(error)


@pytest.mark.parametrize("flag", list(SHORTCUTS), ids=list(SHORTCUTS.values()))
@pytest.mark.parametrize("model", list(source.builtin_registry()))
def test_each_shortcut_gives_the_plans_of_the_renders_it_saves(model, flag, monkeypatch):
    loaded = source.load(model)
    fam = family_for(loaded.spec, loaded.tokenizer)
    compared = 0
    for cell in cellmodel.cells([model]):
        conv = conversation.load(cell.fixture)
        try:
            mode = resolve_mode(fam, cell.think, conv)
        except CellNotApplicable:
            continue
        monkeypatch.setattr(turns, flag, False)
        fast = _plans_or_error(loaded, conv, fam, mode)
        monkeypatch.setattr(turns, flag, True)
        exact = _plans_or_error(loaded, conv, fam, mode)
        assert fast == exact, cell.id
        compared += 1
    assert compared > 0


def test_the_answer_shortcut_saves_a_render_per_turn_with_shown_reasoning(monkeypatch):
    """It is taken (Qwen3 think-on shows each final turn's reasoning: one render fewer per turn), and not where
    the template shows none (think-off: the same renders either way)."""
    loaded = source.load("qwen3-8b")
    fam = family_for(loaded.spec, loaded.tokenizer)
    conv = conversation.load("reasoning_every_turn")
    calls = []
    real = turns.render
    monkeypatch.setattr(turns, "render", lambda *a, **k: calls.append(1) or real(*a, **k))

    def renders(mode, exact):
        monkeypatch.setattr(turns, "EXACT_ANSWER", exact)
        calls.clear()
        turns.plan_turns(loaded.tokenizer, conv, fam, mode)
        return len(calls)

    for mode in (fam.on, fam.off):  # the mode's generation-suffix probe renders once, before counting
        turns.plan_turns(loaded.tokenizer, conv, fam, mode)
    turns_with_reasoning = sum(bool(m.reasoning) for m in conv.messages if m.role == "assistant")
    assert renders(fam.on, True) - renders(fam.on, False) == turns_with_reasoning > 0
    assert renders(fam.off, True) == renders(fam.off, False)


def test_the_shortcut_is_not_taken_where_the_prompt_has_no_generation_prompt():
    """Negative control: DeepSeek-V3 writes no generation prompt after a tool result; the history is rendered."""
    loaded = source.load("deepseek-v3.1")
    fam = family_for(loaded.spec, loaded.tokenizer)
    conv = conversation.load("tool_call")
    plans = turns.plan_turns(loaded.tokenizer, conv, fam, fam.off)
    suffix = turns._generation_suffix(loaded.tokenizer, fam, fam.off)
    assert suffix and any(not p.prompt.endswith(suffix) for p in plans)
