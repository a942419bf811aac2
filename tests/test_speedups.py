"""The audit's shortcuts give exactly what the plain calls give (issue 21): text tokenized piece by piece
between added tokens, the chat template rendered through transformers' `render_jinja_template` without
`apply_chat_template`'s per-call work, and decoding through the Rust backend. Each is checked on every
tokenizer of the pack, and each has a case where it must not be taken."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import pre_tokenizers
from transformers import PreTrainedTokenizerFast

from chat_template_harness.contract import conversation, render, tokens
from chat_template_harness.contract.sample import CellNotApplicable, resolve_mode
from chat_template_harness.models import source
from chat_template_harness.models.rules import Think
from chat_template_harness.models.rules.registry import family_for
from chat_template_harness.outputs import matrix

MODELS = list(source.builtin_registry())


@pytest.mark.parametrize("model", MODELS)
def test_every_pack_tokenizer_is_tokenized_piecewise_exactly(model):
    tok = source.load(model).tokenizer
    tok("", add_special_tokens=False)  # a plain call leaves the backend as the contract's call sets it
    pieces = tokens.pieces_of(tok)
    assert pieces is not None and pieces.exact, pieces.reason if pieces else "no fast backend"
    texts = tokens.probes(pieces.cuts) + ["".join(list(pieces.cuts)[:5]) + " tail", "  \n\n" + next(iter(pieces.cuts))]
    for text in texts:
        enc = tok.backend_tokenizer.encode(text, add_special_tokens=False)
        assert pieces.encode(text) == (tuple(enc.ids), tuple(enc.offsets)), repr(text)
        assert tokens.ids(tok, text) == enc.ids


@given(st.lists(st.sampled_from(["<|im_start|>", "<|im_end|>", "<think>", "</think>", "user\n", " ", "\n\n", "a b",
                                 "数学", "😀", "12345", "\t"]), max_size=12))
@settings(max_examples=60, deadline=None)
def test_pieces_equal_the_whole_string_on_any_arrangement(parts):
    tok = source.load("qwen3-8b").tokenizer
    text = "".join(parts)
    enc = tok.backend_tokenizer.encode(text, add_special_tokens=False)
    assert tokens.pieces_of(tok).encode(text) == (tuple(enc.ids), tuple(enc.offsets))


def _first_only(model: str) -> PreTrainedTokenizerFast:
    """A tokenizer whose pieces depend on where they sit: Metaspace marks only the text's first piece."""
    base = source.load(model).tokenizer.backend_tokenizer
    backend = copy.deepcopy(base)
    backend.pre_tokenizer = pre_tokenizers.Metaspace(prepend_scheme="first")
    return PreTrainedTokenizerFast(tokenizer_object=backend)


def test_a_tokenizer_whose_pieces_differ_falls_back_to_the_whole_string():
    """Negative control: the probe finds the difference, and every text is then tokenized whole."""
    tok = _first_only("qwen3-8b")
    pieces = tokens.pieces_of(tok)
    assert pieces is not None and not pieces.exact and "otherwise" in pieces.reason
    text = "<|im_start|>user\nHello world<|im_end|>\n<|im_start|>assistant\nHi there"
    whole = tok.backend_tokenizer.encode(text, add_special_tokens=False)
    assert pieces.encode(text) != (tuple(whole.ids), tuple(whole.offsets)), "the piecewise form really differs here"
    assert tokens._encode.__wrapped__(tok, text) == (tuple(whole.ids), tuple(whole.offsets))
    assert tokens.ids(tok, text) == whole.ids


@pytest.mark.parametrize("model", MODELS)
def test_the_direct_decode_equals_the_tokenizer_decode(model):
    tok = source.load(model).tokenizer
    ids = tokens.encode(tok, "<|im_start|>x  数学 😀\n\n" + tok.decode([0]))[0] + [len(tok) - 1]
    plain = tok.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
    assert tokens.decode(tok, ids) == plain


@pytest.mark.parametrize("model", MODELS)
def test_the_compiled_template_renders_as_apply_chat_template_on_every_cell(model, monkeypatch):
    loaded = source.load(model)
    tok, fam = loaded.tokenizer, family_for(loaded.spec, loaded.tokenizer)
    compared = 0
    for cell in matrix.cells([model]):
        conv = conversation.load(cell.fixture)
        try:
            mode = resolve_mode(fam, Think(cell.think), conv)
        except CellNotApplicable:
            continue
        msgs = render.template_messages(conv, fam, mode)
        for end in {*conv.assistant_indices, len(msgs)}:
            for gen in (True, False):
                monkeypatch.setattr(render, "FAST", True)
                try:
                    fast = render.render(tok, msgs[:end], family=fam, mode=mode, tools=conv.tools, add_generation_prompt=gen)
                except Exception as exc:  # the template refuses: so must the plain path
                    fast = type(exc).__name__
                monkeypatch.setattr(render, "FAST", False)
                try:
                    plain = render.render(tok, msgs[:end], family=fam, mode=mode, tools=conv.tools, add_generation_prompt=gen)
                except Exception as exc:
                    plain = type(exc).__name__
                assert fast == plain, (cell, end, gen)
                compared += 1
    if fam.renderer == "template":
        assert render._renderer(tok) is not None, "the compiled path is taken for this tokenizer"
    assert compared > 0


def test_a_tokenizer_that_renders_otherwise_keeps_apply_chat_template():
    """Negative control: a tokenizer class with its own apply_chat_template never takes the compiled path."""
    base = source.load("qwen3-8b").tokenizer

    class Own(type(base)):
        def apply_chat_template(self, *args, **kwargs):
            return "own"

    tok = copy.copy(base)
    tok.__class__ = Own
    assert render._renderer(tok) is None
    fam = family_for(source.load("qwen3-8b").spec, base)
    mode = fam.mode(Think.OFF)
    assert render.render(tok, [{"role": "user", "content": "x"}], family=fam, mode=mode, add_generation_prompt=True) == "own"
