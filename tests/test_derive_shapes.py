"""Classes of template derive used to refuse although the template decides the rules (issue 31, the corpus's
refused cells), each as a tiny template on a pack tokenizer, with a negative control that must stay refused.

- text after the conversation's last message that belongs to no turn: the eos written only where no generation
  prompt is asked for (Metharme), or the next assistant header written after every conversation, generation prompt
  or not (Command R7B's tool-use template);
- reasoning read from typed blocks of the content (Apertus's `thoughts` block, Mistral's `thinking` chunk), one of
  the forms data/reasoning_forms.toml declares, instead of from a message field.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from chat_template_harness.cells import model as cellmodel
from chat_template_harness.contract import conversation
from chat_template_harness.contract.sample import CellUndecided, preprocess
from chat_template_harness.errors import TemplateDriftError
from chat_template_harness.models import source
from chat_template_harness.models.rules import Family, Think, derive
from chat_template_harness.models.rules.registry import generation_config
from tests.helpers import run_cells

PACK = source.tokenizers_dir_from_env
TURNS = "{%- for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}{% if m.role != 'assistant' %}<|im_end|>{% endif %}{% endfor %}"


ADDED = ("<|think|>", "<|/think|>", "<|thought|>", "<|/thought|>", "<|nothought|>")


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The pack's Qwen3 tokenizer with the tokens these templates write added, saved once."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(PACK() / "Qwen--Qwen3-8B")
    tok.add_special_tokens({"additional_special_tokens": list(ADDED)})
    folder = tmp_path_factory.mktemp("shapes") / "base"
    tok.save_pretrained(folder)
    return folder


def _folder(base: Path, root: Path, name: str, template: str) -> Path:
    shutil.copytree(base, root / name)
    (root / name / "chat_template.jinja").write_text(template, "utf-8")
    return root / name


def _derived(folder: Path) -> tuple[object, derive.Derivation]:
    """(the tokenizer, its derivation)."""
    loaded = source.load(str(folder))
    eos = derive.eos_tokens(loaded.tokenizer, generation_config(loaded.spec, loaded.tokenizer))
    return loaded.tokenizer, derive.derive(loaded.tokenizer, folder.name, eos)


def _trained(tokenizer: object, family: Family, fixture: str, think: Think) -> tuple[str, str]:
    """(the served prompt, the trained span) of the fixture's last turn."""
    plan = preprocess(tokenizer, conversation.load(fixture), family, think).plans[-1]
    return plan.prompt, "".join(p.text for p in plan.pieces if p.kind.trained)


def _statuses(folder: Path, think: Think, fixtures: list[str]) -> list[str]:
    return [r.status.name for r in run_cells(cellmodel.cells([str(folder)], [think], fixtures))]


# --- text after the last message ----------------------------------------------------------------------------------

# Metharme: no end of turn between turns; the eos only after the conversation's last message, and only where no
# generation prompt is asked for (the served prompt then ends with the assistant header, no eos)
EOS_AT_END = TURNS + "{% if add_generation_prompt %}<|im_start|>assistant\n{% else %}{{ eos_token }}{% endif %}"
# Command R7B tool use: the next assistant header and an empty think pair after every conversation
HEADER_ALWAYS = (
    "{%- for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>{% endfor %}"
    "<|im_start|>assistant\n<|think|><|/think|>"
)


@pytest.mark.parametrize(
    ("template", "end", "opener", "trailer"),
    [
        (EOS_AT_END, "<|im_end|>", "", ""),
        (HEADER_ALWAYS, "<|think|><|/think|>", "<|think|><|/think|>", "<|im_start|>assistant\n<|think|><|/think|>"),
    ],
    ids=["eos-without-generation-prompt", "header-after-every-conversation"],
)
def test_text_after_the_last_message_is_read_as_no_turns_own(template, end, opener, trailer, base, tmp_path):
    folder = _folder(base, tmp_path, "end", template)
    tokenizer, found = _derived(folder)
    assert [f.value for f in found.findings if f.rule == "think.off.end"] == [end]  # said, with the renders
    family = found.family
    assert family.stop_tokens == ("<|im_end|>",) and family.trailer == trailer and not family.undecided
    assert family.off.opener == opener
    prompt, trained = _trained(tokenizer, family, "single_turn", Think.OFF)
    assert prompt.endswith("<|im_start|>assistant\n" + opener)
    assert trained == conversation.load("single_turn").messages[-1].content + "<|im_end|>"
    assert set(_statuses(folder, Think.OFF, ["single_turn", "multi_turn"])) == {"PASS"}


def test_text_at_the_end_of_only_some_conversations_stays_refused(base, tmp_path):
    """Negative control: the eos written after a user message only (not after a reply) is no conversation end that
    every render shares: derive still refuses, in one line."""
    only_after_user = TURNS + (
        "{% if add_generation_prompt %}<|im_start|>assistant\n"
        "{% elif messages[-1].role == 'user' %}{{ eos_token }}{% endif %}"
    )
    folder = _folder(base, tmp_path, "some", only_after_user)
    with pytest.raises(TemplateDriftError, match="renders no plain user/assistant exchange"):
        _derived(folder)


# --- text only the served prompt writes before the conversation ----------------------------------------------------


# Muse Glimmer (vLLM's example): a default system turn written only with a generation prompt, so no finished render
# starts with the served prompt; `always` writes it in every render (the control the planner read before)
def _default_system(always: bool) -> str:
    when = "true" if always else "add_generation_prompt"
    return (
        "{%- if messages[0].role != 'system' and " + when + " %}<|im_start|>system\nBe helpful.<|im_end|>\n{% endif %}"
        "{%- for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
        "{%- if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )


@pytest.mark.parametrize("always", [False, True], ids=["only-with-generation-prompt", "always"])
def test_a_system_turn_only_the_served_prompt_writes_is_read_as_context(always, base, tmp_path):
    """The served prompt holds the default system turn; the finished turn, rendered without a generation prompt, does
    not. The turn is read off the finished render with that turn put where the prompt has it (the rest of both renders
    is the template's own): the answer is trained after the served prompt, and every cell passes. The planner refused
    such a template ("writes the turn header differently"); `always` is the control it read before."""
    folder = _folder(base, tmp_path, "system", _default_system(always))
    tokenizer, found = _derived(folder)
    assert not found.family.undecided
    prompt, trained = _trained(tokenizer, found.family, "single_turn", Think.OFF)
    assert prompt.startswith("<|im_start|>system\nBe helpful.") and prompt.endswith("<|im_start|>assistant\n")
    assert trained == conversation.load("single_turn").messages[-1].content + "<|im_end|>"
    assert set(_statuses(folder, Think.OFF, ["single_turn", "reasoning_every_turn", "tool_call"])) <= {"PASS", "NA"}
    assert "PASS" in _statuses(folder, Think.OFF, ["reasoning_every_turn"])


def _classifier(quotes: bool) -> str:
    """A guard model's shape (Llama Guard, Granite Guardian): the conversation is quoted inside one user turn that asks
    about its last message, then the assistant header; the control writes each turn as a chat does."""
    if not quotes:
        return (
            "{%- for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
            "{%- if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
        )
    return (
        "<|im_start|>user\nIs the {{ 'Agent' if messages[-1].role == 'assistant' else 'User' }} message safe?\n"
        "{%- for m in messages %}\n{{ m.role }}: {{ m.content }}{% endfor %}<|im_end|>\n<|im_start|>assistant\n"
    )


def test_a_classifier_that_quotes_the_reply_gets_no_stop_and_no_sample(base, tmp_path):
    """A template that quotes the final reply in a question about it, instead of writing it after the prompt it
    serves (a guard model's), shows no stop: derive leaves `stop_tokens` undecided (it had read one off the text
    after the quoted answer) and no cell is built; with rules written for another template the planner refuses with
    one error that names both causes. The control, a chat of the same markers, is derived and trained."""
    chat_tok, chat = _derived(_folder(base, tmp_path, "chat", _classifier(quotes=False)))
    guard_tok, guard = _derived(_folder(base, tmp_path, "guard", _classifier(quotes=True)))
    assert not chat.family.undecided and chat.family.stop_tokens == ("<|im_end|>",)
    assert _trained(chat_tok, chat.family, "single_turn", Think.OFF)[1].endswith("<|im_end|>")
    assert [u.rule for u in guard.family.undecided] == ["stop_tokens"] and not guard.family.stop_tokens
    assert "quotes the reply" in guard.family.undecided[0].question
    with pytest.raises(CellUndecided):
        _trained(guard_tok, guard.family, "single_turn", Think.OFF)
    with pytest.raises(TemplateDriftError) as refused:  # the chat's rules on the classifier's template
        _trained(guard_tok, chat.family, "single_turn", Think.OFF)
    assert "does not follow the prompt the template serves" in str(refused.value)
    assert "guard model" in refused.value.fix and "update it to match" in refused.value.fix


# --- reasoning from typed content blocks --------------------------------------------------------------------------

# a finished reply writes the switch too, so what the model writes after it is shown (test_derive.py: a switch the
# finished turn drops leaves the answer start undecided)
FINAL_SWITCH = (
    "{% if loop.last and m.role == 'assistant' and enable_thinking is defined and not enable_thinking %}<|nothought|>"
    "{% endif %}"
)
SWITCHED = "{% if add_generation_prompt %}<|im_start|>assistant\n{% if enable_thinking is defined and not enable_thinking %}<|nothought|>{% endif %}{% endif %}"


def _blocks(container: str, kind: str, field: str) -> str:
    """A ChatML template that renders an assistant's reasoning only from a content block of type `kind`."""
    blocks = f"m.content.{container}" if container else "m.content"
    return (
        "{%- for m in messages %}<|im_start|>{{ m.role }}\n"
        + FINAL_SWITCH
        + "{% if m.content is string %}{{ m.content }}{% else %}"
        "{% for b in " + blocks + " %}{% if b.type == '" + kind + "' %}<|thought|>{{ b." + field + " }}<|/thought|>"
        "{% else %}{{ b.text }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}" + SWITCHED
    )


@pytest.mark.parametrize(
    ("form", "template"),
    [
        ("blocks:thoughts", _blocks("blocks", "thoughts", "text")),
        # the same code path with a list for content: with the slow tests, to keep the default suite short
        pytest.param("chunks:thinking", _blocks("", "thinking", "thinking"), marks=pytest.mark.slow),
    ],
    ids=["blocks:thoughts", "chunks:thinking"],
)
def test_reasoning_read_from_a_content_block_is_derived_and_trained(form, template, base, tmp_path):
    folder = _folder(base, tmp_path, "blocks", template)
    tokenizer, found = _derived(folder)
    assert found.family.reasoning_field == form and not found.family.undecided
    assert found.family.on.think == "<|thought|>{reasoning}<|/thought|>"
    last = conversation.load("reasoning_last_turn").messages[-1]
    _, trained = _trained(tokenizer, found.family, "reasoning_last_turn", Think.ON)
    assert trained == f"<|thought|>{last.reasoning.strip()}<|/thought|>{last.content}<|im_end|>"
    assert set(_statuses(folder, Think.ON, ["reasoning_every_turn", "multi_turn"])) == {"PASS"}


def test_a_content_block_no_declared_form_names_stays_undecided(base, tmp_path):
    """Negative control: a block type no form in data/reasoning_forms.toml declares is never guessed."""
    folder = _folder(base, tmp_path, "other", _blocks("blocks", "musings", "text"))
    assert [u.rule for u in _derived(folder)[1].family.undecided] == ["reasoning_field"]


def test_a_content_form_goes_to_a_server_as_plain_fields_and_back_in_its_form():
    """A served prompt (`--served-by`) goes through an OpenAI-style request: reasoning in `reasoning_content`, the
    answer as a string; the template then reads it in the family's form again. Negative control: content in no
    form, or in another form, is not split."""
    from chat_template_harness.contract.render import template_messages
    from chat_template_harness.models.rules import NotApplicable, ThinkMode, content
    from chat_template_harness.serving import profiles

    family = Family(
        "f", "f", ("<|im_end|>",), ThinkMode(think="{reasoning}"), NotApplicable("-"), reasoning_field="blocks:thoughts"
    )
    msgs = template_messages(conversation.load("reasoning_every_turn"), family, family.on)
    request = profiles.to_request(msgs, family.reasoning_field)
    replies = [m for m in request if m["role"] == "assistant"]
    assert replies and all(isinstance(m["content"], str) and m["reasoning_content"] for m in replies)
    assert profiles.as_template_messages(request, family.reasoning_field) == msgs
    blocks, chunks = content.form("blocks:thoughts"), content.form("chunks:thinking")
    assert blocks is not None and chunks is not None
    assert blocks.split("plain") is None and chunks.split(blocks.content("r", "a")) is None
    assert blocks.split(blocks.content("r", "a")) == ("r", "a")


def test_a_server_sends_a_template_that_reads_parts_every_content_as_a_text_part():
    """`--served-by vllm|sglang` renders the server's request: for a parts family every string content goes to the
    template as one text part, as those servers send it (contract/render.py writes the sample's the same way).
    Control: a string family's request keeps its strings."""
    from chat_template_harness.serving import profiles

    request = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ok"}]
    parts = profiles.as_template_messages(request, "reasoning_content", "parts")
    assert [m["content"] for m in parts] == [[{"type": "text", "text": "hi"}], [{"type": "text", "text": "ok"}]]
    assert [m["content"] for m in profiles.as_template_messages(request, "reasoning_content")] == ["hi", "ok"]


@pytest.mark.parametrize(
    ("key", "typo", "value", "error"),
    [
        (
            "reasoning_field",
            "blocks:thought",
            "blocks:thoughts",
            "is no content form of .*reasoning_forms.toml .*thoughts",
        ),
        ("content_format", "part", "parts", "content_format 'part' is none of string, parts"),
    ],
)
def test_a_rules_file_naming_no_declared_form_is_one_error(key, typo, value, error, tmp_path):
    """A typo in a content form's name would hand reasoning to a field no template reads, and one in the content
    format would send strings to a template that writes none of them: refused, with the known values; the right
    value reads (control)."""
    from chat_template_harness.models.rules import files

    rules = f'name = "x"\ntitle = "x"\nstop_tokens = ["<|im_end|>"]\n{key} = "{{}}"\n'
    rules += '[think.on]\nthink = "{{reasoning}}"\n[think.off]\nnot_applicable = "-"\n'
    (tmp_path / "typo.toml").write_text(rules.format(typo), "utf-8")
    with pytest.raises(files.RulesError, match=error):
        files.read(tmp_path / "typo.toml")
    (tmp_path / "form.toml").write_text(rules.format(value), "utf-8")
    assert getattr(files.read(tmp_path / "form.toml"), key) == value


# --- content read only as typed parts (Idefics3, SmolVLM, LLaVA-Next) ---------------------------------------------

PARTS = (
    "{%- for m in messages %}<|im_start|>{{ m.role }}\n{% for p in m.content %}{% if p.type == 'text' %}{{ p.text }}"
    "{% endif %}{% endfor %}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.mark.parametrize(("template", "form"), [(PARTS, "parts"), (TURNS + "<|im_end|>", "string")])
def test_content_a_template_reads_only_as_typed_parts_is_sent_so(template, form, base, tmp_path):
    """A template that writes nothing of a string content (it loops over content parts) gets every content as one
    text part, as vLLM and SGLang send it; its samples then hold the conversation's text. Control: a template that
    writes a string content keeps strings."""
    folder = _folder(base, tmp_path, form, template)
    tokenizer, found = _derived(folder)
    assert found.family.content_format == form and not found.family.undecided
    if form == "string":
        return
    conv = conversation.load("multi_turn")
    prompt, trained = _trained(tokenizer, found.family, "multi_turn", Think.OFF)
    last_user = next(m for m in reversed(conv.messages) if m.role == "user")
    assert prompt.endswith(f"{last_user.content}<|im_end|>\n<|im_start|>assistant\n")
    assert trained == f"{conv.messages[-1].content}<|im_end|>"
    assert set(_statuses(folder, Think.OFF, ["multi_turn"])) == {"PASS"}


# --- reasoning shown only before a tool call (Gemma 4 as TRL ships it) ----------------------------------------------

THINK_SYSTEM = (
    "{% if enable_thinking is defined and enable_thinking %}<|im_start|>system\n<|think|><|im_end|>\n{% endif %}"
)


def _tool_thought(every_turn: bool) -> str:
    """Reasoning written in `<|thought|>` blocks on tool-call turns only (or, the control, on every reply too)."""
    shown = "m.reasoning_content" if every_turn else "m.tool_calls and m.reasoning_content"
    return (
        THINK_SYSTEM + "{%- for m in messages %}<|im_start|>{{ m.role }}\n"
        "{% if " + shown + " %}<|thought|>\n{{ m.reasoning_content }}\n<|/thought|>{% endif %}"
        "{% if m.tool_calls %}{% for c in m.tool_calls %}<tool_call>{{ c.function.name }}</tool_call>{% endfor %}"
        "{% else %}{{ m.content }}{% endif %}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )


@pytest.mark.parametrize("every_turn", [False, True], ids=["tool-call-only", "every-reply"])
def test_reasoning_shown_only_before_a_tool_call_is_asked_about_by_what_it_shows(every_turn, base, tmp_path):
    """A block only a tool-call turn writes, followed by the call, says nothing of what comes between its close and
    an answer: the format stays undecided, and the question quotes the block the template does write. Control: a
    template that writes the block before a reply too is decided."""
    found = _derived(_folder(base, tmp_path, "tool-thought", _tool_thought(every_turn)))[1].family
    asked = {u.rule: u.question for u in found.undecided}
    if every_turn:
        assert "think.on.think" not in asked and found.on.think == "<|thought|>\n{reasoning}\n<|/thought|>"
        return
    assert (
        "a tool-call turn writes the reasoning as '<|thought|>\\n{reasoning}\\n<|/thought|>'" in asked["think.on.think"]
    )


# --- a think-off prompt that leaves its block open (Baichuan-M2 as Xinference ships it) ----------------------------

OPEN_OFF = (
    "{%- for m in messages %}<|im_start|>{{ m.role }}\n{% if m.role == 'assistant' %}<think>\n\n</think>\n\n{% endif %}"
    "{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if thinking_mode is defined and thinking_mode == 'off' %}<think>\n\n{% else %}<think>\n{% endif %}{% endif %}"
)


def test_a_block_the_think_off_prompt_leaves_open_is_closed_by_the_model(base, tmp_path):
    """The think-off prompt ends `<think>\\n\\n` and the finished turn goes on `</think>\\n\\n4`: the model writes the
    close, so it is trained with the answer. Control: rules that call the whole block a marker the template writes
    (what derive read before) make a sample without the close, which the template's own turn disagrees with (the
    TEMPLATE invariant fails the cell; build_samples refuses)."""
    from dataclasses import replace

    tokenizer, found = _derived(_folder(base, tmp_path, "open-off", OPEN_OFF))
    family = found.family
    last = conversation.load("multi_turn").messages[-1]
    prompt, trained = _trained(tokenizer, family, "multi_turn", Think.OFF)
    assert prompt.endswith("<|im_start|>assistant\n<think>\n\n")
    assert trained == f"</think>\n\n{last.content}<|im_end|>"
    marker = replace(family.off, final_marker="<think>\n\n</think>\n\n")
    plan = preprocess(tokenizer, conversation.load("multi_turn"), replace(family, off=marker), Think.OFF).plans[-1]
    assert plan.disagrees and "</think>" not in plan.body


# --- a reply's own whitespace, then the next header as the stop (GLM-4.1V as Xinference ships it) -------------------


def _gap(every_turn: bool) -> str:
    """No end of turn: the next message's `<|im_start|>` stops the model; a reply is followed by a space in every
    render (or, the control, only where another message follows it)."""
    gap = "' '" if every_turn else "' ' if not loop.last else ''"
    return (
        "{%- for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}{% if m.role == 'assistant' %}{{ "
        + gap
        + " }}{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )


@pytest.mark.parametrize("every_turn", [True, False], ids=["own-whitespace", "history-only"])
def test_the_next_header_after_a_replys_own_whitespace_is_its_stop(every_turn, base, tmp_path):
    """A reply the template always ends with a space, followed in history by the next header (an eos): the model
    writes the space, then stops on the header. Control: a space written only before a following message is not
    the reply's own, so the stop stays undecided."""
    import json

    folder = _folder(base, tmp_path, "gap", _gap(every_turn))
    added = {t["content"]: t["id"] for t in json.loads((folder / "tokenizer.json").read_text("utf-8"))["added_tokens"]}
    ids = [added["<|im_start|>"], added["<|im_end|>"]]  # read off the saved folder: no second tokenizer load
    (folder / "generation_config.json").write_text(json.dumps({"eos_token_id": ids}), "utf-8")
    tokenizer, found = _derived(folder)
    if not every_turn:
        assert [u.rule for u in found.family.undecided] == ["stop_tokens"]
        return
    assert dict(found.family.next_header) == {"reply": "<|im_start|>"} and not found.family.undecided
    last = conversation.load("multi_turn").messages[-1]
    assert _trained(tokenizer, found.family, "multi_turn", Think.OFF)[1] == f"{last.content} <|im_start|>"


# --- a tag for thinking named by the template's own prompt, in any words (Marco-o1 as Xinference ships it) ----------


def _system_says(text: str) -> str:
    return (
        "{%- if messages[0].role != 'system' %}<|im_start|>system\n"
        + text
        + "<|im_end|>\n{% endif %}"
        + TURNS
        + "<|im_end|>\n{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )


@pytest.mark.parametrize(
    ("text", "self_opening"),
    [("Denke in <Thought> nach, antworte in <Output>.", True), ("Antworte in <Output>.", False)],
    ids=["names-a-thought-tag", "no-such-tag"],
)
def test_a_tag_for_thinking_the_prompt_names_in_any_words_is_never_no_thinking_mode(text, self_opening, base, tmp_path):
    """A default system turn that names `<Thought>` for the model's thinking (here in German, Marco-o1's in
    Chinese): the model writes it itself, so its format is undecided and no off mode is derived, never "no thinking
    mode". Control: a system turn that names no such tag is a model without thinking."""
    from chat_template_harness.models.rules import NotApplicable

    family = _derived(_folder(base, tmp_path, "tag", _system_says(text)))[1].family
    if self_opening:
        assert "think.on.think" in {u.rule for u in family.undecided}
        assert isinstance(family.off, NotApplicable) and "<Thought>" in family.off.reason
        return
    assert isinstance(family.on, NotApplicable) and "no thinking mode" in family.on.reason
