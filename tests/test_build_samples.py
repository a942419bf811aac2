"""build_samples, the public library: the reference's samples, rows for `datasets`, TRL's pre-tokenized path.

Every claim has its negative control: a wrong sample fails the same checks (labels, truncation, the invariants),
an undecided template raises where a decided one does not, a broken row is counted where a good one is kept.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, event, given, settings

import chat_template_harness as cth
from chat_template_harness.build import DROPPED, IGNORE_INDEX, TrainingSample
from chat_template_harness.cells import model as cellmodel
from chat_template_harness.contract import conversation
from chat_template_harness.contract.invariants import check_samples
from chat_template_harness.contract.sample import CellNotApplicable, Policy, preprocess
from chat_template_harness.errors import FixtureError, HarnessError
from chat_template_harness.external import load_callable
from chat_template_harness.models import source
from chat_template_harness.models.rules import NotApplicable, Think
from chat_template_harness.models.rules.registry import family
from chat_template_harness.serving import served
from tests.helpers import check_cell
from tests.helpers import fixture_json as _messages
from tests.strategies import conversations

BUILD = "chat_template_harness.build:preprocess"
REFERENCE = "chat_template_harness.examples.reference:preprocess"


def _reference(loaded, data, think: Think, policy: Policy = Policy.ALL):
    conv = conversation.parse(data, name="x", source="test")
    fam = family(loaded.spec.family)
    server = served.for_conversation("transformers", loaded.tokenizer, fam, think, conv)
    return preprocess(loaded.tokenizer, conv, fam, think, policy, server)


# --- the function -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "think", "fixture"),
    [
        ("qwen3-8b", "on", "reasoning_every_turn"),
        ("llama-3.1-8b", "off", "tool_call"),
        ("gpt-oss-20b", "on", "multi_turn"),
    ],
    ids=lambda v: str(v),
)
def test_the_samples_are_the_references_with_labels(model, think, fixture, load):
    loaded = load(model)
    data = _messages(fixture)
    samples = cth.build_samples(loaded.tokenizer, data, think=think)
    ref = _reference(loaded, data, Think(think))
    assert [(s.input_ids, s.loss_mask) for s in samples] == [(s.input_ids, s.loss_mask) for s in ref.samples]
    for s in samples:
        assert s.labels == tuple(i if m else IGNORE_INDEX for i, m in zip(s.input_ids, s.loss_mask, strict=True))
    assert check_samples(loaded.tokenizer, ref.plans, samples) == []
    assert [t.turn for t in samples.report] == [p.turn for p in ref.plans]
    assert all(t.status == "trained" for t in samples.report)


def test_a_wrong_label_id_fails_the_same_check(load):
    """Negative control: the check reads the labels, so a label that is not the input id there fails."""
    loaded = load("qwen3-8b")
    data = _messages("single_turn")
    (good,) = cth.build_samples(loaded.tokenizer, data, think="off")
    at = good.loss_mask.index(1)
    bad = TrainingSample(
        good.input_ids, (*good.labels[:at], good.labels[at] + 1, *good.labels[at + 1 :]), good.loss_mask, good.turns
    )
    assert check_samples(loaded.tokenizer, _reference(loaded, data, Think.OFF).plans, [bad])


def test_names_and_loaded_tokenizers_give_the_same_samples(load):
    by_name = cth.build_samples("qwen3-8b", _messages("multi_turn"), think="on")
    by_object = cth.build_samples(load("qwen3-8b").tokenizer, _messages("multi_turn"), think=True)
    assert [s.input_ids for s in by_name] == [s.input_ids for s in by_object]


def test_policy_last_trains_only_the_final_turn(load):
    samples = cth.build_samples(load("llama-3.1-8b").tokenizer, _messages("multi_turn"), think="off", policy="last")
    assert len(samples) == 1 and [t.status for t in samples.report] == ["not trained: policy last"] * 2 + ["trained"]


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"think": None}, "two think modes"),
        ({"think": "maybe"}, "think='maybe'"),
        ({"policy": "some"}, "policy='some'"),
        ({"served_by": "nginx"}, "unknown server"),
    ],
    ids=["think-needed", "bad-think", "bad-policy", "bad-server"],
)
def test_bad_options_are_one_line_with_the_fix(kwargs, error, load):
    with pytest.raises(HarnessError, match=error) as info:
        cth.build_samples(load("qwen3-8b").tokenizer, _messages("single_turn"), **{"think": "on", **kwargs})
    assert "; fix: " in str(info.value)


def test_bad_input_and_na_cells_raise_the_harness_errors(load):
    tok = load("qwen3-8b").tokenizer
    with pytest.raises(FixtureError, match="ends with a 'user' message"):
        cth.build_samples(tok, [{"role": "user", "content": "hi"}], think="on")
    with pytest.raises(CellNotApplicable, match="no off switch"):
        cth.build_samples(load("qwq-32b").tokenizer, _messages("single_turn"), think="off")


def test_a_model_with_one_mode_needs_no_think(load):
    assert cth.build_samples(load("qwq-32b").tokenizer, _messages("single_turn"))[-1].loss_mask.count(1) > 0


# --- rules for any tokenizer ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fresh_qwen3(pack_dir):
    """Qwen3's tokenizer loaded by a user, then moved out of its folder's name: no registered model matches it."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(pack_dir / "Qwen--Qwen3-8B"))
    tok.name_or_path = "my-own-model"
    return tok


@pytest.fixture(scope="module")
def saved_with(fresh_qwen3, tmp_path_factory):
    """`saved_with(template)`: the fresh tokenizer saved with `template` and loaded from there, so its files hold the
    template (as a server's would); one folder per template."""
    import copy

    from transformers import AutoTokenizer

    made: dict[str, object] = {}

    def saved(template: str):
        if template not in made:
            tok = copy.deepcopy(fresh_qwen3)
            tok.chat_template = template
            folder = tmp_path_factory.mktemp("own-template")
            tok.save_pretrained(folder)
            made[template] = AutoTokenizer.from_pretrained(str(folder))
        return made[template]

    return saved


def test_an_unregistered_tokenizer_gets_rules_derived_from_its_template(fresh_qwen3, load):
    derived = cth.build_samples(fresh_qwen3, _messages("reasoning_last_turn"), think="on")
    builtin = cth.build_samples(load("qwen3-8b").tokenizer, _messages("reasoning_last_turn"), think="on")
    assert [s.input_ids for s in derived] == [s.input_ids for s in builtin]
    assert [s.loss_mask for s in derived] == [s.loss_mask for s in builtin]


# ChatML that prints each tool call's id and each result's tool_call_id (as Kimi K2's and Mistral's templates do)
PRINTS_IDS = (
    "{%- for m in messages %}<|im_start|>{{ m.role }}\n"
    "{% if m.role == 'tool' %}[result of {{ m.tool_call_id }}] {% endif %}{{ m.content }}"
    "{%- for c in m.tool_calls or [] %}<tool_call>{{ c.id }} {{ c.function.name }} {{ c.function.arguments | tojson }}</tool_call>{% endfor %}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.mark.parametrize("with_ids", [True, False])
def test_tool_call_ids_in_the_data_are_rendered_as_the_template_prints_them(saved_with, with_ids):
    """A template that prints ids serves them: the sample's prompt holds the data's ids (they were dropped, and the
    prompt then differed from the served one). The control: data without ids gives a prompt without them."""
    tokenizer = saved_with(PRINTS_IDS)
    data = _messages("tool_call")
    if with_ids:
        data["messages"][1]["tool_calls"][0]["id"] = "call_7Q2"
        data["messages"][2]["tool_call_id"] = "call_7Q2"
    (sample,) = cth.build_samples(tokenizer, data["messages"], tools=data["tools"], policy="last")
    served = tokenizer.apply_chat_template(
        data["messages"][:3], tools=data["tools"], tokenize=False, add_generation_prompt=True
    )
    text = tokenizer.decode(sample.input_ids)
    assert text.startswith(served) and ("call_7Q2 get_weather" in text and "[result of call_7Q2]" in text) == with_ids
    assert conversation.parse(data["messages"], name="x", source="t").messages[1].tool_calls[0].id == (
        "call_7Q2" if with_ids else None
    )


# Kimi K2's way: a message's `name`, where it has one, is its role header
PRINTS_NAMES = (
    "{%- for m in messages %}<|im_start|>{{ m.name or m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.mark.parametrize("with_name", [True, False])
def test_a_speakers_name_in_the_data_is_rendered_as_the_template_prints_it(saved_with, with_name):
    """A user's `name` was dropped when a conversation was read: for a template that prints it, the sample's prompt
    was not the one served. The control: data without a name gives the plain role header."""
    tokenizer = saved_with(PRINTS_NAMES)
    data = _messages("multi_turn")["messages"]
    if with_name:
        data[1]["name"] = "ada"  # the first user message
    samples = cth.build_samples(tokenizer, data, policy="last")
    served = tokenizer.apply_chat_template(data[:-1], tokenize=False, add_generation_prompt=True)
    text = tokenizer.decode(samples[-1].input_ids)
    assert text.startswith(served) and ("<|im_start|>ada\nWhat is 12 times 7?" in text) == with_name


def test_a_reply_whose_name_the_template_writes_in_its_header_is_one_clear_error(saved_with):
    """The served prompt is written before the model answers, without the reply's name: a template that writes the
    name in the reply's header (Kimi K2's) cannot give that turn's finished render after the served prompt. One
    error names the field to drop, not a rules file to update."""
    from chat_template_harness.errors import TemplateDriftError

    tokenizer = saved_with(PRINTS_NAMES)
    data = _messages("single_turn")["messages"]
    data[-1]["name"] = "bot"
    with pytest.raises(TemplateDriftError, match="writes this reply's name 'bot' in its turn header.*drop `name`"):
        cth.build_samples(tokenizer, data)


def test_a_tool_call_id_that_is_not_a_string_is_one_clear_error():
    data = _messages("tool_call")
    data["messages"][1]["tool_calls"][0]["id"] = 7
    with pytest.raises(FixtureError, match="has a id of type int; fix: give `id` as a string"):
        conversation.parse(data["messages"], name="x", source="t")
    data["messages"][0]["name"] = ["ada"]
    with pytest.raises(FixtureError, match="message 0 has a name of type list; fix: give `name` as a string"):
        conversation.parse(data["messages"], name="x", source="t")


@pytest.mark.parametrize(
    ("template", "rule"),
    [
        (
            "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}assistant: {% endif %}",
            "stop_tokens",
        ),
    ],
    ids=["no-stop-token"],
)
def test_an_undecided_rule_raises_with_the_config_line(template, rule, saved_with):
    tok = saved_with(template)
    with pytest.raises(cth.UndecidedRule) as info:
        cth.build_samples(tok, _messages("single_turn"), think="off")
    assert info.value.rule == rule and info.value.config_line.split(" ")[0].lstrip("[").startswith(rule.split(".")[0])
    assert f"write `{info.value.config_line}`" in str(info.value)


def test_a_template_that_renders_nothing_is_one_clear_error_not_an_undecided_rule(saved_with):
    """Nothing to read a rule from is an error of the template (its one line and fix), not a question a config line
    answers."""
    from chat_template_harness.errors import TemplateDriftError

    tok = saved_with("{{ raise_exception('this template renders nothing') }}")
    with pytest.raises(TemplateDriftError, match="renders no plain user/assistant exchange") as info:
        cth.build_samples(tok, _messages("single_turn"), think="off")
    assert not isinstance(info.value, cth.UndecidedRule) and info.value.fix


QWEN3_THINK = "'\\n<think>\\n' + reasoning_content.strip('\\n') + '\\n</think>\\n\\n'"


def test_a_template_that_disagrees_with_its_rules_raises(load, saved_with):
    """Qwen3's tokenizer with its reasoning written `<think>…</think>` (no newlines), saved with it: the built-in
    rules' format is no longer the template's. The reference plans it without a word; build_samples asks the oracle
    and refuses."""
    from chat_template_harness.errors import TemplateDriftError

    real = load("qwen3-8b").tokenizer.chat_template
    assert real.count(QWEN3_THINK) == 1
    tok = saved_with(real.replace(QWEN3_THINK, "'\\n<think>' + reasoning_content.strip('\\n') + '</think>'"))
    data = _messages("reasoning_last_turn")
    with pytest.raises(TemplateDriftError, match="the rules and the template disagree"):
        cth.build_samples(tok, data, think="on", model="qwen3-8b")
    # negative control: the real template builds
    assert cth.build_samples(saved_with(real), data, think="on", model="qwen3-8b")


def test_a_sample_builder_whose_tokenizer_template_was_changed_raises_not_drops(load):
    """A template set on the tokenizer after the builder was made is the tokenizer's fault, not each row's: the map
    stops with the one error and its fix, instead of dropping every row under a render reason that is not so."""
    import copy

    from chat_template_harness import TemplateChangedError

    tok = copy.deepcopy(load("qwen3-8b").tokenizer)
    builder = cth.sample_builder(tok, think="off")
    batch = {"messages": [_messages("single_turn")["messages"]]}
    assert builder(batch)["input_ids"]  # the control: as loaded, the row builds
    tok.chat_template = tok.chat_template.replace("<think>", "<thinking>")
    with pytest.raises(TemplateChangedError):
        builder(batch)
    assert not builder.dropped


# Qwen3's template with every past turn's reasoning kept (what a prefix-preserving training template does, TRL's
# `get_training_chat_template` among them): a server given Qwen3's own template drops it
QWEN3_STRIPS = "loop.index0 > ns.last_query_index"


@pytest.mark.parametrize("how", ["set", "saved"])
def test_a_template_set_on_the_tokenizer_after_loading_is_refused(load, saved_with, how):
    """The served prompt is rendered with the tokenizer's template, and a server renders the one its files hold: a
    template set in memory since (a training template) would put turn 1's reasoning into turn 2's prompt, which the
    served model never sees. Nothing is built on it; one error names the fix. The controls: the same template
    saved with the tokenizer (the user says it is served) builds, and keeps that reasoning, as its render does."""
    import copy

    from chat_template_harness import TemplateChangedError

    real = load("qwen3-8b").tokenizer.chat_template
    assert real.count(QWEN3_STRIPS) == 1
    keeps = real.replace(QWEN3_STRIPS, "true")
    data = _messages("reasoning_every_turn")
    if how == "set":
        tok = copy.deepcopy(load("qwen3-8b").tokenizer)
        tok.chat_template = keeps
        with pytest.raises(TemplateChangedError, match="changed after loading.*fix: build the samples with the tok"):
            cth.build_samples(tok, data, think="on")
        tok.chat_template = real  # set back: it is the files' template again
        assert cth.build_samples(tok, data, think="on")
    else:
        samples = cth.build_samples(saved_with(keeps), data, think="on", model="qwen3-8b")
        first = data["messages"][1]["reasoning_content"]
        assert first and first in saved_with(keeps).decode(samples[-1].input_ids)


# --- max_length ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("model", "think"), [("llama-3.1-8b", "off"), ("qwen3-8b", "on")], ids=["shared", "split"])
def test_max_length_drops_whole_turns_and_counts_them(model, think, load):
    loaded = load(model)
    data = _messages("long_conversation")
    full = cth.build_samples(loaded.tokenizer, data, think=think)
    ref = _reference(loaded, data, Think(think))
    # each turn's own sample (its served prompt and reply): a limit between the shortest and the longest
    own = {p.turn: len(loaded.tokenizer.encode(p.text, add_special_tokens=False)) for p in ref.plans}
    limit = sorted(own.values())[len(own) // 2]
    cut = cth.build_samples(loaded.tokenizer, data, think=think, max_length=limit)
    assert all(s.length <= limit for s in cut)
    assert cut.dropped_turns == sum(n > limit for n in own.values()) > 0
    assert {t.turn for t in cut.report if t.status == DROPPED} == {t for t, n in own.items() if n > limit}
    kept = [t.turn for t in cut.report if t.status == "trained"]
    assert check_samples(loaded.tokenizer, ref.plans, cut, required_turns=kept) == []
    # every kept sample is the start of the full one: nothing cut inside a reply
    assert all(any(f.input_ids[: s.length] == s.input_ids for f in full) for s in cut)
    assert cth.build_samples(loaded.tokenizer, data, think=think, max_length=None).dropped_turns == 0


def test_a_naive_cut_at_max_length_fails_the_check(load):
    """Negative control: what cutting at max_length does (TRL's `keep_start`) trains a reply without its stop."""
    loaded = load("qwen3-8b")
    data = _messages("single_turn")
    (s,) = cth.build_samples(loaded.tokenizer, data, think="off")
    n = s.length - 2
    cut = TrainingSample(s.input_ids[:n], s.labels[:n], s.loss_mask[:n], s.turns)
    assert check_samples(loaded.tokenizer, _reference(loaded, data, Think.OFF).plans, [cut])


# --- datasets ------------------------------------------------------------------------------------------------------


def _rows(shape: str, data: dict) -> dict:
    msgs = data["messages"]
    if shape == "sharegpt":
        speaker = {"user": "human", "assistant": "gpt", "system": "system", "tool": "tool"}
        return {
            "conversations": [
                {
                    "from": speaker[m["role"]],
                    "value": m["content"],
                    **{k: v for k, v in m.items() if k not in ("role", "content")},
                }
                for m in msgs
            ]
        }
    if shape == "parts":
        return {"messages": [{**m, "content": [{"type": "text", "text": m["content"]}]} for m in msgs]}
    if shape == "inline":
        return {
            "messages": [
                {"role": m["role"], "content": f"<think>\n{m['reasoning_content']}\n</think>\n\n{m['content']}"}
                if m.get("reasoning_content")
                else m
                for m in msgs
            ]
        }
    return {"messages": msgs}


def test_the_batch_form_reads_every_row_shape_and_counts_what_it_drops(load):
    datasets = pytest.importorskip("datasets")
    tok = load("qwen3-8b").tokenizer
    data = _messages("reasoning_every_turn")
    shapes = ["messages", "sharegpt", "parts", "inline"]
    lines = [json.dumps(_rows(s, data)) for s in shapes]
    lines += [
        '{"messages": [',
        json.dumps({"messages": [{"role": "user", "content": "hi"}]}),
        json.dumps({"messages": [{"role": "bot", "content": "hi"}]}),
    ]
    ds = datasets.Dataset.from_dict({"json": lines})
    builder = cth.sample_builder(tok, think="on")
    out = ds.map(builder, batched=True, batch_size=3, with_indices=True, remove_columns=ds.column_names)
    expected = [s.as_row() for s in cth.build_samples(tok, data, think="on")]
    per_row = len(expected)
    assert out.num_rows == per_row * len(shapes)
    for i in range(len(shapes)):
        assert out[i * per_row : (i + 1) * per_row]["input_ids"] == [e["input_ids"] for e in expected], shapes[i]
    assert sorted(set(range(len(lines))) - set(out["cth_row"])) == [4, 5, 6]  # exactly the broken rows
    assert builder.dropped == {"malformed JSON text": 1, "a row the harness cannot read": 2}
    assert (
        "3 rows dropped" not in builder.summary()
        and "2 rows dropped: a row the harness cannot read" in builder.summary()
    )


def test_reasoning_a_mode_drops_is_counted_in_the_summary(load):
    tok = load("qwen3-8b").tokenizer
    data = _messages("reasoning_every_turn")
    with_reasoning = sum(bool(m.get("reasoning_content")) for m in data["messages"])
    off, on = cth.sample_builder(tok, think="off"), cth.sample_builder(tok, think="on")
    for builder in (off, on):
        builder({"messages": [data["messages"]]})
    assert off.reasoning_dropped == with_reasoning > 0 and f"{with_reasoning} turns' reasoning dropped" in off.summary()
    assert on.reasoning_dropped == 0 and "reasoning" not in on.summary()  # negative control: think-on keeps it


def test_columnar_rows_with_nulls_read_as_the_json_they_came_from(load):
    datasets = pytest.importorskip("datasets")
    tok = load("llama-3.1-8b").tokenizer
    data = _messages("tool_call")
    ds = datasets.Dataset.from_list(
        [data, _messages("multi_turn") | {"tools": None}]
    )  # one schema: nulls fill the gaps
    out = ds.map(cth.sample_builder(tok, think="off"), batched=True, remove_columns=ds.column_names)
    assert out["input_ids"][: len(cth.build_samples(tok, data, think="off"))] == [
        list(s.input_ids) for s in cth.build_samples(tok, data, think="off")
    ]


def test_a_pinned_tokenizer_travels_by_name_and_any_other_by_value(load, fresh_qwen3):
    """What `datasets` hashes for every map (and sends to num_proc workers): a name, not the vocabulary."""
    import pickle

    pinned = cth.sample_builder(load("qwen3-8b").tokenizer, think="off", max_length=64)
    again = pickle.loads(pickle.dumps(pinned))
    assert len(pickle.dumps(pinned)) < 10_000 and again.tokenizer is pinned.tokenizer and again.max_length == 64
    assert len(pickle.dumps(cth.sample_builder(fresh_qwen3, think="off"))) > 1_000_000  # a user's own object


# --- TRL's own data path -------------------------------------------------------------------------------------------


def _tiny_model(vocab: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
    )
    return LlamaForCausalLM(config)


def _trainer(tok, train, tmp_path, **config):
    from trl import SFTConfig, SFTTrainer

    args = SFTConfig(output_dir=str(tmp_path), report_to=[], use_cpu=True, save_strategy="no", **config)
    return SFTTrainer(model=_tiny_model(len(tok)), args=args, train_dataset=train, processing_class=tok)


@pytest.fixture(scope="module")
def trl_rows(pack_dir):
    datasets = pytest.importorskip("datasets")
    tok = source.load("qwen3-8b").tokenizer
    ds = datasets.Dataset.from_dict(
        {"json": [json.dumps(_messages(f)) for f in ("multi_turn", "long_conversation", "tool_call")]}
    )
    return tok, ds.map(cth.sample_builder(tok, think="off", max_length=256), batched=True, remove_columns=["json"])


@pytest.mark.trl
@pytest.mark.torch
def test_sft_trainer_takes_the_samples_as_they_are(trl_rows, tmp_path):
    tok, train = trl_rows
    prepared = _trainer(tok, train, tmp_path, max_length=256).train_dataset
    assert prepared["input_ids"] == train["input_ids"] and prepared["labels"] == train["labels"]


@pytest.mark.trl
@pytest.mark.torch
def test_sft_trainer_cuts_samples_longer_than_its_max_length(trl_rows, tmp_path):
    """Negative control: TRL's own max_length (default 1024) cuts inside replies where build_samples' is larger."""
    tok, train = trl_rows
    prepared = _trainer(tok, train, tmp_path, max_length=64).train_dataset
    assert prepared["labels"] != train["labels"]


@pytest.mark.trl
@pytest.mark.torch
def test_packing_keeps_every_sample_whole(trl_rows, tmp_path):
    tok, train = trl_rows
    prepared = _trainer(tok, train, tmp_path, max_length=256, packing=True, padding_free=True).train_dataset
    assert sorted(n for row in prepared["seq_lengths"] for n in row) == sorted(train["length"])


def _snippet() -> str:
    from pathlib import Path

    page = (Path(__file__).resolve().parents[1] / "docs" / "build-samples.md").read_text("utf-8")
    return page.split("<!-- trl -->")[1].split("```python")[1].split("```")[0].strip()


def test_the_docs_snippet_is_five_lines_at_most():
    lines = _snippet().splitlines()
    assert len(lines) <= 5
    assert any("sample_builder(" in line for line in lines) and any("SFTTrainer(" in line for line in lines)


@pytest.mark.smoke
@pytest.mark.trl
@pytest.mark.torch
def test_the_docs_snippet_trains(pack_dir, tmp_path, monkeypatch):
    """The five lines of docs/build-samples.md on a tiny model, on CPU, one step (the only changes: the CPU flags, as
    SFTConfig defaults to bf16 on an accelerator, and max_steps): TRL trains on the samples as they are."""
    import datasets
    import torch

    tok = source.load("qwen3-8b").tokenizer
    ds = datasets.Dataset.from_list([{"messages": _messages("multi_turn")["messages"]}])
    monkeypatch.chdir(tmp_path)  # the trainer's default output folder
    scope = {"tokenizer": tok, "ds": ds, "model": _tiny_model(len(tok))}
    code = _snippet().replace("SFTConfig(", "SFTConfig(use_cpu=True, bf16=False, report_to=[], max_steps=1, ")
    assert code != _snippet()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: more threads than cores only contend
    try:
        exec(code, scope)  # noqa: S102 - the documented snippet itself
    finally:
        torch.set_num_threads(threads)
    assert scope["train"]["labels"] == [
        list(s.labels) for s in cth.build_samples(tok, _messages("multi_turn"), think="off")
    ]


# --- proof: `cth check` and the invariants -------------------------------------------------------------------------

CELLS = [
    "qwen3-8b/think-on/reasoning_every_turn",
    "qwen3-8b/think-off/whitespace_edges",
    "qwq-32b/think-on/multi_turn",
    "llama-3.2-3b/think-off/tool_call",
    "deepseek-r1/think-on/reasoning_last_turn",
    "deepseek-v3.1/think-off/reasoning_every_turn",
    "gpt-oss-20b/think-on/tool_call",
    "gemma-3-4b/think-off/special_token_lookalikes",
    "nemotron-super-49b-v1.5/think-off/with_system",
    "mistral-large-2411/think-off/cjk_emoji",
]


def _cells(ids=None):
    return [c for c in cellmodel.cells() if ids is None or c.id in ids]


@pytest.mark.parametrize("cell", _cells(CELLS), ids=lambda c: c.id)
def test_cth_check_passes_build_samples_where_the_reference_passes(cell):
    ours = check_cell(load_callable(BUILD), cell)
    assert (ours.status, ours.reason) == (check_cell(load_callable(REFERENCE), cell).status, "")


@pytest.mark.slow
@pytest.mark.parametrize("cell", _cells(), ids=lambda c: c.id)
def test_cth_check_on_the_whole_matrix(cell):
    ours, ref = check_cell(load_callable(BUILD), cell), check_cell(load_callable(REFERENCE), cell)
    assert ours.status == ref.status, ours.reason


PAIRS = [
    (m, t)
    for m, spec in source.builtin_registry().items()
    for t in Think
    if not isinstance(family(spec.family).mode(t), NotApplicable)
]
# a few examples per pair here; `HYPOTHESIS_PROFILE=fuzz` runs the profile's count
EXAMPLES = {} if os.environ.get("HYPOTHESIS_PROFILE", "default") != "default" else {"max_examples": 2}


@pytest.mark.property
@pytest.mark.parametrize(("model", "think"), PAIRS, ids=[f"{m}/think-{t}" for m, t in PAIRS])
@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much], deadline=None, **EXAMPLES)
@given(data=conversations())
def test_build_samples_obeys_the_invariants_on_random_conversations(model, think, data, load):
    loaded = load(model)
    try:
        samples = cth.build_samples(loaded.tokenizer, data, think=str(think), model=model)
    except (FixtureError, CellNotApplicable):
        event("rejected as input, or n/a")
        return
    except HarnessError as error:  # the template cannot render it: the reference says the same
        with pytest.raises(HarnessError):
            _reference(loaded, data, think)
        event(f"not renderable: {type(error).__name__}")
        return
    ref = _reference(loaded, data, think)
    if not _round_trips(loaded.tokenizer, ref.samples[-1].text):
        event("text the tokenizer cannot give back")  # see tests/test_properties.py
        return
    event("checked")
    assert check_samples(loaded.tokenizer, ref.plans, samples) == []


def _round_trips(tokenizer, text: str) -> bool:
    from chat_template_harness.contract.tokens import decode, encode, normalized

    return decode(tokenizer, encode(tokenizer, text)[0]) == normalized(tokenizer, text)


# --- the package stays light ---------------------------------------------------------------------------------------


def test_the_public_names_load_lazily():
    code = (
        "import sys, chat_template_harness as c; assert 'transformers' not in sys.modules;"
        "assert 'chat_template_harness.build' not in sys.modules; c.build_samples; c.sample_builder; c.UndecidedRule;"
        "print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ)
    assert out.stdout.strip() == "ok", out.stderr
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        cth.nope  # noqa: B018
