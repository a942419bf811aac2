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

from chat_template_harness.cells import model as cellmodel
from chat_template_harness.contract import conversation, render, tokens
from chat_template_harness.contract.sample import CellNotApplicable, resolve_mode
from chat_template_harness.models import source
from chat_template_harness.models.rules import Think
from chat_template_harness.models.rules.registry import family_for

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


@given(
    st.lists(
        st.sampled_from(
            [
                "<|im_start|>",
                "<|im_end|>",
                "<think>",
                "</think>",
                "user\n",
                " ",
                "\n\n",
                "a b",
                "数学",
                "😀",
                "12345",
                "\t",
            ]
        ),
        max_size=12,
    )
)
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
    for cell in cellmodel.cells([model]):
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
                    fast = render.render(
                        tok, msgs[:end], family=fam, mode=mode, tools=conv.tools, add_generation_prompt=gen
                    )
                except Exception as exc:  # the template refuses: so must the plain path
                    fast = type(exc).__name__
                monkeypatch.setattr(render, "FAST", False)
                try:
                    plain = render.render(
                        tok, msgs[:end], family=fam, mode=mode, tools=conv.tools, add_generation_prompt=gen
                    )
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
    assert (
        render.render(tok, [{"role": "user", "content": "x"}], family=fam, mode=mode, add_generation_prompt=True)
        == "own"
    )


HOSTILE = [
    "{{ messages.append(1) }}{{ messages | length }}",
    "{{ messages[0].update({'role': 'x'}) }}{{ messages[0].role }}",
    "{{ messages[0].content.__class__.__mro__ }}",
    "{{ '{0.__class__}'.format(messages[0].content) }}",
    "{{ messages[0].content.format_map(messages[0]) }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ messages[0].items() | list }}|{{ messages[0].content.upper() }}|{{ messages[0].missing is defined }}",
    "{% for k in messages[0].keys() %}{{ k }}{% endfor %}{{ messages[0].get('role') }}{{ messages.pop() }}",
]


def _outcome(template, messages):
    try:
        return template.render(messages=messages)
    except Exception as exc:
        return type(exc).__name__


@pytest.mark.parametrize("source_text", HOSTILE)
def test_the_memoised_sandbox_refuses_what_the_sandbox_refuses(source_text):
    """The remembered decisions never let through what transformers' sandbox refuses: each template gives the
    same text or the same error both ways, also once the decisions are remembered (the second render)."""
    from transformers.utils.chat_template_utils import _compile_jinja_template

    plain = _compile_jinja_template(source_text)
    memoised = render.memoised_sandbox(plain, source_text)
    assert memoised is not plain and memoised.environment is not plain.environment
    for _ in range(2):
        messages = [{"role": "user", "content": "Hi {0}"}]
        assert _outcome(memoised, copy.deepcopy(messages)) == _outcome(plain, copy.deepcopy(messages)), source_text


def test_the_sandbox_still_refuses_after_remembering():
    """Negative control on the refusals themselves: mutating calls and private attributes raise SecurityError,
    and a format string cannot reach a private attribute."""
    from transformers.utils.chat_template_utils import _compile_jinja_template

    for source_text in [HOSTILE[0], HOSTILE[1], HOSTILE[2], HOSTILE[5]]:
        memoised = render.memoised_sandbox(_compile_jinja_template(source_text), source_text)
        assert [_outcome(memoised, [{"role": "user", "content": "Hi {0}"}]) for _ in range(2)] == ["SecurityError"] * 2
    escape = render.memoised_sandbox(_compile_jinja_template(HOSTILE[3]), HOSTILE[3])
    assert [_outcome(escape, [{"role": "user", "content": "x"}]) for _ in range(2)] == ["", ""]
    assert "class" in "{0.__class__}".format("x"), "outside the sandbox the same format string reaches the class"  # noqa: UP030 - the hostile template's own string


def test_an_environment_with_its_own_sandbox_rules_is_left_alone():
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class Stricter(ImmutableSandboxedEnvironment):
        def is_safe_attribute(self, obj, attr, value):
            return False

    template = Stricter().from_string("{{ x.upper() }}")
    assert render.memoised_sandbox(template, "{{ x.upper() }}") is template


def test_a_message_changed_in_place_is_read_again():
    """The plain copy of a message is reused only while the message is unchanged (negative control)."""
    tok = source.load("qwen3-8b").tokenizer
    fast = render._renderer(tok)
    messages = [{"role": "user", "content": "first"}]
    before = fast.render(messages, None, True, {})
    again = fast.render(messages, None, True, {})
    messages[0]["content"] = "second"
    after = fast.render(messages, None, True, {})
    assert before == again and "first" in before
    assert "second" in after and "first" not in after
    assert fast.render([{"role": "user", "content": "third"}], None, True, {}).count("third") == 1


def _straddling_by_token(offsets, regions):
    from bisect import bisect_right

    from chat_template_harness.contract import invariants

    bounds = sorted({r.start for r in regions} | {r.end for r in regions})
    return [
        t
        for t, (a, b) in enumerate(offsets)
        if (i := bisect_right(bounds, a)) < len(bounds)
        and bounds[i] < b
        and not invariants._inside_trained_run(regions, a, b)
    ]


@given(st.lists(st.integers(0, 3), min_size=1, max_size=40), st.lists(st.integers(0, 60), max_size=6), st.booleans())
@settings(max_examples=150, deadline=None)
def test_straddling_tokens_by_bisection_equal_the_token_by_token_scan(widths, edges, shuffle):
    """Invariant 5's edge-by-edge bisection finds exactly the tokens the token-by-token scan finds, on ordered
    offsets (empty and overlapping tokens included) and, by the scan itself, on offsets out of order."""
    from chat_template_harness.contract import invariants
    from chat_template_harness.contract.turns import Kind

    offsets, at = [], 0
    for i, w in enumerate(widths):
        start = max(at - (i % 3 == 2), 0)  # every third token overlaps the one before (a byte split)
        offsets.append((start, start + w))
        at = start + w
    if shuffle:
        offsets = offsets[::-1]
    cuts = sorted(set(edges))
    regions = [invariants._Region(0, Kind.CONTENT, a, b) for a, b in zip(cuts[::2], cuts[1::2], strict=False) if a < b]
    starts = [a for a, _ in offsets]
    starts = starts if starts == sorted(starts) else None
    assert invariants._straddling(offsets, starts, regions) == _straddling_by_token(offsets, regions)


def test_the_bench_floor_without_shortcuts_restores_them(tmp_path):
    from chat_template_harness import bench
    from chat_template_harness.audit import generate

    path = generate.write_jsonl(tmp_path / "rows.jsonl", 6, seed=0)
    rate, turns = bench._floor_rows_per_s(path, "qwen3-8b", "off", 6, per_turn=True, shortcuts=False)
    assert rate > 0 and turns > 0
    assert render.FAST is True and tokens.SHORTCUTS is True


def test_the_bench_bare_loads_fetch_a_packaged_template_before_the_clock(monkeypatch):
    """On a fresh machine the first fetch of a pinned template downloads its package (about a minute): a bare
    load that paid it made the matrix look 0.17 of its loads (deepseek-v4 65.6 s, its load 0.3-5 s)."""
    from chat_template_harness import bench
    from chat_template_harness.models import fetched

    clock, fetches, real = {"running": False}, [], fetched.text

    class Clock:  # each bare load reads the clock twice: start, then stop
        @staticmethod
        def perf_counter() -> float:
            clock["running"] = not clock["running"]
            return 0.0

    def text(pin):
        fetches.append(clock["running"])
        return real(pin)

    monkeypatch.setattr(bench, "time", Clock)
    monkeypatch.setattr(fetched, "text", text)
    # the load itself is not what is tested (and no tokenizer is made here): a packaged model's load reads its
    # template, as source.instantiate does
    monkeypatch.setattr(source, "instantiate", _reads_template)
    bench.bare_loads(None, ["deepseek-v4"])
    assert fetches and fetches[0] is False  # the first (the downloading) fetch is outside the clock


def _reads_template(spec, directory, origin):
    from chat_template_harness.models import fetched

    return fetched.text(spec.template)  # looked up at call time: the test's recording stand-in
