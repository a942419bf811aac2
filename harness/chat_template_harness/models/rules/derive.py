"""Derive a family's rules from its chat template, by rendering sentinel conversations.

Nothing here is known in advance about a family: the template is asked. Per think mode it is
rendered with a user message (with and without the generation prompt), with one assistant turn
(as the last turn, and as history before another user turn), with reasoning in each field a
template may read, and with a tool call. Each rule is read off those renders:

- the think switch: a kwarg (`enable_thinking`, `thinking`) named in the template whose value
  changes the generation prompt, or one of named modes (`thinking_mode` enabled/disabled: the value
  whose prompt closes a think block is off), else a system-message flag (`/no_think`), else none;
  a reasoning strength (`Reasoning strength: high`) is no switch: think-off is N/A;
- header and opener: the generation prompt's tail, split where the history form of an assistant
  turn stops agreeing with it (token by token);
- stop tokens and trailer: what follows the answer in the final-turn render: the template's own end
  of turn where it is one of the tokenizer's eos or generation_config's eos ids, and the text after
  it. Never "the last special token": a template that writes the next turn's header after every
  message (GLM's `<|user|>`) would train that header; a stop no eos confirms is undecided;
- reasoning: the field whose text the render shows (`reasoning_content`, `thinking`, inline in
  content), the way it is written around the reasoning, whether `\\n` is stripped; where the final
  turn hides it, the block as another render writes it (the final turn with a setting of the
  template's own, a history or tool-call turn, an empty block), said so; never from an opener alone;
- the final marker: an empty think block written at the head of a final turn; the empty think
  block a thinking turn without reasoning gets;
- tool calls: the argument form (object or JSON string), the content a tool-call turn needs, and a
  template that cannot write a tool conversation;
- date variables to pin (`date_string`).

- whether a mode thinks: a switch, an opener that opens a block, a think block in final turns, or a
  model that opens its block itself (its prompt opens nothing, yet the template strips reasoning from
  history at a closing marker or writes reasoning back, or its own prompt orders a think block on every
  reply, its format then undecided): said so, with the render.

Every finding keeps the render it was read from. A rule that cannot be read is reported as
undecided with the fix (write it by hand in the rules file); it is never silently guessed, and it is
kept in the rules (`Family.undecided`) so that every command says UNDECIDED for the cells that need it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from types import MappingProxyType
from typing import Any

import time_machine

from chat_template_harness.errors import TemplateDriftError
from chat_template_harness.models import named
from chat_template_harness.models.rules.content import form as content_form
from chat_template_harness.models.rules.content import forms as content_forms
from chat_template_harness.models.rules.content import text_parts
from chat_template_harness.models.rules.model import Family, NotApplicable, ThinkMode, Undecided
from chat_template_harness.models.rules.pinned import PINNED_CLOCK, with_system_flag

U1, U2, A1, R1 = "Question one?", "Question two?", "Answer one.", "Reasoning one."
A2 = "Answer two."
CITY, RESULT = "Parisville", "Sunny result"
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
]
# Llama 3.1/3.3 default to this date; 3.2 and 4 write today's date unless it is given.
PINNED_DATE = "26 Jul 2024"
SWITCH_KWARGS = ("enable_thinking", "thinking")  # tried first; any other variable the template reads is tried too
# what a chat request or transformers itself sets: never a think switch
REQUEST_VARIABLES = frozenset(
    {
        "messages",
        "tools",
        "documents",
        "add_generation_prompt",
        "continue_final_message",
        "bos_token",
        "eos_token",
        "pad_token",
        "unk_token",
        "raise_exception",
        "strftime_now",
        "date_string",
        "tools_in_user_message",
        "builtin_tools",
        "custom_tools",
        "tool_choice",
        "response_format",
    }
)
SYSTEM_FLAG = "/no_think"
# switches with several values: the default against the value that turns reasoning off (Solar's reasoning_effort
# "minimal" writes an empty think segment; Ling's thinking_option "off")
SETTING_PAIRS = ((None, "minimal"), (None, "none"), ("on", "off"))
REASONING_FIELDS = ("reasoning_content", "thinking", "reasoning")
# a render with the mode's kwargs and flag bound: the text, or the template's error
Render = Callable[..., "str | Exception"]
NO_THINKING = "no thinking mode: the template has no think switch and no think tokens"
# the same, in the template's own terms where it writes think tokens (never "no think tokens" then)
CLOSED_BLOCK = "no thinking mode: the generation prompt always closes an empty think block ({opener}): the model answers without reasoning"
NO_SHOWN_THINKING = (
    "no thinking mode: the template has no think switch, its prompt opens no block, and no render shows "
    "reasoning or strips it from history"
)
SELF_OPENS = "no off switch: the model opens its think block itself ({evidence})"
NO_OFF_SWITCH = "no off switch: the generation prompt always opens {opener}"
MODEL_CARD = (
    "the served prompt is the same with and without reasoning: whether the model thinks is its model card's "
    "fact; keep the mode it has and declare the other N/A in the rules file"
)
# the OpenAI API's request field for how much a reasoning model reasons; a template that reads it always reasons
EFFORT = "reasoning_effort"
ALWAYS_REASONS = "always reasons: {setting} sets how much, there is no off switch"
# a level the probe sets a variable to: a template that prints it after words about reasoning (`Reasoning strength:
# medium`) reads a reasoning strength, whatever the variable's name
LEVEL = "medium"
REASONING_WORDS = re.compile(r"reason|think|thought|effort", re.IGNORECASE)
# words of a prompt that ask the model to reason before answering ("present your reasoning step by step"), read in
# the template's own text with its markup taken out
ASKS_REASONING = re.compile(
    r"\b(?:your|the)\s+(?:reasoning|thought process|thinking)\b|\bstep[- ]by[- ]step\b|\bthink (?:carefully|step)",
    re.IGNORECASE,
)
ANSWER_AFTER = re.compile(
    r"\bbefore (?:providing|giving|writing|answering|responding|you answer|the answer)|\bthen (?:answer|provide|give|respond)"
    r"|\bfinal (?:answer|response|solution)",
    re.IGNORECASE,
)
OFF_BLOCK_SOURCE = "the think-off prompt's empty block"  # where `_inferred_think` may read a format (said in its note)
# a tag the template's own prompt names for the model's thinking, in any words around it (Marco-o1's Chinese default
# system turn: think inside `<Thought>`, answer inside `<Output>`); `<think>` and its spellings are THINK_MARKER's
REASONING_TAG = re.compile(r"<(?:thoughts?|thinking|reasoning)>", re.IGNORECASE)
CONDITIONAL = re.compile(r"(?:if|when|whenever|unless|in case)\b", re.IGNORECASE)
MARKUP = re.compile(r"<[^<>\s]*>|\[[^\[\]\s]*\]")  # tokens and tags (`<|system|>`, `[INST]`); bracketed phrases stay
# prose a person writes; derivation fills it with plain observations and comparison ignores it
PROSE = ("title", "history", "reviewed")


@dataclass(frozen=True)
class Finding:
    rule: str
    value: Any
    evidence: str = ""  # the render(s) it was read from
    decided: bool = True
    note: str = ""  # an inference to review, or the fix for an undecided rule


@dataclass(frozen=True)
class Derivation:
    family: Family
    findings: tuple[Finding, ...]

    @property
    def undecided(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if not f.decided)


class _Probe:
    """Renders with the clock frozen and dates pinned; a template error is a value, not a crash."""

    def __init__(self, tokenizer: Any, pins: Mapping[str, Any]) -> None:
        self.tokenizer = tokenizer
        self.pins = dict(pins)
        self.parts = False  # every string content as one text part (a template that reads only parts)

    def __call__(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        gen: bool = False,
        flag: str = "",
        tools: Sequence[Mapping[str, Any]] = (),
        **kwargs: Any,
    ) -> str | Exception:
        if self.parts:
            messages = [
                {**m, "content": text_parts(m["content"])} if isinstance(m.get("content"), str) else m for m in messages
            ]
        try:
            with time_machine.travel(PINNED_CLOCK, tick=False):
                text: str = self.tokenizer.apply_chat_template(
                    with_system_flag(list(messages), flag),
                    tools=list(tools) or None,
                    tokenize=False,
                    add_generation_prompt=gen,
                    **self.pins,
                    **kwargs,
                )
                return text
        except Exception as exc:  # jinja errors and a template's raise_exception alike
            return exc


def _user(text: str = U1) -> dict[str, Any]:
    return {"role": "user", "content": text}


def _assistant(content: str | list[dict[str, str]] | None = A1, **extra: Any) -> dict[str, Any]:
    return {"role": "assistant", "content": content, **extra}


def _given(name: str, reasoning: str, message: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """An assistant turn (`A1` by default) with reasoning as the harness writes it for `name`: a message field, or a
    content form (data/reasoning_forms.toml), as contract/render.py writes it."""
    turn = dict(message if message is not None else _assistant())
    form = content_form(name)
    if form is None:
        return {**turn, name: reasoning}
    return {**turn, "content": form.content(reasoning, turn["content"])}


# realistic ids: some templates require one (Mistral: at least 9 characters) or print it
CALL_ID = "call_0123456789"


def _call(arguments: Any, content: str | None = "", call_id: str = CALL_ID) -> dict[str, Any]:
    call = {"id": call_id, "type": "function", "function": {"name": "get_weather", "arguments": arguments}}
    return _assistant(content, tool_calls=[call])


SHORT_CALL_ID = "a1B2c3D4e"  # Mistral's templates raise unless a tool call's id is 9 alphanumeric characters


def _no_space(text: str) -> str:
    return re.sub(r"\s", "", text)


def _show(text: str | Exception, limit: int = 160) -> str:
    if isinstance(text, Exception):
        return f"raised {type(text).__name__}: {str(text)[:limit]}"
    return repr(text if len(text) <= limit else "…" + text[-limit:])


def _common_token_prefix(tokenizer: Any, a: str, b: str) -> str:
    ta, tb = (tokenizer.encode(x, add_special_tokens=False) for x in (a, b))
    n = 0
    while n < min(len(ta), len(tb)) and ta[n] == tb[n]:
        n += 1
    prefix = tokenizer.decode(ta[:n])
    return prefix if a.startswith(prefix) and b.startswith(prefix) else ""


def _special(tokenizer: Any, token_id: int) -> bool:
    added = tokenizer.added_tokens_decoder.get(token_id)
    return bool(added is not None and added.special) or token_id in tokenizer.all_special_ids


def _split_stop(tokenizer: Any, tail: str, eos: Sequence[str]) -> tuple[str, str] | None:
    """(stop token, trailer): the template's own end of turn in a turn's tail, where it is one of the eos tokens
    (the tokenizer's, generation_config's), and the text after it. None where no eos token ends the turn: a special
    token that is not an eos (the next turn's header some templates write after every message) is never a stop.
    The first eos token is the stop: generation ends there, so what the template writes after it (Phi-3.5's
    `<|end|>` then, after the conversation's last turn, `\n<|endoftext|>`) is never generated."""
    ids = tokenizer.encode(tail, add_special_tokens=False)
    first = next(
        (i for i, t in enumerate(ids) if _special(tokenizer, t) and tokenizer.convert_ids_to_tokens(t) in eos),
        None,
    )
    if first is None:
        return None
    return tokenizer.convert_ids_to_tokens(ids[first]), tokenizer.decode(ids[first + 1 :])


def _specials(tokenizer: Any, text: str) -> list[str]:
    return [
        tokenizer.convert_ids_to_tokens(t)
        for t in tokenizer.encode(text, add_special_tokens=False)
        if _special(tokenizer, t)
    ]


def _added(tokenizer: Any, token_id: int) -> bool:
    """A token the vocabulary adds whole (Qwen3's `</think>` is added but not special)."""
    return token_id in tokenizer.added_tokens_decoder or _special(tokenizer, token_id)


CLOSING_TAG = re.compile(r"</[^<>\s]+>$")


def _closer(tokenizer: Any, text: str) -> str:
    """The token or tag that closes a block (whitespace after it aside): an added token (`<channel|>`, Qwen3's
    `</think>`) or a closing tag where the vocabulary has no such token (`</think>` on Llama 3); "" for none."""
    text = text.rstrip()
    ids = tokenizer.encode(text, add_special_tokens=False)
    if ids and _added(tokenizer, ids[-1]):
        token: str = tokenizer.convert_ids_to_tokens(ids[-1])
        return token
    tag = CLOSING_TAG.search(text)
    return tag.group() if tag else ""


def _opening(closer: str) -> str:
    """The marker a closer closes, where it is spelled as the closer without its slash (`</mm:think>` `<mm:think>`,
    `[/THINK]` `[THINK]`); "" for a closer with no slash (`<channel|>`)."""
    return closer.replace("/", "", 1) if "/" in closer else ""


def _fill_block(block: str, closer: str) -> str:
    """An empty block with `{reasoning}` put before its closer; whitespace written inside the empty block is split
    around it (`<think>\n\n</think>` is `<think>\n{reasoning}\n</think>` with nothing in it)."""
    cut = block.rindex(closer)
    inside = block[:cut]
    half = (len(inside) - len(inside.rstrip())) // 2
    return inside[: cut - half] + "{reasoning}" + inside[cut - half :] + block[cut:]


def _block_of(text: str, mode: ThinkMode) -> bool:
    """`text` is a thinking mode's block with nothing in it, whitespace inside aside: its opener and its format's
    opening, then only whitespace, then its closer (Gemma 4's `<|channel>thought\n<channel|>` for the format
    `<|channel>thought\n{reasoning}\n<channel|>`; MiniCPM5's `<think>\n\n</think>\n\n`)."""
    if not mode.think or "{reasoning}" not in mode.think:
        return False
    pre, post = (mode.opener + mode.think).split("{reasoning}", 1)
    head = pre.rstrip()
    return bool(head and post.strip()) and text.startswith(head) and text[len(head) :].strip() == post.strip()


def _after_closer(mode: ThinkMode) -> str:
    """Its format's closer and what it writes after it (`</think>\n\n`, `<channel|>`)."""
    post = (mode.think or "").split("{reasoning}", 1)[-1]
    return post.lstrip()


def _asks(u: Undecided, built: Mapping[str, ThinkMode | NotApplicable]) -> bool:
    """Whether an undecided rule asks anything of a cell: not a rule of a mode that is N/A or does not think."""
    thinking = {label for label, mode in built.items() if isinstance(mode, ThinkMode) and mode.thinks}
    if u.code == "answer-start":  # every answer of a mode whose prompt closes a block, thinking or not
        return isinstance(built.get(u.rule.split(".")[1]), ThinkMode)
    if u.rule.startswith("think."):
        return u.rule.split(".")[1] in thinking
    return bool(thinking) if u.rule == "reasoning_field" else True


# a think block's markers in any spelling a template gives them: `<think>`, `<think:opensource>`, `<mm:think>`,
# `[THINK]`; the closer is the opening with a slash (`</mm:think>`, `[/THINK]`)
_OPENING = r"<[^<>/\s]*think[^<>/\s]*>|\[[^\[\]/\s]*think[^\[\]/\s]*\]"
_CLOSER = r"</[^<>/\s]*think[^<>/\s]*>|\[/[^\[\]/\s]*think[^\[\]/\s]*\]"
THINK_MARKER = re.compile(_OPENING, re.IGNORECASE)
THINK_OPENING = re.compile(f"(?:{_OPENING})$", re.IGNORECASE)
THINK_BLOCK = re.compile(f"(?P<open>{_OPENING})?\\s*(?P<close>{_CLOSER})", re.IGNORECASE)


def _closing(opening: str) -> str:
    """The closer of a think block's opening marker: a slash after its first character (`<think>` `</think>`)."""
    return opening[0] + "/" + opening[1:]


def _think_blocks(text: str) -> list[tuple[int, int]]:
    """The spans of empty think blocks in text (an opening, whitespace, its closer), in the template's markers."""
    return [
        (b.start(), b.end())
        for b in THINK_BLOCK.finditer(text)
        if b.group("open") is not None and _opening(b.group("close")) == b.group("open")
    ]


def _empty_think_like(text: str) -> bool:
    """An empty think block or a lone closer (`</think>`, `<think:x></think:x>`, `</mm:think>`), whitespace aside."""
    block = THINK_BLOCK.fullmatch(text.strip())
    return block is not None and block.group("open") in (None, _opening(block.group("close")))


def _opens_think(text: str) -> bool:
    """The text ends with a think block's opening marker (`<think>`, `<think:x>`, `[THINK]`), newlines aside."""
    return bool(THINK_OPENING.search(text.rstrip("\n")))


@dataclass
class _Mode:
    """What one think mode's renders say (filled step by step)."""

    kwargs: dict[str, Any]
    flag: str = ""
    label: str = ""
    suffix: str = ""  # the generation prompt's tail after the user turn
    before_hist: str = ""  # a history assistant turn before its answer
    before_final: str = ""  # a final assistant turn before its answer
    header: str = ""
    opener: str = ""
    marker: str = ""  # the final-turn render's text between header and answer, no reasoning given
    base: str = ""  # the prompt before the assistant turn (no generation prompt)
    tail: str = ""  # after the answer in the final-turn render
    goes_on: bool = True  # the final-turn render starts with the prompt before the assistant turn
    findings: list[Finding] = field(default_factory=list)


class _Deriver:
    def __init__(self, tokenizer: Any, name: str, eos_tokens: Sequence[str]) -> None:
        self.tok = tokenizer
        self.name = name
        self.src = named.text(tokenizer.chat_template)  # every named template, each under its name
        self.eos = tuple(eos_tokens)
        self.findings: list[Finding] = []
        self.undecided: list[Undecided] = []
        self.self_opening = ""  # the evidence that the model opens its think block itself ("" for none)
        self._setting: str | None = None  # the reasoning setting's variable, once looked for
        self.headers: dict[str, str] = {}
        pins = {"date_string": PINNED_DATE} if re.search(r"\bdate_string\b", self.src) else {}
        self.pins = pins
        self.render = _Probe(tokenizer, pins)

    def variables(self) -> list[str]:
        """The top-level variables the template reads that a chat request does not set, known switch names first."""
        from jinja2 import meta

        ast = self._parsed()
        if ast is None:  # a template jinja cannot parse renders nothing either; the probes will say so
            return list(SWITCH_KWARGS)
        found = meta.find_undeclared_variables(ast) - REQUEST_VARIABLES
        return sorted(found, key=lambda v: (v not in SWITCH_KWARGS, v))

    def _parsed(self) -> Any:
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        source = re.sub(r"\{%-?\s*(end)?generation\s*-?%\}", "", self.src)  # transformers' marker tags: no variables
        try:
            return ImmutableSandboxedEnvironment(extensions=["jinja2.ext.loopcontrols"]).parse(source)
        except Exception:
            return None

    def fields_read(self) -> list[str]:
        """The reasoning fields in the order to try: those the parsed template reads (`message.thinking`,
        `message['reasoning_content']`) first. Where several show in renders (transformers maps one to
        another for some templates), the one the template itself reads is named."""
        from jinja2 import nodes

        ast = self._parsed()
        read: set[str] = set()
        if ast is not None:
            read |= {n.attr for n in ast.find_all(nodes.Getattr)}
            read |= {
                n.arg.value
                for n in ast.find_all(nodes.Getitem)
                if isinstance(n.arg, nodes.Const) and isinstance(n.arg.value, str)
            }
            read |= {
                a.value
                for n in ast.find_all(nodes.Call)
                for a in n.args[:1]  # message.get('reasoning_content')
                if isinstance(n.node, nodes.Getattr) and n.node.attr == "get" and isinstance(a, nodes.Const)
            }
        named = {n.value for n in ast.find_all(nodes.Const) if isinstance(n.value, str)} if ast is not None else set()
        # then the content forms (data/reasoning_forms.toml) whose reasoning block's type the template names
        forms = [f.name for f in content_forms().values() if f.reasoning.get("type") in named]
        return sorted(REASONING_FIELDS, key=lambda f: f not in read) + forms

    def note(self, rule: str, value: Any, evidence: str = "", *, decided: bool = True, note: str = "") -> Any:
        self.findings.append(Finding(rule, value, evidence, decided, note))
        return value

    def undecide(self, rule: str, key: str, code: str, question: str, evidence: str = "") -> None:
        """A rule no render proves: a finding (for `cth derive`) and an entry of the rules' `undecided`, so every
        command says UNDECIDED for the cells that need it; `key` is the rules-file key that answers it."""
        self.note(rule, None, evidence, decided=False, note=question)
        if all(u.rule != key for u in self.undecided):
            self.undecided.append(Undecided(key, code, question))

    # --- the switch -----------------------------------------------------------------------------------------------
    def switch(self) -> tuple[dict[str, Any], dict[str, Any], str]:
        """(on kwargs, off kwargs, off system flag).

        The candidates are the variables the parsed template reads that no chat request sets (any name:
        `enable_thinking`, `thinking`, `thinking_budget`, …). A variable is the switch when setting it
        changes the generation prompt without the value itself being printed there (a printed value, such
        as `Reasoning: high`, is a setting, not a switch): True/False, or for a budget, unset vs 0.
        """
        base = [_user()]
        default = self.render(base, gen=True)
        for var in self.variables():
            # a known boolean switch as True/False; any other variable first as a budget (unset vs 0), then True/False
            pairs: tuple[tuple[Any, Any], ...] = (
                ((True, False), (None, 0)) if var in SWITCH_KWARGS else ((None, 0), (True, False), *SETTING_PAIRS)
            )
            for on_value, off_value in pairs:
                on = default if on_value is None else self.render(base, gen=True, **{var: on_value})
                off = self.render(base, gen=True, **{var: off_value})
                if not isinstance(on, str) or not isinstance(off, str) or on == off:
                    continue
                tails = {v: x.split(U1)[-1] for v, x in ((on_value, on), (off_value, off))}
                if var not in SWITCH_KWARGS and tails[on_value] == tails[off_value]:
                    continue  # it changes only what comes before the user turn (a tool-list format): a setting
                default_tail = (
                    default.split(U1)[-1] if isinstance(default, str) else ""
                )  # a default that fails shows no value
                if any(str(v) in tail and str(v) not in default_tail for v, tail in tails.items() if v is not None):
                    continue  # the value is printed where the model reads it: a setting such as an effort level
                on_kwargs = {} if on_value is None else {var: on_value}
                self.note(
                    "think switch", f"kwarg {var}", f"{var}={on_value}: {_show(on)}; {var}={off_value}: {_show(off)}"
                )
                return on_kwargs, {var: off_value}, ""
        if SYSTEM_FLAG in self.src:
            plain = self.render([{"role": "system", "content": "S"}, *base], gen=True)
            flagged = self.render(base, gen=True, flag=SYSTEM_FLAG)
            if isinstance(plain, str) and isinstance(flagged, str) and flagged.split(U1)[-1] != plain.split(U1)[-1]:
                self.note("think switch", f"system flag {SYSTEM_FLAG}", f"with {SYSTEM_FLAG}: {_show(flagged)}")
                return {}, {}, SYSTEM_FLAG
        named = self.named_switch()
        if named is not None:
            return named[0], named[1], ""
        self.note("think switch", "none", "no kwarg or system flag changes the generation prompt")
        return {}, {}, ""

    def compared_strings(self) -> dict[str, list[str]]:
        """variable -> the strings the template compares it with, in the template's order (`x == 'disabled'`,
        `x in ['low', 'high']`): the values a switch of named modes takes."""
        from jinja2 import nodes

        ast = self._parsed()
        found: dict[str, list[str]] = {}
        for cmp in ast.find_all(nodes.Compare) if ast is not None else ():
            sides = [cmp.expr, *(op.expr for op in cmp.ops)]
            names = [x.name for x in sides if isinstance(x, nodes.Name)]
            consts = [c for x in sides for c in (x.items if isinstance(x, (nodes.List, nodes.Tuple)) else [x])]
            values = [c.value for c in consts if isinstance(c, nodes.Const) and isinstance(c.value, str)]
            for name in names:
                found.setdefault(name, [])
                found[name] += [v for v in values if v not in found[name]]
        return {k: v for k, v in found.items() if v}

    def named_switch(self) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """A switch whose values are named modes (`thinking_mode` enabled/disabled/adaptive, `reasoning_effort`
        no_think/low/high): the value whose generation prompt closes a block (`</mm:think>`, `<think:x></think:x>`)
        is off, the first whose prompt ends with that block's opening marker is on. Read off renders, never off the
        names; a value printed in the generation prompt is a setting, not a switch."""
        base = [_user()]
        for var, values in self.compared_strings().items():
            if var not in self.variables():
                continue
            tails = {}
            for value in values:
                setting: dict[str, Any] = {var: value}
                text = self.render(base, gen=True, **setting)
                if isinstance(text, str) and U1 in text and value not in text.split(U1)[-1]:
                    tails[value] = text.split(U1)[-1]
            for off, off_tail in tails.items():
                opening = _opening(_closer(self.tok, off_tail))
                on = next((v for v, t in tails.items() if t != off_tail and t.rstrip().endswith(opening)), None)
                if opening and on is not None:
                    self.note(
                        "think switch",
                        f"kwarg {var}",
                        f"{var}={on!r}: {_show(tails[on])}; {var}={off!r}: {_show(off_tail)} (the values the "
                        f"template compares it with: {', '.join(values)})",
                    )
                    return {var: on}, {var: off}
        return None

    # --- one mode -------------------------------------------------------------------------------------------------
    def read_mode(self, label: str, kwargs: dict[str, Any], flag: str) -> _Mode | None:
        m = _Mode(kwargs, flag)
        r: Render = lambda msgs, **kw: self.render(msgs, flag=flag, **kwargs, **kw)  # noqa: E731
        nogen, gen = r([_user()]), r([_user()], gen=True)
        hist, final = r([_user(), _assistant(), _user(U2)]), r([_user(), _assistant()])
        renders = (nogen, gen, hist, final)
        if isinstance(nogen, str) and isinstance(gen, str) and not gen.startswith(nogen) and U1 in nogen:
            gen = self._aligned(label, nogen, gen)
        if isinstance(nogen, str) and isinstance(gen, str) and isinstance(hist, str) and isinstance(final, str):
            nogen = self._without_end(label, nogen, gen, hist, final)
        if (
            not isinstance(nogen, str)
            or not isinstance(gen, str)
            or not isinstance(hist, str)
            or not isinstance(final, str)
            or not gen.startswith(nogen)
            or A1 not in final
        ):
            bad = next((x for x in renders if isinstance(x, Exception)), None)
            self.note(
                f"think.{label}",
                None,
                _show(bad or gen),
                decided=False,
                note="the template does not render a plain user/assistant exchange in this mode; write the mode by hand",
            )
            return None
        m.base = nogen
        m.suffix = gen[len(nogen) :]
        m.before_hist = hist[len(nogen) : hist.index(A1, len(nogen))] if hist.startswith(nogen) else ""
        m.before_final = final[len(nogen) : final.index(A1)] if final.startswith(nogen) else ""
        m.tail = final[final.index(A1) + len(A1) :]
        m.goes_on = final.startswith(nogen)
        m.label = label
        return m

    def _without_end(self, label: str, nogen: str, gen: str, hist: str, final: str) -> str:
        """A template that writes text after a conversation's last message, belonging to no turn: the eos only where
        no generation prompt is asked for (Metharme), or the next assistant header after every conversation,
        generation prompt or not (Command R7B's tool-use template). The prompt before the assistant turn is then what
        the user turn's render shares with the renders that go on from it; the rest is said, and taken only where
        every render ends with it. `nogen` unchanged where they do not, or where the renders go on from it."""
        if gen.startswith(nogen) and (hist.startswith(nogen) or final.startswith(nogen)):
            return nogen
        base = nogen
        for other in (hist, final):
            base = _common_token_prefix(self.tok, base, other)
        end = nogen[len(base) :]
        if not end or U1 not in base or not gen.startswith(base) or A1 not in final[len(base) :]:
            return nogen
        if not (hist.endswith(end) and final.endswith(end)):
            return nogen
        self.note(
            f"think.{label}.end",
            end,
            f"without a generation prompt {_show(nogen)}; a final turn {_show(final)}; a history turn {_show(hist)}",
            note="the template writes this after a conversation's last message, whatever it is: not part of the "
            "prompt before an assistant turn",
        )
        return base

    def _aligned(self, label: str, nogen: str, gen: str) -> str:
        """A template that writes more before the user turn when a generation prompt is asked for (a default system
        turn written only with a generation prompt or tools): the generation prompt is what follows the user turn, so
        the served prompt is read as `nogen` + that tail, and the difference is said (the cells' replay check sees it)."""
        user_turn = nogen[nogen.index(U1) :]
        if user_turn not in gen:
            return gen
        at = gen.index(user_turn) + len(user_turn)
        self.note(
            f"think.{label}.prompt",
            gen[: at - len(user_turn)],
            f"with a generation prompt {_show(gen)}; without {_show(nogen)}",
            note="the template writes this before the user turn only when a generation prompt is asked for",
        )
        return nogen + gen[at:]

    def split_header(self, modes: list[_Mode]) -> None:
        """The role header: where the generation prompts of every mode and a history turn stop agreeing."""
        header = modes[0].before_hist
        for text in [m.before_hist for m in modes] + [m.suffix for m in modes]:
            header = _common_token_prefix(self.tok, header, text)
        for m in modes:  # DeepSeek-V3.1: every form starts `<think>`; the history's `<think></think>` is one block
            for start, end in _think_blocks(m.before_hist):
                if start < len(header) < end:
                    header = header[:start]
        for m in modes:
            m.header, m.opener = header, m.suffix[len(header) :]
            m.marker = m.before_final[len(header) :] if m.before_final.startswith(header) else ""
            self.note(
                f"think.{m.label}.opener",
                m.opener,
                f"generation prompt tail {_show(m.suffix)}; history turn {_show(m.before_hist)}",
            )
            self.note(f"think.{m.label}.final", m.marker, f"final turn {_show(m.before_final)}")

    def reasoning(self, m: _Mode) -> tuple[str, str | None, bool, str]:
        """(field, strip, shown, think): how this mode writes reasoning it is given, read off renders only.

        The field is the one whose value shows in a render: the final turn first (then its format is read
        there), then the final turn with a variable of the template's own set (EXAONE 4's `skip_think`), else a
        history turn or a tool-call turn (Kimi-K2-Thinking, DeepSeek-V3.2 show it only there; the format is then
        read off that turn's block or an empty block, said so, else undecided). Inline `<think>…</think>` in content
        counts only where the template reacts to it (drops it from history): a template that prints content
        as it is proves nothing about reasoning. No render shows reasoning: undecided, with the fix.
        """
        r: Render = lambda msgs: self.render(msgs, flag=m.flag, **m.kwargs)  # noqa: E731
        order = self.fields_read()
        for name in order:
            text = r([_user(), _given(name, R1)])
            if isinstance(text, str) and R1 in text and A1 in text:
                return name, self._strip(r, name, text), True, self._read_think(m, text, name)
        if found := self._shown_with_a_setting(m, order):
            return found
        inline = _assistant(f"<think>\n{R1}\n</think>\n\n{A1}")
        hist, final = r([_user(), inline, _user(U2)]), r([_user(), inline])
        if isinstance(hist, str) and R1 not in hist and A1 in hist and isinstance(final, str):
            typed = inline["content"].split(A1)[0]
            if R1 in final and A1 in final and typed not in final:  # the template rewrote it: its own format
                return "inline", "\n", True, self._read_think(m, final, "inline")
            # printed back as typed proves nothing about the format (Nemotron-Nano-v2): as for a hidden field
            return self._hidden(
                "inline",
                m,
                f"history drops an inline block, the final turn prints it as typed: {_show(hist[len(m.base) :])}",
            )
        for name in order:
            for label, msgs in (
                ("a history turn", [_user(), _given(name, R1), _user(U2)]),
                ("a later final turn", [_user(), _assistant(), _user(U2), _given(name, R1)]),
                (
                    "a tool-call turn",
                    [
                        _user(),
                        _given(name, R1, _call({"city": CITY})),
                        {"role": "tool", "content": RESULT, "tool_call_id": CALL_ID},
                    ],
                ),
            ):
                text = r(msgs)
                if isinstance(text, str) and R1 in text:
                    return self._hidden(name, m, f"{label} shows it: {_show(text[len(m.base) :])}", text)
        self.undecide(
            "reasoning_field",
            "reasoning_field",
            "reasoning-field",
            "no render shows reasoning in any field (final, history or tool-call turn); write `reasoning_field` "
            "and the mode's `think` by hand",
        )
        if self.self_opening:  # every reply carries a block no render shows: every cell of the mode needs its format
            self.undecide(
                "think",
                f"think.{m.label}.think",
                "self-opening",
                "the model opens its think block itself and no render shows how it writes it (its markers, newlines "
                "and spaces); write the mode's `think` by hand",
                self.self_opening,
            )
        think, source = self._inferred_think(m)
        if source:  # the form at least shows where there is no reasoning
            self.note("think", think, source, note=f"inferred from {source}; review")
        return "reasoning_content", "\n", False, think

    def _shown_with_a_setting(self, m: _Mode, order: list[str]) -> tuple[str, str | None, bool, str] | None:
        """A final turn that shows its reasoning once a variable of the template's own is set (EXAONE 4's
        `skip_think=false`): the format is read off that render, said so; the default render still hides it."""
        for var in (v for v in self.variables() if v not in m.kwargs and v not in (*SWITCH_KWARGS, "gen", "flag")):
            for value in (False, True):
                kwargs: dict[str, Any] = {**m.kwargs, var: value}
                for name in order:
                    text = self.render([_user(), _given(name, R1)], flag=m.flag, **kwargs)
                    if not (isinstance(text, str) and text.startswith(m.base + m.header) and A1 in text):
                        continue
                    if not 0 <= text.find(R1, len(m.base)) < text.index(A1):
                        continue
                    before = text[len(m.base) + len(m.header) : text.index(R1)]
                    if not before.startswith(m.opener):
                        continue
                    self.note("reasoning_field", name, f"{var}={value!r}: {_show(text[len(m.base) :])}")
                    think = text[len(m.base) + len(m.header) + len(m.opener) : text.index(A1)].replace(
                        R1, "{reasoning}"
                    )
                    self.note(
                        "think",
                        think,
                        f"{var}={value!r}: {_show(text[len(m.base) :])}",
                        note=f"read off the final turn as the template writes it with {var}={value!r}; review",
                    )
                    return name, "\n", False, think
        return None

    def _read_think(self, m: _Mode, text: str, name: str) -> str:
        seg = text[len(m.base) + len(m.header) : text.index(A1)]
        if m.marker and not _empty_think_like(m.marker) and seg.endswith(m.marker):
            seg = seg[: -len(m.marker)]
        think = seg.replace(R1, "{reasoning}").removeprefix(m.opener)
        self.note(
            "reasoning_field",
            name,
            _show(text[len(m.base) :]),
            note="typed inline by the probe: the format is the probe's, unverified" if name == "inline" else "",
        )
        self.note("think", think, _show(text[len(m.base) :]))
        return think

    @property
    def off_block(self) -> str:
        off = self.modes.get("off")
        return off.opener if off is not None and self.switch_kind != "none" else ""

    def _strip(self, r: Render, name: str, text: str) -> str | None:
        padded = r([_user(), _given(name, f"\n{R1}\n")])
        return "\n" if padded == text else None

    def _hidden(self, name: str, m: _Mode, evidence: str, shown: str = "") -> tuple[str, str | None, bool, str]:
        """A field the final turn hides: its format is read off the turn that shows it (`shown`), else off an empty
        block the template writes, and said so; undecided where neither shows it."""
        self.note("reasoning_field", name, evidence, note="the final turn never shows reasoning; review")
        think = self._block_shown(m, shown)
        if think:
            self.note(
                "think", think, evidence, note="read off that turn (the final turn never shows reasoning); review"
            )
            return name, "\n", False, think
        think, source = self._inferred_think(m)
        pre, _, post = think.partition("{reasoning}")
        # the same turn, read in the markers of the empty block the template writes (Gemma 4's tool-call turn
        # `<|channel>thought\n{R}\n<channel|>` then `<|tool_call>`), with that render's whitespace
        if source and post.strip() and (read := self._block_shown(m, shown, pre.rstrip(), [post.strip()])):
            self.note(
                "think",
                read,
                evidence,
                note="read off that turn, which writes the reasoning in the markers of the empty block the template "
                "writes where there is none (the final turn never shows reasoning); review",
            )
            return name, "\n", False, read
        if source:
            self.note(
                "think",
                think,
                source,
                note=f"inferred from {source} (the template never shows reasoning in a final "
                "turn; whitespace around it is unverified); review",
            )
        else:
            seen = self._block_seen(m, shown) if evidence.startswith("a tool-call turn") else ""
            self.undecide(
                "think",
                f"think.{m.label}.think",
                "self-opening" if self.self_opening else "reasoning-format",
                f"a tool-call turn writes the reasoning as {seen!r} and goes on with its call, and "
                "no render writes an answer after reasoning (the final turn drops it; no empty block anywhere): does "
                "a reply write the same block, and what comes between its close and the answer? write the mode's "
                "`think` by hand"
                if seen
                else "no render shows how reasoning is written, and nothing it writes where there is none shows it "
                "either; write the mode's `think` by hand",
                evidence,
            )
        return name, "\n", False, think

    def _block_seen(self, m: _Mode, text: str) -> str:
        """The block a non-final turn writes the probe's reasoning in, up to the added token that closes it (Gemma
        4's tool-call turn: `<|channel>thought\n{reasoning}\n<channel|>`, then `<|tool_call>`), for the question
        only: what follows it before an answer is shown nowhere. "" where the turn is not read so."""
        head = m.base + m.header + m.opener
        if not text.startswith(head) or R1 not in text[len(head) :]:
            return ""
        at = text.index(R1, len(head))
        after = re.match(r"\s*", text[at + len(R1) :])
        rest = text[at + len(R1) + (after.end() if after else 0) :]
        ids = self.tok.encode(rest, add_special_tokens=False)
        if not ids or not _added(self.tok, ids[0]):
            return ""
        closer: str = self.tok.convert_ids_to_tokens(ids[0])
        if not rest.startswith(closer):
            return ""
        return text[len(head) : at] + "{reasoning}" + (after.group() if after else "") + closer

    def _block_shown(self, m: _Mode, text: str, opening: str = "", closers: Sequence[str] = ()) -> str:
        """The think block as a history or tool-call turn writes it around the probe's reasoning: the mode's opener,
        the block's own `opening` where the model writes one (Gemma 4's `<|channel>thought`), then only whitespace,
        the reasoning, whitespace, a closer (`closers`, else the think closers the template spells), and the
        whitespace after it. "" where the turn writes anything else around it (then nothing is read off it)."""
        head = m.base + m.header + m.opener + opening
        if not text or not text.startswith(head) or R1 not in text[len(head) :]:
            return ""
        at = text.index(R1, len(head))
        if text[len(head) : at].strip():
            return ""
        for closer in closers or self.spelled_closers():
            after = re.match(rf"\s*{re.escape(closer)}\s*", text[at + len(R1) :])
            if after:
                return text[len(m.base + m.header + m.opener) : at] + "{reasoning}" + after.group()
        return ""

    def _inferred_think(self, m: _Mode) -> tuple[str, str]:
        """(format, what it was read from) for reasoning no final turn shows: from the empty block the template writes
        where there is no reasoning (the think-off prompt, a final turn's marker: Gemma 4's
        `<|channel>thought\\n<channel|>`, DeepSeek-V3.1's `<think></think>`), split before its closing token.
        Whitespace around real reasoning shows nowhere: said so. ("", "") when nothing shows it: never a default
        format. An opener alone shows none: `<think>\\n` says nothing of what comes before `</think>` or after it
        (QwQ's `\\n</think>\\n\\n` is its model card's, not its template's)."""
        for label, block in (
            (OFF_BLOCK_SOURCE, self.off_block),
            ("the final turn's empty block", m.marker),
        ):
            closer = _closer(self.tok, block) if block and block.startswith(m.opener) and block != m.opener else ""
            if not closer:
                continue
            between = block[len(m.opener) : block.rindex(closer)]
            if between and not between.strip():
                continue  # whitespace after the opener the prompt writes: which side of the reasoning it goes is open
            if not between and (m.opener != m.opener.rstrip() or not m.opener):
                continue  # a lone closer after an opener that ends in whitespace (QwQ's `<think>\\n</think>`)
            return _fill_block(block, closer)[len(m.opener) :], f"{label} {_show(block)}"
        return "", ""

    # --- tools and stops ------------------------------------------------------------------------------------------
    def tools(self, m: _Mode) -> tuple[str, str | None, dict[str, str], str | None]:
        """(argument form, tool-call content, unsupported, the stop token a tool-call turn ends with).

        A template that renders tool calls only with ids of its own form (Mistral's: 9 alphanumeric characters) gets
        its tool rules from renders with such an id, and N/A only for conversations whose calls carry no ids."""
        r: Render = lambda msgs: self.render(msgs, flag=m.flag, tools=TOOLS, **m.kwargs)  # noqa: E731
        found = self._tool_forms(m, r, CALL_ID)
        if found is not None:
            return (*found[:2], {}, found[2])
        failed = r([_user(), _call({"city": CITY}), self._result(CALL_ID), _assistant()])
        found = self._tool_forms(m, r, SHORT_CALL_ID) if isinstance(failed, Exception) else None
        if found is not None:
            why = (
                f"the template writes a tool conversation only where each call has an id of its own form (it renders "
                f"with {SHORT_CALL_ID!r}, and {CALL_ID!r} {_show(failed)}): a conversation whose calls or results "
                "carry no ids (the fixtures') cannot be rendered; data whose ids have that form is"
            )
            self.note("unsupported.tools_without_ids", why, _show(failed))
            return (*found[:2], {"tools_without_ids": why}, found[2])
        why = (
            f"the template cannot write a tool conversation ({_show(failed)})"
            if isinstance(failed, Exception)
            else "the template does not write tool calls"
        )
        self.note("unsupported.tools", why, _show(failed))
        return "object", "", {"tools": why}, None

    @staticmethod
    def _result(call_id: str) -> dict[str, Any]:
        return {"role": "tool", "content": RESULT, "tool_call_id": call_id, "name": "get_weather"}

    def _tool_forms(self, m: _Mode, r: Render, call_id: str) -> tuple[str, str | None, str | None] | None:
        """(argument form, tool-call content, the tool-call turn's stop) read off renders whose call has `call_id`."""
        for form, args in (("object", {"city": CITY}), ("json", json.dumps({"city": CITY}))):
            for content in ("", None):
                text = r([_user(), _call(args, content, call_id), self._result(call_id), _assistant()])
                if isinstance(text, str) and CITY in text[len(m.base) :]:
                    rendered = text[len(m.base) :]
                    if form == "object" and f"'city': '{CITY}'" in rendered:
                        continue  # a dict concatenated as Python's repr: the template wants a JSON string
                    self.note("tool_arguments", form, _show(rendered))
                    self.note("tool_call_content", content, _show(rendered))
                    return form, content, self._tool_stop(r([_user(), _call(args, content, call_id)]), m)
        return None

    def _tool_stop(self, text: str | Exception, m: _Mode) -> str | None:
        if not isinstance(text, str):
            return None
        split = _split_stop(self.tok, text[text.rindex(CITY) :], self.eos)
        return split[0] if split else None

    def next_header(self, m: _Mode, form: str) -> dict[str, str]:
        """A turn that ends with no token of its own (GLM): the special token that opens the next message, where
        the tokenizer's eos or generation_config lists it (the model stops by generating it)."""
        r: Render = lambda msgs, **kw: self.render(msgs, flag=m.flag, **m.kwargs, **kw)  # noqa: E731
        found: dict[str, str] = {}
        args = {"city": CITY} if form == "object" else json.dumps({"city": CITY})
        for key, msgs, after, kw in (
            ("reply", [_user(), _assistant(), _user(U2)], A1, {}),
            (
                "tool_call",
                [_user(), _call(args), {"role": "tool", "content": RESULT, "tool_call_id": CALL_ID}],
                CITY,
                {"tools": TOOLS},
            ),
        ):
            text = r(msgs, **kw)
            if not isinstance(text, str) or after not in text:
                continue
            rest = text[text.index(after) + len(after) :]
            gap = rest[: len(rest) - len(rest.lstrip())]
            if key == "reply" and gap and gap == m.tail:  # whitespace the finished turn writes after its answer too
                rest = rest[len(gap) :]  # (Xinference's GLM-4.1V: `4 `, then ` <|user|>` in history): the turn's own
            ids = self.tok.encode(rest, add_special_tokens=False)
            if key == "reply":  # the header follows the answer (and its own whitespace) at once (GLM); `\n<|end|>`
                ids = ids[:1]  # only in history is the turn's own end (Apriel): not a next header
            first = next(
                (i for i in ids if _special(self.tok, i) and self.tok.convert_ids_to_tokens(i) in self.eos), None
            )
            token = self.tok.convert_ids_to_tokens(first) if first is not None else None
            if token in self.eos:
                found[key] = self.note(
                    f"next_header.{key}", token, f"{_show(text[len(m.base) :])} (in eos/generation_config)"
                )
        return found if "reply" in found else {}

    def stops(self, m: _Mode, tool_stop: str | None) -> tuple[tuple[str, ...], str]:
        if not m.goes_on:  # the reply is not written after the prompt (a guard model's template quotes it)
            self.undecide(
                "stop_tokens",
                "stop_tokens",
                "stop",
                "the finished turn's render does not start with the prompt before it: the template rewrites the "
                "conversation when a reply follows (a classifier that quotes the reply, as a guard model's does), so "
                "no render shows how a reply ends; a model that chats with this template needs `stop_tokens` by hand",
                f"the prompt before the assistant turn {_show(m.base)}; the finished turn, after the answer, {_show(m.tail)}",
            )
            return (), ""
        split = _split_stop(self.tok, m.tail, self.eos)
        if split is None and self.headers:
            return tuple(dict.fromkeys(self.headers.values())), ""
        if split is None:
            others = _specials(self.tok, m.tail)
            seen = (
                (
                    f"; {', '.join(others)} follows the answer but is not one of them (never taken as the stop: it may "
                    "be the next turn's header)"
                )
                if others
                else ""
            )
            eos = ", ".join(self.eos) or "none"
            self.undecide(
                "stop_tokens",
                "stop_tokens",
                "stop",
                f"no special token ends an assistant turn, and no eos token opens the next one (eos and "
                f"generation_config: {eos}{seen}); write `stop_tokens` (and `next_header`) by hand",
                _show(m.tail),
            )
            return (), ""
        stop, trailer = split
        self.note("stop_tokens", stop, f"after the answer {_show(m.tail)} (in eos/generation_config)")
        self.note("trailer", trailer, _show(m.tail))
        stops = (stop,) if tool_stop in (None, stop) else (stop, tool_stop)
        if tool_stop not in (None, stop):
            self.note("stop_tokens", tool_stop, "a tool-call turn ends with it (in eos/generation_config)")
        return stops, trailer

    # --- assembly -------------------------------------------------------------------------------------------------
    def thinks(self, switch: str, label: str, m: _Mode) -> bool:
        if switch == "kwarg":
            return label == "on"
        if switch == "flag":
            return label == "on" and "<think>" in self.src
        if m.opener.rstrip("\n").endswith("<think>") or self.reasoning_setting():
            return True  # the prompt always opens reasoning, or the template always asks for it
        # the template's own prompt orders a think block on every reply: the model opens it itself, whatever its
        # final turns show (Ministral-3-Reasoning writes reasoning from content chunks too): no off mode is derived
        if label == "on" and (evidence := self.orders_reasoning(m)):
            return self.opens_its_block(
                evidence,
                "the generation prompt opens nothing, yet the template's own prompt orders a think block on every "
                "reply: the model opens it itself; its format only where a render shows it, else undecided",
            )
        # its own prompt asks in words for reasoning before every answer (Apriel 1.5's default system turn): the
        # model reasons, but nothing shows how: undecided, never "no thinking mode"
        if label == "on" and (evidence := self.asks_reasoning(m)):
            return self.opens_its_block(
                evidence,
                "the generation prompt opens nothing, yet the template's own prompt asks for reasoning on every reply "
                "in words: the model reasons; its format only where a render shows it, else undecided",
            )
        # its own prompt names a tag for the model's thinking, in any language (Marco-o1's `<Thought>`): likewise
        if label == "on" and (evidence := self.names_a_reasoning_tag(m)):
            return self.opens_its_block(
                evidence,
                "the generation prompt opens nothing, yet the template's own prompt names a tag for the model's "
                "thinking: the model writes it itself; its format only where a render shows it, else undecided",
            )
        # no switch, yet the template writes a think block into final turns (Kimi-K2-Thinking; Qwen3 2507 Instruct,
        # which never thinks) or the reasoning it is given (LFM2.5's `thinking`): the served prompt is the same
        # either way, so whether the model thinks is its model card's fact: both modes are derived, one to review
        if label == "on" and (_empty_think_like(m.marker) or self.writes_reasoning(m)):
            self.note("think modes", "both (no switch)", f"final turn {_show(m.before_final)}", note=MODEL_CARD)
            return True
        if label == "on" and (evidence := self.opens_itself(m)):
            return self.opens_its_block(
                evidence,
                "the generation prompt opens nothing, yet the template handles reasoning in history: the model opens "
                "its think block itself, so every reply it generates carries one",
            )
        return False

    def opens_its_block(self, evidence: str, why: str) -> bool:
        """Record that the model opens its think block itself (the think-on opener is empty), and why."""
        self.self_opening = evidence
        self.note("think.on.opener", "", evidence, note=why)
        return True

    def orders_reasoning(self, m: _Mode) -> str:
        """Evidence that the template's own text orders a think block on every reply (Phi-4-reasoning's default
        system turn: `<think> {Thought section} </think> {Solution section}`; Ministral's `[THINK]…[/THINK]`): the
        served prompt, the user's text aside, spells a think block's opening and then its closer. "" for none."""
        text = self.render([_user()], gen=True, flag=m.flag, **m.kwargs)
        own = text.replace(U1, "") if isinstance(text, str) else ""
        for opening in THINK_MARKER.finditer(own):
            closer = _closing(opening.group())
            if closer in own[opening.end() :]:
                at = own.index(closer, opening.end())
                if not own[opening.end() : at].strip():
                    continue  # an empty block the prompt closes (think-off) orders nothing: prose names what goes in
                return (
                    f"the template's own prompt orders `{opening.group()}`…`{closer}` on every reply: "
                    f"{_show(own[max(0, opening.start() - 60) : at + len(closer)])}"
                )
        return ""

    def names_a_reasoning_tag(self, m: _Mode) -> str:
        """Evidence that the template's own prompt (the user's text aside) names a tag for the model's thinking
        (`REASONING_TAG`), whatever words it is named in. "" for none; an empty block the prompt closes orders
        nothing (a think-off prompt's)."""
        text = self.render([_user()], gen=True, flag=m.flag, **m.kwargs)
        own = text.replace(U1, "") if isinstance(text, str) else ""
        for tag in REASONING_TAG.finditer(own):
            if own[tag.end() :].lstrip().lower().startswith(_closing(tag.group()).lower()):
                continue
            return (
                f"the template's own prompt names `{tag.group()}` for the model's thinking: "
                f"{_show(own[max(0, tag.start() - 60) : tag.end() + 60])}"
            )
        return ""

    def asks_reasoning(self, m: _Mode) -> str:
        """Evidence that the template's own words in the served prompt (a default system turn; markup and the user's
        text aside) ask the model to reason before it answers. "" for none."""
        text = self.render([_user()], gen=True, flag=m.flag, **m.kwargs)
        if not isinstance(text, str) or m.opener.strip():  # a prompt that opens the reply (Command-A's response
            return ""  # wrapper, Apriel 1.6's reasoning phrase) says itself what comes first
        prose = MARKUP.sub(" ", text.replace(U1, ""))
        for sentence in re.split(r"(?<=[.!?])\s+|\n+", prose):
            # on every reply: a request made only in some case ("If the request requires reasoning, …") is not one
            if not ASKS_REASONING.search(sentence) or CONDITIONAL.match(sentence.strip(" \t-*•0123456789.)")):
                continue
            # before the answer: reasoning asked for in general ("Document your reasoning process", Devstral's agent
            # guidelines) says nothing of what a reply starts with
            if ANSWER_AFTER.search(sentence):
                return f"the template's own prompt asks for reasoning before every answer: {_show(sentence.strip())}"
        return ""

    def reasoning_setting(self) -> str:
        """The variable that sets how much the model reasons, not whether: `reasoning_effort` (the OpenAI API's
        field), or any variable whose value the template prints after words about reasoning where the model reads it
        (`Reasoning strength: {{ reasoning_strength }}`). "" for none. It has no off value: no off mode is derived
        from it (a named value that closes the think block is a switch: `named_switch`)."""
        if EFFORT in self.variables():
            return EFFORT
        if self._setting is None:
            self._setting = ""
            default = self.render([_user()], gen=True)
            strings = self.compared_strings()
            for var in self.variables():
                for value in (*strings.get(var, ()), LEVEL):
                    text = self.render([_user()], gen=True, **{var: value})
                    if not isinstance(text, str) or not isinstance(default, str) or text == default:
                        continue
                    lines = (text[: at.start()].rsplit("\n", 1)[-1] for at in re.finditer(re.escape(value), text))
                    if any(REASONING_WORDS.search(line) for line in lines):
                        self._setting = var
                        self.note("reasoning setting", var, f"{var}={value!r}: {_show(text)}")
                        return var
        return self._setting

    def opens_itself(self, m: _Mode) -> str:
        """Evidence that a model whose prompt opens nothing thinks anyway (DeepSeek-R1 before `<think>\\n` was added to
        its generation prompt): the template cuts an inline block out of history at its closer, or writes a reasoning
        field back into history. "" where no render shows either."""
        r: Render = lambda msgs: self.render(msgs, flag=m.flag, **m.kwargs)  # noqa: E731
        for closer in self.spelled_closers():
            typed = _assistant(f"{_opening(closer)}\n{R1}\n{closer}\n\n{A1}")
            # history before the next user turn, and before a later reply (LFM2.5 keeps the last reply's reasoning)
            for msgs in ([_user(), typed, _user(U2)], [_user(), typed, _user(U2), _assistant(A2)]):
                inline = r(msgs)
                if isinstance(inline, str) and A1 in inline and R1 not in inline:
                    return f"the template strips reasoning from history at `{closer}`: {_show(inline[len(m.base) :])}"
        for name in self.fields_read():
            text = r([_user(), _given(name, R1), _user(U2)])
            if isinstance(text, str) and R1 in text[len(m.base) :]:
                return f"the template writes `{name}` back into history: {_show(text[len(m.base) :])}"
        return ""

    def spelled_closers(self) -> list[str]:
        """`</think>`, then the think closers the template spells in its own strings (`'[/THINK]'`, `'</mm:think>'`):
        the markers it may split history on."""
        from jinja2 import nodes

        ast = self._parsed()
        strings = [c.value for c in ast.find_all(nodes.Const) if isinstance(c.value, str)] if ast is not None else []
        spelled = [b.group("close") for text in strings for b in THINK_BLOCK.finditer(text)]
        return list(dict.fromkeys(["</think>", *spelled]))

    def no_thinking(self, m: _Mode) -> str:
        """Why a mode without a switch does not think, in the template's own terms."""
        if _empty_think_like(m.opener):
            return CLOSED_BLOCK.format(opener=m.opener.strip())
        if re.search(r"think|thought|reason", self.src, re.IGNORECASE):
            return NO_SHOWN_THINKING
        return NO_THINKING

    def writes_reasoning(self, m: _Mode) -> bool:
        """No switch, yet a final turn shows the reasoning it is given from a field (LFM2.5's `thinking`)."""
        for name in self.fields_read():
            text = self.render([_user(), _given(name, R1)], flag=m.flag, **m.kwargs)
            if isinstance(text, str) and R1 in text[len(m.base) :]:
                return True
        return False

    def content_format(self) -> str:
        """ "parts" where the template writes nothing of a string content and writes a text part's text (Idefics3's,
        SmolVLM's and LLaVA-Next's templates loop over content): every probe after this sends parts, as vLLM and
        SGLang do for such a template. "string" wherever a string content is written (parts are not tried)."""
        plain = self.render([_user()], gen=True)
        if isinstance(plain, str) and U1 in plain:
            return "string"
        self.render.parts = True
        parts = self.render([_user()], gen=True)
        if isinstance(parts, str) and U1 in parts:
            self.note("content_format", "parts", f"a string content renders {_show(plain)}; a text part {_show(parts)}")
            return "parts"
        self.render.parts = False
        return "string"

    def run(self) -> Family:
        content_format = self.content_format()
        on_kw, off_kw, flag = self.switch()
        switch = "kwarg" if on_kw or off_kw else "flag" if flag else "none"
        modes = {"on": self.read_mode("on", on_kw, ""), "off": self.read_mode("off", off_kw, flag)}
        self.modes = {k: v for k, v in modes.items() if v is not None}
        self.switch_kind = switch
        usable = modes["off"] or modes["on"]
        if usable is None:
            bad = next((f for f in self.findings if f.rule.startswith("think.") and not f.decided), None)
            raise TemplateDriftError(
                "the template renders no plain user/assistant exchange in either think mode"
                + (f" ({bad.evidence})" if bad else ""),
                "write the model's rules by hand (the format is in `cth derive --help`) and register them with `rules = FILE`",
            )
        self.split_header([m for m in modes.values() if m is not None])
        form, call_content, unsupported, tool_stop = self.tools(usable)
        self.headers = (
            self.next_header(usable, form)
            if usable.goes_on and _split_stop(self.tok, usable.tail, self.eos) is None
            else {}
        )
        stops, trailer = self.stops(usable, tool_stop)
        values: dict[str, Any] = {"reasoning_field": "reasoning_content", "reasoning_strip": "\n", "shows": False}
        built = {label: self.built(label, m, switch, unsupported, values) for label, m in modes.items()}
        for label, m in modes.items():
            if m is not None and isinstance(built[label], ThinkMode):
                self.answer_after_closed_block(m, built)
        if not any(isinstance(x, ThinkMode) and x.thinks for x in built.values()):
            values = {"reasoning_field": "reasoning_content", "reasoning_strip": "\n", "shows": False}
        return Family(
            name=self.name,
            title=self.name,
            stop_tokens=stops,
            on=built["on"],
            off=built["off"],
            trailer=trailer,
            reasoning_field=values["reasoning_field"],
            reasoning_strip=values["reasoning_strip"],
            tool_arguments=form,
            content_format=content_format,
            tool_call_content=call_content,
            template_shows_final_reasoning=values["shows"],
            history=self.history(modes["on"] or usable, values["reasoning_field"]),
            template_kwargs=MappingProxyType(dict(self.pins)),
            next_header=MappingProxyType(self.headers),
            undecided=tuple(u for u in self.undecided if _asks(u, built)),
        )

    def built(
        self, label: str, m: _Mode | None, switch: str, unsupported: dict[str, str], values: dict[str, Any]
    ) -> ThinkMode | NotApplicable:
        """A mode's rules, or why it does not apply: the template cannot render it, or (no switch) the model always
        reasons or never does, in the template's own terms."""
        if m is None:
            return NotApplicable("the template does not render this mode")
        thinks = self.thinks(switch, label, m)
        if switch == "none" and label == "off" and self.self_opening:
            return NotApplicable(SELF_OPENS.format(evidence=self.self_opening.split(": ")[0]))
        if switch == "none" and label == "off" and thinks:
            # in the template's own terms: the opener it writes, or the effort variable it reads
            setting = self.reasoning_setting()
            return NotApplicable(
                ALWAYS_REASONS.format(setting=setting) if setting else NO_OFF_SWITCH.format(opener=m.opener.strip())
            )
        if switch == "none" and label == "on" and not thinks:
            return NotApplicable(self.no_thinking(m))
        return self.mode(m, thinks, unsupported, values)

    def mode(self, m: _Mode, thinks: bool, unsupported: dict[str, str], values: dict[str, Any]) -> ThinkMode:
        think = None
        if thinks:
            field_, strip, shown, think = self.reasoning(m)
            values.update(reasoning_field=field_, reasoning_strip=strip, shows=shown)
        # an empty think block, or the think format itself with nothing in it (Kimi-K3's closed think section)
        own_empty = bool(think and m.marker == m.opener + think.format(reasoning=""))
        final_marker = m.marker if _empty_think_like(m.marker) or own_empty else ""
        if (
            m.opener
            and _empty_think_like(m.opener)
            and m.marker.startswith(m.opener)
            and not m.marker[len(m.opener) :].strip()
        ):
            # the prompt already closed an empty block (GLM think-off `<think></think>`); the whitespace the finished
            # turn writes after it is the model's own first token, generated and trained
            final_marker = m.opener
        if not thinks and m.opener and m.marker != m.opener and m.marker.startswith(m.opener):
            # a mode that does not think, whose prompt leaves its block open (Baichuan-M2's think-off `<think>\n\n`):
            # the finished turn goes on from the prompt, so the rest of its marker (`</think>\n\n`) is the model's
            # own, generated and trained with the answer (never a marker the template writes for it)
            final_marker = m.opener
        empty = ""
        if think is not None:
            if _opens_think(m.opener):
                empty = think.format(reasoning="")
                if m.opener.endswith("\n") and empty.startswith("\n"):
                    empty = empty[1:]
            elif _empty_think_like(final_marker) or own_empty:
                empty = final_marker
        return ThinkMode(
            kwargs=MappingProxyType(m.kwargs),
            opener=m.opener,
            think=think,
            empty_think=empty,
            final_marker=final_marker,
            system_flag=m.flag,
            unsupported=MappingProxyType(dict(unsupported)),
        )

    def answer_after_closed_block(self, m: _Mode, built: Mapping[str, ThinkMode | NotApplicable]) -> None:
        """What the model writes after a prompt that closes an empty block, before its answer (`before_answer`).

        Shown where the finished turn writes the block and goes on from it (Qwen3's final turn), or where the block is
        a thinking mode's own empty block in the format a render proves (MiniCPM5's `<think>\n` + `{reasoning}\n
        </think>\n\n`): the answer follows it as it follows reasoning. Undecided where neither shows it (llama.cpp's
        QwQ think-off ends `<think>\n</think>`, its finished turn drops the block, and no render writes reasoning)."""
        mode = built[m.label]
        own_block = any(isinstance(other, ThinkMode) and _block_of(m.opener, other) for other in built.values())
        if not isinstance(mode, ThinkMode) or mode.thinks:
            return
        if not (m.opener and (_empty_think_like(m.opener) or own_block)):
            self.answer_after_other_prompt(m)
            return
        if m.marker.startswith(m.opener):
            return  # the finished turn writes the block and the answer after it: `_plan` reads it off that render
        decided = {u.rule for u in self.undecided}
        # a format read off this very block shows nothing of what follows it: that would prove the block by itself
        circular = any(f.rule == "think" and OFF_BLOCK_SOURCE in f.note for f in self.findings)
        for label, other in built.items():
            if (
                isinstance(other, ThinkMode)
                and other.think is not None
                and f"think.{label}.think" not in decided
                and not circular
                and _block_of(m.opener, other)
                and m.opener.endswith(_after_closer(other))
            ):
                self.note(
                    f"think.{m.label}.before_answer",
                    "",
                    f"the prompt's block {_show(m.opener)} is think-{label}'s empty block ({_show(other.opener)} + "
                    f"{_show(other.think)}) and ends as that format does after its closer: the answer follows it as "
                    "it follows reasoning",
                )
                return
        self.undecide(
            "before_answer",
            f"think.{m.label}.before_answer",
            "answer-start",
            f"the prompt ends with a closed empty block ({m.opener!r}) and no render shows what follows it (the finished "
            "turn drops the block, and no thinking mode's proven format writes that block): what does the model write "
            "after it, before its answer?",
            f"generation prompt tail {_show(m.suffix)}; final turn {_show(m.before_final + A1)}",
        )

    def answer_after_other_prompt(self, m: _Mode) -> None:
        """A served prompt that is not the start of the finished turn because the two write whitespace differently
        before the answer: vLLM's DeepSeek-V3 tool template ends its prompt `<｜Assistant｜>\n` and writes a finished
        reply after twelve spaces; Granite 20B FC's ends `ASSISTANT: \n` and writes `ASSISTANT: {answer}`; its Llama
        4 JSON template writes `\n` before the prompt's assistant header only. No render shows what the model writes
        after the served prompt: `before_answer` is undecided (the finished turn's own text would be trained after a
        prompt that never precedes it, a role header included where the two differ before it). The same where the
        prompt writes text of its own after the turn header that the finished turn drops and no rule above read (a
        switch token such as `<|nothought|>`, Seed-OSS's budget-0 block closed with `</seed:think>`, Apriel's opener
        `Here are my reasoning steps:\n`): the answer right after it would be a guess."""
        extra = m.suffix[len(m.before_final) :] if m.before_final and m.suffix.startswith(m.before_final) else ""
        if extra.strip():
            self.undecide(
                "before_answer",
                f"think.{m.label}.before_answer",
                "answer-start",
                f"the served prompt ends with {extra!r} after the turn header {m.before_final!r}, and the finished turn "
                "does not write it (a switch, a closed block or an opener of the mode's own): no render shows what the "
                "model writes after it, before its answer",
                f"generation prompt tail {_show(m.suffix)}; final turn {_show(m.before_final + A1)}",
            )
            return
        if not m.suffix or m.before_final.startswith(m.suffix) or _no_space(m.suffix) != _no_space(m.before_final):
            return
        self.undecide(
            "before_answer",
            f"think.{m.label}.before_answer",
            "answer-start",
            f"the served prompt ends {m.suffix!r} after the user turn, and a finished turn writes {m.before_final!r} "
            "there instead, so the served prompt is not the start of the finished turn: what does the model write "
            "after the served prompt, before its answer?",
            f"generation prompt tail {_show(m.suffix)}; final turn {_show(m.before_final + A1)}",
        )

    def history(self, m: _Mode, field_: str) -> str:
        given = _given(field_ if content_form(field_) else "reasoning_content", R1)
        text = self.render([_user(), given, _user(U2)], flag=m.flag, **m.kwargs)
        if isinstance(text, str) and R1 in text:
            return "earlier turns keep the reasoning they were given (derived)"
        return "earlier turns are written without their reasoning (derived)"


def derive(tokenizer: Any, name: str, eos_tokens: Sequence[str] = ()) -> Derivation:
    """The rules a template implies, with the findings they were read from."""
    template = getattr(tokenizer, "chat_template", None)
    if named.names(template) and "default" not in named.names(template):
        raise TemplateDriftError(
            f"{name} has named chat templates ({', '.join(named.names(template))}) and none is `default`: transformers "
            "applies none of them to a request without tools",
            "save the template you serve as the folder's chat_template.jinja, or name it `default` in "
            "tokenizer_config.json",
        )
    d = _Deriver(tokenizer, name, eos_tokens)
    family = d.run()
    if "strftime_now" in d.src:
        d.note(
            "date", "strftime_now", "the template writes today's date: the harness freezes the clock while rendering"
        )
    if d.pins:
        d.note("template_kwargs", dict(d.pins), "the template reads `date_string`: pinned so goldens do not move")
    if getattr(tokenizer, "mistral_common_file", None):  # models/bundled.py: a file mistral-common ships
        family = replace(family, renderer="mistral-common")
        d.note(
            "renderer",
            "mistral-common",
            "a tokenizer file mistral-common ships: every server serves its ids "
            "(encode_chat_completion), the template is the one mistral-common generates for it",
        )
    return Derivation(family, tuple(d.findings))


def eos_tokens(tokenizer: Any, generation_config: Mapping[str, Any] | None) -> tuple[str, ...]:
    """The tokenizer's eos and generation_config's eos ids, as token strings."""
    ids: list[int] = []
    raw = (generation_config or {}).get("eos_token_id")
    ids += raw if isinstance(raw, list) else [raw] if isinstance(raw, int) else []
    found = [tokenizer.convert_ids_to_tokens(i) for i in ids]
    if tokenizer.eos_token:
        found.append(tokenizer.eos_token)
    return tuple(dict.fromkeys(t for t in found if t))


# --- comparing with shipped rules ---------------------------------------------------------------------------------


def _flat(family: Family) -> dict[str, Any]:
    out: dict[str, Any] = {}
    modes = [m for m in (family.on, family.off) if isinstance(m, ThinkMode)]
    no_tools = all("tools" in m.unsupported for m in modes)  # then how tool calls are written is moot
    for f in fields(Family):
        value = getattr(family, f.name)
        if f.name in ("on", "off"):
            if isinstance(value, NotApplicable):
                out[f"think.{f.name}"] = "n/a"
                continue
            for g in fields(ThinkMode):
                v = getattr(value, g.name)
                if g.name == "unsupported":
                    for key in v:
                        out[f"think.{f.name}.unsupported.{key}"] = "unsupported"
                else:
                    out[f"think.{f.name}.{g.name}"] = dict(v) if isinstance(v, Mapping) else v
        elif f.name in ("tool_arguments", "tool_call_content") and no_tools:
            continue
        elif f.name not in PROSE and f.name != "name":
            out[f.name] = dict(value) if isinstance(value, Mapping) else value
    return out


@dataclass(frozen=True)
class Difference:
    rule: str
    derived: Any
    shipped: Any
    why: str = ""  # the rules file's own explanation, where it keeps the rule by hand


def differences(derived: Family, shipped: Family) -> list[Difference]:
    """Every rule where derivation and the rules file disagree (prose aside), with the file's reason if it gives one.
    A rule derivation leaves undecided is no difference where the file decides it by hand and says why."""
    answered = tuple(u for u in derived.undecided if not _why(shipped.reviewed, u.rule))
    a, b = _flat(replace(derived, undecided=answered)), _flat(shipped)
    return [
        Difference(k, a.get(k), b.get(k), _why(shipped.reviewed, k))
        for k in sorted(set(a) | set(b))
        if a.get(k) != b.get(k)
    ]


def _why(kept: Mapping[str, str], rule: str) -> str:
    """The reason the file gives for a rule, or for a table it is in (`think.on` covers `think.on.opener`)."""
    parts = rule.split(".")
    return next((kept[".".join(parts[:n])] for n in range(len(parts), 0, -1) if ".".join(parts[:n]) in kept), "")


def reviewed(derived: Family, shipped: Family) -> Family:
    """The derived rules as the registered file keeps them: its prose, and the rules it keeps by hand (with reasons).

    Equal to the registered rules exactly when every difference is explained under `[reviewed]`.
    """
    if all(d.why for d in differences(derived, shipped)):
        return shipped
    return replace(derived, name=shipped.name, title=shipped.title, history=shipped.history, reviewed=shipped.reviewed)
