"""build_samples' shortcuts give exactly what the exact paths give, on every cell of every built-in model, and each
has a case where it must not be taken (issue 35: the verified preprocessor as fast as the frameworks')."""

from __future__ import annotations

import pytest

from chat_template_harness.cells import model as cellmodel
from chat_template_harness.contract import conversation, sample, tokens
from chat_template_harness.contract.sample import CellNotApplicable, resolve_mode
from chat_template_harness.errors import HarnessError
from chat_template_harness.models import source
from chat_template_harness.models.rules import Think
from chat_template_harness.models.rules.registry import family_for

MODELS = list(source.builtin_registry())


def _cells(model: str):
    loaded = source.load(model)
    fam = family_for(loaded.spec, loaded.tokenizer)
    for cell in cellmodel.cells([model]):
        conv = conversation.load(cell.fixture)
        try:
            resolve_mode(fam, Think(cell.think), conv)
        except (CellNotApplicable, HarnessError):
            continue
        yield cell, loaded.tokenizer, conv, fam, Think(cell.think)


def _error(*args):
    try:
        sample.preprocess(*args)
    except HarnessError as exc:
        return type(exc).__name__, str(exc)
    return None


@pytest.mark.parametrize("model", MODELS)
def test_the_segmented_build_equals_the_per_token_build_on_every_cell(model, monkeypatch):
    """Each sample built from its segments equals the one built token by token from the same plans, and each
    turn's prompt tokens counted on its sample's first side equal its prompt tokenized apart."""
    compared = 0
    for cell, tok, conv, fam, think in _cells(model):
        monkeypatch.setattr(sample, "SEGMENTED", True)
        try:
            result = sample.preprocess(tok, conv, fam, think)
        except HarnessError as exc:  # the template refuses: so must the per-token path
            monkeypatch.setattr(sample, "SEGMENTED", False)
            assert _error(tok, conv, fam, think) == (type(exc).__name__, str(exc))
            continue
        monkeypatch.setattr(sample, "SEGMENTED", False)
        for built in result.samples:
            exact, counted = sample._build(tok, [result.plans[t] for t in built.turns])
            assert (exact, counted) == (built, None), cell.id
        for report in result.report:
            assert report.prompt_tokens == len(tokens.ids(tok, result.plans[report.turn].prompt)), cell.id
        compared += 1
    assert compared > 0


def _segmented(text: str, runs: list[tuple[int, list[tuple[int, int]]]]) -> tokens.Segmented:
    """A text's segments by hand: (start, offsets from start) each, one id per token."""
    ids, chars, firsts, made = [], [], [], []
    for start, offsets in runs:
        end = next((s for s, _ in runs if s > start), len(text))
        run = tokens.Run.of(list(range(len(offsets))), offsets, end - start)
        chars.append(start)
        firsts.append(len(ids))
        made.append(run)
        ids += run.ids
    return tokens.Segmented(ids, chars, firsts, made)


@pytest.mark.parametrize(
    ("runs", "trained"),
    [
        ([(0, [(0, 3), (3, 5)]), (5, [(0, 1)]), (6, [(0, 4), (4, 4), (4, 6)])], [(5, 12)]),  # an empty token inside
        ([(0, [(0, 2), (2, 6)]), (6, [(0, 6)])], [(2, 6), (6, 12)]),  # adjacent ranges, a segment edge between
        ([(0, [(0, 12)])], [(12, 12)]),
    ],
)
def test_the_segmented_mask_equals_the_per_token_mask(runs, trained):
    text = "abcdefghijkl"
    segmented = _segmented(text, runs)
    assert segmented.ordered
    assert list(sample._mask_segmented(text, segmented, trained)) == sample._mask(
        text, segmented.flat_offsets(), trained
    )
    starts = [a for a, _ in segmented.flat_offsets()]
    from bisect import bisect_left

    assert [segmented.token_at(x) for x in range(13)] == [bisect_left(starts, x) for x in range(13)]


def test_offsets_out_of_order_take_the_per_token_path():
    """Negative control: a segment whose offsets do not rise is never bisected; the per-token mask decides."""
    text = "abcdefghijkl"
    segmented = _segmented(text, [(0, [(0, 3), (3, 6)]), (6, [(3, 6), (0, 3)])])
    assert not segmented.ordered
    trained = [(6, 12)]
    assert list(sample._mask_segmented(text, segmented, trained)) == sample._mask(
        text, segmented.flat_offsets(), trained
    )


def test_a_token_across_a_trained_edge_raises_on_both_paths():
    """Negative control: a token holding trained and untrained characters is an error, never a silent mask."""
    text = "abcdefghijkl"
    segmented = _segmented(text, [(0, [(0, 3), (3, 8)]), (8, [(0, 4)])])
    for mask in (
        lambda: sample._mask_segmented(text, segmented, [(5, 12)]),
        lambda: sample._mask(text, segmented.flat_offsets(), [(5, 12)]),
    ):
        with pytest.raises(HarnessError, match="trained and untrained"):
            mask()


@pytest.mark.parametrize("mask", [(), (0, 0), (1, 1, 1), (0, 1, 1, 0, 0, 1), (1, 0, 1, 0, 1, 0), (0, 0, 0, 1)], ids=str)
def test_labels_copied_by_runs_equal_labels_token_by_token(mask):
    from chat_template_harness.build import IGNORE_INDEX, labels_of

    ids = tuple(range(100, 100 + len(mask)))
    assert labels_of(ids, mask) == tuple(i if m else IGNORE_INDEX for i, m in zip(ids, mask, strict=True))


def test_the_bench_breakdown_counts_the_renders_and_restores_the_functions():
    from chat_template_harness import bench_build
    from chat_template_harness.contract import sample, turns

    before = turns.render, sample.encode_segments, sample.ids_sides, sample.token_ids
    rows = bench_build.usable_rows(8)
    parts = bench_build.breakdown(bench_build.source_tokenizer(), rows)
    assert (turns.render, sample.encode_segments, sample.ids_sides, sample.token_ids) == before
    turns_per_row = sum(len(_turns(r)) for r in rows) / len(rows)
    # a turn's served prompt and its finished turn are rendered at least (the oracle's render where it shows reasoning)
    assert parts.renders_per_row >= 2 * turns_per_row - 1
    assert 0 < parts.render_ms and 0 < parts.tokenize_ms and parts.rest_ms >= 0


def _turns(row) -> tuple[int, ...]:
    try:
        return conversation.parse(row, name="row", source="bench").assistant_indices
    except HarnessError:
        return ()
