"""Negative controls: for every invariant, a deliberately wrong sample that the check catches.

The wrong samples are the ways real preprocessors go wrong: a naive full render with a header
regex, an unmasked empty think block, segment-wise tokenization, a doubled BOS, a stop token
left untrained, whitespace merged across the prompt's edge, a reply cut inside itself, an unpinned clock.
"""

from __future__ import annotations

import dataclasses

import pytest

from chat_template_harness.contract import conversation
from chat_template_harness.contract.invariants import Invariant, check_determinism, check_samples
from chat_template_harness.contract.kinds import by_severity, kind_of, summary
from chat_template_harness.contract.sample import preprocess, resolve_mode
from chat_template_harness.contract.tokens import encode
from chat_template_harness.contract.turns import Kind, plan_turns
from chat_template_harness.examples import naive
from chat_template_harness.external import ExternalSample, request_for, run
from chat_template_harness.models.rules import Think
from chat_template_harness.models.rules.registry import family


def _cell(load, model: str, think: str, fixture: str):
    loaded = load(model)
    fam = family(loaded.spec.family)
    conv = conversation.fixture(fixture)
    return loaded, fam, conv, preprocess(loaded.tokenizer, conv, fam, Think(think))


def _naive(load, model: str, think: str, fixture: str):
    loaded, fam, conv, reference = _cell(load, model, think, fixture)
    mode = resolve_mode(fam, Think(think), conv)
    samples = run(naive.preprocess, request_for(model, conv, loaded.tokenizer, fam, Think(think), mode))
    return check_samples(loaded.tokenizer, reference.plans, samples)


def _kinds(violations) -> set[Invariant]:
    return {v.invariant for v in violations}


def test_the_reference_passes_where_the_controls_fail(load):
    loaded, _, _, reference = _cell(load, "qwen3-8b", "off", "single_turn")
    assert check_samples(loaded.tokenizer, reference.plans, reference.samples) == []


def test_naive_full_render_passes_where_the_template_injects_nothing(load):
    """The checks are not trigger-happy: Qwen2.5 and Llama render the last turn as generated."""
    assert _naive(load, "qwen2.5-7b", "off", "multi_turn") == []
    assert _naive(load, "llama-3.1-8b", "off", "multi_turn") == []


# --- 1. inference replay ---------------------------------------------------------------------------------------


def test_replay_catches_naive_training_after_a_prompt_the_server_never_sends(load):
    """QwQ's served prompt ends `<think>\\n`; the naive render has none, so its trained reply follows no served prompt."""
    violations = _naive(load, "qwq-32b", "on", "single_turn")
    (replay,) = [v for v in violations if v.invariant is Invariant.REPLAY]
    assert replay.turn == 0 and "turn 0's reply is trained after a prompt the server never sends" in replay.detail
    assert "the served prompt '<think>\\n'" in replay.detail
    assert replay.tokens[-1] == "<|im_end|>"


def test_replay_catches_a_doubled_bos(load):
    loaded, _, _, reference = _cell(load, "llama-3.1-8b", "off", "single_turn")
    (sample,) = reference.samples
    ids = [loaded.tokenizer.bos_token_id, *sample.input_ids]  # what add_special_tokens=True does
    violations = check_samples(loaded.tokenizer, reference.plans, [ExternalSample(tuple(ids), (0, *sample.loss_mask))])
    assert Invariant.REPLAY in _kinds(violations)
    assert any(
        "from token 1 the sample has '<|begin_of_text|><|start_header_id|>system'" in v.detail for v in violations
    )


def test_replay_catches_naive_training_of_rewritten_history(load):
    """Qwen3 drops past reasoning: a naive full render trains earlier replies after the wrong prompt."""
    violations = _naive(load, "qwen3-8b", "on", "reasoning_every_turn")
    replay = [v for v in violations if v.invariant is Invariant.REPLAY]
    assert [v.turn for v in replay] == [0, 1]
    assert "where the model generates '<think>" in replay[0].detail


# --- 2. no empty-think / injected-token loss -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "think", "tokens"),
    [
        ("qwen3-8b", "off", ("<think>", "\n\n", "</think>", "\n\n")),
        ("qwen3-8b", "on", ("<think>", "\n\n", "</think>", "\n\n")),
        ("deepseek-v3.1", "off", ("</think>",)),
    ],
)
def test_injected_loss_catches_the_naive_empty_think_block(load, model: str, think: str, tokens: tuple[str, ...]):
    violations = _naive(load, model, think, "single_turn")
    (hit,) = [v for v in violations if v.invariant is Invariant.NO_INJECTED_LOSS]
    assert hit.tokens == tokens and "empty think block" in hit.detail
    assert hit.turn == 0 and len(hit.positions) == len(tokens)
    assert kind_of(hit) == "E" and kind_of(by_severity(violations)[0]) == "E"  # the worst kind leads


def test_injected_loss_catches_an_unmasked_empty_think_in_the_reference(load):
    loaded, _, _, reference = _cell(load, "qwen3-8b", "on", "multi_turn")
    sample = reference.samples[0]
    empty = next(s for s in sample.spans if s.kind is Kind.EMPTY_THINK)
    mask = list(sample.loss_mask)
    mask[empty.first_token : empty.end_token] = [1] * (empty.end_token - empty.first_token)
    wrong = dataclasses.replace(sample, loss_mask=tuple(mask))
    violations = check_samples(loaded.tokenizer, reference.plans, [wrong, *reference.samples[1:]])
    assert Invariant.NO_INJECTED_LOSS in _kinds(violations)
    assert any(v.positions == tuple(range(empty.first_token, empty.end_token)) for v in violations)


def test_injected_loss_catches_a_trained_generation_prompt_opener(load):
    loaded, _, _, reference = _cell(load, "deepseek-r1", "on", "reasoning_last_turn")
    sample = reference.samples[-1]
    opener = next(s for s in sample.spans if s.kind is Kind.INJECTED)
    mask = list(sample.loss_mask)
    mask[opener.first_token : opener.end_token] = [1] * (opener.end_token - opener.first_token)
    violations = check_samples(
        loaded.tokenizer, reference.plans, [*reference.samples[:-1], dataclasses.replace(sample, loss_mask=tuple(mask))]
    )
    (hit,) = [v for v in violations if v.invariant is Invariant.NO_INJECTED_LOSS]
    assert "opener" in hit.detail and hit.tokens[0] == "<think>" and kind_of(hit) == "H"


# --- 3. complete supervision ---------------------------------------------------------------------------------------


def test_complete_catches_an_untrained_stop_token(load):
    loaded, _, _, reference = _cell(load, "llama-3.1-8b", "off", "single_turn")
    (sample,) = reference.samples
    mask = list(sample.loss_mask)
    mask[-1] = 0
    violations = check_samples(loaded.tokenizer, reference.plans, [dataclasses.replace(sample, loss_mask=tuple(mask))])
    (hit,) = violations
    assert hit.invariant is Invariant.COMPLETE and hit.tokens == ("<|eot_id|>",) and kind_of(hit) == "S"


def test_complete_catches_a_turn_that_no_sample_trains(load):
    loaded, _, _, reference = _cell(load, "qwen3-8b", "off", "multi_turn")
    violations = check_samples(loaded.tokenizer, reference.plans, reference.samples[1:])
    assert [(v.invariant, v.turn) for v in violations] == [(Invariant.COMPLETE, 0)]


# --- 4. whole-string tokenization -----------------------------------------------------------------------------------


def test_whole_string_catches_segment_wise_tokenization(load):
    """Tokenizing prompt, reasoning text, closing tags and answer separately splits `.\\n` that BPE merges."""
    loaded, _, _, reference = _cell(load, "qwen3-8b", "on", "reasoning_last_turn")
    plan = reference.plans[-1]
    reasoning = conversation.fixture("reasoning_last_turn").messages[-1].reasoning
    segments = [plan.prompt, "<think>\n", reasoning, "\n</think>\n\n", *[p.text for p in plan.pieces[1:]]]
    assert "".join(segments) == plan.text
    ids, mask = [], []
    for i, segment in enumerate(segments):
        seg_ids = encode(loaded.tokenizer, segment)[0]
        ids += seg_ids
        mask += [int(i > 0)] * len(seg_ids)
    violations = check_samples(
        loaded.tokenizer, reference.plans, [*reference.samples[:-1], ExternalSample(tuple(ids), tuple(mask))]
    )
    (hit,) = [v for v in violations if v.invariant is Invariant.WHOLE_STRING]
    assert "not the tokenization of their own text" in hit.detail


def test_whole_string_catches_a_text_that_does_not_match_the_ids(load):
    loaded, _, _, reference = _cell(load, "qwen2.5-7b", "off", "single_turn")
    (sample,) = reference.samples
    wrong = dataclasses.replace(sample, text=sample.text.replace("Paris", "Lyon"))
    (hit,) = check_samples(loaded.tokenizer, reference.plans, [wrong])
    assert hit.invariant is Invariant.WHOLE_STRING and "differs from the sample's text" in hit.detail


# --- 5. no straddling token ---------------------------------------------------------------------------------------------


def test_straddle_catches_generated_whitespace_merged_with_the_prompt(load):
    """Tokenized as one string, `assistant\n` + `\n\n  Kept` merges `\n\n\n` across the prompt's edge."""
    loaded = load("qwen2.5-7b")
    fam = family("qwen2.5")
    conv = conversation.fixture("whitespace_edges")
    (plan,) = plan_turns(loaded.tokenizer, conv, fam, fam.off)
    ids, offsets = encode(loaded.tokenizer, plan.text)
    mask = tuple(int(a >= len(plan.prompt)) for a, _ in offsets)
    violations = check_samples(loaded.tokenizer, [plan], [ExternalSample(tuple(ids), mask)])
    (hit,) = [v for v in violations if v.invariant is Invariant.NO_STRADDLE]
    assert hit.tokens == ("\n\n\n",)
    assert Invariant.REPLAY in _kinds(violations)  # the ids before the reply are not the served prompt's


def test_the_reply_keeps_its_leading_whitespace_as_served(load):
    """The served ids: the prompt tokenized whole, then the reply on its own; nothing of the reply is dropped."""
    loaded, _, conv, reference = _cell(load, "qwen2.5-7b", "off", "whitespace_edges")
    (plan,), (sample,) = reference.plans, reference.samples
    assert plan.generated == conv.messages[-1].content + "<|im_end|>" and not plan.notes
    assert plan.template_render == "same"  # the template writes the turn exactly so: no whitespace exemption
    served = encode(loaded.tokenizer, plan.prompt)[0] + encode(loaded.tokenizer, plan.body)[0]
    assert list(sample.input_ids) == served != encode(loaded.tokenizer, plan.text)[0]
    assert check_samples(loaded.tokenizer, reference.plans, reference.samples) == []


def test_whole_string_catches_a_split_inside_the_reply_after_a_served_edge(load):
    """The prompt edge is the only cut: the reply cut once more (`\n` | `\n  Kept…`) is not how it is emitted."""
    loaded, _, _, reference = _cell(load, "qwen2.5-7b", "off", "whitespace_edges")
    (plan,) = reference.plans
    prompt = encode(loaded.tokenizer, plan.prompt)[0]
    reply = encode(loaded.tokenizer, plan.body[:1])[0] + encode(loaded.tokenizer, plan.body[1:])[0]
    ids, mask = prompt + reply, (0,) * len(prompt) + (1,) * len(reply)
    violations = check_samples(loaded.tokenizer, reference.plans, [ExternalSample(tuple(ids), mask)])
    assert [v.invariant for v in violations] == [Invariant.WHOLE_STRING]


# --- 6. determinism -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["llama-3.2-3b", "gpt-oss-20b"])
def test_determinism_catches_an_unpinned_clock(load, model: str):
    loaded = load(model)
    msgs = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]

    def unpinned():
        ids = loaded.tokenizer.apply_chat_template(msgs, tokenize=True, return_dict=True)["input_ids"]
        return [ExternalSample(tuple(ids), (0,) * len(ids))]

    (hit,) = check_determinism(unpinned)
    assert hit.invariant is Invariant.DETERMINISM and hit.code == "clock" and "pin the date" in hit.format()


@pytest.mark.parametrize("model", ["llama-3.2-3b", "gpt-oss-20b"])
def test_determinism_holds_for_the_reference(load, model: str):
    loaded, fam, conv, _ = _cell(load, model, "on" if model.startswith("gpt") else "off", "single_turn")
    think = Think.ON if model.startswith("gpt") else Think.OFF
    assert check_determinism(lambda: preprocess(loaded.tokenizer, conv, fam, think).samples) == []


# --- 8. label ids (contract: "Labels") -----------------------------------------------------------------------------


def _labelled(load, relabel):
    """The reference sample of qwen3-8b think-off single_turn returned as `labels`, passed through `relabel`."""
    from chat_template_harness.external import IGNORE_INDEX, to_samples

    loaded, fam, conv, reference = _cell(load, "qwen3-8b", "off", "single_turn")
    (sample,) = reference.samples
    ids = list(sample.input_ids)
    labels = [i if m else IGNORE_INDEX for i, m in zip(ids, sample.loss_mask, strict=True)]
    ids, labels = relabel(loaded.tokenizer, ids, labels)
    return loaded, reference, to_samples({"input_ids": ids, "labels": labels})


def test_right_labels_pass(load):
    loaded, reference, samples = _labelled(load, lambda tok, ids, labels: (ids, labels))
    assert samples[0].labels is not None and check_samples(loaded.tokenizer, reference.plans, samples) == []


def test_a_right_mask_with_wrong_label_ids_fails(load):
    """Negative control: labels shifted by one (the model shifts them again) train the wrong next token."""

    def shifted(tok, ids, labels):
        return ids, [
            labels[i + 1] if labels[i] != -100 and i + 1 < len(labels) and labels[i + 1] != -100 else labels[i]
            for i in range(len(labels))
        ]

    loaded, reference, samples = _labelled(load, shifted)
    assert [int(lab != -100) for lab in samples[0].labels] == list(samples[0].loss_mask)  # the mask is still right
    violations = check_samples(loaded.tokenizer, reference.plans, samples)
    assert violations[0].invariant is Invariant.LABELS, [v.format() for v in violations]
    assert "carry a label that is not the input id there" in violations[0].detail


def test_a_stop_label_over_the_next_header_is_read_as_the_stop(load):
    """LLaMA-Factory's efficient_eos: the last label is the stop token where the input holds another id; what the
    model learns is right, so no violation (the harness once reported the input token as trained)."""

    def efficient_eos(tok, ids, labels):
        last = max(i for i, lab in enumerate(labels) if lab != -100)
        newline = tok.convert_tokens_to_ids("Ċ")
        return [*ids[:last], newline, *ids[last + 1 :]], labels

    loaded, reference, samples = _labelled(load, efficient_eos)
    assert samples[0].input_ids != samples[0].labels  # the input really differs
    assert check_samples(loaded.tokenizer, reference.plans, samples) == []


def test_a_right_stop_label_is_not_blamed_for_another_fault(load):
    """The same efficient_eos sample with its first prompt token trained as well (P): the labels teach the stop where
    the input holds another id, which is right, so the verdict is P alone, never L (LLaMA-Factory's gpt-oss once
    showed a false L). The shifted-labels test above is the negative control: there the labels add the fault."""

    def efficient_eos_and_prompt(tok, ids, labels):
        last = max(i for i, lab in enumerate(labels) if lab != -100)
        newline = tok.convert_tokens_to_ids("Ċ")
        return [*ids[:last], newline, *ids[last + 1 :]], [ids[0], *labels[1:]]

    loaded, reference, samples = _labelled(load, efficient_eos_and_prompt)
    violations = check_samples(loaded.tokenizer, reference.plans, samples)
    assert violations and Invariant.LABELS not in {v.invariant for v in violations}, [v.format() for v in violations]
    assert Invariant.REPLAY in {v.invariant for v in violations}


# --- a trained span that runs into the next message (kind N) -------------------------------------------------------


def _trained_through(load, upto: str):
    """qwen2.5-7b think-off multi_turn as one sequence, the first reply trained on through `upto` after its stop."""
    loaded, _, _, reference = _cell(load, "qwen2.5-7b", "off", "multi_turn")
    sample = max(reference.samples, key=lambda s: len(s.input_ids))
    ids, offsets = encode(loaded.tokenizer, sample.text)
    first = reference.plans[0]
    start = len(first.prompt)
    end = sample.text.index(upto, start) + len(upto)
    mask = [int(start <= a and b <= end) for a, b in offsets]
    return check_samples(
        loaded.tokenizer, reference.plans[:1], [ExternalSample(tuple(ids), tuple(mask))], required_turns=[0]
    )


def test_a_reply_trained_into_the_next_user_turn_is_kind_n(load):
    """OpenRLHF's --multiturn trains `…84.<|im_end|>\n<|im_start|>user\nAnd`: past the stop and the trailer, the
    next user's header and first word are another role's text."""
    violations = _trained_through(load, "<|im_start|>user\nAnd")
    found = [v for v in violations if kind_of(v) == "N"]
    assert len(found) == 1 and "".join(found[0].tokens) == "<|im_start|>user\nAnd", [v.format() for v in violations]


def test_a_reply_trained_through_its_trailer_only_is_not_kind_n(load):
    """Negative control: the same reply trained through the template's `\n` after the stop is T, never N."""
    violations = _trained_through(load, "84.<|im_end|>\n")
    assert [kind_of(v) for v in violations] == ["T"], [v.format() for v in violations]


# --- kinds: what a violation means, worst first ---------------------------------------------------------------------


def test_a_trained_trailer_is_kind_t_and_ranks_last(load):
    """Qwen's `\n` after <|im_end|> trained: T, listed after anything worse (it never hides it)."""
    loaded, _, _, reference = _cell(load, "qwen2.5-7b", "off", "single_turn")
    (sample,) = reference.samples
    ids, offsets = encode(loaded.tokenizer, sample.text + "\n")
    mask = [*sample.loss_mask, 1]
    mask[0] = 1  # and the first prompt token: P
    violations = check_samples(loaded.tokenizer, reference.plans, [ExternalSample(tuple(ids), tuple(mask))])
    letters = summary(by_severity(violations))
    assert letters.startswith("P") and letters.endswith("T×1"), letters


def test_wrong_label_ids_are_kind_l(load):
    def shifted(tok, ids, labels):
        return ids, [
            labels[i + 1] if labels[i] != -100 and i + 1 < len(labels) and labels[i + 1] != -100 else labels[i]
            for i in range(len(labels))
        ]

    loaded, reference, samples = _labelled(load, shifted)
    assert kind_of(check_samples(loaded.tokenizer, reference.plans, samples)[0]) == "L"


def test_a_stop_token_inside_the_data_is_not_a_run_into_the_next_message(load):
    """Negative control for kind N: a tool call's arguments that hold the stop's own text (`<|im_end|>`) are still
    the turn's generated span; the reference's sample trains them and nothing runs into another message."""
    from chat_template_harness.contract import conversation as conversations
    from chat_template_harness.contract.sample import preprocess
    from chat_template_harness.models.rules.registry import family_for

    loaded = load("qwen2.5-7b")
    conv = conversations.parse(
        [
            {"role": "user", "content": "q"},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [{"type": "function", "function": {"name": "lookup", "arguments": {"q": "<|im_end|>"}}}],
            },
            {"role": "tool", "content": "r"},
            {"role": "assistant", "content": "a"},
        ],
        name="stop-in-arguments",
        source="stop-in-arguments",
    )
    fam = family_for(loaded.spec, loaded.tokenizer)
    result = preprocess(loaded.tokenizer, conv, fam, Think.OFF)
    assert check_samples(loaded.tokenizer, result.plans, result.samples) == []
