"""Turn plans: for each assistant turn, its served prompt and what the model generates after it.

This is the contract's definition made concrete, per turn k:
- `prompt` = the served prompt: the real template over messages[:k] with the generation prompt.
- `pieces` = what follows it in a training sample, each labelled: an empty think block the
  mode writes but the model must not learn (`empty_think`, never trained), the generated
  reasoning (`reasoning`), the answer (`content`: text and tool calls as the template writes
  them) and the stop token (`stop`).

The answer comes from the template itself: the conversation rendered with turn k last and no
reasoning, minus the turn header the served prompt already holds, minus what the template writes
after the stop token. Reasoning is placed by the family rule. Where the template can show the
final turn's reasoning, the plan is compared with the template's own rendering
(`template_render`), which the family tests pin.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from enum import StrEnum
from functools import cached_property
from typing import Any, Protocol

from chat_template_harness.contract.compare import first_difference
from chat_template_harness.contract.conversation import Conversation
from chat_template_harness.contract.render import inline_reasoning, render, template_message, template_messages
from chat_template_harness.errors import TemplateDriftError
from chat_template_harness.models import memo
from chat_template_harness.models.rules import Family, ThinkMode


class Kind(StrEnum):
    PROMPT = "prompt"  # system/user text, headers, history: context the server feeds
    INJECTED = "injected"  # the generation prompt's think opener (QwQ/R1 `<think>\n`, V3.1 `<think>`)
    EMPTY_THINK = "empty_think"  # a think block with nothing in it: never trained
    REASONING = "reasoning"
    CONTENT = "content"
    STOP = "stop"

    @property
    def trained(self) -> bool:
        return self in (Kind.REASONING, Kind.CONTENT, Kind.STOP)


@dataclass(frozen=True)
class Piece:
    kind: Kind
    text: str


# What a turn's notes say, as codes (other modules count and compare these, never the sentences)
EMPTY_THINK_WRITTEN = "empty_think_written"  # no reasoning in the data: the mode's empty think block, untrained
REASONING_DROPPED = "reasoning_dropped"  # the data's reasoning is not trained: the mode does not think
REASONING_DROPPED_NO_OPENER = "reasoning_dropped_no_opener"  # the mode thinks, but the served prompt opens no block
DROPPED_WHY = {
    REASONING_DROPPED: "this mode does not think",
    REASONING_DROPPED_NO_OPENER: "the template opens no think block here",
}


@dataclass(frozen=True)
class Note:
    """A line of a turn's report: `code` for other modules, `text` for people."""

    code: str
    text: str

    def __str__(self) -> str:
        return self.text

    @property
    def drops_reasoning(self) -> bool:
        return self.code in DROPPED_WHY


@dataclass(frozen=True)
class TurnPlan:
    turn: int  # ordinal among assistant turns, from 0
    message_index: int
    prompt: str
    opener: str  # the tail of `prompt` that the mode's generation prompt added ("" if none)
    opener_kind: Kind
    pieces: tuple[Piece, ...]
    notes: tuple[Note, ...]
    template_render: str  # the oracle's verdict: "same", "same but for: …" (each difference named by a rule), "differs"
    header_start: int  # where the generation prompt (role header, opener) begins in `prompt`
    trailer: str  # what the template writes after the stop token (never generated)
    oracle: Agreement  # the template's own render of this finished turn, compared with the plan

    @property
    def disagrees(self) -> bool:
        """The template writes this finished turn differently, and no rule explains it."""
        return self.oracle.verdict == DIFFERS

    @cached_property  # a plan's texts are read many times (grouping, building, checking): joined once
    def body(self) -> str:
        return "".join(p.text for p in self.pieces)

    @cached_property
    def text(self) -> str:
        """The whole single-turn sample: served prompt + everything after it."""
        return self.prompt + self.body

    @property
    def generated(self) -> str:
        """The contract's generated span: what the model emits (trained)."""
        return "".join(p.text for p in self.pieces if p.kind.trained)

    @cached_property
    def edges(self) -> tuple[int, ...]:
        """Where this turn's sample is cut into sides, each tokenized whole (contract, "The rule"): the served
        prompt's end, and the generated span's start where an untrained head (an empty think block the mode
        writes) lies between them. The reply's ids are its own: its leading whitespace is never merged away."""
        end = len(self.prompt)
        head = sum(len(p.text) for p in itertools.takewhile(lambda p: not p.kind.trained, self.pieces))
        return tuple(dict.fromkeys(e for e in (end, end + head) if 0 < e < len(self.text)))


class ServedPrompt(Protocol):
    """Where a server other than transformers' template serves the prompt (`serving/`): the served prompt's text
    for the messages before an assistant turn, given the template's (the generated span stays the template's)."""

    def __call__(self, msgs: list[dict[str, Any]], template_prompt: str) -> str: ...


def plan_turns(
    tokenizer: Any,
    conversation: Conversation,
    family: Family,
    mode: ThinkMode,
    served: ServedPrompt | None = None,
    *,
    final_only: bool = False,
) -> tuple[TurnPlan, ...]:
    """The plan of every assistant turn, in order; of the final one alone with `final_only` (policy `last`: a
    sample of the final turn needs no other turn's plan, its served prompt is the template's own render)."""
    msgs = template_messages(conversation, family, mode)
    renders = _Renders(tokenizer, conversation, family, mode)
    turns = list(enumerate(conversation.assistant_indices))
    plans = tuple(
        _plan(tokenizer, conversation, msgs, k, index, family, mode, renders)
        for k, index in (turns[-1:] if final_only else turns)
    )
    if served is None:
        return plans
    out = tuple(_served(p, served(msgs[: p.message_index], p.prompt)) for p in plans)
    finished = getattr(served, "finished", None)  # an id-native renderer's own finished turn (serving/served.py)
    if finished is not None:
        for p in out:
            finished(msgs[: p.message_index + 1], p.text)
    return out


def _served(plan: TurnPlan, prompt: str) -> TurnPlan:
    """The plan with the server's prompt; its generation prompt is the template's where the server ends the same."""
    header = plan.prompt[plan.header_start :]
    start = len(prompt) - len(header) if prompt.endswith(header) else len(prompt)
    return replace(plan, prompt=prompt, header_start=start)


class _Renders:
    """The template's renders for one conversation, each made once (a turn asks for the same one twice
    wherever its reasoning is not shown)."""

    def __init__(self, tokenizer: Any, conversation: Conversation, family: Family, mode: ThinkMode) -> None:
        self.tokenizer, self.conversation, self.family, self.mode = tokenizer, conversation, family, mode
        self.done: dict[tuple[Any, ...], tuple[str, list[dict[str, Any]]]] = {}

    def __call__(self, messages: list[dict[str, Any]], gen: bool) -> str:
        # the same message objects, in order (kept alive with the render, so their ids are not reused), and the
        # last one by its value: a turn's message is built again for each render (template_message), the same
        # wherever its reasoning is not shown
        key = (gen, *map(id, messages[:-1]), repr(messages[-1]) if messages else "")
        if key not in self.done:
            text = render(
                self.tokenizer,
                messages,
                family=self.family,
                mode=self.mode,
                tools=self.conversation.tools,
                add_generation_prompt=gen,
            )
            self.done[key] = (text, messages)
        return self.done[key][0]

    def generation_suffix(self) -> str:
        """What the generation prompt appends after a user message in this mode (e.g. `<|im_start|>assistant\n`)."""
        return _generation_suffix(self.tokenizer, self.family, self.mode)

    def header_start(self, msgs: list[dict[str, Any]], index: int, prompt: str, head: str) -> int:
        """Where the generation prompt begins in `prompt`: after the history rendered without one.

        Where the prompt ends with the mode's usual generation prompt, that is where it starts (no render);
        otherwise (DeepSeek writes none after a tool result) the history is rendered to find it.
        tests/test_turns_speed.py checks the shortcut against the render on every cell.
        """
        suffix = self.generation_suffix()
        if suffix and prompt.endswith(suffix) and not EXACT_HEADER_START:
            return len(prompt) - len(suffix)
        history = self(msgs[:index], False)
        return len(history) if prompt.startswith(history) else len(head)


# tests turn the shortcut in _Renders.header_start off to compare it with the render it saves
EXACT_HEADER_START = False


_SUFFIXES: dict[tuple[int, str, str], tuple[Any, str]] = memo.kept({})


def _generation_suffix(tokenizer: Any, family: Family, mode: ThinkMode) -> str:
    key = (id(tokenizer), family.name, repr((dict(family.template_kwargs), dict(mode.kwargs), mode.system_flag)))
    if key not in _SUFFIXES:  # the tokenizer is kept with its entry, so its id is not reused
        _SUFFIXES[key] = (tokenizer, _probe_suffix(tokenizer, family, mode))
    return _SUFFIXES[key][1]


def _probe_suffix(tokenizer: Any, family: Family, mode: ThinkMode) -> str:
    probe = [{"role": "user", "content": "Hello."}]
    try:
        with_prompt = render(tokenizer, probe, family=family, mode=mode, add_generation_prompt=True)
        without = render(tokenizer, probe, family=family, mode=mode, add_generation_prompt=False)
    except TemplateDriftError:
        return ""
    return with_prompt[len(without) :] if with_prompt.startswith(without) else ""


def _plan(
    tokenizer: Any,
    conversation: Conversation,
    msgs: list[dict[str, Any]],
    turn: int,
    index: int,
    family: Family,
    mode: ThinkMode,
    rendered: _Renders,
) -> TurnPlan:
    """Turn `turn` (message `index`): its served prompt, and its pieces read off the template's render of the turn
    finished (the reply as the template writes it, the reasoning as the rules place it, the stop), with the
    template's agreement."""
    where = f"{family.title}, turn {turn} (message {index})"
    message = conversation.messages[index]
    prompt = rendered(msgs[:index], True)
    opener = mode.opener if mode.opener and prompt.endswith(mode.opener) else ""
    head = prompt[: len(prompt) - len(opener)]
    reasoning = message.reasoning.strip(family.reasoning_strip) if family.reasoning_strip else message.reasoning
    if not reasoning.strip():
        reasoning = ""  # whitespace-only reasoning is an empty think block: written (maybe), never trained
    thinks_here = mode.thinks and (bool(opener) or not mode.opener)
    # whitespace-only reasoning is an empty think block (contract): the oracle renders the turn as the plan reads it
    # reasoning typed inline into content for a template that hides it would only be printed back as typed (or
    # doubled after the opener): the template is asked about the turn without it
    typed_only = family.reasoning_field == "inline" and not family.template_shows_final_reasoning
    finished = template_message(message, family, with_reasoning=thinks_here and bool(reasoning) and not typed_only)
    full = rendered([*msgs[:index], finished], False)
    lead = None if full.startswith(head) else _prompt_only_lead(head, rendered(msgs[:index], False), full)
    full = _with_lead(full, lead)
    rest = _after_shown_reasoning(full, head, opener, mode, family, reasoning, thinks_here)
    if rest is None:
        bare = rendered([*msgs[:index], template_message(message, family, with_reasoning=False)], False)
        rest = _rest_as_written(_with_lead(bare, lead), head, opener, mode, message.name, where)
    stop, answer = _stop_and_answer(rest, family, bool(message.tool_calls), where)
    if not thinks_here and opener and not full.startswith(head + opener):
        # the prompt closed an empty block and no render shows the turn going on from it: the rules say what the
        # model writes there (`before_answer`; derive leaves it undecided, never "")
        answer = mode.before_answer + answer
    pieces, notes = _pieces(message.reasoning, reasoning, thinks_here, mode, answer, stop)
    if family.next_header:  # the stop is the next message's header: the template writes it with that message
        follow = {"role": "tool" if message.tool_calls else "user", "content": "…"}
        continued = _with_lead(rendered([*msgs[:index], finished, follow], False), lead)
        # the turn as the template writes it last (a template may hide a history turn's reasoning), then the header
        # the template writes after it
        full = full + stop if stop in continued[len(head) :] else full
    agreement = _agreement(full, head, opener, pieces, family, mode, reasoning if thinks_here else "")
    opener_kind = Kind.EMPTY_THINK if mode.opener_is_empty_think else Kind.INJECTED
    header_start = rendered.header_start(msgs, index, prompt, head)
    return TurnPlan(
        turn,
        index,
        prompt,
        opener,
        opener_kind,
        tuple(pieces),
        tuple(notes),
        agreement.verdict,
        header_start,
        family.trailer,
        agreement,
    )


def _rest_as_written(bare: str, head: str, opener: str, mode: ThinkMode, name: str | None, where: str) -> str:
    """The turn after the served prompt's header, read off its render without reasoning (`bare`), with the marker
    the mode writes first (the final marker, else the opener) taken off."""
    if not bare.startswith(head) and name is not None:  # Kimi K2 writes the name as the role header
        raise TemplateDriftError(
            f"{where}: the template writes this reply's name {name!r} in its turn header, which the served "
            f"prompt (written before the model answers, without the name) does not (first difference at "
            f"character {first_difference(bare, head)})",
            "drop `name` from the assistant message to train: the model answers after the header the server writes",
        )
    if not bare.startswith(head):
        raise TemplateDriftError(
            f"{where}: the template writes the turn header differently with and without a generation prompt "
            f"(first difference at character {first_difference(bare, head)}): the reply does not follow the prompt "
            "the template serves (rules written for another template, or a classifier that quotes the reply)",
            "where the rules file is another template's, update it to match this one (`cth derive MODEL` shows "
            "what the template does); a template that quotes the reply instead of writing it after its prompt (a "
            "guard model's) has no training sample for that turn: train with the template the model chats with",
        )
    rest = bare[len(head) :]
    # the longer, final-turn form first: Qwen3 2507 Thinking opens `<think>\n` and writes `<think>\n\n</think>\n\n`
    for marker in (mode.final_marker, opener):
        if marker and rest.startswith(marker):
            return rest[len(marker) :]
    return rest


def _stop_and_answer(rest: str, family: Family, tool_call: bool, where: str) -> tuple[str, str]:
    """The turn's stop and its answer, from the turn's text after its header and markers: the trailer taken off,
    then the stop token it ends with (or the next header the model stops by writing)."""
    ends = rest[-40:]
    if family.trailer:
        if not rest.endswith(family.trailer):
            raise TemplateDriftError(f"{where}: no {family.trailer!r} after the stop token", "update the family rule")
        rest = rest[: -len(family.trailer)]
    if family.next_header:  # the model stops by writing the next turn's header; the template writes it there
        stop = (
            family.next_header.get("tool_call", family.next_header["reply"])
            if tool_call
            else family.next_header["reply"]
        )
        return stop, rest
    found = next((s for s in family.stop_tokens if rest.endswith(s)), None)
    if found is None:
        raise TemplateDriftError(
            f"{where}: the rendered turn does not end with a stop token ({' or '.join(family.stop_tokens)}) and the "
            f"trailer {family.trailer!r}: it ends {ends!r}",
            "update the family rule (a turn that ends with the next header: `next_header`), or declare the cell N/A",
        )
    return found, rest[: -len(found)]


def _pieces(
    given: str, reasoning: str, thinks_here: bool, mode: ThinkMode, answer: str, stop: str
) -> tuple[list[Piece], list[Note]]:
    """What follows the served prompt, labelled, and the notes on what the data had that is not trained (`given`:
    the data's reasoning as written; `reasoning`: as the turn trains it)."""
    notes: list[Note] = []
    pieces: list[Piece] = []
    if thinks_here:
        assert mode.think is not None
        if reasoning:
            pieces.append(Piece(Kind.REASONING, mode.think.format(reasoning=reasoning)))
        elif mode.empty_think:
            pieces.append(Piece(Kind.EMPTY_THINK, mode.empty_think))
            notes.append(
                Note(EMPTY_THINK_WRITTEN, "no reasoning in the data: the empty think block is written but not trained")
            )
    elif given:
        code = REASONING_DROPPED if not mode.thinks else REASONING_DROPPED_NO_OPENER
        notes.append(Note(code, f"reasoning in the data is dropped: {DROPPED_WHY[code]}"))
    if answer:
        pieces.append(Piece(Kind.CONTENT, answer))
    pieces.append(Piece(Kind.STOP, stop))
    return pieces, notes


# tests turn the shortcut in _after_shown_reasoning off to compare it with the render it saves
EXACT_ANSWER = False


def _prompt_only_lead(head: str, base: str, full: str) -> tuple[int, str] | None:
    """(where, text): what the served prompt writes before the conversation that no finished render writes (Muse
    Glimmer's default system turn, written only with a generation prompt), or None.

    `base` is the conversation before the turn rendered without a generation prompt, and `full` the finished turn
    after it. Where `head` is `base` with text inserted after their common start and a generation prompt that the
    finished turn writes next, the turn reads off `full` with that text inserted at the same place: the rest of both
    renders is the template's own, character for character."""
    if not full.startswith(base):
        return None
    start = next((i for i, (a, b) in enumerate(zip(head, base, strict=False)) if a != b), min(len(head), len(base)))
    conversation = base[start:]
    at = head.rfind(conversation) if conversation else -1
    if at <= start or not full[len(base) :].startswith(head[at + len(conversation) :]):
        return None
    return start, head[start:at]


def _with_lead(text: str, lead: tuple[int, str] | None) -> str:
    """A finished render with the served prompt's own text (`_prompt_only_lead`) put where the prompt has it."""
    return text if lead is None else text[: lead[0]] + lead[1] + text[lead[0] :]


def _after_shown_reasoning(
    full: str, head: str, opener: str, mode: ThinkMode, family: Family, reasoning: str, thinks_here: bool
) -> str | None:
    """The finished turn's text after its reasoning, where the template shows that reasoning exactly as the rules
    write it (`full` = head, opener, the rules' think block, then the answer): the answer is then read from the
    template's render of the turn as it is, and the render of the turn without its reasoning is not needed.
    None (render it) anywhere else: no reasoning shown, inline reasoning (typed by the harness), another format.
    The answer is then the template's own for the turn as the data has it, the text the sample trains; a template
    that wrote the answer otherwise without the reasoning would have made the oracle report a difference that no
    served turn has. tests/test_turns_speed.py compares both ways on every built-in cell: the same plans."""
    if EXACT_ANSWER or not (thinks_here and reasoning and mode.think) or family.reasoning_field == "inline":
        return None
    lead = head + opener + mode.think.format(reasoning=reasoning)
    return full[len(lead) :] if full.startswith(lead) else None


DIFFERS = "differs"


@dataclass(frozen=True)
class Agreement:
    """The template as the oracle: its own render of the finished turn against the plan's text for it.

    `template` and `sample` are the turn's text from the assistant header on (opener, pieces,
    trailer), as the template writes it with the turn last and as the plan has it. They may differ
    only where a rule names why, each listed in `explained`: the untrained head of the turn (the
    generation prompt's opener, an empty think block), reasoning the template does not show in a
    finished turn (the rules' format is then unverified, and said so). Nothing of the reply is dropped
    (its leading whitespace included): anything else is `differs`, the rules and the template disagree.
    """

    template: str
    sample: str
    # (rule, what it names): "untrained head", "inline reasoning", "hidden reasoning"
    explained: tuple[tuple[str, str], ...] = ()
    at: int = -1  # where the unexplained difference starts, in the compared remainders (-1: none)
    compared: tuple[str, str] = ("", "")  # the template's and the sample's remainders that were compared

    @property
    def verdict(self) -> str:
        if self.at >= 0:
            return DIFFERS
        return (
            "same but for: " + "; ".join(f"{rule} {what}" for rule, what in self.explained)
            if self.explained
            else "same"
        )

    def describe(self, width: int = 60) -> str:
        """One line for a failure: where the two texts part, both shown."""
        template, sample = self.compared
        return (
            f"the rules and the template disagree here: the template writes {template[self.at : self.at + width]!r} where the "
            f"sample has {sample[self.at : self.at + width]!r} (character {self.at} of the turn; template's turn: "
            f"{self.template[: 4 * width]!r}; sample's turn: {self.sample[: 4 * width]!r})"
        )


def _agreement(
    full: str, head: str, opener: str, pieces: list[Piece], family: Family, mode: ThinkMode, reasoning: str
) -> Agreement:
    """Compare the template's finished turn (`full` from `head` on) with the plan (`opener` + `pieces`)."""
    untrained = opener + "".join(p.text for p in itertools.takewhile(lambda p: not p.kind.trained, pieces))
    sample = opener + "".join(p.text for p in pieces) + family.trailer
    if not full.startswith(head):
        at = first_difference(full, head)
        return Agreement(full[at:], sample, at=0, compared=(full[at:], head[at:]))
    template = full[len(head) :]
    body = sample[len(untrained) :]
    explained: list[tuple[str, str]] = []
    typed = inline_reasoning(reasoning) if reasoning and family.reasoning_field == "inline" else ""
    if typed and family.template_shows_final_reasoning and typed in template:
        template = template.replace(typed, "", 1)  # the harness's own text echoed back proves nothing
        explained.append(("inline reasoning", "(typed by the harness into content: format unverified)"))
    # the turn's untrained head, as the template writes it for a finished turn: one of the rules' markers
    markers = sorted(
        {mode.final_marker, opener + mode.empty_think, opener, mode.empty_think, ""}, key=len, reverse=True
    )
    marker = next(m for m in markers if template.startswith(m))
    if untrained and marker != untrained and marker.startswith(untrained) and not marker[len(untrained) :].strip():
        # the template writes the sample's untrained head and more after it: that text is in no sample at all
        # (GLM think-off's `\n` after `<think></think>` read as part of the block): not a difference a rule names
        marker = untrained
    if not mode.thinks and opener and untrained == opener and marker != opener and marker.startswith(opener):
        # the finished turn goes on from the served prompt's own opener (a block the prompt leaves open, which the
        # model closes: Baichuan-M2's think-off `<think>\n\n`, then `</think>\n\n`): that text is generated, and a
        # sample without it is not the template's turn; no rule explains leaving it out
        return Agreement(template, sample, tuple(explained), at=len(opener), compared=(template, sample))
    rest = template[len(marker) :]
    if marker != untrained:
        explained.append(("untrained head", f"{untrained!r}, template {marker!r}"))
    if mode.before_answer and opener and not template.startswith(opener) and body.startswith(mode.before_answer):
        body = body[len(mode.before_answer) :]  # the template drops the block, and what follows it with the block
        explained.append(("before the answer", f"{mode.before_answer!r} (the rules': no render shows it)"))
    if typed and family.template_shows_final_reasoning:
        body = body.replace(next(p.text for p in pieces if p.kind is Kind.REASONING), "", 1)
    elif reasoning and not family.template_shows_final_reasoning and rest != body:  # shown as the rules write it: same
        shown = next(p.text for p in pieces if p.kind is Kind.REASONING)
        body = body.replace(shown, "", 1)
        if rest.count(reasoning) > body.count(reasoning):  # the rules say the template hides it, and it does not
            return Agreement(template, sample, tuple(explained), at=0, compared=(rest, body))
        explained.append(("hidden reasoning", "(format unverified)"))
    if rest != body:
        return Agreement(template, sample, tuple(explained), at=first_difference(rest, body), compared=(rest, body))
    return Agreement(template, sample, tuple(explained))
