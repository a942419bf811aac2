"""The contract's eight invariants, as checks that work on any preprocessor's output.

A sample is judged from its `input_ids` and `loss_mask` alone (its `text`, where it has one, is
compared too), against the reference turn plans of the same cell: served prompts and generated
spans computed from the real template, independently of how the sample was built.

Each check returns readable Violations (invariant, sample, turn, token positions, the tokens
themselves); an empty list means the sample set obeys the contract.
"""

from __future__ import annotations

import re
import tomllib
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from importlib import resources
from itertools import compress
from typing import Any, Protocol

from chat_template_harness.contract.compare import first_difference
from chat_template_harness.contract.tokens import decode, encode_sides, normalized, token_strings
from chat_template_harness.contract.tokens import ids as token_ids
from chat_template_harness.contract.turns import Kind, TurnPlan

MAX_SHOWN = 10


def _empty_think() -> re.Pattern[str]:
    """data/empty_think.toml, read once: every template's spelling of an empty think block, as one regex."""
    raw = tomllib.loads(resources.files("chat_template_harness").joinpath("data/empty_think.toml").read_text("utf-8"))
    return re.compile("|".join(entry["pattern"] for entry in raw["spelling"]))


# A think block with nothing but whitespace inside, in any template's spelling (the data file says whose and why)
EMPTY_THINK = _empty_think()


# a finding's fix, by its code, appended where the violation is written
FIXES = {
    "clock": "pin the date: date_string, frozen clock",
    "clock.own-code": "the chat template reads no clock: your preprocessor writes the date itself, e.g. datetime.now(); "
    "pass a fixed date instead",
    "clock.unpinnable": "this template writes strftime_now() with no variable to pin it: freeze the clock around your "
    "apply_chat_template call, e.g. `with time_machine.travel(datetime(2024, 7, 26), tick=False):`",
}


class Invariant(Enum):
    REPLAY = (1, "inference replay")
    NO_INJECTED_LOSS = (2, "no empty-think / injected-token loss")
    COMPLETE = (3, "complete supervision")
    WHOLE_STRING = (4, "whole-string tokenization")
    NO_STRADDLE = (5, "no straddling token")
    DETERMINISM = (6, "determinism")
    # the template as the oracle: its own render of each finished turn agrees with the plan the
    # samples are judged by, but for differences a rule names (contract: "Templates the harness has never seen")
    TEMPLATE = (7, "template oracle")
    # a plug-in's labels: each trained position carries the id the model must predict there (contract: "Labels")
    LABELS = (8, "label ids")

    @property
    def number(self) -> int:
        return self.value[0]

    @property
    def title(self) -> str:
        return self.value[1]


class SampleLike(Protocol):
    @property
    def input_ids(self) -> Sequence[int]: ...

    @property
    def loss_mask(self) -> Sequence[int]: ...


@dataclass(frozen=True)
class Violation:
    invariant: Invariant
    detail: str
    sample: int | None = None
    turn: int | None = None
    positions: tuple[int, ...] = ()
    tokens: tuple[str, ...] = ()
    # what it means for training, where the check knows more than its invariant (contract/kinds.py): "" = the invariant's
    kind: str = ""
    # which finding this is, for the modules that word its fix (e.g. where a date that moves with the clock comes from)
    code: str = ""

    def format(self) -> str:
        where = " ".join(
            part
            for part in (
                f"sample {self.sample}" if self.sample is not None else "",
                f"turn {self.turn}" if self.turn is not None else "",
            )
            if part
        )
        head = f"[{self.invariant.number} {self.invariant.title}]" + (f" {where}:" if where else "")
        line = f"{head} {self.detail}"
        if self.code in FIXES:
            line += f" ({FIXES[self.code]})"
        if self.positions and not self.tokens:
            line += f"\n    from position {self.positions[0]}"
        elif self.positions:
            shown = ", ".join(
                f"{p}:{t!r}" for p, t in zip(self.positions[:MAX_SHOWN], self.tokens[:MAX_SHOWN], strict=False)
            )
            more = f" … (+{len(self.positions) - MAX_SHOWN})" if len(self.positions) > MAX_SHOWN else ""
            line += f"\n    tokens {shown}{more}"
        return line


@dataclass(frozen=True)
class _Region:
    turn: int
    kind: Kind
    start: int
    end: int
    label: str = ""  # what the template wrote there, for injected regions
    violation_kind: str = "H"  # what training it means (contract/kinds.py): H injected, E empty think, T trailer


def check_samples(
    tokenizer: Any,
    plans: Sequence[TurnPlan],
    samples: Sequence[SampleLike],
    *,
    required_turns: Iterable[int] | None = None,
) -> list[Violation]:
    """Invariants 1-5 and 7 (the template oracle, on the plans) over one cell's samples. `required_turns`: turns that must be trained (default: all)."""
    violations: list[Violation] = [
        Violation(Invariant.TEMPLATE, plan.oracle.describe(), turn=plan.turn) for plan in plans if plan.disagrees
    ]
    trained_turns: set[int] = set()
    plans = _as_tokenized(tokenizer, plans)
    for index, given in enumerate(samples):
        sample, relabelled = _as_targets(given)
        found, turns = _check_one(tokenizer, plans, sample, index)
        if found and relabelled and _labels_add(tokenizer, plans, given, found, index):
            found.insert(0, _label_violation(tokenizer, given, relabelled, index))
        violations += found
        trained_turns |= turns
    required = set(required_turns) if required_turns is not None else {p.turn for p in plans}
    message_of = {p.turn: p.message_index for p in plans}
    for turn in sorted(required - trained_turns):
        violations.append(
            Violation(
                Invariant.COMPLETE,
                f"turn {turn} (message {message_of.get(turn, '?')}) is trained in no sample after its served prompt",
                turn=turn,
            )
        )
    return violations


@dataclass(frozen=True)
class _Targets:
    input_ids: tuple[int, ...]
    loss_mask: tuple[int, ...]


def _as_targets(sample: SampleLike) -> tuple[SampleLike, tuple[int, ...]]:
    """A sample as what it trains: at each trained position, its label (the id the model is taught to predict
    there), which is the input id in a right sample. Also the trained positions whose label is another id.

    Judging the labels, not the input ids, is what the model learns; it also reads a right sample whose
    last label is the stop token where its input holds the next header (LLaMA-Factory's efficient_eos).
    """
    labels = getattr(sample, "labels", None)
    if labels is None:
        return sample, ()
    ids, mask = tuple(sample.input_ids), tuple(sample.loss_mask)
    differ = tuple(p for p, (i, m, lab) in enumerate(zip(ids, mask, labels, strict=True)) if m and lab != i)
    if not differ:
        return sample, ()
    return _Targets(tuple(lab if m else i for i, m, lab in zip(ids, mask, labels, strict=True)), mask), differ


def _labels_add(
    tokenizer: Any, plans: Sequence[TurnPlan], given: SampleLike, found: list[Violation], index: int
) -> bool:
    """Whether what the labels teach breaks the contract where the input ids alone do not: a right label over
    another input id (the stop token where efficient_eos writes the next header) is no fault of the labels, even
    in a sample that fails for another reason."""
    as_inputs, _ = _check_one(tokenizer, plans, _Targets(tuple(given.input_ids), tuple(given.loss_mask)), index)

    def key(v: Violation) -> tuple[Any, ...]:
        return v.invariant, v.kind, v.turn

    return bool({key(v) for v in found} - {key(v) for v in as_inputs})


def _label_violation(tokenizer: Any, given: SampleLike, positions: tuple[int, ...], index: int) -> Violation:
    labels: Sequence[int] = getattr(given, "labels", None) or ()  # only samples that return labels reach here
    shown = positions[:MAX_SHOWN]
    pairs = ", ".join(
        f"{p}: label {token_strings(tokenizer, [labels[p]])[0]!r} on input {token_strings(tokenizer, [given.input_ids[p]])[0]!r}"
        for p in shown[:3]
    )
    return Violation(
        Invariant.LABELS,
        f"{len(positions)} trained position(s) carry a label that is not the input id there, and what the labels "
        f"teach breaks the contract ({pairs}): a trained position must carry the id the model must predict there "
        "(labels aligned with input_ids; the model shifts them)",
        sample=index,
        positions=shown,
        tokens=tuple(token_strings(tokenizer, [labels[p] for p in shown])),
    )


@dataclass
class _Seen:
    """One sample as the checks read it: its ids and mask, its decoded text, each token's characters, and the
    template's regions in that text (trained, injected) with the turns served in it."""

    tokenizer: Any
    plans: Sequence[TurnPlan]
    ids: list[int]
    mask: list[int]
    text: str
    strings: _Strings
    trained_regions: list[_Region]
    injected: list[_Region]
    appearing: list[TurnPlan]
    index: int
    offsets: list[tuple[int, int]]
    edges: tuple[int, ...]
    offsets_exact: bool
    starts: list[int] | None = None  # each token's first character, where they are in order (for bisection)

    def violation(self, invariant: Invariant, detail: str, at: int | None = None, **kw: Any) -> Violation:
        """A violation of this sample; with `at`, showing the four tokens from there."""
        if at is not None:
            kw.setdefault("positions", tuple(range(at, min(at + 4, len(self.ids)))))
            kw.setdefault("tokens", tuple(self.strings[at : at + 4]))
        return Violation(invariant, detail, sample=self.index, **kw)


def _check_one(
    tokenizer: Any, plans: Sequence[TurnPlan], sample: SampleLike, index: int
) -> tuple[list[Violation], set[int]]:
    """Every invariant on one sample, in the order a reader checks them: the ids are their text's tokenization (4),
    each trained token lies in a generated span (1, 2) after its served prompt replayed, each trained turn's span
    is trained whole (3), no token straddles an edge (5). Returns its violations and the turns it trains."""
    ids = list(map(int, sample.input_ids))
    mask = list(map(int, sample.loss_mask))
    if len(ids) != len(mask):
        return [Violation(Invariant.WHOLE_STRING, f"{len(ids)} ids but {len(mask)} mask values", sample=index)], set()
    seen, out = _seen(tokenizer, plans, sample, ids, mask, index)
    trained_by_turn, found = _placed(seen)
    out += found
    out += _replayed(seen, trained_by_turn)
    found, turns_trained = _complete(seen, trained_by_turn)
    out += found
    out += _unstraddled(seen, turns_trained)
    out += _into_next_message(plans, seen.text, seen.offsets, mask, seen.strings, index, seen.trained_regions)
    return out, turns_trained


def _seen(
    tokenizer: Any, plans: Sequence[TurnPlan], sample: SampleLike, ids: list[int], mask: list[int], index: int
) -> tuple[_Seen, list[Violation]]:
    """The sample's view, and invariant 4's first findings: the ids are not their text's tokenization with each
    side of a prompt edge whole (offsets are exact only then), or the sample's own text is not what they decode to."""
    text = decode(tokenizer, ids)
    strings = _Strings(tokenizer, ids)  # each token's text, read only for a violation
    trained_regions, injected, appearing = _layout(plans, text)
    edges, offsets = _sides(tokenizer, text, ids, appearing)
    seen = _Seen(
        tokenizer, plans, ids, mask, text, strings, trained_regions, injected, appearing, index,
        offsets or [], edges, offsets is not None,
    )  # fmt: skip
    out: list[Violation] = []
    if offsets is None:
        expected = encode_sides(tokenizer, text, appearing[-1].edges if appearing else ())[0]
        at = first_difference(expected, ids)
        out.append(
            seen.violation(
                Invariant.WHOLE_STRING,
                f"ids are not the tokenization of their own text, each side of the prompt edge whole: from position {at} "
                f"the text tokenizes as {token_strings(tokenizer, expected[at : at + 4])!r}",
                at,
            )
        )
        seen.offsets = _approximate_offsets(strings)
    given = getattr(sample, "text", None)
    if isinstance(given, str) and normalized(tokenizer, given) != text:
        at = first_difference(given, text)
        out.append(
            seen.violation(
                Invariant.WHOLE_STRING,
                f"decode(input_ids) differs from the sample's text at character {at}: {text[at : at + 20]!r} vs {given[at : at + 20]!r}",
            )
        )
    first_chars = [a for a, _ in seen.offsets]
    seen.starts = first_chars if first_chars == sorted(first_chars) else None
    return seen, out


def _region_of(regions: list[_Region], a: int, b: int) -> _Region | None:
    return next((r for r in regions if a < r.end and b > r.start), None)


def _placed(seen: _Seen) -> tuple[dict[int, list[int]], list[Violation]]:
    """Invariants 1 and 2: each trained token placed in the generated span of a turn (its positions by turn), or
    found on text the template writes (an injected region) or on no generated span (stray)."""
    stray: list[int] = []
    injected_hits: dict[tuple[int, str, str], list[int]] = {}
    trained_by_turn: dict[int, list[int]] = {}
    # empty think blocks read off the text itself, except inside an answer, where such text is the data's own
    # (a tool call's arguments may hold `<think></think>`); in reasoning or anywhere else they are never trained
    from_text = [
        r
        for r in seen.injected
        if r.turn == -1
        and not any(c.kind is Kind.CONTENT and c.start <= r.start and r.end <= c.end for c in seen.trained_regions)
    ]
    containing = _Containing(seen.trained_regions)
    bulk = _inside_runs(seen.offsets, seen.mask, seen.trained_regions, from_text)
    if bulk is not None:
        trained_by_turn, rest = bulk
    else:
        rest = [t for t, m in enumerate(seen.mask) if m]
    for t in rest:
        a, b = seen.offsets[t]
        empty = _region_of(from_text, a, b) if from_text else None
        inside = None if empty is not None and b > a else containing(a, b)
        if inside is not None:
            trained_by_turn.setdefault(inside.turn, []).append(t)
            continue
        hit = _region_of(seen.injected, a, b)
        if hit is not None:
            injected_hits.setdefault((hit.turn, hit.label, hit.violation_kind), []).append(t)
        else:
            stray.append(t)
    for positions in trained_by_turn.values():
        positions.sort()
    out = [
        seen.violation(
            Invariant.NO_INJECTED_LOSS,
            f"{len(positions)} trained token(s) are {what}, written by the template, never generated",
            turn=turn if turn >= 0 else None,
            positions=tuple(positions),
            tokens=tuple(seen.strings[p] for p in positions),
            kind=kind,
        )
        for (turn, what, kind), positions in injected_hits.items()
    ]
    for run in _runs(stray):
        out.append(_stray_violation(seen, run))
    return trained_by_turn, out


def _replayed(seen: _Seen, trained_by_turn: dict[int, list[int]]) -> list[Violation]:
    """Invariant 2's replay: the ids before each trained turn's span are its served prompt's tokens; and invariant
    4's sides: those of the last trained turn, its served prompt whole, then its reply on its own."""
    out = []
    tokenizer, ids = seen.tokenizer, seen.ids
    for plan in seen.appearing:
        if plan.turn not in trained_by_turn:
            continue
        prompt_ids = token_ids(tokenizer, plan.prompt)
        if ids[: len(prompt_ids)] != prompt_ids:
            at = first_difference(ids, prompt_ids)
            out.append(
                seen.violation(
                    Invariant.REPLAY,
                    f"the ids before the generated span are not the served prompt's tokens: at position {at} the "
                    f"server has {token_strings(tokenizer, prompt_ids[at : at + 1])!r}",
                    turn=plan.turn,
                    positions=(at,),
                    tokens=tuple(seen.strings[at : at + 1]),
                )
            )
    last = max((p for p in seen.appearing if p.turn in trained_by_turn), key=lambda p: p.turn, default=None)
    if seen.offsets_exact and last is not None and seen.edges != last.edges:
        served_ids = encode_sides(tokenizer, seen.text, last.edges)[0]
        if served_ids != ids:
            at = first_difference(served_ids, ids)
            out.append(
                seen.violation(
                    Invariant.WHOLE_STRING,
                    f"ids are not turn {last.turn}'s served tokenization (its prompt whole, then its reply on its own): "
                    f"from position {at} it is {token_strings(tokenizer, served_ids[at : at + 4])!r}",
                    at,
                    turn=last.turn,
                )
            )
    return out


def _complete(seen: _Seen, trained_by_turn: dict[int, list[int]]) -> tuple[list[Violation], set[int]]:
    """Invariant 3, complete supervision: each trained turn's generated span is trained whole. Also the turns
    this sample trains."""
    out = []
    turns_trained = set()
    for plan in seen.appearing:
        positions = trained_by_turn.get(plan.turn, [])
        if not positions:
            continue
        regions = [r for r in seen.trained_regions if r.turn == plan.turn]
        expected = _tokens_within(seen.offsets, seen.starts, regions[0].start, regions[-1].end)
        missing = sorted(set(expected) - set(positions))
        got = decode(seen.tokenizer, [seen.ids[t] for t in positions])
        if missing or got != plan.generated:
            detail = (
                f"{len(missing)} token(s) of the generated span are not trained"
                if missing
                else f"trained tokens decode to {_short(got)!r}, the generated span is {_short(plan.generated)!r}"
            )
            out.append(
                seen.violation(
                    Invariant.COMPLETE,
                    detail,
                    turn=plan.turn,
                    positions=tuple(missing),
                    tokens=tuple(seen.strings[t] for t in missing),
                    kind=_missing_kind(regions, seen.offsets, missing),
                )
            )
        turns_trained.add(plan.turn)
    return out, turns_trained


def _unstraddled(seen: _Seen, turns_trained: set[int]) -> list[Violation]:
    """Invariant 5, no straddling token (character ranges are exact only where each side is tokenized whole); the
    edges are those of the turns this sample trains: a turn it does not train has no mask edge here (its reply may
    share a token with its header inside a later served prompt, tokenized whole as the server does)."""
    if not seen.offsets_exact:
        return []
    regions = [r for r in seen.trained_regions if r.turn in turns_trained]
    return [
        seen.violation(
            Invariant.NO_STRADDLE,
            "a token holds characters on both sides of a generated span's edge",
            positions=(t,),
            tokens=(seen.strings[t],),
        )
        for t in _straddling(seen.offsets, seen.starts, regions)
    ]


def _sides(
    tokenizer: Any, text: str, ids: list[int], appearing: Sequence[TurnPlan]
) -> tuple[tuple[int, ...], list[tuple[int, int]] | None]:
    """Where the ids cut the text into sides each tokenized whole, and the tokens' character ranges: the edges of
    a turn served in this text (its served prompt's end; the latest turn first), or none (the whole text). None
    for the offsets where no such cut gives the ids: a split inside a side, or ids that are no tokenization."""
    for edges in (*(p.edges for p in reversed(appearing)), ()):
        found, offsets = encode_sides(tokenizer, text, edges)
        if found == ids:
            return edges, offsets
    return (), None


def _into_next_message(
    plans: Sequence[TurnPlan],
    text: str,
    offsets: Sequence[tuple[int, int]],
    mask: Sequence[int],
    strings: Sequence[str],
    index: int,
    generated: Sequence[_Region] = (),
) -> list[Violation]:
    """2. A trained run that goes on past a stop token (and the template's trailer) into what follows it: the next
    message, another role's text (the next user turn, a tool result). A generated span ends with its stop token and
    the next one starts after a header, so no right sample trains across that gap (kind N). A token inside a generated
    span is never "past" a stop: the data may hold the stop's text itself (a tool call's arguments, a quoted reply)."""
    stops = {piece.text for p in plans for piece in p.pieces if piece.kind is Kind.STOP and piece.text}
    trailers = sorted({p.trailer for p in plans if p.trailer}, key=len, reverse=True)
    found = []
    for run in _runs([t for t, m in enumerate(mask) if m]):
        lo, hi = offsets[run[0]][0], offsets[run[-1]][1]
        ends = [text.find(stop, lo, hi) + len(stop) for stop in stops if text.find(stop, lo, hi) != -1]
        if not ends:
            continue
        after = min(ends)
        after += next((len(t) for t in trailers if text.startswith(t, after)), 0)
        beyond = [
            t
            for t in run
            if offsets[t][0] >= after
            and offsets[t][1] > offsets[t][0]
            and not any(r.start <= offsets[t][0] and offsets[t][1] <= r.end for r in generated)
        ]
        if beyond:
            found.append(
                Violation(
                    Invariant.NO_INJECTED_LOSS,
                    f"{len(beyond)} trained token(s) run past the stop token into the next message "
                    f"({_short(text[after : offsets[beyond[-1]][1]])!r}): another role's text, never generated by this turn",
                    sample=index,
                    positions=tuple(beyond),
                    tokens=tuple(strings[t] for t in beyond),
                    kind="N",
                )
            )
    return found


def _as_tokenized(tokenizer: Any, plans: Sequence[TurnPlan]) -> Sequence[TurnPlan]:
    """The plans' texts as the tokenizer normalizes them (NFC for Qwen), to compare with decoded ids."""
    if not any(normalized(tokenizer, p.text) != p.text for p in plans):
        return plans
    import dataclasses

    def norm(text: str) -> str:
        return normalized(tokenizer, text)

    return [
        dataclasses.replace(
            p,
            prompt=norm(p.prompt),
            opener=norm(p.opener),
            trailer=norm(p.trailer),
            pieces=tuple(dataclasses.replace(piece, text=norm(piece.text)) for piece in p.pieces),
            header_start=len(norm(p.prompt[: p.header_start])),
        )
        for p in plans
    ]


def _layout(plans: Sequence[TurnPlan], text: str) -> tuple[list[_Region], list[_Region], list[TurnPlan]]:
    """Where each turn's generated span and injected text lie in this sample text, for turns that appear as served."""
    trained_regions: list[_Region] = []
    injected: list[_Region] = []
    appearing: list[TurnPlan] = []
    for plan in plans:
        if not text.startswith(plan.prompt):
            continue
        start = len(plan.prompt)
        opener_start = start - len(plan.opener)
        if plan.opener:
            empty = plan.opener_kind is Kind.EMPTY_THINK
            label = "an empty think block" if empty else "the generation prompt's opener"
            injected.append(_Region(plan.turn, plan.opener_kind, opener_start, start, label, "E" if empty else "H"))
        if plan.header_start < opener_start:
            injected.append(
                _Region(
                    plan.turn, Kind.INJECTED, plan.header_start, opener_start, "the generation prompt's role header"
                )
            )
        if not text.startswith(plan.body, start):
            continue
        appearing.append(plan)
        for piece in plan.pieces:
            region = _Region(plan.turn, piece.kind, start, start + len(piece.text), "an empty think block", "E")
            (trained_regions if piece.kind.trained else injected).append(region)
            start = region.end
        if plan.trailer and text.startswith(plan.trailer, start):
            injected.append(
                _Region(
                    plan.turn,
                    Kind.INJECTED,
                    start,
                    start + len(plan.trailer),
                    "the template's text after the stop token",
                    "T",
                )
            )
    for m in EMPTY_THINK.finditer(text):
        injected.append(_Region(-1, Kind.EMPTY_THINK, m.start(), m.end(), "an empty think block", "E"))
    # the family's own spelling of its empty block, newlines included (Qwen3's `<think>\n\n</think>\n\n`),
    # wherever it stands: also where the sample's prompt is not the served one
    spellings = {p.opener for p in plans if p.opener_kind is Kind.EMPTY_THINK and p.opener}
    spellings |= {piece.text for p in plans for piece in p.pieces if piece.kind is Kind.EMPTY_THINK}
    # whole blocks only: a bare `</think>\n\n` (QwQ/R1 after their opener) also closes every real reasoning
    for spelling in sorted(s for s in spellings if "<think>" in s and "</think>" in s):
        at = text.find(spelling)
        while at != -1:
            injected.append(_Region(-1, Kind.EMPTY_THINK, at, at + len(spelling), "an empty think block", "E"))
            at = text.find(spelling, at + len(spelling))
    return trained_regions, injected, appearing


@dataclass(frozen=True)
class TokenRole:
    """What the contract says of one token of a sample: may it be trained, and what is it."""

    trainable: bool
    kind: Kind  # REASONING/CONTENT/STOP where trainable; EMPTY_THINK/INJECTED for template injections; else PROMPT
    turn: int | None


def token_roles(tokenizer: Any, plans: Sequence[TurnPlan], ids: Sequence[int]) -> list[TokenRole]:
    """Per token: whether it lies in a generated span whose served prompt replays, else what it is."""
    text = decode(tokenizer, ids)
    trained_regions, injected, appearing = _layout(_as_tokenized(tokenizer, plans), text)
    offsets = _sides(tokenizer, text, list(ids), appearing)[1]
    if offsets is None:
        offsets = _approximate_offsets(token_strings(tokenizer, ids))
    roles = []
    for a, b in offsets:
        inside = _containing(trained_regions, a, b)
        hit = next((r for r in injected if a < r.end and b > r.start), None)
        if inside is not None:
            roles.append(TokenRole(True, inside.kind, inside.turn))
        elif hit is not None:
            roles.append(TokenRole(False, hit.kind, hit.turn if hit.turn >= 0 else None))
        else:
            roles.append(TokenRole(False, Kind.PROMPT, None))
    return roles


def _tokens_within(offsets: Sequence[tuple[int, int]], starts: list[int] | None, lo: int, hi: int) -> list[int]:
    """The tokens (not empty) whose characters lie in [lo, hi); `starts`, where the offsets are in order, finds
    the first one by bisection instead of a scan of the whole sample for every turn."""
    first = bisect_left(starts, lo) if starts is not None else 0
    last = bisect_left(starts, hi, lo=first) if starts is not None else len(offsets)
    return [
        t for t in range(first, last) if offsets[t][0] >= lo and offsets[t][1] <= hi and offsets[t][1] > offsets[t][0]
    ]


def _inside_runs(
    offsets: Sequence[tuple[int, int]], mask: Sequence[int], regions: list[_Region], from_text: list[_Region]
) -> tuple[dict[int, list[int]], list[int]] | None:
    """The trained tokens inside each turn's trained regions, found by bisection over the offsets, and the trained
    tokens left for the per-token path (none in a right sample). The same answer as `_containing` token by token:
    a turn's adjacent regions form one run, and a token is inside a run where its characters are, unless it
    overlaps an empty think block read off the text. None where offsets or regions are out of order."""
    starts, ends = [a for a, _ in offsets], [b for _, b in offsets]
    if (
        starts != sorted(starts)
        or ends != sorted(ends)
        or any(r.end > n.start for r, n in zip(regions, regions[1:], strict=False))
    ):
        return None
    runs: list[list[int]] = []
    for r in regions:
        if runs and runs[-1][0] == r.turn and runs[-1][2] == r.start:
            runs[-1][2] = r.end
        else:
            runs.append([r.turn, r.start, r.end])
    excluded = {
        t
        for f in from_text
        for t in range(bisect_right(ends, f.start), bisect_left(starts, f.end))
        if ends[t] > starts[t]
    }
    taken = bytearray(len(offsets))
    by_turn: dict[int, list[int]] = {}
    for turn, start, end in runs:
        lo, hi = bisect_left(starts, start), bisect_right(ends, end)
        inside = [t for t in compress(range(lo, hi), mask[lo:hi]) if t not in excluded and not taken[t]]
        for t in inside:
            taken[t] = 1
        if inside:
            by_turn.setdefault(turn, []).extend(inside)
    rest = [t for t, m in enumerate(mask) if m and not taken[t]]
    return by_turn, rest


class _Containing:
    """`_containing` over fixed regions, the candidate found by bisection where the regions lie in order without
    overlapping (as `_layout` gives them); otherwise by the plain scan."""

    def __init__(self, regions: list[_Region]) -> None:
        self.regions = regions
        self.starts = [r.start for r in regions]
        ordered = all(r.end <= n.start for r, n in zip(regions, regions[1:], strict=False))
        self.candidates = self._near if ordered else (lambda a: regions)

    def _near(self, a: int) -> list[_Region]:
        i = bisect_right(self.starts, a)
        return self.regions[max(i - 2, 0) : i]  # the region starting at or before `a`, and the one before it

    def __call__(self, a: int, b: int) -> _Region | None:
        first = next((r for r in self.candidates(a) if r.start <= a < r.end or (a == b == r.end)), None)
        return _containing(self.regions, a, b, first) if first is not None else None


def _containing(regions: list[_Region], a: int, b: int, first: _Region | None = None) -> _Region | None:
    """The trained region holding [a, b); a token across two adjacent trained regions of one turn
    (reasoning|content, content|stop) belongs to the first: no mask edge lies between them."""
    first = first or next((r for r in regions if r.start <= a < r.end or (a == b == r.end)), None)
    if first is None:
        return None
    if b <= first.end:
        return first
    covered = first.end
    for r in sorted(regions, key=lambda r: r.start):
        if r.turn == first.turn and r.start <= covered < r.end:
            covered = r.end
    return first if covered >= b else None


def _straddling(offsets: Sequence[tuple[int, int]], starts: list[int] | None, regions: list[_Region]) -> list[int]:
    """The tokens holding characters on both sides of a trained region's edge (a < edge < b), in order, except
    inside adjacent trained regions. Where the offsets' starts and ends both rise, the tokens across an edge are
    one run found by bisection per edge (a sample has few edges and many tokens); otherwise each token is asked."""
    bounds = sorted({r.start for r in regions} | {r.end for r in regions})
    ends = [b for _, b in offsets] if starts is not None else None
    if starts is not None and ends is not None and ends == sorted(ends):
        across = sorted({t for e in bounds for t in range(bisect_right(ends, e), bisect_left(starts, e))})
    else:
        across = [
            t for t, (a, b) in enumerate(offsets) if (i := bisect_right(bounds, a)) < len(bounds) and bounds[i] < b
        ]
    return [t for t in across if not _inside_trained_run(regions, *offsets[t])]


class _Strings(Sequence[str]):
    """A sample's token strings (`token_strings`), made on first use: only a violation shows them."""

    def __init__(self, tokenizer: Any, ids: Sequence[int]) -> None:
        self.tokenizer, self.ids = tokenizer, ids
        self._made: list[str] | None = None

    def _all(self) -> list[str]:
        if self._made is None:
            self._made = token_strings(self.tokenizer, self.ids)
        return self._made

    def __getitem__(self, index: Any) -> Any:
        return self._all()[index]

    def __iter__(self) -> Any:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self.ids)


def _inside_trained_run(regions: list[_Region], a: int, b: int) -> bool:
    """True when [a, b) lies inside adjacent trained regions (reasoning|content|stop): no mask edge crossed."""
    covered = a
    for r in sorted(regions, key=lambda r: r.start):
        if r.start <= covered < r.end:
            covered = r.end
    return covered >= b


def _stray_violation(seen: _Seen, run: list[int]) -> Violation:
    """A run of trained tokens in no generated span (invariant 2), said as where the sample parts from a served
    prompt: a reply trained after a prompt the server never sends, a span that does not go on as generated, or ids
    that are no turn's served prompt."""
    detail, turn = _stray_detail(seen, run)
    return seen.violation(
        Invariant.REPLAY, detail, turn=turn, positions=tuple(run), tokens=tuple(seen.strings[t] for t in run)
    )


def _stray_detail(seen: _Seen, run: list[int]) -> tuple[str, int]:
    tokenizer, ids, text, plans = seen.tokenizer, seen.ids, seen.text, seen.plans
    start = seen.offsets[run[0]][0]
    run_text = decode(tokenizer, [ids[t] for t in run])
    # whose reply is this? (a reply trained after a history the template rewrote names its own turn)
    owners = [p for p in plans if len(_reply(p)) >= 4 and _reply(p) in run_text]
    owner = max(owners, key=lambda p: len(_reply(p))) if owners else None
    if owner is not None and not text.startswith(owner.prompt):
        served_ids = token_ids(tokenizer, owner.prompt)
        at = first_difference(ids, served_ids)
        return (
            f"turn {owner.turn}'s reply is trained after a prompt the server never sends: from token {at} the "
            f"sample has {decode(tokenizer, ids[at : at + 3])!r}, the served prompt {decode(tokenizer, served_ids[at : at + 3])!r}"
        ), owner.turn
    served = [p for p in plans if text.startswith(p.prompt) and len(p.prompt) <= start]
    if owner is not None and text.startswith(owners[0].prompt):
        served = [owner]
    if served:
        return _not_as_generated(seen, max(served, key=lambda p: len(p.prompt)))
    # the turn whose served prompt parts from the sample last, but not after these tokens begin
    common = {p.turn: first_difference(text, p.prompt) for p in plans}
    before = [p for p in plans if common[p.turn] < seen.offsets[run[-1]][1]] or list(plans)
    plan = max(before, key=lambda p: (common[p.turn], p.turn))
    served_ids = token_ids(tokenizer, plan.prompt)
    at = first_difference(ids, served_ids)
    return (
        f"the ids before these trained tokens are no turn's served prompt (closest: turn {plan.turn}, which "
        f"differs at token {at}: the sample has {decode(tokenizer, ids[at : at + 3])!r}, "
        f"the server {decode(tokenizer, served_ids[at : at + 3])!r})"
    ), plan.turn


def _not_as_generated(seen: _Seen, plan: TurnPlan) -> tuple[str, int]:
    """Where a sample that holds `plan`'s served prompt parts from the turn as generated (or from that prompt)."""
    tokenizer = seen.tokenizer
    expected = token_ids(tokenizer, plan.text)
    at = first_difference(seen.ids, expected)
    got = decode(tokenizer, seen.ids[at : at + 3])
    # where the sample parts from the served prompt itself, say so: its last characters are not generated
    prompt_tokens = len(token_ids(tokenizer, plan.prompt))
    in_prompt = at < prompt_tokens
    want = decode(tokenizer, expected[at : min(at + 3, prompt_tokens) if in_prompt else at + 3])
    where = "the served prompt has" if in_prompt else "the model generates"
    return (
        f"trained tokens do not follow the served prompt of turn {plan.turn} as generated: from token {at} the "
        f"sample has {got!r} where {where} {want!r}"
    ), plan.turn


def _reply(plan: TurnPlan) -> str:
    """The turn's answer text (content piece), to recognise it wherever a sample trains it."""
    return next((p.text for p in plan.pieces if p.kind is Kind.CONTENT), "")


def check_determinism(
    produce: Callable[[], Sequence[SampleLike]],
    clocks: tuple[datetime, datetime] = (
        datetime(2025, 1, 15, 9, 0, tzinfo=UTC),
        datetime(2031, 6, 30, 23, 0, tzinfo=UTC),
    ),
) -> list[Violation]:
    """6. The same samples under two different wall clocks (templates that write today's date must be pinned)."""
    outputs = []
    for clock in clocks:
        import time_machine  # imported when a clock is frozen: it imports pytest (0.3-0.6 s at start-up)

        with time_machine.travel(clock, tick=False):
            outputs.append([(list(s.input_ids), list(s.loss_mask)) for s in produce()])
    first, second = outputs
    if first == second:
        return []
    if len(first) != len(second):
        return [
            Violation(
                Invariant.DETERMINISM,
                f"{len(first)} samples on {clocks[0]:%Y-%m-%d}, {len(second)} on {clocks[1]:%Y-%m-%d}",
            )
        ]
    found = []
    for index, ((ids_a, mask_a), (ids_b, mask_b)) in enumerate(zip(first, second, strict=True)):
        if (ids_a, mask_a) != (ids_b, mask_b):
            at = first_difference(ids_a, ids_b) if ids_a != ids_b else first_difference(mask_a, mask_b)
            found.append(
                Violation(
                    Invariant.DETERMINISM,
                    f"the sample differs between clocks {clocks[0]:%Y-%m-%d} and {clocks[1]:%Y-%m-%d} from token {at}",
                    sample=index,
                    positions=(at,),
                    code="clock",
                )
            )
    return found


def _missing_kind(regions: Sequence[_Region], offsets: Sequence[tuple[int, int]], missing: Sequence[int]) -> str:
    """S where the stop token is among the untrained generated tokens, R where reasoning is, else C."""
    kinds = {r.kind for t in missing for r in regions if r.start <= offsets[t][0] < r.end}
    return "S" if Kind.STOP in kinds else "R" if Kind.REASONING in kinds else "C"


def _runs(positions: list[int]) -> list[list[int]]:
    runs: list[list[int]] = []
    for p in positions:
        if runs and runs[-1][-1] == p - 1:
            runs[-1].append(p)
        else:
            runs.append([p])
    return runs


def _approximate_offsets(strings: Sequence[str]) -> list[tuple[int, int]]:
    offsets, at = [], 0
    for s in strings:
        offsets.append((at, at + len(s)))
        at += len(s)
    return offsets


def _short(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width // 2] + "…" + text[-width // 2 :]
