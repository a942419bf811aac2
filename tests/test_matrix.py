"""Every tokenizer x think mode x fixture cell: the reference obeys the contract, N/A cells are declared."""

from __future__ import annotations

import pytest

from chat_template_harness.cells import model as cellmodel
from chat_template_harness.cells.model import Cell, Status
from chat_template_harness.contract import conversation, turns
from chat_template_harness.contract.invariants import check_samples
from chat_template_harness.contract.sample import NOT_PLANNED, CellNotApplicable, Policy, preprocess
from chat_template_harness.models import source
from chat_template_harness.models.rules import Think
from chat_template_harness.models.rules.registry import family

CELLS = cellmodel.cells()
APPLICABLE = [c for c in CELLS if cellmodel.na_reason(c) is None]
NOT_APPLICABLE = [c for c in CELLS if cellmodel.na_reason(c) is not None]


def test_the_matrix_is_the_full_product():
    assert len(CELLS) == len(source.registry()) * 2 * len(conversation.fixture_names())
    assert len(APPLICABLE) + len(NOT_APPLICABLE) == len(CELLS)


@pytest.mark.parametrize("cell", APPLICABLE, ids=lambda c: c.id)
def test_cell_obeys_the_contract(cell: Cell, cth_run):
    result = cth_run(cell)
    assert result.status is Status.PASS, "\n".join(v.format() for v in result.violations)
    pre = result.result
    assert pre is not None
    # samples are ordered by the turn they end with; the last one ends with the final assistant turn
    ends = [s.turns[-1] for s in pre.samples]
    assert ends == sorted(ends) and ends[-1] == pre.plans[-1].turn
    # every turn has a line in the alignment report, and a split turn says why
    assert [r.turn for r in pre.report] == [p.turn for p in pre.plans]
    for r in pre.report:
        alone = r.sample >= 0 and not r.shared and r.turn != pre.plans[-1].turn
        assert bool(r.split_reason) == alone, r


@pytest.mark.parametrize("cell", NOT_APPLICABLE, ids=lambda c: c.id)
def test_cell_is_declared_na_with_its_reason(cell: Cell, cth_run):
    result = cth_run(cell)
    assert result.status is Status.NA and len(result.reason) > 20
    loaded = source.load(cell.model)
    with pytest.raises(CellNotApplicable, match="N/A"):
        preprocess(loaded.tokenizer, conversation.fixture(cell.fixture), family(loaded.spec.family), cell.think)


@pytest.mark.parametrize("model", ["qwen3-8b", "qwen2.5-7b", "deepseek-r1", "gpt-oss-20b"])
def test_policy_last_trains_only_the_final_turn(model: str):
    loaded = source.load(model)
    fam = family(loaded.spec.family)
    think = Think.ON if model in ("deepseek-r1", "gpt-oss-20b") else Think.OFF
    conv = conversation.fixture("multi_turn")
    result = preprocess(loaded.tokenizer, conv, fam, think, Policy.LAST)
    (sample,) = result.samples
    assert sample.turns == (2,)
    assert [r.sample for r in result.report] == [-1, -1, 0]
    assert check_samples(loaded.tokenizer, result.plans, result.samples, required_turns=[2]) == []


@pytest.mark.parametrize("model", ["qwen3-8b", "qwen2.5-7b", "deepseek-r1", "gpt-oss-20b"])
def test_policy_last_plans_the_final_turn_alone(model: str, monkeypatch):
    """Policy last renders no earlier turn's served prompt, and its sample is the final turn's sample under policy
    all: the same ids, trained exactly where that one trains the final turn (after its served prompt)."""
    loaded = source.load(model)
    fam = family(loaded.spec.family)
    think = Think.ON if model in ("deepseek-r1", "gpt-oss-20b") else Think.OFF
    conv = conversation.fixture("reasoning_every_turn")
    every = preprocess(loaded.tokenizer, conv, fam, think, Policy.ALL)
    rendered = []
    real = turns.render
    monkeypatch.setattr(turns, "render", lambda tok, msgs, **kw: rendered.append(len(msgs)) or real(tok, msgs, **kw))
    last = preprocess(loaded.tokenizer, conv, fam, think, Policy.LAST)
    final = conv.assistant_indices[-1]
    assert rendered and min(rendered) >= final  # the final turn's served prompt and finished turn only
    assert [p.turn for p in last.plans] == [every.plans[-1].turn]
    assert [(r.prompt_tokens, r.template_render) for r in last.report[:-1]] == [(-1, NOT_PLANNED)] * (
        len(every.report) - 1
    )
    (sample,) = last.samples
    assert sample.input_ids == every.samples[-1].input_ids
    prompt = every.report[-1].prompt_tokens
    assert sample.loss_mask == tuple(0 if i < prompt else m for i, m in enumerate(every.samples[-1].loss_mask))
    assert any(sample.loss_mask)


def test_history_sharing_follows_the_template():
    """Faithful templates share one sequence; history-rewriting ones split with a reason."""

    def shape(model: str, think: Think) -> list[tuple[int, ...]]:
        loaded = source.load(model)
        result = preprocess(
            loaded.tokenizer, conversation.fixture("reasoning_every_turn"), family(loaded.spec.family), think
        )
        return [s.turns for s in result.samples]

    assert shape("qwen2.5-7b", Think.OFF) == [(0, 1, 2)]
    assert shape("llama-3.1-8b", Think.OFF) == [(0, 1, 2)]
    assert shape("qwen3-8b", Think.ON) == [(0,), (1,), (2,)]  # past reasoning dropped
    assert shape("deepseek-r1", Think.ON) == [(0,), (1,), (2,)]  # cut at </think>
    assert shape("deepseek-v3.1", Think.OFF) == [(0, 1, 2)]
    assert shape("gpt-oss-20b", Think.ON) == [(0,), (1,), (2,)]  # analysis dropped, <|return|> -> <|end|>


def test_cells_run_in_worker_processes_exactly_as_in_one(capsys):
    """`cth matrix` runs each model's cells in a worker process and gets the results back without the tokenizer:
    verdicts, samples and golden texts are the same as one process's, in the same order."""
    import pickle

    from chat_template_harness.cells.run import run
    from chat_template_harness.outputs import golden

    chosen = cellmodel.cells(["qwen3-8b", "llama-3.2-3b"], fixtures=["reasoning_every_turn", "tool_call"])
    ticks: list[int] = []
    one, many = run(chosen), run(chosen, workers=2, tick=ticks.append)
    assert [r.cell for r in many] == chosen and sum(ticks) == len(chosen)
    assert [(r.status, r.reason, r.code, r.result) for r in many] == [
        (r.status, r.reason, r.code, r.result) for r in one
    ]
    assert [golden.render(r) for r in many] == [golden.render(r) for r in one]
    sent = [r for r in many if r.loaded is not None]
    assert sent and all(isinstance(r.loaded.tokenizer, source.Deferred) for r in sent)
    # negative control: the tokenizer itself stays behind (a deferred one is made again only when asked for more)
    assert len(pickle.dumps(one[-1].loaded)) < 100_000 < len(pickle.dumps(one[-1].loaded.tokenizer))
    assert sent[-1].loaded.tokenizer.decode([100]) == one[-1].loaded.tokenizer.decode([100])
