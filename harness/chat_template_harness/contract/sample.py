"""The reference preprocessor: conversation + tokenizer + think mode + policy -> training samples.

Contract (docs/contract.md, "The rule"):
- a sample is the served prompt of its last supervised turn followed by that turn's pieces;
  `input_ids` are the served prompt's ids (its text tokenized whole, `add_special_tokens=False`) followed
  by the reply's, tokenized on its own as the model emits it (`TurnPlan.edges`): nothing of the reply is
  dropped to make one string tokenize whole;
- `loss_mask` is 1 exactly on generated spans (reasoning, content, stop), 0 elsewhere;
- policy `all` supervises every assistant turn: a turn shares the sequence of a later turn only
  where that sequence starts with this turn's own sample, token for token (replay holds);
  otherwise it gets a sample of its own. Policy `last` supervises the final turn only, and plans it
  alone: an earlier turn's served prompt is never rendered (its report line says so);
- samples are ordered by the turn they end with, so the last sample ends with the final turn;
- every turn gets a line in the alignment report: where it is trained and why it was split.
A token that would straddle a trained/untrained boundary is an error, never a silent mask.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from chat_template_harness.contract.compare import first_difference
from chat_template_harness.contract.conversation import Conversation
from chat_template_harness.contract.tokens import Segmented, encode_segments, encode_sides, ids_sides
from chat_template_harness.contract.tokens import ids as token_ids
from chat_template_harness.contract.turns import Kind, Note, ServedPrompt, TurnPlan, plan_turns
from chat_template_harness.errors import HarnessError, TemplateDriftError
from chat_template_harness.models.rules import Family, NotApplicable, Think, ThinkMode, Undecided
from chat_template_harness.models.rules.model import needs


class Policy(StrEnum):
    ALL = "all"
    LAST = "last"


@dataclass(frozen=True)
class Span:
    kind: Kind
    turn: int | None  # the assistant turn the span belongs to (None: shared context)
    start: int  # characters, [start, end)
    end: int
    first_token: int  # tokens, [first_token, end_token)
    end_token: int

    @property
    def trained(self) -> bool:
        return self.kind.trained


@dataclass(frozen=True)
class Sample:
    text: str
    input_ids: tuple[int, ...]
    loss_mask: tuple[int, ...]
    spans: tuple[Span, ...]
    turns: tuple[int, ...]  # supervised turns, ascending
    edges: tuple[int, ...] = ()  # where `text` is cut into sides, each tokenized whole (`tokens.encode_sides`)


@dataclass(frozen=True)
class TurnReport:
    turn: int
    message_index: int
    sample: int  # index of the sample that trains it, -1 when the policy does not train it
    prompt_tokens: int  # -1 for a turn policy `last` does not plan
    shared: bool  # trained in a sequence that also trains later turns
    split_reason: str  # why it has a sample of its own ("" when shared, last, or untrained)
    notes: tuple[Note, ...]
    template_render: str  # the oracle's verdict, or NOT_PLANNED


@dataclass(frozen=True)
class Preprocessed:
    plans: tuple[TurnPlan, ...]  # the planned turns, ascending: every assistant turn, or the final one (policy last)
    samples: tuple[Sample, ...]
    report: tuple[TurnReport, ...]


class CellNotApplicable(HarnessError):
    """Raised for a cell the family rules declare N/A; carries the reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"N/A: {reason}", "choose another model, think mode or fixture (see `cth matrix`)")
        self.reason = reason


class CellUndecided(HarnessError):
    """Raised for a cell whose samples need a rule no render proves: the question, and the line that answers it."""

    def __init__(self, rules: tuple[Undecided, ...]) -> None:
        more = f" (and {len(rules) - 1} more: {', '.join(u.rule for u in rules[1:])})" if len(rules) > 1 else ""
        super().__init__(rules[0].message + more, rules[0].fix)
        self.rules = rules


def resolve_mode(family: Family, think: Think, conversation: Conversation) -> ThinkMode:
    """The family's mode for this cell, or CellNotApplicable with the declared reason, or CellUndecided where the
    cell needs a rule the family leaves undecided (never a default in its place)."""
    mode = family.mode(think)
    if isinstance(mode, NotApplicable):
        raise CellNotApplicable(f"{family.title} think-{think}: {mode.reason}")
    for feature in sorted(conversation.features & set(mode.unsupported)):
        raise CellNotApplicable(f"{family.title} think-{think} with {feature}: {mode.unsupported[feature]}")
    undecided = needs(family, think, conversation.features, mode)
    if undecided:
        raise CellUndecided(undecided)
    return mode


def preprocess(
    tokenizer: Any,
    conversation: Conversation,
    family: Family,
    think: Think,
    policy: Policy = Policy.ALL,
    served: ServedPrompt | None = None,
) -> Preprocessed:
    """The reference samples of a conversation; `served` puts a real server's prompt in place of the template's."""
    mode = resolve_mode(family, think, conversation)
    plans = plan_turns(tokenizer, conversation, family, mode, served, final_only=policy is Policy.LAST)
    by_turn = {p.turn: p for p in plans}
    groups, reasons = _group(tokenizer, by_turn, list(by_turn))
    built = [_build(tokenizer, [by_turn[t] for t in g]) for g in groups]
    samples = tuple(sample for sample, _ in built)
    # a sample's own served prompt is its first side: its tokens are counted there (the same call tokenized it)
    counted = {g[-1]: n for g, (_, n) in zip(groups, built, strict=True) if n is not None}
    where = {t: i for i, g in enumerate(groups) for t in g}
    report = tuple(
        TurnReport(
            turn=p.turn,
            message_index=p.message_index,
            sample=where[p.turn],
            prompt_tokens=counted[p.turn] if p.turn in counted else len(token_ids(tokenizer, p.prompt)),
            shared=groups[where[p.turn]][-1] != p.turn,
            split_reason=reasons.get(p.turn, ""),
            notes=p.notes,
            template_render=p.template_render,
        )
        if p is not None
        else TurnReport(turn, index, -1, -1, False, "", (), NOT_PLANNED)
        for turn, index in enumerate(conversation.assistant_indices)
        for p in (by_turn.get(turn),)
    )
    return Preprocessed(plans, samples, report)


# an earlier turn under policy `last`: not trained, so not planned (no render of its prompt, no oracle)
NOT_PLANNED = "not planned: policy last trains the final turn only"


def _group(
    tokenizer: Any, plans: Mapping[int, TurnPlan], wanted: Sequence[int]
) -> tuple[list[list[int]], dict[int, str]]:
    """Turns (ascending) per sample: later turns first, earlier ones join where their sample is a prefix."""
    ids: dict[int, list[int]] = {}

    def ids_of(turn: int) -> list[int]:  # only where the texts are prefixes: a rewritten history never needs them
        if turn not in ids:
            ids[turn] = ids_sides(tokenizer, plans[turn].text, plans[turn].edges)
        return ids[turn]

    groups: list[list[int]] = []
    reasons: dict[int, str] = {}
    for t in sorted(wanted, reverse=True):
        own = plans[t].text
        home = next(
            (g for g in groups if plans[g[-1]].text.startswith(own) and ids_of(g[-1])[: len(ids_of(t))] == ids_of(t)),
            None,
        )
        if home is not None:
            home.insert(0, t)
            continue
        if groups:
            later = plans[groups[-1][-1]]
            reasons[t] = _why_split(own, later)
        groups.append([t])
    groups.sort(key=lambda g: g[-1])
    return groups, reasons


def _why_split(own: str, later: TurnPlan) -> str:
    at = first_difference(own, later.text)
    if at == len(own):
        return "a later turn's prompt keeps this turn's text but tokenizes it differently"
    return (
        f"the template rewrites this turn in later prompts: they read {later.text[at : at + 24]!r} "
        f"where this turn's sample has {own[at : at + 24]!r}"
    )


def _joined(trained: list[tuple[int, int]]) -> list[list[int]]:
    """The trained character ranges in order, adjacent ones (reasoning, content, stop) as one."""
    spans: list[list[int]] = []
    for start, end in sorted(trained):
        if spans and spans[-1][1] == start:
            spans[-1][1] = end
        else:
            spans.append([start, end])
    return spans


def _mask(text: str, offsets: Sequence[tuple[int, int]], trained: list[tuple[int, int]]) -> list[int]:
    """1 for a token inside the trained character ranges, 0 for one outside (or empty); an error for one across
    an edge. Found by bisection over the offsets where they are in order, else token by token."""
    spans = _joined(trained)
    starts, ends = [a for a, _ in offsets], [b for _, b in offsets]
    if starts != sorted(starts) or ends != sorted(ends):
        return _mask_by_token(text, offsets, spans)
    across = [j for x in {x for span in spans for x in span} for j in _across(starts, ends, x)]
    if across:
        _mixed(text, offsets, min(across))
    mask = bytearray(len(offsets))
    for start, end in spans:
        lo, hi = bisect_left(starts, start), bisect_left(starts, end)
        mask[lo:hi] = b"\x01" * (hi - lo)
    if any(map(int.__eq__, starts, ends)):  # empty tokens are never trained
        for t in (t for t, (a, b) in enumerate(offsets) if a == b):
            mask[t] = 0
    return list(mask)


def _across(starts: list[int], ends: list[int], x: int) -> list[int]:
    """The tokens (in order) whose characters lie on both sides of `x`."""
    j = bisect_left(starts, x) - 1  # the last token starting before x; ends are in order, so only it and its
    found = []  # predecessors with the same end can reach past x
    while j >= 0 and ends[j] > x:
        found.append(j)
        j -= 1
    return found


def _mixed(text: str, offsets: Sequence[tuple[int, int]], i: int) -> None:
    a, b = offsets[i]
    raise TemplateDriftError(
        f"token {i} ({text[a:b]!r}) has trained and untrained characters",
        "the template joins generated text to untrained text inside one token; report this cell",
    )


def _mask_by_token(text: str, offsets: Sequence[tuple[int, int]], spans: list[list[int]]) -> list[int]:
    mask, j = [], 0
    for i, (a, b) in enumerate(offsets):
        while j < len(spans) and spans[j][1] <= a:
            j += 1
        if a == b or j == len(spans) or b <= spans[j][0]:
            mask.append(0)
        elif spans[j][0] <= a and b <= spans[j][1]:
            mask.append(1)
        else:
            _mixed(text, offsets, i)
    return mask


def _mask_segmented(text: str, tokens: Segmented, trained: list[tuple[int, int]]) -> list[int] | bytearray:
    """`_mask` over a text's segments (`tokens.Segmented`): the same mask, found without a step per token."""
    if not tokens.ordered:
        return _mask(text, tokens.flat_offsets(), trained)
    spans = _joined(trained)
    across = [j for x in {x for span in spans for x in span} for j in tokens.across(x)]
    if across:
        _mixed(text, tokens.flat_offsets(), min(across))
    mask = bytearray(len(tokens.ids))
    for start, end in spans:
        lo, hi = tokens.token_at(start), tokens.token_at(end)
        mask[lo:hi] = b"\x01" * (hi - lo)
    for t in tokens.empty_tokens():  # empty tokens are never trained
        mask[t] = 0
    return mask


def _build(tokenizer: Any, plans: Sequence[TurnPlan]) -> tuple[Sample, int | None]:
    """One sample from the plans of the turns it trains (ascending; the last one's text is the sample), and the
    number of tokens of the last one's served prompt where the sample shows it (None: count them apart)."""
    text = plans[-1].text
    if SEGMENTED:
        return _build_segmented(tokenizer, plans)
    ids, offsets = encode_sides(tokenizer, text, plans[-1].edges)
    regions = _regions(plans)
    mask = _mask(text, offsets, [(start, end) for kind, _, start, end in regions if kind.trained])
    starts = [a for a, _ in offsets]
    spans = tuple(
        Span(kind, turn, start, end, bisect_left(starts, start), bisect_left(starts, end))
        for kind, turn, start, end in regions
    )
    return Sample(text, tuple(ids), tuple(mask), spans, tuple(p.turn for p in plans), plans[-1].edges), None


# tests turn the segmented build off to compare it with the per-token one on every cell
SEGMENTED = True


def _regions(plans: Sequence[TurnPlan]) -> list[tuple[Kind, int | None, int, int]]:
    """The sample's regions in order: (kind, turn, start, end) in characters, none empty."""
    regions: list[tuple[Kind, int | None, int, int]] = []
    cursor = 0
    for plan in plans:
        body_start = len(plan.prompt)
        opener_start = body_start - len(plan.opener)
        regions.append((Kind.PROMPT, None, cursor, opener_start))
        regions.append((plan.opener_kind, plan.turn, opener_start, body_start))
        for piece in plan.pieces:
            regions.append((piece.kind, plan.turn, body_start, body_start + len(piece.text)))
            body_start += len(piece.text)
        cursor = body_start
    return [r for r in regions if r[2] < r[3]]


def _build_segmented(tokenizer: Any, plans: Sequence[TurnPlan]) -> tuple[Sample, int | None]:
    """`_build` with the text's tokens kept per segment (`tokens.encode_segments`): the same sample."""
    text = plans[-1].text
    edges = plans[-1].edges
    tokens = encode_segments(tokenizer, text, edges)
    prompt_end = len(plans[-1].prompt)  # the first side ends there where it is an edge
    prompt_tokens = tokens.tokens[tokens.chars.index(prompt_end)] if edges and edges[0] == prompt_end else None
    regions = _regions(plans)
    mask = _mask_segmented(text, tokens, [(start, end) for kind, _, start, end in regions if kind.trained])
    spans = tuple(
        Span(kind, turn, start, end, tokens.token_at(start), tokens.token_at(end))
        if tokens.ordered
        else _span_by_offsets(kind, turn, start, end, tokens)
        for kind, turn, start, end in regions
    )
    sample = Sample(text, tuple(tokens.ids), tuple(mask), spans, tuple(p.turn for p in plans), edges)
    return sample, prompt_tokens


def _span_by_offsets(kind: Kind, turn: int | None, start: int, end: int, tokens: Segmented) -> Span:
    starts = [a for a, _ in tokens.flat_offsets()]
    return Span(kind, turn, start, end, bisect_left(starts, start), bisect_left(starts, end))
