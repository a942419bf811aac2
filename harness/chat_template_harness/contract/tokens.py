"""Tokenization as the contract defines it: the whole string, no added special tokens."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any


def encode(tokenizer: Any, text: str) -> tuple[list[int], list[tuple[int, int]]]:
    """Token ids of `text` (the templates already write BOS) and each token's character range."""
    ids, offsets = _encode(tokenizer, text)
    return list(ids), list(offsets)


# A cell tokenizes the same served prompts and samples several times (grouping, building,
# reporting, checking, the determinism re-run): remember the recent ones.
@lru_cache(maxsize=4096)
def _encode(tokenizer: Any, text: str) -> tuple[tuple[int, ...], tuple[tuple[int, int], ...]]:
    backend = _plain_backend(tokenizer)
    if backend is not None:
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


def decode(tokenizer: Any, ids: Sequence[int]) -> str:
    """The exact text of `ids` (no special-token skipping, no space clean-up: Llama 3 turns that on)."""
    return tokenizer.decode(list(ids), skip_special_tokens=False, clean_up_tokenization_spaces=False)


def token_strings(tokenizer: Any, ids: Sequence[int]) -> list[str]:
    """Each token decoded on its own (a multi-byte character split across tokens shows as U+FFFD).

    A token's text depends on nothing else, so each id is decoded once per tokenizer (in one batch
    call for the ids not seen yet): the invariants ask for every token of every sample.
    """
    known = _token_texts(tokenizer)
    missing = sorted({i for i in ids if i not in known})
    if missing:
        texts = tokenizer.batch_decode([[i] for i in missing], skip_special_tokens=False, clean_up_tokenization_spaces=False)
        known.update(zip(missing, texts, strict=True))
    return [known[i] for i in ids]


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
