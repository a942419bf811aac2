"""Reference and invariant bugs found by outside users and the property tests, one regression each.

Each test failed before its fix (issue 14, items 1-5, and the property-test findings).
"""

from __future__ import annotations

import pytest

from chat_template_harness.contract import conversation
from chat_template_harness.contract.invariants import Invariant, check_samples
from chat_template_harness.contract.sample import CellNotApplicable, preprocess, resolve_mode
from chat_template_harness.contract.tokens import encode
from chat_template_harness.errors import FixtureError
from chat_template_harness.external import ExternalSample
from chat_template_harness.models.rules import Think
from chat_template_harness.models.rules.registry import family


def _conv(messages):
    return conversation.parse(messages, name="regression", source="regression")


def _violations(load, model, think, messages):
    loaded = load(model)
    fam = family(loaded.spec.family)
    result = preprocess(loaded.tokenizer, _conv(messages), fam, Think(think))
    return loaded, result, check_samples(loaded.tokenizer, result.plans, result.samples)


@pytest.mark.parametrize("model", ["deepseek-r1", "qwq-32b"])
def test_a_token_across_the_reasoning_answer_edge_belongs_to_the_turn(load, model):
    """Item 1: `\\n\\n` of `</think>\\n\\n` and the reply's leading `\\n\\n` merge into one trained token."""
    messages = [
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "\n\nThe answer is 4.", "reasoning_content": "2+2=4."},
    ]
    assert _violations(load, model, "on", messages)[2] == []


@pytest.mark.parametrize("model", ["qwen3-8b", "qwq-32b", "qwen2.5-7b"])
def test_text_is_compared_as_the_tokenizer_normalizes_it(load, model):
    """Item 2: Qwen tokenizers apply NFC, so decode(ids) is the NFC text; the ids are what a server sends."""
    think = "on" if model != "qwen2.5-7b" else "off"
    messages = [{"role": "user", "content": "Cafe\u0301 \uf900"}, {"role": "assistant", "content": "Cafe\u0301!"}]
    assert _violations(load, model, think, messages)[2] == []


@pytest.mark.parametrize(("model", "think"), [("qwen3-8b", "on"), ("deepseek-v3.1", "on"), ("gpt-oss-20b", "on")])
def test_whitespace_only_reasoning_is_an_empty_block_never_trained(load, model, think):
    """Item 3: the reference no longer trains `<think>\\n \\n</think>`; it writes the mode's empty block untrained."""
    messages = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a", "reasoning_content": " "}]
    loaded, result, found = _violations(load, model, think, messages)
    assert found == []
    trained = [t for s in result.samples for t, m in zip(s.input_ids, s.loss_mask, strict=True) if m]
    assert "think" not in loaded.tokenizer.decode(trained) and "analysis" not in loaded.tokenizer.decode(trained)


def test_invariant_2_reads_whitespace_only_think_blocks_off_the_text(load):
    """Item 3, negative control: a sample that trains `<think>\\n \\n</think>` is caught, whatever the reference did."""
    loaded = load("qwen3-8b")
    fam = family("qwen3")
    plans = preprocess(loaded.tokenizer, conversation.fixture("single_turn"), fam, Think.ON).plans
    (plan,) = plans
    text = plan.prompt + "<think>\n \n</think>\n\n" + plan.generated
    ids, offsets = encode(loaded.tokenizer, text)
    mask = [int(a >= len(plan.prompt)) for a, _ in offsets]
    found = check_samples(loaded.tokenizer, plans, [ExternalSample(tuple(ids), tuple(mask))])
    assert any(v.invariant is Invariant.NO_INJECTED_LOSS and "empty think" in v.detail for v in found)


def test_an_unclosed_think_in_a_reply_is_rejected_not_trained_as_the_answer():
    """Item 4: a truncated trace is one clear input error."""
    with pytest.raises(FixtureError, match="opens <think> in its content and never closes it"):
        _conv([{"role": "user", "content": "q"}, {"role": "assistant", "content": "<think>\nlet me see"}])


def test_the_empty_think_pattern_leaves_the_replys_leading_spaces_alone(load):
    """Item 5: `</think>\\n\\n` followed by ` Ke…` no longer reports the reply's spaces as an empty block."""
    loaded, result, found = _violations(
        load,
        "qwen3-8b",
        "off",
        [{"role": "user", "content": "q"}, {"role": "assistant", "content": "  Keep the spaces."}],
    )
    assert found == []
    from chat_template_harness.contract.invariants import EMPTY_THINK

    text = "<think>\n\n</think>\n\n  Keep"
    assert [m.group() for m in EMPTY_THINK.finditer(text)] == ["<think>\n\n</think>"]


def test_v31_reply_starting_with_a_newline_is_trained_whole(load):
    """Property-test finding: the empty-think pattern swallowed the `\\n` V3.1 writes right after `</think>`."""
    assert (
        _violations(
            load, "deepseek-v3.1", "on", [{"role": "user", "content": ""}, {"role": "assistant", "content": "\n"}]
        )[2]
        == []
    )


def test_reasoning_holding_think_tags_is_rejected():
    """Property-test finding: reasoning `<think>` makes a full block look empty; no template can place it."""
    with pytest.raises(FixtureError, match="reasoning itself holds a <think> or </think> tag"):
        _conv([{"role": "user", "content": "q"}, {"role": "assistant", "content": "a", "reasoning_content": "<think>"}])


def test_r1_with_two_tool_call_rounds_is_na_with_the_template_bug_named(load):
    """Property-test finding: R1's template writes a second tool call differently as history and as a reply."""
    call = [{"type": "function", "function": {"name": "f", "arguments": {"q": 1}}}]
    conv = _conv(
        [
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": "", "tool_calls": call},
            {"role": "tool", "content": "1"},
            {"role": "assistant", "content": "x"},
            {"role": "user", "content": "b"},
            {"role": "assistant", "content": "", "tool_calls": call},
            {"role": "tool", "content": "2"},
            {"role": "assistant", "content": "y"},
        ]
    )
    with pytest.raises(CellNotApplicable, match="is_first"):
        resolve_mode(family("deepseek-r1"), Think.ON, conv)


def test_think_tags_inside_a_tool_calls_arguments_are_the_models_own_text(load):
    """Property-test finding: `<think></think>` inside generated tool-call arguments is data, not a template block."""
    call = [{"type": "function", "function": {"name": "f", "arguments": {"q": "<think></think>"}}}]
    messages = [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "", "tool_calls": call},
        {"role": "tool", "content": "1"},
        {"role": "assistant", "content": "done"},
    ]
    assert _violations(load, "qwen2.5-7b", "off", messages)[2] == []
