"""Tokenization as the contract defines it: each side of a prompt edge whole, no added special tokens.

A sample's ids are its served prompt's ids (the prompt text tokenized whole) followed by its reply's (the
reply tokenized on its own, as the model emits it after the prompt): `encode_sides`. Each side's ids are
always those of the whole-string call. Where the tokenizer provably cuts the text at its
added tokens before anything else (checked per tokenizer at first use, see `Pieces`), the text between
two such tokens is tokenized once and reused: the served prompts and samples of one conversation share
all but their last messages, so each message is tokenized once rather than once per turn after it.
"""

from __future__ import annotations

import operator
import re
from bisect import bisect_left, bisect_right
from collections import Counter, OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from itertools import pairwise
from typing import Any

from chat_template_harness.models import memo


def encode(tokenizer: Any, text: str) -> tuple[list[int], list[tuple[int, int]]]:
    """Token ids of `text` (the templates already write BOS) and each token's character range."""
    ids, offsets = _encode(tokenizer, text)
    return list(ids), list(offsets)


def encode_sides(tokenizer: Any, text: str, edges: Sequence[int]) -> tuple[list[int], list[tuple[int, int]]]:
    """`text` cut at `edges` (characters), each side tokenized whole on its own: the ids a server sees.

    A served prompt is tokenized whole, then the model emits its reply's tokens after it: the reply's first
    whitespace never merges with the prompt's last (`assistant\n` + `\n\nKept`). With no edge inside the text
    this is `encode`.
    """
    ids: list[int] = []
    offsets: list[tuple[int, int]] = []
    cuts = [0, *sorted({e for e in edges if 0 < e < len(text)}), len(text)]
    for start, end in pairwise(cuts):
        side_ids, side_offsets = _encode(tokenizer, text[start:end])
        ids += side_ids
        offsets += [(a + start, b + start) for a, b in side_offsets] if start else side_offsets
    return ids, offsets


# the bench turns the piecewise tokenization and the direct decode off to measure what they save
SHORTCUTS = True


_FIRST, _SECOND = operator.itemgetter(0), operator.itemgetter(1)


@dataclass(frozen=True)
class Run:
    """A text tokenized whole on its own: its ids and offsets, with what `Segmented` asks of them made once."""

    ids: tuple[int, ...]
    offsets: tuple[tuple[int, int], ...]
    starts: tuple[int, ...]
    ordered: bool  # starts and ends in order, every token inside the text
    empty: tuple[int, ...]  # the tokens with no characters

    def shifted(self, at: int) -> Sequence[tuple[int, int]]:
        """The offsets moved `at` characters on."""
        if not at:
            return self.offsets
        return [(a + at, b + at) for a, b in self.offsets]

    @classmethod
    def of(cls, ids: Sequence[int], offsets: Sequence[tuple[int, int]], length: int) -> Run:
        starts, ends = list(map(_FIRST, offsets)), list(map(_SECOND, offsets))  # each piece once: kept short
        inside = not offsets or (starts[0] >= 0 and ends[-1] <= length)
        ordered = inside and starts == sorted(starts) and ends == sorted(ends)
        empty = tuple(i for i, (a, b) in enumerate(offsets) if a == b) if any(map(operator.eq, starts, ends)) else ()
        return cls(tuple(ids), tuple(offsets), tuple(starts), ordered, empty)


@dataclass(frozen=True)
class Segmented:
    """The ids of `encode_sides`, with the offsets kept per segment instead of per token: a segment is a side, or
    (where `Pieces` is exact) a piece or cut token of one, each with the character and token it starts at. A
    sample's tokens are found from character positions by bisection over the segments, then within one: no step
    per token of the sample (each piece's `Run` is cached, so a conversation's samples share them)."""

    ids: list[int]
    chars: list[int]  # where each segment starts in the text
    tokens: list[int]  # the index of each segment's first token
    runs: list[Run]

    @cached_property
    def ordered(self) -> bool:
        """Every segment's starts and ends are in order and its offsets lie inside it, so the whole text's starts
        and ends are in order too: only then are tokens found by bisection."""
        return all(run.ordered for run in self.runs)

    def token_at(self, x: int) -> int:
        """The number of tokens that start before character `x` (`bisect_left` over the whole text's starts)."""
        j = bisect_left(self.chars, x) - 1
        if j < 0:
            return 0
        return self.tokens[j] + bisect_left(self.runs[j].starts, x - self.chars[j])

    def across(self, x: int) -> list[int]:
        """The tokens (in order) whose characters lie on both sides of `x` (none at a segment's edge)."""
        j = bisect_right(self.chars, x) - 1
        if j < 0 or self.chars[j] == x:
            return []
        run, at = self.runs[j], x - self.chars[j]
        i = bisect_left(run.starts, at) - 1
        found = []
        while i >= 0 and run.offsets[i][1] > at:
            found.append(self.tokens[j] + i)
            i -= 1
        return found

    def empty_tokens(self) -> list[int]:
        """The tokens with no characters (never trained)."""
        return [first + i for first, run in zip(self.tokens, self.runs, strict=True) for i in run.empty]

    def flat_offsets(self) -> list[tuple[int, int]]:
        """Every token's character range in the whole text (the per-token form, for offsets out of order)."""
        return [offset for start, run in zip(self.chars, self.runs, strict=True) for offset in run.shifted(start)]


def encode_segments(tokenizer: Any, text: str, edges: Sequence[int]) -> Segmented:
    """`encode_sides` (the same ids, the same offsets) as segments: see `Segmented`."""
    ids: list[int] = []
    chars: list[int] = []
    firsts: list[int] = []
    runs: list[Run] = []
    cuts = [0, *sorted({e for e in edges if 0 < e < len(text)}), len(text)]
    backend = _plain_backend(tokenizer)
    pieces = _pieces(backend) if SHORTCUTS and backend is not None else None
    for start, end in pairwise(cuts):
        side = text[start:end]
        found = (
            pieces.segments(side)
            if pieces is not None and pieces.exact
            else [(0, Run.of(*_encode(tokenizer, side), len(side)))]
        )
        for at, run in found:
            chars.append(start + at)
            firsts.append(len(ids))
            runs.append(run)
            ids += run.ids
    return Segmented(ids, chars, firsts, runs)


def ids(tokenizer: Any, text: str) -> list[int]:
    """The token ids of `text` alone, as `encode` gives them (without building the offsets where it can)."""
    backend = _plain_backend(tokenizer)
    if SHORTCUTS and backend is not None and _pieces(backend).exact:
        return list(_pieces(backend).ids(text))
    return list(_encode(tokenizer, text)[0])


def ids_sides(tokenizer: Any, text: str, edges: Sequence[int]) -> list[int]:
    """The ids of `encode_sides`, each side through `ids` (without building the offsets where it can)."""
    cuts = [0, *sorted({e for e in edges if 0 < e < len(text)}), len(text)]
    return [i for start, end in pairwise(cuts) for i in ids(tokenizer, text[start:end])]


# A cell tokenizes the same served prompts and samples several times (grouping, building,
# reporting, checking, the determinism re-run): remember the recent ones.
@memo.kept
@lru_cache(maxsize=4096)
def _encode(tokenizer: Any, text: str) -> tuple[tuple[int, ...], tuple[tuple[int, int], ...]]:
    backend = _plain_backend(tokenizer)
    if backend is not None:
        pieces = _pieces(backend)
        if SHORTCUTS and pieces.exact:
            return pieces.encode(text)
        enc = backend.encode(text, add_special_tokens=False)
        return tuple(enc.ids), tuple(enc.offsets)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    return tuple(enc["input_ids"]), tuple((int(a), int(b)) for a, b in enc["offset_mapping"])


def _plain_backend(tokenizer: Any) -> Any:
    """The Rust tokenizer behind a fast tokenizer, where calling it directly is what `tokenizer(text)` does.

    `tokenizer(text, add_special_tokens=False)` on a fast tokenizer first turns truncation and padding
    off and sets whether special tokens are split, then calls the Rust `encode_batch`; where the backend
    is already in that state, its `encode` gives the same ids and offsets without the Python wrapping
    (a third of the cost). tests/test_tokens.py compares both on every tokenizer of the pack.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None or not getattr(tokenizer, "is_fast", False):
        return None
    split = bool(getattr(tokenizer, "split_special_tokens", False))
    if backend.truncation is not None or backend.padding is not None or backend.encode_special_tokens != split:
        return None
    return backend


class Pieces:
    """A tokenizer's text tokenized piece by piece between its added tokens, each piece once.

    A Hugging Face tokenizer first cuts the text at its added tokens, then normalizes, pre-tokenizes and
    tokenizes each piece between them on its own (tokenizers' `AddedVocabulary.extract_and_normalize`).
    Where that holds, the whole-string ids are the concatenation of the pieces' ids with the cut tokens'
    ids between them, and a piece seen before costs a dictionary look-up. It fails where a piece's
    tokenization depends on where it sits (Metaspace's `prepend_scheme: first` marks only the text's
    first piece) or where a cut token is matched otherwise (`lstrip`/`rstrip`/`single_word`, a token
    matched after normalization, one added token inside another). So only the added tokens free of those
    are cuts, and `exact` is set only when every probe text (`probes`) tokenizes to the same ids and
    offsets both ways; otherwise every text is tokenized whole (`reason` says why).
    """

    def __init__(self, backend: Any) -> None:
        self.backend = backend
        self.cuts = _cut_tokens(backend)
        self._cut_runs = {c: Run.of((i,), ((0, len(c)),), len(c)) for c, i in self.cuts.items()}
        self.exact, self.reason = False, "no added token to cut at"
        # A row's samples share its pieces, so the cache must hold one row's (a few dozen); a larger one keeps
        # tens of thousands of objects alive, and Python's full collections walk them again and again: with 65,536
        # entries, 2,000 bench rows paid 11 full collections (0.85 ms a row) where 2,048 entries pay 2 (0.15 ms).
        self._piece = lru_cache(maxsize=PIECES)(self._tokenize)
        self.ids = lru_cache(maxsize=4096)(self._ids)  # a sample's and its prompts' ids are asked for several times
        self._recent: OrderedDict[str, tuple[tuple[int, Run], ...]] = OrderedDict()  # text -> its segments
        if self.cuts:
            self._split = re.compile(_trie_pattern(self.cuts))
            self.exact, self.reason = True, ""
            for text in probes(self.cuts):
                enc = backend.encode(text, add_special_tokens=False)
                if self.encode(text) != (tuple(enc.ids), tuple(enc.offsets)):
                    self.exact, self.reason = False, f"pieces tokenize otherwise than the whole text {text!r}"
                    break

    def _tokenize(self, piece: str) -> Run:
        enc = self.backend.encode(piece, add_special_tokens=False)
        return Run.of(enc.ids, enc.offsets, len(piece))

    def _ids(self, text: str) -> tuple[int, ...]:
        out: list[int] = []
        known = self._recent.get(text)  # a sample's served prompt, tokenized as its first side
        if known is not None:
            for _, run in known:
                out += run.ids
            return tuple(out)
        at = 0
        for match in self._split.finditer(text):
            if match.start() > at:
                out += self._piece(text[at : match.start()]).ids
            out.append(self.cuts[match.group()])
            at = match.end()
        if at < len(text):
            out += self._piece(text[at:]).ids
        return tuple(out)

    def segments(self, text: str) -> tuple[tuple[int, Run], ...]:
        """`text` as (start, its tokens) per piece and cut token, in order: `encode` without shifting each token's
        offsets. Kept for the recent texts: a sample is built, then checked, and its served prompt's ids are asked
        for again (`ids`)."""
        known = self._recent.get(text)
        if known is None:
            known = self._recent[text] = self._segments(text)
            if len(self._recent) > RECENT:
                self._recent.popitem(last=False)
        return known

    def _segments(self, text: str) -> tuple[tuple[int, Run], ...]:
        out: list[tuple[int, Run]] = []
        at = 0
        for match in self._split.finditer(text):
            start = match.start()
            if start > at:
                out.append((at, self._piece(text[at:start])))
            out.append((start, self._cut_runs[match.group()]))
            at = match.end()
        if at < len(text):
            out.append((at, self._piece(text[at:])))
        return tuple(out)

    def encode(self, text: str) -> tuple[tuple[int, ...], tuple[tuple[int, int], ...]]:
        ids: list[int] = []
        offsets: list[tuple[int, int]] = []
        for at, run in self.segments(text):
            ids += run.ids
            offsets += [(a + at, b + at) for a, b in run.offsets] if at else run.offsets
        return tuple(ids), tuple(offsets)


PIECES = 2048  # texts between cut tokens whose tokens a tokenizer's `Pieces` keeps (see its __init__)
RECENT = 1024  # texts whose segments a tokenizer's `Pieces` keeps (oldest out first)


def _cut_tokens(backend: Any) -> dict[str, int]:
    """The added tokens matched exactly as written: no stripping, no word rule, not after normalization,
    neither inside another added token nor holding one."""
    added = {i: t for i, t in backend.get_added_tokens_decoder().items() if t.content}
    normalizes = backend.normalizer is not None
    plain = {
        t.content: i
        for i, t in added.items()
        if not (t.lstrip or t.rstrip or t.single_word) and not (t.normalized and normalizes)
    }
    inside, holders = nested([t.content for t in added.values()])
    return {c: i for c, i in plain.items() if c not in inside and c not in holders}


def nested(contents: Sequence[str]) -> tuple[set[str], set[str]]:
    """The added tokens written inside another one (or twice), and the tokens that hold one of those.

    Each token's substrings of the lengths tokens have are looked up, instead of counting every token in the
    joined text (quadratic in the number of tokens: Gemma 3 has 6,300)."""
    counts = Counter(contents)
    unique = set(counts)
    inside = {c for c, n in counts.items() if n > 1}
    holders: set[str] = set()
    lengths = sorted({len(c) for c in unique})
    for c in unique:
        for n in lengths:
            if n >= len(c):
                break
            found = {s for s in (c[i : i + n] for i in range(len(c) - n + 1)) if s in unique}
            if found:
                inside |= found
                holders.add(c)
    return inside, holders


def _trie_pattern(words: Iterable[str]) -> str:
    """One regex matching any of `words`, longest first, as a trie: a plain alternation of thousands of added
    tokens (Gemma 3 has 6,300) tries every one at every character."""
    trie: dict[str, Any] = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}

    def pattern(node: dict[str, Any]) -> str:
        branches = [re.escape(char) + pattern(child) for char, child in sorted(node.items()) if char]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 and "" not in node else "(?:" + "|".join(branches) + ")"
        return body + "?" if "" in node else body

    return pattern(trie)


def probes(cuts: dict[str, int]) -> list[str]:
    """Texts on which the piecewise and whole-string tokenizations must agree: each cut token at the start,
    in the middle and at the end of text, next to another, between whitespace, letters, digits, CJK, emoji."""
    ordered = sorted(cuts, key=lambda t: (cuts[t], t))
    tokens = ordered[:16] + ordered[16 :: max(1, len(ordered) // 48)]  # the first ones and a spread of the rest
    texts = ["plain text only", " leading space", "数学 😀 12345\n\n\t end  "]
    for i, tok in enumerate(tokens):
        other = tokens[(i + 1) % len(tokens)]
        texts += [
            f"{tok}Hello world",
            f"Hello{tok} world",
            f"x {tok} y",
            f"{tok}\n\n{other}  x\n",
            f"{tok}{other}",
            f" {tok}",
            f"\n{tok}\n",
            f"数学{tok}😀 123{tok}",
            f"{tok}  \t\n",
            f"a\n\n\n{tok}\n\n\nb {other}",
        ]
    return texts


@memo.kept
@lru_cache(maxsize=64)
def _pieces(backend: Any) -> Pieces:
    return Pieces(backend)


def pieces_of(tokenizer: Any) -> Pieces | None:
    """The piecewise tokenizer the contract's tokenization uses for `tokenizer` (None: the plain call)."""
    backend = _plain_backend(tokenizer)
    return _pieces(backend) if backend is not None else None


def decode(tokenizer: Any, ids: Sequence[int]) -> str:
    """The exact text of `ids` (no special-token skipping, no space clean-up: Llama 3 turns that on).

    A fast tokenizer whose class keeps transformers' own `_decode` decodes with its Rust backend and then
    only cleans up spaces, which is off here: the backend is called directly (tests/test_tokens.py checks
    both on every tokenizer of the pack).
    """
    cls: type = type(tokenizer)
    text: str
    if SHORTCUTS and _plain_decode(cls):
        text = tokenizer.backend_tokenizer.decode(list(ids), skip_special_tokens=False)
    else:
        text = tokenizer.decode(list(ids), skip_special_tokens=False, clean_up_tokenization_spaces=False)
    return text


@memo.kept
@lru_cache(maxsize=64)
def _plain_decode(cls: type) -> bool:
    owner = next((c for c in cls.__mro__ if "_decode" in vars(c)), None)
    return (
        owner is not None
        and owner.__module__
        in (
            "transformers.tokenization_utils_tokenizers",  # transformers 5.x TokenizersBackend
            "transformers.tokenization_utils_fast",  # transformers 4.x PreTrainedTokenizerFast
        )
        and getattr(cls, "is_fast", False) is not False
    )


def token_strings(tokenizer: Any, ids: Sequence[int]) -> list[str]:
    """Each token decoded on its own (a multi-byte character split across tokens shows as U+FFFD).

    A token's text depends on nothing else, so each id is decoded once per tokenizer (in one batch
    call for the ids not seen yet): the invariants ask for every token of every sample.
    """
    known = _token_texts(tokenizer)
    missing = sorted({i for i in ids if i not in known})
    if missing:
        texts = tokenizer.batch_decode(
            [[i] for i in missing], skip_special_tokens=False, clean_up_tokenization_spaces=False
        )
        known.update(zip(missing, texts, strict=True))
    return [known[i] for i in ids]


@memo.kept
@lru_cache(maxsize=64)
def _token_texts(tokenizer: Any) -> dict[int, str]:
    return {}


def crossing(offsets: Sequence[tuple[int, int]], boundary: int) -> int | None:
    """The index of the token whose characters lie on both sides of `boundary`, if any."""
    return next((i for i, (a, b) in enumerate(offsets) if a < boundary < b), None)


def unicode_form(tokenizer: Any) -> str | None:
    """The Unicode normalization the tokenizer applies before tokenizing (Qwen: NFC), or None.

    Such a tokenizer cannot give back non-normalized text: decode(ids) is the normalized text. The
    invariants therefore compare texts as the tokenizer sees them (see `normalized`).
    """
    return _unicode_form(tokenizer)


@memo.kept
@lru_cache(maxsize=64)
def _unicode_form(tokenizer: Any) -> str | None:
    import json

    backend = getattr(tokenizer, "backend_tokenizer", None) or getattr(tokenizer, "_tokenizer", None)
    if backend is None:
        return None
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") in ("NFC", "NFD", "NFKC", "NFKD"):
                found.append(node["type"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    normalizer = backend.normalizer  # only its own JSON: the whole tokenizer's (the vocabulary) takes ~1 s to parse
    walk(json.loads(normalizer.__getstate__()) if normalizer is not None else None)
    return found[0] if found else None


def normalized(tokenizer: Any, text: str) -> str:
    """`text` as the tokenizer's own Unicode normalization writes it (unchanged for most tokenizers)."""
    import unicodedata

    form = unicode_form(tokenizer)
    return unicodedata.normalize(form, text) if form else text  # type: ignore[arg-type]
