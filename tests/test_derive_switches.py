"""Derive on switches and reasoning no generation prompt shows: hand-written templates of each class the corpus
found silently wrong (issue 31), each with a negative control.

- A switch whose values are named modes (`thinking_mode` enabled/disabled, MiniMax-M3's behaviour), and one whose
  think block is in the template's own markers, written empty into every history turn (`reasoning_effort`
  no_think/low/high, Hy3's): read off the renders, never off the names.
- A reasoning strength (`Reasoning strength: high`, any variable name) is not an on/off switch: no off mode.
- A template whose own prompt orders a think block on every reply, with no render showing one (Phi-4-reasoning's
  default system turn): the model reasons, its format is UNDECIDED, never "no thinking mode".
"""

from __future__ import annotations

from chat_template_harness.cells import model as cellmodel
from chat_template_harness.models.rules import NotApplicable, Think, ThinkMode
from tests.helpers import run_cells
from tests.test_derive import C, R, _derived, _folder, _trained

# MiniMax-M3's behaviour: `</r:think>` opens a think-off reply, `<r:think>` a thinking one; unset lets the model decide
NAMED_MODES = (
    "{%- for m in messages %}<|im_start|>{{ m.role }}\n"
    "{% if m.role == 'assistant' %}{% if m.reasoning_content %}<r:think>{{ m.reasoning_content }}</r:think>"
    "{% else %}</r:think>{% endif %}{% endif %}{{ m.content }}<|im_end|>\n{% endfor %}"
    "{%- if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if mode == 'disabled' %}</r:think>{% elif mode == 'enabled' %}<r:think>{% endif %}{% endif %}"
)
# Hy3's behaviour: every history turn writes the empty block `<t:think></t:think>`; no_think (the default) closes it
# in the generation prompt, low/high leave it open; any other value raises
EFFORT_OWN_MARKERS = (
    "{%- if reasoning_effort is not defined %}{% set reasoning_effort = 'no_think' %}"
    "{%- elif reasoning_effort not in ['high', 'low', 'no_think'] %}{{ raise_exception('bad effort') }}{% endif %}"
    "{%- for m in messages %}<|im_start|>{{ m.role }}\n"
    "{% if m.role == 'assistant' %}<t:think>{{ m.reasoning_content if loop.last and m.reasoning_content else '' }}"
    "</t:think>{% endif %}{{ m.content }}<|im_end|>\n{% endfor %}"
    "{%- if add_generation_prompt %}<|im_start|>assistant\n<t:think>"
    "{% if reasoning_effort == 'no_think' %}</t:think>{% endif %}{% endif %}"
)
# muse-glimmer's behaviour: a reasoning strength printed in the system turn, reasoning shown from a field
STRENGTH = (
    "<|im_start|>system\nReasoning strength: {{ strength if strength is defined else 'high' }}.<|im_end|>\n"
    "{%- for m in messages %}<|im_start|>{{ m.role }}\n"
    "{% if m.role == 'assistant' and m.reasoning_content %}<r>{{ m.reasoning_content }}</r>{% endif %}"
    "{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
# Phi-4-reasoning's behaviour: the default system turn orders a think block; no render writes reasoning
ORDERS = (
    "{% if messages[0].role != 'system' %}<|im_start|>system\nAnswer in two sections: <think> {your thoughts} </think> "
    "{your answer}.<|im_end|>\n{% endif %}"
    "{%- for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


# the cells that use each rule read here: reasoning in every turn, none, history, an empty reply
FIXTURES = ["reasoning_every_turn", "single_turn", "multi_turn", "empty_assistant_content"]


def _cells_pass(folder) -> None:
    results = run_cells(cellmodel.cells([str(folder)], None, FIXTURES))
    assert len(results) == 8 and {r.status for r in results} == {cellmodel.Status.PASS}, [r.reason for r in results]


# Ministral-3-Reasoning's behaviour: the same order in `[THINK]` markers, reasoning written only from content chunks
CHUNKS = ORDERS.replace("<think> {your thoughts} </think>", "[THINK]{your thoughts}[/THINK]").replace(
    "{{ m.content }}",
    "{% if m.content is string %}{{ m.content }}{% else %}{% for c in m.content %}"
    "{% if c.type == 'thinking' %}[THINK]{{ c.thinking }}[/THINK]{% else %}{{ c.text }}{% endif %}{% endfor %}{% endif %}",
)


def _switch(found) -> str:
    return next(f.value for f in found.findings if f.rule == "think switch")


def test_a_switch_of_named_modes_is_read_off_the_block_its_values_open_and_close(tmp_path):
    folder = _folder(tmp_path, "named-modes", NAMED_MODES)
    found = _derived(str(folder))
    rules = found.family
    assert _switch(found) == "kwarg mode" and not found.undecided
    assert dict(rules.on.kwargs) == {"mode": "enabled"} and dict(rules.off.kwargs) == {"mode": "disabled"}
    assert rules.on.opener == "<r:think>" and rules.on.think == "{reasoning}</r:think>"
    assert rules.off.opener == "</r:think>" and not rules.off.thinks
    _cells_pass(folder)
    prompt, trained = _trained("named-modes", Think.ON)
    assert prompt.endswith("assistant\n<r:think>") and trained == f"{R}</r:think>{C}<|im_end|>"
    prompt, trained = _trained("named-modes", Think.OFF)
    assert prompt.endswith("assistant\n</r:think>") and trained == f"{C}<|im_end|>"


def test_named_values_that_close_no_block_are_no_switch(tmp_path):
    """Negative control: a variable compared with strings that changes the generation prompt, no value closing a block."""
    style = NAMED_MODES.replace(
        "</r:think>{% elif mode == 'enabled' %}<r:think>", "(brief) {% elif mode == 'enabled' %}(long) "
    )
    found = _derived(str(_folder(tmp_path, "named-styles", style)))
    assert _switch(found) == "none"


def test_a_think_block_in_the_templates_own_markers_is_never_split_into_the_header(tmp_path):
    """Hy3: the history's empty `<t:think></t:think>` is one block, so the header stops before it; had it taken
    `<t:think>` as the header (as it took `<think:opensource></think:opensource>` whole), think-on trained the
    block's tail (`nk:opensource>`) after a closed block."""
    folder = _folder(tmp_path, "effort-own-markers", EFFORT_OWN_MARKERS)
    found = _derived(str(folder))
    rules = found.family
    assert _switch(found) == "kwarg reasoning_effort" and not found.undecided
    assert dict(rules.on.kwargs) == {"reasoning_effort": "high"}
    assert dict(rules.off.kwargs) == {"reasoning_effort": "no_think"}
    assert rules.on.opener == "<t:think>" and rules.on.think == "{reasoning}</t:think>"
    assert rules.off.opener == "<t:think></t:think>" and not rules.off.thinks
    _cells_pass(folder)
    prompt, trained = _trained("effort-own-markers", Think.ON)
    assert prompt.endswith("assistant\n<t:think>") and trained == f"{R}</t:think>{C}<|im_end|>"
    prompt, trained = _trained("effort-own-markers", Think.OFF)
    assert prompt.endswith("assistant\n<t:think></t:think>") and trained == f"{C}<|im_end|>"


def test_an_effort_without_a_value_that_closes_the_block_derives_no_off_mode(tmp_path):
    """Negative control: low/high both leave the block open: no switch, and think-off is N/A, never derived."""
    always = EFFORT_OWN_MARKERS.replace("'no_think' %}{%- elif", "'high' %}{%- elif").replace(", 'no_think']", "]")
    found = _derived(str(_folder(tmp_path, "effort-always", always)))
    assert _switch(found) == "none"
    assert found.family.off == NotApplicable("always reasons: reasoning_effort sets how much, there is no off switch")


def test_a_reasoning_strength_of_any_name_is_no_off_switch(tmp_path):
    found = _derived(str(_folder(tmp_path, "strength", STRENGTH)))
    assert found.family.off == NotApplicable("always reasons: strength sets how much, there is no off switch")
    assert isinstance(found.family.on, ThinkMode) and found.family.on.think == "<r>{reasoning}</r>"
    assert next(f.value for f in found.findings if f.rule == "reasoning setting") == "strength"


def test_a_printed_setting_not_about_reasoning_leaves_the_modes_as_they_were(tmp_path):
    """Negative control: `Tone: {{ tone }}` is not a reasoning strength: both modes are derived (no switch, the
    final turn shows reasoning: the model card's fact), as without the setting."""
    toned = STRENGTH.replace(
        "Reasoning strength: {{ strength if strength is defined", "Tone: {{ tone if tone is defined"
    )
    rules = _derived(str(_folder(tmp_path, "toned", toned))).family
    assert isinstance(rules.off, ThinkMode) and not rules.off.thinks and rules.on.think == "<r>{reasoning}</r>"


def test_a_think_block_the_templates_own_prompt_orders_is_undecided_never_no_thinking_mode(tmp_path):
    folder = _folder(tmp_path, "orders-think", ORDERS)
    found = _derived(str(folder))
    rules = found.family
    assert isinstance(rules.on, ThinkMode) and rules.on.thinks
    assert {(u.rule, u.code) for u in rules.undecided} == {
        ("reasoning_field", "reasoning-field"),
        ("think.on.think", "self-opening"),
    }
    assert rules.off == NotApplicable(
        "no off switch: the model opens its think block itself (the template's own prompt orders `<think>`…`</think>` "
        "on every reply)"
    )
    # every think-on cell needs the format: the model writes a block even where the data has no reasoning
    results = run_cells(cellmodel.cells([str(folder)], [Think.ON], ["single_turn", "reasoning_last_turn"]))
    assert [r.status for r in results] == [cellmodel.Status.UNDECIDED] * 2
    assert all("think.on.think" in r.reason and "fix:" in r.reason for r in results)


def test_a_prompt_that_names_no_think_block_or_only_its_opening_has_no_thinking_mode(tmp_path):
    """Negative controls: no think block in the prompt, or an opening with no closer, orders nothing."""
    for name, text in (("plain-prompt", "Answer briefly."), ("opening-only", "Never write <think> in a reply.")):
        template = ORDERS.replace("Answer in two sections: <think> {your thoughts} </think> {your answer}.", text)
        rules = _derived(str(_folder(tmp_path, name, template))).family
        assert isinstance(rules.on, NotApplicable) and rules.on.reason.startswith("no thinking mode"), name
        assert not rules.undecided, name


def test_reasoning_written_from_content_chunks_is_read_in_that_form(tmp_path):
    """The format shows only in content chunks of type 'thinking': derive writes reasoning in that form
    (data/reasoning_forms.toml) and reads the format off the render, with no off mode (the prompt orders the block);
    negative control: the same prompt with no chunk render leaves the format undecided."""
    chunked = _derived(str(_folder(tmp_path, "chunks", CHUNKS))).family
    plain = _derived(str(_folder(tmp_path, "no-chunks", ORDERS))).family
    assert chunked.reasoning_field == "chunks:thinking" and isinstance(chunked.on, ThinkMode)
    assert chunked.on.think == "[THINK]{reasoning}[/THINK]" and not chunked.undecided
    assert chunked.off.reason.endswith("(the template's own prompt orders `[THINK]`…`[/THINK]` on every reply)")
    assert "think.on.think" in {u.rule for u in plain.undecided}


# a template that splits history on its own closer (`[/THINK]`), its prompt opening nothing
SPLITS_OWN = (
    "{%- for m in messages %}<|im_start|>{{ m.role }}\n"
    "{{ m.content.split('[/THINK]')[-1].lstrip() if m.role == 'assistant' and not loop.last else m.content }}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def test_history_split_on_the_templates_own_closer_means_the_model_opens_its_block_itself(tmp_path):
    """DeepSeek-R1's old shape in `[THINK]` markers: the model reasons, never "no thinking mode"; negative control:
    the same template splitting on a marker that is no think block's closer has no thinking mode."""
    rules = _derived(str(_folder(tmp_path, "splits-own", SPLITS_OWN))).family
    assert rules.off == NotApplicable(
        "no off switch: the model opens its think block itself (the template strips reasoning from history at "
        "`[/THINK]`)"
    )
    assert isinstance(rules.on, ThinkMode) and "think.on.think" in {u.rule for u in rules.undecided}
    other = _derived(str(_folder(tmp_path, "splits-note", SPLITS_OWN.replace("[/THINK]", "[/NOTE]")))).family
    assert isinstance(other.on, NotApplicable) and other.on.reason.startswith("no thinking mode")


def test_reasoning_written_from_content_chunks_alone_is_a_thinking_mode_read_in_that_form(tmp_path):
    """No prose, no switch: the template writes reasoning from thinking chunks, so the model reasons (both modes, as
    for a field the final turn shows), its format read in that form; negative control: content printed as typed (the
    list's repr) has no thinking mode."""
    plain_system = CHUNKS.replace("Answer in two sections: [THINK]{your thoughts}[/THINK] {your answer}.", "Hi.")
    rules = _derived(str(_folder(tmp_path, "chunks-only", plain_system))).family
    assert isinstance(rules.on, ThinkMode) and isinstance(rules.off, ThinkMode) and not rules.off.thinks
    assert rules.reasoning_field == "chunks:thinking" and rules.on.think == "[THINK]{reasoning}[/THINK]"
    typed = ORDERS.replace("Answer in two sections: <think> {your thoughts} </think> {your answer}.", "Hi.")
    other = _derived(str(_folder(tmp_path, "typed-chunks", typed))).family
    assert isinstance(other.on, NotApplicable) and other.on.reason.startswith("no thinking mode")
