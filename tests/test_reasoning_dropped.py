"""Where a mode drops the data's reasoning, every summary says so: the turn note's code, counted in the matrix,
check and audit summaries (the audit's count: tests/test_audit.py), and `cth diff` names it as a cause of its own
(tests/test_revisions.py)."""

from __future__ import annotations

from chat_template_harness.cells.model import Cell, Status
from chat_template_harness.contract.turns import REASONING_DROPPED
from chat_template_harness.models.rules import Think
from chat_template_harness.outputs import report
from tests.helpers import check_cell, run_cell


def test_a_think_off_cell_with_reasoning_in_its_data_is_counted_in_the_matrix_summary():
    dropping = run_cell(Cell("llama-3.1-8b", Think.OFF, "reasoning_last_turn"), determinism=False)
    keeping = run_cell(Cell("llama-3.1-8b", Think.OFF, "single_turn"), determinism=False)
    assert dropping.status is Status.PASS  # the samples are right for the mode; the loss of data is said, not failed
    (note,) = [n for p in dropping.result.plans for n in p.notes]
    assert note.code == REASONING_DROPPED and note.drops_reasoning
    assert report.reasoning_dropped([dropping, keeping]) == "reasoning dropped in 1 cells: llama-3.1-8b/think-off (1)"
    assert "reasoning dropped in 1 cells" in report.summary_line([dropping, keeping]).plain
    assert "reasoning dropped in 1 cells: llama-3.1-8b/think-off (1)." in report.matrix_markdown([dropping, keeping])
    assert report.reasoning_dropped([keeping]) == "" and "reasoning dropped" not in report.summary_line([keeping]).plain


def test_the_check_summary_counts_the_cells_its_reference_drops_reasoning_in():
    cells = [Cell("qwen2.5-7b", Think.OFF, f) for f in ("reasoning_every_turn", "reasoning_last_turn", "single_turn")]
    from chat_template_harness.examples import reference

    results = [check_cell(reference.preprocess, c, determinism=False) for c in cells]
    assert [r.reasoning_dropped for r in results] == [True, True, False]
    assert (
        "reasoning dropped in 2 cells: qwen2.5-7b/think-off (2)" in report.summary_line(results, failures=False).plain
    )
