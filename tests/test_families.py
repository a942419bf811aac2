"""Family rules, each checked against the real template in the pack (docs/contract.md and docs/templates.md).

The expected strings below are copied from the contract, not from the rules files (harness/chat_template_harness/models/rules/builtin/), so a rule
that drifts from the contract or from the template fails here.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import time_machine
import transformers

from chat_template_harness.contract import conversation
from chat_template_harness.contract.render import render, served_prompt, template_messages
from chat_template_harness.contract.sample import CellNotApplicable, preprocess, resolve_mode
from chat_template_harness.contract.turns import plan_turns
from chat_template_harness.models import source
from chat_template_harness.models.rules import NotApplicable, Think
from chat_template_harness.models.rules.registry import families, family

EOS_DS = "<｜end▁of▁sentence｜>"
R, C = "Two plus two is four.", "4"
THINKING = conversation.parse(
    [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": C, "reasoning_content": R}],
    name="thinking",
    source="test",
)

# (model, think) -> (served prompt ends with, generated span) for THINKING, from the think-mode table (docs/templates.md).
TABLE = {
    ("qwen3-8b", "on"): ("<|im_start|>assistant\n", f"<think>\n{R}\n</think>\n\n{C}<|im_end|>"),
    ("qwen3-8b", "off"): ("<|im_start|>assistant\n<think>\n\n</think>\n\n", f"{C}<|im_end|>"),
    ("qwq-32b", "on"): ("<|im_start|>assistant\n<think>\n", f"{R}\n</think>\n\n{C}<|im_end|>"),
    ("qwen2.5-7b", "off"): ("<|im_start|>assistant\n", f"{C}<|im_end|>"),
    ("llama-3.1-8b", "off"): ("<|start_header_id|>assistant<|end_header_id|>\n\n", f"{C}<|eot_id|>"),
    ("llama-3.2-3b", "off"): ("<|start_header_id|>assistant<|end_header_id|>\n\n", f"{C}<|eot_id|>"),
    ("llama-3.3-70b", "off"): ("<|start_header_id|>assistant<|end_header_id|>\n\n", f"{C}<|eot_id|>"),
    ("llama-4-scout", "off"): ("<|header_start|>assistant<|header_end|>\n\n", f"{C}<|eot|>"),
    ("deepseek-v3", "off"): ("<｜Assistant｜>", f"{C}{EOS_DS}"),
    ("deepseek-r1", "on"): ("<｜Assistant｜><think>\n", f"{R}\n</think>\n\n{C}{EOS_DS}"),
    ("deepseek-v3.1", "on"): ("<｜Assistant｜><think>", f"{R}</think>{C}{EOS_DS}"),
    ("deepseek-v3.1", "off"): ("<｜Assistant｜></think>", f"{C}{EOS_DS}"),
    ("gemma-3-4b", "off"): ("<start_of_turn>model\n", f"{C}<end_of_turn>"),
    ("qwen3-4b-thinking-2507", "on"): ("<|im_start|>assistant\n<think>\n", f"{R}\n</think>\n\n{C}<|im_end|>"),
    ("qwen3-4b-instruct-2507", "off"): ("<|im_start|>assistant\n", f"{C}<|im_end|>"),
    ("nemotron-super-49b-v1.5", "on"): (
        "<|start_header_id|>assistant<|end_header_id|>\n\n",
        f"<think>\n{R}\n</think>\n\n{C}<|eot_id|>",
    ),
    ("nemotron-super-49b-v1.5", "off"): (
        "<|start_header_id|>assistant<|end_header_id|>\n\n<think>\n\n</think>\n\n",
        f"{C}<|eot_id|>",
    ),
    ("mistral-nemo-2407", "off"): ("<s>[INST]2+2?[/INST]", f"{C}</s>"),
    # SentencePiece: the template writes the space before the reply, which the reply's first token holds ("▁4")
    ("mistral-large-2411", "off"): ("<s>[INST] 2+2?[/INST]", f" {C}</s>"),
    # built from the files PyPI packages ship (models/packaged.py), templates from llama.cpp's models/templates
    ("deepseek-v4", "on"): ("<｜Assistant｜><think>", f"{R}</think>{C}{EOS_DS}"),
    ("deepseek-v4", "off"): ("<｜Assistant｜></think>", f"{C}{EOS_DS}"),
    ("qwen3.5", "on"): ("<|im_start|>assistant\n<think>\n", f"{R}\n</think>\n\n{C}<|im_end|>"),
    ("qwen3.5", "off"): ("<|im_start|>assistant\n<think>\n\n</think>\n\n", f"{C}<|im_end|>"),
    ("gpt-oss-20b", "on"): (
        "<|start|>assistant",
        f"<|channel|>analysis<|message|>{R}<|end|><|start|>assistant<|channel|>final<|message|>{C}<|return|>",
    ),
}
NA_MODES = sorted(
    (m, t.value)
    for m, spec in source.registry().items()
    for t in Think
    if isinstance(family(spec.family).mode(t), NotApplicable)
)


def test_the_table_covers_every_mode_that_is_not_declared_na():
    every = {(m, t.value) for m in source.registry() for t in Think}
    assert set(TABLE) == every - set(NA_MODES)


@pytest.mark.parametrize(("model", "think"), sorted(TABLE), ids=[f"{m}/think-{t}" for m, t in sorted(TABLE)])
def test_served_prompt_and_generated_span_match_the_contract(model: str, think: str, load):
    loaded = load(model)
    ending, generated = TABLE[model, think]
    result = preprocess(loaded.tokenizer, THINKING, family(loaded.spec.family), Think(think))
    (plan,) = result.plans
    assert plan.prompt.endswith(ending)
    assert plan.generated == generated
    assert result.samples[-1].text == plan.prompt + plan.body


@pytest.mark.parametrize(("model", "think"), NA_MODES, ids=[f"{m}/think-{t}" for m, t in NA_MODES])
def test_na_modes_hold_in_the_template(model: str, think: str, load):
    """A mode is N/A only where the template really lacks it."""
    loaded = load(model)
    fam = family(loaded.spec.family)
    template = loaded.chat_template
    if fam.name in ("qwq", "deepseek-r1", "qwen3-thinking-2507"):  # always thinks: no switch turns the opener off
        for kwargs in ({"enable_thinking": False}, {"thinking": False}):
            text = loaded.tokenizer.apply_chat_template(
                [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True, **kwargs
            )
            assert text.endswith("<think>\n")
    elif fam.name == "gpt-oss":  # reasoning_effort tunes, never disables
        assert "reasoning_effort" in template and "enable_thinking" not in template
        assert 'set reasoning_effort = "medium"' in template
    elif fam.name == "qwen3-instruct-2507":  # parses <think> in history, never opens one
        for kwargs in ({}, {"enable_thinking": True}, {"thinking": True}):
            text = loaded.tokenizer.apply_chat_template(
                [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True, **kwargs
            )
            assert text.endswith("<|im_start|>assistant\n")
    else:  # no thinking at all
        assert think == "on" and "think" not in template.lower()


def test_qwen3_think_off_puts_the_empty_block_in_the_prompt_not_the_trained_span(load):
    loaded = load("qwen3-8b")
    result = preprocess(loaded.tokenizer, conversation.fixture("single_turn"), family("qwen3"), Think.OFF)
    (sample,) = result.samples
    empty = [s for s in sample.spans if s.kind == "empty_think"]
    assert [sample.text[s.start : s.end] for s in empty] == ["<think>\n\n</think>\n\n"]
    (block,) = empty
    assert block.end_token - block.first_token == 4  # <think> \n\n </think> \n\n
    assert set(sample.loss_mask[block.first_token : block.end_token]) == {0}


def test_qwen3_think_on_with_no_reasoning_writes_an_untrained_empty_block(load):
    loaded = load("qwen3-8b")
    (plan,) = plan_turns(loaded.tokenizer, conversation.fixture("single_turn"), family("qwen3"), family("qwen3").on)
    assert [(p.kind, p.text) for p in plan.pieces][0] == ("empty_think", "<think>\n\n</think>\n\n")
    assert plan.generated == "The capital of France is Paris.<|im_end|>"
    assert plan.template_render == "same"  # exactly what the template writes for the last turn (the seed's bug)


def test_qwen3_keeps_reasoning_only_after_the_last_user_query(load):
    loaded = load("qwen3-8b")
    conv = conversation.fixture("reasoning_every_turn")
    fam = family("qwen3")
    text = render(
        loaded.tokenizer, template_messages(conv, fam, fam.on), family=fam, mode=fam.on, add_generation_prompt=False
    )
    reasoning = [m.reasoning for m in conv.messages if m.reasoning]
    assert [r in text for r in reasoning] == [False, False, True]


@pytest.mark.parametrize("model", list(source.registry()))
def test_the_template_renders_what_is_trained_where_it_shows_the_turn(model: str, load):
    """The template is the oracle: every plan equals its own render of the finished turn ("same"), or differs only
    where a rule names why (an untrained think head, reasoning the template hides); nothing of the reply is dropped."""
    loaded = load(model)
    fam = family(loaded.spec.family)
    for think in Think:
        mode = fam.mode(think)
        if isinstance(mode, NotApplicable):
            continue
        for name in conversation.fixture_names():
            conv = conversation.fixture(name)
            try:
                resolve_mode(fam, think, conv)
            except CellNotApplicable:
                continue
            for plan in plan_turns(loaded.tokenizer, conv, fam, mode):
                reasoning = conv.messages[plan.message_index].reasoning
                hidden = mode.thinks and reasoning and not fam.template_shows_final_reasoning
                inline = mode.thinks and reasoning and fam.reasoning_field == "inline" and not hidden
                # the generation prompt's opener, which no finished turn shows once its reasoning is not the template's own
                # (not where the finished turn writes exactly the opener and the empty block: DeepSeek V4's `<think></think>`)
                shows_opened_empty = not reasoning and mode.final_marker == plan.opener + mode.empty_think
                empty_opened_think = (
                    bool(plan.opener) and mode.thinks and (not reasoning or hidden or inline) and not shows_opened_empty
                )
                # a template that writes a think block into a turn of a mode that never thinks (Qwen3 2507 Instruct)
                never_generated_block = bool(mode.final_marker) and not mode.thinks and not mode.opener
                # an opener only the generation prompt writes (Nemotron `/no_think`): history shows no block there
                prompt_only_block = bool(plan.opener) and not mode.final_marker and not mode.thinks
                expected = []  # what the oracle must name, derived here from the fixture and the mode, not from the plan
                if empty_opened_think or never_generated_block or prompt_only_block:
                    expected.append(
                        "untrained head"
                    )  # the template shows no think block where the model still closes one
                if inline:
                    expected.insert(0, "inline reasoning")
                if hidden:
                    expected.append("hidden reasoning")
                named = [rule for rule, _ in plan.oracle.explained]
                assert not plan.disagrees and named == expected, (name, think, plan.turn, plan.template_render)


@pytest.mark.parametrize("model", list(source.registry()))
def test_stop_tokens_are_single_special_tokens(model: str, load):
    loaded = load(model)
    for stop in family(loaded.spec.family).stop_tokens:
        ids = loaded.tokenizer(stop, add_special_tokens=False)["input_ids"]
        assert len(ids) == 1, stop
        assert stop in loaded.tokenizer.all_special_tokens or stop in loaded.tokenizer.get_added_vocab()


def test_deepseek_v3_tool_calls_are_na_because_the_template_cannot_close_them(load):
    loaded = load("deepseek-v3")
    msgs = [
        {"role": "user", "content": "Weather?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"type": "function", "function": {"name": "get_weather", "arguments": json.dumps({"city": "Paris"})}}
            ],
        },
    ]
    try:
        text = loaded.tokenizer.apply_chat_template(msgs, tokenize=False)
    except Exception as exc:  # transformers 5 drops content=None, so the template reads an undefined field
        assert int(transformers.__version__.split(".")[0]) >= 5, exc
    else:
        assert text.endswith("<｜tool▁call▁end｜>")  # no <｜tool▁calls▁end｜><｜end▁of▁sentence｜>: no stop token
    assert "tools" in family("deepseek-v3").off.unsupported


def test_deepseek_v3_1_writes_tool_calls_in_non_thinking_form_only(load):
    loaded = load("deepseek-v3.1")
    fam = family("deepseek-v3.1")
    conv = conversation.fixture("tool_call")
    msgs = template_messages(conv, fam, fam.off)[:2]
    text = render(loaded.tokenizer, msgs, family=fam, mode=fam.on, tools=conv.tools, add_generation_prompt=False)
    assert "<｜Assistant｜></think><｜tool▁calls▁begin｜>" in text  # even with thinking=True
    with pytest.raises(CellNotApplicable, match="non-thinking"):
        resolve_mode(fam, Think.ON, conv)


def test_llama_dates_are_pinned_while_the_raw_templates_follow_the_clock(load):
    msgs = [{"role": "user", "content": "hi"}]
    with time_machine.travel(datetime(2030, 1, 2, tzinfo=UTC), tick=False):
        raw_31 = load("llama-3.1-8b").tokenizer.apply_chat_template(msgs, tokenize=False)
        raw_32 = load("llama-3.2-3b").tokenizer.apply_chat_template(msgs, tokenize=False)
        pinned_32 = served_prompt(
            load("llama-3.2-3b").tokenizer,
            conversation.fixture("single_turn"),
            1,
            family("llama3"),
            family("llama3").off,
        )
    assert "Today Date: 26 Jul 2024" in raw_31
    assert "Today Date: 02 Jan 2030" in raw_32
    assert "Today Date: 26 Jul 2024" in pinned_32


def test_gpt_oss_preamble_identity_date_developer_block_and_return(load):
    loaded = load("gpt-oss-20b")
    result = preprocess(loaded.tokenizer, conversation.fixture("with_system"), family("gpt-oss"), Think.ON)
    text = result.samples[-1].text
    assert text.startswith("<|start|>system<|message|>You are ChatGPT, a large language model trained by OpenAI.")
    assert "Current date: 2024-07-26" in text
    assert "<|start|>developer<|message|># Instructions\n\nYou are a concise assistant." in text
    assert text.endswith("<|return|>")


TRANSFORMERS_MAJOR = int(transformers.__version__.split(".")[0])


@pytest.mark.parametrize(
    "model",
    ["llama-3.1-8b", "llama-3.2-3b", "llama-3.3-70b", "llama-4-scout", "deepseek-v3", "deepseek-r1", "deepseek-v3.1"],
)
def test_templates_write_bos_so_add_special_tokens_may_double_it(model: str, load):
    """Whole-string tokenization uses add_special_tokens=False: the template already wrote BOS.

    With add_special_tokens=True Llama doubles BOS on every transformers; DeepSeek doubles it on 4.x,
    while 5.x loads DeepSeek as TokenizersBackend, which adds none (an upgrade difference).
    """
    loaded = load(model)
    fam = family(loaded.spec.family)
    mode = next(m for m in (fam.off, fam.on) if not isinstance(m, NotApplicable))
    prompt = served_prompt(loaded.tokenizer, conversation.fixture("single_turn"), 1, fam, mode)
    bos = loaded.tokenizer.bos_token_id
    assert prompt.startswith(loaded.tokenizer.bos_token)
    assert loaded.tokenizer(prompt, add_special_tokens=False)["input_ids"][:2].count(bos) == 1
    doubled = loaded.tokenizer(prompt, add_special_tokens=True)["input_ids"][:2] == [bos, bos]
    assert doubled == (fam.name.startswith("llama") or TRANSFORMERS_MAJOR < 5)


@pytest.mark.parametrize("model", ["qwen2.5-7b", "qwen3-8b", "qwq-32b", "gpt-oss-20b"])
def test_config_vocab_size_exceeds_the_tokenizer_padding_rows(model: str, load):
    loaded = load(model)
    config = json.loads((loaded.directory / "config.json").read_text("utf-8"))
    assert config["vocab_size"] > len(loaded.tokenizer)


def test_transformers_5_loads_deepseek_as_tokenizers_backend_with_a_warning(load):
    loaded = [load(m) for m in ("deepseek-v3", "deepseek-r1", "deepseek-v3.1")]
    if TRANSFORMERS_MAJOR >= 5:
        assert {type(lt.tokenizer).__name__ for lt in loaded} == {"TokenizersBackend"}
        # transformers logs it once per process, so it lands with whichever DeepSeek loaded first
        assert any("TokenizersBackend" in w for lt in loaded for w in lt.load_warnings)
    else:
        assert {type(lt.tokenizer).__name__ for lt in loaded} == {"LlamaTokenizerFast"}


def test_every_family_is_used_by_a_model():
    assert {s.family for s in source.registry().values()} == set(families())


def test_gemma3_folds_the_system_message_into_the_first_user_turn(load):
    loaded = load("gemma-3-4b")
    fam = family("gemma3")
    prompt = served_prompt(loaded.tokenizer, conversation.fixture("with_system"), 2, fam, fam.off)
    system = conversation.fixture("with_system").messages[0].content
    assert prompt.startswith(f"<bos><start_of_turn>user\n{system}\n\n")
    assert "<start_of_turn>system" not in prompt


def test_gemma3_has_no_tool_role():
    with pytest.raises(CellNotApplicable, match="no tool support"):
        resolve_mode(family("gemma3"), Think.OFF, conversation.fixture("tool_call"))


def test_qwen3_instruct_2507_writes_an_empty_think_block_it_never_generates(load):
    """The template writes `<think>\n\n</think>\n\n` into a final assistant turn; the reference never trains it."""
    loaded = load("qwen3-4b-instruct-2507")
    fam = family("qwen3-instruct-2507")
    msgs = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
    assert "<|im_start|>assistant\n<think>\n\n</think>\n\nHello!" in loaded.tokenizer.apply_chat_template(
        msgs, tokenize=False
    )
    result = preprocess(loaded.tokenizer, conversation.fixture("single_turn"), fam, Think.OFF)
    (sample,) = result.samples
    assert "<think>" not in sample.text
    assert result.plans[0].template_render == "same but for: untrained head '', template '<think>\\n\\n</think>\\n\\n'"


def test_nemotron_no_think_is_a_system_flag_that_injects_the_empty_block(load):
    loaded = load("nemotron-super-49b-v1.5")
    fam = family("nemotron-v1.5")
    conv = conversation.fixture("with_system")
    on = served_prompt(loaded.tokenizer, conv, 2, fam, fam.on)
    off = served_prompt(loaded.tokenizer, conv, 2, fam, fam.off)
    assert "/no_think" not in off  # the template removes the flag from the system text
    assert on.endswith("<|end_header_id|>\n\n") and off == on + "<think>\n\n</think>\n\n"
    # `<think>` is plain text here, not a special token
    assert len(loaded.tokenizer("<think>", add_special_tokens=False)["input_ids"]) > 1


def test_nemotron_never_shows_reasoning_even_in_the_last_turn(load):
    loaded = load("nemotron-super-49b-v1.5")
    (plan,) = plan_turns(loaded.tokenizer, THINKING, family("nemotron-v1.5"), family("nemotron-v1.5").on)
    assert plan.template_render == "same but for: hidden reasoning (format unverified)"


def test_qwen3_thinking_2507_with_no_reasoning_closes_the_opened_block_untrained(load):
    loaded = load("qwen3-4b-thinking-2507")
    fam = family("qwen3-thinking-2507")
    result = preprocess(loaded.tokenizer, conversation.fixture("single_turn"), fam, Think.ON)
    (sample,) = result.samples
    (plan,) = result.plans
    assert plan.prompt.endswith("<|im_start|>assistant\n<think>\n")
    assert [(p.kind, p.text) for p in plan.pieces][0] == ("empty_think", "</think>\n\n")
    trained = [t for t, m in zip(sample.input_ids, sample.loss_mask, strict=True) if m]
    assert loaded.tokenizer.decode(trained) == plan.generated == "The capital of France is Paris.<|im_end|>"


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"think": "<think>{reasoning}</think>"}, "'\\n"),  # the template writes `<think>\n{r}\n</think>\n\n`
        # the rules claim the template hides reasoning it shows, in another format: a hidden claim covers no
        # wrong format (where the template shows it just as the rules write it, the sample is right: see below)
        ({"hidden": True, "think": "<think>{reasoning}</think>"}, ""),
    ],
    ids=["wrong-think-format", "wrong-hidden-claim"],
)
def test_rules_that_disagree_with_the_template_fail_the_cell(change: dict, where: str, load):
    """Negative control for invariant 7: rules that misplace reasoning never pass silently."""
    import dataclasses

    from chat_template_harness.contract.invariants import Invariant, check_samples

    loaded = load("qwen3-8b")
    fam = family("qwen3")
    on = dataclasses.replace(fam.on, think=change.get("think", fam.on.think))
    fam = dataclasses.replace(fam, on=on, template_shows_final_reasoning=not change.get("hidden", False))
    result = preprocess(loaded.tokenizer, THINKING, fam, Think.ON)
    assert result.plans[-1].disagrees
    violations = check_samples(loaded.tokenizer, result.plans, result.samples)
    (oracle,) = [v for v in violations if v.invariant is Invariant.TEMPLATE]
    assert "the rules and the template disagree here" in oracle.detail and where in oracle.detail


def test_a_hidden_claim_passes_where_the_template_shows_reasoning_as_the_rules_write_it(load):
    """Kimi-K2-Thinking's template hides a first turn's reasoning and shows a later one's: where it shows it exactly
    as the rules write it, the sample is the template's own."""
    import dataclasses

    loaded = load("qwen3-8b")
    fam = dataclasses.replace(family("qwen3"), template_shows_final_reasoning=False)
    result = preprocess(loaded.tokenizer, THINKING, fam, Think.ON)
    assert not result.plans[-1].disagrees and result.plans[-1].template_render == "same"
