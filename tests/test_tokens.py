"""Tokenization shortcuts give exactly what the plain calls give: the Rust backend called directly, and the
common-prefix search by halving."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chat_template_harness.cells import model as cellmodel
from chat_template_harness.contract import conversation, tokens
from chat_template_harness.contract.compare import first_difference
from chat_template_harness.contract.sample import CellNotApplicable, preprocess
from chat_template_harness.models import source
from chat_template_harness.models.rules.registry import family_for

ODD_TEXTS = [
    "",
    " ",
    "\n\n\n",
    "  leading and trailing  ",
    "Cafe\u0301 \uf900 ﬁ",  # non-NFC: Qwen normalizes it
    "数学 😀 emoji ZWJ 👩‍👩‍👧 and tabs\t\t",
    "<|im_start|>assistant\n<think>\n\n</think>\n\n",
    "<｜Assistant｜></think>a<|eot_id|><start_of_turn>model\n",
    "\u200b\ufeffzero width",
]


def _plain(tokenizer, text):
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    return list(enc["input_ids"]), [tuple(map(int, o)) for o in enc["offset_mapping"]]


@pytest.mark.parametrize("model", list(source.builtin_registry()))
def test_the_backend_encode_equals_the_tokenizer_call(model):
    loaded = source.load(model)
    tok = loaded.tokenizer
    # a call with truncation (SpecForge's preprocessing, in tests/frameworks/test_specforge.py) leaves the backend so until
    # the next plain call, and the shortcut is not taken meanwhile; after a plain call it is, on every tokenizer of the pack
    tok("", add_special_tokens=False)
    assert tokens._plain_backend(tok) is not None, "every tokenizer of the pack is fast: the shortcut is taken"
    fam = family_for(loaded.spec, tok)
    texts = list(ODD_TEXTS)
    for cell in cellmodel.cells([model]):
        try:
            result = preprocess(tok, conversation.load(cell.fixture), fam, cell.think)
        except CellNotApplicable:
            continue
        texts += [s.text for s in result.samples] + [p.prompt for p in result.plans]
    assert len(texts) > len(ODD_TEXTS)
    for text in texts:
        assert tokens._encode.__wrapped__(tok, text) == tuple(map(tuple, _plain(tok, text))), repr(text[:80])


def test_a_backend_set_to_truncate_is_not_called_directly():
    """Negative control: a backend whose state differs from what the tokenizer call sets is bypassed (and the
    fallback call resets it, so the next encode takes the shortcut again)."""
    tok = copy.deepcopy(source.load("qwen3-8b").tokenizer)
    tok.backend_tokenizer.enable_truncation(max_length=3)
    text = "one two three four five six"
    assert len(tok.backend_tokenizer.encode(text, add_special_tokens=False).ids) == 3  # what a direct call would give
    assert tokens._plain_backend(tok) is None
    ids, _ = tokens._encode.__wrapped__(tok, text)
    assert len(ids) > 3
    assert tokens._plain_backend(tok) is not None
    assert list(ids) == _plain(tok, text)[0]


@given(st.text(max_size=40), st.text(max_size=40))
def test_first_difference_is_where_the_texts_part(a, b):
    expected = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    assert first_difference(a, b) == expected
    assert first_difference(list(a), tuple(b)) == expected


def test_first_difference_examples():
    assert first_difference("abc", "abd") == 2
    assert first_difference("abc", "abcdef") == 3
    assert first_difference([1, 2, 3], (1, 2, 3)) == 3
    assert first_difference([], [1]) == 0
    assert first_difference("x" * 5000 + "a", "x" * 5000 + "b") == 5000


def _nested_by_counting(contents: list[str]) -> tuple[set[str], set[str]]:
    """The definition `tokens.nested` keeps, the obvious (quadratic) way: a token found twice in the joined text is
    inside another (or written twice); a token that holds a shorter one of those holds one."""
    joined = "\0".join(contents)
    inside = {c for c in contents if joined.count(c) > 1}
    return inside, {c for c in contents if any(o in c for o in inside if len(o) < len(c))}


@given(st.lists(st.text(alphabet="<>ab|_ \n", min_size=1, max_size=6), min_size=1, max_size=30))
def test_nested_tokens_are_found_as_counting_finds_them(contents):
    assert tokens.nested(contents) == _nested_by_counting(contents)


def test_nested_tokens_examples():
    # negative control for the property: tokens that share no text are neither inside nor holders
    assert tokens.nested(["<a>", "<b>"]) == (set(), set())
    assert tokens.nested(["<a>", "x<a>y", "<b>", "<b>"]) == ({"<a>", "<b>"}, {"x<a>y"})
